"""Writes: relationship batches validated against the schema and Headwater's rules, deletes, and gc.

A write batch is atomic. Inside its transaction, at the revision it starts
from, every created or touched relationship must fit the schema
(:mod:`.validation`), the batch must not make the lineage graph cyclic
(:func:`~.lineage.find_lineage_cycle`, which names the cycle), and writing or
deleting a declassification needs an actor and a reason, and the actor must
hold the declassification's ``by`` permission on the object in the state the
batch leaves (a check over :class:`~.store.overlay.BatchView`: a steward
granted in the same batch counts). The audit log records each committed batch, and each
declassification in it. Writes also collect old history now and then
(``gc_interval``).

Example::

    >>> from headwater.engine import Engine
    >>> from headwater.engine.store.memory import MemoryStore
    >>> engine = Engine(MemoryStore())
    >>> _ = engine.write_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n}")
    >>> engine.touch("doc:1#viewer@user:ann").revision
    2
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime

from ..dsl import schema as dsl_schema
from . import tracing
from .consistency import encode_token
from .context import Context
from .errors import (
    DeclassificationRefusedError,
    InvalidRequestError,
    LimitExceededError,
    LineageCycleError,
    NotFoundError,
)
from .lineage import describe_cycle, find_lineage_cycle
from .queries.check import CheckQuery
from .relationships import Relationship, parse_subject
from .results import BulkCheckItem, DeleteResult, WriteResult
from .store import Operation, Precondition, Reader, RelationshipFilter, Revision, Update
from .store.overlay import BatchView
from .validation import validate_relationship

__all__ = ["Writes", "revision_metadata"]


class Writes:
    """Relationship writes, deletes and garbage collection over one engine's :class:`~.context.Context`."""

    def __init__(self, ctx: Context, checks: CheckQuery) -> None:
        self.ctx = ctx
        self.checks = checks  # decides whether an actor may declassify
        self._last_gc: datetime | None = None

    def write(self, updates: Iterable[Update], preconditions: Sequence[Precondition] = (), *,
              actor: str | None = None, reason: str | None = None, trusted: bool = False,
              limit: int | None = None) -> WriteResult:
        """See :meth:`~headwater.engine.Engine.write`; ``limit``: the most updates this write may hold (default
        ``max_updates_per_write``; an import's batch may be larger, up to ``max_import_batch``)."""
        ctx = self.ctx
        batch = list(updates)
        limit = limit or ctx.config.limits.max_updates_per_write
        if len(batch) > limit:
            raise LimitExceededError(f"{len(batch)} updates in one write; the limit is {limit}", limit=limit)
        if not batch and not preconditions:
            raise InvalidRequestError("a write needs at least one update")
        declassified = [0]  # declassifications in the batch (set by validate, counted once committed)

        def validate(reader: Reader, updates: Sequence[Update]) -> None:
            stored = reader.schema()
            if stored is None:
                raise NotFoundError("no schema has been written yet: write a schema before relationships")
            schema = ctx.compiled(stored)
            for u in updates:
                if u.operation is not Operation.DELETE:
                    validate_relationship(schema, u.relationship,
                                          max_context_bytes=ctx.config.limits.max_caveat_context_bytes)
            cycle = find_lineage_cycle(schema, reader, updates)
            if cycle is not None:
                self.ctx.counters["lineage_cycle_refusals"] += 1
                raise LineageCycleError(f"refused: the write would make the lineage graph cyclic: "
                                        f"{describe_cycle(cycle)}; nothing in this batch was written")
            if schema.classifications and not trusted:
                declassified[0] = self._authorize_declassifications(schema, reader, updates, actor, reason)

        started = time.perf_counter()
        try:
            with tracing.span("headwater.store.write", {"headwater.updates": len(batch)}):
                revision = ctx.store.write(batch, preconditions, validate=validate,
                                           metadata=revision_metadata(ctx, actor, reason))
        finally:
            ctx.count_store("write", started)
        ctx.note_head(revision)
        if declassified[0]:
            ctx.counters["lineage_declassifications"] += declassified[0]
        if ctx.audit is not None:
            self._record(revision, "write", actor, reason, [(u.operation.value, u.relationship) for u in batch])
        self._maybe_gc()
        return WriteResult(encode_token(revision))

    def delete(self, filter: RelationshipFilter, *, limit: int | None = None, allow_partial: bool = False,
               preconditions: Sequence[Precondition] = (), actor: str | None = None,
               reason: str | None = None) -> DeleteResult:
        """See :meth:`~headwater.engine.Engine.delete`."""
        ctx = self.ctx
        started = time.perf_counter()
        try:
            with tracing.span("headwater.store.delete"):
                revision, n, partial = ctx.store.delete(filter, limit=limit, allow_partial=allow_partial,
                                                        preconditions=preconditions,
                                                        metadata=revision_metadata(ctx, actor, reason))
        finally:
            ctx.count_store("delete", started)
        ctx.note_head(revision)
        if ctx.audit is not None:
            changes = [c for c in ctx.store.changes(revision - 1, limit=1) if c.revision == revision] if n else []
            self._record(revision, "delete", actor, reason, [(c.operation.value, c.relationship) for c in changes],
                         str(filter), partial)
        return DeleteResult(encode_token(revision), n, partial)

    def gc(self) -> int:
        """See :meth:`~headwater.engine.Engine.gc`."""
        started = time.perf_counter()
        try:
            removed = self.ctx.store.gc(self.ctx.config.storage.gc_window, now=self.ctx.clock())
        finally:
            self.ctx.count_store("gc", started)
        self._last_gc = self.ctx.clock()
        self.ctx.counters["gc_runs"] += 1
        self.ctx.counters["gc_rows_removed"] += removed
        self.ctx.counters["gc_expired_removed"] += getattr(removed, "expired_removed", 0)
        return removed

    def _maybe_gc(self) -> None:
        interval = self.ctx.config.storage.gc_interval
        if interval is None:
            return
        now = self.ctx.clock()
        if self._last_gc is None:
            self._last_gc = now  # the first write starts the clock; no collection at start-up
        elif now - self._last_gc >= interval:
            self.gc()

    def _authorize_declassifications(self, schema: dsl_schema.Schema, reader: Reader, updates: Sequence[Update],
                                     actor: str | None, reason: str | None) -> int:
        """Each declassification the batch writes or deletes needs an actor and a reason, and the actor needs the
        declassification's ``by`` permission in the state the batch leaves (a steward granted in the same batch
        counts; one removed by it does not). Not a new power: whoever may write the batch could write the grant
        first and the declassification after it. Returns how many declassifications the batch has."""
        count = 0
        view: Reader | None = None  # the batch's own view, made for the first declassification only
        for u in updates:
            rel = u.relationship
            d = schema.definitions.get(rel.resource.type)
            r = d.relations.get(rel.relation) if d is not None else None
            if r is None or r.kind is not dsl_schema.RelationKind.DECLASSIFY:
                continue
            if not actor or not reason:
                raise DeclassificationRefusedError(
                    f"{rel}: writing or deleting a declassification needs an actor and a reason")
            if view is None:
                view = BatchView(reader, updates, self.ctx.clock())
            # inside the write transaction: its snapshot is not committed yet, so no shared cache may learn from it
            result = self.checks.decide_privately(schema, view, BulkCheckItem(rel.resource, r.declassify_by or "",
                                                                              parse_subject(actor)))
            if not result.allowed:
                raise DeclassificationRefusedError(
                    f"{rel}: {actor} may not declassify on {rel.resource}: it needs `{r.declassify_by}` there "
                    f"(the check answered {result.permissionship.name})")
            count += 1
        return count

    def _record(self, revision: Revision, operation: str, actor: str | None, reason: str | None,
                changes: list[tuple[str, Relationship]], filter: str | None = None,
                partial: bool | None = None) -> None:
        """Record a committed batch, and each declassification in it; returns once they are committed."""
        ctx = self.ctx
        audit = ctx.audit
        assert audit is not None
        token, now = encode_token(revision), ctx.clock()
        audit.record_relationships(time=now, operation=operation, actor=actor, reason=reason, revision=revision,
                                   token=token, changes=[(op, str(rel)) for op, rel in changes], filter=filter,
                                   partial=partial)
        stored = ctx.store.read_schema()
        schema = ctx.compiled(stored) if stored is not None else None
        if schema is not None and schema.classifications:
            for op, rel in changes:
                d = schema.definitions.get(rel.resource.type)
                r = d.relations.get(rel.relation) if d is not None else None
                if r is not None and r.kind is dsl_schema.RelationKind.DECLASSIFY:
                    audit.record_declassification(time=now, actor=actor, reason=reason, revision=revision,
                                                  token=token, operation=op, relationship=str(rel),
                                                  resource=str(rel.resource), subject=str(rel.subject),
                                                  relation=rel.relation)
        audit.flush()


def revision_metadata(ctx: Context, actor: str | None, reason: str | None = None) -> dict[str, str] | None:
    """The revision metadata a write (or a schema write) carries: who and why, when given, and, over a lasting
    store (a file, a PostgreSQL database) while audited, the audit log and its head (engine/audit/binding.py),
    so the store itself records that it is audited and which log continues it."""
    metadata = {k: v for k, v in (("actor", actor), ("reason", reason)) if v}
    if ctx.audit is not None and ctx.store.database is not None:
        metadata.update(ctx.audit.revision_metadata())
    return metadata or None
