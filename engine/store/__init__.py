"""The store protocols: what the engine needs from a backend, and the values that cross them.

A store keeps relationships under MVCC. Every successful write transaction gets
the next integer revision (an empty store is at revision 0) and a timestamp.
Each relationship row records the revision that created it and the revision
that deleted it, so a snapshot at revision R sees exactly the rows created at
or before R and not deleted at or before R. Relationships whose expiration is
at or before the reader's ``now`` are invisible to every ``Reader`` method.

Backends: ``memory.MemoryStore`` (the reference, plain Python structures) and
``sqlite.SqliteStore``. ``tests/store/contract.py`` holds the one behaviour
suite both pass.

Example::

    >>> from headwater.engine.relationships import parse_relationship
    >>> from headwater.engine.store.memory import MemoryStore
    >>> rel = parse_relationship("doc:readme#viewer@user:tom")
    >>> with MemoryStore() as store:
    ...     revision = store.write([Update(Operation.TOUCH, rel)])
    ...     with store.snapshot(revision) as reader:
    ...         [str(r) for r in reader.subjects(rel.resource, "viewer")]
    ['doc:readme#viewer@user:tom']
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import Protocol, TypeAlias

from ..errors import InvalidRequestError, PreconditionFailedError, RevisionUnavailableError
from ..relationships import ObjectRef, Relationship, RelationshipKey, SubjectRef, stored_relationship

__all__ = [
    "Change",
    "Edge",
    "NO_SUBJECT_RELATION",
    "Operation",
    "Precondition",
    "Reader",
    "RelationshipFilter",
    "Revision",
    "SchemaCheck",
    "Store",
    "StoredSchema",
    "Update",
    "Validator",
    "edge_of",
    "edge_relationship",
]

Revision: TypeAlias = int
"""The id of a store snapshot: 0 for an empty store, then 1, 2, 3... one per write transaction."""

NO_SUBJECT_RELATION = "..."
"""In a ``RelationshipFilter``, the ``subject_relation`` that means "no subject relation"."""

_PREFIX_RE = re.compile(r"[a-zA-Z0-9/_|\-=+]{0,1024}")


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
        for field in fields(self):
            value = getattr(self, field.name)
            if value is not None and not isinstance(value, str):
                raise InvalidRequestError(f"invalid relationship filter: {field.name} must be a string, not {value!r}")
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
        others = (getattr(self, field.name) for field in fields(self) if field.name != "resource_id_prefix")
        return not self.resource_id_prefix and all(value is None for value in others)

    def matches(self, rel: Relationship) -> bool:
        """Whether ``rel`` passes every field of this filter."""
        resource, subject = rel.resource, rel.subject
        if self.resource_type is not None and resource.type != self.resource_type:
            return False
        if self.resource_id is not None and resource.id != self.resource_id:
            return False
        if self.resource_id_prefix is not None and not resource.id.startswith(self.resource_id_prefix):
            return False
        if self.relation is not None and rel.relation != self.relation:
            return False
        if self.subject_type is not None and subject.type != self.subject_type:
            return False
        if self.subject_id is not None and subject.id != self.subject_id:
            return False
        if self.subject_relation is None:
            return True
        if self.subject_relation == NO_SUBJECT_RELATION:
            return subject.relation is None
        return subject.relation == self.subject_relation

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
    """One relationship change at a revision, as ``Store.changes`` reports it (TOUCH or DELETE).

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

