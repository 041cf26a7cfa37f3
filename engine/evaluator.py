"""The check evaluator: the schema compiled into one Python closure per relation and permission.

This is the only evaluator. Check, bulk check, the lookups' checks, explanations
and decision replays all run it; an explanation is the same program compiled
with a tracer hook (:class:`Tracer`, implemented in :mod:`.explain`), so the
decision explained is the decision made.

Semantics, all matching SpiceDB:

- A relation grants through a relationship to the subject itself, to the wildcard
  ``type:*`` of the subject's type (when the relation allows it), or to a subject
  set ``T:id#r`` whose members include the subject. A subject set is a member of
  itself (``group:g#member`` has ``member`` on ``group:g``).
- ``rel->p`` / ``rel.any(p)``: some subject object of ``rel`` has ``p``; subject
  types without ``p`` grant nothing. ``rel.all(p)``: at least one relationship, and
  for every one both its caveat and ``p`` on its subject hold (a subject type
  without ``p`` fails it; so does a relationship whose caveat is false).
- Caveats (:mod:`.caveats`): context stored on the relationship wins over the
  request's; missing parameters make the relationship UNKNOWN, and outcomes
  combine with three-valued logic (:mod:`.outcome`). Expired relationships are
  invisible (the reader hides them); an outcome is valid until the earliest
  expiration it read.
- Headwater: ``cleared`` holds when the subject has ``cleared`` on a value meeting
  every requirement of the resource's effective label; ``upstream(p)`` when the
  subject has ``p`` on every upstream object whose type defines it (:mod:`.lineage`).
- Cycles in the data: a sub-problem that meets itself on its own path is cut and
  counts as FALSE (the least fixed point: a cycle of unions and intersections can
  never grant by itself); such outcomes are path-dependent and never cached. A cycle
  through the subtracted side of an exclusion has no defined answer: it raises
  :class:`MaxDepthExceededError` naming the path, as going past the depth limit does,
  but only if the answer depends on it (below).
- Errors matter only where the answer depends on them (SpiceDB's behaviour): a caveat
  that fails to evaluate, or a cycle through an exclusion, is an outcome that fails
  (:func:`.outcome.failed`). A union that another branch grants, an intersection that
  another branch denies, an exclusion whose base is false or whose subtracted side
  holds: each is decided without it, whatever the order of the branches. Otherwise the
  failure reaches the top and the check raises it. Going past the depth limit always
  raises at once (it bounds the work).

How it is fast (a check is thousands of small steps, and in Python each step's
overhead is the cost): each ``(definition, relation or permission)`` becomes a
closure once per schema digest, with the expression's shape and the relation's
traits worked out at compile time; a sub-problem is a call on plain strings with
one path stack per check; relationships are read as stored rows and become values
only for a caveat; outcomes stay the shared ``TRUE``/``FALSE`` unless a caveat or
an expiration is involved. Every sub-problem goes through ``Evaluation.resolve``,
the cache chain assembled by :mod:`.chain`: the evaluator makes no caching decision.

Example::

    >>> from headwater.dsl import compile_schema
    >>> from headwater.engine.relationships import parse_relationship
    >>> from headwater.engine.store import Operation, Update
    >>> from headwater.engine.store.memory import MemoryStore
    >>> from headwater.engine.lineage import Lineage
    >>> from headwater.engine import chain, keys
    >>> from headwater.engine.budget import Budget
    >>> schema = compile_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n"
    ...                         " permission view = viewer\\n}")
    >>> store = MemoryStore()
    >>> _ = store.write([Update(Operation.TOUCH, parse_relationship("doc:1#viewer@user:tom"))])
    >>> with store.snapshot() as reader:
    ...     p = program(schema)
    ...     scope = keys.check_scope(schema.digest, reader.revision, "", "user", "tom", "")
    ...     evaluate(p, reader, "doc", "1", "view", "user", "tom", "", max_depth=50, context={}, scope=scope,
    ...              lineage=Lineage(schema, reader), resolve=chain.resolver(p.enter, memo=None, cache=None),
    ...              now=0.0, budget=Budget()).value.name
    'TRUE'
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ..dsl import schema as s
from . import keys
from .budget import Budget
from .cache import Cache
from .caveats import caveat_verdict
from .errors import CaveatEvaluationError, MaxDepthExceededError, UnknownPermissionError
from .lineage import Lineage, LineageStep
from .outcome import FALSE, TRUE, AllOf, AnyOf, Outcome, Tri, both, failed, negate
from .relationships import ObjectRef, stored_object
from .store import Reader, Row

__all__ = ["Evaluation", "Program", "Resolve", "Tracer", "evaluate", "program", "enter", "stack_exhausted", "too_deep"]

# fn(ev, resource_id, depth, negated) -> Outcome: one relation or permission of one definition
Member = Callable[["Evaluation", str, int, bool], Outcome]
# resolve(ev, resource_type, resource_id, name, depth, negated) -> Outcome: a sub-problem of the step at `depth`,
# through the chain (:func:`.chain.resolver`): refused past the depth limit (too_deep), else answered by a cache or
# evaluated by Program.enter at depth - 1
Resolve = Callable[["Evaluation", str, str, str, int, bool], Outcome]


class Tracer(Protocol):
    """What an explanation records while a traced program runs (see :mod:`.explain`).

    Every ``enter_*`` opens a step, closed by ``exit`` (with its outcome) or ``abort``
    (an error unwinds it); ``relationship`` records a relationship the step read.
    """

    def enter_check(self, resource_type: str, resource_id: str, name: str) -> None: ...

    def enter_expression(self, expr: s.Expr) -> None: ...

    def enter_requirement(self, resource: ObjectRef, classification: str, values: tuple[str, ...]) -> None: ...

    def enter_upstream(self, resource: ObjectRef, upstream: ObjectRef, permission: str,
                       path: tuple[LineageStep, ...]) -> None: ...

    def relationship(self, row: Row, outcome: Outcome) -> None: ...

    def exit(self, outcome: Outcome) -> Outcome: ...

    def abort(self) -> None: ...


class Evaluation:
    """The state of one top-level check: what every compiled function reads, and the path being evaluated."""

    __slots__ = ("program", "schema", "reader", "relationship", "relationships", "subject_sets", "context",
                 "lineage", "now", "scope", "resolve", "tracer", "st", "sid", "srel", "active", "stack", "budget",
                 "ticks")

    def __init__(self, program: Program, reader: Reader, context: Mapping[str, Any], lineage: Lineage,
                 now: float, scope: keys.CheckScope, resolve: Resolve, tracer: Tracer | None,
                 subject_type: str, subject_id: str, subject_relation: str, budget: Budget) -> None:
        self.program = program
        self.schema = program.schema
        self.reader = reader
        # The reader's three reads, bound once: read as attributes then called (``f = ev.relationship; f(...)``)
        # they are two specialized instructions; called as ``ev.reader.relationship(...)`` on a wrapped reader
        # they are a generic method lookup each time (CPython 3.11).
        self.relationship, self.relationships, self.subject_sets = (reader.relationship, reader.relationships,
                                                                    reader.subject_sets)
        self.context = context
        self.lineage = lineage
        self.now = now
        self.scope = scope
        self.resolve = resolve
        self.tracer = tracer
        self.st, self.sid, self.srel = subject_type, subject_id, subject_relation  # srel: "" for none
        self.active: dict[tuple[str, str, str], int] = {}  # (type, id, name) on the path -> its index in stack
        self.stack: list[tuple[str, str, str, bool]] = []  # the path: (type, id, name, negated)
        self.budget = budget
        self.ticks = 0  # work units lent by the budget and not spent yet (one per sub-problem evaluated)

    def subject_text(self) -> str:
        return f"{self.st}:{self.sid}" + (f"#{self.srel}" if self.srel else "")


def _path_text(stack: list[tuple[str, str, str, bool]]) -> str:
    return " -> ".join(f"{t}:{i}#{n}" for t, i, n, _ in stack)


def too_deep(ev: Evaluation) -> MaxDepthExceededError:
    """The error for a sub-problem asked past the depth limit (the resolver refuses it before any cache)."""
    top = ev.stack[-1]
    return MaxDepthExceededError(f"maximum depth exceeded checking {ev.subject_text()} on {top[0]}:{top[1]}#{top[2]}: "
                                 + _path_text(ev.stack))


def enter(ev: Evaluation, rtype: str, rid: str, name: str, depth: int, negated: bool) -> Outcome:
    """Evaluate one sub-problem: unknown names, a subject set as a member of itself, cycles, then its closure."""
    fn = ev.program.members.get((rtype, name))
    if fn is None:
        if rtype not in ev.schema.definitions:
            raise UnknownPermissionError(f"object definition `{rtype}` not found")
        raise UnknownPermissionError(f"relation/permission `{name}` not found under definition `{rtype}`")
    if ev.srel == name and ev.sid == rid and ev.st == rtype:
        return TRUE  # a subject set is a member of itself (`group:g#member` has `member` on `group:g`)
    ev.ticks -= 1
    if ev.ticks < 0:  # every budget.STEP sub-problems: the work limit, the deadline, the caller
        ev.ticks = ev.budget.lend() - 1
    where = (rtype, rid, name)
    active = ev.active
    first = active.get(where)
    stack = ev.stack
    if first is not None:  # the request meets itself on its own path: cut (least fixed point)
        if negated or any(step[3] for step in stack[first + 1:]):
            # No defined answer; an error only if the check depends on it (another branch may decide).
            return failed(MaxDepthExceededError("cycle through an exclusion has no defined answer: "
                                                + _path_text(stack[first:] + [(rtype, rid, name, negated)])))
        return Outcome(Tri.FALSE, cut=True)
    active[where] = len(stack)
    stack.append((rtype, rid, name, negated))
    outcome = fn(ev, rid, depth, negated)
    stack.pop()
    del active[where]
    return outcome


def _enter_traced(ev: Evaluation, rtype: str, rid: str, name: str, depth: int, negated: bool) -> Outcome:
    tracer: Tracer = ev.tracer  # type: ignore[assignment]
    tracer.enter_check(rtype, rid, name)
    try:
        outcome = enter(ev, rtype, rid, name, depth, negated)
    except BaseException:
        tracer.abort()
        raise
    return tracer.exit(outcome)


def _row_outcome(ev: Evaluation, row: Row) -> Outcome:
    """A relationship as an outcome: TRUE or its caveat's verdict, valid until it expires."""
    expires = row.expires_at_us
    if row.caveat_name is None:
        return TRUE if expires is None else Outcome(Tri.TRUE, valid_until=expires / 1_000_000)
    try:
        value, missing = caveat_verdict(ev.schema, ev.context, row)
    except CaveatEvaluationError as exc:  # an error only if the check depends on this relationship
        return failed(exc, None if expires is None else expires / 1_000_000)
    return Outcome(value, missing, None if expires is None else expires / 1_000_000)


