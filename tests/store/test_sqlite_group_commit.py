"""Group commit on SQLite: concurrent writes wait in line and share transactions, and stay correct.

What must hold (engine/sqlitedb.py ``SqliteFile.write``, engine/store/sqlite.py): every
acknowledged write is committed (another connection sees it) and readable at its own
revision; revisions are distinct and strictly increasing; a batch that fails (a
precondition, a CREATE conflict, a validation error, a driver error) fails alone while
the batches sharing its transaction are written; a transaction that fails as a whole
writes nothing and fails every caller; and several processes can still write one file.
"""

from __future__ import annotations

import contextvars
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from contract import read_all, touch
from contract.support import create

from headwater.engine.errors import (AlreadyExistsError, InvalidRequestError, PreconditionFailedError, StoreError,
                                     StoreUnavailableError)
from headwater.engine.sqlitedb import Connection, SqliteFile
from headwater.engine.store import Precondition, Reader, RelationshipFilter, Update
from headwater.engine.store.sqlite import SqliteStore

JOIN = 60  # seconds a test waits for its threads at most


def _in_line(file: SqliteFile, n: int) -> None:
    """Wait until ``n`` pieces of work wait in ``file``'s line."""
    deadline = time.monotonic() + JOIN
    while len(file._line) < n:
        assert time.monotonic() < deadline, f"{len(file._line)} pieces in line, expected {n}"
        time.sleep(0.001)


class _Blocker:
    """A validate hook that holds the write transaction until released (so that others queue behind it)."""

    def __init__(self) -> None:
        self.holding, self.release = threading.Event(), threading.Event()

    def __call__(self, reader: Reader, updates: Sequence[Update]) -> None:
        self.holding.set()
        assert self.release.wait(timeout=JOIN)


class _Writes:
    """Threads that each make one call, started in order, with their outcomes (a result or an exception)."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.outcomes: dict[str, object] = {}

    def start(self, name: str, call: Callable[[], object]) -> None:
        def run() -> None:
            try:
                self.outcomes[name] = call()
            except Exception as exc:
                self.outcomes[name] = exc

        thread = threading.Thread(target=run, name=name)
        self.threads.append(thread)
        thread.start()

    def join(self) -> dict[str, object]:
        for thread in self.threads:
            thread.join(timeout=JOIN)
        assert not any(thread.is_alive() for thread in self.threads)
        return self.outcomes


def _group_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the size of every group committed from now on."""
    sizes: list[int] = []
    run_group = SqliteFile._run_group

    def recording(self: SqliteFile, db: Connection, group: list) -> None:  # type: ignore[type-arg]
        sizes.append(len(group))
        run_group(self, db, group)

    monkeypatch.setattr(SqliteFile, "_run_group", recording)
    return sizes


def test_concurrent_writers_each_get_a_revision_of_their_own_readable_once_acknowledged(tmp_path: Path,
                                                                                         monkeypatch: pytest.MonkeyPatch
                                                                                         ) -> None:
    threads, writes_each = 16, 25
    sizes = _group_sizes(monkeypatch)
    acknowledged: list[tuple[int, str]] = []
    failures: list[str] = []
    lock = threading.Lock()
    with SqliteStore(tmp_path / "h.db") as store, SqliteStore(tmp_path / "h.db") as other:

        def writer(t: int) -> None:
            try:
                for i in range(writes_each):
                    text = f"doc:{t}-{i}#viewer@user:u{t}"
                    revision = store.write([touch(text)])
                    if other.head() < revision:  # committed: another connection sees it at once
                        failures.append(f"{text} acknowledged at {revision}, other connection sees {other.head()}")
                    with lock:
                        acknowledged.append((revision, text))
            except Exception as exc:  # pragma: no cover - reported below
                failures.append(repr(exc))

        workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=JOIN)
        assert not any(w.is_alive() for w in workers)
        assert failures == []
        revisions = sorted(r for r, _ in acknowledged)
        assert revisions == list(range(1, threads * writes_each + 1))  # distinct, none lost, none skipped
        assert store.head() == threads * writes_each
        for revision, text in acknowledged:  # each write is readable at its own revision, not before
            assert text in read_all(store, revision)
            assert text not in read_all(store, revision - 1)
            assert [str(c.relationship) for c in store.changes(revision - 1, limit=1)] == [text]
    assert sum(sizes) == threads * writes_each
    assert max(sizes) > 1  # writers did share transactions


