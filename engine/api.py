"""The Engine facade: the one entry point the CLI and the gRPC service call.

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

import bisect
import dataclasses
import enum
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..dsl import compile_schema, format_schema, parse_schema
from ..dsl import schema as dsl_schema
from .audit import AuditLog, AuditRecord, RecordKind, audit_path_for, context_digest
from .cache import SharedCache, check_key
from .compiled import evaluate, stack_exhausted
from .config import Config
from .consistency import Consistency, ConsistencyMode, decode_cursor, decode_token, encode_cursor, encode_token
from .dispatch import FALSE, TRUE, CheckRequest, Outcome, Tri
from .cache import LabelCache
from .explain import Explanation, TracingChecker, summarize
from .lineage import Lineage, LineageCycleError, describe_cycle, find_lineage_cycle
from .lookup import FRESH_ID, candidate_resources, candidate_subjects
from .errors import (
    DeclassificationRefusedError,
    EngineError,
    InvalidRequestError,
    LimitExceededError,
    NotFoundError,
    RevisionUnavailableError,
    SchemaConflictError,
    UnknownPermissionError,
)
from .expand import ExpandNode, expand
from .relationships import ObjectRef, Relationship, SubjectRef, parse_object, parse_relationship, parse_subject
from .store import (
    Operation,
    Precondition,
    Reader,
    RelationshipFilter,
    Revision,
    Store,
    StoredSchema,
    Update,
)
from .validation import schema_change_problems, validate_relationship

if TYPE_CHECKING:
    from .streams import ImportProgress, ImportResult, ReadPage, RelationshipExport, WatchEvent

__all__ = [
    "BulkCheckItem",
    "BulkCheckResult",
    "CheckResult",
    "ClassificationLabel",
    "Declassification",
    "DeleteResult",
    "EffectiveLabels",
    "Engine",
    "LabelValue",
    "LineageItem",
    "LineagePage",
    "LookupResourcesPage",
    "LookupResult",
    "LookupSubjectsPage",
    "Permissionship",
    "ReplayResult",
    "SchemaWriteResult",
    "SubjectResult",
    "WriteResult",
]


class Permissionship(enum.Enum):
    """The three answers to a check."""

    HAS_PERMISSION = "HAS_PERMISSION"
    NO_PERMISSION = "NO_PERMISSION"
    CONDITIONAL_PERMISSION = "CONDITIONAL_PERMISSION"  # a caveat needs context that was not given


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The answer to one check, with the revision token it was computed at."""

    permissionship: Permissionship
    token: str
    missing_context: tuple[str, ...] = ()  # for CONDITIONAL_PERMISSION: the caveat parameters to supply
    explanation: Explanation | None = field(default=None, compare=False, repr=False)  # check(..., explain=True)

    @property
    def allowed(self) -> bool:
        """True only for HAS_PERMISSION (a conditional answer is not a grant)."""
        return self.permissionship is Permissionship.HAS_PERMISSION

    @property
    def revision(self) -> int:
        return decode_token(self.token)


@dataclass(frozen=True, slots=True)
class BulkCheckItem:
    """One check of a bulk check."""

    resource: ObjectRef | str
    permission: str
    subject: SubjectRef | str
    context: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class BulkCheckResult:
    """A bulk-check item's answer, or the error that item alone raised."""

    item: BulkCheckItem
    result: CheckResult | None = None
    error: EngineError | None = None


@dataclass(frozen=True, slots=True)
class LookupResult:
    """One resource found by LookupResources."""

    resource_id: str
    permissionship: Permissionship
    missing_context: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LookupResourcesPage:
    """A page of LookupResources: ``cursor`` is None when the answer is complete."""

    results: list[LookupResult]
    cursor: str | None
    token: str


@dataclass(frozen=True, slots=True)
class SubjectResult:
    """One subject found by LookupSubjects; for ``type:*``, ``excluded`` lists the subjects it does not cover."""

    subject: SubjectRef
    permissionship: Permissionship
    missing_context: tuple[str, ...] = ()
    excluded: tuple[SubjectRef, ...] = ()


@dataclass(frozen=True, slots=True)
class LookupSubjectsPage:
    """A page of LookupSubjects: ``cursor`` is None when the answer is complete."""

    results: list[SubjectResult]
    cursor: str | None
    token: str


@dataclass(frozen=True, slots=True)
class LabelValue:
    """One value of an effective label, with the lineage paths that bring it ("" = the object's own label)."""

    value: str
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Declassification:
    """A value declassified on an object: who did it, why, and at which revision (None once the history is
    garbage-collected)."""

    value: str
    actor: str | None
    reason: str | None
    token: str | None


@dataclass(frozen=True, slots=True)
class ClassificationLabel:
    """An object's effective label in one classification."""

    classification: str
    level: str | None
    categories: tuple[str, ...]
    values: tuple[LabelValue, ...]
    declassified: tuple[Declassification, ...]


@dataclass(frozen=True, slots=True)
class EffectiveLabels:
    """The effective labels of one object, at one revision."""

    object: ObjectRef
    classifications: tuple[ClassificationLabel, ...]
    token: str


@dataclass(frozen=True, slots=True)
class LineageItem:
    """One object reached by an ancestors/descendants walk, with its distance and one shortest path."""

    object: ObjectRef
    depth: int
    path: str


@dataclass(frozen=True, slots=True)
class LineagePage:
    """A page of ancestors or descendants: ``cursor`` is None when complete."""

    items: list[LineageItem]
    cursor: str | None
    token: str


@dataclass(frozen=True, slots=True)
class WriteResult:
    """A committed write: its revision, as a token."""

    token: str

    @property
    def revision(self) -> int:
        return decode_token(self.token)


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """A committed delete-by-filter."""

    token: str
    deleted: int
    partial: bool  # True when a limit stopped it before every match was deleted


@dataclass(frozen=True, slots=True)
class SchemaWriteResult:
    """A stored schema version."""

    token: str
    version: int
    digest: str
    schema: dsl_schema.Schema = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """A recorded decision evaluated again at its recorded revision (see :meth:`Engine.replay`)."""

    record: AuditRecord
    available: bool  # False: the recorded revision has left the history window; nothing was evaluated
    same: bool | None  # the replayed answer equals the recorded one (None when not available)
    result: CheckResult | None  # the replayed answer, with its full explanation
    message: str


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _text_key(digest: str, revision: Revision, resource: str, permission: str, subject: str) -> tuple[Any, ...]:
    """The second cache key of an answer to a check asked as text (see _WarmPath); five fields, so never equal
    to a nine-field ``check_key``. ``Engine.check`` builds the same tuple inline on its warm path."""
    return (digest, revision, resource, permission, subject)