def _row_outcome_traced(ev: Evaluation, row: Row) -> Outcome:
    outcome = _row_outcome(ev, row)
    ev.tracer.relationship(row, outcome)  # type: ignore[union-attr]
    return outcome


class Program:
    """A schema compiled into one closure per relation and permission (see the module docstring).

    ``traced``: every step reports to ``Evaluation.tracer`` (explanations), and no step is
    answered in place or short-cut, so each relation and relationship read is a step of its own.
    """

    def __init__(self, schema: s.Schema, *, traced: bool = False) -> None:
        self.schema = schema
        self.traced = traced
        self.fast = not traced  # the shortcuts for relationships without caveat or expiration
        self.enter: Resolve = _enter_traced if traced else enter
        self._row_outcome = _row_outcome_traced if traced else _row_outcome
        self._direct = self._make_direct()
        # The definitions that have each relation or permission name (what an arrow can reach), gathered once:
        # asking every definition for every arrow would be quadratic in a schema's size.
        having: dict[str, set[str]] = {}
        for rtype, name in schema.members:
            having.setdefault(name, set()).add(rtype)
        self._having = {name: frozenset(types) for name, types in having.items()}
        self.members: dict[tuple[str, str], Member] = {}
        for (rtype, name), member in schema.members.items():
            self.members[(rtype, name)] = (self._relation(rtype, member) if type(member) is s.Relation
                                           else self._expr(rtype, member.expr))

    def _make_direct(self) -> Callable[[Evaluation, str, str, str, frozenset[str]], Outcome]:
        fast, row_outcome = self.fast, self._row_outcome

        def direct(ev: Evaluation, rtype: str, rid: str, name: str, wildcards: frozenset[str]) -> Outcome:
            """The relationship naming the subject itself, then (if it did not grant) the wildcard ``type:*``."""
            st, sid, relationship = ev.st, ev.sid, ev.relationship
            row = relationship(rtype, rid, name, st, sid, ev.srel)
            acc = None
            if row is not None:
                if fast and row.caveat_name is None and row.expires_at_us is None:
                    return TRUE
                acc = AnyOf()
                acc.add(row_outcome(ev, row))
            if (acc is None or not acc.done) and not ev.srel and st in wildcards and sid != "*":
                row = relationship(rtype, rid, name, st, "*", "")
                if row is not None:
                    if acc is None:
                        if fast and row.caveat_name is None and row.expires_at_us is None:
                            return TRUE
                        acc = AnyOf()
                    acc.add(row_outcome(ev, row))
            return FALSE if acc is None else acc.result()
        return direct

    # A relation: the direct matches, then its subject sets, each a sub-problem.
    def _relation(self, rtype: str, rel: s.Relation) -> Member:
        name, wildcards, direct = rel.name, rel.wildcard_types, self._direct
        if not rel.has_subject_sets:
            def leaf(ev: Evaluation, rid: str, depth: int, negated: bool) -> Outcome:
                return direct(ev, rtype, rid, name, wildcards)
            return leaf
        fast, row_outcome = self.fast, self._row_outcome

        def relation(ev: Evaluation, rid: str, depth: int, negated: bool) -> Outcome:
            first = direct(ev, rtype, rid, name, wildcards)
            if first is TRUE:
                return TRUE
            acc = None
            if first is not FALSE:
                acc = AnyOf()
                acc.add(first)
                if acc.done:
                    return acc.result()
            st, sid, srel, subject_sets = ev.st, ev.sid, ev.srel, ev.subject_sets
            for row in subject_sets(rtype, rid, name):
                if row.subject_id == sid and row.subject_type == st and row.subject_relation == srel:
                    continue
                if fast and row.caveat_name is None and row.expires_at_us is None:
                    member = ev.resolve(ev, row.subject_type, row.subject_id, row.subject_relation, depth, False)
                    if member is FALSE:
                        continue
                    if member is TRUE and acc is None:
                        return TRUE
                else:
                    cav = row_outcome(ev, row)
                    member = cav if cav.value is Tri.FALSE else both(
                        cav, ev.resolve(ev, row.subject_type, row.subject_id, row.subject_relation, depth, False))
                if acc is None:
                    acc = AnyOf()
                acc.add(member)
                if acc.done:
                    break
            return FALSE if acc is None else acc.result()
        return relation

    def _expr(self, rtype: str, e: s.Expr) -> Member:
        fn = self._build_expr(rtype, e)
        if not self.traced or isinstance(e, s.Computed):  # a computed relation is a check step of its own
            return fn

        def traced(ev: Evaluation, rid: str, depth: int, negated: bool) -> Outcome:
            tracer: Tracer = ev.tracer  # type: ignore[assignment]
            tracer.enter_expression(e)
            try:
                outcome = fn(ev, rid, depth, negated)
            except BaseException:
                tracer.abort()
                raise
            return tracer.exit(outcome)
        return traced

    def _build_expr(self, rtype: str, e: s.Expr) -> Member:
        if isinstance(e, s.Computed):
            return self._computed(rtype, e.name)
        if isinstance(e, s.Union):
            return _union(tuple(self._expr(rtype, c) for c in e.children))
        if isinstance(e, s.Intersection):
            return _intersection(tuple(self._expr(rtype, c) for c in e.children))
        if isinstance(e, s.Exclusion):
            return _exclusion(self._expr(rtype, e.base), self._expr(rtype, e.subtracted))
        if isinstance(e, s.Arrow):
            return self._arrow(rtype, e)
        if isinstance(e, s.Nil):
            return _nil
        if isinstance(e, s.Self):
            def self_(ev: Evaluation, rid: str, depth: int, negated: bool) -> Outcome:
                return TRUE if not ev.srel and ev.st == rtype and ev.sid == rid else FALSE
            return self_
        if isinstance(e, s.Cleared):
            return self._cleared(rtype, e.classification)
        if isinstance(e, s.Upstream):
            return self._upstream(rtype, e.permission)
        raise AssertionError(f"unknown expression {e!r}")

    def _computed(self, rtype: str, name: str) -> Member:
        target = self.schema.members.get((rtype, name))
        if self.fast and type(target) is s.Relation and not target.has_subject_sets:
            # A relation without subject sets is one read: answered in place, not as a sub-problem (no cache
            # entry). It cannot recurse, so no cycle or depth limit can arise.
            wildcards, direct = target.wildcard_types, self._direct

            def leaf(ev: Evaluation, rid: str, depth: int, negated: bool) -> Outcome:
                if depth > 1 and not (ev.srel == name and ev.sid == rid and ev.st == rtype):
                    return direct(ev, rtype, rid, name, wildcards)
                return ev.resolve(ev, rtype, rid, name, depth, negated)
            return leaf

        def computed(ev: Evaluation, rid: str, depth: int, negated: bool) -> Outcome:
            return ev.resolve(ev, rtype, rid, name, depth, negated)
        return computed

    def _arrow(self, rtype: str, e: s.Arrow) -> Member:
        relation, target, fast, row_outcome = e.relation, e.target, self.fast, self._row_outcome
        # the subject types that have the target: any other grants nothing (and fails .all())
        having = self._having.get(target, frozenset())

        def hop(ev: Evaluation, row: Row, depth: int, negated: bool) -> Outcome:
            if row.subject_type not in having or row.subject_id == "*":
                return FALSE
            return ev.resolve(ev, row.subject_type, row.subject_id, target, depth, negated)

        if e.mode is s.ArrowMode.ANY:
            def any_(ev: Evaluation, rid: str, depth: int, negated: bool) -> Outcome:
                acc = None
                relationships = ev.relationships
                for row in relationships(rtype, rid, relation):
                    if fast and row.caveat_name is None and row.expires_at_us is None:
                        o = hop(ev, row, depth, negated)
                        if o is FALSE:
                            continue
                        if o is TRUE and acc is None:
                            return TRUE
                    else:
                        cav = row_outcome(ev, row)
                        o = cav if cav.value is Tri.FALSE else both(cav, hop(ev, row, depth, negated))
                    if acc is None:
                        acc = AnyOf()
                    acc.add(o)
                    if acc.done:
                        break
                return FALSE if acc is None else acc.result()
            return any_

        # all(), as SpiceDB: at least one relationship, and for every one (whatever its caveat says) both its
        # caveat and the target hold. A relationship whose caveat is false makes all() false.
        def all_(ev: Evaluation, rid: str, depth: int, negated: bool) -> Outcome:
            relationships = ev.relationships
            rows = relationships(rtype, rid, relation)
            if not rows:
                return FALSE
            acc = None
            for row in rows:
                if fast and row.caveat_name is None and row.expires_at_us is None:
                    o = hop(ev, row, depth, negated)
                    if o is TRUE:
                        continue
                    if acc is None:
                        if o is FALSE:
                            return FALSE
                        acc = AllOf()
                    acc.add(o)
                    if acc.done:
                        break
                    continue
                cav = row_outcome(ev, row)
                if acc is None:
                    acc = AllOf()
                if cav.value is Tri.FALSE:
                    acc.add(cav)
                    break
                acc.add(both(cav, hop(ev, row, depth, negated)))
                if acc.done:
                    break
            return TRUE if acc is None else acc.result()
        return all_

    def _cleared(self, rtype: str, classification: str | None) -> Member:
        """Headwater: the subject holds a clearance meeting every requirement of the resource's effective label."""
        traced = self.traced

        def cleared(ev: Evaluation, rid: str, depth: int, negated: bool) -> Outcome:
            every = AllOf()
            resource = stored_object(rtype, rid)
            for name, values in ev.lineage.requirements(resource, classification):
                if traced:
                    ev.tracer.enter_requirement(resource, name, values)  # type: ignore[union-attr]
                try:
                    some = AnyOf()
                    for v in values:
                        some.add(ev.resolve(ev, name, v, "cleared", depth, negated))
                        if some.done:
                            break
                    met = some.result()
                except BaseException:
                    if traced:
                        ev.tracer.abort()  # type: ignore[union-attr]
                    raise
                every.add(ev.tracer.exit(met) if traced else met)  # type: ignore[union-attr]
                if every.done:
                    break
            return every.result()
        return cleared

    def _upstream(self, rtype: str, permission: str) -> Member:
        """Headwater: the subject has ``permission`` on every upstream object whose type defines it."""
        schema, traced = self.schema, self.traced

        def upstream(ev: Evaluation, rid: str, depth: int, negated: bool) -> Outcome:
            every = AllOf()
            resource = stored_object(rtype, rid)
            for obj, path in ev.lineage.upstream(resource):
                if schema.member(obj.type, permission) is None:
                    continue
                if traced:
                    ev.tracer.enter_upstream(resource, obj, permission, path)  # type: ignore[union-attr]
                try:
                    held = ev.resolve(ev, obj.type, obj.id, permission, depth, negated)
                except BaseException:
                    if traced:
                        ev.tracer.abort()  # type: ignore[union-attr]
                    raise
                every.add(ev.tracer.exit(held) if traced else held)  # type: ignore[union-attr]
                if every.done:
                    break
            return every.result()
        return upstream


