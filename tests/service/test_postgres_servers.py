"""Many stateless servers over one PostgreSQL database, and what a server's death or the database's may not lose.

Real ``headwater serve`` processes (``python -m headwater.engine serve``) over a
throw-away database (``pg_server`` in tests/conftest.py), spoken to through the
Python client (issue 16):

- read-your-writes across servers with consistency tokens, ``fully_consistent``,
  Watch on one server seeing another's writes, concurrent writers that cannot
  close a lineage cycle between them;
- SIGKILL of a server in the middle of writes, at 50 random moments: no
  acknowledged write is lost and no batch is applied in part;
- the database going away (every connection terminated, new ones refused) while
  serving: calls fail with UNAVAILABLE, and the server recovers by itself.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from headwater.engine import Consistency
from headwater.client import NO_RETRY
from headwater.engine.client import Client, RemoteError
from headwater.engine.errors import LineageCycleError, StoreUnavailableError
from headwater.engine.store import RelationshipFilter

from .conftest import SCHEMA


class Server:
    """One ``headwater serve`` subprocess; its stderr lines are kept (JSON log records)."""

    def __init__(self, db: str, *extra: str, **settings: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
        env.update(HEADWATER_GRACE_SECONDS="2", HEADWATER_WATCH_POLL_SECONDS="0.05")
        env.update({f"HEADWATER_{name.upper()}": value for name, value in settings.items()})
        self.proc = subprocess.Popen([sys.executable, "-m", "headwater.engine", "serve", "--address", "127.0.0.1:0",
                                      "--db", db, "--insecure-no-auth", *extra], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stderr.readline, "")),
                                        daemon=True)
        self._reader.start()
        self.address = f"127.0.0.1:{self._serving()['port']}"

    def _serving(self, timeout: float = 60) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in list(self.lines):
                if line.startswith("{") and json.loads(line).get("event") == "serving":
                    return json.loads(line)
            if self.proc.poll() is not None:
                raise AssertionError(f"headwater serve exited with {self.proc.returncode}:\n" + "".join(self.lines))
            time.sleep(0.02)
        raise AssertionError("headwater serve did not report serving:\n" + "".join(self.lines))

    def client(self, **kwargs) -> Client:
        return Client(self.address, timeout=kwargs.pop("timeout", 10), **kwargs)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self._reader.join(5)
        return self.proc.returncode


@pytest.fixture
def database(pg_server) -> str:
    """A new database, migrated, with the test schema."""
    from headwater.engine import Engine

    uri = pg_server.database()
    Engine.migrate(uri)
    with Engine.open(uri) as engine:
        engine.write_schema(SCHEMA)
    return uri


@pytest.fixture
def two_servers(database: str) -> Iterator[tuple[Server, Server]]:
    a = Server(database)
    try:
        b = Server(database)
    except BaseException:
        a.stop()
        raise
    yield a, b
    assert a.stop() == 0
    assert b.stop() == 0


def test_a_write_through_one_server_is_read_through_the_other_with_its_token(two_servers) -> None:
    a, b = two_servers
    with a.client() as ca, b.client() as cb:
        assert not cb.check("document:d0", "view", "user:ann").allowed  # B has now cached its view
        for n in range(25):
            token = ca.touch(f"document:d{n}#viewer@user:ann").token
            assert cb.check(f"document:d{n}", "view", "user:ann",
                            consistency=Consistency.at_least_as_fresh(token)).allowed
            token = ca.touch(f"document:d{n}#banned@user:ann").token
            assert not cb.check(f"document:d{n}", "view", "user:ann",
                                consistency=Consistency.at_least_as_fresh(token)).allowed
            assert not cb.check(f"document:d{n}", "view", "user:ann",
                                consistency=Consistency.fully_consistent()).allowed
        # Either server can be asked at the other's exact snapshot.
        token = cb.touch("document:x#viewer@user:zed").token
        assert ca.check("document:x", "view", "user:zed", consistency=Consistency.at_exact_snapshot(token)).allowed


def test_watch_on_one_server_sees_the_writes_made_through_the_other(two_servers) -> None:
    a, b = two_servers
    with a.client() as ca, b.client() as cb:
        start = ca.touch("group:eng#member@user:ann").token
        seen: list[str] = []

        def follow() -> None:
            for event in cb.follow(start, timeout=20):
                seen.append(f"{event.operation.value} {event.relationship}")
                if len(seen) == 3:
                    return
        thread = threading.Thread(target=follow)
        thread.start()
        time.sleep(0.2)
        ca.touch("group:eng#member@user:bob")
        ca.remove("group:eng#member@user:ann")
        cb.touch("group:eng#member@user:cat")
        thread.join(30)
    assert seen == ["touch group:eng#member@user:bob", "delete group:eng#member@user:ann",
                    "touch group:eng#member@user:cat"]


def test_two_servers_cannot_close_a_lineage_cycle_between_them(two_servers) -> None:
    a, b = two_servers
    with a.client() as ca, b.client() as cb:
        for n in range(20):
            barrier = threading.Barrier(2)
            outcomes: list[object] = [None, None]

            def write(i: int, client: Client, text: str) -> None:
                barrier.wait()
                try:
                    client.touch(text)
                except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
                    outcomes[i] = exc
            threads = [threading.Thread(target=write, args=(0, ca, f"document:x{n}#derived_from@document:y{n}")),
                       threading.Thread(target=write, args=(1, cb, f"document:y{n}#derived_from@document:x{n}"))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            refused = [o for o in outcomes if o is not None]
            assert len(refused) == 1 and isinstance(refused[0], LineageCycleError), outcomes


@pytest.mark.slow
def test_sigkill_during_writes_loses_no_acknowledged_write_and_applies_no_batch_in_part(database: str) -> None:
    """50 random kill points; each batch writes 5 relationships of one object, so a batch is whole or absent."""
    rng = random.Random(int(os.environ.get("HEADWATER_KILL_SEED", "16")))
    acknowledged: set[int] = set()
    attempted: set[int] = set()
    batch = 0
    server = Server(database)
    try:
        for _ in range(50):
            stop_at = time.monotonic() + rng.uniform(0.02, 0.4)
            killer = threading.Timer(max(0.0, stop_at - time.monotonic()), server.kill)
            killer.start()
            # no client retries: the test is about what a killed server committed, not about riding it out
            with server.client(timeout=5, retry=NO_RETRY) as client:
                while True:
                    batch += 1
                    attempted.add(batch)
                    try:
                        client.touch(*(f"document:b{batch}#viewer@user:u{k}" for k in range(5)))
                    except (RemoteError, StoreUnavailableError):
                        break  # the server died under this call: it may or may not have committed
                    acknowledged.add(batch)
            killer.join()
            server.stop()
            server = Server(database)
        with server.client() as client:
            found: dict[int, int] = {}
            cursor = None
            while True:
                page = client.read_relationships(RelationshipFilter(resource_type="document"), cursor=cursor,
                                                 consistency=Consistency.fully_consistent())
                for rel in page.relationships:
                    number = str(rel.resource.id)
                    if number.startswith("b"):
                        found[int(number[1:])] = found.get(int(number[1:]), 0) + 1
                if page.cursor is None:
                    break
                cursor = page.cursor
    finally:
        server.stop()
    assert len(acknowledged) >= 50, "too few writes were acknowledged to prove anything"
    assert acknowledged <= set(found), sorted(acknowledged - set(found))[:10]
    assert all(count == 5 for count in found.values()), {b: c for b, c in found.items() if c != 5}
    assert set(found) <= attempted


class _Proxy:
    """A TCP proxy in front of PostgreSQL that can be cut (every connection dropped, new ones refused) and
    restored: the database going away and coming back, as the server sees it, without restarting the
    machine's PostgreSQL under other tests."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.connections: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.connections += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.up.clear()
        with self.lock:
            for s in self.connections:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.connections.clear()

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


