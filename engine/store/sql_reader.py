"""The reads of the SQL backends (SQLite and PostgreSQL), written once over a dialect: one snapshot, few queries.

Both SQL stores keep the same table (one row per version of a relationship, with
``created_rev`` and ``deleted_rev``), so every read filters the rows visible at
the reader's revision (``created_rev <= R AND (deleted_rev IS NULL OR deleted_rev
> R)``) and not expired at its ``now``; reading an old revision is the same query
with a smaller R. What differs between the two is small and lives in a subclass:
the placeholder of a numbered parameter (``?1`` / ``$1``), the driver's error
class, how a read of the whole table names an index, and where the cursor comes
from.

How the evaluator's reads are answered (both backends keep an object's rows
together: SQLite's table is clustered by key, PostgreSQL's primary-key index
starts with it):

- an object with at most :data:`OBJECT_ROWS` relationships is read whole, once
  per snapshot, the first time the evaluator asks about it (a check asks about
  several relations of each object it visits), without the resource columns
  (known), and its rows become :class:`~.contract.Row` values only when they
  are returned; on PostgreSQL, where every query is a round trip, this matters
  even more than on SQLite;
- a larger object gets one indexed query per question, and is remembered
  store-wide (:class:`LargeObjects`, a hint) so it is not read whole again; a
  relation's subject sets have their own partial index, so a clearance held by
  17,000 users costs the same as one held by 17.

Example::

    >>> sql, params = filter_sql(RelationshipFilter(resource_type="doc", subject_relation="..."), "$")
    >>> sql, params
    ('resource_type = $3 AND subject_relation = $4', ['doc', ''])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from ..errors import StoreError
from .contract import (
    Change,
    Operation,
    RelationshipFilter,
    Revision,
    Row,
    RowKey,
    StoredSchema,
    row_from_tuple,
    rows_from_tuples,
)

__all__ = ["COLUMNS", "KEY_ORDER", "OBJECT_ROWS", "LargeObjects", "SqlReader", "WriteSql", "changes_of", "filter_sql",
           "from_us", "to_us"]

COLUMNS = (
    "resource_type, resource_id, relation, subject_type, subject_id, subject_relation, "
    "caveat_name, caveat_context, expires_at_us"
)
"""A row's columns, in :class:`~.contract.Row`'s field order."""
KEY_ORDER = "resource_type, resource_id, relation, subject_type, subject_id, subject_relation"
_MEMBER_COLUMNS = "relation, subject_type, subject_id, subject_relation, caveat_name, caveat_context, expires_at_us"
"""A row's columns after the resource: what an object read whole returns (its resource is known)."""
_SUBJECT_ORDER = "ORDER BY subject_type, subject_id, subject_relation"

OBJECT_ROWS = 64
"""An object with at most this many relationships is read whole, once per snapshot, the first time a check
asks about it; a larger one is asked each question with its own indexed query."""
_UNREAD = object()
_MAX_OBJECTS_PER_SNAPSHOT = 20_000  # objects kept by one snapshot (a long lookup stops keeping more)
_MAX_LARGE_OBJECTS = 100_000  # large objects remembered store-wide (a hint: forgetting one costs one read)
_PREFETCH_CHUNK = 1_000  # objects per prefetch query
_LINEAGE_OBJECTS = 128  # objects one lineage prefetch reads at most (the rest are read as the check needs them)
READ_AHEAD = 32
"""Where the dialect reads many objects in one query (PREFETCH), an object a check asks about that was not read
yet is read together with up to this many objects that rows already read name as subject sets (``team:t1`` of
``…#viewer@team:t1#member``) and that were not read yet: the next objects a walk through groups is likely to
ask about. A walk down a hierarchy of groups then costs a round trip per level rather than one per group."""


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    """``moment`` as the tables store times: microseconds since the Unix epoch."""
    return (moment - _EPOCH) // _MICROSECOND


def from_us(micros: int) -> datetime:
    """A stored time (microseconds since the Unix epoch) as a UTC datetime."""
    return _EPOCH + timedelta(microseconds=micros)


