"""Write latency under load: N clients looping over a mix of checks and one-relationship writes, on SQLite.

    python -m benchmarks.bench_write_load [--clients 16] [--write-fraction 0.1] [--seconds 20]
                                          [--mode grpc|engine|both] [--audit | --no-audit] [--json out.json]

Two paths, so that gRPC effects and store effects can be told apart:

- ``grpc``: starts ``headwater serve`` as its own process (a SQLite file in a
  temporary folder, no auth, 127.0.0.1, a free port, the default 16 workers),
  loads a small workload, then starts ``--clients`` client **processes** (one
  channel each, so the clients' own GIL is not in the numbers). Each loops,
  closed-loop with no think time, for ``--seconds``: with probability
  ``--write-fraction`` a ``WriteRelationships`` of one TOUCH
  (``dataset:d<r>#viewer@user:w<client>``, so a key is rewritten now and then
  and history grows), otherwise a ``Check`` of ``dataset:d<r>#read@user:u<r>``
  (allowed) or ``...@user:u<r+1>`` (denied), at the default consistency (so
  every write moves the checks to a new revision and their cache keys with it).
- ``engine``: the same loop on ``--clients`` threads of this process, calling
  ``Engine.touch`` / ``Engine.check`` on one engine over one SQLite file
  (the engine ``headwater serve`` would build, without gRPC).

``--audit`` runs either with the audit log on (every decision recorded, the
server's default policy once auditing is on; each write waits for its change
record to be committed). The first ``--warmup`` seconds of each client are not
timed. Reported per operation (check, write): count, throughput, p50 / p95 /
p99 / max latency in milliseconds, and errors (with the first messages).
Numbers, not pass/fail; the machine's core count is in the JSON, since the
server and the clients share it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

POLICY = Path(__file__).resolve().parents[1] / "examples" / "ai-lineage" / "policy.zed"
DATASETS = 200  # objects checked and written
Sample = tuple[str, float, float, str]  # operation ("check" / "write"), start (s since t0), latency (s), error or ""


def _dataset_rows() -> list[str]:
    return [f"dataset:d{i}#viewer@user:u{i}" for i in range(DATASETS)]


def _loop(client_id: int, check: Callable[[str, str], Any], touch: Callable[[str], Any], write_fraction: float,
          start_at: float, warm_until: float, stop_at: float, seed: int) -> list[Sample]:
    """One client's closed loop (wall clock: time.time, shared across processes); samples after warm_until."""
    rng = random.Random(seed * 1_000 + client_id)
    out: list[Sample] = []
    clock = time.perf_counter
    while time.time() < start_at:
        time.sleep(0.001)
    while True:
        now = time.time()
        if now >= stop_at:
            return out
        r = rng.randrange(DATASETS)
        if rng.random() < write_fraction:
            op = "write"
            call: Callable[[], Any] = lambda: touch(f"dataset:d{r}#viewer@user:w{client_id}")  # noqa: E731
        else:
            op = "check"
            subject = f"user:u{r if rng.random() < 0.5 else (r + 1) % DATASETS}"
            call = lambda: check(f"dataset:d{r}", subject)  # noqa: E731
        error = ""
        t = clock()
        try:
            call()
        except Exception as exc:  # an error is a result to count, not a crash
            error = f"{type(exc).__name__}: {exc}"[:300]
        elapsed = clock() - t
        if now >= warm_until:
            out.append((op, now - start_at, elapsed, error))


# --- gRPC ---------------------------------------------------------------------------------------


def _grpc_client(args: tuple[str, int, float, float, float, float, int]) -> list[Sample]:
    """A client process: one channel, the loop, its samples."""
    address, client_id, write_fraction, start_at, warm_until, stop_at, seed = args
    from headwater.engine.client import Client

    with Client(address, timeout=60.0) as client:
        client.wait_ready(30)
        for _ in range(20):
            client.health()
        return _loop(client_id, lambda res, sub: client.check(res, "read", sub), client.touch, write_fraction,
                     start_at, warm_until, stop_at, seed)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_grpc(clients: int, write_fraction: float, seconds: float, warmup: float, audit: bool, workers: int,
             seed: int, folder: Path) -> dict[str, Any]:
    from headwater.engine.client import Client

    port = _free_port()
    address = f"127.0.0.1:{port}"
    log_path = folder / "server.log"
    command = [sys.executable, "-m", "headwater.engine", "serve", "--db", str(folder / "load.db"), "--schema",
               str(POLICY), "--insecure-no-auth", "--address", address, "--log-level", "warning",
               "--workers", str(workers), "--audit" if audit else "--no-audit"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env=dict(os.environ))
        try:
            with Client(address) as client:
                client.wait_ready(30)
                client.touch(*_dataset_rows())
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(clients) as pool:
                start_at = time.time() + 3.0 + 0.15 * clients  # every process started and connected by then
                jobs = [(address, i, write_fraction, start_at, start_at + warmup, start_at + warmup + seconds, seed)
                        for i in range(clients)]
                per_client = pool.map(_grpc_client, jobs)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    samples = [s for c in per_client for s in c]
    result = _summary(samples, seconds)
    result["server_errors"] = [line for line in log_path.read_text().splitlines() if "error" in line.lower()][-5:]
    return result


