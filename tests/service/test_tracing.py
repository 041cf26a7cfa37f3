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


def _ask(port: int, metadata: list[tuple[str, str]], *, spicedb: bool = False) -> Any:
    """Is user:alice allowed to read dataset:claims? (a caveat context and ``metadata`` sent along), through
    ``headwater.v1`` Check, or SpiceDB's CheckPermission."""
    from authzed.api.v1 import PermissionsServiceStub
    from authzed.api.v1 import core_pb2 as az
    from authzed.api.v1 import permission_service_pb2 as azp

    core, make = (az, azp.CheckPermissionRequest) if spicedb else (core_pb2, permission_pb2.CheckRequest)
    context = struct_pb2.Struct()
    context.update({"note": CONTEXT_MARKER})
    request = make(resource=core.ObjectReference(object_type="dataset", object_id="claims"), permission="read",
                   subject=core.SubjectReference(object=core.ObjectReference(object_type="user", object_id="alice")),
                   context=context)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        if spicedb:
            return PermissionsServiceStub(channel).CheckPermission(request, metadata=metadata, timeout=10)
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
            response = _ask(port, metadata)
            spicedb = _ask(port, metadata, spicedb=True)
        assert response.permissionship == 2 and spicedb.permissionship == 2  # has
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
    [authzed] = by_name["authzed.api.v1.PermissionsService/CheckPermission"]  # SpiceDB's API: the same layer
    assert authzed["context"]["trace_id"] == trace_id and authzed["parent_id"] == span_id
    assert authzed["attributes"]["rpc.service"] == "authzed.api.v1.PermissionsService"
    checks = {s["parent_id"]: s for s in by_name["headwater.check"] if s["context"]["trace_id"] == trace_id}
    assert set(checks) == {rpc["context"]["span_id"], authzed["context"]["span_id"]}
    check = checks[rpc["context"]["span_id"]]
    attributes = dict(check["attributes"])
    assert attributes.pop("headwater.depth") >= 1  # dataset#read goes through viewer and the label's clearance
    assert attributes == {"headwater.permission": "read", "headwater.resource_type": "dataset",
                          "headwater.subject_type": "user", "headwater.permissionship": "HAS_PERMISSION"}
    reads = [s for s in by_name["headwater.store.read"] if s["context"]["trace_id"] == trace_id]
    assert {s["parent_id"] for s in reads} == {c["context"]["span_id"] for c in checks.values()}
    assert by_name["headwater.store.write"]  # the bootstrap's relationships (a trace of their own)
    assert any(s["attributes"]["headwater.records"] >= 1 for s in by_name["headwater.audit.write"])
    assert CONTEXT_MARKER not in out and TOKEN_MARKER not in out and "alice" not in out and "claims" not in out
    assert TOKEN_MARKER not in "".join(lines)


def test_off_by_default_nothing_is_exported(tmp_path: Path) -> None:
    proc, _, port = _serve(tmp_path, {})
    try:
        assert _ask(port, []).permissionship == 2
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


def test_an_installed_provider_traces_an_engines_checks_and_a_failed_call() -> None:
    from headwater.engine import Engine, MemoryStore

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        engine = Engine(MemoryStore())  # built after install: its checks are spans
        engine.write_schema("definition user {}\ndefinition doc {\n relation viewer: user\n}")
        engine.touch("doc:d1#viewer@user:ann")
        assert engine.check("doc:d1", "viewer", "user:ann").allowed
        call = tracing.rpc_span("/headwater.v1.PermissionService/Check", [], "req-9")
        with call:
            pass
        call.finish("PERMISSION_DENIED", 7)
    finally:
        tracing.shutdown()
    assert not tracing.enabled()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    check, read = spans["headwater.check"], spans["headwater.store.read"]
    assert read.parent.span_id == check.context.span_id
    assert dict(check.attributes) == {"headwater.permission": "viewer", "headwater.resource_type": "doc",
                                      "headwater.subject_type": "user", "headwater.permissionship": "HAS_PERMISSION",
                                      "headwater.depth": 0}  # answered at the top
    assert spans["headwater.store.write"].attributes["headwater.updates"] == 1
    failed = spans["headwater.v1.PermissionService/Check"]
    assert failed.status.status_code.name == "ERROR" and failed.attributes["rpc.grpc.status_code"] == 7
    assert failed.parent is None  # no traceparent: a trace of its own


