"""Store: any backend behind one argument check and the write rules every backend shares.

A backend (see :mod:`.contract`) implements a handful of methods and trusts its
arguments. This wrapper (SpiceDB's ``internal/datastore/proxy`` plays the same
part) is what the engine and users call: it refuses malformed arguments before
anything reaches the backend, and builds every write from the backend's one
write primitive, :meth:`~.contract.Committer.commit`:

- ``write``: preconditions at the base revision, then the caller's validation,
  then CREATE conflicts (a live, unexpired relationship with the key), then the
  batch; nothing is written if any of them fails;
- ``delete``: the matching relationships read at the base revision, at most
  ``limit`` of them (or an error, unless ``allow_partial``);
- ``write_schema``: the caller's validation, then a new schema version.

A reader it hands out checks the arguments of ``read`` and ``count``; its other
reads are the backend's own bound methods (the evaluator's hot path, called with
values from the schema and from stored rows).

Example::

    >>> from headwater.engine.relationships import parse_relationship
    >>> from headwater.engine.store.memory import MemoryStore
    >>> store = MemoryStore()
    >>> store.write([Update(Operation.TOUCH, parse_relationship("doc:1#viewer@user:tom"))], metadata={"actor": "me"})
    1
    >>> store.delete(RelationshipFilter(resource_type="doc"))
    (2, 1, False)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from ..errors import AlreadyExistsError, InvalidRequestError, LimitExceededError, PreconditionFailedError
from .contract import (
    Backend,
    Batch,
    Change,
    GcResult,
    Operation,
    Precondition,
    Reader,
    RelationshipFilter,
    Revision,
    Row,
    RowKey,
    SchemaValidator,
    StoredSchema,
    Update,
    Validator,
    checked_time,
)

__all__ = ["Store"]

_log = logging.getLogger("headwater.store")


class Store:
    """A relationship store: ``backend`` behind argument validation and the shared write rules.

    ``MemoryStore`` and ``SqliteStore`` are this class around their backends; wrap any
    other :class:`~.contract.Backend` the same way: ``Store(MyBackend())``.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @property
    def path(self) -> Any:
        """The backend's file (None for a backend without one, such as the memory store)."""
        return getattr(self.backend, "path", None)

    @property
    def database(self) -> Any:
        """The backend's database, as its audit log finds it: a SQLite file's path or a PostgreSQL URI (with its
        password, if it has one: show it through ``naming.describe``); None for a store that does not last."""
        return self.path or getattr(getattr(self.backend, "db", None), "uri", None)

    def now(self) -> datetime:
        """The backend's clock, in UTC."""
        return checked_time(self.backend.clock())

    # --- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Release the backend's resources; the store cannot be used afterwards."""
        self.backend.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- reads --------------------------------------------------------------------------

    def snapshot(self, revision: Revision | None = None, *, now: datetime | None = None) -> _Snapshot:
        """A consistent view at ``revision`` (None: head), hiding relationships expired at ``now`` (None: the
        store's clock); a context manager yielding a :class:`~.contract.Reader`."""
        _validate_revision(revision)
        moment = self.now() if now is None else checked_time(now)
        return _Snapshot(self.backend.snapshot(revision, moment))

    def head(self) -> Revision:
        """The newest revision."""
        return self.backend.head()

    def revision_time(self, revision: Revision) -> datetime:
        """When ``revision`` was committed (UTC)."""
        _validate_revision(revision)
        return self.backend.revision_info(revision).committed_at

    def revision_metadata(self, revision: Revision) -> dict[str, str]:
        """The metadata written with ``revision``."""
        _validate_revision(revision)
        return dict(self.backend.revision_info(revision).metadata)

    def changes(self, after: Revision, *, limit: int | None = None) -> list[Change]:
        """Relationship changes of the revisions after ``after``, by revision then key; whole revisions only."""
        _validate_revision(after)
        _validate_limit(limit)
        return self.backend.changes(after, limit)

    def read_schema(self, revision: Revision | None = None) -> StoredSchema | None:
        """The schema in force at ``revision`` (None: head), or None before the first schema."""
        with self.snapshot(revision) as reader:
            return reader.schema()

    def schema_history(self) -> list[StoredSchema]:
        """Every schema version, oldest first."""
        return self.backend.schema_history()

    # --- writes -------------------------------------------------------------------------

    def write(self, updates: Sequence[Update], preconditions: Sequence[Precondition] = (), *,
              validate: Validator | None = None, metadata: Mapping[str, str] | None = None) -> Revision:
        """Apply ``updates`` in one transaction at a new revision, or change nothing and raise."""
        batch = _validate_updates(updates)
        conditions = _validate_preconditions(preconditions)
        meta = _validate_metadata(metadata)

        def plan(reader: Reader) -> Batch:
            _enforce_preconditions(reader, conditions)
            prefetch = getattr(reader, "prefetch", None)
            if prefetch is not None:  # a hint (a SQL backend reads the batch's objects in bulk); no answer changes
                prefetch([(u.relationship.resource.type, u.relationship.resource.id) for u in batch]
                         + [(u.relationship.subject.type, u.relationship.subject.id) for u in batch])
            if validate is not None:
                validate(reader, batch)
            deletes: list[RowKey] = []
            inserts: list[Row] = []
            for update in batch:
                row = Row.of(update.relationship)
                if update.operation is Operation.DELETE:
                    deletes.append(row.key)
                    continue
                if update.operation is Operation.CREATE and reader.relationship(*row.key) is not None:
                    raise AlreadyExistsError(
                        f"cannot create relationship {_key_text(row.key)!r}: it already exists",
                        relationship=update.relationship,
                    )
                inserts.append(row)
            return Batch(deletes, inserts)

        return self.backend.commit(plan, meta, "write relationships")

    def delete(self, filter: RelationshipFilter, *, limit: int | None = None, allow_partial: bool = False,
               preconditions: Sequence[Precondition] = (),
               metadata: Mapping[str, str] | None = None) -> tuple[Revision, int, bool]:
        """Delete the relationships matching ``filter`` (at most ``limit``: more is an error unless
        ``allow_partial``, then the first ``limit`` in key order go); returns (revision, deleted, partial)."""
        _validate_filter(filter)
        if filter.is_empty:
            raise InvalidRequestError("invalid delete: the filter is empty and would delete every relationship")
        _validate_limit(limit)
        conditions = _validate_preconditions(preconditions)
        meta = _validate_metadata(metadata)
        deleted: list[int | bool] = [0, False]

        def plan(reader: Reader) -> Batch:
            _enforce_preconditions(reader, conditions)
            found = reader.read(filter, limit=None if limit is None else limit + 1)
            partial = False
            if limit is not None and len(found) > limit:
                if not allow_partial:
                    raise LimitExceededError(
                        f"delete would remove more than {limit} relationships matching ({filter}); "
                        "raise the limit or pass allow_partial=True",
                        limit=limit,
                    )
                found, partial = found[:limit], True
            deleted[:] = [len(found), partial]
            return Batch(deletes=[row.key for row in found])

        revision = self.backend.commit(plan, meta, "delete relationships")
        return revision, int(deleted[0]), bool(deleted[1])

    def write_schema(self, text: str, digest: str, *, validate: SchemaValidator | None = None,
                     metadata: Mapping[str, str] | None = None) -> Revision:
        """Store a new schema version at a new revision, unless ``validate`` (given a reader at the base
        revision) raises."""
        if not isinstance(text, str) or not isinstance(digest, str):
            raise InvalidRequestError("invalid schema write: text and digest must be strings")
        meta = _validate_metadata(metadata)

        def plan(reader: Reader) -> Batch:
            if validate is not None:
                validate(reader)
            return Batch(schema=(text, digest))

        return self.backend.commit(plan, meta, "write the schema")

    def gc(self, window: timedelta = timedelta(hours=24), *, now: datetime | None = None) -> GcResult:
        """Forget deleted rows and revisions older than ``window`` before ``now`` (the head is always kept), and
        relationships that expired that long ago without being deleted (precisely: expired at or before the
        oldest revision kept, :meth:`~.contract.Collector.gc`); how many rows were removed (an int), with
        ``expired_removed``."""
        if not isinstance(window, timedelta) or window < timedelta(0):
            raise InvalidRequestError(f"invalid gc window {window!r}: must be a timedelta of zero or more")
        moment = self.now() if now is None else checked_time(now)
        try:
            before = moment - window
        except OverflowError:  # before the earliest representable time: nothing is that old
            return GcResult(0)
        result = self.backend.gc(before)
        if result:
            _log.info("gc removed %d row(s), %d of them expired relationships", result, result.expired_removed,
                      extra={"fields": {"event": "gc", "rows_removed": int(result),
                                        "expired_removed": result.expired_removed}})
        return result


