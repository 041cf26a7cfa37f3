"""One SQLite file the engine keeps: its connections, transactions, numbered migrations and error translation.

Every SQLite file Headwater writes goes through a :class:`SqliteFile` (the audit
log's, in ``engine/audit/storage.py``; the relationship store is meant to follow).
It holds what they share:

- **Connections**, opened on demand: WAL mode required, ``synchronous`` FULL (every
  commit is fsynced: it survives a power loss) or NORMAL (it survives a process
  crash), a busy timeout, and ``isolation_level=None`` (transactions are written
  out). Each thread keeps its own idle connections: :meth:`SqliteFile.checkout`
  takes one (opening it if the thread has none idle, so a thread holding one
  gets a second), :meth:`SqliteFile.checkin` gives it back, and
  :meth:`SqliteFile.connection` does both around a ``with`` block.
  :meth:`SqliteFile.close` closes every connection the file opened, from any thread.
- **Transactions**: :func:`transaction` runs ``BEGIN`` (one snapshot to read) or
  ``BEGIN IMMEDIATE`` (a write: one writer at a time), rolls back on any
  exception and commits otherwise.
- **Group commit**: :meth:`SqliteFile.write` runs a piece of write work in a
  write transaction shared with the work other threads queued meanwhile
  (first come, first served; one transaction and one fsync for all of them),
  each in its own savepoint, so a piece that fails is rolled back alone, and
  each caller returns only once the shared ``COMMIT`` is done. Threads of one
  process wait in line for their turn instead of polling SQLite's write lock:
  SQLite's busy handler sleeps in steps of up to 100 ms while another
  connection holds the lock, and a thread that has waited long sleeps longest,
  so under load some writes waited for seconds behind writes of 1 ms. The lock
  still guards the file across processes (a CLI next to a server).
- **Errors**: :meth:`SqliteFile.translate` turns a driver exception into the
  engine's error tree: busy or locked → ``StoreUnavailableError``, a violated
  constraint → ``WriteConflictError``, anything else → ``StoreError``; each
  message names the action and the file, as in ``cannot append audit records:
  the audit log at /var/h.db.audit is busy (database is locked)``.
- **Migrations**: :meth:`SqliteFile.migrate` applies the numbered
  :class:`Migration` steps a file lacks, in one transaction, recording each in a
  migrations table; it refuses a file written by a newer Headwater and a file
  that is some other program's database.

No other module imports ``sqlite3`` (``tests/test_architecture.py``): the
relationship store and the audit log speak to SQLite through this one.

Example::

    >>> import pathlib, tempfile
    >>> notes = SqliteFile(pathlib.Path(tempfile.mkdtemp()) / "notes.db", name="the notes file")
    >>> notes.migrate([Migration(1, "notes", ("CREATE TABLE notes (text TEXT NOT NULL)",))], table="notes_migrations")
    >>> with notes.connection() as db, notes.translated("add a note"), transaction(db, "BEGIN IMMEDIATE"):
    ...     _ = db.execute("INSERT INTO notes (text) VALUES ('hello')")
    >>> with notes.connection() as db:
    ...     db.execute("SELECT text FROM notes").fetchall()
    [('hello',)]
    >>> notes.close()
"""

from __future__ import annotations

import contextvars
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from .budget import current as current_budget
from .errors import StoreError, StoreUnavailableError, WriteConflictError

__all__ = ["Connection", "DriverError", "GROUP_LIMIT", "Migration", "SqliteFile", "transaction"]

#: A connection to a :class:`SqliteFile` (callers type their arguments with it, without importing sqlite3).
Connection = sqlite3.Connection
#: What the driver raises (callers catch it on their hot paths and :meth:`SqliteFile.translate` it).
DriverError = sqlite3.Error

_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CORRUPT, _SQLITE_NOTADB = 5, 6, 11, 26
#: Pieces of write work committed in one transaction at most; the rest wait for the next one.
GROUP_LIMIT = 64

_T = TypeVar("_T")