class WriteSql:
    """The statements of a write transaction and of ``changes``, in a dialect's placeholders: ``p`` positional
    (``?``, ``%s``), ``named`` a format for a named one (``:{}``, ``%({})s``)."""

    def __init__(self, p: str, named: str) -> None:
        key_match = " AND ".join(f"{column} = {p}" for column in KEY_ORDER.split(", "))
        self.retire = f"UPDATE relationships SET deleted_rev = {p} WHERE {key_match} AND deleted_rev IS NULL"
        self.retire_unexpired = f"{self.retire} AND (expires_at_us IS NULL OR expires_at_us > {p})"
        self.insert = f"INSERT INTO relationships ({COLUMNS}, created_rev) VALUES ({', '.join([p] * 10)})"
        after, until, limit = (named.format(name) for name in ("after", "until", "limit"))
        self.select_touches = (
            f"SELECT {COLUMNS}, created_rev FROM relationships WHERE created_rev > {after} "
            f"AND created_rev <= {until} ORDER BY created_rev, {KEY_ORDER} LIMIT {limit}")
        same_key = " AND ".join(f"new.{column} = old.{column}" for column in KEY_ORDER.split(", "))
        # A row deleted at the revision that created its replacement is an update, not a delete.
        self.select_deletes = (
            f"SELECT {COLUMNS}, deleted_rev FROM relationships AS old WHERE deleted_rev > {after} "
            f"AND deleted_rev <= {until} AND NOT EXISTS (SELECT 1 FROM relationships AS new WHERE {same_key} "
            f"AND new.created_rev = old.deleted_rev) ORDER BY deleted_rev, {KEY_ORDER} LIMIT {limit}")


def changes_of(touches: Sequence[Sequence[Any]], deletes: Sequence[Sequence[Any]], limit: int | None) -> list[Change]:
    """The changes of rows read by ``select_touches`` and ``select_deletes``, by revision then key; at most
    ``limit`` + 1 of them."""
    found = [(row[9], Operation.TOUCH, row) for row in touches]
    found += [(row[9], Operation.DELETE, row) for row in deletes]
    found.sort(key=lambda change: (change[0], tuple(change[2][:6])))
    changes = [Change(revision, op, Row(*row[:9]).relationship()) for revision, op, row in found]
    return changes if limit is None else changes[: limit + 1]


class LargeObjects:
    """Objects found to have more than ``OBJECT_ROWS`` relationships: a planning hint, never an answer."""

    def __init__(self) -> None:
        self._keys: set[tuple[str, str]] = set()

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._keys

    def add(self, key: tuple[str, str]) -> None:
        if len(self._keys) >= _MAX_LARGE_OBJECTS:
            self._keys.clear()
        self._keys.add(key)


def visible(mark: str, revision: int, now: int) -> str:
    """The visibility condition with the revision and now as the numbered parameters ``revision`` and ``now``."""
    return (f"created_rev <= {mark}{revision} AND (deleted_rev IS NULL OR deleted_rev > {mark}{revision}) "
            f"AND (expires_at_us IS NULL OR expires_at_us > {mark}{now})")


def filter_sql(filter: RelationshipFilter, mark: str, params: list[Any] | None = None) -> tuple[str, list[Any]]:
    """A WHERE fragment (never empty) for ``filter`` with numbered parameters ``{mark}3``, ``{mark}4``... (1 and 2
    are the revision and now of :func:`visible`), and the parameter list (``params`` extended: its first two
    entries are 1 and 2)."""
    params = params if params is not None else []
    base = 3 - len(params)  # the number of the next parameter is len(params) + base

    def bind(value: Any) -> str:
        params.append(value)
        return f"{mark}{len(params) - 1 + base}"

    clauses: list[str] = []
    for column in ("resource_type", "resource_id", "relation", "subject_type", "subject_id"):
        value = getattr(filter, column)
        if value is not None:
            clauses.append(f"{column} = {bind(value)}")
    if filter.resource_id_prefix is not None:
        # Ids are ASCII below 0x7f, so [prefix, prefix + "\x7f") holds exactly the ids with that prefix (in
        # code-point order), and the range can use the index (a LIKE or substr() would not).
        clauses.append(f"resource_id >= {bind(filter.resource_id_prefix)} "
                       f"AND resource_id < {bind(filter.resource_id_prefix + chr(0x7f))}")
    subject_relation = filter.stored_subject_relation
    if subject_relation is not None:
        clauses.append(f"subject_relation = {bind(subject_relation)}")
    return " AND ".join(clauses) or "1 = 1", params


