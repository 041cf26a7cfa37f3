"""Bounded work through gRPC (issue 14): deadlines and cancellation reach the engine, the work limit is
RESOURCE_EXHAUSTED, heavy calls take turns, and SIGTERM stops a server with a call still running cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from headwater.engine import Engine
from headwater.engine.client import Client
from headwater.engine.errors import (
    DeadlineExceededError,
    LimitExceededError,
    MaxDepthExceededError,
    WorkLimitExceededError,
)
from headwater.engine.service.pb import permission_pb2, permission_pb2_grpc
from headwater.engine.service.pb import core_pb2

from .conftest import TOKENS, client_for, write_token_file

SCHEMA = """definition user {}
definition doc {
    relation viewer: user
    relation parent: doc
    permission view = viewer + parent->view
}
"""


def load(client: Client, rels: list[str]) -> None:
    client.write_schema(SCHEMA)
    for i in range(0, len(rels), 50):
        client.touch(*rels[i:i + 50])


def many_docs(n: int) -> list[str]:
    return [f"doc:d{i}#viewer@user:many" for i in range(n)]


def chain(n: int) -> list[str]:
    return [f"doc:c{i}#parent@doc:c{i + 1}" for i in range(n)] + [f"doc:c{n}#viewer@user:end"]


def fill(server, rels: list[str]) -> None:
    """Loaded through the server's own engine (faster than 50-relationship writes over gRPC)."""
    engine = server.servicer.engine
    engine.write_schema(SCHEMA)
    for i in range(0, len(rels), 1000):
        engine.touch(*rels[i:i + 1000])


def test_lookup_over_a_4000_chain_ends_at_once_with_the_max_depth_error(make_server) -> None:
    server = make_server(max_depth=50, max_updates_per_write=1000)
    fill(server, chain(4000))
    with client_for(server, timeout=5) as c:
        started = time.monotonic()
        with pytest.raises(MaxDepthExceededError, match="more than 50 relationships away"):
            c.lookup_resources("doc", "view", "user:end")
        assert time.monotonic() - started < 5  # within the deadline: not a speed target (benchmarks)
        assert c.check("doc:c3990", "view", "user:end").allowed


def test_a_deadline_stops_a_long_lookup_on_the_server(make_server, access_log) -> None:
    server = make_server(max_page_size=1000, max_updates_per_write=1000)
    fill(server, many_docs(30_000))
    with client_for(server, timeout=0.2) as c, pytest.raises(DeadlineExceededError):
        c.lookup_resources("doc", "view", "user:many")
    # The server's handler stops too (it does not run on for the whole lookup): no call is left running.
    assert server.servicer.wait_idle(5) == 0
    records = [r for r in access_log.records if r.get("method", "").endswith("/LookupResources")]
    assert records and records[-1]["status"] == "DEADLINE_EXCEEDED"
    assert records[-1]["duration_ms"] < 5000


def test_a_client_cancelling_a_lookup_frees_the_worker(make_server) -> None:
    server = make_server(max_page_size=1000, max_updates_per_write=1000)
    fill(server, many_docs(30_000))
    channel = grpc.insecure_channel(server.address)
    stub = permission_pb2_grpc.PermissionServiceStub(channel)
    request = permission_pb2.LookupResourcesRequest(
        resource_object_type="doc", permission="view",
        subject=core_pb2.SubjectReference(object=core_pb2.ObjectReference(object_type="user", object_id="many")))
    call = stub.LookupResources(request, metadata=(("authorization", f"Bearer {TOKENS['reader'][0]}"),))
    time.sleep(0.1)
    call.cancel()
    assert server.servicer.wait_idle(5) == 0
    channel.close()


def test_the_work_limit_is_resource_exhausted_naming_the_limit(make_server) -> None:
    server = make_server(max_work_per_request=100, max_depth=200, max_updates_per_write=1000)
    fill(server, chain(150))
    with client_for(server) as c:
        with pytest.raises(WorkLimitExceededError, match="max_work_per_request") as err:
            c.lookup_resources("doc", "view", "user:end")
        assert err.value.code == "RESOURCE_EXHAUSTED"
        with pytest.raises(WorkLimitExceededError):
            c.check("doc:c0", "view", "user:other")
        assert c.check("doc:c149", "view", "user:end").allowed  # a small check is within the limit


