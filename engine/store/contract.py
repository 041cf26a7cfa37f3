"""The store contract: the values that cross it, and the small roles a backend plays (``headwater.engine.store``).

A store keeps relationships under MVCC. Every successful write transaction gets
the next integer revision (an empty store is at revision 0) and a timestamp.
Each stored row records the revision that created it and the revision that
deleted it, so a snapshot at revision R sees exactly the rows created at or
before R and not deleted at or before R. Relationships whose expiration is at
or before the reader's ``now`` are invisible to every ``Reader`` method.

A **backend** implements the roles below (OpenFGA's ``pkg/storage/storage.go``
composes its datastore the same way), thirteen methods in all:

- :class:`Reader`, one snapshot: ``relationship`` (one exact relationship),
  ``relationships`` (every subject of ``resource#relation``), ``subject_sets``
  (only the subject sets of it), ``read``/``count`` (a filtered listing, also
  the reverse reads of lookups), ``schema`` (the schema in force);
- :class:`Snapshots`: ``snapshot``, ``head``;
- :class:`Committer`: ``commit``, one write transaction whose :class:`Batch` is
  planned inside it from a reader at its base revision;
- :class:`Changelog`: ``changes``, ``revision_info``, ``schema_history``;
- :class:`Collector`: ``gc``; and ``close``.

Everything else (argument validation, preconditions, CREATE conflicts, delete
by filter, schema writes, the gc window) is written once, in
:class:`~headwater.engine.store.validating.Store`, the wrapper every backend
runs behind (as SpiceDB's ``internal/datastore/proxy`` wraps its datastores).
``MemoryStore`` (the reference, plain Python) and ``SqliteStore`` are that
wrapper around their backends; ``tests/store/`` holds the one behaviour suite,
split by topic, that every backend runs.

Example::

    >>> from headwater.engine.relationships import parse_relationship
    >>> from headwater.engine.store.memory import MemoryStore
    >>> rel = parse_relationship("doc:readme#viewer@user:tom")
    >>> with MemoryStore() as store:
    ...     revision = store.write([Update(Operation.TOUCH, rel)])
    ...     with store.snapshot(revision) as reader:
    ...         [str(row.relationship()) for row in reader.relationships("doc", "readme", "viewer")]
    ['doc:readme#viewer@user:tom']
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import NamedTuple, Protocol, TypeAlias

from ..errors import InvalidRequestError, RevisionUnavailableError
from ..relationships import Relationship, stored_relationship

__all__ = [
    "NO_SUBJECT_RELATION",
    "Backend",
    "Batch",
    "Change",
    "Changelog",
    "Collector",
    "Committer",
    "GcResult",
    "Operation",
    "Plan",
    "Precondition",
    "Reader",
    "RelationshipFilter",
    "Revision",
    "RevisionInfo",
    "Row",
    "RowKey",
    "SchemaValidator",
    "Snapshots",
    "StoredSchema",
    "Update",
    "Validator",
    "checked_time",
    "row_from_tuple",
    "rows_from_tuples",
    "unavailable",
    "whole_revisions",
]

Revision: TypeAlias = int
"""The id of a store snapshot: 0 for an empty store, then 1, 2, 3... one per write transaction."""

NO_SUBJECT_RELATION = "..."
"""In a ``RelationshipFilter``, the ``subject_relation`` that means "no subject relation"."""

_PREFIX_RE = re.compile(r"[a-zA-Z0-9/_|\-=+]{0,1024}")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


class Operation(enum.Enum):
    """What an ``Update`` does to its relationship."""

    CREATE = "create"  # insert; AlreadyExistsError if a live relationship has the same key
    TOUCH = "touch"  # insert or replace
    DELETE = "delete"  # remove if present


@dataclass(frozen=True, slots=True)
class Update:
    """One change in a write batch.

    Example::

        >>> from headwater.engine.relationships import parse_relationship
        >>> Update(Operation.TOUCH, parse_relationship("doc:1#viewer@user:tom")).operation
        <Operation.TOUCH: 'touch'>
    """

    operation: Operation
    relationship: Relationship

    def __post_init__(self) -> None:
        if not isinstance(self.operation, Operation):
            raise InvalidRequestError(f"invalid update operation {self.operation!r}: must be an Operation")
        if not isinstance(self.relationship, Relationship):
            raise InvalidRequestError(f"invalid update relationship {self.relationship!r}: must be a Relationship")


RowKey: TypeAlias = tuple[str, str, str, str, str, str]
"""What identifies a relationship, as a row's first six fields: ``(resource_type, resource_id, relation,
subject_type, subject_id, subject_relation)`` with ``""`` for no subject relation. Keys sort as SpiceDB
lists relationships (ids by code point, no subject relation first)."""


class Row(NamedTuple):
    """One visible relationship as a backend stores it: the one row type every read returns.

    ``subject_relation`` is ``""`` for none, ``caveat_context`` canonical JSON (None
    without a caveat), ``expires_at_us`` microseconds since the Unix epoch (None: it
    never expires). A row is a tuple, so a backend hands its rows over without
    building values; :meth:`relationship` builds the value when one is needed.

    Example::

        >>> from headwater.engine.relationships import parse_relationship
        >>> row = Row.of(parse_relationship("doc:1#viewer@group:eng#member"))
        >>> row.subject_type, row.subject_relation, row.caveat_name
        ('group', 'member', None)
        >>> str(row.relationship())
        'doc:1#viewer@group:eng#member'
    """

    resource_type: str
    resource_id: str
    relation: str
    subject_type: str
    subject_id: str
    subject_relation: str
    caveat_name: str | None
    caveat_context: str | None
    expires_at_us: int | None

    @classmethod
    def of(cls, rel: Relationship) -> Row:
        """The row of a relationship."""
        caveat, expiration, subject = rel.caveat, rel.expiration, rel.subject
        return cls(rel.resource.type, rel.resource.id, rel.relation, subject.type, subject.id,
                   subject.relation or "", caveat.name if caveat is not None else None,
                   caveat.context if caveat is not None else None,
                   None if expiration is None else (expiration - _EPOCH) // _MICROSECOND)

    @property
    def key(self) -> RowKey:
        """The relationship's key (the first six fields)."""
        return self[:6]  # type: ignore[return-value]

    def relationship(self) -> Relationship:
        """The relationship this row stores (its fields were checked when it was written)."""
        expires = self.expires_at_us
        return stored_relationship(self.resource_type, self.resource_id, self.relation, self.subject_type,
                                   self.subject_id, self.subject_relation or None, self.caveat_name,
                                   self.caveat_context,
                                   None if expires is None else _EPOCH + timedelta(microseconds=expires))


