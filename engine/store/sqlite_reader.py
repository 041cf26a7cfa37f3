"""The SQLite backend's reads: one snapshot is one read transaction, read through a few indexed queries.

Every query filters the rows visible at the reader's revision
(``created_rev <= R AND (deleted_rev IS NULL OR deleted_rev > R)``) and not
expired at its ``now``; reading an old revision is the same query with a smaller
R. The table is clustered by relationship key (``WITHOUT ROWID``, migration 3),
so an object's rows are one B-tree range:

- an object with at most :data:`OBJECT_ROWS` relationships is read whole, once
  per snapshot, the first time the evaluator asks about it (a check asks about
  several relations of each object it visits), without the resource columns
  (known), and its rows become :class:`~.contract.Row` values only when they
  are returned;
- a larger object gets one indexed query per question, and is remembered
  store-wide (a hint) so it is not read whole again; a relation's subject sets
  have their own partial index, so a clearance held by 17,000 users costs the
  same as one held by 17.

Example::

    >>> import tempfile, pathlib
    >>> from headwater.engine.relationships import parse_relationship
    >>> from headwater.engine.store import Operation, Update
    >>> from headwater.engine.store.sqlite import SqliteStore
    >>> with SqliteStore(pathlib.Path(tempfile.mkdtemp()) / "h.db") as store:
    ...     _ = store.write([Update(Operation.TOUCH, parse_relationship("doc:1#viewer@user:tom"))])
    ...     with store.snapshot() as reader:
    ...         reader.relationship("doc", "1", "viewer", "user", "tom", "").subject_id
    'tom'
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from ..sqlitedb import Connection, DriverError
from .contract import (RelationshipFilter, Revision, Row, RowKey, StoredSchema, row_from_tuple, rows_from_tuples,
                       unavailable)

if TYPE_CHECKING:
    from .sqlite import _SqliteBackend

__all__ = ["OBJECT_ROWS", "COLUMNS", "KEY_ORDER", "VISIBLE", "filter_sql", "table_for"]

COLUMNS = (
    "resource_type, resource_id, relation, subject_type, subject_id, subject_relation, "
    "caveat_name, caveat_context, expires_at_us"
)
"""A row's columns, in :class:`~.contract.Row`'s field order."""
KEY_ORDER = "resource_type, resource_id, relation, subject_type, subject_id, subject_relation"
VISIBLE = (
    "created_rev <= :rev AND (deleted_rev IS NULL OR deleted_rev > :rev) "
    "AND (expires_at_us IS NULL OR expires_at_us > :now)"
)
_SELECT_BOUNDS = "SELECT (SELECT min(revision) FROM revisions), (SELECT max(revision) FROM revisions)"
# The evaluator's reads: numbered parameters (?1 resource type, ?2 id, ?3 revision, ?4 now, then the rest).
_VISIBLE_AT = (
    "created_rev <= ?3 AND (deleted_rev IS NULL OR deleted_rev > ?3) AND (expires_at_us IS NULL OR expires_at_us > ?4)"
)
_SUBJECT_ORDER = "ORDER BY subject_type, subject_id, subject_relation"
_MEMBER_COLUMNS = "relation, subject_type, subject_id, subject_relation, caveat_name, caveat_context, expires_at_us"
"""A row's columns after the resource: what an object read whole returns (its resource is known)."""
_OBJECT = (  # every relationship of one object, by relation then subject, up to a limit
    f"SELECT {_MEMBER_COLUMNS} FROM relationships WHERE resource_type = ?1 AND resource_id = ?2 AND {_VISIBLE_AT} "
    "ORDER BY relation, subject_type, subject_id, subject_relation LIMIT ?5"
)
_RELATIONSHIPS = (
    f"SELECT {COLUMNS} FROM relationships "
    f"WHERE resource_type = ?1 AND resource_id = ?2 AND relation = ?5 AND {_VISIBLE_AT} {_SUBJECT_ORDER}"
)
_SUBJECT_SETS = (  # INDEXED BY: on the table clustered by resource, the planner would read the whole relation
    f"SELECT {COLUMNS} FROM relationships INDEXED BY relationships_subject_sets "
    "WHERE resource_type = ?1 AND resource_id = ?2 AND relation = ?5 "
    f"AND subject_relation != '' AND {_VISIBLE_AT} {_SUBJECT_ORDER}"
)
_RELATIONSHIP = (
    f"SELECT {COLUMNS} FROM relationships WHERE resource_type = ?1 AND resource_id = ?2 AND relation = ?5 "
    f"AND subject_type = ?6 AND subject_id = ?7 AND subject_relation = ?8 AND {_VISIBLE_AT}"
)
_SCHEMA = "SELECT text, digest, version, revision FROM schemas WHERE revision <= ? ORDER BY version DESC LIMIT 1"