Edge: TypeAlias = tuple[str, str, str, str, "str | None", "str | None", "int | None"]
"""One visible relationship of an object as the check evaluator reads it, a plain tuple:
``(relation, subject_type, subject_id, subject_relation, caveat_name, caveat_context, expires_at_us)``,
with ``subject_relation`` ``""`` for none, ``caveat_context`` canonical JSON (None without a caveat) and
``expires_at_us`` microseconds since the Unix epoch (None: never expires). The resource is the one asked
about. This is a stored row as it comes out of a table, so a backend can return rows without building
values: the evaluator builds a :class:`Relationship` (:func:`edge_relationship`) only for a caveat."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def edge_of(rel: Relationship) -> Edge:
    """The edge of a relationship (for backends that keep Relationship values).

    Example::

        >>> from headwater.engine.relationships import parse_relationship
        >>> edge_of(parse_relationship("doc:1#viewer@group:eng#member"))
        ('viewer', 'group', 'eng', 'member', None, None, None)
    """
    caveat, expiration = rel.caveat, rel.expiration
    return (rel.relation, rel.subject.type, rel.subject.id, rel.subject.relation or "",
            caveat.name if caveat is not None else None, caveat.context if caveat is not None else None,
            None if expiration is None else (expiration - _EPOCH) // _MICROSECOND)


def edge_relationship(resource_type: str, resource_id: str, edge: Edge) -> Relationship:
    """The relationship an edge of ``resource_type:resource_id`` stands for (the inverse of :func:`edge_of`).

    Example::

        >>> str(edge_relationship("doc", "1", ("viewer", "group", "eng", "member", None, None, None)))
        'doc:1#viewer@group:eng#member'
    """
    expires = edge[6]
    return stored_relationship(resource_type, resource_id, edge[0], edge[1], edge[2], edge[3] or None, edge[4],
                               edge[5], None if expires is None else _EPOCH + timedelta(microseconds=expires))


class Reader(Protocol):
    """One consistent view of the relationships at ``revision``; methods are the evaluator's accesses."""

    @property
    def revision(self) -> Revision:
        """The revision this view shows."""
        ...

    def subjects(self, resource: ObjectRef, relation: str) -> Iterator[Relationship]:
        """Every relationship of ``resource#relation`` (subject sets and wildcards too), sorted by subject."""
        ...

    def subject_sets(self, resource: ObjectRef, relation: str) -> Iterator[Relationship]:
        """The relationships of ``resource#relation`` whose subject is a subject set (``group:eng#member``),
        sorted by subject: what a check follows after the direct and wildcard matches, without reading the
        (possibly many) plain subjects."""
        ...

    def lookup(
        self,
        resource: ObjectRef,
        relation: str,
        subject_type: str,
        subject_id: str,
        subject_relation: str | None,
    ) -> Iterator[Relationship]:
        """The relationship ``resource#relation@subject`` if it is visible (0 or 1 of them)."""
        ...

    # The check evaluator's accesses: the same answers as subjects(), subject_sets() and lookup(), as
    # edges (see Edge), by plain strings. They are the hot path of a check, so a backend answers them
    # without building values. Each returns a sequence the caller must not modify.

    def edges(self, resource_type: str, resource_id: str, relation: str) -> Sequence[Edge]:
        """What ``subjects()`` returns, as edges, in the same order."""
        ...

    def edge_sets(self, resource_type: str, resource_id: str, relation: str) -> Sequence[Edge]:
        """What ``subject_sets()`` returns, as edges, in the same order."""
        ...

    def edge_lookup(self, resource_type: str, resource_id: str, relation: str, subject_type: str, subject_id: str,
                    subject_relation: str) -> Sequence[Edge]:
        """What ``lookup()`` returns, as edges (0 or 1); ``subject_relation`` is ``""`` for none."""
        ...

    def resources(self, resource_type: str, relation: str, subject: SubjectRef) -> Iterator[Relationship]:
        """Relationships of ``resource_type#relation`` whose subject is exactly ``subject``, by resource id."""
        ...

    def read(
        self,
        filter: RelationshipFilter,
        *,
        after: RelationshipKey | None = None,
        limit: int | None = None,
    ) -> list[Relationship]:
        """Matching relationships in key order, starting after the key ``after``, at most ``limit``."""
        ...

    def count(self, filter: RelationshipFilter) -> int:
        """How many visible relationships match."""
        ...


Validator: TypeAlias = Callable[[Reader, Sequence[Update]], None]
SchemaCheck: TypeAlias = Callable[[Reader], None]