def test_heavy_calls_take_turns_and_checks_keep_their_workers(make_server, monkeypatch) -> None:
    """workers=5, heavy_calls=1: one heavy call runs, 5 - 2 reserved - 1 = 2 wait, the next is refused at once;
    a check is served meanwhile. The heavy calls are held open deterministically (a lookup that waits on an event)."""
    server = make_server(workers=5, heavy_calls=1)
    fill(server, chain(3))
    release = threading.Event()
    running = []
    real = server.servicer.engine.lookup_resources

    def held(*args, **kwargs):
        running.append(1)
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(server.servicer.engine, "lookup_resources", held)
    outcomes: list[object] = []

    def lookup() -> None:
        with client_for(server, timeout=10) as c:
            try:
                outcomes.append(len(c.lookup_resources("doc", "view", "user:end").results))
            except Exception as exc:  # noqa: BLE001 - recorded and asserted below
                outcomes.append(exc)

    threads = [threading.Thread(target=lookup) for _ in range(3)]
    for t in threads:
        t.start()
        time.sleep(0.2)  # in order: the first runs, the next two wait
    assert running == [1]
    with client_for(server, timeout=5) as c:
        with pytest.raises(LimitExceededError, match="heavy_calls") as err:
            c.lookup_resources("doc", "view", "user:end")
        assert err.value.code == "RESOURCE_EXHAUSTED"
        assert c.check("doc:c0", "view", "user:end").allowed  # a worker is left for checks
    release.set()
    for t in threads:
        t.join(10)
    assert outcomes == [4, 4, 4]


def test_a_waiting_heavy_call_gives_up_at_its_deadline(make_server, monkeypatch) -> None:
    server = make_server(workers=4, heavy_calls=1)
    fill(server, chain(3))
    release = threading.Event()
    real = server.servicer.engine.lookup_resources
    monkeypatch.setattr(server.servicer.engine, "lookup_resources",
                        lambda *a, **k: release.wait(10) and real(*a, **k))
    holder = threading.Thread(target=lambda: client_for(server, timeout=10).lookup_resources("doc", "view",
                                                                                            "user:end"))
    holder.start()
    time.sleep(0.2)
    with client_for(server, timeout=0.3) as c, pytest.raises(DeadlineExceededError):
        c.lookup_resources("doc", "view", "user:end")
    release.set()
    holder.join(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_with_a_long_call_running_cancels_it_closes_and_exits(tmp_path: Path) -> None:
    """grace 0.5 s; a LookupResources over 60,000 candidates is running (seconds of work). After SIGTERM the
    call is cancelled at the end of the grace period, the store is closed after its handler returned, the
    process exits soon after (grace + 1 s is the target; process start-up and exit are allowed for), nothing
    is logged as a traceback, and the port can be bound again at once."""
    db = tmp_path / "long.db"
    with Engine.open(db) as engine:
        engine.write_schema(SCHEMA)
        rels = many_docs(60_000)
        for i in range(0, len(rels), 1000):
            engine.touch(*rels[i:i + 1000])
    tokens = write_token_file(tmp_path / "tokens.toml")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    proc = subprocess.Popen([sys.executable, "-m", "headwater.engine", "serve", "--address", f"127.0.0.1:{port}",
                             "--db", str(db), "--token-file", str(tokens), "--grace-seconds", "0.5",
                             "--max-page-size", "1000"], env=env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        with Client(f"127.0.0.1:{port}", token=TOKENS["reader"][0], timeout=60) as c:
            c.wait_ready(60)
            outcome: list[object] = []

            def lookup() -> None:
                try:
                    outcome.append(len(c.lookup_resources("doc", "view", "user:many").results))
                except Exception as exc:  # noqa: BLE001 - asserted below
                    outcome.append(exc)

            t = threading.Thread(target=lookup)
            t.start()
            deadline = time.monotonic() + 10
            while not any('"LookupResources"' in line or "draining" in line for line in lines) and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
                if any("/LookupResources" in line for line in lines):
                    break
            time.sleep(0.3)  # the lookup is under way
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            exited_after = time.monotonic() - sent
            t.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    assert proc.returncode == 0
    assert exited_after < 0.5 + 1 + 2, exited_after  # grace + 1 s, plus interpreter exit on a loaded machine
    text = "".join(lines)
    assert "Traceback" not in text and "is closed" not in text, text[-3000:]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    stopped = [r for r in records if r.get("event") == "stopped"]
    assert stopped and stopped[-1]["running"] == 0  # the store was closed after the last handler returned
    lookups = [r for r in records if r.get("method", "").endswith("/LookupResources")]
    assert lookups and lookups[-1]["status"] in ("CANCELLED", "OK"), lookups
    with socket.socket() as s:  # the port is free again (SO_REUSEADDR, as gRPC binds: the client's side of the
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # last connection may be in TIME_WAIT)
        s.bind(("127.0.0.1", port))
        s.listen()