OBJECT_ROWS = 64
"""An object with at most this many relationships is read whole, once per snapshot, the first time a check
asks about it; a larger one is asked each question with its own indexed query."""
_UNREAD = object()
_MAX_OBJECTS_PER_SNAPSHOT = 20_000  # objects kept by one snapshot (a long lookup stops keeping more)


def table_for(filter: RelationshipFilter) -> str:
    """``relationships``, with the subject index named when the filter gives an exact subject and no resource
    id: the table is clustered by resource, and without statistics SQLite's planner would rather scan every
    row of the resource type in key order than look the subject up."""
    if filter.subject_type is not None and filter.subject_id is not None and filter.resource_id is None \
            and filter.resource_id_prefix is None:
        return "relationships INDEXED BY relationships_by_subject"
    return "relationships"


def filter_sql(filter: RelationshipFilter) -> tuple[str, dict[str, Any]]:
    """A WHERE fragment (never empty) and its parameters for ``filter``."""
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
    subject_relation = filter.stored_subject_relation
    if subject_relation is not None:
        clauses.append("subject_relation = :f_subject_relation")
        params["f_subject_relation"] = subject_relation
    return " AND ".join(clauses), params


_AFTER_PARAMS = ("a_resource_type", "a_resource_id", "a_relation", "a_subject_type", "a_subject_id",
                 "a_subject_relation")


def _after_sql(filter: RelationshipFilter, after: RowKey, params: dict[str, Any]) -> str:
    """The condition "key after ``after``" (in key order), adding its parameters to ``params``.

    When the filter fixes every key column but the resource id to ``after``'s values (the reverse
    read of a lookup, paged), the condition is just ``resource_id > ?``: a range the subject index
    seeks to, so each page starts where the last one ended. The row-value comparison, equivalent
    there, makes SQLite's planner scan and sort every match again for each page.
    """
    fixed = (filter.resource_type, filter.relation, filter.subject_type, filter.subject_id,
             filter.stored_subject_relation)
    if fixed == (after[0], after[2], after[3], after[4], after[5]):
        params["a_resource_id"] = after[1]
        return "resource_id > :a_resource_id"
    params.update(zip(_AFTER_PARAMS, after))
    return f"({KEY_ORDER}) > (:{', :'.join(_AFTER_PARAMS)})"


