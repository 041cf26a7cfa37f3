"""Bounded work (issue 14): LookupResources over long chains, deadlines, and Check latency beside heavy lookups.

    python -m benchmarks.bench_lookup_chain [--json out.json] [--quick]

Numbers, not pass/fail. Three measurements, each on the scenario of issue 14
(``doc:c{i}#parent@doc:c{i+1}`` for i < N, ``doc:cN#viewer@user:end``):

1. **Cost over a chain.** The candidate walk of LookupResources alone (max depth
   raised out of the way) for N = 1,000 ... 16,000, and the whole lookup at the
   default max depth (50), which ends with the max-depth error as Check does. A
   linear walk doubles its time when N doubles.
2. **A deadline through gRPC.** ``headwater serve`` over the same data; a lookup with
   a 5 s deadline over N = 4,000 (answered at once: the max-depth error), and a
   lookup over 60,000 results with a 0.2 s deadline: how long after its deadline
   the server's handler ends (the access log's duration).
3. **Fair scheduling.** 20 such long lookups sent at once from another process (each
   abandoned by its client after 1 s), while this process sends unrelated Checks:
   their p50/p99/max, against the same Checks on an idle server.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from headwater.engine import Engine, MemoryStore
from headwater.engine.client import Client
from headwater.engine.config import Config
from headwater.engine.lookup import candidate_resources
from headwater.engine.relationships import SubjectRef

SCHEMA = """definition user {}
definition doc {
    relation viewer: user
    relation parent: doc
    permission view = viewer + parent->view
}
"""


def chain(n: int) -> list[str]:
    return [f"doc:c{i}#parent@doc:c{i + 1}" for i in range(n)] + [f"doc:c{n}#viewer@user:end"]


def load(engine: Engine, rels: list[str]) -> None:
    for i in range(0, len(rels), 1000):
        engine.touch(*rels[i:i + 1000])


def walk_costs(sizes: list[int]) -> list[dict[str, Any]]:
    out = []
    for n in sizes:
        engine = Engine(MemoryStore(), config=Config.of(max_depth=n + 10))
        engine.write_schema(SCHEMA)
        load(engine, chain(n))
        best = float("inf")
        for _ in range(3):
            with engine.store.snapshot() as reader:
                t = time.perf_counter()
                found = candidate_resources(engine.schema(), reader, "doc", "view", SubjectRef("user", "end"),
                                            max_depth=n + 10)
                best = min(best, time.perf_counter() - t)
        assert len(found) == n + 1
        default = Engine(MemoryStore())
        default.write_schema(SCHEMA)
        load(default, chain(n))
        t = time.perf_counter()
        try:
            default.lookup_resources("doc", "view", "user:end")
            outcome = "answered"
        except Exception as exc:  # noqa: BLE001 - the max-depth error is the expected outcome
            outcome = type(exc).__name__
        out.append({"n": n, "walk_ms": round(best * 1000, 2), "lookup_at_max_depth_50_ms":
                    round((time.perf_counter() - t) * 1000, 2), "lookup_outcome": outcome})
    return out


def percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
    return {"n": len(values), "p50_ms": round(pick(0.5), 2), "p99_ms": round(pick(0.99), 2),
            "max_ms": round(values[-1], 2)}


_LOOKERS = """
import sys, threading
from headwater.engine.client import Client
address, n, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def one():
    try:
        Client(address, timeout=timeout).lookup_resources("doc", "view", "user:many")
    except Exception:
        pass
threads = [threading.Thread(target=one) for _ in range(n)]
for t in threads: t.start()
for t in threads: t.join()
"""


def serve(db: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    proc = subprocess.Popen([sys.executable, "-m", "headwater.engine", "serve", "--insecure-no-auth", "--db", str(db),
                             "--address", f"127.0.0.1:{port}", "--grace-seconds", "1"], env=env,
                            stderr=log.open("w"))
    address = f"127.0.0.1:{port}"
    Client(address).wait_ready(60)
    return proc, address


def checks_for(address: str, seconds: float) -> list[float]:
    out = []
    with Client(address, timeout=30) as c:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.perf_counter()
            assert c.check("doc:c3999", "view", "user:end").allowed
            out.append((time.perf_counter() - t) * 1000)
            time.sleep(0.01)
    return out


def grpc_figures(many: int, lookers: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "chain.db"
        with Engine.open(db) as engine:
            engine.write_schema(SCHEMA)
            load(engine, chain(4000) + [f"doc:d{i}#viewer@user:many" for i in range(many)])
        log = Path(tmp) / "serve.log"
        proc, address = serve(db, log)
        try:
            out: dict[str, Any] = {}
            with Client(address, timeout=5) as c:
                t = time.perf_counter()
                try:
                    c.lookup_resources("doc", "view", "user:end")
                    out["chain_4000_lookup"] = "answered"
                except Exception as exc:  # noqa: BLE001
                    out["chain_4000_lookup"] = type(exc).__name__
                out["chain_4000_lookup_ms"] = round((time.perf_counter() - t) * 1000, 2)
            with Client(address, timeout=0.2) as c:
                try:
                    c.lookup_resources("doc", "view", "user:many")
                except Exception:  # noqa: BLE001 - DEADLINE_EXCEEDED expected
                    pass
            time.sleep(1.0)
            out["idle_checks"] = percentiles(checks_for(address, seconds))
            looker = subprocess.Popen([sys.executable, "-c", _LOOKERS, address, str(lookers), "1.0"])
            time.sleep(0.3)
            busy = checks_for(address, seconds)
            looker.wait(120)
            out["checks_beside_lookups"] = percentiles(busy)
            out["lookers"] = lookers
        finally:
            proc.terminate()
            proc.wait(30)
        records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        lookups = [r for r in records if str(r.get("method", "")).endswith("/LookupResources")]
        deadline = [r for r in lookups if r["status"] == "DEADLINE_EXCEEDED"]
        out["lookup_statuses"] = {s: sum(1 for r in lookups if r["status"] == s) for s in {r["status"] for r in lookups}}
        if deadline:
            out["deadline_0_2s_handler_ms"] = deadline[0]["duration_ms"]
        ends = [r["duration_ms"] for r in lookups if r["status"] in ("DEADLINE_EXCEEDED", "CANCELLED")]
        out["abandoned_lookup_handler_ms_max"] = max(ends) if ends else None
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--quick", action="store_true", help="smaller sizes and shorter runs")
    args = ap.parse_args()
    sizes = [1000, 2000, 4000] if args.quick else [1000, 2000, 4000, 8000, 16000]
    result: dict[str, Any] = {"benchmark": "lookup_chain", "walk": walk_costs(sizes)}
    for row in result["walk"]:
        print(f"N={row['n']:>6}: candidate walk {row['walk_ms']:>8.2f} ms; lookup at max depth 50: "
              f"{row['lookup_at_max_depth_50_ms']:.2f} ms ({row['lookup_outcome']})")
    figures = grpc_figures(20_000 if args.quick else 60_000, 20, 3.0 if args.quick else 8.0)
    result["grpc"] = figures
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
