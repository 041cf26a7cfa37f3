"""The Engine facade: the one entry point the CLI, the gRPC service and embedding programs call.

It is thin on purpose (OpenFGA's server → commands layering): each method hands
over to the module that owns the operation, all built over one shared
:class:`~.context.Context`:

- checks, bulk checks, explanations: :mod:`.queries.check`;
- Expand: :mod:`.queries.expand`; LookupResources/LookupSubjects: :mod:`.queries.lookups`;
- effective labels, ancestors, descendants: :mod:`.queries.lineage`;
- schema writes, plans, reads, history: :mod:`.queries.schema`;
- relationship writes, deletes, gc: :mod:`.writes`; listings, export, import, watch: :mod:`.streams`;
- audit queries and decision replays: :mod:`.queries.replay` and the audit log (:mod:`.audit`).

Result values live in :mod:`.results`.

Example::

    >>> from headwater.engine import Engine
    >>> from headwater.engine.store.memory import MemoryStore
    >>> engine = Engine(MemoryStore())
    >>> _ = engine.write_schema('''
    ... definition user {}
    ... definition document {
    ...     relation viewer: user
    ...     permission view = viewer
    ... }''')
    >>> _ = engine.touch("document:readme#viewer@user:alice")
    >>> engine.check("document:readme", "view", "user:alice").allowed
    True
    >>> engine.check("document:readme", "view", "user:bob").permissionship.name
    'NO_PERMISSION'
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from ..dsl import schema as dsl_schema
from . import results, tracing
from .audit import (
    Anchor,
    AuditBinding,
    AuditLog,
    AuditPage,
    AuditRecord,
    RecordKind,
    VerifyResult,
    acknowledge,
    audit_location_for,
    audit_path_for,
    open_store_log,
)
from .chain import Caches
from .config import Config
from .consistency import Consistency, encode_token
from .context import Context, utc_now
from .errors import AuditTrailBrokenError, InvalidRequestError, PreconditionFailedError
from .expand import ExpandNode
from .governance.impact import ChangeImpact, ImpactQuery
from .queries.check import CheckQuery
from .queries.derive import derivation_updates, stored_as_given
from .queries.expand import ExpandQuery
from .queries.lineage import LineageQuery
from .queries.lookups import LookupQuery
from .queries.replay import ReplayQuery
from .queries.schema import SchemaQuery
from .relationships import ObjectRef, Relationship, SubjectRef, parse_relationship
from .store import Backend, Operation, Precondition, RelationshipFilter, Store, Update
from .store.naming import describe, is_file, kind_of, open_store
from .store.sqlite import SqliteStore
from .streams import RelationshipExport, Streams
from .writes import Writes

__all__ = ["Engine"]


class Engine:
    """Check, write and read relationships against a schema, over any store (see the module docstring).

    :param store: a :class:`~.store.Store` (``MemoryStore()``, ``SqliteStore(path)``), or a bare
      :class:`~.store.Backend`, which is wrapped in one.
    :param config: every setting (:class:`~.config.Config`); the defaults when omitted.
    :param clock: the time of decisions, expirations and audit records (tests inject a fake one).
    """

    def __init__(self, store: Store | Backend, *, config: Config | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.store = store if isinstance(store, Store) else Store(store)
        self.config = config = config or Config()
        self.clock = clock
        # A store last written audited keeps its log whatever `config` says, and refuses one that does not
        # continue it (AuditTrailBrokenError); see engine/audit/trail.py.
        audit = open_store_log(config, self.store.database, _binding(self.store))
        ctx = self._ctx = Context(self.store, config, clock=clock, audit=audit)
        self._checks = CheckQuery(ctx)
        self._expand = ExpandQuery(ctx)
        self._lookups = LookupQuery(ctx, self._checks)
        self._lineage = LineageQuery(ctx)
        self._schemas = SchemaQuery(ctx)
        self._replays = ReplayQuery(ctx, self._checks)
        self._writes = Writes(ctx, self._checks)
        self._streams = Streams(ctx, self._writes)
        # A warm check is a few hundred nanoseconds, so a hop through the facade is a fifth of it: an engine's
        # `check` is the check query's own method (same signature, same answers; `Engine.check` documents it).
        # With tracing on (engine/tracing.py, at the engine's creation), each check is a `headwater.check` span.
        self.check = tracing.traced_check(self._checks.check,  # type: ignore[method-assign]
                                          ctx.config.limits.max_depth)

    @classmethod
    def open(cls, db: str | Path, *, config: Config | None = None) -> Engine:
        """An engine over the store ``db`` names: a SQLite file (created on first use), a ``postgresql://`` URI
        (a migrated database: ``headwater migrate``) or ``:memory:`` (:mod:`.store.naming`).

        An audited SQLite database stays audited: its log is kept whatever ``config`` says, and a log that is
        missing, another one, or behind the store is refused with AuditTrailBrokenError until the break is
        acknowledged (:meth:`acknowledge_audit_break`); a signed log needs its key (ConfigError).
        """
        config = config or Config()
        if is_file(db) and not config.audit.enabled and audit_path_for(db).exists():
            config = config.replace(audit=True)  # a log beside it, from before stores recorded their log
        storage = config.storage
        store = open_store(db, pool_size=storage.pool_size, pool_timeout=storage.pool_timeout.total_seconds(),
                           statement_timeout=storage.statement_timeout.total_seconds())
        try:
            return cls(store, config=config)
        except BaseException:
            store.close()
            raise

    @classmethod
    def migrate(cls, db: str | Path, *, dry_run: bool = False) -> results.MigrationReport:
        """Bring the tables of the database ``db`` names up to this version's layout (``headwater migrate``):
        every missing migration, in one transaction; running it again changes nothing. With ``dry_run``, only
        say what would be applied. A PostgreSQL database is only ever changed this way (servers refuse an
        unmigrated one); a SQLite file also migrates itself on open."""
        kind, shown = kind_of(db), describe(db)
        if kind == "memory":
            raise InvalidRequestError(":memory: has no tables to migrate; give a SQLite file or a postgresql:// URI")
        if kind == "postgresql":
            from .store import pg_migrations, postgres

            steps = postgres.migration_plan(str(db)) if dry_run else postgres.migrate(str(db))
            latest = pg_migrations.LATEST_VERSION
        else:
            from .store import migrations as sqlite_migrations
            from .store import sqlite

            steps = sqlite.migration_plan(db) if dry_run else sqlite.migrate(db)
            latest = sqlite_migrations.LATEST_VERSION
        return results.MigrationReport(shown, kind, tuple((m.version, m.name) for m in steps), latest, dry_run)

    @classmethod
    def verify_audit_trail(cls, path: str | Path, *, config: Config | None = None,
                           anchors: Sequence[Anchor] = ()) -> VerifyResult:
        """Verify the audit trail of the database at ``path`` (a SQLite file or a ``postgresql://`` URI) without
        serving it (``headwater audit verify --db``): the log's chain, that it continues what the store
        recorded, and each anchor.

        Unlike :meth:`open`, a broken trail is a failed result, not an error. The log is the config's
        audit path (default ``<path>.audit``, or the database itself for a URI), checked with the config's
        audit key.
        """
        config = config or Config()
        with _audited_store(path, config) as store:
            try:
                binding = _binding(store)
            except AuditTrailBrokenError as exc:
                return VerifyResult(False, 0, 0, "", None, exc.problem)
        log = Path(config.audit.path) if config.audit.path else audit_location_for(path)
        return AuditLog.verify_file(log, key=config.audit.resolved_key(), binding=binding, anchors=anchors)

    @classmethod
    def acknowledge_audit_break(cls, path: str | Path, *, by: str, reason: str,
                                config: Config | None = None) -> AuditRecord | None:
        """Accept that the audit trail of the database at ``path`` is broken and start the chain again
        (``headwater audit acknowledge``); the ``acknowledgement`` record, or None if the trail is whole.

        The record names who (``by``), why, the previous log's id, the store revision and what was found; it
        goes into the log at the config's audit path (a new one if there is none; a log that is unreadable
        or does not verify must be moved aside first), and an empty store revision names the log from now on.
        """
        config = config or Config()
        with _audited_store(path, config) as store:
            return acknowledge(config, path, _binding(store), by=by, reason=reason, time=utc_now(),
                               write_revision=lambda metadata: store.write([], metadata=metadata),
                               token=encode_token)

    def close(self) -> None:
        """Write the audit records still queued, then close the audit log and the store."""
        try:
            if self.audit is not None:
                self.audit.close()
        finally:
            self.store.close()

    def flush_audit(self) -> None:
        """Write the audit records still queued, without closing anything (a server that must exit while a
        call is still running under its store)."""
        if self.audit is not None:
            self.audit.flush()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def audit(self) -> AuditLog | None:
        """The audit log (engine/audit, docs/audit.md); None when auditing is off. A SQLite store's log sits
        beside its file."""
        return self._ctx.audit

    @audit.setter
    def audit(self, log: AuditLog | None) -> None:
        self._ctx.audit = log

    @property
    def audit_place(self) -> str | None:
        """Where the audit log is, for messages and logs (``the audit log at <file or URI without its password>``);
        None when auditing is off."""
        return self._ctx.audit.place if self._ctx.audit is not None else None

    @property
    def audit_path(self) -> Path | None:
        """The audit log's file (None when auditing is off, and for a log kept in a PostgreSQL database)."""
        return self._ctx.audit.path if self._ctx.audit is not None else None

    @property
    def caches(self) -> Caches:
        """Every cache this engine keeps (each with its statistics)."""
        return self._ctx.caches

    @property
    def counters(self) -> Mapping[str, int]:
        """Events counted for the metrics (engine/metrics.py): GC runs and rows removed, lineage cycle refusals,
        declassifications and effective-label computations."""
        return self._ctx.counters

    def store_operations(self) -> dict[str, tuple[int, float]]:
        """Store operations by kind (read, head, write, delete, gc, changes): (count, seconds), for the metrics."""
        return {op: (int(n), seconds) for op, (n, seconds) in list(self._ctx.store_ops.items())}

    def audit_stats(self) -> dict[str, Any]:
        """The audit writer's queue and counters ({} when auditing is off)."""
        return self._ctx.audit.stats() if self._ctx.audit is not None else {}

    def known_head(self) -> int:
        """The newest revision this engine has seen, without asking the store (0 before the first read)."""
        hint = self._ctx.head_hint
        return int(hint[0]) if hint is not None else 0

    def pool_stats(self) -> dict[str, int]:
        """The PostgreSQL store's pool (connections in use, idle, requests waiting); {} for other stores."""
        db = getattr(self.store, "db", None)
        return db.pool_stats() if db is not None and hasattr(db, "pool_stats") else {}

    def cache_stats(self) -> dict[str, Any]:
        """Hit/miss counters and size of the shared check cache."""
        checks = self._ctx.caches.checks
        return checks.stats() if checks is not None else {"hits": 0, "misses": 0, "evictions": 0, "size": 0,
                                                          "maxsize": 0, "hit_rate": 0.0}

    def clear_caches(self) -> None:
        """Empty the caches of answers (checks, lineage), as after a restart (the benchmarks' cold path)."""
        for cache in (self._ctx.caches.checks, self._ctx.caches.lineage):
            if cache is not None:
                cache.clear()

    def revision_token(self, consistency: Consistency | None = None) -> str:
        """The token of the revision ``consistency`` selects (the newest one by default)."""
        return self._streams.read(RelationshipFilter(), consistency=consistency, limit=1)[1]

    # ------------------------------------------------------------ schema

    def write_schema(self, text: str, *, actor: str | None = None, dry_run: bool = False) -> results.SchemaWriteResult:
        """Compile and store a new schema version; refused if it would orphan stored relationships.

        Raises :class:`~headwater.dsl.DslError` for invalid text and
        :class:`SchemaConflictError` (naming each relation and how many relationships
        block it) when the change would orphan data. With ``dry_run``, nothing is stored.
        """
        return self._schemas.write_schema(text, actor=actor, dry_run=dry_run)

    def plan_schema(self, text: str) -> results.SchemaWriteReport:
        """What writing ``text`` would do: accepted, or refused with each reason, and the unified diff from
        the stored schema (nothing is stored; invalid text raises :class:`~headwater.dsl.DslError`)."""
        return self._schemas.plan_schema(text)

    def schema(self, consistency: Consistency | None = None) -> dsl_schema.Schema:
        """The compiled schema in force (at the snapshot ``consistency`` selects)."""
        with self._ctx.snapshot(consistency) as (_, schema):
            return schema

    def read_schema(self, consistency: Consistency | None = None) -> results.SchemaRead:
        """The schema text in force as it was written, with its digest, version and the snapshot's token."""
        return self._schemas.read_schema(consistency)

    def schema_history(self, *, include_text: bool = False) -> list[results.SchemaVersion]:
        """Every schema version, oldest first, with who wrote it (and its text with ``include_text``)."""
        return self._schemas.schema_history(include_text=include_text)

    # ------------------------------------------------------------ checks

    def check(self, resource: ObjectRef | str, permission: str, subject: SubjectRef | str, *,
              context: Mapping[str, Any] | None = None, consistency: Consistency | None = None,
              explain: bool = False, caller: str | None = None) -> results.CheckResult:
        """Does ``subject`` have ``permission`` on ``resource``? A denial is a result, not an error.

        With ``explain``, the result carries an :class:`~headwater.engine.explain.Explanation`:
        the branch and relationships that granted, or why it was denied (a missing
        clearance with the lineage path that brought the label, the first upstream
        object where ``upstream(p)`` fails, ...), recorded while the answer was computed.
        ``caller`` names who asked, for the audit log (e.g. the gRPC token's name).
        """
        return self._checks.check(resource, permission, subject, context=context, consistency=consistency,
                                  explain=explain, caller=caller)

    def check_bulk(self, items: Sequence[results.BulkCheckItem], *, consistency: Consistency | None = None,
                   explain: bool = False, caller: str | None = None) -> list[results.BulkCheckResult]:
        """Check many items at one revision, sharing sub-problems; an item's error stays with that item.

        With ``explain``, each answered item carries its explanation, as :meth:`check` gives it.
        Each answered item is one decision for the audit log."""
        with tracing.span("headwater.check_bulk", {"headwater.items": len(items)}):
            return self._checks.check_bulk(items, consistency=consistency, explain=explain, caller=caller)

    def expand(self, resource: ObjectRef | str, permission: str, *, context: Mapping[str, Any] | None = None,
               consistency: Consistency | None = None) -> tuple[ExpandNode, str]:
        """The fully expanded subject tree of ``resource#permission``, with the revision token.

        SpiceDB's ExpandPermissionTree, expanded down to terminal subjects;
        :func:`~headwater.engine.membership.found_subjects` reduces the tree to them.
        """
        return self._expand.expand(resource, permission, context=context, consistency=consistency)

    def lookup_resources(self, resource_type: str, permission: str, subject: SubjectRef | str, *,
                         context: Mapping[str, Any] | None = None, consistency: Consistency | None = None,
                         limit: int | None = None, cursor: str | None = None,
                         caller: str | None = None) -> results.LookupResourcesPage:
        """Every ``resource_type`` object on which ``subject`` has ``permission``, sorted by id.

        Each result is HAS_PERMISSION or CONDITIONAL_PERMISSION (with the missing caveat
        parameters). With ``limit``, a page of at most ``limit`` results and a ``cursor``
        to continue (None once the answer is complete); pages come from one revision, so
        concatenating them gives each resource exactly once. Never silently truncated.
        The audit log gets one record per call (with the number of results).
        """
        return self._lookups.lookup_resources(resource_type, permission, subject, context=context,
                                              consistency=consistency, limit=limit, cursor=cursor, caller=caller)

    def lookup_subjects(self, resource: ObjectRef | str, permission: str, subject_type: str,
                        subject_relation: str | None = None, *, context: Mapping[str, Any] | None = None,
                        consistency: Consistency | None = None, limit: int | None = None,
                        cursor: str | None = None, caller: str | None = None) -> results.LookupSubjectsPage:
        """Every subject of ``subject_type`` (``#subject_relation``) with ``permission`` on ``resource``.

        A wildcard answer comes first as ``type:*``, with ``excluded`` naming the reached
        subjects whose answer differs from the wildcard's (no permission, or only
        conditional); then every concrete subject with the permission, sorted by id
        (also those the wildcard covers). Caveated results are CONDITIONAL_PERMISSION.
        A subject's answer is its own entry if listed, else the wildcard's if it is not
        excluded, else no permission. Paged like :meth:`lookup_resources`.
        """
        return self._lookups.lookup_subjects(resource, permission, subject_type, subject_relation, context=context,
                                             consistency=consistency, limit=limit, cursor=cursor, caller=caller)

    # ------------------------------------------------------------ lineage (Headwater)

    def derive(self, obj: ObjectRef | str, lineage: Mapping[str, Sequence[ObjectRef | str]], *,
               relationships: Iterable[Relationship | str] = (), checks: Sequence[tuple[str, SubjectRef | str]] = (),
               context: Mapping[str, Any] | None = None, actor: str | None = None,
               reason: str | None = None, caller: str | None = None) -> results.DeriveResult:
        """Record a derived object in one atomic write: its ``lineage`` (lineage relation -> the objects it
        comes from, e.g. ``{"produced_by": ["model:risk"], "input": ["dataset:q1"]}``) and its ordinary
        ``relationships`` (requester, owner...), refused whole if the lineage would become cyclic; then, at the
        revision written, its effective labels and a decision for each ``(permission, subject)`` of ``checks``.
        The same derivation again writes nothing (see :mod:`.queries.derive`). ``caller`` names who asked, for
        the audit log of the decisions (as :meth:`check`'s)."""
        updates = derivation_updates(self.schema(), obj, lineage, relationships)
        token, written = self.touch_changed(updates, actor=actor, reason=reason)
        at = Consistency.at_exact_snapshot(token)
        decisions = tuple(self.check(obj, permission, subject, context=context, consistency=at, caller=caller)
                          for permission, subject in checks)
        return results.DeriveResult(token, written, self.effective_labels(obj, consistency=at), decisions)

    def touch_changed(self, updates: Sequence[Update], *, actor: str | None = None,
                      reason: str | None = None) -> tuple[str, bool]:
        """Write ``updates`` (TOUCHes) as :meth:`write` does, unless every relationship is already stored exactly
        as given: then nothing is written. The revision token holding them, and whether this call wrote."""
        with self._ctx.snapshot(None) as (reader, _):
            if stored_as_given(reader, updates):
                return encode_token(reader.revision), False
        return self.write(updates, actor=actor, reason=reason).token, True

    def effective_labels(self, obj: ObjectRef | str, *,
                         consistency: Consistency | None = None) -> results.EffectiveLabels:
        """The effective label of ``obj`` in every classification, each value with the lineage paths that
        bring it (an empty path: its own label), and the declassifications applied on ``obj`` with who made
        them, why and at which revision."""
        return self._lineage.effective_labels(obj, consistency=consistency)

    def ancestors(self, obj: ObjectRef | str, *, max_depth: int | None = None, limit: int | None = None,
                  cursor: str | None = None, consistency: Consistency | None = None) -> results.LineagePage:
        """Objects upstream of ``obj`` (breadth first, nearest first), each with its depth and one shortest
        path; at most ``max_depth`` lineage steps away; paged with ``limit``/``cursor`` at one revision."""
        return self._lineage.walk(obj, "ancestors", max_depth, limit, cursor, consistency)

    def descendants(self, obj: ObjectRef | str, *, max_depth: int | None = None, limit: int | None = None,
                    cursor: str | None = None, consistency: Consistency | None = None) -> results.LineagePage:
        """Objects downstream of ``obj`` (derived from it, directly or not); paged like :meth:`ancestors`."""
        return self._lineage.walk(obj, "descendants", max_depth, limit, cursor, consistency)

    # ------------------------------------------------------------ writes

    def write(self, updates: Iterable[Update], preconditions: Sequence[Precondition] = (), *,
              actor: str | None = None, reason: str | None = None, trusted: bool = False) -> results.WriteResult:
        """Apply a batch atomically: every update is validated against the schema, or nothing changes.

        Headwater's rules apply too: a batch that would make the lineage graph cyclic is
        refused (naming the cycle), and writing or deleting a declassification needs
        ``actor`` (a subject, e.g. ``user:steward``) and ``reason``, and the actor must
        hold the declassification's ``by`` permission on the object at the revision the
        write starts from. ``trusted`` skips that authorization (loading a validation
        file, which is a fixture) but not the other checks.
        """
        return self._writes.write(updates, preconditions, actor=actor, reason=reason, trusted=trusted)

    def touch(self, *relationships: Relationship | str, actor: str | None = None,
              reason: str | None = None) -> results.WriteResult:
        """Create or replace relationships (given as values or SpiceDB strings)."""
        return self.write(_updates(Operation.TOUCH, relationships), actor=actor, reason=reason)

    def create(self, *relationships: Relationship | str, actor: str | None = None,
               reason: str | None = None) -> results.WriteResult:
        """Create relationships; AlreadyExistsError (and nothing written) if one exists."""
        return self.write(_updates(Operation.CREATE, relationships), actor=actor, reason=reason)

    def remove(self, *relationships: Relationship | str, actor: str | None = None,
               reason: str | None = None) -> results.WriteResult:
        """Delete these relationships (absent ones are ignored)."""
        return self.write(_updates(Operation.DELETE, relationships), actor=actor, reason=reason)

    def delete(self, filter: RelationshipFilter, *, limit: int | None = None, allow_partial: bool = False,
               preconditions: Sequence[Precondition] = (), actor: str | None = None,
               reason: str | None = None) -> results.DeleteResult:
        """Delete every relationship matching ``filter`` (at most ``limit``; see Store.delete)."""
        return self._writes.delete(filter, limit=limit, allow_partial=allow_partial, preconditions=preconditions,
                                   actor=actor, reason=reason)

    def gc(self) -> int:
        """Forget history older than the ``gc_window`` (reads at older revisions then fail clearly), and the
        relationships that expired that long ago without being deleted (docs/engine.md#garbage-collection);
        returns how many rows were removed: a :class:`~.store.GcResult`, an int with ``expired_removed``.
        Writes also run it every ``gc_interval``."""
        return self._writes.gc()

    # ------------------------------------------------------------ listings and streams (engine/streams.py)

    def read(self, filter: RelationshipFilter, *, consistency: Consistency | None = None,
             limit: int | None = None) -> tuple[list[Relationship], str]:
        """Relationships matching ``filter`` in key order (at most ``limit``), with the revision token."""
        return self._streams.read(filter, consistency=consistency, limit=limit)

    def read_relationships(self, filter: RelationshipFilter | None = None, *,
                           consistency: Consistency | None = None, limit: int | None = None,
                           cursor: str | None = None) -> results.ReadPage:
        """A page of relationships in key order with a cursor pinned to one revision; see
        :meth:`.streams.Streams.read_relationships`."""
        return self._streams.read_relationships(filter, consistency=consistency, limit=limit, cursor=cursor)

    def export_relationships(self, filter: RelationshipFilter | None = None, *,
                             consistency: Consistency | None = None, batch_size: int = 1000) -> RelationshipExport:
        """Every matching relationship at one revision, iterable, with ``.token``; see
        :meth:`.streams.Streams.export_relationships`."""
        return self._streams.export_relationships(filter, consistency=consistency, batch_size=batch_size)

    def import_relationships(self, relationships: Iterable[Relationship | str], *, batch_size: int = 1000,
                             progress: Callable[[results.ImportProgress], None] | None = None, actor: str | None = None,
                             reason: str | None = None, existing: str = "error") -> results.ImportResult:
        """Create relationships in atomic batches (an existing one is an error, or with ``existing`` "touch" or
        "skip" written again or left); see :meth:`.streams.Streams.import_relationships`."""
        return self._streams.import_relationships(relationships, batch_size=batch_size, progress=progress,
                                                  actor=actor, reason=reason, existing=existing)

    def watch(self, after_token: str, *, limit: int | None = None) -> list[results.WatchEvent]:
        """The relationship changes after a revision, oldest first; see :meth:`.streams.Streams.watch`."""
        return self._streams.watch(after_token, limit=limit)

    def follow(self, after_token: str, *, poll_interval: float = 0.5, timeout: float | None = None,
               stop: threading.Event | None = None) -> Iterator[results.WatchEvent]:
        """Changes after a revision, then new ones as they come, until ``timeout`` or ``stop``; see
        :meth:`.streams.Streams.follow`."""
        return self._streams.follow(after_token, poll_interval=poll_interval, timeout=timeout, stop=stop)

    # ------------------------------------------------------------ audit (engine/audit, docs/audit.md)

    def _audit_log(self) -> AuditLog:
        if self.audit is None:
            raise PreconditionFailedError("this engine keeps no audit log: turn auditing on (Config.of(audit=True), "
                                          "--audit, HEADWATER_AUDIT=1, or audit = true in its config file)")
        return self.audit

    def replay(self, record_id: int | None = None, *, resource: ObjectRef | str | None = None,
               permission: str | None = None, subject: SubjectRef | str | None = None,
               before: datetime | None = None, context: Mapping[str, Any] | None = None) -> results.ReplayResult:
        """Evaluate a recorded decision again, at its recorded revision and time, with the full explanation.

        Name the record by id, or by ``resource``/``permission``/``subject`` (the latest
        matching decision, before ``before`` if given). The log keeps only a hash of a
        request's context: pass ``context`` to replay a caveated check exactly (it must
        match the hash; numbers may be given as the integers or the floats recorded).
        Beyond the history window (the revision was garbage-collected), ``available`` is
        False and the message says so.
        """
        if self.audit is None:
            raise InvalidRequestError("this engine keeps no audit log (Config.of(audit=True) turns it on)")
        return self._replays.replay(self.audit, record_id, resource=resource, permission=permission,
                                    subject=subject, before=before, context=context)

    def impact(self, *, schema: str | None = None, updates: Iterable[Update] = (), baseline: str | None = None,
               since: datetime | None = None, until: datetime | None = None,
               limit: int | None = None) -> ChangeImpact:
        """The recorded decisions (in ``since``..``until``, newest first, at most ``limit`` records) whose answer
        a proposed ``schema`` and/or relationship ``updates`` would change at the head revision, each with the
        explanation of its new answer; ``baseline``: a schema text to compare from instead of the stored one.
        Nothing is written or recorded (:mod:`.governance.impact`, docs/governance.md)."""
        return ImpactQuery(self._ctx, self._checks).impact(self._audit_log(), schema=schema, updates=updates,
                                                           baseline=baseline, since=since, until=until, limit=limit)

    def audit_query(self, *, kind: RecordKind | str | None = None, limit: int | None = None,
                    cursor: str | None = None, newest_first: bool = False, **filters: Any) -> AuditPage:
        """A page of audit records matching ``filters`` (see :meth:`.audit.AuditLog.query`)."""
        try:
            return self._audit_log().query(kind=kind, limit=limit, cursor=cursor, newest_first=newest_first,
                                           **filters)
        except OverflowError:  # a forged cursor naming a record id past SQLite's integers
            raise InvalidRequestError("malformed audit cursor: its position is out of range") from None

    def audit_record(self, record_id: int) -> AuditRecord:
        """One audit record by id."""
        return self._audit_log().get(record_id)

    def audit_export(self, target: TextIO, **filters: Any) -> int:
        """Write the matching audit records as JSON lines to ``target``; how many were written."""
        return self._audit_log().export(target, **filters)

    def audit_verify(self, *, anchors: Sequence[Anchor] = ()) -> VerifyResult:
        """Walk the audit log's hash chain (what this engine has queued included) and name the first break; over
        a file store, the log must also continue what the store recorded; each of ``anchors`` must still be
        in the log."""
        audit = self._audit_log()
        audit.flush()
        return audit.verify(binding=_binding(self.store), anchors=anchors)

    def audit_anchor(self) -> Anchor:
        """The audit log's current head as an anchor to keep outside the host (``headwater audit anchor``)."""
        return self._audit_log().anchor()


def _binding(store: Store) -> AuditBinding | None:
    """What a lasting store's head revision records about its audit log (None: a memory store, or written
    unaudited)."""
    if store.database is None:
        return None
    head = store.head()
    return AuditBinding.from_metadata(head, store.revision_metadata(head))


def _audited_store(db: str | Path, config: Config) -> Store:
    """The store whose audit trail is checked or acknowledged: a SQLite file, or a PostgreSQL database."""
    if is_file(db):
        return SqliteStore(db)
    storage = config.storage
    return open_store(db, pool_size=2, pool_timeout=storage.pool_timeout.total_seconds(),
                      statement_timeout=storage.statement_timeout.total_seconds())


def _updates(operation: Operation, relationships: tuple[Relationship | str, ...]) -> list[Update]:
    return [Update(operation, r if isinstance(r, Relationship) else parse_relationship(r)) for r in relationships]
