"""SqliteStore: the durable backend, one SQLite file in WAL mode.

With :mod:`.sqlite_reader` and :mod:`.sql_reader` (its reads) and :mod:`.migrations` (its tables) over
:class:`~headwater.engine.sqlitedb.SqliteFile` (the SQLite helper it shares with
the audit log: connections, transactions, migrations), this is the relationship
store's code; every driver failure is translated (a busy or locked database
becomes ``StoreUnavailableError``, a constraint violation ``WriteConflictError``,
any other ``StoreError``, each with the driver exception chained as ``__cause__``).

Design (tables in ``migrations.py``):

- ``relationships`` holds one row per version of a relationship with
  ``created_rev`` and ``deleted_rev`` (NULL while not deleted); "no subject
  relation" is stored as ``''`` so the key columns can sit in unique indexes.
  ``relationships_live_key`` (partial, ``WHERE deleted_rev IS NULL``) allows at
  most one not-deleted row per key. The table is ``WITHOUT ROWID`` with the
  key + ``created_rev`` as its primary key, so an object's rows sit together.
- ``revisions`` has one row per write transaction (time, metadata). Head is
  its largest revision, the oldest readable revision its smallest (``gc``
  deletes older ones).
- A snapshot is one read transaction (see :mod:`.sqlite_reader`).
- A write batch is planned and applied inside a ``BEGIN IMMEDIATE``
  transaction: SQLite allows one writer at a time, so the revision (head + 1)
  is allocated inside the transaction without races, and the batch, the
  revision row and its metadata commit or roll back together.
- Group commit (:meth:`~headwater.engine.sqlitedb.SqliteFile.write`): threads
  writing at the same time wait in line, and the batches in line are committed
  in one transaction, each in its own savepoint at its own revision (planned at
  the revision before it), so a batch that fails (a precondition, a CREATE
  conflict, a validation error) is rolled back alone. Every caller returns
  only after the shared ``COMMIT``. Waiting in line replaced SQLite's busy
  handler between this process's threads: its sleeps of up to 100 ms made
  write p99 reach 0.4 s at 16 threads (docs/performance.md).
- Durability: ``PRAGMA synchronous=FULL``. In WAL mode that syncs the WAL on
  every commit, so a write acknowledged by ``write()`` survives a power loss
  or OS crash, at the cost of one fsync per write transaction (shared by the
  batches of a group).
- Connections: one per thread (kept by the ``SqliteFile``), since the gRPC server
  is threaded; a thread that opens a second snapshot while one is open gets a
  second connection. ``close()`` closes every connection the store opened.

Example::

    >>> import tempfile, pathlib
    >>> from headwater.engine.relationships import parse_relationship
    >>> from headwater.engine.store import Operation, Update
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "headwater.db"
    >>> with SqliteStore(path) as store:
    ...     store.write([Update(Operation.TOUCH, parse_relationship("doc:1#viewer@user:tom"))])
    1
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from ..errors import InvalidRequestError, StoreError
from ..sqlitedb import Connection, SqliteFile, transaction
from . import migrations as _migrations
from .contract import (
    Batch,
    Change,
    GcResult,
    Plan,
    Revision,
    RevisionInfo,
    StoredSchema,
    checked_time,
    unavailable,
    whole_revisions,
)
from .sql_reader import LargeObjects, WriteSql, changes_of, from_us, to_us
from .sqlite_reader import SqliteReader, SqliteSnapshot
from .validating import Store

__all__ = ["GC_EXPIRED", "SqliteStore", "migrate", "migration_plan"]

_SQL = WriteSql("?", ":{}")
_SELECT_BOUNDS = "SELECT (SELECT min(revision) FROM revisions), (SELECT max(revision) FROM revisions)"
_SELECT_HEAD = "SELECT revision, committed_at_us FROM revisions ORDER BY revision DESC LIMIT 1"


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class _SqliteBackend:
    """The SQLite implementation of the store roles (see the module docstring)."""

    def __init__(self, path: Path, clock: Callable[[], datetime], busy_timeout: float) -> None:
        self.path = path
        self.clock = clock
        self.large_objects = LargeObjects()
        self.file = SqliteFile(path, name="the SQLite store", busy_timeout=busy_timeout, open_action="open the store")
        self.translate = self.file.translate
        self.checkout = self.file.checkout
        self.checkin = self.file.checkin
        try:
            self.file.migrate(_migrations.MIGRATIONS, table=_migrations.MIGRATIONS_TABLE_NAME,
                              then=self._first_revision)
        except BaseException:
            self.close()
            raise

    def _first_revision(self, db: Connection) -> None:
        if db.execute("SELECT 1 FROM revisions LIMIT 1").fetchone() is None:
            db.execute("INSERT INTO revisions (revision, committed_at_us) VALUES (0, ?)",
                       [to_us(checked_time(self.clock()))])

    @contextmanager
    def _read(self, action: str) -> Iterator[tuple[Connection, Revision, Revision]]:
        """A read transaction; yields (connection, oldest, head) read inside it, which pins the snapshot."""
        with self.file.connection() as conn, self.file.translated(action), transaction(conn, "BEGIN"):
            oldest, head = conn.execute(_SELECT_BOUNDS).fetchone()
            yield conn, oldest, head

    def close(self) -> None:
        """Close every connection this store opened (from any thread), keeping the planner's statistics current."""
        self.file.close(optimize=True)

    # --- reads --------------------------------------------------------------------------

    def snapshot(self, revision: Revision | None, now: datetime) -> SqliteSnapshot:
        return SqliteSnapshot(self, revision, to_us(now))

    def head(self) -> Revision:
        with self.file.connection() as conn, self.file.translated("read the head revision"):
            head: Revision = conn.execute("SELECT max(revision) FROM revisions").fetchone()[0]
            return head

    def revision_info(self, revision: Revision) -> RevisionInfo:
        with self._read("read a revision") as (conn, oldest, head):
            row = conn.execute("SELECT committed_at_us, metadata FROM revisions WHERE revision = ?",
                               [revision]).fetchone()
            if row is None:
                raise unavailable(revision, oldest, head)
            return RevisionInfo(revision, from_us(row[0]), json.loads(row[1]))

    def changes(self, after: Revision, limit: int | None) -> list[Change]:
        with self._read("read changes") as (conn, oldest, head):
            if not oldest <= after <= head:
                raise unavailable(after, oldest, head)
            found = self._changes(conn, after, head, limit)
            if limit is None or len(found) <= limit:
                return found
            first = found[0].revision
            if found[limit].revision == first:  # the first revision alone is over the limit: return it whole
                return self._changes(conn, first - 1, first, None)
            return whole_revisions(found, limit)

    def _changes(self, conn: Connection, after: Revision, until: Revision,
                 limit: int | None) -> list[Change]:
        """Changes of revisions in (after, until] in (revision, key) order; at most limit + 1 of them."""
        params = {"after": after, "until": until, "limit": -1 if limit is None else limit + 1}  # -1: no limit
        return changes_of(conn.execute(_SQL.select_touches, params).fetchall(),
                          conn.execute(_SQL.select_deletes, params).fetchall(), limit)

    def schema_history(self) -> list[StoredSchema]:
        with self._read("read the schema history") as (conn, _oldest, _head):
            rows = conn.execute("SELECT text, digest, version, revision FROM schemas ORDER BY version").fetchall()
            return [StoredSchema(*row) for row in rows]

    # --- writes -------------------------------------------------------------------------

    def commit(self, plan: Plan, metadata: dict[str, str], action: str) -> Revision:
        meta = json.dumps(metadata, sort_keys=True)
        return self.file.write(lambda conn: self._commit(conn, plan, meta), action)

    def _commit(self, conn: Connection, plan: Plan, metadata: str) -> Revision:
        """One batch at the next revision, inside the (group's) write transaction: planned at the revision
        before it, which includes the batches committed in the same transaction before it.

        Every statement lets other threads take the GIL, and a busy server's threads keep it for up to
        the switch interval (5 ms) before handing it back, so this runs as few statements as it can."""
        base, previous_us = conn.execute(_SELECT_HEAD).fetchone()
        now_us = to_us(checked_time(self.clock()))
        reader = SqliteReader(self, conn, base, now_us)
        try:
            batch: Batch = plan(reader)
        finally:
            reader.close()
        revision: Revision = base + 1
        conn.execute("INSERT INTO revisions (revision, committed_at_us, metadata) VALUES (?, ?, ?)",
                     [revision, max(now_us, previous_us), metadata])
        if batch.deletes:
            conn.executemany(_SQL.retire_unexpired, [(revision, *key, now_us) for key in batch.deletes])
        if batch.inserts:
            conn.executemany(_SQL.retire, [(revision, *row[:6]) for row in batch.inserts])  # even identical/expired
            conn.executemany(_SQL.insert, [(*row, revision) for row in batch.inserts])
        if batch.schema is not None:
            version = conn.execute("SELECT coalesce(max(version), 0) + 1 FROM schemas").fetchone()[0]
            conn.execute("INSERT INTO schemas (version, revision, text, digest) VALUES (?, ?, ?, ?)",
                         [version, revision, *batch.schema])
        return revision

    def gc(self, before: datetime) -> GcResult:
        return self.file.write(lambda conn: self._gc(conn, to_us(before)), "collect garbage")

    @staticmethod
    def _gc(conn: Connection, before_us: int) -> GcResult:
        # Revision times never decrease, so the newest revision older than the threshold is
        # the last one in time order; head is always a kept revision, so cutoff <= head.
        row = conn.execute("SELECT revision, committed_at_us FROM revisions WHERE committed_at_us < ? "
                           "ORDER BY committed_at_us DESC, revision DESC LIMIT 1", [before_us]).fetchone()
        if row is None:
            return GcResult(0)
        cutoff, cutoff_us = row
        removed: int = conn.execute("DELETE FROM relationships WHERE deleted_rev <= ?", [cutoff]).rowcount
        # Expired at or before the cutoff's time: invisible to every snapshot still readable.
        expired: int = conn.execute(GC_EXPIRED, [cutoff_us, cutoff]).rowcount
        conn.execute("DELETE FROM revisions WHERE revision < ?", [cutoff])
        return GcResult(removed + expired, expired)


