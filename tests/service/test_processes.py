"""`headwater serve --processes N`: N workers on one port, read-your-writes across them, a dead worker
restarted, SIGTERM drains every worker, no orphan after a SIGKILLed supervisor, and the refusals."""

from __future__ import annotations

import doctest
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from headwater.engine import Engine
from headwater.engine.cli import main
from headwater.engine.client import Client, RemoteError
from headwater.engine.config import Config
from headwater.engine.consistency import Consistency
from headwater.engine.service import supervisor

from .conftest import SCHEMA

Record = dict[str, Any]


@dataclass
class Group:
    """A running `headwater serve --processes 2` and its JSON log lines."""

    proc: subprocess.Popen[str]
    lines: list[str]
    marker: str  # an environment variable only this group's processes carry

    def records(self) -> list[Record]:
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def wait_for(self, what: Callable[[Record], bool], timeout: float = 60) -> Record:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for record in self.records():
                if what(record):
                    return record
            if self.proc.poll() is not None:
                raise AssertionError(f"the supervisor exited with {self.proc.returncode}:\n" + "".join(self.lines))
            time.sleep(0.05)
        raise AssertionError("no such log line:\n" + "".join(self.lines))

    @property
    def address(self) -> str:
        return self.wait_for(lambda r: r.get("event") == "serving")["address"]

    def check_pids(self, since: int) -> set[int]:
        """The pids of the workers that logged a Check among the log lines from index ``since`` on."""
        return {r["pid"] for r in self.records()[since:] if r.get("method", "").endswith("/Check")}

    def processes(self) -> list[int]:
        """Live processes (zombies aside) that carry this group's marker: the supervisor and its workers."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if self.marker.encode() not in (entry / "environ").read_bytes():
                    continue
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                found.append(int(entry.name))
        return found

    def wait_gone(self, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while self.processes() and time.monotonic() < end:
            time.sleep(0.1)
        assert self.processes() == [], "processes left behind:\n" + "".join(self.lines)


def _serve(tmp_path: Path, *extra: str) -> Group:
    schema = tmp_path / "schema.zed"
    schema.write_text(SCHEMA)
    marker = f"HW_PROCESSES_TEST={uuid.uuid4().hex}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env[marker.split("=")[0]] = marker.split("=")[1]
    proc = subprocess.Popen([sys.executable, "-m", "headwater.engine", "serve", "--processes", "2",
                             "--db", str(tmp_path / "p.db"), "--insecure-no-auth", "--address", "127.0.0.1:0",
                             "--schema", str(schema), "--grace-seconds", "2", *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True).start()
    group = Group(proc, lines, marker)
    group.wait_for(lambda r: r.get("event") == "serving")
    return group


def _stop(group: Group) -> None:
    if group.proc.poll() is None:
        group.proc.kill()
        group.proc.wait()
    group.wait_gone()


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Group]:
    running = _serve(tmp_path_factory.mktemp("processes"))
    yield running
    _stop(running)


def _check_on_new_connection(address: str, resource: str, consistency: Consistency | None = None,
                             attempts: int = 3) -> bool:
    """One Check over a connection of its own (a closed channel's connection is not reused)."""
    for attempt in range(attempts):
        try:
            with Client(address, timeout=10) as client:
                return client.check(resource, "view", "user:bob", consistency=consistency).allowed
        except RemoteError as exc:
            if exc.code != "UNAVAILABLE" or attempt == attempts - 1:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def test_the_port_is_logged_once_and_both_workers_answer(group: Group) -> None:
    serving = [r for r in group.records() if r.get("event") == "serving"]
    assert len(serving) == 1
    ready = serving[0]
    assert ready["port"] > 0 and ready["address"] == f"127.0.0.1:{ready['port']}" and ready["processes"] == 2
    workers = [r for r in group.records() if r.get("event") == "worker_serving"]
    assert sorted(r["pid"] for r in workers) == sorted(ready["pids"]) and {r["port"] for r in workers} == {
        ready["port"]}
    since = len(group.lines)
    for _ in range(24):
        assert not _check_on_new_connection(group.address, "document:nothing")
    assert group.check_pids(since) == set(ready["pids"])  # 24 connections on one worker: 1 chance in 8 million


def test_a_write_through_one_worker_is_seen_through_the_others_with_its_token(group: Group) -> None:
    since = len(group.lines)
    # Other channel arguments than the checks' clients: grpc would otherwise share the writer's connection.
    with Client(group.address, timeout=10, max_message_bytes=1 << 21) as writer:
        for i in range(12):
            token = writer.touch(f"document:w{i}#viewer@user:bob").token
            assert _check_on_new_connection(group.address, f"document:w{i}", Consistency.at_least_as_fresh(token))
    records = group.records()[since:]
    writers = {r["pid"] for r in records if r.get("method", "").endswith("RelationshipService/Write")}
    assert len(writers) == 1 and len(group.check_pids(since) - writers) == 1  # read on the other worker too


def test_a_killed_worker_is_restarted_and_the_service_keeps_answering(group: Group) -> None:
    pids = group.wait_for(lambda r: r.get("event") == "serving")["pids"]
    victim = pids[0]
    os.kill(victim, signal.SIGKILL)
    exited = group.wait_for(lambda r: r.get("event") == "worker_exited" and r["pid"] == victim)
    assert exited["code"] == -signal.SIGKILL and exited["restart_in"] > 0
    for i in range(5):  # the other worker answers meanwhile
        assert not _check_on_new_connection(group.address, f"document:gone{i}")
    reborn = group.wait_for(lambda r: r.get("event") == "worker_serving" and r["worker"] == exited["worker"]
                            and r["pid"] != victim)
    assert reborn["port"] == group.wait_for(lambda r: r.get("event") == "serving")["port"]
    since = len(group.lines)
    for _ in range(24):
        assert not _check_on_new_connection(group.address, "document:nothing")
    assert group.check_pids(since) == {reborn["pid"], pids[1]}


def test_sigterm_drains_every_worker_and_exits_0(tmp_path: Path) -> None:
    group = _serve(tmp_path)
    try:
        assert _check_on_new_connection(group.address, "document:none") is False
        assert len(group.processes()) == 3
        group.proc.send_signal(signal.SIGTERM)
        assert group.proc.wait(timeout=30) == 0
        group.wait_gone(timeout=5)
    finally:
        _stop(group)
    events = [(r.get("logger"), r.get("event")) for r in group.records()]
    assert events.count(("headwater.service", "stopped")) == 2
    assert events[-1] == ("headwater.supervisor", "stopped")
    assert group.records()[-1]["codes"] == [0, 0]


def test_the_workers_of_a_killed_supervisor_exit_by_themselves(tmp_path: Path) -> None:
    group = _serve(tmp_path)
    try:
        assert len(group.processes()) == 3
        group.proc.kill()
        group.proc.wait(timeout=10)
        group.wait_gone(timeout=30)  # each drains (grace 2 s) and exits
    finally:
        _stop(group)


def test_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "refused.db"
    assert main(["serve", "--processes", "2", "--db", ":memory:", "--insecure-no-auth"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --processes 2 cannot serve --db :memory:"), err
    assert main(["serve", "--processes", "3", "--db", str(db), "--audit", "--insecure-no-auth"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "audit log" in err and "not designed yet" in err and "--processes 1" in err
    assert not db.exists()  # refused before anything started
    config = tmp_path / "headwater.toml"
    config.write_text('processes = 2\ndb = ":memory:"\n')
    monkeypatch.setenv("HEADWATER_INSECURE_NO_AUTH", "1")
    assert main(["serve", "--config", str(config)]) == 2
    assert "--processes 2 cannot serve" in capsys.readouterr().err
    monkeypatch.setenv("HEADWATER_PROCESSES", "0")
    assert main(["serve", "--db", str(db)]) == 2
    assert "processes must be a positive integer" in capsys.readouterr().err
    with socket.socket() as taken:  # a port something listens on is not joined, even with SO_REUSEPORT
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("HEADWATER_PROCESSES", "2")
        assert main(["serve", "--db", str(db), "--address", f"127.0.0.1:{port}"]) == 2
        assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert not db.exists()


def test_an_audited_database_is_refused_by_the_first_worker(tmp_path: Path) -> None:
    db = tmp_path / "audited.db"
    with Engine.open(db, config=Config.of(audit=True)) as engine:
        engine.write_schema(SCHEMA)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    done = subprocess.run([sys.executable, "-m", "headwater.engine", "serve", "--processes", "2", "--db", str(db),
                           "--insecure-no-auth", "--address", "127.0.0.1:0"], check=False, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "not designed yet" in done.stderr and "--processes 1" in done.stderr
    assert '"event": "serving"' not in done.stderr


def test_docstring_example() -> None:
    result = doctest.testmod(supervisor, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
