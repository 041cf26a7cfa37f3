"""MemoryStore: the reference backend, plain Python lists and dicts behind one lock.

It is written to be obviously correct rather than fast: most reads scan every
row. Engine tests run on it, and ``SqliteStore`` must behave exactly like it
(``tests/properties/test_store_equivalence.py``).

Layout: ``_rows`` holds every row ever written (relationship, created_rev,
deleted_rev) in write order; ``_by_resource`` indexes the same rows by
``(resource, relation)`` for ``subjects``/``lookup``; ``_live`` maps each key to
its one not-deleted row (which may have expired). A reader captures
``_rows``/``_by_resource`` when it opens; ``gc`` builds new ones instead of
editing them, so an open reader keeps seeing its revision.

Example::

    >>> from headwater.engine.relationships import parse_relationship
    >>> from headwater.engine.store import Operation, Update
    >>> with MemoryStore() as store:
    ...     store.write([Update(Operation.CREATE, parse_relationship("doc:1#viewer@user:tom"))])
    1
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import TracebackType

from ..errors import AlreadyExistsError, InvalidRequestError, LimitExceededError, StoreError
from ..relationships import ObjectRef, Relationship, RelationshipKey, SubjectRef, stored_object
from . import (
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
    edge_of,
)

__all__ = ["MemoryStore"]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(slots=True)
class _Row:
    """One stored version of a relationship; ``deleted_rev`` is None while it is not deleted."""

    relationship: Relationship
    created_rev: Revision
    deleted_rev: Revision | None = None
    edge: Edge = field(init=False)  # the relationship as the evaluator reads it

    def __post_init__(self) -> None:
        self.edge = edge_of(self.relationship)


@dataclass(frozen=True, slots=True)
class _RevisionRecord:
    revision: Revision
    committed_at: datetime
    metadata: dict[str, str] = field(default_factory=dict)


def _row_order(row: _Row) -> tuple[str, str, str]:
    edge = row.edge
    return (edge[1], edge[2], edge[3])


def _version_key(row: _Row) -> tuple[str, str, str, str, str, str]:
    """A relationship's key as plain strings (the versions index)."""
    edge = row.edge
    res = row.relationship.resource
    return (res.type, res.id, edge[0], edge[1], edge[2], edge[3])


# The versions index: a key's one stored row, or the list of them once it has several (a replaced or deleted
# relationship keeps its old rows until gc), so a relationship costs one dict entry and no list.
_Versions = dict[tuple[str, str, str, str, str, str], "_Row | list[_Row]"]


def _subject_key(row: _Row) -> tuple[str, str, str, str, str]:
    """(resource type, relation, subject type, subject id, subject relation or ""): the reverse index."""
    edge = row.edge
    return (row.relationship.resource.type, edge[0], edge[1], edge[2], edge[3])


def _add_version(versions: _Versions, row: _Row) -> None:
    key = _version_key(row)
    found = versions.get(key)
    if found is None:
        versions[key] = row
    elif type(found) is _Row:
        versions[key] = [found, row]
    else:
        found.append(row)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _unexpired(row: _Row, now: datetime) -> bool:
    expiration = row.relationship.expiration
    return expiration is None or expiration > now