row_from_tuple: Callable[[tuple[object, ...]], Row] = partial(tuple.__new__, Row)
"""A row from a plain tuple in :class:`Row`'s field order, built without a Python-level call (``Row._make``
makes one)."""


def rows_from_tuples(found: Iterable[tuple[object, ...]]) -> list[Row]:
    """Rows from plain tuples in :class:`Row`'s field order (what a SQL driver returns), built without the
    per-row Python call of ``Row._make``."""
    return list(map(row_from_tuple, found))


@dataclass(frozen=True, slots=True)
class RelationshipFilter:
    """Which relationships to read, count, delete or require; ``None`` fields match anything.

    ``subject_relation=None`` matches any subject relation, ``"..."`` matches only
    subjects without one. ``resource_id`` and ``resource_id_prefix`` exclude each other.

    Example::

        >>> from headwater.engine.relationships import parse_relationship
        >>> f = RelationshipFilter(resource_type="doc", resource_id_prefix="re", subject_relation="...")
        >>> f.matches(parse_relationship("doc:readme#viewer@user:tom"))
        True
    """

    resource_type: str | None = None
    resource_id: str | None = None
    resource_id_prefix: str | None = None
    relation: str | None = None
    subject_type: str | None = None
    subject_id: str | None = None
    subject_relation: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and not isinstance(value, str):
                raise InvalidRequestError(f"invalid relationship filter: {f.name} must be a string, not {value!r}")
        if self.resource_id is not None and self.resource_id_prefix is not None:
            raise InvalidRequestError(
                f"invalid relationship filter ({self}): give resource_id or resource_id_prefix, not both"
            )
        if self.resource_id_prefix is not None and _PREFIX_RE.fullmatch(self.resource_id_prefix) is None:
            raise InvalidRequestError(
                f"invalid resource_id_prefix {self.resource_id_prefix!r}: "
                "ids may contain only letters, digits and /_|-=+ (at most 1024 characters)"
            )

    @property
    def is_empty(self) -> bool:
        """True when the filter constrains nothing (every field None, or only an empty prefix)."""
        others = (getattr(self, f.name) for f in fields(self) if f.name != "resource_id_prefix")
        return not self.resource_id_prefix and all(value is None for value in others)

    @property
    def stored_subject_relation(self) -> str | None:
        """``subject_relation`` as rows store it: None (any), ``""`` (none) or a relation name."""
        if self.subject_relation == NO_SUBJECT_RELATION:
            return ""
        return self.subject_relation

    def matches(self, rel: Relationship) -> bool:
        """Whether ``rel`` passes every field of this filter."""
        return self.matches_row(Row.of(rel))

    def matches_row(self, row: Row) -> bool:
        """Whether the stored ``row`` passes every field of this filter."""
        if self.resource_type is not None and row.resource_type != self.resource_type:
            return False
        if self.resource_id is not None and row.resource_id != self.resource_id:
            return False
        if self.resource_id_prefix is not None and not row.resource_id.startswith(self.resource_id_prefix):
            return False
        if self.relation is not None and row.relation != self.relation:
            return False
        if self.subject_type is not None and row.subject_type != self.subject_type:
            return False
        if self.subject_id is not None and row.subject_id != self.subject_id:
            return False
        wanted = self.stored_subject_relation
        return wanted is None or row.subject_relation == wanted

    def __str__(self) -> str:
        parts = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self) if getattr(self, f.name) is not None]
        return ", ".join(parts) if parts else "<every relationship>"


