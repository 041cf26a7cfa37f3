"""What tracing costs a warm gRPC check: the same server with tracing off and on (console exporter to /dev/null, and
OTLP over HTTP to a local collector stand-in).

    python -m benchmarks.bench_tracing [--checks 3000] [--rounds 6] [--json benchmarks/results/tracing.json]

Starts five ``headwater serve`` processes (SQLite, no auth, 127.0.0.1, free ports)
on the same data: one without ``OTEL_*`` (off), one with
``OTEL_TRACES_EXPORTER=console`` and its stdout to /dev/null (on: every call a server
span and a ``headwater.check`` span, batched and written as JSON), one exporting them
with OTLP over HTTP (protobuf, batched) to a stand-in collector in this process, one
sampling 1% of traces, and a second off
one (the noise between processes). Rounds alternate between them and time ``Check``
of a direct grant answered from the server's cache, each call with a W3C
``traceparent`` (as a traced client sends). It also times, in this process, the
helpers themselves: :func:`~headwater.engine.tracing.span` off (the no-op) and one
RPC span with a check span inside on. Target (issue 19): at most 5% on, nothing
measurable off.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc

from headwater.engine import tracing
from headwater.engine.client import Client
from headwater.engine.service.pb import core_pb2, permission_pb2, permission_pb2_grpc

from .bench_metrics import _free_port as free_port
from .bench_metrics import _summary as summary

POLICY = Path(__file__).resolve().parents[1] / "examples" / "ai-lineage" / "policy.zed"
#: The servers compared: their OTEL_* variables.
SERVERS = {"off": {}, "on": {"OTEL_TRACES_EXPORTER": "console"},
           "otlp": {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:{sink}"},
           "sampled_1pct": {"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "traceidratio",
                            "OTEL_TRACES_SAMPLER_ARG": "0.01"},
           "off_again": {}}
TRACEPARENT = ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")


class _Sink(ThreadingHTTPServer):
    """An OTLP/HTTP collector stand-in on a free port: takes every export (counted in bytes) and answers 200."""

    def __init__(self) -> None:
        received = self.received = [0]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                received[0] += len(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


def _start(tmp: Path, name: str, traced: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    args = [sys.executable, "-m", "headwater.engine", "serve", "--db", str(tmp / f"{name}.db"), "--schema",
            str(POLICY), "--insecure-no-auth", "--address", f"127.0.0.1:{port}", "--log-level", "warning"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(traced)
    log = open(tmp / f"{name}.log", "w")
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, env=env), port


def _cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) process ``pid`` has used, from /proc (Linux): less sensitive than latency to
    what else the machine runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def helper_costs(n: int = 100_000) -> dict[str, float]:
    """In this process: ns per ``with tracing.span(...)`` when off; µs per RPC span holding a check span when on,
    exported synchronously to an exporter that drops them (the SDK's own cost) and as console JSON (the exporter's
    cost too)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    assert not tracing.enabled()
    t = time.perf_counter()
    for _ in range(n):
        with tracing.span("headwater.store.read"):
            pass
    out = {"span_off_ns": round((time.perf_counter() - t) / n * 1e9, 1)}
    for name, exporter in (("drop", Drop()), ("console", ConsoleSpanExporter(out=io.StringIO()))):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracing.install(provider)
        try:
            m = n // 20
            t = time.perf_counter()
            for _ in range(m):
                call = tracing.rpc_span("/headwater.v1.PermissionService/Check", [TRACEPARENT], "req")
                with call, tracing.span("headwater.check", {"headwater.permission": "read"}):
                    pass
                call.finish("OK", 0)
            out[f"rpc_and_check_span_{name}_us"] = round((time.perf_counter() - t) / m * 1e6, 2)
        finally:
            tracing.shutdown()
    return out


