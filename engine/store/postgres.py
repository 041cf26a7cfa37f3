"""PostgresStore: the shared backend, for several stateless servers over one PostgreSQL database.

With :mod:`.sql_reader` (its reads, shared with SQLite) and :mod:`.pg_migrations`
(its tables) over :class:`~headwater.engine.pgdb.Database` (the pool, errors and
migrations), this is the relationship store's code. The MVCC design is SQLite's,
and SpiceDB's ``internal/datastore/postgres`` in its essentials:

- **Revisions** are integers, one per write transaction, allocated inside it:
  every write takes one transaction-scoped advisory lock first
  (``pg_advisory_xact_lock``), reads the head, plans the batch at it and commits
  at head + 1. Writers are serialized across every server, so the revision order
  is the commit order, and what a write plan checks (preconditions, CREATE
  conflicts, lineage cycles, who may declassify) cannot be changed by another
  server's write before it commits. (SpiceDB allocates transaction ids and
  orders them by snapshot; one lock is simpler and exact, and a write is one
  short transaction.)
- **Rows** carry ``created_rev`` and ``deleted_rev``; a snapshot at R sees the
  rows created at or before R and not deleted at or before it.
- **Snapshots** are ``REPEATABLE READ READ ONLY`` transactions. Because commits
  happen in revision order, a snapshot that sees revision R sees every revision
  before it, so its head (read inside it) is consistent, and any revision from
  the oldest kept to that head can be read through it.
- **Garbage collection** forgets old revisions and deleted rows under the same
  lock as writes.
- **Durability**: PostgreSQL's ``synchronous_commit`` (on by default): an
  acknowledged write survives a crash of the server process and of the database.

Every driver failure is translated by the database helper: a lost database is
``StoreUnavailableError`` (UNAVAILABLE over gRPC), a conflict
``WriteConflictError``, any other failure ``StoreError``.

Example (needs a migrated database; ``headwater migrate --db URI``)::

    >>> import os
    >>> uri = os.environ.get("HEADWATER_DOCTEST_PG")
    >>> if uri:
    ...     with PostgresStore(uri) as store:
    ...         isinstance(store.head(), int)
    ... else:
    ...     True
    True
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from types import TracebackType

from ..pgdb import Connection, Database, DriverError, Migration, RawCursor, redact
from . import pg_migrations
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
from .sql_reader import COLUMNS, KEY_ORDER, LargeObjects, SqlReader, WriteSql, changes_of, from_us, to_us
from .validating import Store

__all__ = ["GC_EXPIRED", "PostgresStore", "migrate", "migration_plan"]

_WRITE_LOCK = 0x48575752  # "HWWR": the advisory lock every write transaction takes
_SQL = WriteSql("%s", "%({})s")
_SELECT_BOUNDS = "SELECT (SELECT min(revision) FROM revisions), (SELECT max(revision) FROM revisions)"
_SELECT_HEAD = "SELECT revision, committed_at_us FROM revisions ORDER BY revision DESC LIMIT 1"
_BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
_BEGIN_AND_BOUNDS = f"{_BEGIN_SNAPSHOT}; {_SELECT_BOUNDS}"


# Writes are set-based: one statement per kind of change whatever the batch's size, its rows as arrays.
_KEYS = ("unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) "
         "AS k(resource_type, resource_id, relation, subject_type, subject_id, subject_relation)")
_SAME_KEY = " AND ".join(f"r.{c} = k.{c}" for c in KEY_ORDER.split(", "))
_RETIRE = f"UPDATE relationships AS r SET deleted_rev = %s FROM {_KEYS} WHERE {_SAME_KEY} AND r.deleted_rev IS NULL"
_RETIRE_UNEXPIRED = f"{_RETIRE} AND (r.expires_at_us IS NULL OR r.expires_at_us > %s)"
_INSERT = (f"INSERT INTO relationships ({COLUMNS}, created_rev) SELECT *, %s FROM unnest(%s::text[], %s::text[], "
           "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[])")


def _columns(rows: Sequence[Sequence[object]], width: int) -> list[list[object]]:
    """The first ``width`` fields of ``rows`` as one list per column (the arrays a set-based statement takes)."""
    return [list(column) for column in zip(*(row[:width] for row in rows), strict=True)] if rows else \
        [[] for _ in range(width)]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class PostgresReader(SqlReader):
    """One snapshot: queries on a lent connection inside its transaction (``$1`` parameters)."""

    MARK = "$"
    DRIVER_ERROR = DriverError
    # The lineage walk in the database: a recursive query over the lineage relations (plain object subjects),
    # breadth first, at most $6 objects, each read whole (its first $7 rows) through the primary-key index.
    LINEAGE_CLOSURE = (
        "WITH RECURSIVE walk(t, i) AS (SELECT $1::text COLLATE \"C\", $2::text COLLATE \"C\" UNION "
        "SELECT r.subject_type, r.subject_id "
        "FROM walk AS w JOIN relationships AS r ON r.resource_type = w.t AND r.resource_id = w.i "
        "AND r.relation = ANY($3::text[]) AND r.subject_relation = '' AND r.created_rev <= $4 "
        "AND (r.deleted_rev IS NULL OR r.deleted_rev > $4) AND (r.expires_at_us IS NULL OR r.expires_at_us > $5)) "
        "SELECT o.t, o.i, m.relation, m.subject_type, m.subject_id, m.subject_relation, m.caveat_name, "
        "m.caveat_context, m.expires_at_us FROM (SELECT t, i FROM walk LIMIT $6) AS o LEFT JOIN LATERAL ("
        "SELECT relation, subject_type, subject_id, subject_relation, caveat_name, caveat_context, expires_at_us "
        "FROM relationships WHERE resource_type = o.t AND resource_id = o.i AND created_rev <= $4 "
        "AND (deleted_rev IS NULL OR deleted_rev > $4) AND (expires_at_us IS NULL OR expires_at_us > $5) "
        "ORDER BY relation, subject_type, subject_id, subject_relation LIMIT $7) AS m ON true"
    )
    # Each object's first rows through the primary-key index (LATERAL ... LIMIT), however large the object.
    PREFETCH = (
        "SELECT o.t, o.i, r.relation, r.subject_type, r.subject_id, r.subject_relation, r.caveat_name, "
        "r.caveat_context, r.expires_at_us FROM unnest($1::text[], $2::text[]) AS o(t, i) CROSS JOIN LATERAL ("
        "SELECT relation, subject_type, subject_id, subject_relation, caveat_name, caveat_context, expires_at_us "
        "FROM relationships WHERE resource_type = o.t AND resource_id = o.i AND created_rev <= $3 "
        "AND (deleted_rev IS NULL OR deleted_rev > $3) AND (expires_at_us IS NULL OR expires_at_us > $4) "
        "ORDER BY relation, subject_type, subject_id, subject_relation LIMIT $5) AS r"
    )

    def __init__(self, backend: _PostgresBackend, conn: Connection, revision: Revision, now_us: int) -> None:
        super().__init__(backend.large_objects, RawCursor(conn).execute, backend.db.translate, revision, now_us)


class _PostgresSnapshot:
    """``snapshot()``: a read-only repeatable-read transaction on a lent connection, as a reader."""

    __slots__ = ("_backend", "_revision", "_now_us", "_conn", "_reader")

    def __init__(self, backend: _PostgresBackend, revision: Revision | None, now_us: int) -> None:
        self._backend = backend
        self._revision = revision
        self._now_us = now_us

    def __enter__(self) -> PostgresReader:
        db = self._backend.db
        conn = db.checkout()
        try:
            # One round trip: BEGIN and the bounds as one simple query (no parameters), the bounds its second result.
            cursor = conn.cursor()
            cursor.execute(_BEGIN_AND_BOUNDS)
            cursor.nextset()
            oldest, head = cursor.fetchone()  # type: ignore[misc]
            at = head if self._revision is None else self._revision
            if not oldest <= at <= head:
                raise unavailable(at, oldest, head)
        except BaseException as exc:
            self._release(conn, exc)
            if isinstance(exc, DriverError):
                raise db.translate(exc, "read a snapshot") from exc
            raise
        self._conn = conn
        self._reader = reader = PostgresReader(self._backend, conn, at, self._now_us)
        return reader

    def _release(self, conn: Connection, exc: BaseException | None) -> None:
        """End the transaction (COMMIT after success, ROLLBACK otherwise) and give the connection back."""
        db = self._backend.db
        try:
            if not conn.broken:
                conn.execute("COMMIT" if exc is None else "ROLLBACK")
        except DriverError as error:
            if exc is None:
                raise db.translate(error, "read a snapshot") from error
        finally:
            db.checkin(conn)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._reader.close()
        self._release(self._conn, exc)
        if isinstance(exc, DriverError):
            raise self._backend.db.translate(exc, "read a snapshot") from exc


class _PostgresBackend:
    """The PostgreSQL implementation of the store roles (see the module docstring)."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock
        self.large_objects = LargeObjects()

    def first_revision(self) -> None:
        """Revision 0, stamped now, unless a server already wrote it."""
        with self.db.transaction("open the store") as conn:
            conn.execute("INSERT INTO revisions (revision, committed_at_us) VALUES (0, %s) ON CONFLICT DO NOTHING",
                         [to_us(checked_time(self.clock()))])

    def close(self) -> None:
        self.db.close()

    # --- reads --------------------------------------------------------------------------

    def snapshot(self, revision: Revision | None, now: datetime) -> _PostgresSnapshot:
        return _PostgresSnapshot(self, revision, to_us(now))

    def head(self) -> Revision:
        with self.db.connection() as conn, self.db.translated("read the head revision"):
            row = conn.execute("SELECT max(revision) FROM revisions").fetchone()
            return int(row[0]) if row else 0

    def _bounds(self, conn: Connection) -> tuple[Revision, Revision]:
        oldest, head = conn.execute(_SELECT_BOUNDS).fetchone()  # type: ignore[misc]
        return oldest, head

    def revision_info(self, revision: Revision) -> RevisionInfo:
        with self.db.transaction("read a revision", _BEGIN_SNAPSHOT) as conn:
            oldest, head = self._bounds(conn)
            row = conn.execute("SELECT committed_at_us, metadata FROM revisions WHERE revision = %s",
                               [revision]).fetchone()
            if row is None:
                raise unavailable(revision, oldest, head)
            return RevisionInfo(revision, from_us(row[0]), json.loads(row[1]))

    def changes(self, after: Revision, limit: int | None) -> list[Change]:
        with self.db.transaction("read changes", _BEGIN_SNAPSHOT) as conn:
            oldest, head = self._bounds(conn)
            if not oldest <= after <= head:
                raise unavailable(after, oldest, head)
            found = self._changes(conn, after, head, limit)
            if limit is None or len(found) <= limit:
                return found
            first = found[0].revision
            if found[limit].revision == first:  # the first revision alone is over the limit: return it whole
                return self._changes(conn, first - 1, first, None)
            return whole_revisions(found, limit)

    @staticmethod
    def _changes(conn: Connection, after: Revision, until: Revision, limit: int | None) -> list[Change]:
        """Changes of revisions in (after, until] in (revision, key) order; at most limit + 1 of them."""
        params = {"after": after, "until": until, "limit": None if limit is None else limit + 1}
        return changes_of(conn.execute(_SQL.select_touches, params).fetchall(),
                          conn.execute(_SQL.select_deletes, params).fetchall(), limit)

    def schema_history(self) -> list[StoredSchema]:
        with self.db.connection() as conn, self.db.translated("read the schema history"):
            rows = conn.execute("SELECT text, digest, version, revision FROM schemas ORDER BY version").fetchall()
            return [StoredSchema(*row) for row in rows]

    # --- writes -------------------------------------------------------------------------

    def commit(self, plan: Plan, metadata: dict[str, str], action: str) -> Revision:
        meta = json.dumps(metadata, sort_keys=True)
        with self.db.transaction(action) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_WRITE_LOCK])
            base, previous_us = conn.execute(_SELECT_HEAD).fetchone()  # type: ignore[misc]
            now_us = to_us(checked_time(self.clock()))
            reader = PostgresReader(self, conn, base, now_us)
            try:
                batch: Batch = plan(reader)
            finally:
                reader.close()
            revision: Revision = base + 1
            conn.execute("INSERT INTO revisions (revision, committed_at_us, metadata) VALUES (%s, %s, %s)",
                         [revision, max(now_us, previous_us), meta])
            if batch.deletes:
                conn.execute(_RETIRE_UNEXPIRED, [revision, *_columns(batch.deletes, 6), now_us])
            if batch.inserts:
                conn.execute(_RETIRE, [revision, *_columns(batch.inserts, 6)])  # even identical or expired rows
                conn.execute(_INSERT, [revision, *_columns(batch.inserts, 9)])
            if batch.schema is not None:
                conn.execute("INSERT INTO schemas (version, revision, text, digest) "
                             "SELECT coalesce(max(version), 0) + 1, %s, %s, %s FROM schemas",
                             [revision, *batch.schema])
        return revision

    def gc(self, before: datetime) -> int:
        with self.db.transaction("collect garbage") as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_WRITE_LOCK])
            # Revision times never decrease, so the newest revision older than the threshold is the last one in
            # time order; head is always a kept revision, so cutoff <= head.
            row = conn.execute("SELECT revision, committed_at_us FROM revisions WHERE committed_at_us < %s "
                               "ORDER BY committed_at_us DESC, revision DESC LIMIT 1", [to_us(before)]).fetchone()
            if row is None:
                return GcResult(0)
            cutoff, cutoff_us = row
            removed = conn.execute("DELETE FROM relationships WHERE deleted_rev <= %s", [cutoff]).rowcount
            # Expired at or before the cutoff's time: invisible to every snapshot still readable.
            expired = conn.execute(GC_EXPIRED, [cutoff_us, cutoff]).rowcount
            conn.execute("DELETE FROM revisions WHERE revision < %s", [cutoff])
            return GcResult(int(removed) + int(expired), int(expired))