@dataclass(frozen=True, slots=True)
class Precondition:
    """A condition checked at the write's base revision: some (``must_match``) or no relationship matches.

    Example::

        >>> Precondition(RelationshipFilter(resource_type="doc", resource_id="1"), must_match=True).must_match
        True
    """

    filter: RelationshipFilter
    must_match: bool

    def __post_init__(self) -> None:
        if not isinstance(self.filter, RelationshipFilter):
            raise InvalidRequestError(f"invalid precondition filter {self.filter!r}: must be a RelationshipFilter")
        if not isinstance(self.must_match, bool):
            raise InvalidRequestError(f"invalid precondition must_match {self.must_match!r}: must be a bool")

    def __str__(self) -> str:
        expectation = "at least one relationship" if self.must_match else "no relationship"
        return f"{expectation} matching ({self.filter})"


@dataclass(frozen=True, slots=True)
class Change:
    """One relationship change at a revision, as ``changes`` reports it (TOUCH or DELETE).

    Example::

        >>> from headwater.engine.relationships import parse_relationship
        >>> from headwater.engine.store.memory import MemoryStore
        >>> store = MemoryStore()
        >>> _ = store.write([Update(Operation.TOUCH, parse_relationship("doc:1#viewer@user:tom"))])
        >>> [(c.revision, c.operation.value, str(c.relationship)) for c in store.changes(0)]
        [(1, 'touch', 'doc:1#viewer@user:tom')]
    """

    revision: Revision
    operation: Operation
    relationship: Relationship


