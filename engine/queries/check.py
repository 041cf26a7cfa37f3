"""Check and bulk check: one decision per item, from the evaluator, through the cache chain, audited.

- A check names a resource, a permission (or relation) and a subject, as values or
  SpiceDB text; it is answered at the snapshot its consistency selects, through the
  chain of :mod:`..chain` (a request memo, the shared cache, the evaluator).
- **The warm path**: a check asked as text, without context, at the recent head, is
  first looked up under its text (one cache probe, no parsing, no snapshot).
- With ``explain``, the check runs the evaluator's traced program instead, and the
  answer and its explanation come from that one evaluation.
- Every decision is recorded in the audit log when one is kept (and its policy
  selects it), with who asked.

Example::

    >>> from headwater.engine import Engine, MemoryStore
    >>> teams = Engine(MemoryStore())
    >>> _ = teams.write_schema("definition user {}\\ndefinition team {\\n relation member: user | team#member\\n}")
    >>> _ = teams.touch("team:core#member@team:infra#member", "team:infra#member@user:kim")
    >>> items = [BulkCheckItem("team:core", "member", "user:kim"), BulkCheckItem("team:infra", "member", "user:lee")]
    >>> [r.result.permissionship.name for r in teams.check_bulk(items)]
    ['HAS_PERMISSION', 'NO_PERMISSION']
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from ...dsl import schema as dsl_schema
from .. import chain, keys, tracing
from ..audit import AuditLog
from ..budget import Budget
from ..consistency import Consistency, ConsistencyMode, encode_token
from ..context import Context
from ..contexts import validate_context
from ..errors import (
    EngineError,
    InvalidRequestError,
    LimitExceededError,
    RequestStoppedError,
    UnknownPermissionError,
    WorkLimitExceededError,
)
from ..evaluator import Resolve, evaluate, program
from ..evaluator import enter as evaluator_enter
from ..explain import Explanation, Recorder
from ..lineage import Lineage
from ..outcome import FALSE, TRUE, Outcome, Tri
from ..relationships import ObjectRef, SubjectRef, parse_object, parse_subject
from ..results import BulkCheckItem, BulkCheckResult, CheckResult, Permissionship
from ..store import Reader, Revision

__all__ = ["CheckQuery", "permissionship_of"]


def permissionship_of(outcome: Outcome) -> tuple[Permissionship, tuple[str, ...]]:
    """The answer an outcome gives, and the caveat parameters a conditional one misses."""
    if outcome.value is Tri.TRUE:
        return Permissionship.HAS_PERMISSION, ()
    if outcome.value is Tri.FALSE:
        return Permissionship.NO_PERMISSION, ()
    return Permissionship.CONDITIONAL_PERMISSION, tuple(sorted(outcome.missing))


class _WarmPath:
    """What the warm path keeps for the recent head revision: the schema digest and the two usual results."""

    __slots__ = ("revision", "digest", "token", "allowed", "denied")

    def __init__(self, revision: Revision, digest: str) -> None:
        self.revision = revision
        self.digest = digest
        self.token = token = encode_token(revision)
        self.allowed = CheckResult(Permissionship.HAS_PERMISSION, token)
        self.denied = CheckResult(Permissionship.NO_PERMISSION, token)

    def result(self, outcome: Outcome) -> CheckResult:
        """The answer for a cached outcome at this revision."""
        if outcome is TRUE or outcome.value is Tri.TRUE:
            return self.allowed
        if outcome is FALSE or outcome.value is Tri.FALSE:
            return self.denied
        return CheckResult(Permissionship.CONDITIONAL_PERMISSION, self.token, tuple(sorted(outcome.missing)))


class CheckQuery:
    """Check, bulk check and explanations over one engine's :class:`~..context.Context`."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._cache = ctx.caches.checks  # the shared check cache (None: off)
        self._warm: _WarmPath | None = None  # the warm path's state for the recent head revision
        cache = ctx.caches.checks
        # with tracing on, each sub-problem notes the depth reached and a long one gets a span (engine/tracing.py)
        self._enter = enter = tracing.traced_enter(evaluator_enter)
        self._shared_chain = None if cache is None else chain.resolver(enter, memo=None, cache=cache)

    # --- check --------------------------------------------------------------------------

    def check(self, resource: ObjectRef | str, permission: str, subject: SubjectRef | str, *,
              context: Mapping[str, Any] | None = None, consistency: Consistency | None = None,
              explain: bool = False, caller: str | None = None) -> CheckResult:
        """See :meth:`~headwater.engine.Engine.check` (which is this method: see ``Engine.__init__``)."""
        ctx = self.ctx
        audit = ctx.audit
        if audit is None and not context and not explain and (
                consistency is None or consistency.mode is ConsistencyMode.MINIMIZE_LATENCY):
            # The warm path. The common case: a check asked as text at the recent head, whose answer the shared
            # cache holds under that text (one probe: no parsing, no snapshot).
            warm, hint = self._warm, ctx.head_hint
            if warm is not None and hint is not None and hint[0] == warm.revision and \
                    type(resource) is type(subject) is str and time.monotonic() - hint[1] < ctx.head_staleness_s:
                outcome = self._cache.get(  # type: ignore[union-attr]
                    (warm.digest, warm.revision, resource, permission, subject),  # keys.asked_check, spelled out
                    None if ctx.system_clock else ctx.clock().timestamp())
                if outcome is TRUE:
                    return warm.allowed
                if outcome is FALSE:
                    return warm.denied
                if outcome is not None:
                    return warm.result(outcome)
            else:  # after a new revision, or for values: look further (_warm_answer)
                hit = self._warm_answer(resource, permission, subject)
                if hit is not None:
                    return hit
        item = BulkCheckItem(resource, permission, subject, context)
        start = time.perf_counter_ns() if audit is not None else 0
        with ctx.snapshot(consistency) as (reader, schema):
            if explain:
                result = self.explained(schema, reader, item)
            else:
                result = self.decide(schema, reader, item, None)
            if audit is None:
                return result
            ticket = self._record(audit, schema, reader, item, result, start, caller)
        audit.wait(ticket)
        return result

    def _warm_answer(self, resource: ObjectRef | str, permission: str,
                     subject: SubjectRef | str) -> CheckResult | None:
        """A check answered from the shared cache without opening a snapshot: only an answer cached at the
        recent head under the schema in force there qualifies; anything else takes the full path."""
        ctx = self.ctx
        cache = ctx.caches.checks
        if cache is None:
            return None
        revision = ctx.recent_head()
        warm = self._warm
        if warm is None or warm.revision != revision:
            stored = ctx.caches.schema_at.get(keys.schema_at(revision))
            if stored is None:
                return None
            warm = self._warm = _WarmPath(revision, stored.digest)
        now = None if ctx.system_clock else ctx.clock().timestamp()
        as_text = type(resource) is str and type(subject) is str
        if as_text:
            outcome = chain.asked_answer(cache, warm.digest, revision, resource, permission,  # type: ignore[arg-type]
                                         subject, now)  # type: ignore[arg-type]
            if outcome is not None:
                return warm.result(outcome)
        res = resource if isinstance(resource, ObjectRef) else parse_object(resource)
        subj = subject if isinstance(subject, SubjectRef) else parse_subject(subject)
        scope = keys.check_scope(warm.digest, revision, "", subj.type, subj.id, subj.relation or "")
        outcome = cache.get(keys.subproblem(scope, res.type, res.id, permission), now)
        if outcome is None:
            return None
        if as_text:  # answered before under its parsed form (another caller, a sub-problem): alias the text
            chain.remember_asked(cache, warm.digest, revision, resource, permission,  # type: ignore[arg-type]
                                 subject, outcome)  # type: ignore[arg-type]
        return warm.result(outcome)

    def check_bulk(self, items: Sequence[BulkCheckItem], *, consistency: Consistency | None = None,
                   explain: bool = False, caller: str | None = None) -> list[BulkCheckResult]:
        """See :meth:`~headwater.engine.Engine.check_bulk`."""
        limit = self.ctx.config.limits.max_bulk_check_items
        if len(items) > limit:
            raise LimitExceededError(f"{len(items)} items in one bulk check; the limit is {limit}", limit=limit)
        resolve = self.request_chain()
        budget = self.ctx.budget()  # one for the whole request
        out = []
        audit, ticket = self.ctx.audit, 0
        with self.ctx.snapshot(consistency) as (reader, schema):
            for item in items:
                start = time.perf_counter_ns() if audit is not None else 0
                try:
                    result = (self.explained(schema, reader, item) if explain
                              else self.decide(schema, reader, item, resolve, budget))
                except (RequestStoppedError, WorkLimitExceededError):
                    raise  # the request as a whole stops, not one item
                except EngineError as exc:
                    out.append(BulkCheckResult(item, error=exc))
                    continue
                out.append(BulkCheckResult(item, result))
                if audit is not None:
                    ticket = self._record(audit, schema, reader, item, result, start, caller) or ticket
        if audit is not None:
            audit.wait(ticket)
        return out

    # --- one decision -------------------------------------------------------------------

    def decide(self, schema: dsl_schema.Schema, reader: Reader, item: BulkCheckItem,
               resolve: Resolve | None, budget: Budget | None = None) -> CheckResult:
        """The answer to one item at ``reader``'s snapshot, through ``resolve``: the chain of the request the
        item belongs to (:meth:`request_chain`), or None for a check of its own; work is spent from ``budget``
        (None: the request's, :meth:`.Context.budget`)."""
        resource, subject, context, context_key = self._prepare(schema, item)
        outcome = self.evaluate(schema, reader, resource, item.permission, subject, context, context_key, resolve,
                                budget)
        cache = self.ctx.caches.checks
        if not context and cache is not None and type(item.resource) is str and type(item.subject) is str:
            # the same answer under the asked text, for the warm path
            chain.remember_asked(cache, schema.digest, reader.revision, item.resource, item.permission,
                                 item.subject, outcome)
        permissionship, missing = permissionship_of(outcome)
        return CheckResult(permissionship, encode_token(reader.revision), missing)

    def evaluate(self, schema: dsl_schema.Schema, reader: Reader, resource: ObjectRef, permission: str,
                 subject: SubjectRef, context: dict[str, Any], context_key: str,
                 resolve: Resolve | None, budget: Budget | None = None, *, private: bool = False) -> Outcome:
        """The evaluator's outcome for one check, through ``resolve`` (None: the chain of a check of its own).
        ``private``: the lineage answers are not cached either (see :meth:`decide_privately`)."""
        ctx = self.ctx
        if budget is None:
            budget = ctx.budget()
        if resolve is None:
            # through the shared cache; without one, a check still shares its own sub-problems
            resolve = self._shared_chain or chain.resolver(self._enter, memo={}, cache=None)
        srel = subject.relation or ""
        prefetch = getattr(reader, "prefetch_lineage", None)
        if prefetch is not None and schema.lineage_relations(resource.type):
            prefetch(resource.type, resource.id, schema.lineage_relation_names)  # a hint: one query, no answer changes
        return evaluate(program(schema), reader, resource.type, resource.id, permission, subject.type, subject.id,
                        srel, max_depth=ctx.config.limits.max_depth, context=context,
                        scope=keys.check_scope(schema.digest, reader.revision, context_key, subject.type, subject.id,
                                               srel),
                        lineage=(Lineage(schema, reader, None, budget) if private
                                 else ctx.lineage(schema, reader, budget)),
                        resolve=resolve, now=ctx.clock().timestamp(), budget=budget)

    def decide_privately(self, schema: dsl_schema.Schema, reader: Reader, item: BulkCheckItem) -> CheckResult:
        """The answer to one item at ``reader``'s snapshot without reading or filling any shared cache: for a
        check made inside a write transaction (a declassification's authorization), whose snapshot is not
        committed yet; were that transaction (or the group commit it is part of) to fail, its revision number
        would name other data, and an answer cached under it would be wrong."""
        resource, subject, context, context_key = self._prepare(schema, item)
        outcome = self.evaluate(schema, reader, resource, item.permission, subject, context, context_key,
                                chain.resolver(self._enter, memo={}, cache=None), private=True)
        permissionship, missing = permissionship_of(outcome)
        return CheckResult(permissionship, encode_token(reader.revision), missing)

    def request_chain(self) -> Resolve:
        """The chain for one request of many checks (a bulk check, a lookup): a memo of its own, then the shared
        cache. Built once per request, as the shared chain is built once per engine: the same function at every
        call site is what CPython's call specialization wants."""
        return chain.resolver(self._enter, memo={}, cache=self.ctx.caches.checks)

    def explained(self, schema: dsl_schema.Schema, reader: Reader, item: BulkCheckItem, *,
                  private: bool = False) -> CheckResult:
        """The answer to one item with its explanation, both from one traced evaluation (no cache; ``private``:
        the lineage answers are not cached either, as in :meth:`decide_privately`)."""
        resource, subject, context, context_key = self._prepare(schema, item)
        outcome, explanation = self.trace(schema, reader, resource, item.permission, subject, context, context_key,
                                          private=private)
        permissionship, missing = permissionship_of(outcome)
        return CheckResult(permissionship, encode_token(reader.revision), missing, explanation)

    def explain(self, schema: dsl_schema.Schema, reader: Reader, item: BulkCheckItem) -> Explanation:
        """The explanation of one item's answer (a traced evaluation)."""
        resource, subject, context, context_key = self._prepare(schema, item)
        return self.trace(schema, reader, resource, item.permission, subject, context, context_key)[1]

    def trace(self, schema: dsl_schema.Schema, reader: Reader, resource: ObjectRef, permission: str,
               subject: SubjectRef, context: dict[str, Any], context_key: str, *,
               private: bool = False) -> tuple[Outcome, Explanation]:
        """One traced evaluation (the evaluator with its explanation hooks, no cache): its outcome and the
        explanation of it."""
        ctx = self.ctx
        traced = program(schema, traced=True)
        budget = ctx.budget()
        lineage = Lineage(schema, reader, None, budget) if private else ctx.lineage(schema, reader, budget)
        recorder = Recorder(str(subject), lineage)
        srel = subject.relation or ""
        outcome = evaluate(traced, reader, resource.type, resource.id, permission, subject.type, subject.id, srel,
                           max_depth=ctx.config.limits.max_depth, context=context,
                           scope=keys.check_scope(schema.digest, reader.revision, context_key, subject.type,
                                                  subject.id, srel),
                           lineage=lineage, resolve=chain.resolver(traced.enter, memo=None, cache=None),
                           now=ctx.clock().timestamp(), budget=budget, tracer=recorder)
        return outcome, recorder.explanation(outcome.value)

    def _prepare(self, schema: dsl_schema.Schema,
                 item: BulkCheckItem) -> tuple[ObjectRef, SubjectRef, dict[str, Any], str]:
        """An item's resource, subject, context and context key, refused when the schema cannot answer it."""
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
        validate_context(context)
        context_key = keys.context_key(context)
        limit = self.ctx.config.limits.max_caveat_context_bytes
        if len(context_key.encode()) > limit:
            raise LimitExceededError(f"check context is {len(context_key.encode())} bytes; the limit is {limit}")
        return resource, subject, context, context_key

    # --- audit --------------------------------------------------------------------------

    def _record(self, audit: AuditLog, schema: dsl_schema.Schema, reader: Reader, item: BulkCheckItem,
                result: CheckResult, start: int, caller: str | None) -> int:
        """Queue the decision record the policy asks for; its ticket (0: none)."""
        latency_us = (time.perf_counter_ns() - start) // 1000
        allowed = result.permissionship is Permissionship.HAS_PERMISSION
        if not audit.wants_decision(allowed):
            return 0
        explanation = None
        if audit.wants_explanation(allowed):
            explanation = (result.explanation or self.explain(schema, reader, item)).summary
        return audit.record_decision(
            time=self.ctx.clock(), caller=caller, resource=str(item.resource), permission=item.permission,
            subject=str(item.subject), context=item.context, result=result.permissionship.value,
            missing_context=result.missing_context, revision=reader.revision, token=result.token,
            schema_digest=schema.digest, explanation=explanation, latency_us=latency_us)