# --- in-process engine ---------------------------------------------------------------------------


def run_engine(clients: int, write_fraction: float, seconds: float, warmup: float, audit: bool, seed: int,
               folder: Path) -> dict[str, Any]:
    from headwater.engine import Config, Engine

    engine = Engine.open(folder / "engine.db", config=Config().replace(audit=audit))
    try:
        engine.write_schema(POLICY.read_text())
        engine.touch(*_dataset_rows())
        results: list[list[Sample]] = [[] for _ in range(clients)]
        start_at = time.time() + 0.5

        def client(i: int) -> None:
            results[i] = _loop(i, lambda res, sub: engine.check(res, "read", sub), engine.touch, write_fraction,
                               start_at, start_at + warmup, start_at + warmup + seconds, seed)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        engine.close()
    return _summary([s for c in results for s in c], seconds)


# --- report --------------------------------------------------------------------------------------


def _ms(values: list[float], q: float) -> float:
    return round(values[min(len(values) - 1, int(q * len(values)))] * 1e3, 2) if values else 0.0


def _summary(samples: list[Sample], seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for op in ("check", "write"):
        mine = [s for s in samples if s[0] == op]
        ok = sorted(s[2] for s in mine if not s[3])
        errors = [s[3] for s in mine if s[3]]
        out[op] = {"n": len(mine), "per_s": round(len(mine) / seconds, 1), "p50_ms": _ms(ok, 0.50),
                   "p95_ms": _ms(ok, 0.95), "p99_ms": _ms(ok, 0.99), "max_ms": round(ok[-1] * 1e3, 2) if ok else 0.0,
                   "errors": len(errors), "first_errors": sorted(set(errors))[:3]}
    return out


def run(mode: str, clients: int, write_fraction: float, seconds: float, warmup: float, audit: bool, workers: int,
        seed: int) -> dict[str, Any]:
    import headwater.engine

    result: dict[str, Any] = {
        "benchmark": "write_load", "clients": clients, "write_fraction": write_fraction, "seconds": seconds,
        "warmup_s": warmup, "audit": audit, "workers": workers, "seed": seed,
        "code": str(Path(headwater.engine.__file__).parent),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
    }
    with tempfile.TemporaryDirectory(prefix="hw-write-load-") as tmp:
        if mode in ("grpc", "both"):
            result["grpc"] = run_grpc(clients, write_fraction, seconds, warmup, audit, workers, seed, Path(tmp))
        if mode in ("engine", "both"):
            result["engine"] = run_engine(clients, write_fraction, seconds, warmup, audit, seed, Path(tmp))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--write-fraction", type=float, default=0.1)
    ap.add_argument("--seconds", type=float, default=20.0, help="timed seconds per path")
    ap.add_argument("--warmup", type=float, default=2.0, help="untimed seconds before them")
    ap.add_argument("--mode", choices=["grpc", "engine", "both"], default="both")
    ap.add_argument("--audit", action=argparse.BooleanOptionalAction, default=False,
                    help="run with the audit log on (every decision recorded)")
    ap.add_argument("--workers", type=int, default=16, help="the server's --workers")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    r = run(args.mode, args.clients, args.write_fraction, args.seconds, args.warmup, args.audit, args.workers,
            args.seed)
    print(f"{args.clients} clients, {args.write_fraction:.0%} writes, {args.seconds:g} s, "
          f"audit {'on' if args.audit else 'off'} ({r['code']}):")
    for path in ("grpc", "engine"):
        if path not in r:
            continue
        for op in ("check", "write"):
            p = r[path][op]
            print(f"  {path:<6} {op:<5} n {p['n']:>6}  {p['per_s']:>7}/s  p50 {p['p50_ms']:>7} ms  "
                  f"p95 {p['p95_ms']:>7} ms  p99 {p['p99_ms']:>7} ms  max {p['max_ms']:>7} ms  "
                  f"errors {p['errors']}" + (f" {p['first_errors'][0]}" if p["first_errors"] else ""))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
