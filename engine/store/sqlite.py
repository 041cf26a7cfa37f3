"""SqliteStore: the durable backend, one SQLite file in WAL mode, via sqlite-utils.

This is the only module that imports ``sqlite3`` or ``sqlite_utils``; every
driver failure is translated here (a busy or locked database becomes
``StoreUnavailableError``, a constraint violation ``WriteConflictError``, any
other ``StoreError``, each with the driver exception chained as ``__cause__``).

Design (tables in ``migrations.py``):

- ``relationships`` holds one row per version of a relationship with
  ``created_rev`` and ``deleted_rev`` (NULL while not deleted); "no subject
  relation" is stored as ``''`` so the key columns can sit in unique indexes.
  ``relationships_live_key`` (partial, ``WHERE deleted_rev IS NULL``) allows at
  most one not-deleted row per key. The table is ``WITHOUT ROWID`` with the
  key + ``created_rev`` as its primary key (migration 3), so an object's rows
  sit together: the evaluator's reads, ``lookup``/``subjects``/``read`` are
  ranges of it; ``relationships_by_subject`` serves ``resources``.
- ``revisions`` has one row per write transaction (time, metadata). Head is
  its largest revision, the oldest readable revision its smallest (``gc``
  deletes older ones).
- A snapshot is one read transaction: ``BEGIN`` then a first ``SELECT`` pins
  the WAL snapshot, and every query filters rows visible at the reader's
  revision (``created_rev <= R AND (deleted_rev IS NULL OR deleted_rev > R)``)
  and not expired at its ``now``. Reading an old revision is the same query
  with a smaller R.
- A write is one ``BEGIN IMMEDIATE`` transaction: SQLite allows one writer at
  a time, so the revision (head + 1) is allocated inside the transaction
  without races, and all updates, the revision row and its metadata commit or
  roll back together.
- Durability: ``PRAGMA synchronous=FULL``. In WAL mode that syncs the WAL on
  every commit, so a write acknowledged by ``write()`` survives a power loss
  or OS crash, at the cost of one fsync per write transaction (NORMAL would
  only survive process crashes).
- Connections: one per thread (``threading.local``), since the gRPC server is
  threaded; a thread that opens a second snapshot while one is open gets a
  second connection. ``close()`` closes every connection the store opened
  (a thread that ends leaves its connection open until then).

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
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import sqlite_utils

from ..errors import (
    AlreadyExistsError,
    InvalidRequestError,
    LimitExceededError,
    StoreError,
    StoreUnavailableError,
    WriteConflictError,
)
from ..relationships import ObjectRef, Relationship, RelationshipKey, SubjectRef, stored_relationship
from . import (
    NO_SUBJECT_RELATION,
    Change,
    Edge,
    Operation,
    Precondition,
    RelationshipFilter,
    Revision,
    SchemaCheck,
    StoredSchema,
    Update,
    Validator,
    _check_after,
    _check_delete_filter,
    _check_filter,
    _check_limit,
    _check_metadata,
    _check_now,
    _check_preconditions,
    _check_revision,
    _check_updates,
    _check_window,
    _enforce_preconditions,
    _gc_threshold,
    _key_text,
    _unavailable,
    _whole_revisions,
    edge_relationship,
)
from . import migrations as _migrations

__all__ = ["SqliteStore"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CORRUPT, _SQLITE_NOTADB = 5, 6, 11, 26

# --- SQL ------------------------------------------------------------------------------------

_COLUMNS = (
    "resource_type, resource_id, relation, subject_type, subject_id, subject_relation, "
    "caveat_name, caveat_context, expires_at_us"
)
_KEY_ORDER = "resource_type, resource_id, relation, subject_type, subject_id, subject_relation"
_VISIBLE = (
    "created_rev <= :rev AND (deleted_rev IS NULL OR deleted_rev > :rev) "
    "AND (expires_at_us IS NULL OR expires_at_us > :now)"
)
_KEY_MATCH = (
    "resource_type = :resource_type AND resource_id = :resource_id AND relation = :relation "
    "AND subject_type = :subject_type AND subject_id = :subject_id AND subject_relation = :subject_relation"
)
_SELECT_BOUNDS = "SELECT (SELECT min(revision) FROM revisions), (SELECT max(revision) FROM revisions)"
# The evaluator's reads (see Edge): edge columns only (the resource is the one asked about), numbered
# parameters (?1 type, ?2 id, ?3 revision, ?4 now, then the rest), no dict to build per query.
_EDGE_COLUMNS = "relation, subject_type, subject_id, subject_relation, caveat_name, caveat_context, expires_at_us"
_EDGE_VISIBLE = (
    "created_rev <= ?3 AND (deleted_rev IS NULL OR deleted_rev > ?3) AND (expires_at_us IS NULL OR expires_at_us > ?4)"
)
_EDGES = (
    f"SELECT {_EDGE_COLUMNS} FROM relationships "
    f"WHERE resource_type = ?1 AND resource_id = ?2 AND relation = ?5 AND {_EDGE_VISIBLE} "
    "ORDER BY subject_type, subject_id, subject_relation"
)
# Every relationship of one object, in the order edges() returns them, up to a limit (see _SqliteReader).
_EDGES_OBJECT = (
    f"SELECT {_EDGE_COLUMNS} FROM relationships "
    f"WHERE resource_type = ?1 AND resource_id = ?2 AND {_EDGE_VISIBLE} "
    "ORDER BY relation, subject_type, subject_id, subject_relation LIMIT ?5"
)
# Only the subject sets of a relation: the partial index relationships_subject_sets (migration 2) finds them
# without reading the relation's plain subjects (a clearance with 17,000 users has a handful of subject sets).
_EDGE_SETS = (  # INDEXED BY: on the table clustered by resource, the planner would read the whole relation
    f"SELECT {_EDGE_COLUMNS} FROM relationships INDEXED BY relationships_subject_sets "
    "WHERE resource_type = ?1 AND resource_id = ?2 AND relation = ?5 "
    f"AND subject_relation != '' AND {_EDGE_VISIBLE} ORDER BY subject_type, subject_id, subject_relation"
)
_EDGE_LOOKUP = (
    f"SELECT {_EDGE_COLUMNS} FROM relationships WHERE resource_type = ?1 AND resource_id = ?2 AND relation = ?5 "
    f"AND subject_type = ?6 AND subject_id = ?7 AND subject_relation = ?8 AND {_EDGE_VISIBLE}"
)
_SELECT_RESOURCES = (  # INDEXED BY: the planner would scan every row of the type by the primary key
    f"SELECT {_COLUMNS} FROM relationships INDEXED BY relationships_by_subject "
    "WHERE subject_type = :subject_type AND subject_id = :subject_id AND subject_relation = :subject_relation "
    f"AND resource_type = :resource_type AND relation = :relation AND {_VISIBLE} "
    "ORDER BY resource_id"
)
_SELECT_LIVE_EXPIRY = f"SELECT expires_at_us FROM relationships WHERE {_KEY_MATCH} AND deleted_rev IS NULL"
_RETIRE = f"UPDATE relationships SET deleted_rev = :rev WHERE {_KEY_MATCH} AND deleted_rev IS NULL"
_RETIRE_UNEXPIRED = f"{_RETIRE} AND (expires_at_us IS NULL OR expires_at_us > :now)"
_RETIRE_ROW = (  # one stored row, by its primary key (key + created_rev)
    "UPDATE relationships SET deleted_rev = ? WHERE resource_type = ? AND resource_id = ? AND relation = ? "
    "AND subject_type = ? AND subject_id = ? AND subject_relation = ? AND created_rev = ?"
)
_INSERT = (
    f"INSERT INTO relationships ({_COLUMNS}, created_rev) VALUES (:resource_type, :resource_id, :relation, "
    ":subject_type, :subject_id, :subject_relation, :caveat_name, :caveat_context, :expires_at_us, :rev)"
)
_SELECT_TOUCHES = (
    f"SELECT {_COLUMNS}, created_rev FROM relationships WHERE created_rev > :after AND created_rev <= :until "
    f"ORDER BY created_rev, {_KEY_ORDER} LIMIT :limit"
)
# A row deleted at the revision that created its replacement is an update, not a delete.
_SELECT_DELETES = (
    f"SELECT {_COLUMNS}, deleted_rev FROM relationships AS old WHERE deleted_rev > :after AND deleted_rev <= :until "
    "AND NOT EXISTS (SELECT 1 FROM relationships AS new WHERE new.resource_type = old.resource_type "
    "AND new.resource_id = old.resource_id AND new.relation = old.relation "
    "AND new.subject_type = old.subject_type AND new.subject_id = old.subject_id "
    "AND new.subject_relation = old.subject_relation AND new.created_rev = old.deleted_rev) "
    f"ORDER BY deleted_rev, {_KEY_ORDER} LIMIT :limit"
)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _from_us(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _relationship(row: Sequence[Any]) -> Relationship:
    """Build a Relationship from the first nine columns of a row selected with ``_COLUMNS`` (checked when
    written, so not checked again)."""
    expires = row[8]
    return stored_relationship(row[0], row[1], row[2], row[3], row[4], row[5] or None, row[6], row[7],
                               None if expires is None else _from_us(expires))


def _key_params(rel: Relationship) -> dict[str, Any]:
    return {
        "resource_type": rel.resource.type,
        "resource_id": rel.resource.id,
        "relation": rel.relation,
        "subject_type": rel.subject.type,
        "subject_id": rel.subject.id,
        "subject_relation": rel.subject.relation or "",
    }


def _row_params(rel: Relationship, revision: Revision) -> dict[str, Any]:
    params = _key_params(rel)
    params["caveat_name"] = rel.caveat.name if rel.caveat is not None else None
    params["caveat_context"] = rel.caveat.context if rel.caveat is not None else None
    params["expires_at_us"] = _to_us(rel.expiration) if rel.expiration is not None else None
    params["rev"] = revision
    return params


def _table_for(filter: RelationshipFilter) -> str:
    """``relationships``, with the subject index named when the filter gives an exact subject and no resource
    id: the table is clustered by resource, and without statistics SQLite's planner would rather scan every
    row of the resource type in key order than look the subject up."""
    if filter.subject_type is not None and filter.subject_id is not None and filter.resource_id is None \
            and filter.resource_id_prefix is None:
        return "relationships INDEXED BY relationships_by_subject"
    return "relationships"


def _filter_sql(filter: RelationshipFilter) -> tuple[str, dict[str, Any]]:
    """A WHERE fragment (never empty) and its parameters for ``filter``."""
    _check_filter(filter)
    clauses = ["1 = 1"]
    params: dict[str, Any] = {}
    for column in ("resource_type", "resource_id", "relation", "subject_type", "subject_id"):
        value = getattr(filter, column)
        if value is not None:
            clauses.append(f"{column} = :f_{column}")
            params[f"f_{column}"] = value
    if filter.resource_id_prefix is not None:
        # Ids are ASCII below 0x7f, so [prefix, prefix + "\x7f") holds exactly the ids with
        # that prefix, and the range can use the index (a LIKE or substr() would not).
        clauses.append("resource_id >= :f_prefix_low AND resource_id < :f_prefix_high")
        params["f_prefix_low"] = filter.resource_id_prefix
        params["f_prefix_high"] = filter.resource_id_prefix + "\x7f"
    if filter.subject_relation is not None:
        clauses.append("subject_relation = :f_subject_relation")
        params["f_subject_relation"] = "" if filter.subject_relation == NO_SUBJECT_RELATION else filter.subject_relation
    return " AND ".join(clauses), params


OBJECT_ROWS = 64
"""An object with at most this many relationships is read whole, once per snapshot, the first time a check
asks about it; a larger one is asked each question with its own indexed query."""
_UNREAD = object()
_MAX_OBJECTS_PER_SNAPSHOT = 20_000  # objects kept by one snapshot (a long lookup stops keeping more)
_MAX_LARGE_OBJECTS = 100_000  # large objects remembered store-wide (a hint: forgetting one costs one read)


class _SqliteReader:
    """One snapshot: queries on a connection inside its read (or write) transaction."""

    def __init__(self, store: SqliteStore, db: sqlite_utils.Database, revision: Revision, now_us: int) -> None:
        self._store = store
        self._db = db
        self._conn = db.conn  # the driver's connection: sqlite-utils' execute() wrapper costs a parse per call
        self._revision = revision
        self._now_us = now_us
        self._open = True
        # Small objects read whole, once per snapshot: (type, id) -> {relation: rows}, or None for
        # an object with more than OBJECT_ROWS relationships (then each question is its own indexed query).
        self._objects: dict[tuple[str, str], dict[str, list[Relationship]] | None] = {}

    @property
    def revision(self) -> Revision:
        return self._revision

    def close(self) -> None:
        self._open = False

    def _query(self, sql: str, params: dict[str, Any]) -> list[Any]:
        if not self._open:
            raise StoreError("this reader's snapshot is closed; open a new snapshot")
        params["rev"] = self._revision
        params["now"] = self._now_us
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._store._translate(exc, "read relationships") from exc

    def _edge_query(self, sql: str, *params: Any) -> list[Edge]:
        """``sql`` (an _EDGE* query) with ?1..?4 = resource type and id (the first two of ``params``), this
        snapshot's revision and now, then the rest of ``params``."""
        if not self._open:
            raise StoreError("this reader's snapshot is closed; open a new snapshot")
        try:
            return self._conn.execute(sql, (params[0], params[1], self._revision, self._now_us, *params[2:])
                                      ).fetchall()
        except sqlite3.Error as exc:
            raise self._store._translate(exc, "read relationships") from exc

    def _object(self, resource_type: str, resource_id: str) -> dict[str, list[Edge]] | None:
        """The edges of every relationship of an object visible in this snapshot, by relation, when it has
        at most ``OBJECT_ROWS``; None for a larger object. One query answers every later question about a
        small object (a check asks about several relations of each object it visits, and the same object
        again from other branches); large objects are remembered store-wide so they are not read twice."""
        key = (resource_type, resource_id)
        objects = self._objects
        found = objects.get(key, _UNREAD)
        if found is not _UNREAD:
            if not self._open:
                raise StoreError("this reader's snapshot is closed; open a new snapshot")
            return found  # type: ignore[return-value]
        large = self._store._large_objects
        found = None
        if key not in large:
            rows = self._edge_query(_EDGES_OBJECT, resource_type, resource_id, OBJECT_ROWS + 1)
            if len(rows) > OBJECT_ROWS:
                if len(large) >= _MAX_LARGE_OBJECTS:
                    large.clear()
                large.add(key)
            else:
                found = {}
                for row in rows:
                    same = found.get(row[0])
                    if same is None:
                        found[row[0]] = [row]
                    else:
                        same.append(row)
        if len(objects) < _MAX_OBJECTS_PER_SNAPSHOT:
            objects[key] = found
        return found

    def edges(self, resource_type: str, resource_id: str, relation: str) -> Sequence[Edge]:
        whole = self._objects.get((resource_type, resource_id), _UNREAD)
        if whole is _UNREAD or not self._open:
            whole = self._object(resource_type, resource_id)
        if whole is not None:
            return whole.get(relation, ())  # type: ignore[union-attr]
        return self._edge_query(_EDGES, resource_type, resource_id, relation)

    def edge_sets(self, resource_type: str, resource_id: str, relation: str) -> Sequence[Edge]:
        whole = self._objects.get((resource_type, resource_id), _UNREAD)
        if whole is _UNREAD or not self._open:
            whole = self._object(resource_type, resource_id)
        if whole is not None:
            return [row for row in whole.get(relation, ()) if row[3]]  # type: ignore[union-attr]
        return self._edge_query(_EDGE_SETS, resource_type, resource_id, relation)

    def edge_lookup(self, resource_type: str, resource_id: str, relation: str, subject_type: str, subject_id: str,
                    subject_relation: str) -> Sequence[Edge]:
        whole = self._objects.get((resource_type, resource_id), _UNREAD)
        if whole is _UNREAD or not self._open:
            whole = self._object(resource_type, resource_id)
        if whole is not None:
            for row in whole.get(relation, ()):  # type: ignore[union-attr]
                if row[2] == subject_id and row[1] == subject_type and row[3] == subject_relation:
                    return (row,)  # a key is visible at most once
            return ()
        return self._edge_query(_EDGE_LOOKUP, resource_type, resource_id, relation, subject_type, subject_id,
                                subject_relation)

    def subjects(self, resource: ObjectRef, relation: str) -> Iterator[Relationship]:
        rt, rid = resource.type, resource.id
        return iter([edge_relationship(rt, rid, e) for e in self.edges(rt, rid, relation)])

    def subject_sets(self, resource: ObjectRef, relation: str) -> Iterator[Relationship]:
        rt, rid = resource.type, resource.id
        return iter([edge_relationship(rt, rid, e) for e in self.edge_sets(rt, rid, relation)])

    def lookup(
        self,
        resource: ObjectRef,
        relation: str,
        subject_type: str,
        subject_id: str,
        subject_relation: str | None,
    ) -> Iterator[Relationship]:
        rt, rid = resource.type, resource.id
        found = self.edge_lookup(rt, rid, relation, subject_type, subject_id, subject_relation or "")
        return iter([edge_relationship(rt, rid, e) for e in found])

    def resources(self, resource_type: str, relation: str, subject: SubjectRef) -> Iterator[Relationship]:
        rows = self._query(
            _SELECT_RESOURCES,
            {
                "resource_type": resource_type,
                "relation": relation,
                "subject_type": subject.type,
                "subject_id": subject.id,
                "subject_relation": subject.relation or "",
            },
        )
        return map(_relationship, rows)

    def read(
        self,
        filter: RelationshipFilter,
        *,
        after: RelationshipKey | None = None,
        limit: int | None = None,
    ) -> list[Relationship]:
        _check_limit(limit)
        _check_after(after)
        where, params = _filter_sql(filter)
        if after is not None:
            resource, relation, subject = after
            where += (
                f" AND ({_KEY_ORDER}) > (:a_resource_type, :a_resource_id, :a_relation, "
                ":a_subject_type, :a_subject_id, :a_subject_relation)"
            )
            params.update(
                a_resource_type=resource.type,
                a_resource_id=resource.id,
                a_relation=relation,
                a_subject_type=subject.type,
                a_subject_id=subject.id,
                a_subject_relation=subject.relation or "",
            )
        sql = f"SELECT {_COLUMNS} FROM {_table_for(filter)} WHERE {where} AND {_VISIBLE} ORDER BY {_KEY_ORDER}"
        if limit is not None:
            sql += " LIMIT :limit"
            params["limit"] = limit
        return [_relationship(row) for row in self._query(sql, params)]

    def count(self, filter: RelationshipFilter) -> int:
        where, params = _filter_sql(filter)
        rows = self._query(f"SELECT count(*) FROM {_table_for(filter)} WHERE {where} AND {_VISIBLE}", params)
        result: int = rows[0][0]
        return result


