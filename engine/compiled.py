"""The check evaluator the engine runs: the schema compiled into one Python closure per relation/permission.

:class:`~headwater.engine.check.LocalChecker` is the reference: it walks the
expression tree, one branch per form, and is what explanations trace. This
module gives the same answers faster, because a check is thousands of small
steps and in Python each step's overhead is the cost:

- each ``(definition, relation or permission)`` becomes a closure once per
  schema (:func:`program`), with the expression's shape, the relation's traits
  (wildcards, subject sets) and the arrow targets worked out at compile time,
  instead of ``isinstance`` dispatch and schema lookups on every visit;
- a sub-problem is a call with plain strings (``type``, ``id``, ``name``,
  ``depth``), not a request object, and the path kept for cycles and error
  messages is one stack for the whole check, not a tuple copied per step;
- relationships are read as edges (:data:`~headwater.engine.store.Edge`, the
  stored rows), and a Relationship is built only for a caveat;
- outcomes stay the shared ``TRUE``/``FALSE`` values unless a caveat or an
  expiration is involved, and the three-valued combinators of ``check`` run
  only then.

Semantics are LocalChecker's, rule for rule (see its module docstring): the same
sub-problems go through the same shared cache under the same keys
(:func:`~headwater.engine.cache.check_key`), in the same order, with the same
cycle cuts, depth limit and errors. ``tests/properties/test_compiled_agreement.py``
holds the two equal on random schemas and data, caveats, expiration, cycles and
exclusions included.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from ..dsl import schema as s
from .cache import SharedCache
from .check import _All, _and, _Any, _not, caveat_verdict
from .dispatch import FALSE, TRUE, Outcome, Tri
from .errors import MaxDepthExceededError, UnknownPermissionError
from .lineage import Lineage
from .relationships import stored_object
from .store import Edge, Reader, edge_relationship

__all__ = ["Program", "evaluate", "program", "stack_exhausted"]

# fn(ev, resource_id, depth, negated) -> Outcome: one relation or permission of one definition
Member = Callable[["_Eval", str, int, bool], Outcome]


class _Eval:
    """The state of one top-level check: what every compiled function reads, and the path being evaluated."""

    __slots__ = ("program", "schema", "reader", "context", "lineage", "cache", "memo", "now", "digest", "revision",
                 "context_key", "st", "sid", "srel", "srel_text", "active", "stack")

    def __init__(self, program: Program, reader: Reader, context: Mapping[str, Any], lineage: Lineage,
                 cache: SharedCache | None, memo: dict[Hashable, Outcome] | None, now: float,
                 prefix: tuple[Any, Any, Any], subject_type: str, subject_id: str, subject_relation: str | None):
        self.program = program
        self.schema = program.schema
        self.reader = reader
        self.context = context
        self.lineage = lineage
        self.cache = cache
        self.memo = memo
        self.now = now
        self.digest, self.revision, self.context_key = prefix
        self.st, self.sid, self.srel = subject_type, subject_id, subject_relation
        self.srel_text = subject_relation or ""
        self.active: dict[tuple[str, str, str], int] = {}  # (type, id, name) on the path -> its index in stack
        self.stack: list[tuple[str, str, str, bool]] = []  # the path: (type, id, name, negated)

    def path_text(self, stack: list[tuple[str, str, str, bool]]) -> str:
        return " -> ".join(f"{t}:{i}#{n}" for t, i, n, _ in stack)


def _sub(ev: _Eval, rtype: str, rid: str, name: str, depth: int, negated: bool) -> Outcome:
    """A sub-problem of the request at ``depth`` (LocalChecker._child): through the memo and the shared cache,
    else evaluated."""
    if depth <= 1 and ev.stack:  # (the top-level request, with an empty stack, is never too deep)
        top = ev.stack[-1]
        raise MaxDepthExceededError(
            f"maximum depth exceeded checking {_subject_text(ev)} on {top[0]}:{top[1]}#{top[2]}: "
            + ev.path_text(ev.stack))
    key = (ev.digest, ev.revision, ev.context_key, rtype, rid, name, ev.st, ev.sid, ev.srel)  # = check_key()
    memo = ev.memo
    if memo is not None:
        hit = memo.get(key)
        if hit is not None:
            return hit
    cache = ev.cache
    if cache is not None:
        hit = cache.get(key, ev.now)
        if hit is not None:
            if memo is not None:
                memo[key] = hit
            return hit
    outcome = _enter(ev, rtype, rid, name, depth - 1, negated)
    if not outcome.cut:
        if memo is not None:
            memo[key] = outcome
        if cache is not None:
            cache.put(key, outcome)
    return outcome


def _enter(ev: _Eval, rtype: str, rid: str, name: str, depth: int, negated: bool) -> Outcome:
    """Evaluate one request (LocalChecker.check): unknown names, a subject set as a member of itself, cycles."""
    fn = ev.program.members.get((rtype, name))
    if fn is None:
        if rtype not in ev.schema.definitions:
            raise UnknownPermissionError(f"object definition `{rtype}` not found")
        raise UnknownPermissionError(f"relation/permission `{name}` not found under definition `{rtype}`")
    if ev.srel == name and ev.sid == rid and ev.st == rtype:
        return TRUE  # a subject set is a member of itself (`group:g#member` has `member` on `group:g`)
    where = (rtype, rid, name)
    active = ev.active
    first = active.get(where)
    stack = ev.stack
    if first is not None:  # the request meets itself on its own path: cut (least fixed point)
        if negated or any(step[3] for step in stack[first + 1:]):
            raise MaxDepthExceededError("cycle through an exclusion has no defined answer: "
                                        + ev.path_text(stack[first:] + [(rtype, rid, name, negated)]))
        return Outcome(Tri.FALSE, cut=True)
    active[where] = len(stack)
    stack.append((rtype, rid, name, negated))
    outcome = fn(ev, rid, depth, negated)
    stack.pop()
    del active[where]
    return outcome


def _subject_text(ev: _Eval) -> str:
    return f"{ev.st}:{ev.sid}" + (f"#{ev.srel}" if ev.srel is not None else "")


def _edge_outcome(ev: _Eval, rtype: str, rid: str, e: Edge) -> Outcome:
    """A relationship as an outcome (LocalChecker._caveat): TRUE or its caveat's verdict, valid until it expires."""
    expires = e[6]
    if e[4] is None:
        return TRUE if expires is None else Outcome(Tri.TRUE, valid_until=expires / 1_000_000)
    value, missing = caveat_verdict(ev.schema, ev.context, edge_relationship(rtype, rid, e))
    return Outcome(value, missing, None if expires is None else expires / 1_000_000)


