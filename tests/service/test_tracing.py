"""OpenTelemetry tracing (engine/tracing.py, docs/operations.md#tracing): a served check's spans, exported by the
console exporter, sit under the client's trace; nothing is traced, or imported, when tracing is off."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from headwater.engine import tracing
from headwater.engine.errors import ConfigError
from headwater.engine.service.pb import core_pb2, permission_pb2, permission_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
BOOTSTRAP = REPO / "examples" / "ai-lineage" / "validation.yaml"
CONTEXT_MARKER = "caveat-context-marker-7f31"
TOKEN_MARKER = "bearer-token-marker-c0de"


def _serve(tmp_path: Path, env_extra: dict[str, str]) -> tuple[subprocess.Popen[str], list[str], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEADWATER_", "OTEL_"))}
    env.update(env_extra)
    proc = subprocess.Popen([sys.executable, "-m", "headwater.engine", "serve", "--address", "127.0.0.1:0",
                             "--db", str(tmp_path / "traced.db"), "--bootstrap", str(BOOTSTRAP), "--audit",
                             "--insecure-no-auth"],
                            env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in list(lines):
            if line.startswith("{") and json.loads(line).get("event") == "serving":
                return proc, lines, json.loads(line)["port"]
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"the server did not start: {''.join(lines)}")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    return out


def _spans(text: str) -> list[dict[str, Any]]:
    """The console exporter's spans: JSON objects one after another."""
    decoder, spans, i = json.JSONDecoder(), [], 0
    while True:
        i = text.find("{", i)
        if i < 0:
            return spans
        span, i = decoder.raw_decode(text, i)
        spans.append(span)


def _check(port: int, metadata: list[tuple[str, str]]) -> permission_pb2.CheckResponse:
    context = struct_pb2.Struct()
    context.update({"note": CONTEXT_MARKER})
    request = permission_pb2.CheckRequest(
        resource=core_pb2.ObjectReference(object_type="dataset", object_id="claims"), permission="read",
        subject=core_pb2.SubjectReference(object=core_pb2.ObjectReference(object_type="user", object_id="alice")),
        context=context)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return permission_pb2_grpc.PermissionServiceStub(channel).Check(request, metadata=metadata, timeout=10)


def test_a_checks_spans_sit_under_the_clients_trace(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    proc, lines, port = _serve(tmp_path, {"OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "hw-test"})
    try:
        with provider.get_tracer("test").start_as_current_span("client-call") as client:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            metadata = [*carrier.items(), ("authorization", f"Bearer {TOKEN_MARKER}"), ("x-request-id", "trace-req-1")]
            response = _check(port, metadata)
        assert response.permissionship == 2  # has
        out = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ours = client.get_span_context()
    trace_id, span_id = f"0x{ours.trace_id:032x}", f"0x{ours.span_id:016x}"
    spans = _spans(out)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        by_name.setdefault(s["name"], []).append(s)
    [rpc] = by_name["headwater.v1.PermissionService/Check"]
    assert rpc["context"]["trace_id"] == trace_id and rpc["parent_id"] == span_id and rpc["kind"] == "SpanKind.SERVER"
    assert rpc["attributes"] == {"rpc.system": "grpc", "rpc.service": "headwater.v1.PermissionService",
                                 "rpc.method": "Check", "headwater.request_id": "trace-req-1",
                                 "rpc.grpc.status_code": 0}
    assert rpc["resource"]["attributes"]["service.name"] == "hw-test"
    [check] = [s for s in by_name["headwater.check"] if s["context"]["trace_id"] == trace_id]
    assert check["parent_id"] == rpc["context"]["span_id"]
    assert check["attributes"] == {"headwater.permission": "read", "headwater.resource_type": "dataset",
                                   "headwater.subject_type": "user", "headwater.permissionship": "HAS_PERMISSION"}
    reads = [s for s in by_name["headwater.store.read"] if s["context"]["trace_id"] == trace_id]
    assert reads and all(s["parent_id"] == check["context"]["span_id"] for s in reads)
    assert by_name["headwater.store.write"]  # the bootstrap's relationships (a trace of their own)
    assert any(s["attributes"]["headwater.records"] >= 1 for s in by_name["headwater.audit.write"])
    assert CONTEXT_MARKER not in out and TOKEN_MARKER not in out and "alice" not in out and "claims" not in out
    assert TOKEN_MARKER not in "".join(lines)


def test_off_by_default_nothing_is_exported(tmp_path: Path) -> None:
    proc, _, port = _serve(tmp_path, {})
    try:
        assert _check(port, []).permissionship == 2
        out = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out == ""


def test_the_client_and_an_engine_do_not_import_opentelemetry() -> None:
    code = ("import sys, headwater.client, headwater.engine\n"
            "from headwater.engine import Engine, MemoryStore\n"
            "e = Engine(MemoryStore()); e.write_schema('definition user {}')\n"
            "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_configure_reads_the_exporter_variable() -> None:
    assert tracing.configure({}) is False and tracing.configure({"OTEL_TRACES_EXPORTER": "none"}) is False
    assert not tracing.enabled() and tracing.span("x") is tracing.NOOP and tracing.rpc_span("/a.B/C", [], "r") is None
    with pytest.raises(ConfigError, match="console, otlp or none"):
        tracing.configure({"OTEL_TRACES_EXPORTER": "jaeger"})


def test_docstring_example() -> None:
    import doctest
    result = doctest.testmod(tracing)
    assert result.attempted > 0 and result.failed == 0