class _SqliteSnapshot:
    """``SqliteStore.snapshot()``: a read transaction on this thread's idle connection, as a reader.

    The same steps as ``_read`` (connection, BEGIN, bounds, COMMIT, connection back), written out flat:
    a check opens one per call, and the nested generator context managers cost more than the transaction.
    """

    __slots__ = ("_store", "_revision", "_now_us", "_db", "_idle", "_reader")

    def __init__(self, store: SqliteStore, revision: Revision | None, now_us: int) -> None:
        self._store = store
        self._revision = revision
        self._now_us = now_us

    def __enter__(self) -> _SqliteReader:
        store = self._store
        db, idle = store._checkout()
        self._db, self._idle = db, idle
        try:
            conn = db.conn
            conn.execute("BEGIN")
            oldest, head = conn.execute(_SELECT_BOUNDS).fetchone()
            at = head if self._revision is None else self._revision
            if not oldest <= at <= head:
                raise _unavailable(at, oldest, head)
        except BaseException as exc:
            self._release()
            if isinstance(exc, sqlite3.Error):
                raise store._translate(exc, "read a snapshot") from exc
            raise
        self._reader = reader = _SqliteReader(store, db, at, self._now_us)
        return reader

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._reader.close()
        store = self._store
        try:
            if exc is None:
                try:
                    self._db.conn.execute("COMMIT")
                except sqlite3.Error as error:
                    raise store._translate(error, "read a snapshot") from error
        finally:
            self._release()
        if isinstance(exc, sqlite3.Error):
            raise store._translate(exc, "read a snapshot") from exc

    def _release(self) -> None:
        """Roll back what is still open and give the connection back to its thread (or close it)."""
        self._store._checkin(self._db, self._idle)