#: The garbage collector's delete of the relationships that expired (at or before the cut-off's time) without being
#: deleted: through the partial index of migration 4 (``relationships_expiring``), never a scan of the table.
GC_EXPIRED = ("DELETE FROM relationships INDEXED BY relationships_expiring "
              "WHERE deleted_rev IS NULL AND expires_at_us <= ? AND created_rev <= ?")


class SqliteStore(Store):
    """A durable store in one SQLite file (created on first use): :class:`~.validating.Store` over SQLite.

    :param path: the database file; its directory must exist. ``-wal`` and ``-shm``
      files appear next to it while it is open.
    :param clock: returns the current time (timezone-aware); it stamps revisions
      and is the default ``now`` for expiration and gc. Tests inject a fake one.
    :param busy_timeout: seconds to wait for another writer before giving up with
      ``StoreUnavailableError``.

    Example::

        >>> import tempfile, pathlib
        >>> with SqliteStore(pathlib.Path(tempfile.mkdtemp()) / "h.db") as store:
        ...     store.head()
        0
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], datetime] = _utc_now,
                 busy_timeout: float = 5.0) -> None:
        if str(path) == ":memory:" or not str(path):
            raise InvalidRequestError("SqliteStore needs a file path; use MemoryStore for an in-memory store")
        super().__init__(_SqliteBackend(Path(path), clock, busy_timeout))


def migration_plan(path: str | Path) -> list[_migrations.Migration]:
    """The migrations opening the SQLite file at ``path`` would apply (all of them for a new file); StoreError
    for a file written by a newer Headwater."""
    if not Path(path).exists():
        return list(_migrations.MIGRATIONS)
    file = SqliteFile(Path(path), name="the SQLite store", open_action="open the store")
    try:
        applied = file.applied_version(_migrations.MIGRATIONS_TABLE_NAME)
    finally:
        file.close()
    if applied > _migrations.LATEST_VERSION:
        raise StoreError(f"cannot open the SQLite store at {path}: it was written by a newer Headwater (table "
                         f"layout version {applied}; this version knows up to {_migrations.LATEST_VERSION})")
    return [m for m in _migrations.MIGRATIONS if m.version > applied]


def migrate(path: str | Path) -> list[_migrations.Migration]:
    """Apply what :func:`migration_plan` lists (as opening the store does); what was applied."""
    steps = migration_plan(path)
    SqliteStore(path).close()
    return steps