#: The garbage collector's delete of the relationships that expired (at or before the cut-off's time) without being
#: deleted: through the partial index of migration 3 (``relationships_expiring``), never a scan of the table.
GC_EXPIRED = "DELETE FROM relationships WHERE deleted_rev IS NULL AND expires_at_us <= %s AND created_rev <= %s"


def _database(uri: str, **pool: float) -> Database:
    return Database(uri, name="the PostgreSQL store", **pool)  # type: ignore[arg-type]


def migration_plan(uri: str) -> list[Migration]:
    """The migrations ``headwater migrate`` would apply to the database at ``uri`` (empty: up to date)."""
    return _with_database(uri, lambda db: db.migration_plan(pg_migrations.MIGRATIONS,
                                                            table=pg_migrations.MIGRATIONS_TABLE))


def migrate(uri: str) -> list[Migration]:
    """Apply the migrations the database at ``uri`` lacks (``headwater migrate``); what was applied."""
    return _with_database(uri, lambda db: db.migrate(pg_migrations.MIGRATIONS, table=pg_migrations.MIGRATIONS_TABLE))


def _with_database(uri: str, work: Callable[[Database], list[Migration]]) -> list[Migration]:
    db = _database(uri)
    try:
        db.open()
        return work(db)
    finally:
        db.close()


