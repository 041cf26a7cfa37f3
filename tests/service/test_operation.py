"""Operating a running server (issue 19): UTC log times, one auth-off warning, request ids, the version, and
health readiness distinct from liveness."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from headwater.engine.config import Config
from headwater.engine.errors import ConfigError
from headwater.engine.service.handlers import REQUEST_ID_KEY, VERSION_KEY, request_id
from headwater.engine.service.pb import core_pb2, permission_pb2, permission_pb2_grpc, relationship_pb2, \
    relationship_pb2_grpc
from headwater.engine.service.health import LIVENESS, READINESS
from headwater.engine.service.server import HeadwaterServer, JsonFormatter, configure_logging
from headwater.engine.service.servicer import REQUEST_ID
from headwater.engine.version import commit, describe, version

from .conftest import SCHEMA, TOKENS


def _check(server, metadata=()) -> tuple[permission_pb2.CheckResponse, dict[str, str], grpc.Call]:
    with grpc.insecure_channel(server.address) as channel:
        request = permission_pb2.CheckRequest(permission="view")
        request.resource.object_type, request.resource.object_id = "document", "readme"
        request.subject.object.object_type, request.subject.object.object_id = "user", "ann"
        response, call = permission_pb2_grpc.PermissionServiceStub(channel).Check.with_call(
            request, metadata=(("authorization", f"Bearer {TOKENS['reader'][0]}"), *metadata), timeout=5)
        return response, dict(call.trailing_metadata()), call


# --- logs --------------------------------------------------------------------------------------------------------


def test_log_times_are_utc_with_their_offset() -> None:
    record = logging.LogRecord("headwater.service", logging.INFO, __file__, 1, "hello", None, None)
    line = json.loads(JsonFormatter().format(record))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["ts"])
    assert abs(datetime.fromisoformat(line["ts"]) - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert "request_id" not in line


def test_a_line_written_during_a_call_names_its_request_id() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("headwater")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    configure_logging("info", stream)
    try:
        token = REQUEST_ID.set("req-42")
        try:
            logging.getLogger("headwater.engine").info("inside")
        finally:
            REQUEST_ID.reset(token)
        logging.getLogger("headwater.engine").info("outside")
    finally:
        logger.handlers, logger.propagate = saved[0], saved[2]
        logger.setLevel(saved[1])
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["request_id"] == "req-42" and "request_id" not in outside


def test_authentication_off_is_announced_once_and_loudly(make_server, caplog) -> None:
    with caplog.at_level("WARNING", logger="headwater.service"):
        make_server(insecure_no_auth=True)
    warnings = [r for r in caplog.records if "AUTHENTICATION IS OFF" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
    assert warnings[0].fields["event"] == "insecure_no_auth"  # type: ignore[attr-defined]


# --- request ids -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("given, kept", [
    ("abc-123", True), ("4bf92f3577b34da6a3ce929d0e0e4736", True), ("tenant/a:b.c_d+e=f@g~h", True),
    ("", False), ("x" * 129, False), ("two words", False), ('{"forged": 1}', False), ("é", False),
])
def test_a_sane_incoming_request_id_is_kept_else_one_is_made(given: str, kept: bool) -> None:
    found = request_id([("other", "x"), (REQUEST_ID_KEY, given)])
    assert (found == given) is kept
    if not kept:
        assert re.fullmatch(r"[0-9a-f]{32}", found)


def test_each_call_returns_its_request_id_and_logs_it(server, access_log) -> None:
    _, first, _ = _check(server)
    _, second, _ = _check(server)
    assert re.fullmatch(r"[0-9a-f]{32}", first[REQUEST_ID_KEY]) and first[REQUEST_ID_KEY] != second[REQUEST_ID_KEY]
    _, echoed, _ = _check(server, [(REQUEST_ID_KEY, "gateway-7f3a")])
    assert echoed[REQUEST_ID_KEY] == "gateway-7f3a"
    assert [r["request_id"] for r in access_log.records[-3:]] == [first[REQUEST_ID_KEY], second[REQUEST_ID_KEY],
                                                                  "gateway-7f3a"]
    assert json.loads(access_log.texts[-1])["request_id"] == "gateway-7f3a"


def test_a_failed_call_has_a_request_id_too(server, access_log) -> None:
    with grpc.insecure_channel(server.address) as channel:
        request = permission_pb2.CheckRequest(permission="view")
        with pytest.raises(grpc.RpcError) as info:
            permission_pb2_grpc.PermissionServiceStub(channel).Check(
                request, metadata=((REQUEST_ID_KEY, "no-token-call"),), timeout=5)
    assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
    trailers = dict(info.value.trailing_metadata())
    assert trailers[REQUEST_ID_KEY] == "no-token-call" and trailers["headwater-error"] == "UnauthenticatedError"
    assert access_log.records[-1]["request_id"] == "no-token-call"
    assert access_log.records[-1]["status"] == "UNAUTHENTICATED"


def test_a_stream_ends_with_its_request_id_beside_its_revision(server) -> None:
    with grpc.insecure_channel(server.address) as channel:
        request = relationship_pb2.ReadRequest()
        request.filter.resource_type = "document"
        call = relationship_pb2_grpc.RelationshipServiceStub(channel).Read(
            request, metadata=(("authorization", f"Bearer {TOKENS['reader'][0]}"), (REQUEST_ID_KEY, "stream-1")),
            timeout=5)
        assert list(call)
        trailers = dict(call.trailing_metadata())
    assert trailers[REQUEST_ID_KEY] == "stream-1" and trailers[VERSION_KEY] == version()
    assert trailers["headwater-revision-token"].startswith("hw1_")


# --- the version -------------------------------------------------------------------------------------------------


def test_every_response_names_the_version(server) -> None:
    _, metadata, _ = _check(server)
    assert metadata[VERSION_KEY] == version() != ""


def test_headwater_version_prints_the_package_version() -> None:
    done = subprocess.run([sys.executable, "-m", "headwater.engine", "--version"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0
    assert done.stdout.strip() == describe()
    assert done.stdout.startswith(f"headwater {version()}")
    if commit() is not None:
        assert f"(commit {commit()[:12]})" in done.stdout  # type: ignore[index]


def test_the_commit_is_read_from_the_environment_or_the_checkout(monkeypatch, tmp_path) -> None:
    from headwater.engine import version as module

    sha = "0123456789abcdef0123456789abcdef01234567"
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    assert module._git_head(git) is None  # no such ref yet
    (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{sha} refs/heads/main\n")
    assert module._git_head(git) == sha
    (git / "refs" / "heads" / "main").write_text(sha.replace("0", "f") + "\n")
    assert module._git_head(git) == sha.replace("0", "f")
    (git / "HEAD").write_text(sha + "\n")  # detached
    assert module._git_head(git) == sha
    assert module._git_head(tmp_path / "missing") is None
    module.commit.cache_clear()
    monkeypatch.setenv("HEADWATER_COMMIT", "built-from-ci")
    try:
        assert module.commit() == "built-from-ci"
        assert module.describe().endswith("(commit built-from-c)")  # the first 12 characters
    finally:
        module.commit.cache_clear()


def test_health_checks_name_the_version(server) -> None:
    with grpc.insecure_channel(server.address) as channel:
        _, call = health_pb2_grpc.HealthStub(channel).Check.with_call(health_pb2.HealthCheckRequest(), timeout=5)
    assert dict(call.initial_metadata())[VERSION_KEY] == version()


# --- readiness and liveness --------------------------------------------------------------------------------------

_SERVING, _NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
_PROBES = ("", READINESS, "headwater.v1.PermissionService", "authzed.api.v1.PermissionsService")


def _status(stub: health_pb2_grpc.HealthStub, name: str) -> int:
    return stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status


def test_liveness_serves_at_once_and_readiness_after_the_schema_is_loaded(tmp_path, monkeypatch) -> None:
    loading, release = threading.Event(), threading.Event()
    load = HeadwaterServer._load_schema

    def slow_load(self: HeadwaterServer, path: str) -> None:
        loading.set()
        release.wait(20)
        load(self, path)

    monkeypatch.setattr(HeadwaterServer, "_load_schema", slow_load)
    schema = tmp_path / "schema.zed"
    schema.write_text(SCHEMA)
    server = HeadwaterServer(Config.of(address="127.0.0.1:0", db=str(tmp_path / "hw.db"), insecure_no_auth=True,
                                       schema=str(schema)))
    starting = threading.Thread(target=server.start)
    starting.start()
    try:
        assert loading.wait(20)
        with grpc.insecure_channel(server.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            assert _status(stub, LIVENESS) == _SERVING
            assert {name: _status(stub, name) for name in _PROBES} == dict.fromkeys(_PROBES, _NOT_SERVING)
            with pytest.raises(grpc.RpcError) as info:
                _check(server)
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE and "starting" in info.value.details()
            release.set()
            starting.join(20)
            assert {name: _status(stub, name) for name in (LIVENESS, *_PROBES)} == \
                dict.fromkeys((LIVENESS, *_PROBES), _SERVING)
            assert _check(server)[0].permissionship == core_pb2.PERMISSIONSHIP_NO_PERMISSION
    finally:
        release.set()
        starting.join(20)
        server.stop(grace=0)
    with grpc.insecure_channel(server.address) as channel:  # stopped: nothing answers, liveness included
        with pytest.raises(grpc.RpcError):
            _status(health_pb2_grpc.HealthStub(channel), LIVENESS)


def test_a_start_that_fails_after_listening_stops_listening(tmp_path) -> None:
    schema = tmp_path / "schema.zed"
    schema.write_text("definition user {\n  relation broken: nosuchtype\n}\n")
    server = HeadwaterServer(Config.of(address="127.0.0.1:0", db=str(tmp_path / "hw.db"), insecure_no_auth=True,
                                       schema=str(schema)))
    with pytest.raises(Exception) as info:
        server.start()
    assert not isinstance(info.value, ConfigError) or "schema" in str(info.value)
    assert server.port > 0
    with grpc.insecure_channel(server.address) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            _status(health_pb2_grpc.HealthStub(channel), LIVENESS)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