class Store(Protocol):
    """A relationship store with revisions; see the module docstring for the rules."""

    def snapshot(
        self, revision: Revision | None = None, *, now: datetime | None = None
    ) -> AbstractContextManager[Reader]:
        """A consistent view at ``revision`` (None: head), hiding relationships expired at ``now``."""
        ...

    def write(
        self,
        updates: Sequence[Update],
        preconditions: Sequence[Precondition] = (),
        *,
        validate: Validator | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Revision:
        """Apply ``updates`` in one transaction at a new revision, or change nothing and raise."""
        ...

    def delete(
        self,
        filter: RelationshipFilter,
        *,
        limit: int | None = None,
        allow_partial: bool = False,
        preconditions: Sequence[Precondition] = (),
        metadata: Mapping[str, str] | None = None,
    ) -> tuple[Revision, int, bool]:
        """Delete matching relationships; return (revision, deleted count, partial)."""
        ...

    def head(self) -> Revision:
        """The newest revision."""
        ...

    def revision_time(self, revision: Revision) -> datetime:
        """When ``revision`` was committed (UTC)."""
        ...

    def revision_metadata(self, revision: Revision) -> dict[str, str]:
        """The metadata written with ``revision``."""
        ...

    def changes(self, after: Revision, *, limit: int | None = None) -> list[Change]:
        """Relationship changes of the revisions after ``after``, by revision then key; whole revisions only."""
        ...

    def gc(self, window: timedelta = timedelta(hours=24), *, now: datetime | None = None) -> int:
        """Forget deleted rows older than ``window``; return how many rows were removed."""
        ...

    def write_schema(
        self,
        text: str,
        digest: str,
        *,
        check: SchemaCheck | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Revision:
        """Store a new schema version at a new revision, unless ``check`` raises."""
        ...

    def read_schema(self, revision: Revision | None = None) -> StoredSchema | None:
        """The schema in force at ``revision`` (None: head), or None before the first schema."""
        ...

    def schema_history(self) -> list[StoredSchema]:
        """Every schema version, oldest first."""
        ...

    def close(self) -> None:
        """Release the backend's resources; the store cannot be used afterwards."""
        ...

    def __enter__(self) -> Store: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


# --- argument checks shared by the backends (package-private) -------------------------------


def _check_updates(updates: Iterable[Update]) -> tuple[Update, ...]:
    """The batch as a tuple, refusing non-updates and two updates of one relationship."""
    batch = tuple(updates)
    seen: set[RelationshipKey] = set()
    for update in batch:
        if not isinstance(update, Update):
            raise InvalidRequestError(f"invalid update {update!r}: must be an Update")
        key = update.relationship.key
        if key in seen:
            raise InvalidRequestError(
                f"invalid write: relationship {_key_text(key)!r} is updated more than once in one batch"
            )
        seen.add(key)
    return batch


def _check_preconditions(preconditions: Iterable[Precondition]) -> tuple[Precondition, ...]:
    checked = tuple(preconditions)
    for precondition in checked:
        if not isinstance(precondition, Precondition):
            raise InvalidRequestError(f"invalid precondition {precondition!r}: must be a Precondition")
    return checked


def _check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    if metadata is None:
        return {}
    result = dict(metadata)
    for key, value in result.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidRequestError(f"invalid metadata {key!r}: {value!r}: keys and values must be strings")
    return result


def _check_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise InvalidRequestError(f"invalid limit {limit!r}: must be a positive integer or None")


def _check_revision(revision: Revision | None) -> None:
    if revision is not None and (not isinstance(revision, int) or isinstance(revision, bool)):
        raise InvalidRequestError(f"invalid revision {revision!r}: must be an integer")


def _check_now(now: datetime) -> datetime:
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise InvalidRequestError(f"invalid time {now!r}: must be a timezone-aware datetime")
    return now.astimezone(timezone.utc)


def _check_window(window: timedelta) -> None:
    if not isinstance(window, timedelta) or window < timedelta(0):
        raise InvalidRequestError(f"invalid gc window {window!r}: must be a timedelta of zero or more")


def _check_filter(filter: RelationshipFilter) -> None:
    if not isinstance(filter, RelationshipFilter):
        raise InvalidRequestError(f"invalid filter {filter!r}: must be a RelationshipFilter")


def _check_delete_filter(filter: RelationshipFilter) -> None:
    _check_filter(filter)
    if filter.is_empty:
        raise InvalidRequestError("invalid delete: the filter is empty and would delete every relationship")


def _check_after(after: RelationshipKey | None) -> None:
    if after is None:
        return
    if (
        not isinstance(after, tuple)
        or len(after) != 3
        or not isinstance(after[0], ObjectRef)
        or not isinstance(after[1], str)
        or not isinstance(after[2], SubjectRef)
    ):
        raise InvalidRequestError(
            f"invalid 'after' {after!r}: must be a relationship key (ObjectRef, relation, SubjectRef)"
        )


def _gc_threshold(now: datetime, window: timedelta) -> datetime | None:
    """``now - window``, or None when that is before the earliest representable time."""
    try:
        return now - window
    except OverflowError:
        return None


def _enforce_preconditions(reader: Reader, preconditions: Sequence[Precondition]) -> None:
    """Raise PreconditionFailedError for the first precondition that does not hold at ``reader``."""
    for precondition in preconditions:
        found = bool(reader.read(precondition.filter, limit=1))
        if found != precondition.must_match:
            raise PreconditionFailedError(
                f"precondition failed at revision {reader.revision}: expected {precondition}",
                precondition=precondition,
            )


def _unavailable(revision: Revision, oldest: Revision, head: Revision) -> RevisionUnavailableError:
    return RevisionUnavailableError(
        f"revision {revision} is unavailable: the store keeps revisions {oldest} (oldest) to {head} (head)",
        revision=revision,
        oldest=oldest,
        head=head,
    )


def _whole_revisions(changes: list[Change], limit: int | None) -> list[Change]:
    """At most ``limit`` changes, cut only between revisions (a first revision larger than ``limit`` comes whole)."""
    if limit is None or len(changes) <= limit:
        return changes
    cut_revision = changes[limit].revision
    if cut_revision == changes[0].revision:
        return [change for change in changes if change.revision == cut_revision]
    return [change for change in changes if change.revision < cut_revision]


def _key_text(key: RelationshipKey) -> str:
    resource, relation, subject = key
    return f"{resource}#{relation}@{subject}"