@dataclass(frozen=True, slots=True)
class StoredSchema:
    """A schema text as written: its digest, its version (1, 2, 3...) and the revision that wrote it.

    Example::

        >>> from headwater.engine.store.memory import MemoryStore
        >>> store = MemoryStore()
        >>> store.write_schema("definition user {}", "digest-1")
        1
        >>> store.read_schema()
        StoredSchema(text='definition user {}', digest='digest-1', version=1, revision=1)
    """

    text: str
    digest: str
    version: int
    revision: Revision


@dataclass(frozen=True, slots=True)
class RevisionInfo:
    """When a revision was committed (UTC, never earlier than the revision before it) and its metadata."""

    revision: Revision
    committed_at: datetime
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Batch:
    """What one write transaction changes, planned inside it (see :meth:`Committer.commit`).

    - ``deletes``: for each key, its live row is retired if it has not expired at the write's time;
    - ``inserts``: for each row, its key's live row (expired or not) is retired, then the row is added;
    - ``schema``: ``(text, digest)`` of a new schema version, numbered after the last one.

    A key appears at most once in a batch. An empty batch still commits a revision.
    """

    deletes: Sequence[RowKey] = ()
    inserts: Sequence[Row] = ()
    schema: tuple[str, str] | None = None


class Reader(Protocol):
    """One consistent view of the store at ``revision``; its reads are named after the evaluator's accesses.

    Every read returns visible rows only (created at or before the revision, not deleted at
    or before it, not expired at the snapshot's ``now``). Sequences returned must not be
    modified by the caller. A reader refuses to work (``StoreError``) once its snapshot closes.
    """

    @property
    def revision(self) -> Revision:
        """The revision this view shows."""
        ...

    def relationship(self, resource_type: str, resource_id: str, relation: str, subject_type: str,
                     subject_id: str, subject_relation: str) -> Row | None:
        """The relationship ``resource#relation@subject`` if it is visible (``subject_relation`` ``""``: none).
        OpenFGA's ``ReadUserTuple``: a direct grant, one indexed lookup however many subjects the relation has."""
        ...

    def relationships(self, resource_type: str, resource_id: str, relation: str) -> Sequence[Row]:
        """Every relationship of ``resource#relation`` (objects, wildcards and subject sets), sorted by subject
        (type, id, relation with none first). OpenFGA's ``Read``: what an arrow follows."""
        ...

    def subject_sets(self, resource_type: str, resource_id: str, relation: str) -> Sequence[Row]:
        """The relationships of ``resource#relation`` whose subject is a subject set (``group:eng#member``),
        sorted by subject, without reading the (possibly many) plain subjects. OpenFGA's ``ReadUsersetTuples``."""
        ...

    def read(self, filter: RelationshipFilter, *, after: RowKey | None = None,
             limit: int | None = None) -> list[Row]:
        """Matching relationships in key order, starting after the key ``after``, at most ``limit``: listings,
        and the reverse reads of lookups (a filter naming the subject; OpenFGA's ``ReadStartingWithUser``)."""
        ...

    def count(self, filter: RelationshipFilter) -> int:
        """How many visible relationships match."""
        ...

    def schema(self) -> StoredSchema | None:
        """The schema in force at this revision (None before the first schema)."""
        ...


Plan: TypeAlias = Callable[[Reader], Batch]
"""Plans a write inside its transaction from a reader at the base revision; raising aborts the write."""
Validator: TypeAlias = Callable[[Reader, Sequence[Update]], None]
SchemaValidator: TypeAlias = Callable[[Reader], None]


class Snapshots(Protocol):
    """Opening snapshots."""

    def snapshot(self, revision: Revision | None, now: datetime) -> AbstractContextManager[Reader]:
        """A consistent view at ``revision`` (None: head), hiding relationships expired at ``now`` (UTC);
        ``RevisionUnavailableError`` outside the kept revisions."""
        ...

    def head(self) -> Revision:
        """The newest revision."""
        ...


