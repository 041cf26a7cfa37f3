"""MemoryStore: the reference backend, plain Python lists and dicts behind one lock.

It is written to be obviously correct rather than fast. Engine tests run on it,
and ``SqliteStore`` must behave exactly like it (the contract suite in
``tests/store/`` and ``tests/properties/test_store_equivalence.py``).

Layout: ``_versions`` holds every stored version of a relationship (its
:class:`~.contract.Row`, created_rev, deleted_rev) in write order, indexed three
ways: by ``(resource type, id, relation)`` for the evaluator's reads (kept in
subject order, sorted once after writes), by key (every version of one
relationship: ``relationship()``), and by ``(resource type, relation, subject)``
(the reverse reads of lookups). ``_live`` maps each key to its one not-deleted
version (which may have expired). A reader captures the containers when it
opens; ``gc`` builds new ones instead of editing them, so an open reader keeps
seeing its revision.

Example::

    >>> from headwater.engine.relationships import parse_relationship
    >>> from headwater.engine.store import Operation, Update
    >>> with MemoryStore() as store:
    ...     store.write([Update(Operation.CREATE, parse_relationship("doc:1#viewer@user:tom"))])
    1
"""

from __future__ import annotations

import heapq

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from operator import itemgetter

from ..errors import StoreError
from .contract import (
    Batch,
    Change,
    GcResult,
    Operation,
    Plan,
    RelationshipFilter,
    Revision,
    RevisionInfo,
    Row,
    RowKey,
    StoredSchema,
    checked_time,
    unavailable,
    whole_revisions,
)
from .validating import Store