def test_the_children_of_a_dropped_trace_are_not_made_and_the_rest_is_traced() -> None:
    """A call whose trace the sampler drops (here a caller's traceparent flagged not sampled, under the SDK's
    default parent-based sampler) gets no child spans at all; the engine outside any call, and a sampled call,
    are traced as before."""
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    from headwater.engine import Engine, MemoryStore

    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(1.0)))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    made: list[str] = []
    original = tracing.tracer.start_as_current_span
    tracing.tracer.start_as_current_span = lambda name, **kw: made.append(name) or original(name, **kw)
    try:
        engine = Engine(MemoryStore())
        engine.write_schema("definition user {}\ndefinition doc {\n relation viewer: user\n}")
        engine.touch("doc:d1#viewer@user:ann")
        exporter.clear()
        made.clear()
        dropped = [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")]
        call = tracing.rpc_span("/headwater.v1.PermissionService/Check", dropped, "req-1")
        with call:
            assert engine.check("doc:d1", "viewer", "user:bob").permissionship.name == "NO_PERMISSION"
        call.finish("OK", 0)
        assert made == [] and exporter.get_finished_spans() == ()  # not even a non-recording child was made
        assert engine.check("doc:d1", "viewer", "user:ann").allowed  # in-process, outside any call
        sampled = [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")]
        call = tracing.rpc_span("/headwater.v1.PermissionService/Check", sampled, "req-2")
        with call:
            assert engine.check("doc:d1", "viewer", "user:cy").permissionship.name == "NO_PERMISSION"
        call.finish("OK", 0)
    finally:
        tracing.shutdown()
    names = [s.name for s in exporter.get_finished_spans()]
    assert names.count("headwater.check") == 2 and "headwater.v1.PermissionService/Check" in names


def test_a_check_span_carries_the_depth_reached_and_long_sub_problems_get_spans(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Nested teams five deep: the check goes 6 sub-problems below the permission (viewer, then the five teams);
    with the span threshold at 0 every sub-problem the evaluator entered is a span under the check (inside its
    snapshot's span), naming no object."""
    from headwater.engine import Engine, MemoryStore

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "SUBPROBLEM_SPAN_NS", 0)
    tracing.install(provider)
    try:
        engine = Engine(MemoryStore())
        engine.write_schema("definition user {}\ndefinition team {\n relation member: user | team#member\n}\n"
                            "definition doc {\n relation viewer: team#member\n permission view = viewer\n}")
        engine.touch("doc:secret#viewer@team:t0#member",
                     *[f"team:t{i}#member@team:t{i + 1}#member" for i in range(4)], "team:t4#member@user:ann")
        assert engine.check("doc:secret", "view", "user:ann").allowed
        assert engine.check("doc:secret", "view", "user:ann").allowed  # the cache answers: depth 0
    finally:
        tracing.shutdown()
    spans = exporter.get_finished_spans()
    checks = [sp for sp in spans if sp.name == "headwater.check"]
    assert [c.attributes["headwater.depth"] for c in checks] == [6, 0]
    subproblems = [sp for sp in spans if sp.name == "headwater.subproblem"]
    assert len(subproblems) >= 6
    reads = {sp.context.span_id for sp in spans if sp.name == "headwater.store.read"
             and sp.parent.span_id == checks[0].context.span_id}
    assert {sp.parent.span_id for sp in subproblems} <= reads  # under the check's snapshot, in the check's trace
    assert {sp.context.trace_id for sp in subproblems} == {checks[0].context.trace_id}
    assert {sp.attributes["headwater.resource_type"] for sp in subproblems} == {"doc", "team"}
    assert not any("secret" in str(dict(sp.attributes)) or "ann" in str(dict(sp.attributes)) for sp in spans)


def test_the_supervisor_refuses_bad_tracing_settings_before_starting_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater.engine.config import Config
    from headwater.engine.service.supervisor import refusal

    config = Config.of(db="headwater.db", processes=2, insecure_no_auth=True)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jaeger")
    assert "OTEL_TRACES_EXPORTER=jaeger: Headwater exports to console, otlp or none" in (refusal(config) or "")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    assert refusal(config) is None
    assert tracing.settings_problem({"OTEL_TRACES_EXPORTER": "none"}) is None
    otlp = tracing.settings_problem({"OTEL_TRACES_EXPORTER": "otlp"})
    assert otlp is None or "pip install 'headwater[otlp]'" in otlp  # the extra may or may not be installed


def test_otlp_exports_a_checks_spans_to_a_collector() -> None:
    """OTEL_TRACES_EXPORTER=otlp (over HTTP, the `otlp` extra) posts the spans to OTEL_EXPORTER_OTLP_ENDPOINT: a
    collector stand-in here receives them and decodes the protobuf."""
    import http.server
    import threading

    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    from headwater.engine import Engine, MemoryStore

    received: list[bytes] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the handler's name is http.server's
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.path == "/v1/traces" and self.headers["Content-Type"] == "application/x-protobuf"
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    collector = http.server.HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    try:
        assert tracing.configure({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "hw-otlp",
                                  "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_port}"})
        try:
            engine = Engine(MemoryStore())
            engine.write_schema("definition user {}\ndefinition doc {\n relation viewer: user\n}")
            engine.touch("doc:d1#viewer@user:ann")
            assert engine.check("doc:d1", "viewer", "user:ann").allowed
        finally:
            tracing.shutdown()  # flushes the batch to the collector
    finally:
        collector.shutdown()
    names, services = set(), set()
    for body in received:
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            services |= {a.value.string_value for a in resource_spans.resource.attributes
                         if a.key == "service.name"}
            names |= {span.name for scope in resource_spans.scope_spans for span in scope.spans}
    assert services == {"hw-otlp"}
    assert {"headwater.check", "headwater.store.read", "headwater.store.write"} <= names