def _utc_now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered step of a file's table layout: its version (1, 2, 3...), a short name, its SQL statements.

    Released migrations are never edited: a change to the tables is a new migration at the end.
    """

    version: int
    name: str
    statements: tuple[str, ...]


@contextmanager
def transaction(db: Connection, begin: str = "BEGIN") -> Iterator[None]:
    """Run the ``with`` block in one transaction: ``begin`` first, ``COMMIT`` after, ``ROLLBACK`` on any exception.

    ``begin`` is ``"BEGIN"`` for a read (its first ``SELECT`` pins one snapshot) or
    ``"BEGIN IMMEDIATE"`` for a write (it takes the write lock at once, so what the
    block reads cannot change before it writes). A failed ``COMMIT`` rolls back too.

    Example::

        >>> db = sqlite3.connect(":memory:", isolation_level=None)
        >>> _ = db.execute("CREATE TABLE t (x INTEGER)")
        >>> try:
        ...     with transaction(db, "BEGIN IMMEDIATE"):
        ...         _ = db.execute("INSERT INTO t VALUES (1)")
        ...         raise ValueError("changed my mind")
        ... except ValueError:
        ...     pass
        >>> db.execute("SELECT count(*) FROM t").fetchone()[0]
        0
    """
    db.execute(begin)
    try:
        yield
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    try:
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


#: How often a write waiting in line looks at its request's deadline and cancellation (seconds).
_LINE_POLL = 0.05


class SqliteFile:
    """One SQLite file: connections kept one per thread, transactions, translated errors, migrations.

    :param path: the database file (created on first use; its folder must exist). ``-wal`` and
      ``-shm`` files appear beside it while it is open.
    :param name: how messages name the file, before `` at <path>``: ``"the audit log"``.
    :param synchronous: ``"FULL"`` (fsync every commit) or ``"NORMAL"``.
    :param busy_timeout: seconds to wait for another writer before giving up (``StoreUnavailableError``):
      another process's, in SQLite's busy handler, or this process's, in :meth:`write`'s line.
    :param open_action: the action messages name when opening fails (default ``"open <name>"``).
    :param busy_advice: appended to the message of a busy file, such as ``"; retry later"``.
    :param conflicts: a violated constraint is a concurrent write's conflict (``WriteConflictError``);
      False where writes never conflict (they are serialized), so it is a failure like any other.
    :param corruption: say so when the file is not a database or is corrupted; False: a failure like any other.

    Example::

        >>> import pathlib, tempfile
        >>> f = SqliteFile(pathlib.Path(tempfile.mkdtemp()) / "x.db", name="the x file", synchronous="NORMAL")
        >>> with f.connection() as db:
        ...     db.execute("PRAGMA journal_mode").fetchone()[0], db.execute("PRAGMA synchronous").fetchone()[0]
        ('wal', 1)
        >>> f.close()
        >>> f.checkout()
        Traceback (most recent call last):
        ...
        headwater.engine.errors.StoreError: the x file at ... is closed
    """

    def __init__(self, path: str | Path, *, name: str, synchronous: str = "FULL", busy_timeout: float = 5.0,
                 open_action: str | None = None, busy_advice: str = "; retry later", conflicts: bool = True,
                 corruption: bool = True) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"invalid synchronous mode {synchronous!r}: use FULL or NORMAL")
        self.path = Path(path)
        #: How messages name the file: ``the audit log at /var/h.db.audit``.
        self.place = f"{name} at {self.path}"
        self.synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._open_action = open_action or f"open {name}"
        self._busy_advice = busy_advice
        self._conflicts = conflicts
        self._corruption = corruption
        self._local = threading.local()  # .idle: this thread's idle connections
        self._connections: list[Connection] = []  # every open connection, for close()
        self._connections_lock = threading.Lock()
        self._closed = False
        # group commit (all under _turn): work waiting in line, and whether a thread is committing a group
        self._turn = threading.Condition()
        self._line: list[_Work] = []
        self._committing = False

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    # --- errors -----------------------------------------------------------------------

    def translate(self, exc: sqlite3.Error, action: str) -> StoreError:
        """The engine error for a driver exception (raise it ``from exc``): ``cannot <action>: <place> ...``.

        Example::

            >>> f = SqliteFile("/tmp/x.db", name="the x file")
            >>> print(f.translate(sqlite3.OperationalError("database is locked"), "write"))
            cannot write: the x file at /tmp/x.db is busy (database is locked); retry later
            >>> type(f.translate(sqlite3.IntegrityError("UNIQUE constraint failed"), "write")).__name__
            'WriteConflictError'
        """
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        text = str(exc)
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in text or "busy" in text:
            return StoreUnavailableError(f"cannot {action}: {self.place} is busy ({exc}){self._busy_advice}")
        if self._corruption and primary in (_SQLITE_NOTADB, _SQLITE_CORRUPT):
            return StoreError(f"cannot {action}: {self.place} is not a database or is corrupted ({exc})")
        if self._conflicts and isinstance(exc, sqlite3.IntegrityError):
            return WriteConflictError(f"cannot {action}: a concurrent change conflicts with it at {self.place} "
                                      f"({exc})")
        return StoreError(f"cannot {action}: {self.place} failed ({exc})")

    @contextmanager
    def translated(self, action: str) -> Iterator[None]:
        """Raise any driver exception of the ``with`` block as :meth:`translate` names it."""
        try:
            yield
        except sqlite3.Error as exc:
            raise self.translate(exc, action) from exc

    # --- connections ------------------------------------------------------------------

    def checkout(self) -> tuple[Connection, list[Connection]]:
        """This thread's idle connection (opened if it has none), and the list to give it back to with
        :meth:`checkin`. StoreError once the file is closed."""
        if self._closed:
            raise StoreError(f"{self.place} is closed")
        idle: list[Connection] | None = getattr(self._local, "idle", None)
        if idle is None:
            idle = self._local.idle = []
        return (idle.pop() if idle else self._connect()), idle

    def checkin(self, db: Connection, idle: list[Connection]) -> None:
        """Give ``db`` back (rolled back if still in a transaction), or close it when it cannot be reused."""
        if not self._closed and self._is_reusable(db):
            idle.append(db)

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """This thread's idle connection (opened on demand) for the ``with`` block, given back afterwards."""
        db, idle = self.checkout()
        try:
            yield db
        finally:
            self.checkin(db, idle)

    def close(self, *, optimize: bool = False) -> None:
        """Close every connection this file opened, from any thread (best effort; idempotent).

        ``optimize`` runs ``PRAGMA optimize`` on each first, which keeps the planner's statistics current.
        """
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for db in connections:
            if optimize:
                try:
                    db.execute("PRAGMA optimize")
                except sqlite3.Error:
                    pass  # a busy or read-only file keeps its old statistics
            try:
                db.close()
            except sqlite3.Error:
                pass  # the file stays consistent either way

    def _connect(self) -> Connection:
        with self.translated(self._open_action):
            db = sqlite3.connect(str(self.path), timeout=self._busy_timeout, isolation_level=None,
                                 check_same_thread=False)
            try:
                mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"cannot open {self.place}: WAL mode unavailable ({mode})")
                db.execute(f"PRAGMA synchronous={self.synchronous}")
                db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
            except BaseException:
                db.close()
                raise
        with self._connections_lock:
            self._connections.append(db)
        return db

    def _is_reusable(self, db: Connection) -> bool:
        """True when ``db`` is out of any transaction; a connection stuck in one is closed instead."""
        try:
            if db.in_transaction:
                db.execute("ROLLBACK")
            return True
        except sqlite3.Error:
            with self._connections_lock:
                if db in self._connections:
                    self._connections.remove(db)
            try:
                db.close()
            except sqlite3.Error:
                pass
            return False

    # --- writes: group commit ---------------------------------------------------------

    def write(self, work: Callable[[Connection], _T], action: str) -> _T:
        """``work(db)``'s result, once it is committed: run in a write transaction shared with the work other
        threads queued meanwhile (first come, first served), in a savepoint of its own.

        The caller waits in line (no polling of SQLite's lock; StoreUnavailableError if its work was not
        taken into a transaction within the busy timeout) until its work is committed by whichever
        thread takes the turn: that thread begins one ``BEGIN IMMEDIATE`` transaction, runs up to
        :data:`GROUP_LIMIT` queued pieces in order, each in its savepoint and in its caller's
        ``contextvars`` context, and commits them together. A piece that raises is rolled back alone and
        its caller gets the exception (a driver exception translated, naming ``action``); the others are
        unaffected, and each sees the pieces before it. When the transaction itself fails (it cannot
        begin, or commit, or the driver rolled it back), every caller of the group gets the translated
        error and nothing of the group is written. A piece must not call ``write`` itself (StoreError).

        Example::

            >>> import pathlib, tempfile
            >>> notes = SqliteFile(pathlib.Path(tempfile.mkdtemp()) / "notes.db", name="the notes file")
            >>> with notes.connection() as db:
            ...     _ = db.execute("CREATE TABLE notes (text TEXT NOT NULL)")
            >>> notes.write(lambda db: db.execute("INSERT INTO notes VALUES ('hi')").rowcount, "add a note")
            1
            >>> notes.write(lambda db: db.execute("INSERT INTO notes VALUES (NULL)"), "add a note")
            Traceback (most recent call last):
            ...
            headwater.engine.errors.WriteConflictError: cannot add a note: a concurrent change conflicts ...
            >>> notes.close()
        """
        if getattr(self._local, "writing", False):
            raise StoreError(f"cannot {action}: a write cannot start inside another write's transaction")
        item = _Work(work, action, contextvars.copy_context())
        turn = self._turn
        deadline = time.monotonic() + self._busy_timeout
        budget = current_budget(None)  # the request's deadline and cancellation end a wait in line too
        with turn:
            self._line.append(item)
        while True:
            with turn:
                while self._committing and not item.done:
                    left = deadline - time.monotonic()
                    if item in self._line:  # not taken into a group yet: it may still give up
                        if left <= 0:  # as SQLite would
                            self._line.remove(item)
                            raise StoreUnavailableError(
                                f"cannot {action}: {self.place} is busy (waited {self._busy_timeout:g} s in line "
                                f"behind other writes){self._busy_advice}")
                        try:
                            budget.checkpoint()
                        except BaseException:
                            self._line.remove(item)
                            raise
                    turn.wait(min(left, _LINE_POLL) if left > 0 else None)
                if item.done:
                    break
                self._committing = True
                group = self._line[:GROUP_LIMIT]
                del self._line[:GROUP_LIMIT]
            try:
                self._commit_group(group)
            finally:
                with turn:
                    self._committing = False
                    turn.notify_all()
        if item.error is not None:
            raise item.error
        return item.result  # type: ignore[no-any-return]

    def _commit_group(self, group: list[_Work]) -> None:
        """Run and commit ``group`` in one transaction; every piece is done afterwards (a result or an error)."""
        self._local.writing = True
        try:
            with self.connection() as db:
                self._run_group(db, group)
        except BaseException as exc:  # the transaction failed: nothing of the group was written
            for item in group:
                if item.error is None:  # a piece that failed by itself keeps its own error
                    item.result, item.error = None, self._group_error(exc, item.action)
                item.done = True
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt and the like: the others got a StoreError
        finally:
            self._local.writing = False

    def _run_group(self, db: Connection, group: list[_Work]) -> None:
        alone = len(group) == 1  # no savepoint: if it fails, the transaction rolls back (fewer statements)
        db.execute("BEGIN IMMEDIATE")
        try:
            for item in group:
                if not alone:
                    db.execute("SAVEPOINT work")
                try:
                    item.result = item.context.run(item.work, db)
                except Exception as exc:
                    if not db.in_transaction:
                        raise  # the driver rolled the whole transaction back
                    db.execute("ROLLBACK" if alone else "ROLLBACK TO work")
                    item.error = exc
                    if isinstance(exc, sqlite3.Error):
                        item.error = self.translate(exc, item.action)
                        item.error.__cause__ = exc
                    if alone:
                        item.done = True
                        return
                if not alone:
                    db.execute("RELEASE work")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        for item in group:  # durable now: acknowledge every piece
            item.done = True

    def _group_error(self, exc: BaseException, action: str) -> StoreError:
        """The error a caller of a failed group gets (a new one per caller, ``exc`` as its cause)."""
        if isinstance(exc, sqlite3.Error):
            error = self.translate(exc, action)
        elif isinstance(exc, StoreError):  # such as "the store is closed"
            error = (StoreUnavailableError if isinstance(exc, StoreUnavailableError) else StoreError)(str(exc))
        else:
            error = StoreError(f"cannot {action}: the write transaction it shared with other writes failed "
                               f"({type(exc).__name__}: {exc}); nothing of it was written")
        error.__cause__ = exc
        return error

    # --- migrations -------------------------------------------------------------------

    def applied_version(self, table: str) -> int:
        """The highest migration recorded in ``table`` (0: none, or no such table yet)."""
        with self.connection() as db, self.translated(self._open_action):
            found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [table]).fetchone()
            if found is None:
                return 0
            return int(db.execute(f"SELECT coalesce(max(version), 0) FROM {table}").fetchone()[0])

    def migrate(self, migrations: Sequence[Migration], *, table: str,
                then: Callable[[Connection], None] | None = None,
                stamp: Callable[[], str] = _utc_now_iso,
                foreign: str = "it is a database of something else (tables {tables}), not a Headwater store",
                newer: str = "it was written by a newer Headwater (table layout version {applied}; this version "
                             "knows up to {latest}); upgrade Headwater") -> None:
        """Apply the ``migrations`` the file lacks, in one ``BEGIN IMMEDIATE`` transaction; running it again
        changes nothing.

        :param migrations: every migration, in version order (1, 2, 3...).
        :param table: the table recording the applied versions (``version``, ``name``, ``applied_at``),
          created if missing.
        :param then: runs inside the same transaction, after the migrations (to insert initial rows).
        :param stamp: the ``applied_at`` text of a migration applied now.
        :param foreign: why a file with tables but no ``table`` is refused (``{tables}``: their sorted names).
        :param newer: why a file whose recorded version is above the last migration's is refused
          (``{applied}``, ``{latest}``).

        Refusals are StoreError ``cannot open <place>: <foreign or newer>``.
        """
        latest = migrations[-1].version
        with self.connection() as db, self.translated(self._open_action), transaction(db, "BEGIN IMMEDIATE"):
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and table not in tables:
                raise StoreError(f"cannot open {self.place}: {foreign.format(tables=sorted(tables))}")
            db.execute(f"CREATE TABLE IF NOT EXISTS {table} (version INTEGER PRIMARY KEY, "
                       "name TEXT NOT NULL, applied_at TEXT NOT NULL)")
            applied = db.execute(f"SELECT coalesce(max(version), 0) FROM {table}").fetchone()[0]
            if applied > latest:
                raise StoreError(f"cannot open {self.place}: {newer.format(applied=applied, latest=latest)}")
            for migration in migrations:
                if migration.version > applied:
                    for statement in migration.statements:
                        db.execute(statement)
                    db.execute(f"INSERT INTO {table} (version, name, applied_at) VALUES (?, ?, ?)",
                               [migration.version, migration.name, stamp()])
            if then is not None:
                then(db)


class _Work:
    """One piece of write work waiting in :meth:`SqliteFile.write`'s line, then its outcome."""

    __slots__ = ("work", "action", "context", "done", "result", "error")

    def __init__(self, work: Callable[[Connection], Any], action: str, context: contextvars.Context) -> None:
        self.work = work
        self.action = action
        self.context = context  # the caller's: the work runs on whichever thread commits the group
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