__all__ = ["MemoryStore"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class _Version:
    """One stored version of a relationship; ``deleted_rev`` is None while it is not deleted."""

    __slots__ = ("row", "created_rev", "deleted_rev")

    def __init__(self, row: Row, created_rev: Revision) -> None:
        self.row = row
        self.created_rev = created_rev
        self.deleted_rev: Revision | None = None


def _subject_order(version: _Version) -> tuple[str, str, str]:
    row = version.row
    return (row.subject_type, row.subject_id, row.subject_relation)


_row_key = itemgetter(0, 1, 2, 3, 4, 5)  # a row's key, for sorting


def _reverse_key(row: Row) -> tuple[str, str, str, str, str]:
    return (row.resource_type, row.relation, row.subject_type, row.subject_id, row.subject_relation)


@dataclass
class _Indexes:
    """Every stored version, and the ways they are found (rebuilt whole by gc): by key, by resource and relation
    (the evaluator's reads), by subject (reverse reads), and by object and by type (read filters naming only an
    object, or only a type: an object's relationships, an export of one type)."""

    versions: list[_Version]
    by_resource: dict[tuple[str, str, str], list[_Version]]
    by_key: dict[RowKey, list[_Version]]
    by_subject: dict[tuple[str, str, str, str, str], list[_Version]]
    by_object: dict[tuple[str, str], list[_Version]]
    by_type: dict[str, list[_Version]]
    unsorted: set[tuple[str, str, str]]  # by_resource lists appended to since last sorted

    @classmethod
    def of(cls, versions: list[_Version]) -> _Indexes:
        indexes = cls([], {}, {}, {}, {}, {}, set())
        for version in versions:
            indexes.add(version)
        return indexes

    def add(self, version: _Version) -> None:
        row = version.row
        self.versions.append(version)
        resource = (row.resource_type, row.resource_id, row.relation)
        self.by_resource.setdefault(resource, []).append(version)
        self.unsorted.add(resource)
        self.by_key.setdefault(row.key, []).append(version)
        self.by_subject.setdefault(_reverse_key(row), []).append(version)
        self.by_object.setdefault((row.resource_type, row.resource_id), []).append(version)
        self.by_type.setdefault(row.resource_type, []).append(version)


@dataclass(frozen=True, slots=True)
class _RevisionRecord:
    revision: Revision
    committed_at: datetime
    metadata: dict[str, str]


class _MemoryReader:
    """A view of the versions at one revision and one ``now``; valid until its snapshot closes."""

    def __init__(self, lock: threading.RLock, revision: Revision, now: datetime, indexes: _Indexes,
                 schemas: list[StoredSchema]) -> None:
        self._lock = lock
        self._revision = revision
        self._now_us = (now - _EPOCH) // _MICROSECOND
        self._indexes = indexes
        self._schemas = schemas
        self._open = True

    @property
    def revision(self) -> Revision:
        return self._revision

    def close(self) -> None:
        self._open = False

    def _visible(self, versions: Sequence[_Version]) -> list[Row]:
        if not self._open:
            raise StoreError("this reader's snapshot is closed; open a new snapshot")
        revision, now_us = self._revision, self._now_us
        return [v.row for v in versions
                if v.created_rev <= revision and (v.deleted_rev is None or v.deleted_rev > revision)
                and (v.row.expires_at_us is None or v.row.expires_at_us > now_us)]

    def relationship(self, resource_type: str, resource_id: str, relation: str, subject_type: str,
                     subject_id: str, subject_relation: str) -> Row | None:
        key = (resource_type, resource_id, relation, subject_type, subject_id, subject_relation)
        with self._lock:
            if not self._open:
                raise StoreError("this reader's snapshot is closed; open a new snapshot")
            revision = self._revision
            for v in self._indexes.by_key.get(key, ()):  # a key is visible at most once
                if v.created_rev <= revision and (v.deleted_rev is None or v.deleted_rev > revision):
                    row = v.row
                    return row if row.expires_at_us is None or row.expires_at_us > self._now_us else None
        return None

    def relationships(self, resource_type: str, resource_id: str, relation: str) -> Sequence[Row]:
        key = (resource_type, resource_id, relation)
        with self._lock:
            indexes = self._indexes
            versions = indexes.by_resource.get(key, ())
            if key in indexes.unsorted:  # kept in subject order, sorted once after writes
                versions.sort(key=_subject_order)  # type: ignore[union-attr]
                indexes.unsorted.discard(key)
            return self._visible(versions)

    def subject_sets(self, resource_type: str, resource_id: str, relation: str) -> Sequence[Row]:
        return [row for row in self.relationships(resource_type, resource_id, relation) if row.subject_relation]

    def read(self, filter: RelationshipFilter, *, after: RowKey | None = None,
             limit: int | None = None) -> list[Row]:
        with self._lock:
            found = [row for row in self._visible(self._candidates(filter)) if filter.matches_row(row)
                     and (after is None or row.key > after)]
        if limit is not None and limit < len(found):  # a page: its first rows, without sorting the rest
            return heapq.nsmallest(limit, found, key=_row_key)
        found.sort(key=_row_key)
        return found

    def _candidates(self, f: RelationshipFilter) -> Sequence[_Version]:
        """The versions that can match ``f``: the narrowest index entry the filter names, else all."""
        indexes, subject_relation = self._indexes, f.stored_subject_relation
        reverse = (f.resource_type, f.relation, f.subject_type, f.subject_id, subject_relation)
        if None not in reverse:
            return indexes.by_subject.get(reverse, ())  # type: ignore[arg-type]
        if f.resource_type is None:
            return indexes.versions
        if f.resource_id is None:
            return indexes.by_type.get(f.resource_type, ())
        if f.relation is None:
            return indexes.by_object.get((f.resource_type, f.resource_id), ())
        return indexes.by_resource.get((f.resource_type, f.resource_id, f.relation), ())

    def count(self, filter: RelationshipFilter) -> int:
        return len(self.read(filter))

    def schema(self) -> StoredSchema | None:
        if not self._open:
            raise StoreError("this reader's snapshot is closed; open a new snapshot")
        in_force = [schema for schema in self._schemas if schema.revision <= self._revision]
        return in_force[-1] if in_force else None


class _MemoryBackend:
    """Every rule of the store contract, in plain Python (see the module docstring)."""

    path = None

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self._lock = threading.RLock()
        self._indexes = _Indexes.of([])
        self._live: dict[RowKey, _Version] = {}
        self._revisions: dict[Revision, _RevisionRecord] = {0: _RevisionRecord(0, checked_time(clock()), {})}
        self._schemas: list[StoredSchema] = []
        self._head: Revision = 0
        self._oldest: Revision = 0
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def _ensure_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    # --- reads --------------------------------------------------------------------------

    @contextmanager
    def snapshot(self, revision: Revision | None, now: datetime) -> Iterator[_MemoryReader]:
        with self._lock:
            self._ensure_open()
            reader = self._reader(self._head if revision is None else revision, now)
        try:
            yield reader
        finally:
            reader.close()

    def _reader(self, revision: Revision, now: datetime) -> _MemoryReader:
        if not self._oldest <= revision <= self._head:
            raise unavailable(revision, self._oldest, self._head)
        return _MemoryReader(self._lock, revision, now, self._indexes, self._schemas)

    def head(self) -> Revision:
        with self._lock:
            self._ensure_open()
            return self._head

    def revision_info(self, revision: Revision) -> RevisionInfo:
        with self._lock:
            self._ensure_open()
            record = self._revisions.get(revision)
            if record is None:
                raise unavailable(revision, self._oldest, self._head)
            return RevisionInfo(record.revision, record.committed_at, dict(record.metadata))

    def changes(self, after: Revision, limit: int | None) -> list[Change]:
        with self._lock:
            self._ensure_open()
            if not self._oldest <= after <= self._head:
                raise unavailable(after, self._oldest, self._head)
            versions = self._indexes.versions
            # A version deleted at the revision that created its replacement is an update, not a delete.
            replaced = {(v.row.key, v.created_rev) for v in versions}
            found: list[tuple[Revision, RowKey, Operation, Row]] = []
            for v in versions:
                if v.created_rev > after:
                    found.append((v.created_rev, v.row.key, Operation.TOUCH, v.row))
                if v.deleted_rev is not None and v.deleted_rev > after and (v.row.key, v.deleted_rev) not in replaced:
                    found.append((v.deleted_rev, v.row.key, Operation.DELETE, v.row))
        found.sort(key=lambda change: change[:2])
        return whole_revisions([Change(revision, op, row.relationship()) for revision, _, op, row in found], limit)

    def schema_history(self) -> list[StoredSchema]:
        with self._lock:
            self._ensure_open()
            return list(self._schemas)

    # --- writes -------------------------------------------------------------------------

    def commit(self, plan: Plan, metadata: dict[str, str], action: str) -> Revision:
        with self._lock:
            self._ensure_open()
            now = checked_time(self.clock())
            reader = self._reader(self._head, now)
            try:
                batch: Batch = plan(reader)
            finally:
                reader.close()
            revision = self._new_revision(now, metadata)
            now_us = (now - _EPOCH) // _MICROSECOND
            for key in batch.deletes:
                existing = self._live.get(key)
                if existing is not None and (existing.row.expires_at_us is None or existing.row.expires_at_us > now_us):
                    existing.deleted_rev = revision
                    del self._live[key]
            for row in batch.inserts:
                existing = self._live.get(row.key)
                if existing is not None:  # replaced, even when identical or expired
                    existing.deleted_rev = revision
                version = _Version(row, revision)
                self._indexes.add(version)
                self._live[row.key] = version
            if batch.schema is not None:
                text, digest = batch.schema
                version_number = self._schemas[-1].version + 1 if self._schemas else 1
                self._schemas.append(StoredSchema(text, digest, version_number, revision))
            return revision

    def _new_revision(self, now: datetime, metadata: dict[str, str]) -> Revision:
        """Allocate the next revision; its time never goes below the previous revision's."""
        previous = self._revisions[self._head]
        revision = self._head + 1
        self._revisions[revision] = _RevisionRecord(revision, max(now, previous.committed_at), metadata)
        self._head = revision
        return revision

    def gc(self, before: datetime) -> GcResult:
        with self._lock:
            self._ensure_open()
            older = [r for r, record in self._revisions.items() if record.committed_at < before]
            if not older:
                return GcResult(0)
            cutoff = max(older)  # never above head: head is a kept revision
            cutoff_us = (self._revisions[cutoff].committed_at - _EPOCH) // _MICROSECOND
            versions = self._indexes.versions
            kept, expired = [], 0
            for v in versions:
                if v.deleted_rev is not None:
                    if v.deleted_rev > cutoff:
                        kept.append(v)
                elif v.row.expires_at_us is not None and v.row.expires_at_us <= cutoff_us and v.created_rev <= cutoff:
                    expired += 1  # expired for every snapshot still readable
                    if self._live.get(v.row.key) is v:
                        del self._live[v.row.key]
                else:
                    kept.append(v)
            self._indexes = _Indexes.of(kept)  # new containers: open readers keep the ones they captured
            self._revisions = {r: record for r, record in self._revisions.items() if r >= cutoff}
            self._oldest = cutoff
            return GcResult(len(versions) - len(kept), expired)


class MemoryStore(Store):
    """The reference store: :class:`~.validating.Store` over plain Python structures.

    :param clock: returns the current time (timezone-aware); it stamps revisions
      and is the default ``now`` for expiration and gc. Tests inject a fake one.

    Example::

        >>> store = MemoryStore()
        >>> store.head()
        0
    """

    def __init__(self, *, clock: Callable[[], datetime] = _utc_now) -> None:
        super().__init__(_MemoryBackend(clock))
