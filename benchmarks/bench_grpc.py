"""gRPC Check latency from a separate client process, next to the floor (an empty RPC on the same server).

    python -m benchmarks.bench_grpc [--checks 2000] [--json out.json]

Starts ``headwater serve`` as its own process (SQLite, no auth, 127.0.0.1, a free
port), loads a small workload through the client, then from this process times
``Check`` (a direct grant, warm: the server's cache answers) and the floor:
``grpc.health.v1.Health/Check``, an RPC that does no work, on the same server and
channel. Both are unary calls over the same connection, so the difference is
Headwater's own cost per call (servicer, conversion, engine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from headwater.engine.client import Client

POLICY = Path(__file__).resolve().parents[1] / "examples" / "ai-lineage" / "policy.zed"


def _percentiles(us: list[float]) -> dict[str, float]:
    s = sorted(us)
    return {"n": len(s), "p50_us": round(s[len(s) // 2], 1), "p95_us": round(s[int(0.95 * len(s))], 1),
            "p99_us": round(s[min(len(s) - 1, int(0.99 * len(s)))], 1), "mean_us": round(statistics.fmean(s), 1)}


def run(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        with socket.socket() as sock:  # a free port for the server
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        log = open(Path(tmp) / "server.log", "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "headwater.engine", "serve", "--db", str(Path(tmp) / "g.db"), "--schema",
             str(POLICY), "--insecure-no-auth", "--address", f"127.0.0.1:{port}", "--log-level", "warning"],
            stdout=subprocess.DEVNULL, stderr=log, env=dict(os.environ))
        try:
            client = Client(f"127.0.0.1:{port}")
            client.wait_ready(30)
            client.touch(*[f"dataset:d{i}#viewer@user:u{i}" for i in range(200)])
            checks = [(f"dataset:d{i % 200}", f"user:u{i % 200}") for i in range(n)]
            for resource, subject in checks[:400]:  # warm the server's cache and the channel
                client.check(resource, "read", subject)
                client.health()
            check_us, floor_us = [], []
            for resource, subject in checks:
                t = time.perf_counter()
                client.health()
                floor_us.append((time.perf_counter() - t) * 1e6)
                t = time.perf_counter()
                r = client.check(resource, "read", subject)
                check_us.append((time.perf_counter() - t) * 1e6)
                assert r.allowed
            client.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
    check, floor = _percentiles(check_us), _percentiles(floor_us)
    return {"benchmark": "grpc", "checks": n, "check": check, "floor_health_rpc": floor,
            "ratio_p50": round(check["p50_us"] / floor["p50_us"], 2),
            "machine": {"python": platform.python_version(), "platform": platform.platform()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checks", type=int, default=2000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    r = run(args.checks)
    print(f"gRPC from a separate process, {r['checks']} calls each (warm):")
    for name in ("check", "floor_health_rpc"):
        p = r[name]
        print(f"  {name:<18} p50 {p['p50_us']} µs  p95 {p['p95_us']} µs  p99 {p['p99_us']} µs")
    print(f"  Check / empty RPC at p50: {r['ratio_p50']}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