class PostgresStore(Store):
    """A store in a PostgreSQL database shared by any number of servers: :class:`~.validating.Store` over it.

    :param uri: a ``postgresql://`` URI; the ``PG*`` environment variables and the password file fill in what it
      leaves out. The database must be migrated (``headwater migrate --db URI``, or ``migrate=True``).
    :param clock: returns the current time (timezone-aware); it stamps revisions and is the default ``now``.
    :param pool_size: connections open at most (each running call holds one while it reads or writes).
    :param pool_timeout: seconds a call waits for a connection before ``StoreUnavailableError``.
    :param statement_timeout: seconds one statement may run before the database cancels it.
    :param migrate: apply missing migrations at open (tests, a single-server setup).
    """

    def __init__(self, uri: str, *, clock: Callable[[], datetime] = _utc_now, pool_size: int = 20,
                 pool_timeout: float = 5.0, statement_timeout: float = 30.0, migrate: bool = False) -> None:
        db = _database(uri, pool_size=pool_size, pool_timeout=pool_timeout, statement_timeout=statement_timeout)
        try:
            db.open()
            if migrate:
                db.migrate(pg_migrations.MIGRATIONS, table=pg_migrations.MIGRATIONS_TABLE)
            db.require_current(pg_migrations.MIGRATIONS, table=pg_migrations.MIGRATIONS_TABLE)
            backend = _PostgresBackend(db, clock)
            backend.first_revision()
        except BaseException:
            db.close()
            raise
        self.uri = redact(uri)
        super().__init__(backend)

    def __repr__(self) -> str:
        return f"PostgresStore({self.uri!r})"