# A union and an intersection are written out separately, not as one closure over (neutral, absorbing): CPython
# 3.11 specializes each code object's instructions for what they meet, and one body shared by both (and recursing
# through both) measured 15-20% slower on deep lineage checks. Plain outcomes are decided without an accumulator,
# which only merges caveats, expirations and cuts.
def _union(children: tuple[Member, ...]) -> Member:
    def union(ev: Evaluation, rid: str, depth: int, negated: bool) -> Outcome:
        acc = None
        for child in children:
            o = child(ev, rid, depth, negated)
            if o is FALSE:
                continue
            if acc is None:
                if o is TRUE:
                    return TRUE
                acc = AnyOf()
            acc.add(o)
            if acc.done:
                break
        return FALSE if acc is None else acc.result()
    return union


def _intersection(children: tuple[Member, ...]) -> Member:
    def intersection(ev: Evaluation, rid: str, depth: int, negated: bool) -> Outcome:
        acc = None
        for child in children:
            o = child(ev, rid, depth, negated)
            if o is TRUE:
                continue
            if acc is None:
                if o is FALSE:
                    return FALSE
                acc = AllOf()
            acc.add(o)
            if acc.done:
                break
        return TRUE if acc is None else acc.result()
    return intersection


def _exclusion(base_fn: Member, subtracted_fn: Member) -> Member:
    def exclusion(ev: Evaluation, rid: str, depth: int, negated: bool) -> Outcome:
        base = base_fn(ev, rid, depth, negated)
        if base.value is Tri.FALSE:
            return base
        return both(base, negate(subtracted_fn(ev, rid, depth, True)))
    return exclusion