def run(n: int, rounds: int) -> dict[str, Any]:
    names = tuple(SERVERS)
    sink = _Sink()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        procs = {name: _start(tmp, name, {k: v.format(sink=sink.server_port) for k, v in SERVERS[name].items()})
                 for name in names}
        timings: dict[str, list[float]] = {name: [] for name in procs}
        try:
            clients = {}
            for name, (_, port) in procs.items():
                client = clients[name] = Client(f"127.0.0.1:{port}")
                client.wait_ready(30)
                client.touch(*[f"dataset:d{i}#viewer@user:u{i}" for i in range(200)])
            channels = [grpc.insecure_channel(f"127.0.0.1:{port}") for _, port in procs.values()]
            stubs = {name: permission_pb2_grpc.PermissionServiceStub(channel)  # a raw stub: metadata=
                     for name, channel in zip(procs, channels)}

            def request(i: int) -> Any:
                return permission_pb2.CheckRequest(
                    resource=core_pb2.ObjectReference(object_type="dataset", object_id=f"d{i % 200}"),
                    permission="read",
                    subject=core_pb2.SubjectReference(object=core_pb2.ObjectReference(object_type="user",
                                                                                       object_id=f"u{i % 200}")))
            for name, stub in stubs.items():
                for i in range(600):  # warm the cache and the channel
                    stub.Check(request(i), metadata=[TRACEPARENT], timeout=10)
            per_round = max(1, n // rounds)
            cpu = {name: 0.0 for name in names}
            for r in range(rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    stub = stubs[name]
                    before = _cpu_seconds(procs[name][0].pid)
                    for i in range(per_round):
                        req = request(i)
                        t = time.perf_counter()
                        answer = stub.Check(req, metadata=[TRACEPARENT], timeout=10)
                        timings[name].append((time.perf_counter() - t) * 1e6)
                        assert answer.permissionship == 2
                    cpu[name] += _cpu_seconds(procs[name][0].pid) - before
            for closing in (*clients.values(), *channels):
                closing.close()
        finally:
            for proc, _ in procs.values():
                proc.terminate()
                proc.wait(timeout=30)
            sink.shutdown()
    assert sink.received[0] > 0, "the OTLP server exported nothing"
    summaries = {name: {**summary(us), "server_cpu_us": round(cpu[name] / len(us) * 1e6, 1)}
                 for name, us in timings.items()}
    off = summaries["off"]
    return {"benchmark": "tracing", "checks_per_server": len(timings["on"]), "rounds": rounds, **summaries,
            "otlp_bytes_received": sink.received[0],
            **{f"overhead_{name}_p50_pct": round((summaries[name]["p50_us"] / off["p50_us"] - 1) * 100, 1)
               for name in names if name != "off"},
            **{f"overhead_{name}_mean_pct": round((summaries[name]["mean_us"] / off["mean_us"] - 1) * 100, 1)
               for name in names if name != "off"},
            # CPU time is counted in clock ticks (10 ms): a short run may see none (then no ratio)
            **{f"overhead_{name}_server_cpu_pct": (round((summaries[name]["server_cpu_us"] / off["server_cpu_us"] - 1)
                                                         * 100, 1) if off["server_cpu_us"] else None)
               for name in names if name != "off"},
            **helper_costs(),
            "machine": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpus": os.cpu_count()}}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checks", type=int, default=3000, help="checks per server")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    r = run(args.checks, args.rounds)
    print(f"warm gRPC Check with a traceparent, {r['checks_per_server']} per server in {r['rounds']} rounds:")
    for name in SERVERS:
        p, more = r[name], ""
        if name != "off":
            more = f"  (p50 {r[f'overhead_{name}_p50_pct']:+}%, mean {r[f'overhead_{name}_mean_pct']:+}%)"
        if name != "off":
            cpu = r[f"overhead_{name}_server_cpu_pct"]
            more += f"; server CPU {cpu:+}%" if cpu is not None else "; server CPU too short to count"
        print(f"  tracing {name:<12} p50 {p['p50_us']} µs  p99 {p['p99_us']} µs  mean {p['mean_us']} µs  "
              f"server CPU {p['server_cpu_us']} µs a call{more}")
    print(f"  in process: span() off {r['span_off_ns']} ns; an RPC span holding a check span, on: "
          f"{r['rpc_and_check_span_drop_us']} µs (spans dropped), {r['rpc_and_check_span_console_us']} µs "
          "(console JSON)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    main()