class _Snapshot:
    """``Store.snapshot()``: the backend's snapshot as a context manager whose reader is this object, the
    backend reader's own reads bound on it, its ``read`` and ``count`` checking their arguments first."""

    __slots__ = ("_inner", "_reader", "revision", "relationship", "relationships", "subject_sets", "schema",
                 "prefetch_lineage")

    def __init__(self, inner: AbstractContextManager[Reader]) -> None:
        self._inner = inner

    def __enter__(self) -> _Snapshot:
        self._reader = reader = self._inner.__enter__()
        self.revision = reader.revision
        self.relationship = reader.relationship
        self.relationships = reader.relationships
        self.subject_sets = reader.subject_sets
        self.schema = reader.schema
        # A hint some backends take (a SQL store reads a lineage closure in one query); None where none is taken.
        self.prefetch_lineage = getattr(reader, "prefetch_lineage", None)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Any:
        return self._inner.__exit__(exc_type, exc, tb)

    def read(self, filter: RelationshipFilter, *, after: RowKey | None = None,
             limit: int | None = None) -> list[Row]:
        _validate_filter(filter)
        _validate_limit(limit)
        _validate_after(after)
        return self._reader.read(filter, after=after, limit=limit)

    def count(self, filter: RelationshipFilter) -> int:
        _validate_filter(filter)
        return self._reader.count(filter)