def _nil(ev: Evaluation, rid: str, depth: int, negated: bool) -> Outcome:
    return FALSE


_PROGRAMS = Cache("programs", 32)  # shared by every engine of this process


def program(schema: s.Schema, *, traced: bool = False) -> Program:
    """The compiled form of ``schema``, compiled once per schema digest and shared (the digest is the sha256
    of the canonical text, so two schemas with one digest mean the same; a schema without one is not shared).
    ``traced``: the variant that reports every step to a :class:`Tracer`."""
    if not schema.digest:
        return Program(schema, traced=traced)
    key = keys.program(schema.digest, traced)
    found: Program | None = _PROGRAMS.get(key)
    if found is None:
        found = Program(schema, traced=traced)
        _PROGRAMS.put(key, found)
    return found


def evaluate(program: Program, reader: Reader, resource_type: str, resource_id: str, name: str,
             subject_type: str, subject_id: str, subject_relation: str, *, max_depth: int,
             context: Mapping[str, Any], scope: keys.CheckScope, lineage: Lineage, resolve: Resolve, now: float,
             budget: Budget, tracer: Tracer | None = None) -> Outcome:
    """Whether the subject has ``name`` on the resource, against ``reader`` (one snapshot). Every sub-problem,
    the top-level one included, goes through ``resolve`` (:func:`.chain.resolver` around ``program.enter``)
    under keys of ``scope``; ``subject_relation`` is ``""`` for none. Each sub-problem evaluated spends one
    unit of ``budget``, which also stops the evaluation at its deadline or when its caller cancels."""
    ev = Evaluation(program, reader, context, lineage, now, scope, resolve, tracer, subject_type, subject_id,
                    subject_relation, budget)
    try:
        outcome = ev.resolve(ev, resource_type, resource_id, name, max_depth + 1, False)
    except RecursionError:
        raise stack_exhausted(max_depth) from None
    finally:
        budget.repay(ev.ticks)
    if outcome.error is not None:
        raise outcome.error.with_traceback(None)
    return outcome


def stack_exhausted(max_depth: int) -> MaxDepthExceededError:
    """The error for a check (or an expand or explanation) that nested deeper than Python's stack allows
    before reaching ``max_depth`` (a configured limit far above SpiceDB's 50): a clear error, never a crash.
    Nothing was cached from the unfinished evaluation except finished sub-problems, which stay true."""
    return MaxDepthExceededError(
        f"the evaluation nested deeper than this process's stack allows (Python's recursion limit is "
        f"{sys.getrecursionlimit()}) before reaching max_depth {max_depth}; lower max_depth")