class _MemoryReader:
    """A view of the rows at one revision and one ``now``; valid until its snapshot closes."""

    def __init__(
        self,
        lock: threading.RLock,
        revision: Revision,
        now: datetime,
        rows: list[_Row],
        by_resource: dict[tuple[ObjectRef, str], list[_Row]],
        unsorted: set[tuple[ObjectRef, str]],
        versions: _Versions,
        by_subject: dict[tuple[str, str, str, str, str], list[_Row]],
    ) -> None:
        self._lock = lock
        self._revision = revision
        self._now = now
        self._now_us = (now - _EPOCH) // _MICROSECOND
        self._rows = rows
        self._by_resource = by_resource
        self._unsorted = unsorted
        self._versions = versions
        self._by_subject = by_subject
        self._open = True

    @property
    def revision(self) -> Revision:
        return self._revision

    def close(self) -> None:
        self._open = False

    def _visible(self, row: _Row) -> bool:
        return (
            row.created_rev <= self._revision
            and (row.deleted_rev is None or row.deleted_rev > self._revision)
            and _unexpired(row, self._now)
        )

    def _check_open(self) -> None:
        if not self._open:
            raise StoreError("this reader's snapshot is closed; open a new snapshot")

    def subjects(self, resource: ObjectRef, relation: str) -> Iterator[Relationship]:
        with self._lock:
            self._check_open()
            rows = self._by_resource.get((resource, relation), [])
            found = [row.relationship for row in rows if self._visible(row)]
        return iter(sorted(found, key=lambda rel: rel.key))

    def subject_sets(self, resource: ObjectRef, relation: str) -> Iterator[Relationship]:
        with self._lock:
            self._check_open()
            rows = self._by_resource.get((resource, relation), [])
            found = [row.relationship for row in rows
                     if row.relationship.subject.relation is not None and self._visible(row)]
        return iter(sorted(found, key=lambda rel: rel.key))

    def lookup(
        self,
        resource: ObjectRef,
        relation: str,
        subject_type: str,
        subject_id: str,
        subject_relation: str | None,
    ) -> Iterator[Relationship]:
        with self._lock:
            self._check_open()
            rows = self._by_resource.get((resource, relation), [])
            found = [
                row.relationship
                for row in rows
                if row.relationship.subject.type == subject_type
                and row.relationship.subject.id == subject_id
                and row.relationship.subject.relation == subject_relation
                and self._visible(row)
            ]
        return iter(found)

    def _edges(self, resource_type: str, resource_id: str, relation: str) -> list[Edge]:
        key = (stored_object(resource_type, resource_id), relation)
        revision, now_us = self._revision, self._now_us
        with self._lock:
            self._check_open()
            rows = self._by_resource.get(key)
            if rows is None:
                return []
            if key in self._unsorted:  # rows are kept in subject order, sorted once after writes
                rows.sort(key=_row_order)
                self._unsorted.discard(key)
            return [row.edge for row in rows
                    if row.created_rev <= revision and (row.deleted_rev is None or row.deleted_rev > revision)
                    and (row.edge[6] is None or row.edge[6] > now_us)]

    def edges(self, resource_type: str, resource_id: str, relation: str) -> Sequence[Edge]:
        return self._edges(resource_type, resource_id, relation)

    def edge_sets(self, resource_type: str, resource_id: str, relation: str) -> Sequence[Edge]:
        return [e for e in self._edges(resource_type, resource_id, relation) if e[3]]

    def edge_lookup(self, resource_type: str, resource_id: str, relation: str, subject_type: str, subject_id: str,
                    subject_relation: str) -> Sequence[Edge]:
        revision, now_us = self._revision, self._now_us
        with self._lock:  # every stored version of the one key, by the versions index
            self._check_open()
            found = self._versions.get((resource_type, resource_id, relation, subject_type, subject_id,
                                        subject_relation))
            if found is None:
                return []
            rows = (found,) if type(found) is _Row else found
            return [row.edge for row in rows
                    if row.created_rev <= revision and (row.deleted_rev is None or row.deleted_rev > revision)
                    and (row.edge[6] is None or row.edge[6] > now_us)]

    def resources(self, resource_type: str, relation: str, subject: SubjectRef) -> Iterator[Relationship]:
        with self._lock:
            self._check_open()
            # the reverse index: only this subject's rows of this relation
            rows = self._by_subject.get((resource_type, relation, subject.type, subject.id, subject.relation or ""), ())
            found = [row.relationship for row in rows if self._visible(row)]
        return iter(sorted(found, key=lambda rel: rel.key))

    def read(
        self,
        filter: RelationshipFilter,
        *,
        after: RelationshipKey | None = None,
        limit: int | None = None,
    ) -> list[Relationship]:
        _check_filter(filter)
        _check_limit(limit)
        _check_after(after)
        with self._lock:
            self._check_open()
            found = [row.relationship for row in self._rows if filter.matches(row.relationship) and self._visible(row)]
        found.sort(key=lambda rel: rel.key)
        if after is not None:
            found = [rel for rel in found if rel.key > after]
        return found if limit is None else found[:limit]

    def count(self, filter: RelationshipFilter) -> int:
        return len(self.read(filter))