def _direct(ev: _Eval, rtype: str, rid: str, name: str, wildcards: frozenset[str]) -> Outcome:
    """The relationships naming the subject itself, then (if none granted) the wildcard ``type:*``."""
    st, sid = ev.st, ev.sid
    found = ev.reader.edge_lookup(rtype, rid, name, st, sid, ev.srel_text)
    acc = None
    for e in found:
        if e[4] is None and e[6] is None:
            return TRUE
        acc = _Any()
        acc.add(_edge_outcome(ev, rtype, rid, e))
    if (acc is None or not acc.done) and ev.srel is None and st in wildcards and sid != "*":
        for e in ev.reader.edge_lookup(rtype, rid, name, st, "*", ""):
            if acc is None:
                if e[4] is None and e[6] is None:
                    return TRUE
                acc = _Any()
            acc.add(_edge_outcome(ev, rtype, rid, e))
    return FALSE if acc is None else acc.result()


# ---------------------------------------------------------------- compiling


class Program:
    """A schema compiled into one closure per relation and permission (see the module docstring)."""

    def __init__(self, schema: s.Schema) -> None:
        self.schema = schema
        self.members: dict[tuple[str, str], Member] = {}
        for (rtype, name), member in schema.members.items():
            self.members[(rtype, name)] = (self._relation(rtype, member) if type(member) is s.Relation
                                           else self._expr(rtype, member.expr))

    # A relation: direct matches, then its subject sets, each a sub-problem.
    def _relation(self, rtype: str, rel: s.Relation) -> Member:
        name, wildcards = rel.name, rel.wildcard_types
        if not rel.has_subject_sets:
            def leaf(ev: _Eval, rid: str, depth: int, negated: bool) -> Outcome:
                return _direct(ev, rtype, rid, name, wildcards)
            return leaf

        def relation(ev: _Eval, rid: str, depth: int, negated: bool) -> Outcome:
            first = _direct(ev, rtype, rid, name, wildcards)
            if first is TRUE:
                return TRUE
            acc = None
            if first is not FALSE:
                acc = _Any()
                acc.add(first)
                if acc.done:
                    return acc.result()
            st, sid, srel = ev.st, ev.sid, ev.srel_text
            for e in ev.reader.edge_sets(rtype, rid, name):
                if e[2] == sid and e[1] == st and e[3] == srel:
                    continue
                if e[4] is None and e[6] is None:
                    member = _sub(ev, e[1], e[2], e[3], depth, False)
                    if member is FALSE:
                        continue
                    if member is TRUE and acc is None:
                        return TRUE
                else:
                    cav = _edge_outcome(ev, rtype, rid, e)
                    if cav.value is Tri.FALSE:
                        member = cav
                    else:
                        member = _and(cav, _sub(ev, e[1], e[2], e[3], depth, False))
                if acc is None:
                    acc = _Any()
                acc.add(member)
                if acc.done:
                    break
            return FALSE if acc is None else acc.result()
        return relation

    def _expr(self, rtype: str, e: s.Expr) -> Member:
        schema = self.schema
        if isinstance(e, s.Computed):
            name = e.name
            target = schema.members.get((rtype, name))
            if type(target) is s.Relation and not target.has_subject_sets:
                # answered in place (LocalChecker.inline_leaves): one lookup, no sub-problem
                wildcards = target.wildcard_types

                def leaf(ev: _Eval, rid: str, depth: int, negated: bool) -> Outcome:
                    if depth > 1 and not (ev.srel == name and ev.sid == rid and ev.st == rtype):
                        return _direct(ev, rtype, rid, name, wildcards)
                    return _sub(ev, rtype, rid, name, depth, negated)
                return leaf

            def computed(ev: _Eval, rid: str, depth: int, negated: bool) -> Outcome:
                return _sub(ev, rtype, rid, name, depth, negated)
            return computed
        if isinstance(e, s.Union):
            children = tuple(self._expr(rtype, c) for c in e.children)

            def union(ev: _Eval, rid: str, depth: int, negated: bool) -> Outcome:
                acc = None
                for child in children:
                    o = child(ev, rid, depth, negated)
                    if o is FALSE:
                        continue
                    if acc is None:
                        if o is TRUE:
                            return TRUE
                        acc = _Any()
                    acc.add(o)
                    if acc.done:
                        break
                return FALSE if acc is None else acc.result()
            return union
        if isinstance(e, s.Intersection):
            children = tuple(self._expr(rtype, c) for c in e.children)

            def intersection(ev: _Eval, rid: str, depth: int, negated: bool) -> Outcome:
                acc = None
                for child in children:
                    o = child(ev, rid, depth, negated)
                    if o is TRUE:
                        continue
                    if acc is None:
                        if o is FALSE:
                            return FALSE
                        acc = _All()
                    acc.add(o)
                    if acc.done:
                        break
                return TRUE if acc is None else acc.result()
            return intersection
        if isinstance(e, s.Exclusion):
            base_fn, subtracted_fn = self._expr(rtype, e.base), self._expr(rtype, e.subtracted)

            def exclusion(ev: _Eval, rid: str, depth: int, negated: bool) -> Outcome:
                base = base_fn(ev, rid, depth, negated)
                if base.value is Tri.FALSE:
                    return base
                return _and(base, _not(subtracted_fn(ev, rid, depth, True)))
            return exclusion
        if isinstance(e, s.Arrow):
            return self._arrow(rtype, e)
        if isinstance(e, s.Nil):
            def nil(ev: _Eval, rid: str, depth: int, negated: bool) -> Outcome:
                return FALSE
            return nil
        if isinstance(e, s.Self):
            def self_(ev: _Eval, rid: str, depth: int, negated: bool) -> Outcome:
                return TRUE if ev.srel is None and ev.st == rtype and ev.sid == rid else FALSE
            return self_
        if isinstance(e, s.Cleared):
            return self._cleared(rtype, e.classification)
        if isinstance(e, s.Upstream):
            return self._upstream(rtype, e.permission)
        raise AssertionError(f"unknown expression {e!r}")

    def _arrow(self, rtype: str, e: s.Arrow) -> Member:
        relation, target = e.relation, e.target
        # the subject types that have the target: any other grants nothing (and fails .all())
        having = frozenset(t for t in self.schema.definitions if self.schema.member(t, target) is not None)

        def hop(ev: _Eval, rid: str, edge: Edge, depth: int, negated: bool) -> Outcome:
            if edge[1] not in having or edge[2] == "*":
                return FALSE
            return _sub(ev, edge[1], edge[2], target, depth, negated)

        if e.mode is s.ArrowMode.ANY:
            def any_(ev: _Eval, rid: str, depth: int, negated: bool) -> Outcome:
                acc = None
                for edge in ev.reader.edges(rtype, rid, relation):
                    if edge[4] is None and edge[6] is None:
                        o = hop(ev, rid, edge, depth, negated)
                        if o is FALSE:
                            continue
                        if o is TRUE and acc is None:
                            return TRUE
                    else:
                        cav = _edge_outcome(ev, rtype, rid, edge)
                        o = cav if cav.value is Tri.FALSE else _and(cav, hop(ev, rid, edge, depth, negated))
                    if acc is None:
                        acc = _Any()
                    acc.add(o)
                    if acc.done:
                        break
                return FALSE if acc is None else acc.result()
            return any_

        # all(), as SpiceDB: at least one relationship, and for every one (whatever its caveat says) both its
        # caveat and the target hold. A relationship whose caveat is false makes all() false.
        def all_(ev: _Eval, rid: str, depth: int, negated: bool) -> Outcome:
            edges = ev.reader.edges(rtype, rid, relation)
            if not edges:
                return FALSE
            acc = None
            for edge in edges:
                if edge[4] is None and edge[6] is None:
                    o = hop(ev, rid, edge, depth, negated)
                    if o is TRUE:
                        continue
                    if acc is None:
                        if o is FALSE:
                            return FALSE
                        acc = _All()
                    acc.add(o)
                    if acc.done:
                        break
                    continue
                cav = _edge_outcome(ev, rtype, rid, edge)
                if acc is None:
                    acc = _All()
                if cav.value is Tri.FALSE:
                    acc.add(cav)
                    break
                acc.add(_and(cav, hop(ev, rid, edge, depth, negated)))
                if acc.done:
                    break
            return TRUE if acc is None else acc.result()
        return all_

    def _cleared(self, rtype: str, classification: str | None) -> Member:
        """Headwater: the subject holds a clearance for every requirement of the resource's effective label."""
        def cleared(ev: _Eval, rid: str, depth: int, negated: bool) -> Outcome:
            every = _All()
            for name, values in ev.lineage.requirements(stored_object(rtype, rid), classification):
                some = _Any()
                for v in values:
                    some.add(_sub(ev, name, v, "cleared", depth, negated))
                    if some.done:
                        break
                every.add(some.result())
                if every.done:
                    break
            return every.result()
        return cleared

    def _upstream(self, rtype: str, permission: str) -> Member:
        """Headwater: the subject has ``permission`` on every upstream object whose type defines it."""
        schema = self.schema

        def upstream(ev: _Eval, rid: str, depth: int, negated: bool) -> Outcome:
            every = _All()
            for obj, _path in ev.lineage.upstream(stored_object(rtype, rid)):
                if schema.member(obj.type, permission) is None:
                    continue
                every.add(_sub(ev, obj.type, obj.id, permission, depth, negated))
                if every.done:
                    break
            return every.result()
        return upstream