def test_a_failing_batch_fails_alone_and_the_others_of_its_transaction_are_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _group_sizes(monkeypatch)
    with SqliteStore(tmp_path / "h.db") as store:
        store.write([touch("doc:exists#viewer@user:tom")])  # revision 1
        file = store.backend.file
        blocker = _Blocker()
        writes = _Writes()
        writes.start("first", lambda: store.write([touch("doc:1#viewer@user:a")], validate=blocker))
        assert blocker.holding.wait(timeout=JOIN)  # "first" holds the transaction; the rest queue behind it

        def refuse(reader: Reader, updates: Sequence[Update]) -> None:
            raise InvalidRequestError("refused by validation")

        queued: list[tuple[str, Callable[[], object]]] = [
            ("good", lambda: store.write([touch("doc:2#viewer@user:b")])),
            ("precondition", lambda: store.write(
                [touch("doc:3#viewer@user:c")],
                [Precondition(RelationshipFilter(resource_type="doc", resource_id="nope"), must_match=True)])),
            ("conflict", lambda: store.write([create("doc:exists#viewer@user:tom"), touch("doc:4#viewer@user:d")])),
            ("validation", lambda: store.write([touch("doc:5#viewer@user:e")], validate=refuse)),
            ("sees_good", lambda: store.write([create("doc:2#viewer@user:b")])),  # "good" is before it
            ("last", lambda: store.write([touch("doc:6#viewer@user:f")])),
        ]
        for n, (name, call) in enumerate(queued, start=1):
            writes.start(name, call)
            _in_line(file, n)  # in this order
        blocker.release.set()
        outcomes = writes.join()
        assert outcomes["first"] == 2
        assert outcomes["good"] == 3
        assert isinstance(outcomes["precondition"], PreconditionFailedError)
        assert isinstance(outcomes["conflict"], AlreadyExistsError)
        assert isinstance(outcomes["validation"], InvalidRequestError)
        assert isinstance(outcomes["sees_good"], AlreadyExistsError)
        assert outcomes["last"] == 4
        assert store.head() == 4
        assert read_all(store) == ["doc:1#viewer@user:a", "doc:2#viewer@user:b", "doc:6#viewer@user:f",
                                   "doc:exists#viewer@user:tom"]
        assert read_all(store, 3) == ["doc:1#viewer@user:a", "doc:2#viewer@user:b", "doc:exists#viewer@user:tom"]
    assert sizes[-2:] == [1, len(queued)]  # "first" alone, then everything that queued behind it, together


def test_a_driver_error_in_one_piece_fails_that_piece_only(tmp_path: Path) -> None:
    file = SqliteFile(tmp_path / "n.db", name="the notes file")
    with file.connection() as db:
        db.execute("CREATE TABLE notes (text TEXT NOT NULL UNIQUE)")
    blocker = threading.Event()
    writes = _Writes()

    def add(text: str | None) -> Callable[[], object]:
        return lambda: file.write(lambda db: db.execute("INSERT INTO notes VALUES (?)", [text]).rowcount, "add")

    writes.start("hold", lambda: file.write(lambda db: blocker.wait(JOIN), "hold"))
    _in_line(file, 0)
    time.sleep(0.05)  # "hold" is committing (its group was taken out of the line)
    for n, (name, text) in enumerate([("a", "a"), ("null", None), ("again", "a"), ("b", "b")], start=1):
        writes.start(name, add(text))
        _in_line(file, n)
    blocker.set()
    outcomes = writes.join()
    assert outcomes["a"] == 1 and outcomes["b"] == 1
    assert isinstance(outcomes["null"], StoreError) and isinstance(outcomes["null"].__cause__, sqlite3.Error)
    assert isinstance(outcomes["again"], StoreError) and "cannot add" in str(outcomes["again"])
    with file.connection() as db:
        assert db.execute("SELECT text FROM notes ORDER BY text").fetchall() == [("a",), ("b",)]
    file.close()


def test_a_transaction_that_fails_as_a_whole_writes_nothing_and_fails_every_caller(tmp_path: Path) -> None:
    file = SqliteFile(tmp_path / "n.db", name="the notes file")
    with file.connection() as db:
        db.execute("CREATE TABLE notes (text TEXT NOT NULL)")
    blocker = threading.Event()
    writes = _Writes()

    def lose_the_transaction(db: Connection) -> None:  # as the driver does on a full disk or an I/O error
        db.execute("ROLLBACK")
        raise sqlite3.OperationalError("disk I/O error")

    writes.start("hold", lambda: file.write(lambda db: blocker.wait(JOIN), "hold"))
    _in_line(file, 0)
    time.sleep(0.05)
    calls: list[tuple[str, Callable[[Connection], object]]] = [
        ("a", lambda db: db.execute("INSERT INTO notes VALUES ('a')").rowcount),
        ("lost", lose_the_transaction),
        ("b", lambda db: db.execute("INSERT INTO notes VALUES ('b')").rowcount),
    ]
    for n, (name, work) in enumerate(calls, start=1):
        writes.start(name, lambda work=work: file.write(work, "add a note"))
        _in_line(file, n)
    blocker.set()
    outcomes = writes.join()
    for name in ("a", "lost", "b"):
        assert isinstance(outcomes[name], StoreError), outcomes[name]
        assert "disk I/O error" in str(outcomes[name])
    with file.connection() as db:
        assert db.execute("SELECT count(*) FROM notes").fetchone()[0] == 0
    assert file.write(lambda db: db.execute("INSERT INTO notes VALUES ('c')").rowcount, "add a note") == 1
    file.close()


