"""What every operation behind the facade shares: store, config, caches, clock, audit log, and snapshots.

:class:`Context` is built once by :class:`~headwater.engine.Engine` and handed
to each query and write module (engine/queries/, engine/writes.py), so none of
them reaches into the facade. It opens a snapshot at the revision a
:class:`~headwater.engine.consistency.Consistency` selects, with the compiled
schema in force there, and keeps the *head hint*: the newest revision seen,
and when, so a minimize_latency read can skip reading the head for
``head_staleness`` (as SpiceDB does), without ever going back in time.

Example::

    >>> from headwater.engine.store.memory import MemoryStore
    >>> ctx = Context(MemoryStore(), Config())
    >>> ctx.recent_head()
    0
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..dsl import SchemaLimits, compile_schema
from ..dsl import schema as dsl_schema
from . import budget as budgets
from . import keys, tracing
from .budget import Budget
from .chain import Caches
from .config import Config
from .consistency import Consistency, ConsistencyMode, decode_token
from .errors import NotFoundError, RevisionUnavailableError
from .lineage import Lineage
from .store import Reader, Revision, Store, StoredSchema

if TYPE_CHECKING:
    from .audit import AuditLog

__all__ = ["Context", "utc_now"]


def utc_now() -> datetime:
    """The system clock, timezone-aware (the default clock of an engine)."""
    return datetime.now(UTC)


class Context:
    """The parts every operation shares (see the module docstring)."""

    def __init__(self, store: Store, config: Config, *, clock: Callable[[], datetime] = utc_now,
                 audit: AuditLog | None = None) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.system_clock = clock is utc_now  # then the warm path reads time.time() directly
        self.caches = Caches.build(config)
        self.audit = audit
        self.head_staleness_s = config.storage.head_staleness.total_seconds()
        self.head_hint: tuple[Revision, float] | None = None  # (head revision, when read: time.monotonic())
        #: Events counted for the metrics (engine/metrics.py reads them at scrape time): gc_runs, gc_rows_removed,
        #: gc_expired_removed,
        #: lineage_cycle_refusals, lineage_declassifications, lineage_effective_labels.
        self.counters: collections.Counter[str] = collections.Counter()
        #: Store operations by kind (read, head, write, delete, gc, changes): [count, seconds] (statistics: not
        #: locked, like the caches' counters; engine/metrics.py reads them at scrape time).
        self.store_ops: dict[str, list[float]] = {}
        self._head_lock = threading.Lock()
        self._schema_lock = threading.Lock()

    def count_store(self, operation: str, started: float) -> None:
        """Count one store ``operation`` begun at ``started`` (time.perf_counter())."""
        entry = self.store_ops.get(operation)
        if entry is None:
            entry = self.store_ops.setdefault(operation, [0, 0.0])
        entry[0] += 1
        entry[1] += time.perf_counter() - started

    def head(self) -> Revision:
        """The store's head revision, read now (counted)."""
        started = time.perf_counter()
        try:
            return self.store.head()
        finally:
            self.count_store("head", started)

    # --- time ---------------------------------------------------------------------------

    def now_seconds(self) -> float:
        """The engine's clock as epoch seconds."""
        return time.time() if self.system_clock else self.clock().timestamp()

    # --- schemas ------------------------------------------------------------------------

    def compiled(self, stored: StoredSchema) -> dsl_schema.Schema:
        """The compiled form of a stored schema (compiled once per digest)."""
        schemas = self.caches.schemas
        schema: dsl_schema.Schema | None = schemas.get(stored.digest)
        if schema is None:
            with self._schema_lock:
                schema = schemas.get(stored.digest)
                if schema is None:
                    # accepted when it was written, so read back whatever the limits are now
                    schema = compile_schema(stored.text, limits=SchemaLimits.unlimited())
                    schemas.put(stored.digest, schema)
        return schema

    def remember_compiled(self, schema: dsl_schema.Schema) -> None:
        """Keep a schema just compiled for a write, so reading it back compiles nothing."""
        self.caches.schemas.put(schema.digest, schema)

    def schema_in_force(self, reader: Reader) -> StoredSchema:
        """The stored schema at the reader's revision (NotFoundError before the first one), remembered per
        revision since it never changes."""
        key = keys.schema_at(reader.revision)
        stored: StoredSchema | None = self.caches.schema_at.get(key)
        if stored is None:
            stored = reader.schema()
            if stored is None:
                raise NotFoundError("no schema has been written yet")
            self.caches.schema_at.put(key, stored)
        return stored

    # --- snapshots ----------------------------------------------------------------------

    def revision_for(self, consistency: Consistency | None) -> Revision | None:
        """The revision a consistency asks for (None: the head)."""
        if consistency is None or consistency.mode in (ConsistencyMode.MINIMIZE_LATENCY,
                                                       ConsistencyMode.FULLY_CONSISTENT):
            return None
        wanted = decode_token(consistency.token or "")
        if consistency.mode is ConsistencyMode.AT_EXACT_SNAPSHOT:
            return wanted
        head = self.head()
        if wanted > head:
            raise RevisionUnavailableError(f"the token names revision {wanted}, newer than the newest ({head})",
                                           revision=wanted, oldest=0, head=head)
        return None

    @contextmanager
    def snapshot(self, consistency: Consistency | None,
                 now: datetime | None = None) -> Iterator[tuple[Reader, dsl_schema.Schema]]:
        """A snapshot at the revision ``consistency`` selects, with the compiled schema in force there."""
        revision = self.revision_for(consistency)
        started = time.perf_counter()
        try:
            with tracing.span("headwater.store.read"), \
                    self.store.snapshot(revision, now=now or self.clock()) as reader:
                if revision is None:
                    self.note_head(reader.revision)  # the warm path must never answer from before this
                yield reader, self.compiled(self.schema_in_force(reader))
        finally:
            self.count_store("read", started)  # the time the read transaction was held

    def lineage(self, schema: dsl_schema.Schema, reader: Reader, budget: Budget | None = None) -> Lineage:
        """Lineage questions about a snapshot, answered through the engine's lineage cache; the rows its walks
        read are spent from ``budget`` (None: the request's)."""
        return Lineage(schema, reader, self.caches.lineage, budget or self.budget())

    def budget(self) -> Budget:
        """The budget of the request being served (:mod:`.budget`): the one the gRPC service or a
        :func:`~.budget.limits` block set, else a fresh one of ``max_work_per_request`` units."""
        return budgets.current(self.config.limits.max_work_per_request)

    # --- the head hint ------------------------------------------------------------------

    def recent_head(self) -> Revision:
        """The head revision, as of at most ``head_staleness`` ago (minimize_latency may read a slightly older
        snapshot, as in SpiceDB). Never older than any revision this engine has written or answered at, so
        answers seen by one caller never go back in time."""
        hint = self.head_hint
        if hint is not None and time.monotonic() - hint[1] < self.head_staleness_s:
            return hint[0]
        self.note_head(self.head())
        return self.head_hint[0]  # type: ignore[index]

    def note_head(self, revision: Revision) -> None:
        """Raise the head hint to ``revision`` (it only ever moves forward)."""
        with self._head_lock:
            hint = self.head_hint
            if hint is None or revision >= hint[0]:
                self.head_hint = (revision, time.monotonic())