class SqliteReader:
    """One snapshot: queries on a connection inside its read (or write) transaction."""

    def __init__(self, backend: _SqliteBackend, conn: Connection, revision: Revision, now_us: int) -> None:
        self._backend = backend
        self._conn = conn
        self._execute = conn.cursor().execute  # one cursor for the evaluator's reads (a cursor per query costs more)
        self._revision = revision
        self._now_us = now_us
        self._open = True
        # Small objects read whole, once per snapshot: (type, id) -> {relation: member tuples (_MEMBER_COLUMNS)},
        # or None for an object with more than OBJECT_ROWS relationships; and the Rows of each relation of a
        # small object once asked for: (type, id, relation) -> Rows.
        self._objects: dict[tuple[str, str], dict[str, list[Any]] | None] = {}
        self._relations: dict[tuple[str, str, str], list[Row]] = {}

    @property
    def revision(self) -> Revision:
        return self._revision

    def close(self) -> None:
        self._open = False

    def _closed(self) -> StoreError:
        return StoreError("this reader's snapshot is closed; open a new snapshot")

    def _query(self, sql: str, params: dict[str, Any]) -> list[Any]:
        if not self._open:
            raise self._closed()
        params["rev"] = self._revision
        params["now"] = self._now_us
        try:
            return self._conn.execute(sql, params).fetchall()
        except DriverError as exc:
            raise self._backend.translate(exc, "read relationships") from exc

    def _rows(self, sql: str, *params: Any) -> list[Any]:
        """``sql`` (one of the evaluator's queries) with ?1..?4 = resource type and id (the first two of
        ``params``), this snapshot's revision and now, then the rest of ``params``; plain tuples."""
        if not self._open:
            raise self._closed()
        try:
            return self._execute(sql, (params[0], params[1], self._revision, self._now_us, *params[2:])).fetchall()
        except DriverError as exc:
            raise self._backend.translate(exc, "read relationships") from exc

    def _object(self, resource_type: str, resource_id: str) -> dict[str, list[Any]] | None:
        """Every relationship of an object visible in this snapshot, as member tuples by relation, when it has
        at most ``OBJECT_ROWS``; None for a larger object. One query answers every later question about a small
        object (a check asks about several relations of each object it visits, and the same object again from
        other branches); large objects are remembered store-wide so they are not read whole twice."""
        key = (resource_type, resource_id)
        objects = self._objects
        found = objects.get(key, _UNREAD)
        if found is not _UNREAD:
            if not self._open:
                raise self._closed()
            return found  # type: ignore[return-value]
        large = self._backend.large_objects
        found = None
        if key not in large:
            members = self._rows(_OBJECT, resource_type, resource_id, OBJECT_ROWS + 1)
            if len(members) > OBJECT_ROWS:
                large.add(key)
            else:
                found = {}
                for member in members:
                    same = found.get(member[0])
                    if same is None:
                        found[member[0]] = [member]
                    else:
                        same.append(member)
        if len(objects) < _MAX_OBJECTS_PER_SNAPSHOT:
            objects[key] = found
        return found

    def relationships(self, resource_type: str, resource_id: str, relation: str) -> Sequence[Row]:
        key = (resource_type, resource_id, relation)
        rows = self._relations.get(key)
        if rows is not None and self._open:
            return rows
        whole = self._object(resource_type, resource_id)
        if whole is None:
            return rows_from_tuples(self._rows(_RELATIONSHIPS, resource_type, resource_id, relation))
        members = whole.get(relation)
        rows = [row_from_tuple((resource_type, resource_id) + m) for m in members] if members else []
        self._relations[key] = rows
        return rows

    def subject_sets(self, resource_type: str, resource_id: str, relation: str) -> Sequence[Row]:
        whole = self._objects.get((resource_type, resource_id), _UNREAD)
        if whole is _UNREAD or not self._open:
            whole = self._object(resource_type, resource_id)
        if whole is None:
            return rows_from_tuples(self._rows(_SUBJECT_SETS, resource_type, resource_id, relation))
        members = whole.get(relation)
        if not members:
            return ()
        return [row_from_tuple((resource_type, resource_id) + m) for m in members if m[3]]

    def relationship(self, resource_type: str, resource_id: str, relation: str, subject_type: str,
                     subject_id: str, subject_relation: str) -> Row | None:
        whole = self._objects.get((resource_type, resource_id), _UNREAD)
        if whole is _UNREAD or not self._open:
            whole = self._object(resource_type, resource_id)
        if whole is None:
            found = self._rows(_RELATIONSHIP, resource_type, resource_id, relation, subject_type, subject_id,
                               subject_relation)
            return row_from_tuple(found[0]) if found else None
        for m in whole.get(relation, ()):  # type: ignore[union-attr]
            if m[2] == subject_id and m[1] == subject_type and m[3] == subject_relation:
                return row_from_tuple((resource_type, resource_id) + m)  # a key is visible at most once
        return None

    def read(self, filter: RelationshipFilter, *, after: RowKey | None = None,
             limit: int | None = None) -> list[Row]:
        where, params = filter_sql(filter)
        if after is not None:
            where += " AND " + _after_sql(filter, after, params)
        sql = f"SELECT {COLUMNS} FROM {table_for(filter)} WHERE {where} AND {VISIBLE} ORDER BY {KEY_ORDER}"
        if limit is not None:
            sql += " LIMIT :limit"
            params["limit"] = limit
        return rows_from_tuples(self._query(sql, params))

    def count(self, filter: RelationshipFilter) -> int:
        where, params = filter_sql(filter)
        rows = self._query(f"SELECT count(*) FROM {table_for(filter)} WHERE {where} AND {VISIBLE}", params)
        result: int = rows[0][0]
        return result

    def schema(self) -> StoredSchema | None:
        if not self._open:
            raise self._closed()
        try:
            row = self._conn.execute(_SCHEMA, (self._revision,)).fetchone()
        except DriverError as exc:
            raise self._backend.translate(exc, "read the schema") from exc
        return None if row is None else StoredSchema(*row)


class SqliteSnapshot:
    """``snapshot()``: a read transaction on this thread's idle connection, as a reader.

    Written out flat (connection, BEGIN, bounds, COMMIT, connection back) rather than as nested
    generator context managers: a check opens one per call, and those cost more than the transaction.
    """

    __slots__ = ("_backend", "_revision", "_now_us", "_conn", "_idle", "_reader")

    def __init__(self, backend: _SqliteBackend, revision: Revision | None, now_us: int) -> None:
        self._backend = backend
        self._revision = revision
        self._now_us = now_us

    def __enter__(self) -> SqliteReader:
        backend = self._backend
        conn, idle = backend.checkout()
        self._conn, self._idle = conn, idle
        try:
            conn.execute("BEGIN")
            oldest, head = conn.execute(_SELECT_BOUNDS).fetchone()
            at = head if self._revision is None else self._revision
            if not oldest <= at <= head:
                raise unavailable(at, oldest, head)
        except BaseException as exc:
            backend.checkin(conn, idle)
            if isinstance(exc, DriverError):
                raise backend.translate(exc, "read a snapshot") from exc
            raise
        self._reader = reader = SqliteReader(backend, conn, at, self._now_us)
        return reader

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._reader.close()
        try:
            if exc is None:
                try:
                    self._conn.execute("COMMIT")
                except DriverError as error:
                    raise self._backend.translate(error, "read a snapshot") from error
        finally:
            self._backend.checkin(self._conn, self._idle)
        if isinstance(exc, DriverError):
            raise self._backend.translate(exc, "read a snapshot") from exc
