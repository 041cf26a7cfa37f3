"""How fast OpenLineage events are recorded: over HTTP one event a request, in batches, again (no-op), and in-process.

    python -m benchmarks.bench_openlineage [--events 2000] [--batch 100] [--json FILE]

A ``headwater serve`` process (SQLite, the AI-lineage policy, an HTTP listener) takes
synthetic COMPLETE run events shaped like an Airflow training task and a Spark
inference job: each names two input datasets of a pool of 50 (tagged, so labels are
written too) and one new output dataset, so every event writes new lineage. Reported:
events per second and request latency (p50/p95/p99) sent one event per request over
one keep-alive connection, the same in batches of ``--batch`` events a request, the
same events once more (already stored: nothing is written), and the Python
``ingest`` call in-process on a memory store (no HTTP, no SQLite). Numbers, not
pass/fail; the figures of record are in benchmarks/results/openlineage.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
POLICY = REPO / "examples" / "ai-lineage" / "policy.zed"
PRODUCER = "https://github.com/acme/pipelines"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dataset(i: int) -> dict[str, Any]:
    tags = [{"key": "sensitivity", "value": ("internal", "confidential")[i % 2]}]
    if i % 5 == 0:
        tags.append({"key": "pii", "value": "true", "field": "email"})
    return {"namespace": "postgres://warehouse:5432", "name": f"claims.public.table_{i}",
            "facets": {"tags": {"_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/"
                                "TagsDatasetFacet.json", "tags": tags}}}


def events(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` COMPLETE run events, each writing one new output derived from two pooled, tagged datasets."""
    out = []
    for i in range(n):
        job = ("risk_pipeline.train_model", "batch_inference.predict_risk")[i % 2]
        output = {"namespace": "s3://ml-outputs", "name": f"run-{seed}/part-{i}"}
        out.append({"eventType": "COMPLETE", "eventTime": "2026-12-06T03:12:44.310Z", "producer": PRODUCER,
                    "schemaURL": SCHEMA_URL, "run": {"runId": str(uuid.UUID(int=seed * 10**9 + i + 1))},
                    "job": {"namespace": "airflow://prod", "name": job},
                    "inputs": [_dataset((i * 7) % 50), _dataset((i * 13 + 1) % 50)], "outputs": [output]})
    return out


def _post(conn: http.client.HTTPConnection, body: bytes) -> float:
    started = time.perf_counter()
    conn.request("POST", "/api/v1/lineage", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    answer = response.read()
    if response.status != 200:
        raise RuntimeError(f"POST /api/v1/lineage answered {response.status}: {answer[:300]!r}")
    return time.perf_counter() - started


def _summary(latencies: list[float], events_sent: int, seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {"events": events_sent, "requests": len(latencies), "seconds": round(seconds, 3),
            "events_per_s": round(events_sent / seconds, 1),
            "latency_ms": {"p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99),
                           "mean": round(statistics.fmean(latencies) * 1000, 2)}}


def _phase(conn: http.client.HTTPConnection, bodies: list[bytes], events_sent: int) -> dict[str, Any]:
    started = time.perf_counter()
    latencies = [_post(conn, body) for body in bodies]
    return _summary(latencies, events_sent, time.perf_counter() - started)


def _in_process(n: int, batch: int) -> dict[str, Any]:
    from headwater.engine import Engine
    from headwater.engine.openlineage import ingest
    from headwater.engine.store.memory import MemoryStore

    engine = Engine(MemoryStore())
    engine.write_schema(POLICY.read_text())
    evs = events(n, seed=9)
    out = {}
    for label, size in (("single", 1), ("batched", batch)):
        started = time.perf_counter()
        latencies = []
        for i in range(0, len(evs), size):
            t = time.perf_counter()
            ingest(engine, evs[i:i + size])
            latencies.append(time.perf_counter() - t)
        out[label] = _summary(latencies, len(evs), time.perf_counter() - started)
        evs = events(n, seed=10)
    return out


def run(n: int, batch: int) -> dict[str, Any]:
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench.db")
        subprocess.run([sys.executable, "-m", "headwater.engine", "schema", "write", str(POLICY), "--db", db],
                       check=True, stdout=subprocess.DEVNULL)
        server = subprocess.Popen([sys.executable, "-m", "headwater.engine", "serve", "--db", db, "--insecure-no-auth",
                                   "--address", f"127.0.0.1:{_free_port()}", "--http-address", f"127.0.0.1:{port}",
                                   "--no-metrics", "--log-level", "warning"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    conn.connect()
                    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as HTTP clients do
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("the server did not start: " + server.stderr.read().decode()[-2000:])
                    time.sleep(0.1)
            _phase(conn, [json.dumps(e).encode() for e in events(20, seed=99)], 20)  # warm-up
            single = events(n, seed=1)
            batched = events(n, seed=2)
            result = {
                "single": _phase(conn, [json.dumps(e).encode() for e in single], n),
                "batched": _phase(conn, [json.dumps(batched[i:i + batch]).encode() for i in range(0, n, batch)], n),
                "single_again_no_write": _phase(conn, [json.dumps(e).encode() for e in single], n),
            }
            conn.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    result["in_process_memory_store"] = _in_process(n, batch)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    results = run(args.events, args.batch)
    report = {"benchmark": "OpenLineage ingestion", "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "events": args.events, "batch": args.batch, "python": platform.python_version(),
              "cpus": os.cpu_count(), "load_average": [load, os.getloadavg()], "results": results}
    print(f"{'path':<28} {'events/s':>10} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    flat = {**{k: v for k, v in results.items() if k != "in_process_memory_store"},
            **{f"in-process {k}": v for k, v in results["in_process_memory_store"].items()}}
    for name, r in flat.items():
        lat = r["latency_ms"]
        print(f"{name:<28} {r['events_per_s']:>10} {lat['p50']:>8} {lat['p95']:>8} {lat['p99']:>8}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
