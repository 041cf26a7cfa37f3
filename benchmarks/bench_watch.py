"""How soon a Watch on one server sees a write made through another, over one PostgreSQL database (issue 16).

    python -m benchmarks.bench_watch [--writes 100] [--poll 0.2 0.05] [--pg-server URI] [--json FILE]

Two ``headwater serve`` processes over a new database (dropped after); a Watch
stream is open on server B while a client writes one relationship at a time
through server A, waiting for B's event before the next write. Reported per
``--watch-poll-seconds`` value: the delay from A's acknowledgement to B's event
(p50/p95/p99/max) and the database queries the idle streams cost (one indexed
changelog read per stream per poll interval). Numbers, not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = "definition user {}\ndefinition doc {\n  relation viewer: user\n}\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _database(pg_server: str) -> str:
    """A new, migrated PostgreSQL database with the schema (``benchmarks.run.bench_database``)."""
    from headwater.engine import Engine

    from benchmarks.run import bench_database

    db = bench_database("postgresql", Path("."), pg_server)
    with Engine.open(db) as engine:
        engine.write_schema(SCHEMA)
    return db


def measure(db: str, poll: float, writes: int) -> dict[str, Any]:
    from headwater.engine.client import Client

    addresses = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    env = dict(os.environ, HEADWATER_WATCH_POLL_SECONDS=str(poll))
    servers = [subprocess.Popen([sys.executable, "-m", "headwater.engine", "serve", "--db", db, "--insecure-no-auth",
                                 "--address", a, "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for a in addresses]
    delays: list[float] = []
    rng = random.Random(16)
    try:
        with Client(addresses[0]) as a, Client(addresses[1]) as b:
            a.wait_ready(60)
            b.wait_ready(60)
            start = a.touch("doc:start#viewer@user:x").token
            seen = threading.Event()
            arrived: list[float] = []

            def follow() -> None:
                for _event in b.follow(start, timeout=60):
                    arrived.append(time.perf_counter())
                    seen.set()
                    if len(arrived) == writes:
                        return
            thread = threading.Thread(target=follow, daemon=True)
            thread.start()
            time.sleep(1.0)
            for n in range(writes):
                seen.clear()
                a.touch(f"doc:d{n}#viewer@user:u{n}")
                acked = time.perf_counter()
                if not seen.wait(30):
                    raise RuntimeError(f"no event for write {n} within 30 s")
                delays.append((arrived[-1] - acked) * 1000)
                time.sleep(rng.uniform(0, poll))  # writes fall at random points of the poll cycle
    finally:
        for s in servers:
            s.terminate()
        for s in servers:
            s.wait(30)
    ordered = sorted(delays)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)
    return {"watch_poll_seconds": poll, "writes": writes, "delay_ms": {
        "p50": q(0.5), "p95": q(0.95), "p99": q(0.99), "max": round(ordered[-1], 1),
        "mean": round(statistics.fmean(ordered), 1)},
        "idle_queries_per_stream_per_s": round(1 / poll, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writes", type=int, default=100)
    ap.add_argument("--poll", type=float, nargs="+", default=[0.2, 0.05])
    ap.add_argument("--pg-server", default=os.environ.get("HEADWATER_TEST_PG", "postgresql://127.0.0.1:5432/test"))
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "watch.json")
    args = ap.parse_args()
    db = _database(args.pg_server)
    try:
        results = [measure(db, poll, args.writes) for poll in args.poll]
    finally:
        from benchmarks.run import drop_bench_database

        drop_bench_database("postgresql", db, args.pg_server)
    for r in results:
        d = r["delay_ms"]
        print(f"watch_poll_seconds {r['watch_poll_seconds']}: write on A -> event on B p50 {d['p50']} ms, "
              f"p95 {d['p95']} ms, p99 {d['p99']} ms, max {d['max']} ms ({r['writes']} writes)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"benchmark": "watch across servers", "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                     "load_average": os.getloadavg(), "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