class MemoryStore:
    """The reference store: every rule of the store protocol, in plain Python.

    :param clock: returns the current time (timezone-aware); it stamps revisions
      and is the default ``now`` for expiration and gc. Tests inject a fake one.

    Example::

        >>> store = MemoryStore()
        >>> store.head()
        0
    """

    def __init__(self, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._rows: list[_Row] = []
        self._by_resource: dict[tuple[ObjectRef, str], list[_Row]] = {}
        self._unsorted: set[tuple[ObjectRef, str]] = set()  # _by_resource lists appended to since last sorted
        self._versions: _Versions = {}  # every stored row of a key (see _add_version)
        # (resource type, relation, subject type, id, relation or ""): rows, for resources() (LookupResources)
        self._by_subject: dict[tuple[str, str, str, str, str], list[_Row]] = {}
        self._live: dict[RelationshipKey, _Row] = {}
        self._revisions: dict[Revision, _RevisionRecord] = {0: _RevisionRecord(0, self._now())}
        self._schemas: list[StoredSchema] = []
        self._head: Revision = 0
        self._oldest: Revision = 0
        self._closed = False

    # --- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    def _now(self) -> datetime:
        return _check_now(self._clock())

    # --- reads --------------------------------------------------------------------------

    @contextmanager
    def snapshot(self, revision: Revision | None = None, *, now: datetime | None = None) -> Iterator[_MemoryReader]:
        _check_revision(revision)
        moment = self._now() if now is None else _check_now(now)
        with self._lock:
            self._check_open()
            reader = self._reader(self._head if revision is None else revision, moment)
        try:
            yield reader
        finally:
            reader.close()

    def _reader(self, revision: Revision, now: datetime) -> _MemoryReader:
        if not self._oldest <= revision <= self._head:
            raise _unavailable(revision, self._oldest, self._head)
        return _MemoryReader(self._lock, revision, now, self._rows, self._by_resource, self._unsorted,
                             self._versions, self._by_subject)

    def head(self) -> Revision:
        with self._lock:
            self._check_open()
            return self._head

    def revision_time(self, revision: Revision) -> datetime:
        return self._revision_record(revision).committed_at

    def revision_metadata(self, revision: Revision) -> dict[str, str]:
        return dict(self._revision_record(revision).metadata)

    def _revision_record(self, revision: Revision) -> _RevisionRecord:
        _check_revision(revision)
        with self._lock:
            self._check_open()
            record = self._revisions.get(revision)
            if record is None:
                raise _unavailable(revision, self._oldest, self._head)
            return record

    def changes(self, after: Revision, *, limit: int | None = None) -> list[Change]:
        _check_revision(after)
        _check_limit(limit)
        with self._lock:
            self._check_open()
            if not self._oldest <= after <= self._head:
                raise _unavailable(after, self._oldest, self._head)
            # A row deleted at the revision that created its replacement is an update, not a delete.
            replaced = {(row.relationship.key, row.created_rev) for row in self._rows}
            found: list[Change] = []
            for row in self._rows:
                if row.created_rev > after:
                    found.append(Change(row.created_rev, Operation.TOUCH, row.relationship))
                if (
                    row.deleted_rev is not None
                    and row.deleted_rev > after
                    and (row.relationship.key, row.deleted_rev) not in replaced
                ):
                    found.append(Change(row.deleted_rev, Operation.DELETE, row.relationship))
        found.sort(key=lambda change: (change.revision, change.relationship.key))
        return _whole_revisions(found, limit)

    def read_schema(self, revision: Revision | None = None) -> StoredSchema | None:
        _check_revision(revision)
        with self._lock:
            self._check_open()
            at = self._head if revision is None else revision
            if not self._oldest <= at <= self._head:
                raise _unavailable(at, self._oldest, self._head)
            in_force = [schema for schema in self._schemas if schema.revision <= at]
            return in_force[-1] if in_force else None

    def schema_history(self) -> list[StoredSchema]:
        with self._lock:
            self._check_open()
            return list(self._schemas)

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
        with self._lock:
            self._check_open()
            now = self._now()
            with self._pre_write_reader(now) as reader:
                _enforce_preconditions(reader, conditions)
                if validate is not None:
                    validate(reader, batch)
            for update in batch:
                existing = self._live.get(update.relationship.key)
                if update.operation is Operation.CREATE and existing is not None and _unexpired(existing, now):
                    raise AlreadyExistsError(
                        f"cannot create relationship {_key_text(update.relationship.key)!r}: it already exists",
                        relationship=existing.relationship,
                    )
            revision = self._new_revision(now, meta)
            for update in batch:
                self._apply(update, revision, now)
            return revision

    def _apply(self, update: Update, revision: Revision, now: datetime) -> None:
        rel = update.relationship
        existing = self._live.get(rel.key)
        if update.operation is Operation.DELETE:
            if existing is not None and _unexpired(existing, now):
                existing.deleted_rev = revision
                del self._live[rel.key]
            return
        if existing is not None:  # replaced, even when identical or expired
            existing.deleted_rev = revision
        row = _Row(rel, revision)
        self._rows.append(row)
        key = (rel.resource, rel.relation)
        self._by_resource.setdefault(key, []).append(row)
        self._unsorted.add(key)
        _add_version(self._versions, row)
        self._by_subject.setdefault(_subject_key(row), []).append(row)
        self._live[rel.key] = row

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
        with self._lock:
            self._check_open()
            now = self._now()
            with self._pre_write_reader(now) as reader:
                _enforce_preconditions(reader, conditions)
            matching = sorted(
                (row for row in self._live.values() if _unexpired(row, now) and filter.matches(row.relationship)),
                key=lambda row: row.relationship.key,
            )
            partial = False
            if limit is not None and len(matching) > limit:
                if not allow_partial:
                    raise LimitExceededError(
                        f"delete would remove more than {limit} relationships matching ({filter}); "
                        "raise the limit or pass allow_partial=True",
                        limit=limit,
                    )
                matching, partial = matching[:limit], True
            revision = self._new_revision(now, meta)
            for row in matching:
                row.deleted_rev = revision
                del self._live[row.relationship.key]
            return revision, len(matching), partial

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
        with self._lock:
            self._check_open()
            now = self._now()
            if check is not None:
                with self._pre_write_reader(now) as reader:
                    check(reader)
            revision = self._new_revision(now, meta)
            version = self._schemas[-1].version + 1 if self._schemas else 1
            self._schemas.append(StoredSchema(text, digest, version, revision))
            return revision

    def gc(self, window: timedelta = timedelta(hours=24), *, now: datetime | None = None) -> int:
        _check_window(window)
        moment = self._now() if now is None else _check_now(now)
        threshold = _gc_threshold(moment, window)
        with self._lock:
            self._check_open()
            if threshold is None:
                return 0
            older = [r for r, record in self._revisions.items() if record.committed_at < threshold]
            if not older:
                return 0
            cutoff = max(older)  # never above head: head is a kept revision
            kept = [row for row in self._rows if row.deleted_rev is None or row.deleted_rev > cutoff]
            removed = len(self._rows) - len(kept)
            by_resource: dict[tuple[ObjectRef, str], list[_Row]] = {}
            versions: _Versions = {}
            by_subject: dict[tuple[str, str, str, str, str], list[_Row]] = {}
            for row in kept:
                by_resource.setdefault((row.relationship.resource, row.relationship.relation), []).append(row)
                _add_version(versions, row)
                by_subject.setdefault(_subject_key(row), []).append(row)
            # New containers, so that open readers keep the ones they captured.
            self._rows, self._by_resource, self._versions, self._by_subject = kept, by_resource, versions, by_subject
            self._unsorted = set(by_resource)
            self._revisions = {r: record for r, record in self._revisions.items() if r >= cutoff}
            self._oldest = cutoff
            return removed

    @contextmanager
    def _pre_write_reader(self, now: datetime) -> Iterator[_MemoryReader]:
        reader = self._reader(self._head, now)
        try:
            yield reader
        finally:
            reader.close()

    def _new_revision(self, now: datetime, metadata: dict[str, str]) -> Revision:
        """Allocate the next revision; its time never goes below the previous revision's."""
        previous = self._revisions[self._head]
        revision = self._head + 1
        self._revisions[revision] = _RevisionRecord(revision, max(now, previous.committed_at), metadata)
        self._head = revision
        return revision