# --- argument checks --------------------------------------------------------------------------


def _validate_updates(updates: Iterable[Update]) -> tuple[Update, ...]:
    """The batch as a tuple, refusing non-updates and two updates of one relationship."""
    batch = tuple(updates)
    seen: set[object] = set()
    for update in batch:
        if not isinstance(update, Update):
            raise InvalidRequestError(f"invalid update {update!r}: must be an Update")
        key = update.relationship.key
        if key in seen:
            raise InvalidRequestError(
                f"invalid write: relationship {_key_text(Row.of(update.relationship).key)!r} is updated more "
                "than once in one batch"
            )
        seen.add(key)
    return batch


def _validate_preconditions(preconditions: Iterable[Precondition]) -> tuple[Precondition, ...]:
    checked = tuple(preconditions)
    for precondition in checked:
        if not isinstance(precondition, Precondition):
            raise InvalidRequestError(f"invalid precondition {precondition!r}: must be a Precondition")
    return checked


def _validate_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    if metadata is None:
        return {}
    result = dict(metadata)
    for key, value in result.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidRequestError(f"invalid metadata {key!r}: {value!r}: keys and values must be strings")
    return result


def _validate_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise InvalidRequestError(f"invalid limit {limit!r}: must be a positive integer or None")


def _validate_revision(revision: Revision | None) -> None:
    if revision is not None and (not isinstance(revision, int) or isinstance(revision, bool)):
        raise InvalidRequestError(f"invalid revision {revision!r}: must be an integer")


def _validate_filter(filter: RelationshipFilter) -> None:
    if not isinstance(filter, RelationshipFilter):
        raise InvalidRequestError(f"invalid filter {filter!r}: must be a RelationshipFilter")


def _validate_after(after: RowKey | None) -> None:
    if after is None:
        return
    if not isinstance(after, tuple) or len(after) != 6 or not all(isinstance(part, str) for part in after):
        raise InvalidRequestError(
            f"invalid 'after' {after!r}: must be a relationship key (resource type, resource id, relation, "
            "subject type, subject id, subject relation or '')"
        )


def _enforce_preconditions(reader: Reader, preconditions: Sequence[Precondition]) -> None:
    """Raise PreconditionFailedError for the first precondition that does not hold at ``reader``."""
    for precondition in preconditions:
        found = bool(reader.read(precondition.filter, limit=1))
        if found != precondition.must_match:
            raise PreconditionFailedError(
                f"precondition failed at revision {reader.revision}: expected {precondition}",
                precondition=precondition,
            )


def _key_text(key: RowKey) -> str:
    resource_type, resource_id, relation, subject_type, subject_id, subject_relation = key
    subject = f"{subject_type}:{subject_id}" + (f"#{subject_relation}" if subject_relation else "")
    return f"{resource_type}:{resource_id}#{relation}@{subject}"