class _WarmPath:
    """What the warm path keeps for one revision: the schema digest and the two usual (immutable) results.

    Answers to checks asked as text are also cached under the text itself, ``(digest, revision, resource,
    permission, subject)`` (five fields, so never equal to a nine-field ``check_key``): a repeated check
    builds that tuple and probes the cache once, with no parsing and no other lookup."""

    __slots__ = ("revision", "digest", "token", "allowed", "denied")

    def __init__(self, revision: Revision, digest: str, token: str) -> None:
        self.revision = revision
        self.digest = digest
        self.token = token
        self.allowed = CheckResult(Permissionship.HAS_PERMISSION, token)
        self.denied = CheckResult(Permissionship.NO_PERMISSION, token)

    def result(self, outcome: Outcome) -> CheckResult:
        """The answer for a cached outcome at this revision."""
        if outcome is TRUE or outcome.value is Tri.TRUE:
            return self.allowed
        if outcome is FALSE or outcome.value is Tri.FALSE:
            return self.denied
        return CheckResult(Permissionship.CONDITIONAL_PERMISSION, self.token, tuple(sorted(outcome.missing)))


class Engine:
    """Check, write and read relationships against a schema, over any :class:`Store`."""

    def __init__(self, store: Store, *, config: Config | None = None,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        self.store = store
        self.config = config or Config()
        self.clock = clock
        self.cache: SharedCache | None = SharedCache(self.config.cache_size) if self.config.cache_size else None
        self.label_cache: LabelCache | None = LabelCache() if self.config.cache_size else None
        self._schemas: dict[str, dsl_schema.Schema] = {}
        self._schema_lock = threading.Lock()
        # The schema in force at a revision never changes, so it is remembered per revision.
        self._schema_at: dict[Revision, StoredSchema] = {}
        self._lookup_candidates: dict[tuple[str, int, str], list[str]] = {}
        self._head_hint: tuple[Revision, float] | None = None  # (head revision, when read: time.monotonic())
        self._head_staleness_s = self.config.head_staleness.total_seconds()
        self._system_clock = clock is _utc_now  # then the warm path reads time.time() directly
        self._warm: _WarmPath | None = None  # the warm path's state for the recent head revision
        self._head_lock = threading.Lock()
        # The audit log (engine/audit.py); None when Config.audit is off. A SqliteStore's log sits beside its file.
        self.audit: AuditLog | None = (AuditLog.from_config(self.config, getattr(store, "_path", None))
                                       if self.config.audit else None)

    @classmethod
    def open(cls, path: str | Path, *, config: Config | None = None) -> Engine:
        """An engine over the SQLite database at ``path`` (created on first use)."""
        from .store.sqlite import SqliteStore

        config = config or Config()
        if not config.audit and audit_path_for(path).exists():
            config = dataclasses.replace(config, audit=True)  # an audited database stays audited
        return cls(SqliteStore(path), config=config)

    def close(self) -> None:
        """Write the audit records still queued, then close the audit log and the store."""
        try:
            if self.audit is not None:
                self.audit.close()
        finally:
            self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ schema

    def write_schema(self, text: str, *, actor: str | None = None, dry_run: bool = False) -> SchemaWriteResult:
        """Compile and store a new schema version; refused if it would orphan stored relationships.

        Raises :class:`~headwater.dsl.DslError` for invalid text and
        :class:`SchemaConflictError` (naming each relation and how many relationships
        block it) when the change would orphan data.
        """
        new = compile_schema(text)

        def check(reader: Reader) -> None:
            stored = self.store.read_schema()
            old = self._compiled(stored) if stored is not None else None
            problems = schema_change_problems(old, new, reader)
            if problems:
                raise SchemaConflictError("schema change refused: " + "; ".join(problems), problems)

        if dry_run:
            with self.store.snapshot() as reader:
                check(reader)
                stored = self.store.read_schema()
            return SchemaWriteResult(encode_token(reader.revision), (stored.version if stored else 0) + 1,
                                     new.digest, new)
        metadata = {"actor": actor} if actor else None
        revision = self.store.write_schema(text, new.digest, check=check, metadata=metadata)
        self._note_head(revision)
        self._schemas[new.digest] = new
        stored = self.store.read_schema(revision)
        assert stored is not None
        if self.audit is not None:
            self._audit_schema(self.audit, revision, stored, actor)
        return SchemaWriteResult(encode_token(revision), stored.version, new.digest, new)

    def schema(self, consistency: Consistency | None = None) -> dsl_schema.Schema:
        """The compiled schema in force (at the snapshot ``consistency`` selects)."""
        with self._snapshot(consistency) as (_, schema):
            return schema

    def _compiled(self, stored: StoredSchema) -> dsl_schema.Schema:
        schema = self._schemas.get(stored.digest)
        if schema is None:
            with self._schema_lock:
                schema = self._schemas.get(stored.digest)
                if schema is None:
                    schema = compile_schema(stored.text)
                    self._schemas[stored.digest] = schema
        return schema

    # ------------------------------------------------------------ snapshots

    def _revision_for(self, consistency: Consistency | None) -> Revision | None:
        if consistency is None or consistency.mode in (ConsistencyMode.MINIMIZE_LATENCY,
                                                       ConsistencyMode.FULLY_CONSISTENT):
            return None
        wanted = decode_token(consistency.token or "")
        if consistency.mode is ConsistencyMode.AT_EXACT_SNAPSHOT:
            return wanted
        head = self.store.head()
        if wanted > head:
            raise RevisionUnavailableError(f"the token names revision {wanted}, newer than the newest ({head})",
                                           revision=wanted, oldest=0, head=head)
        return None

    @contextmanager
    def _snapshot(self, consistency: Consistency | None,
                  now: datetime | None = None) -> Iterator[tuple[Reader, dsl_schema.Schema]]:
        revision = self._revision_for(consistency)
        with self.store.snapshot(revision, now=now or self.clock()) as reader:
            if revision is None:
                self._note_head(reader.revision)  # the warm path must never answer from before this
            stored = self._schema_at.get(reader.revision)
            if stored is None:
                stored = self.store.read_schema(reader.revision)
                if stored is None:
                    raise NotFoundError("no schema has been written yet")
                if len(self._schema_at) > 1024:
                    self._schema_at.clear()
                self._schema_at[reader.revision] = stored
            yield reader, self._compiled(stored)

    # ------------------------------------------------------------ checks

    def check(self, resource: ObjectRef | str, permission: str, subject: SubjectRef | str, *,
              context: Mapping[str, Any] | None = None, consistency: Consistency | None = None,
              explain: bool = False, caller: str | None = None) -> CheckResult:
        """Does ``subject`` have ``permission`` on ``resource``? A denial is a result, not an error.

        With ``explain``, the result carries an :class:`~headwater.engine.explain.Explanation`:
        the branch and relationships that granted, or why it was denied (a missing
        clearance with the lineage path that brought the label, the first upstream
        object where ``upstream(p)`` fails, ...). ``caller`` names who asked, for the
        audit log (e.g. the gRPC token's name).
        """
        audit = self.audit
        warm = self._warm
        probed = False
        if warm is not None and audit is None and consistency is None and not context and not explain and \
                type(resource) is type(subject) is str:
            # The warm path's common case, inlined: a check asked as text, at the recent head (its answer is
            # cached under the text too: see _WarmPath).
            hint = self._head_hint
            if hint is not None and hint[0] == warm.revision and time.monotonic() - hint[1] < self._head_staleness_s:
                outcome = self.cache.get((warm.digest, warm.revision, resource, permission, subject),  # type: ignore[union-attr]  # = _text_key()
                                         None if self._system_clock else self.clock().timestamp())
                if outcome is TRUE:
                    return warm.allowed
                if outcome is FALSE:
                    return warm.denied
                if outcome is not None:
                    return warm.result(outcome)
                probed = True  # a miss: straight to the full path
        if not probed and not context and not explain and audit is None and (
                consistency is None or consistency.mode is ConsistencyMode.MINIMIZE_LATENCY):
            hit = self._cached_answer(resource, permission, subject)
            if hit is not None:
                return hit
        item = BulkCheckItem(resource, permission, subject, context)
        start = time.perf_counter_ns() if audit is not None else 0
        with self._snapshot(consistency) as (reader, schema):
            result = self._check_one(schema, reader, item, None)
            if explain:
                result = dataclasses.replace(result, explanation=self._explain(schema, reader, item))
            if audit is None:
                return result
            ticket = self._audit_decision(audit, schema, reader, item, result, start, caller)
        audit.wait(ticket)
        return result

    def _recent_head(self) -> Revision:
        """The head revision, as of at most ``Config.head_staleness`` ago (minimize_latency may read a slightly
        older snapshot, as in SpiceDB). Never older than any revision this engine has written or answered at,
        so answers seen by one caller never go back in time."""
        hint = self._head_hint
        if hint is not None and time.monotonic() - hint[1] < self._head_staleness_s:
            return hint[0]
        self._note_head(self.store.head())
        return self._head_hint[0]  # type: ignore[index]

    def _note_head(self, revision: Revision) -> None:
        """Raise the head hint to ``revision`` (it only ever moves forward)."""
        with self._head_lock:
            hint = self._head_hint
            if hint is None or revision >= hint[0]:
                self._head_hint = (revision, time.monotonic())

    def _cached_answer(self, resource: ObjectRef | str, permission: str,
                       subject: SubjectRef | str) -> CheckResult | None:
        """The warm path: a check answered from the shared cache without opening a snapshot.

        Only an answer cached at the recent head under the schema in force there qualifies;
        anything else (a miss, an expired entry, a new revision) takes the full path.
        """
        cache = self.cache
        if cache is None:
            return None
        hint = self._head_hint
        if hint is not None and time.monotonic() - hint[1] < self._head_staleness_s:
            revision = hint[0]
        else:
            revision = self._recent_head()
        warm = self._warm
        if warm is None or warm.revision != revision:
            stored = self._schema_at.get(revision)
            if stored is None:
                return None
            warm = self._warm = _WarmPath(revision, stored.digest, encode_token(revision))
        now = time.time() if self._system_clock else self.clock().timestamp()
        as_text = type(resource) is str and type(subject) is str
        if as_text:
            outcome = cache.get(_text_key(warm.digest, revision, resource, permission, subject), now)
            if outcome is not None:
                return warm.result(outcome)
        res = resource if isinstance(resource, ObjectRef) else parse_object(resource)
        subj = subject if isinstance(subject, SubjectRef) else parse_subject(subject)
        outcome = cache.get(check_key((warm.digest, revision, ""), res, permission, subj), now)
        if outcome is None:
            return None
        if as_text:  # answered before under its parsed form (another caller, a sub-problem): alias the text
            cache.put(_text_key(warm.digest, revision, resource, permission, subject), outcome)
        return warm.result(outcome)

    def _explain(self, schema: dsl_schema.Schema, reader: Reader, item: BulkCheckItem) -> Explanation:
        resource = item.resource if isinstance(item.resource, ObjectRef) else parse_object(item.resource)
        subject = item.subject if isinstance(item.subject, SubjectRef) else parse_subject(item.subject)
        tracer = TracingChecker(schema, reader, context=dict(item.context or {}),
                                lineage=Lineage(schema, reader, self.label_cache, (schema.digest, reader.revision)))
        try:
            outcome = tracer.check(CheckRequest(resource, item.permission, subject, self.config.max_depth))
        except RecursionError:
            raise stack_exhausted(self.config.max_depth) from None
        return Explanation(summarize(tracer.root, outcome.value), tracer.root.children[0])

    def check_bulk(self, items: Sequence[BulkCheckItem], *, consistency: Consistency | None = None,
                   caller: str | None = None) -> list[BulkCheckResult]:
        """Check many items at one revision, sharing sub-problems; an item's error stays with that item.

        Each answered item is one decision for the audit log."""
        if len(items) > self.config.max_bulk_check_items:
            raise LimitExceededError(f"{len(items)} items in one bulk check; the limit is "
                                     f"{self.config.max_bulk_check_items}")
        memo: dict[Any, Outcome] = {}
        out = []
        audit, ticket = self.audit, 0
        with self._snapshot(consistency) as (reader, schema):
            for item in items:
                start = time.perf_counter_ns() if audit is not None else 0
                try:
                    result = self._check_one(schema, reader, item, memo)
                except EngineError as exc:
                    out.append(BulkCheckResult(item, error=exc))
                    continue
                out.append(BulkCheckResult(item, result))
                if audit is not None:
                    ticket = self._audit_decision(audit, schema, reader, item, result, start, caller) or ticket
        if audit is not None:
            audit.wait(ticket)
        return out

    def _check_one(self, schema: dsl_schema.Schema, reader: Reader, item: BulkCheckItem,
                   memo: dict[Any, Outcome] | None) -> CheckResult:
        resource = item.resource if isinstance(item.resource, ObjectRef) else parse_object(item.resource)
        subject = item.subject if isinstance(item.subject, SubjectRef) else parse_subject(item.subject)
        if subject.is_wildcard:
            raise InvalidRequestError(f"cannot check a wildcard subject ({subject}); check a concrete subject")
        if schema.member(resource.type, item.permission) is None:
            if resource.type not in schema.definitions:
                raise UnknownPermissionError(f"object definition `{resource.type}` not found")
            raise UnknownPermissionError(
                f"relation/permission `{item.permission}` not found under definition `{resource.type}`")
        if subject.type not in schema.definitions:
            raise InvalidRequestError(f"object definition `{subject.type}` not found (subject {subject})")
        context = dict(item.context or {})
        context_key = json.dumps(context, sort_keys=True, separators=(",", ":"), default=str) if context else ""
        if len(context_key.encode()) > self.config.max_caveat_context_bytes:
            raise LimitExceededError(f"check context is {len(context_key.encode())} bytes; the limit is "
                                     f"{self.config.max_caveat_context_bytes}")
        outcome = self._evaluate(schema, reader, resource, item.permission, subject, context, context_key, memo)
        if not context and not outcome.cut and self.cache is not None and \
                type(item.resource) is str and type(item.subject) is str:
            # the same answer under the asked text, for the warm path (_WarmPath)
            self.cache.put(_text_key(schema.digest, reader.revision, item.resource, item.permission, item.subject),
                           outcome)
        token = encode_token(reader.revision)
        if outcome.value is Tri.TRUE:
            return CheckResult(Permissionship.HAS_PERMISSION, token)
        if outcome.value is Tri.FALSE:
            return CheckResult(Permissionship.NO_PERMISSION, token)
        return CheckResult(Permissionship.CONDITIONAL_PERMISSION, token, tuple(sorted(outcome.missing)))

    def _evaluate(self, schema: dsl_schema.Schema, reader: Reader, resource: ObjectRef, permission: str,
                  subject: SubjectRef, context: dict[str, Any], context_key: str,
                  memo: dict[Any, Outcome] | None) -> Outcome:
        lineage = Lineage(schema, reader, self.label_cache, (schema.digest, reader.revision))
        if memo is None and self.cache is None:
            memo = {}  # without a shared cache, a check still shares its own sub-problems
        return evaluate(schema, reader, resource.type, resource.id, permission, subject.type, subject.id,
                        subject.relation, max_depth=self.config.max_depth, context=context, context_key=context_key,
                        lineage=lineage, cache=self.cache, memo=memo, now=self.clock().timestamp())

    def cache_stats(self) -> dict[str, Any]:
        """Hit/miss counters and size of the shared check cache."""
        return self.cache.stats() if self.cache is not None else {"hits": 0, "misses": 0, "size": 0,
                                                                   "maxsize": 0, "hit_rate": 0.0}

    # ------------------------------------------------------------ lookups

    def lookup_resources(self, resource_type: str, permission: str, subject: SubjectRef | str, *,
                         context: Mapping[str, Any] | None = None, consistency: Consistency | None = None,
                         limit: int | None = None, cursor: str | None = None,
                         caller: str | None = None) -> LookupResourcesPage:
        """Every ``resource_type`` object on which ``subject`` has ``permission``, sorted by id.

        Each result is HAS_PERMISSION or CONDITIONAL_PERMISSION (with the missing caveat
        parameters). With ``limit``, a page of at most ``limit`` results and a ``cursor``
        to continue (None once the answer is complete); pages come from one revision, so
        concatenating them gives each resource exactly once. Never silently truncated.
        The audit log gets one record per call (with the number of results).
        """
        start = time.perf_counter_ns()
        subj = subject if isinstance(subject, SubjectRef) else parse_subject(subject)
        query = json.dumps(["LR", resource_type, permission, str(subj), dict(context or {})], sort_keys=True,
                           default=str)
        _check_limit(limit)
        after = None
        if cursor is not None:
            revision, after = decode_cursor(cursor, query)
            consistency = Consistency.at_exact_snapshot(encode_token(revision))
        with self._snapshot(consistency) as (reader, schema):
            if schema.member(resource_type, permission) is None:
                raise UnknownPermissionError(
                    f"relation/permission `{permission}` not found under definition `{resource_type}`"
                    if resource_type in schema.definitions else f"object definition `{resource_type}` not found")
            if subj.is_wildcard:
                raise InvalidRequestError(f"cannot look up resources for a wildcard subject ({subj})")
            # The candidate walk of one listing is remembered for its next pages (same query, same revision).
            key = (query, reader.revision, schema.digest)
            every = self._lookup_candidates.get(key)
            if every is None:
                every = sorted(candidate_resources(schema, reader, resource_type, permission, subj))
                if len(self._lookup_candidates) >= 64:
                    self._lookup_candidates.pop(next(iter(self._lookup_candidates)))
                self._lookup_candidates[key] = every
            candidates = every if after is None else every[bisect.bisect_right(every, after):]
            memo: dict[Any, Outcome] = {}
            results: list[LookupResult] = []
            next_cursor = None
            for rid in candidates:
                item = BulkCheckItem(ObjectRef(resource_type, rid), permission, subj, context)
                r = self._check_one(schema, reader, item, memo)
                if r.permissionship is Permissionship.NO_PERMISSION:
                    continue
                if limit is not None and len(results) == limit:
                    # One more result exists: only now is a cursor due (never one that leads to an empty page).
                    next_cursor = encode_cursor(reader.revision, results[-1].resource_id, query)
                    break
                results.append(LookupResult(rid, r.permissionship, r.missing_context))
            if self.audit is not None and self.audit.wants_lookups():
                self.audit.wait(self.audit.record_lookup(
                    time=self.clock(), caller=caller, lookup="resources", resource_type=resource_type,
                    permission=permission, subject=str(subj), context=context, count=len(results),
                    continued=cursor is not None, revision=reader.revision, token=encode_token(reader.revision),
                    schema_digest=schema.digest, latency_us=(time.perf_counter_ns() - start) // 1000))
            return LookupResourcesPage(results, next_cursor, encode_token(reader.revision))

    def lookup_subjects(self, resource: ObjectRef | str, permission: str, subject_type: str,
                        subject_relation: str | None = None, *, context: Mapping[str, Any] | None = None,
                        consistency: Consistency | None = None, limit: int | None = None,
                        cursor: str | None = None, caller: str | None = None) -> LookupSubjectsPage:
        """Every subject of ``subject_type`` (``#subject_relation``) with ``permission`` on ``resource``.

        A wildcard answer comes first as ``type:*``, with ``excluded`` naming the reached
        subjects whose answer differs from the wildcard's (no permission, or only
        conditional); then every concrete subject with the permission, sorted by id
        (also those the wildcard covers). Caveated results are CONDITIONAL_PERMISSION.
        A subject's answer is its own entry if listed, else the wildcard's if it is not
        excluded, else no permission. Paged like :meth:`lookup_resources`.
        """
        start = time.perf_counter_ns()
        res = resource if isinstance(resource, ObjectRef) else parse_object(resource)
        relation = None if subject_relation in (None, "", "...") else subject_relation
        query = json.dumps(["LS", str(res), permission, subject_type, relation, dict(context or {})],
                           sort_keys=True, default=str)
        _check_limit(limit)
        after = None
        if cursor is not None:
            revision, after = decode_cursor(cursor, query)
            consistency = Consistency.at_exact_snapshot(encode_token(revision))
        with self._snapshot(consistency) as (reader, schema):
            if schema.member(res.type, permission) is None:
                raise UnknownPermissionError(
                    f"relation/permission `{permission}` not found under definition `{res.type}`"
                    if res.type in schema.definitions else f"object definition `{res.type}` not found")
            if subject_type not in schema.definitions:
                raise InvalidRequestError(f"object definition `{subject_type}` not found")
            if relation is not None and schema.member(subject_type, relation) is None:
                raise InvalidRequestError(f"relation/permission `{relation}` not found under definition "
                                          f"`{subject_type}`")
            found = candidate_subjects(schema, reader, res, permission, subject_type, relation)
            memo: dict[Any, Outcome] = {}

            def check(sid: str) -> CheckResult:
                return self._check_one(schema, reader, BulkCheckItem(res, permission,
                                                                     SubjectRef(subject_type, sid, relation),
                                                                     context), memo)

            concrete = {sid: check(sid) for sid in sorted(found.ids)}
            ordered: list[SubjectResult] = []
            if found.wildcard and relation is None:
                fresh = FRESH_ID
                while fresh in found.ids:
                    fresh += "-"
                w = check(fresh)
                if w.permissionship is not Permissionship.NO_PERMISSION:
                    # Subjects the wildcard's answer does not hold for (no permission, or only
                    # conditionally where the wildcard grants outright).
                    excluded = tuple(SubjectRef(subject_type, sid) for sid, r in concrete.items()
                                     if r.permissionship is not w.permissionship
                                     or r.missing_context != w.missing_context)
                    ordered.append(SubjectResult(SubjectRef(subject_type, "*"), w.permissionship,
                                                 w.missing_context, excluded))
            ordered.extend(SubjectResult(SubjectRef(subject_type, sid, relation), r.permissionship,
                                         r.missing_context)
                           for sid, r in concrete.items() if r.permissionship is not Permissionship.NO_PERMISSION)
            if after is not None:
                ordered = [o for o in ordered if o.subject.id != "*" and o.subject.id > after]
            next_cursor = None
            if limit is not None and len(ordered) > limit:
                ordered = ordered[:limit]
                next_cursor = encode_cursor(reader.revision, ordered[-1].subject.id if ordered[-1].subject.id != "*"
                                            else "", query)
            if self.audit is not None and self.audit.wants_lookups():
                self.audit.wait(self.audit.record_lookup(
                    time=self.clock(), caller=caller, lookup="subjects", resource=str(res), permission=permission,
                    subject_type=subject_type + (f"#{relation}" if relation else ""), context=context,
                    count=len(ordered), continued=cursor is not None, revision=reader.revision,
                    token=encode_token(reader.revision), schema_digest=schema.digest,
                    latency_us=(time.perf_counter_ns() - start) // 1000))
            return LookupSubjectsPage(ordered, next_cursor, encode_token(reader.revision))

    # ------------------------------------------------------------ streams (engine/streams.py)

    def read_relationships(self, filter: RelationshipFilter | None = None, *,
                           consistency: Consistency | None = None, limit: int | None = None,
                           cursor: str | None = None) -> "ReadPage":
        """A page of relationships in key order with a cursor pinned to one revision; see streams.read_relationships."""
        from .streams import read_relationships

        return read_relationships(self, filter, consistency=consistency, limit=limit, cursor=cursor)

    def export_relationships(self, filter: RelationshipFilter | None = None, *,
                             consistency: Consistency | None = None, batch_size: int = 1000) -> "RelationshipExport":
        """Every matching relationship at one revision, iterable, with ``.token``; see streams.export_relationships."""
        from .streams import export_relationships

        return export_relationships(self, filter, consistency=consistency, batch_size=batch_size)

    def import_relationships(self, relationships: Iterable[Relationship | str], *, batch_size: int = 1000,
                             progress: Callable[["ImportProgress"], None] | None = None, actor: str | None = None,
                             reason: str | None = None) -> "ImportResult":
        """Create relationships in atomic batches (an existing one is an error); see streams.import_relationships."""
        from .streams import import_relationships

        return import_relationships(self, relationships, batch_size=batch_size, progress=progress, actor=actor,
                                    reason=reason)

    def watch(self, after_token: str, *, limit: int | None = None) -> list["WatchEvent"]:
        """The relationship changes after a revision, oldest first; see streams.watch."""
        from .streams import watch

        return watch(self, after_token, limit=limit)

    def follow(self, after_token: str, *, poll_interval: float = 0.5, timeout: float | None = None,
               stop: threading.Event | None = None) -> Iterator["WatchEvent"]:
        """Changes after a revision, then new ones as they come, until ``timeout`` or ``stop``; see streams.follow."""
        from .streams import follow

        return follow(self, after_token, poll_interval=poll_interval, timeout=timeout, stop=stop)

    # ------------------------------------------------------------ lineage (Headwater)

    def effective_labels(self, obj: ObjectRef | str, *,
                         consistency: Consistency | None = None) -> EffectiveLabels:
        """The effective label of ``obj`` in every classification, each value with the lineage paths that
        bring it (an empty path: its own label), and the declassifications applied on ``obj`` with who made
        them, why and at which revision."""
        target = obj if isinstance(obj, ObjectRef) else parse_object(obj)
        with self._snapshot(consistency) as (reader, schema):
            lineage = Lineage(schema, reader, self.label_cache, (schema.digest, reader.revision))
            labels = lineage.labels(target)
            provenance = lineage.provenance(target)
            declassified = lineage.declassified(target)
            revision = reader.revision
        out: list[ClassificationLabel] = []
        for name, c in sorted(schema.classifications.items()):
            values = labels.of(name)
            levels = [v for v in values if v in c.levels]
            level = max(levels, key=c.rank) if levels else (c.levels[0] if c.levels else None)
            entries = tuple(LabelValue(v, tuple(_path_str(target, p) for p in provenance.get(name, {}).get(v, [])))
                            for v in sorted(values, key=lambda v: (v not in c.levels, v)))
            decl = tuple(self._declassification(target, name, v, revision)
                         for v in sorted(declassified.get(name, set())))
            if entries or decl:
                out.append(ClassificationLabel(name, level, tuple(sorted(v for v in values if v in c.categories)),
                                               entries, decl))
        return EffectiveLabels(target, tuple(out), encode_token(revision))

    def _declassification(self, obj: ObjectRef, classification: str, value: str, revision: int) -> Declassification:
        """Who declassified ``value`` on ``obj``, why and when (from the change history, while it is kept)."""
        schema = self.schema(Consistency.at_exact_snapshot(encode_token(revision)))
        d = schema.definitions[obj.type]
        names = {r.name for r in d.relations.values() if r.kind is dsl_schema.RelationKind.DECLASSIFY
                 and r.classification == classification}
        after = 0
        found: Declassification = Declassification(value, None, None, None)
        while True:
            try:
                changes = self.store.changes(after)
                break
            except RevisionUnavailableError as exc:
                if exc.oldest <= after:
                    return found
                after = exc.oldest
        for ch in changes:
            rel = ch.relationship
            if (ch.revision <= revision and ch.operation is Operation.TOUCH and rel.resource == obj
                    and rel.relation in names and rel.subject.id == value):
                meta = self.store.revision_metadata(ch.revision)
                found = Declassification(value, meta.get("actor"), meta.get("reason"), encode_token(ch.revision))
        return found

    def ancestors(self, obj: ObjectRef | str, *, max_depth: int | None = None, limit: int | None = None,
                  cursor: str | None = None, consistency: Consistency | None = None) -> LineagePage:
        """Objects upstream of ``obj`` (breadth first, nearest first), each with its depth and one shortest
        path; at most ``max_depth`` edges away; paged with ``limit``/``cursor`` at one revision."""
        return self._lineage_walk(obj, "ancestors", max_depth, limit, cursor, consistency)

    def descendants(self, obj: ObjectRef | str, *, max_depth: int | None = None, limit: int | None = None,
                    cursor: str | None = None, consistency: Consistency | None = None) -> LineagePage:
        """Objects downstream of ``obj`` (derived from it, directly or not); paged like :meth:`ancestors`."""
        return self._lineage_walk(obj, "descendants", max_depth, limit, cursor, consistency)

    def _lineage_walk(self, obj: ObjectRef | str, direction: str, max_depth: int | None, limit: int | None,
                      cursor: str | None, consistency: Consistency | None) -> LineagePage:
        target = obj if isinstance(obj, ObjectRef) else parse_object(obj)
        _check_limit(limit)
        if max_depth is not None and (not isinstance(max_depth, int) or max_depth < 1):
            raise InvalidRequestError(f"max_depth must be a positive integer, got {max_depth!r}")
        query = json.dumps([direction, str(target), max_depth])
        skip = 0
        if cursor is not None:
            revision, after = decode_cursor(cursor, query)
            skip = int(after)
            consistency = Consistency.at_exact_snapshot(encode_token(revision))
        with self._snapshot(consistency) as (reader, schema):
            if target.type not in schema.definitions:
                raise InvalidRequestError(f"object definition `{target.type}` not found")
            lineage = Lineage(schema, reader)
            items: list[LineageItem] = []
            for node, path in lineage.walk(target, direction):
                if max_depth is not None and len(path) > max_depth:
                    break
                items.append(LineageItem(node, len(path), _path_str(target, path, direction)))
            page = items[skip:]
            next_cursor = None
            if limit is not None and len(page) > limit:
                page = page[:limit]
                next_cursor = encode_cursor(reader.revision, str(skip + limit), query)
            return LineagePage(page, next_cursor, encode_token(reader.revision))

    # ------------------------------------------------------------ writes

    def write(self, updates: Iterable[Update], preconditions: Sequence[Precondition] = (), *,
              actor: str | None = None, reason: str | None = None, trusted: bool = False) -> WriteResult:
        """Apply a batch atomically: every update is validated against the schema, or nothing changes.

        Headwater's rules apply too: a batch that would make the lineage graph cyclic is
        refused (naming the cycle), and writing or deleting a declassification needs
        ``actor`` (a subject, e.g. ``user:steward``) and ``reason``, and the actor must
        hold the declassification's ``by`` permission on the object at the revision the
        write starts from. ``trusted`` skips that authorization (loading a validation
        file, which is a fixture) but not the other checks.
        """
        batch = list(updates)
        if len(batch) > self.config.max_updates_per_write:
            raise LimitExceededError(f"{len(batch)} updates in one write; the limit is "
                                     f"{self.config.max_updates_per_write}")
        if not batch and not preconditions:
            raise InvalidRequestError("a write needs at least one update")

        def validate(reader: Reader, updates: Sequence[Update]) -> None:
            stored = self.store.read_schema()
            if stored is None:
                raise NotFoundError("no schema has been written yet: write a schema before relationships")
            schema = self._compiled(stored)
            for u in updates:
                if u.operation is not Operation.DELETE:
                    validate_relationship(schema, u.relationship,
                                          max_context_bytes=self.config.max_caveat_context_bytes)
            cycle = find_lineage_cycle(schema, reader, updates)
            if cycle is not None:
                raise LineageCycleError(f"refused: the write would make the lineage graph cyclic: "
                                        f"{describe_cycle(cycle)}; nothing in this batch was written")
            if schema.classifications and not trusted:
                self._authorize_declassifications(schema, reader, updates, actor, reason)

        metadata = {k: v for k, v in (("actor", actor), ("reason", reason)) if v}
        revision = self.store.write(batch, preconditions, validate=validate, metadata=metadata or None)
        self._note_head(revision)
        if self.audit is not None:
            self._audit_changes(self.audit, "write", revision, actor, reason,
                                [(u.operation.value, u.relationship) for u in batch])
        self._maybe_gc()
        return WriteResult(encode_token(revision))

    def gc(self) -> int:
        """Forget history older than ``Config.gc_window`` (reads at older revisions then fail clearly);
        returns how many rows were removed. Writes also run it every ``Config.gc_interval``."""
        removed = self.store.gc(self.config.gc_window, now=self.clock())
        self._last_gc = self.clock()
        return removed

    def _maybe_gc(self) -> None:
        interval = self.config.gc_interval
        if interval is None:
            return
        now = self.clock()
        last = getattr(self, "_last_gc", None)
        if last is None:
            self._last_gc = now  # the first write starts the clock; no collection at start-up
        elif now - last >= interval:
            self.gc()

    def _authorize_declassifications(self, schema: dsl_schema.Schema, reader: Reader, updates: Sequence[Update],
                                     actor: str | None, reason: str | None) -> None:
        for u in updates:
            rel = u.relationship
            d = schema.definitions.get(rel.resource.type)
            r = d.relations.get(rel.relation) if d is not None else None
            if r is None or r.kind is not dsl_schema.RelationKind.DECLASSIFY:
                continue
            if not actor or not reason:
                raise DeclassificationRefusedError(
                    f"{rel}: writing or deleting a declassification needs an actor and a reason")
            subject = parse_subject(actor)
            item = BulkCheckItem(rel.resource, r.declassify_by or "", subject)
            result = self._check_one(schema, reader, item, None)
            if not result.allowed:
                raise DeclassificationRefusedError(
                    f"{rel}: {actor} may not declassify on {rel.resource}: it needs `{r.declassify_by}` there "
                    f"(the check answered {result.permissionship.name})")

    def touch(self, *relationships: Relationship | str, actor: str | None = None,
              reason: str | None = None) -> WriteResult:
        """Create or replace relationships (given as values or SpiceDB strings)."""
        return self.write([Update(Operation.TOUCH, _rel(r)) for r in relationships], actor=actor, reason=reason)

    def create(self, *relationships: Relationship | str, actor: str | None = None,
               reason: str | None = None) -> WriteResult:
        """Create relationships; AlreadyExistsError (and nothing written) if one exists."""
        return self.write([Update(Operation.CREATE, _rel(r)) for r in relationships], actor=actor, reason=reason)

    def remove(self, *relationships: Relationship | str, actor: str | None = None,
               reason: str | None = None) -> WriteResult:
        """Delete these relationships (absent ones are ignored)."""
        return self.write([Update(Operation.DELETE, _rel(r)) for r in relationships], actor=actor, reason=reason)

    def delete(self, filter: RelationshipFilter, *, limit: int | None = None, allow_partial: bool = False,
               preconditions: Sequence[Precondition] = (), actor: str | None = None,
               reason: str | None = None) -> DeleteResult:
        """Delete every relationship matching ``filter`` (at most ``limit``; see Store.delete)."""
        metadata = {k: v for k, v in (("actor", actor), ("reason", reason)) if v}
        revision, n, partial = self.store.delete(filter, limit=limit, allow_partial=allow_partial,
                                                 preconditions=preconditions, metadata=metadata or None)
        self._note_head(revision)
        if self.audit is not None:
            changes = [c for c in self.store.changes(revision - 1, limit=1) if c.revision == revision] if n else []
            self._audit_changes(self.audit, "delete", revision, actor, reason,
                                [(c.operation.value, c.relationship) for c in changes], str(filter), partial)
        return DeleteResult(encode_token(revision), n, partial)

    # ------------------------------------------------------------ audit (engine/audit.py, docs/audit.md)

    def replay(self, record_id: int | None = None, *, resource: ObjectRef | str | None = None,
               permission: str | None = None, subject: SubjectRef | str | None = None,
               before: datetime | None = None, context: Mapping[str, Any] | None = None) -> ReplayResult:
        """Evaluate a recorded decision again, at its recorded revision and time, with the full explanation.

        Name the record by id, or by ``resource``/``permission``/``subject`` (the latest
        matching decision, before ``before`` if given). The log keeps only a hash of a
        request's context: pass ``context`` to replay a caveated check exactly (it must
        match the hash). Beyond the history window (the revision was garbage-collected),
        ``available`` is False and the message says so.
        """
        audit = self.audit
        if audit is None:
            raise InvalidRequestError("this engine keeps no audit log (Config(audit=True) turns it on)")
        if record_id is not None:
            record = audit.get(record_id)
        else:
            found = audit.query(kind=RecordKind.DECISION, resource=str(resource) if resource else None,
                                permission=permission, subject=str(subject) if subject else None, until=before,
                                newest_first=True, limit=1).records
            if not found:
                raise NotFoundError(f"no recorded decision matches resource={resource} permission={permission} "
                                    f"subject={subject}" + (f" before {before.isoformat()}" if before else ""))
            record = found[0]
        if record.kind is not RecordKind.DECISION:
            raise InvalidRequestError(f"audit record #{record.id} is a {record.kind.value} record; only decisions "
                                      "can be replayed")
        notes = []
        if context is not None and context_digest(context) != record["context_sha256"]:
            raise InvalidRequestError(f"the context given does not match audit record #{record.id}'s context hash")
        if context is None and record["context_sha256"] is not None:
            notes.append("the request carried a context, which the log keeps only as a hash: replayed without it "
                         "(pass the context to replay it exactly)")
        rev = record.revision
        try:
            with self._snapshot(Consistency.at_exact_snapshot(record["token"]), now=record.time) as (reader, schema):
                tracer = TracingChecker(schema, reader, context=dict(context or {}), lineage=Lineage(schema, reader))
                outcome = tracer.check(CheckRequest(parse_object(record["resource"]), record["permission"],
                                                    parse_subject(record["subject"]), self.config.max_depth))
                explanation = Explanation(summarize(tracer.root, outcome.value), tracer.root.children[0])
        except RevisionUnavailableError as exc:
            return ReplayResult(record, False, None, None, (
                f"record #{record.id} cannot be replayed: its revision {rev} is beyond the history window (the "
                f"store keeps revisions {exc.oldest} to {exc.head}); the log says {record.result} at "
                f"{record['time']}"))
        permissionship = {Tri.TRUE: Permissionship.HAS_PERMISSION, Tri.FALSE: Permissionship.NO_PERMISSION}.get(
            outcome.value, Permissionship.CONDITIONAL_PERMISSION)
        missing = tuple(sorted(outcome.missing)) if outcome.value is Tri.UNKNOWN else ()
        result = CheckResult(permissionship, record["token"], missing, explanation)
        if schema.digest != record["schema_digest"]:
            notes.append(f"the schema at revision {rev} ({schema.digest[:12]}) is not the one recorded "
                         f"({str(record['schema_digest'])[:12]})")
        same = permissionship.value == record.result and list(missing) == list(record["missing_context"])
        verdict = (f"same answer: {permissionship.value}" if same else
                   f"different answer: the log says {record.result}, replaying gives {permissionship.value}")
        message = f"record #{record.id} replayed at revision {rev}: {verdict}" + "".join(f"; {n}" for n in notes)
        return ReplayResult(record, True, same, result, message)

    def _audit_decision(self, audit: AuditLog, schema: dsl_schema.Schema, reader: Reader, item: BulkCheckItem,
                        result: CheckResult, start: int, caller: str | None) -> int:
        """Queue the decision record the policy asks for; its ticket (0: none)."""
        latency_us = (time.perf_counter_ns() - start) // 1000
        allowed = result.permissionship is Permissionship.HAS_PERMISSION
        if not audit.wants_decision(allowed):
            return 0
        explanation = None
        if audit.wants_explanation(allowed):
            explanation = (result.explanation or self._explain(schema, reader, item)).summary
        return audit.record_decision(
            time=self.clock(), caller=caller, resource=str(item.resource), permission=item.permission,
            subject=str(item.subject), context=item.context, result=result.permissionship.value,
            missing_context=result.missing_context, revision=reader.revision, token=result.token,
            schema_digest=schema.digest, explanation=explanation, latency_us=latency_us)

    def _audit_changes(self, audit: AuditLog, operation: str, revision: Revision, actor: str | None,
                       reason: str | None, changes: list[tuple[str, Relationship]], filter: str | None = None,
                       partial: bool | None = None) -> None:
        """Record a committed batch, and each declassification in it; returns once they are committed."""
        token, now = encode_token(revision), self.clock()
        audit.record_relationships(time=now, operation=operation, actor=actor, reason=reason, revision=revision,
                                   token=token, changes=[(op, str(rel)) for op, rel in changes], filter=filter,
                                   partial=partial)
        stored = self.store.read_schema()
        schema = self._compiled(stored) if stored is not None else None
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

    def _audit_schema(self, audit: AuditLog, revision: Revision, stored: StoredSchema, actor: str | None) -> None:
        """Record a schema write with the diff of the canonical texts; returns once it is committed."""
        try:
            previous = self.store.read_schema(revision - 1)
        except RevisionUnavailableError:
            previous = None
        old = format_schema(parse_schema(previous.text)) if previous is not None else None
        audit.record_schema(time=self.clock(), actor=actor, revision=revision, token=encode_token(revision),
                            version=stored.version, digest=stored.digest,
                            previous_digest=previous.digest if previous is not None else None, old_text=old,
                            new_text=format_schema(parse_schema(stored.text)))
        audit.flush()

    # ------------------------------------------------------------ reads

    def read(self, filter: RelationshipFilter, *, consistency: Consistency | None = None,
             limit: int | None = None) -> tuple[list[Relationship], str]:
        """Relationships matching ``filter`` in key order (at most ``limit``), with the revision token."""
        with self._snapshot(consistency) as (reader, _):
            return reader.read(filter, limit=limit), encode_token(reader.revision)

    def expand(self, resource: ObjectRef | str, permission: str, *, context: Mapping[str, Any] | None = None,
               consistency: Consistency | None = None) -> tuple[ExpandNode, str]:
        """The fully expanded subject tree of ``resource#permission``, with the revision token.

        SpiceDB's ExpandPermissionTree, expanded down to terminal subjects;
        :func:`~headwater.engine.expand.found_subjects` reduces the tree to them.
        """
        res = resource if isinstance(resource, ObjectRef) else parse_object(resource)
        with self._snapshot(consistency) as (reader, schema):
            try:
                tree = expand(schema, reader, res, permission, context=context, max_depth=self.config.max_depth)
            except RecursionError:
                raise stack_exhausted(self.config.max_depth) from None
            return tree, encode_token(reader.revision)


def _path_str(start: ObjectRef, path: tuple[Any, ...], direction: str = "ancestors") -> str:
    """``a -r-> b -r-> c`` walking upstream; ``a <-r- b <-r- c`` walking downstream."""
    text = str(start)
    for e in path:
        text += f" -{e.relation}-> {e.target}" if direction == "ancestors" else f" <-{e.relation}- {e.source}"
    return text


def _check_limit(limit: int | None) -> None:
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise InvalidRequestError(f"limit must be a positive integer, got {limit!r}")


def _rel(r: Relationship | str) -> Relationship:
    return r if isinstance(r, Relationship) else parse_relationship(r)