def _after_sql(filter: RelationshipFilter, after: RowKey, mark: str, params: list[Any]) -> str:
    """The condition "key after ``after``" (in key order), adding its parameters to ``params``.

    When the filter fixes every key column but the resource id to ``after``'s values (the reverse
    read of a lookup, paged), the condition is just ``resource_id > ?``: a range the subject index
    seeks to, so each page starts where the last one ended. The row-value comparison, equivalent
    there, makes SQLite's planner scan and sort every match again for each page.
    """
    fixed = (filter.resource_type, filter.relation, filter.subject_type, filter.subject_id,
             filter.stored_subject_relation)
    if fixed == (after[0], after[2], after[3], after[4], after[5]):
        params.append(after[1])
        return f"resource_id > {mark}{len(params)}"
    first = len(params) + 1
    params.extend(after)
    return f"({KEY_ORDER}) > ({', '.join(f'{mark}{n}' for n in range(first, first + 6))})"


class SqlReader:
    """One snapshot of a SQL store: queries on a connection inside its read (or write) transaction.

    A subclass names its dialect: ``MARK`` (the numbered-parameter sign), ``DRIVER_ERROR`` (what its driver
    raises) and, where the planner needs help, :meth:`table_for`. The evaluator's queries are built from
    ``MARK`` once per class (:meth:`__init_subclass__`).
    """

    MARK: ClassVar[str] = "?"
    DRIVER_ERROR: ClassVar[type[BaseException]] = Exception
    OBJECT: ClassVar[str]
    RELATIONSHIPS: ClassVar[str]
    SUBJECT_SETS: ClassVar[str]
    RELATIONSHIP: ClassVar[str]
    SCHEMA: ClassVar[str]
    #: Many objects read whole in one query ($1 types, $2 ids as arrays, $3 revision, $4 now, $5 rows per object),
    #: as (type, id, then the member columns); None where the dialect has no such query.
    PREFETCH: ClassVar[str | None] = None
    #: An object and its lineage ancestors read whole in one query ($1 type, $2 id, $3 lineage relation names,
    #: $4 revision, $5 now, $6 objects at most, $7 rows per object), as PREFETCH's rows; an object without
    #: relationships comes once with NULL members. None where the dialect has no such query.
    LINEAGE_CLOSURE: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        m = cls.MARK
        # The evaluator's reads: numbered parameters (1 resource type, 2 id, 3 revision, 4 now, then the rest).
        at = visible(m, 3, 4)
        cls.OBJECT = (  # every relationship of one object, by relation then subject, up to a limit
            f"SELECT {_MEMBER_COLUMNS} FROM relationships WHERE resource_type = {m}1 AND resource_id = {m}2 "
            f"AND {at} ORDER BY relation, subject_type, subject_id, subject_relation LIMIT {m}5")
        cls.RELATIONSHIPS = (
            f"SELECT {COLUMNS} FROM relationships WHERE resource_type = {m}1 AND resource_id = {m}2 "
            f"AND relation = {m}5 AND {at} {_SUBJECT_ORDER}")
        cls.SUBJECT_SETS = (
            f"SELECT {COLUMNS} FROM {cls.subject_sets_table()} WHERE resource_type = {m}1 AND resource_id = {m}2 "
            f"AND relation = {m}5 AND subject_relation != '' AND {at} {_SUBJECT_ORDER}")
        cls.RELATIONSHIP = (
            f"SELECT {COLUMNS} FROM relationships WHERE resource_type = {m}1 AND resource_id = {m}2 "
            f"AND relation = {m}5 AND subject_type = {m}6 AND subject_id = {m}7 AND subject_relation = {m}8 "
            f"AND {at}")
        cls.SCHEMA = (f"SELECT text, digest, version, revision FROM schemas WHERE revision <= {m}1 "
                      "ORDER BY version DESC LIMIT 1")

    @classmethod
    def subject_sets_table(cls) -> str:
        """The table (with an index hint where the dialect needs one) of the subject-set read."""
        return "relationships"

    @classmethod
    def table_for(cls, filter: RelationshipFilter) -> str:
        """The table (with an index hint where the dialect needs one) of a filtered read."""
        return "relationships"

    def __init__(self, large_objects: LargeObjects, execute: Callable[[str, Sequence[Any]], Any],
                 translate: Callable[[BaseException, str], StoreError], revision: Revision, now_us: int) -> None:
        self._large_objects = large_objects
        self._execute = execute  # one cursor for the evaluator's reads (a cursor per query costs more)
        self._translate = translate
        self._revision = revision
        self._now_us = now_us
        self._open = True
        # Small objects read whole, once per snapshot: (type, id) -> {relation: member tuples (_MEMBER_COLUMNS)},
        # or None for an object with more than OBJECT_ROWS relationships; and the Rows of each relation of a
        # small object once asked for: (type, id, relation) -> Rows.
        self._objects: dict[tuple[str, str], dict[str, list[Any]] | None] = {}
        self._relations: dict[tuple[str, str, str], list[Row]] = {}
        # Objects named as subject sets by rows read whole, not read yet, in the order met (READ_AHEAD).
        self._named: dict[tuple[str, str], None] = {}

    @property
    def revision(self) -> Revision:
        return self._revision

    def close(self) -> None:
        self._open = False

    def _closed(self) -> StoreError:
        return StoreError("this reader's snapshot is closed; open a new snapshot")

    def _query(self, sql: str, params: Sequence[Any], action: str = "read relationships") -> list[Any]:
        if not self._open:
            raise self._closed()
        try:
            return self._execute(sql, params).fetchall()  # type: ignore[no-any-return]
        except self.DRIVER_ERROR as exc:
            raise self._translate(exc, action) from exc

    def _rows(self, sql: str, *params: Any) -> list[Any]:
        """``sql`` (one of the evaluator's queries) with 1..4 = resource type and id (the first two of
        ``params``), this snapshot's revision and now, then the rest of ``params``; plain tuples."""
        if not self._open:
            raise self._closed()
        try:
            return self._execute(sql, (params[0], params[1], self._revision, self._now_us,  # type: ignore[no-any-return]
                                       *params[2:])).fetchall()
        except self.DRIVER_ERROR as exc:
            raise self._translate(exc, "read relationships") from exc

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
        large = self._large_objects
        found = None
        if key not in large and self._read_ahead(key):
            return objects[key]
        if key not in large:
            members = self._rows(self.OBJECT, resource_type, resource_id, OBJECT_ROWS + 1)
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
                self._name_subject_sets(members)
        if len(objects) < _MAX_OBJECTS_PER_SNAPSHOT:
            objects[key] = found
        return found

    def _name_subject_sets(self, members: Iterable[Sequence[Any]]) -> None:
        """Note the objects these member tuples name as subject sets (see :data:`READ_AHEAD`)."""
        if self.PREFETCH is None:
            return
        named, objects, large = self._named, self._objects, self._large_objects
        for member in members:
            if member[3]:  # subject_relation
                subject = (member[1], member[2])
                if subject not in objects and subject not in large:
                    named[subject] = None

    def _read_ahead(self, key: tuple[str, str]) -> bool:
        """Read ``key`` with up to :data:`READ_AHEAD` named objects not read yet, in one query; True if ``key``
        is now read (False: nothing was named, or the snapshot keeps no more objects)."""
        named = self._named
        named.pop(key, None)
        if not named or self.PREFETCH is None or len(self._objects) >= _MAX_OBJECTS_PER_SNAPSHOT:
            return False
        ahead = []
        objects, large = self._objects, self._large_objects
        while named and len(ahead) < READ_AHEAD:
            subject = next(iter(named))
            del named[subject]
            if subject not in objects and subject not in large:
                ahead.append(subject)
        if not ahead:
            return False
        self.prefetch([key, *ahead])
        return key in objects

    def prefetch(self, objects: Iterable[tuple[str, str]]) -> None:
        """A hint: these objects (``(type, id)``) are about to be read; read the ones not read yet in as few
        queries as the dialect can (:attr:`PREFETCH`; without one, nothing happens). It changes no answer: a write
        that plans over hundreds of objects costs a few round trips instead of one per object."""
        if self.PREFETCH is None or not self._open:
            return
        wanted = [key for key in dict.fromkeys(objects) if key not in self._objects and key not in self._large_objects]
        for start in range(0, len(wanted), _PREFETCH_CHUNK):
            chunk = wanted[start:start + _PREFETCH_CHUNK]
            found: dict[tuple[str, str], dict[str, list[Any]]] = {key: {} for key in chunk}
            counts = dict.fromkeys(chunk, 0)
            for row in self._query(self.PREFETCH, ([k[0] for k in chunk], [k[1] for k in chunk], self._revision,
                                                   self._now_us, OBJECT_ROWS + 1)):
                key = (row[0], row[1])
                counts[key] += 1
                found[key].setdefault(row[2], []).append(tuple(row[2:]))
            for key in chunk:
                if len(self._objects) >= _MAX_OBJECTS_PER_SNAPSHOT:
                    return
                self._named.pop(key, None)
                if counts[key] > OBJECT_ROWS:
                    self._large_objects.add(key)
                    self._objects[key] = None
                else:
                    self._objects[key] = found[key]
                    for members in found[key].values():
                        self._name_subject_sets(members)

    def prefetch_lineage(self, resource_type: str, resource_id: str, relations: Sequence[str]) -> None:
        """A hint: a check of this object is about to walk its lineage (``relations``, by name, of any type):
        read the object and what it was derived from, transitively, whole, in one query (:attr:`LINEAGE_CLOSURE`;
        at most :data:`_LINEAGE_OBJECTS` objects; without one, nothing happens). It changes no answer: each
        object read is what :meth:`_object` would read."""
        if self.LINEAGE_CLOSURE is None or not self._open or (resource_type, resource_id) in self._objects:
            return
        found: dict[tuple[str, str], dict[str, list[Any]]] = {}
        counts: dict[tuple[str, str], int] = {}
        for row in self._query(self.LINEAGE_CLOSURE, (resource_type, resource_id, list(relations), self._revision,
                                                      self._now_us, _LINEAGE_OBJECTS, OBJECT_ROWS + 1)):
            key = (row[0], row[1])
            members = found.setdefault(key, {})
            counts.setdefault(key, 0)
            if row[2] is not None:  # an object without relationships comes once, with NULLs
                counts[key] += 1
                members.setdefault(row[2], []).append(tuple(row[2:]))
        for key, members in found.items():
            if key in self._objects or len(self._objects) >= _MAX_OBJECTS_PER_SNAPSHOT:
                continue
            self._named.pop(key, None)
            if counts[key] > OBJECT_ROWS:
                self._large_objects.add(key)
                self._objects[key] = None
            else:
                self._objects[key] = members
                for rows in members.values():
                    self._name_subject_sets(rows)

    def relationships(self, resource_type: str, resource_id: str, relation: str) -> Sequence[Row]:
        key = (resource_type, resource_id, relation)
        rows = self._relations.get(key)
        if rows is not None and self._open:
            return rows
        whole = self._object(resource_type, resource_id)
        if whole is None:
            return rows_from_tuples(self._rows(self.RELATIONSHIPS, resource_type, resource_id, relation))
        members = whole.get(relation)
        rows = [row_from_tuple((resource_type, resource_id) + m) for m in members] if members else []
        self._relations[key] = rows
        return rows

    def subject_sets(self, resource_type: str, resource_id: str, relation: str) -> Sequence[Row]:
        whole = self._objects.get((resource_type, resource_id), _UNREAD)
        if whole is _UNREAD or not self._open:
            whole = self._object(resource_type, resource_id)
        if whole is None:
            return rows_from_tuples(self._rows(self.SUBJECT_SETS, resource_type, resource_id, relation))
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
            found = self._rows(self.RELATIONSHIP, resource_type, resource_id, relation, subject_type, subject_id,
                               subject_relation)
            return row_from_tuple(found[0]) if found else None
        for m in whole.get(relation, ()):  # type: ignore[union-attr]
            if m[2] == subject_id and m[1] == subject_type and m[3] == subject_relation:
                return row_from_tuple((resource_type, resource_id) + m)  # a key is visible at most once
        return None

    def read(self, filter: RelationshipFilter, *, after: RowKey | None = None,
             limit: int | None = None) -> list[Row]:
        m = self.MARK
        where, params = filter_sql(filter, m, [self._revision, self._now_us])
        if after is not None:
            where += " AND " + _after_sql(filter, after, m, params)
        sql = (f"SELECT {COLUMNS} FROM {self.table_for(filter)} WHERE {where} AND {visible(m, 1, 2)} "
               f"ORDER BY {KEY_ORDER}")
        if limit is not None:
            params.append(limit)
            sql += f" LIMIT {m}{len(params)}"
        return rows_from_tuples(self._query(sql, params))

    def count(self, filter: RelationshipFilter) -> int:
        m = self.MARK
        where, params = filter_sql(filter, m, [self._revision, self._now_us])
        rows = self._query(f"SELECT count(*) FROM {self.table_for(filter)} WHERE {where} AND {visible(m, 1, 2)}",
                           params)
        result: int = rows[0][0]
        return result

    def schema(self) -> StoredSchema | None:
        row = self._query(self.SCHEMA, (self._revision,), "read the schema")
        return None if not row else StoredSchema(*row[0])