class Committer(Protocol):
    """Writing."""

    def commit(self, plan: Plan, metadata: dict[str, str], action: str) -> Revision:
        """One write transaction: ``plan`` gets a reader at the base revision (the head, at the time read from
        ``clock`` inside the transaction), and the :class:`Batch` it returns is applied at a new revision
        stamped with that time (never earlier than the previous revision's) and ``metadata``; if ``plan``
        raises, nothing changes. ``action`` says what the write does, for error messages ("write
        relationships")."""
        ...


class Changelog(Protocol):
    """What happened at each revision."""

    def changes(self, after: Revision, limit: int | None) -> list[Change]:
        """Relationship changes of the revisions after ``after``, by revision then key (a row replaced in the
        revision that wrote its new version is one TOUCH); with ``limit``, whole revisions only, at most
        ``limit`` changes unless the first revision alone has more."""
        ...

    def revision_info(self, revision: Revision) -> RevisionInfo:
        """When ``revision`` was committed, and its metadata."""
        ...

    def schema_history(self) -> list[StoredSchema]:
        """Every schema version, oldest first (garbage collection keeps them all)."""
        ...


class GcResult(int):
    """What a garbage collection removed: the number of rows (this int: old versions and expired relationships),
    and :attr:`expired_removed`, how many of them were relationships that expired without being deleted."""

    expired_removed: int

    def __new__(cls, removed: int = 0, expired_removed: int = 0) -> GcResult:
        result = super().__new__(cls, removed)
        result.expired_removed = expired_removed
        return result

    @property
    def rows_removed(self) -> int:
        """Every row removed (old versions and expired relationships)."""
        return int(self)

    def __repr__(self) -> str:
        return f"GcResult({int(self)}, expired_removed={self.expired_removed})"


class Collector(Protocol):
    """Forgetting history."""

    def gc(self, before: datetime) -> GcResult:
        """Forget the revisions committed before the newest one older than ``before`` (the cutoff; the head is
        never forgotten), the rows deleted at or before the cutoff, and the relationships created at or before it
        that expired at or before its commit time (every snapshot still readable sees them as expired: its
        ``now`` is at least its revision's time); how many rows were removed, and how many of them expired."""
        ...


class Backend(Snapshots, Committer, Changelog, Collector, Protocol):
    """A storage backend: the roles above, its ``clock`` and ``close``."""

    #: The time source (timezone-aware): it stamps revisions, and is a snapshot's default ``now``.
    clock: Callable[[], datetime]

    def close(self) -> None:
        """Release the backend's resources; it cannot be used afterwards."""
        ...




# --- helpers for backends ---------------------------------------------------------------------


def checked_time(moment: datetime) -> datetime:
    """``moment`` in UTC; InvalidRequestError for anything but a timezone-aware datetime."""
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise InvalidRequestError(f"invalid time {moment!r}: must be a timezone-aware datetime")
    return moment.astimezone(timezone.utc)


def unavailable(revision: Revision, oldest: Revision, head: Revision) -> RevisionUnavailableError:
    """The error for a revision outside ``oldest``..``head``, naming the range."""
    return RevisionUnavailableError(
        f"revision {revision} is unavailable: the store keeps revisions {oldest} (oldest) to {head} (head)",
        revision=revision,
        oldest=oldest,
        head=head,
    )


def whole_revisions(changes: list[Change], limit: int | None) -> list[Change]:
    """At most ``limit`` changes, cut only between revisions (a first revision larger than ``limit`` comes
    whole); ``changes`` are sorted by revision."""
    if limit is None or len(changes) <= limit:
        return changes
    cut_revision = changes[limit].revision
    if cut_revision == changes[0].revision:
        return [change for change in changes if change.revision == cut_revision]
    return [change for change in changes if change.revision < cut_revision]