def test_work_runs_in_its_callers_context_on_whichever_thread_commits_it(tmp_path: Path) -> None:
    file = SqliteFile(tmp_path / "n.db", name="the notes file")
    who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")
    seen: dict[str, tuple[str, str]] = {}
    blocker = threading.Event()
    writes = _Writes()

    def work(name: str) -> Callable[[], object]:
        def call() -> object:
            who.set(name)
            return file.write(lambda db: seen.setdefault(name, (who.get(), threading.current_thread().name)), "w")
        return call

    writes.start("hold", lambda: file.write(lambda db: blocker.wait(JOIN), "hold"))
    _in_line(file, 0)
    time.sleep(0.05)
    for n, name in enumerate(["x", "y", "z"], start=1):
        writes.start(name, work(name))
        _in_line(file, n)
    blocker.set()
    writes.join()
    assert {name: value for name, (value, _thread) in seen.items()} == {"x": "x", "y": "y", "z": "z"}
    assert len({thread for _value, thread in seen.values()}) == 1  # one thread committed all three
    file.close()


def test_a_write_inside_a_write_is_refused_at_once(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "h.db") as store:

        def nested(reader: Reader, updates: Sequence[Update]) -> None:
            store.write([touch("doc:2#viewer@user:b")])

        with pytest.raises(StoreError, match="inside another write"):
            store.write([touch("doc:1#viewer@user:a")], validate=nested)
        assert store.head() == 0
        assert store.write([touch("doc:1#viewer@user:a")]) == 1


def test_writes_queued_when_the_store_closes_fail_instead_of_waiting(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "h.db")
    blocker = _Blocker()
    writes = _Writes()
    writes.start("first", lambda: store.write([touch("doc:1#viewer@user:a")], validate=blocker))
    assert blocker.holding.wait(timeout=JOIN)
    writes.start("queued", lambda: store.write([touch("doc:2#viewer@user:b")]))
    _in_line(store.backend.file, 1)
    store.close()
    blocker.release.set()
    outcomes = writes.join()
    assert isinstance(outcomes["queued"], StoreError) and "closed" in str(outcomes["queued"])


_PROCESS = textwrap.dedent("""
    import sys, threading
    from headwater.engine.relationships import parse_relationship
    from headwater.engine.store import Operation, Update
    from headwater.engine.store.sqlite import SqliteStore

    path, name, threads, writes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    revisions = []
    with SqliteStore(path, busy_timeout=30) as store:
        def writer(t):
            for i in range(writes):
                text = f"doc:{name}-{t}-{i}#viewer@user:u"
                revisions.append(store.write([Update(Operation.TOUCH, parse_relationship(text))]))
        workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
        for w in workers: w.start()
        for w in workers: w.join()
    print(" ".join(map(str, revisions)))
""")


def test_two_processes_with_several_threads_each_write_one_file(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    SqliteStore(path).close()  # created and migrated once, before both start
    threads, writes = 4, 30
    procs = [subprocess.Popen([sys.executable, "-c", _PROCESS, str(path), name, str(threads), str(writes)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in ("p", "q")]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    revisions = sorted(int(r) for out, _err in outputs for r in out.split())
    total = 2 * threads * writes
    assert revisions == list(range(1, total + 1))
    with SqliteStore(path) as store:
        assert store.head() == total
        assert len(read_all(store)) == total


def test_a_write_that_waits_in_line_longer_than_the_busy_timeout_gives_up_unwritten(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "h.db", busy_timeout=0.2) as store:
        blocker = _Blocker()
        writes = _Writes()
        writes.start("first", lambda: store.write([touch("doc:1#viewer@user:a")], validate=blocker))
        assert blocker.holding.wait(timeout=JOIN)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="busy"):
            store.write([touch("doc:2#viewer@user:b")])
        assert 0.15 < time.monotonic() - started < 10
        assert store.backend.file._line == []  # it left the line
        blocker.release.set()
        assert writes.join()["first"] == 1
        assert read_all(store) == ["doc:1#viewer@user:a"]
        assert store.write([touch("doc:2#viewer@user:b")]) == 2


def test_a_write_waiting_in_line_leaves_it_at_its_deadline(tmp_path) -> None:
    """A write queued behind a long one stops waiting when its request's deadline passes (DeadlineExceededError),
    and is not written; the long one still commits."""
    import threading

    from headwater.engine.budget import limits
    from headwater.engine.errors import DeadlineExceededError
    from headwater.engine.sqlitedb import SqliteFile

    f = SqliteFile(tmp_path / "line.db", name="test file")
    with f.connection() as db:
        db.execute("CREATE TABLE t (x INTEGER)")
    started, release = threading.Event(), threading.Event()

    def long_write(db) -> None:
        db.execute("INSERT INTO t VALUES (1)")
        started.set()
        release.wait(10)

    holder = threading.Thread(target=lambda: f.write(long_write, "hold the line"))
    holder.start()
    assert started.wait(10)
    with limits(timeout=0.1), pytest.raises(DeadlineExceededError):
        f.write(lambda db: db.execute("INSERT INTO t VALUES (2)"), "wait in line")
    release.set()
    holder.join(10)
    with f.connection() as db:
        assert [r[0] for r in db.execute("SELECT x FROM t")] == [1]
    f.close()