_programs: dict[str, Program] = {}
_programs_lock = threading.Lock()
_MAX_PROGRAMS = 16


def program(schema: s.Schema) -> Program:
    """The compiled form of ``schema``, compiled once per schema digest and shared (the digest is the sha256 of
    the canonical text, so two schemas with one digest mean the same; a schema without one is not shared)."""
    found = _programs.get(schema.digest) if schema.digest else None
    if found is not None:
        return found
    compiled = Program(schema)
    if schema.digest:
        with _programs_lock:
            if len(_programs) >= _MAX_PROGRAMS:
                _programs.clear()
            _programs[schema.digest] = compiled
    return compiled


def evaluate(schema: s.Schema, reader: Reader, resource_type: str, resource_id: str, name: str,
             subject_type: str, subject_id: str, subject_relation: str | None, *, max_depth: int,
             context: Mapping[str, Any], context_key: str, lineage: Lineage, cache: SharedCache | None,
             memo: dict[Hashable, Outcome] | None, now: float) -> Outcome:
    """Whether the subject has ``name`` on the resource, against ``reader`` (one snapshot): the outcome
    LocalChecker would give, with sub-problems shared through ``memo`` and ``cache`` under
    ``check_key((schema.digest, reader.revision, context_key), ...)``."""
    ev = _Eval(program(schema), reader, context, lineage, cache, memo, now,
               (schema.digest, reader.revision, context_key), subject_type, subject_id, subject_relation)
    try:
        return _sub(ev, resource_type, resource_id, name, max_depth + 1, False)
    except RecursionError:
        raise stack_exhausted(max_depth) from None


def stack_exhausted(max_depth: int) -> MaxDepthExceededError:
    """The error for a check (or an expand or explanation) that nested deeper than Python's stack allows
    before reaching ``max_depth`` (a configured limit far above SpiceDB's 50): a clear error, never a crash.
    Nothing was cached from the unfinished evaluation except finished sub-problems, which stay true."""
    return MaxDepthExceededError(
        f"the evaluation nested deeper than this process's stack allows (Python's recursion limit is "
        f"{sys.getrecursionlimit()}) before reaching max_depth {max_depth}; lower max_depth")