class SqliteStore:
    """A durable store in one SQLite file (created on first use); see the module docstring.

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

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Callable[[], datetime] = _utc_now,
        busy_timeout: float = 5.0,
    ) -> None:
        if str(path) == ":memory:" or not str(path):
            raise InvalidRequestError("SqliteStore needs a file path; use MemoryStore for an in-memory store")
        self._path = Path(path)
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        # Objects found to have more than OBJECT_ROWS relationships (a planning hint, never an answer).
        self._large_objects: set[tuple[str, str]] = set()
        self._connections: list[sqlite_utils.Database] = []
        self._connections_lock = threading.Lock()
        self._closed = False
        try:
            with self._connection() as db:
                self._migrate(db)
        except BaseException:
            self.close()
            raise

    # --- connections, transactions, errors ------------------------------------------------

    def _translate(self, exc: sqlite3.Error, action: str) -> StoreError:
        """The StoreError for a driver exception (the caller chains ``exc`` as its cause)."""
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        where = f"the SQLite store at {self._path}"
        if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in str(exc) or "busy" in str(exc):
            return StoreUnavailableError(f"cannot {action}: {where} is busy ({exc}); retry later")
        if primary in (_SQLITE_NOTADB, _SQLITE_CORRUPT):
            return StoreError(f"cannot {action}: {where} is not a database or is corrupted ({exc})")
        if isinstance(exc, sqlite3.IntegrityError):
            return WriteConflictError(f"cannot {action}: a concurrent change conflicts with it at {where} ({exc})")
        return StoreError(f"cannot {action}: {where} failed ({exc})")

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self._translate(exc, action) from exc

    def _connect(self) -> sqlite_utils.Database:
        with self._translated("open the store"):
            conn = sqlite3.connect(
                str(self._path), timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"cannot open the SQLite store at {self._path}: WAL mode unavailable ({mode})")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
                db = sqlite_utils.Database(conn, execute_plugins=False)
            except BaseException:
                conn.close()
                raise
        with self._connections_lock:
            self._connections.append(db)
        return db

    @contextmanager
    def _connection(self) -> Iterator[sqlite_utils.Database]:
        """This thread's idle connection (opened on demand), returned to it afterwards."""
        db, idle = self._checkout()
        try:
            yield db
        finally:
            self._checkin(db, idle)

    def _checkout(self) -> tuple[sqlite_utils.Database, list[sqlite_utils.Database]]:
        """This thread's idle connection (opened on demand), and the list to give it back to."""
        if self._closed:
            raise StoreError(f"the SQLite store at {self._path} is closed")
        idle: list[sqlite_utils.Database] | None = getattr(self._local, "idle", None)
        if idle is None:
            idle = self._local.idle = []
        return (idle.pop() if idle else self._connect()), idle

    def _checkin(self, db: sqlite_utils.Database, idle: list[sqlite_utils.Database]) -> None:
        """Give ``db`` back (rolled back if still in a transaction), or close it when it cannot be reused."""
        if not self._closed and self._is_reusable(db):
            idle.append(db)

    def _is_reusable(self, db: sqlite_utils.Database) -> bool:
        """True when ``db`` is out of any transaction; a connection stuck in one is closed instead."""
        try:
            if db.conn.in_transaction:
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

    @contextmanager
    def _transaction(self, db: sqlite_utils.Database, begin: str) -> Iterator[None]:
        db.execute(begin)
        try:
            yield
        except BaseException:
            if db.conn.in_transaction:
                db.execute("ROLLBACK")
            raise
        try:
            db.execute("COMMIT")
        except BaseException:
            if db.conn.in_transaction:
                db.execute("ROLLBACK")
            raise

    @contextmanager
    def _read(self, action: str) -> Iterator[tuple[sqlite_utils.Database, Revision, Revision]]:
        """A read transaction; yields (db, oldest, head) read inside it, which pins the snapshot."""
        with self._connection() as db, self._translated(action), self._transaction(db, "BEGIN"):
            oldest, head = db.execute(_SELECT_BOUNDS).fetchone()
            yield db, oldest, head

    @contextmanager
    def _write(self, action: str) -> Iterator[tuple[sqlite_utils.Database, Revision, datetime]]:
        """A write transaction; yields (db, base revision, now)."""
        with self._connection() as db, self._translated(action), self._transaction(db, "BEGIN IMMEDIATE"):
            base = db.execute("SELECT max(revision) FROM revisions").fetchone()[0]
            yield db, base, self._now()

    def _new_revision(
        self, db: sqlite_utils.Database, base: Revision, now: datetime, metadata: dict[str, str]
    ) -> Revision:
        """Insert revision base + 1; its time never goes below the previous revision's."""
        previous_us = db.execute("SELECT committed_at_us FROM revisions WHERE revision = ?", [base]).fetchone()[0]
        revision = base + 1
        db.execute(
            "INSERT INTO revisions (revision, committed_at_us, metadata) VALUES (?, ?, ?)",
            [revision, max(_to_us(now), previous_us), json.dumps(metadata, sort_keys=True)],
        )
        return revision

    def _migrate(self, db: sqlite_utils.Database) -> None:
        migrations = _migrations.MIGRATIONS
        latest = migrations[-1].version
        with self._translated("open the store"), self._transaction(db, "BEGIN IMMEDIATE"):
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "schema_migrations" not in tables:
                raise StoreError(
                    f"cannot open the SQLite store at {self._path}: it is a database of something else "
                    f"(tables {sorted(tables)}), not a Headwater store"
                )
            db.execute(_migrations.MIGRATIONS_TABLE)
            applied = db.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]
            if applied > latest:
                raise StoreError(
                    f"cannot open the SQLite store at {self._path}: it was written by a newer Headwater "
                    f"(table layout version {applied}; this version knows up to {latest}); upgrade Headwater"
                )
            for migration in migrations:
                if migration.version > applied:
                    for statement in migration.statements:
                        db.execute(statement)
                    db.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                        [migration.version, migration.name, _utc_now().isoformat()],
                    )
            if db.execute("SELECT 1 FROM revisions LIMIT 1").fetchone() is None:
                db.execute(
                    "INSERT INTO revisions (revision, committed_at_us) VALUES (0, ?)",
                    [_to_us(_check_now(self._clock()))],
                )

    # --- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection this store opened (from any thread)."""
        self._closed = True
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for db in connections:
            try:
                db.execute("PRAGMA optimize")  # keeps the planner's statistics current (SQLite's advice)
            except sqlite3.Error:
                pass  # best effort: a busy or read-only file keeps its old statistics
            try:
                db.close()
            except sqlite3.Error:
                pass  # closing is best effort; the file stays consistent either way

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- reads --------------------------------------------------------------------------

    def snapshot(self, revision: Revision | None = None, *, now: datetime | None = None) -> _SqliteSnapshot:
        _check_revision(revision)
        now_us = _to_us(self._now() if now is None else _check_now(now))
        return _SqliteSnapshot(self, revision, now_us)

    def _now(self) -> datetime:
        return _check_now(self._clock())

    def head(self) -> Revision:
        with self._connection() as db, self._translated("read the head revision"):
            head: Revision = db.execute("SELECT max(revision) FROM revisions").fetchone()[0]
            return head

    def revision_time(self, revision: Revision) -> datetime:
        return _from_us(self._revision_row(revision)[0])

    def revision_metadata(self, revision: Revision) -> dict[str, str]:
        metadata: dict[str, str] = json.loads(self._revision_row(revision)[1])
        return metadata

    def _revision_row(self, revision: Revision) -> tuple[int, str]:
        _check_revision(revision)
        with self._read("read a revision") as (db, oldest, head):
            row = db.execute(
                "SELECT committed_at_us, metadata FROM revisions WHERE revision = ?", [revision]
            ).fetchone()
            if row is None:
                raise _unavailable(revision, oldest, head)
            return row[0], row[1]

    def changes(self, after: Revision, *, limit: int | None = None) -> list[Change]:
        _check_revision(after)
        _check_limit(limit)
        with self._read("read changes") as (db, oldest, head):
            if not oldest <= after <= head:
                raise _unavailable(after, oldest, head)
            found = self._changes(db, after, head, limit)
            if limit is None or len(found) <= limit:
                return found
            first = found[0].revision
            if found[limit].revision == first:  # the first revision alone is over the limit: return it whole
                return self._changes(db, first - 1, first, None)
            return _whole_revisions(found, limit)

    def _changes(self, db: sqlite_utils.Database, after: Revision, until: Revision, limit: int | None) -> list[Change]:
        """Changes of revisions in (after, until] in (revision, key) order; at most limit + 1 of them."""
        params = {"after": after, "until": until, "limit": -1 if limit is None else limit + 1}  # -1: no limit
        touches = db.execute(_SELECT_TOUCHES, params).fetchall()
        deletes = db.execute(_SELECT_DELETES, params).fetchall()
        found = [Change(row[9], Operation.TOUCH, _relationship(row)) for row in touches]
        found += [Change(row[9], Operation.DELETE, _relationship(row)) for row in deletes]
        found.sort(key=lambda change: (change.revision, change.relationship.key))
        return found if limit is None else found[: limit + 1]

    def read_schema(self, revision: Revision | None = None) -> StoredSchema | None:
        _check_revision(revision)
        with self._read("read the schema") as (db, oldest, head):
            at = head if revision is None else revision
            if not oldest <= at <= head:
                raise _unavailable(at, oldest, head)
            row = db.execute(
                "SELECT text, digest, version, revision FROM schemas WHERE revision <= ? ORDER BY version DESC LIMIT 1",
                [at],
            ).fetchone()
            return None if row is None else StoredSchema(*row)

    def schema_history(self) -> list[StoredSchema]:
        with self._read("read the schema history") as (db, _oldest, _head):
            rows = db.execute("SELECT text, digest, version, revision FROM schemas ORDER BY version").fetchall()
            return [StoredSchema(*row) for row in rows]

    # --- writes -------------------------------------------------------------------------

    def write(
        self,
        updates: Sequence[Update],
        preconditions: Sequence[Precondition] = (),
        *,
        validate: Validator | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Revision:
        batch = _check_updates(updates)
        conditions = _check_preconditions(preconditions)
        meta = _check_metadata(metadata)
        with self._write("write relationships") as (db, base, now):
            now_us = _to_us(now)
            reader = _SqliteReader(self, db, base, now_us)
            try:
                _enforce_preconditions(reader, conditions)
                if validate is not None:
                    validate(reader, batch)
            finally:
                reader.close()
            for update in batch:
                if update.operation is Operation.CREATE:
                    row = db.execute(_SELECT_LIVE_EXPIRY, _key_params(update.relationship)).fetchone()
                    if row is not None and (row[0] is None or row[0] > now_us):
                        raise AlreadyExistsError(
                            f"cannot create relationship {_key_text(update.relationship.key)!r}: it already exists",
                            relationship=update.relationship,
                        )
            revision = self._new_revision(db, base, now, meta)
            deletes: list[dict[str, Any]] = []
            replaced: list[dict[str, Any]] = []
            inserts: list[dict[str, Any]] = []
            for update in batch:
                key = _key_params(update.relationship)
                if update.operation is Operation.DELETE:
                    deletes.append({**key, "rev": revision, "now": now_us})
                else:  # replacing retires the old row even when it is identical or expired
                    replaced.append({**key, "rev": revision})
                    inserts.append(_row_params(update.relationship, revision))
            db.conn.executemany(_RETIRE_UNEXPIRED, deletes)
            db.conn.executemany(_RETIRE, replaced)
            db.conn.executemany(_INSERT, inserts)
            return revision

    def delete(
        self,
        filter: RelationshipFilter,
        *,
        limit: int | None = None,
        allow_partial: bool = False,
        preconditions: Sequence[Precondition] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> tuple[Revision, int, bool]:
        _check_delete_filter(filter)
        _check_limit(limit)
        conditions = _check_preconditions(preconditions)
        meta = _check_metadata(metadata)
        with self._write("delete relationships") as (db, base, now):
            now_us = _to_us(now)
            reader = _SqliteReader(self, db, base, now_us)
            try:
                _enforce_preconditions(reader, conditions)
            finally:
                reader.close()
            where, params = _filter_sql(filter)
            sql = (f"SELECT {_KEY_ORDER}, created_rev FROM {_table_for(filter)} WHERE {where} AND {_VISIBLE} "
                   f"ORDER BY {_KEY_ORDER}")
            params.update(rev=base, now=now_us)
            if limit is not None:
                sql += " LIMIT :limit"
                params["limit"] = limit + 1
            ids = [tuple(row) for row in db.execute(sql, params).fetchall()]  # primary keys
            partial = False
            if limit is not None and len(ids) > limit:
                if not allow_partial:
                    raise LimitExceededError(
                        f"delete would remove more than {limit} relationships matching ({filter}); "
                        "raise the limit or pass allow_partial=True",
                        limit=limit,
                    )
                ids, partial = ids[:limit], True
            revision = self._new_revision(db, base, now, meta)
            db.conn.executemany(_RETIRE_ROW, [(revision, *key) for key in ids])
            return revision, len(ids), partial

    def write_schema(
        self,
        text: str,
        digest: str,
        *,
        check: SchemaCheck | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Revision:
        if not isinstance(text, str) or not isinstance(digest, str):
            raise InvalidRequestError("invalid schema write: text and digest must be strings")
        meta = _check_metadata(metadata)
        with self._write("write the schema") as (db, base, now):
            if check is not None:
                reader = _SqliteReader(self, db, base, _to_us(now))
                try:
                    check(reader)
                finally:
                    reader.close()
            revision = self._new_revision(db, base, now, meta)
            version = db.execute("SELECT coalesce(max(version), 0) + 1 FROM schemas").fetchone()[0]
            db.execute(
                "INSERT INTO schemas (version, revision, text, digest) VALUES (?, ?, ?, ?)",
                [version, revision, text, digest],
            )
            return revision

    def gc(self, window: timedelta = timedelta(hours=24), *, now: datetime | None = None) -> int:
        _check_window(window)
        threshold = _gc_threshold(self._now() if now is None else _check_now(now), window)
        if threshold is None:
            return 0
        with self._write("collect garbage") as (db, _base, _now):
            # Revision times never decrease, so the newest revision older than the threshold is
            # the last one in time order; head is always a kept revision, so cutoff <= head.
            row = db.execute(
                "SELECT revision FROM revisions WHERE committed_at_us < ? "
                "ORDER BY committed_at_us DESC, revision DESC LIMIT 1",
                [_to_us(threshold)],
            ).fetchone()
            if row is None:
                return 0
            cutoff = row[0]
            removed: int = db.execute("DELETE FROM relationships WHERE deleted_rev <= ?", [cutoff]).rowcount
            db.execute("DELETE FROM revisions WHERE revision < ?", [cutoff])
            return removed