def test_the_database_going_away_is_unavailable_and_the_server_recovers_by_itself(database: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(database)
    proxy = _Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    through = database.replace(parts.netloc, f"{parts.netloc.split('@')[0] + '@' if '@' in parts.netloc else ''}"
                                             f"127.0.0.1:{proxy.port}")
    server = Server(through, pool_timeout="2")
    try:
        with server.client(timeout=10) as client:
            token = client.touch("document:up#viewer@user:ann").token
            assert client.check("document:up", "view", "user:ann",
                                consistency=Consistency.at_least_as_fresh(token)).allowed
            proxy.cut()
            for attempt in range(3):
                # UNAVAILABLE, with the store's error class named (the client raises StoreUnavailableError)
                with pytest.raises(StoreUnavailableError, match="is unavailable"):
                    client.check("document:up", "view", "user:bob", consistency=Consistency.fully_consistent())
                with pytest.raises(StoreUnavailableError, match="is unavailable"):
                    client.touch(f"document:down{attempt}#viewer@user:ann")
            proxy.restore()
            deadline = time.monotonic() + 30
            while True:  # the pool replaces its broken connections by itself
                try:
                    token = client.touch("document:back#viewer@user:ann").token
                    break
                except StoreUnavailableError:
                    assert time.monotonic() < deadline, "the server did not recover within 30 s"
                    time.sleep(0.2)
            assert client.check("document:back", "view", "user:ann",
                                consistency=Consistency.at_least_as_fresh(token)).allowed
        text = "".join(server.lines)
        assert "Traceback" not in text and "INTERNAL" not in text
    finally:
        server.stop()
        proxy.close()


def test_terminated_database_connections_are_replaced_without_a_restart(database: str) -> None:
    server = Server(database)
    try:
        with server.client() as client:
            client.touch("document:t#viewer@user:ann")
            with psycopg.connect(database, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            outcomes = []
            for _ in range(5):
                try:
                    outcomes.append(client.check("document:t", "view", "user:ann",
                                                 consistency=Consistency.fully_consistent()).allowed)
                except StoreUnavailableError:
                    outcomes.append("UNAVAILABLE")
            assert outcomes[-1] is True and set(outcomes) <= {True, "UNAVAILABLE"}, outcomes
    finally:
        assert server.stop() == 0


def test_a_password_never_reaches_the_server_log(pg_server) -> None:
    from urllib.parse import urlsplit

    uri = pg_server.database()
    from headwater.engine import Engine

    Engine.migrate(uri)
    parts = urlsplit(uri)
    secret = "pa55-w0rd-not-logged"
    with_password = uri.replace(f"//{parts.netloc}", f"//root:{secret}@{parts.netloc}")
    server = Server(with_password, "--audit")
    try:
        with server.client() as client:
            client.write_schema(SCHEMA)
            client.touch("document:p#viewer@user:ann")
    finally:
        server.stop()
    text = "".join(server.lines)
    assert secret not in text and "root:***@" in text
    serving = next(json.loads(line) for line in server.lines if '"serving"' in line)
    assert serving["audit"] is True and serving["audit_log"].startswith("the audit log at postgresql://root:***@")


def test_serve_refuses_an_unmigrated_database_naming_the_command(pg_server) -> None:
    uri = pg_server.database()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    done = subprocess.run([sys.executable, "-m", "headwater.engine", "serve", "--address", "127.0.0.1:0", "--db", uri,
                           "--insecure-no-auth"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert f"it is not migrated; run `headwater migrate --db {uri}` first" in done.stderr
    assert "Traceback" not in done.stderr
