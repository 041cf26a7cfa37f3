"""LocalChecker: evaluates one check request against the schema and one store snapshot.

This is the reference evaluator: explanations trace it (engine/explain.py), and
the evaluator the engine runs, ``engine/compiled.py``, is held to it outcome for
outcome by tests/properties/test_compiled_agreement.py. Change a rule here and
there together.

It reads like the language: one branch per expression form (union,
intersection, exclusion, computed relation, arrow, ``nil``, ``self``) and the
direct relation check. Every sub-problem goes back through ``dispatch`` (the head
of the checker chain, usually the cache).

Semantics, all matching SpiceDB:

- A relation grants through a relationship to the subject itself, to the wildcard
  ``type:*`` of the subject's type (when the relation allows it), or to a subject
  set ``T:id#r`` whose members include the subject. A subject set is a member of
  itself (``group:g#member`` has ``member`` on ``group:g``).
- ``rel->p`` / ``rel.any(p)``: some subject object of ``rel`` has ``p``; subject
  types without ``p`` grant nothing. ``rel.all(p)``: at least one relationship, and
  for every one both its caveat and ``p`` on its subject hold (a subject type
  without ``p`` fails it; so does a relationship whose caveat is false).
- Caveats: context stored on the relationship wins over the request's; missing
  parameters make the relationship UNKNOWN, and the outcome is combined with
  three-valued logic. Expired relationships are invisible (the reader hides them).
- Cycles in the data: a request that meets itself on its own path is cut and
  counts as FALSE (the least fixed point: a cycle of unions and intersections can
  never grant by itself); such outcomes are path-dependent and not cached. A cycle
  that passes through the subtracted side of an exclusion has no well-defined
  answer and raises :class:`MaxDepthExceededError`, as does exceeding the depth
  limit. Both name the path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..dsl import schema as s
from .dispatch import FALSE, TRUE, CheckRequest, Dispatch, Outcome, Tri, earliest
from .errors import CaveatEvaluationError, MaxDepthExceededError, UnknownPermissionError
from .lineage import Lineage
from .relationships import ObjectRef, Relationship, SubjectRef, stored_object
from .store import Reader

__all__ = ["LocalChecker", "caveat_verdict"]


class LocalChecker:
    """Evaluates requests against ``schema`` and ``reader``; sub-problems go to ``dispatch``."""

    #: Answer a computed relation that has no subject sets in place rather than as a sub-problem (a tracing
    #: subclass that shows every relation as its own node turns this off).
    inline_leaves = True

    def __init__(self, schema: s.Schema, reader: Reader, *, context: Mapping[str, Any] | None = None,
                 lineage: Lineage | None = None) -> None:
        self.schema = schema
        self.reader = reader
        self.context: Mapping[str, Any] = context or {}
        self.lineage = lineage if lineage is not None else Lineage(schema, reader)
        self._members = schema.members
        self.dispatch: Dispatch = self.check  # replaced by build_checker with the chain's head

    # ------------------------------------------------------------ entry

    def check(self, req: CheckRequest) -> Outcome:
        resource, name, subj = req.resource, req.name, req.subject
        member = self._members.get((resource.type, name))
        if member is None:
            if resource.type not in self.schema.definitions:
                raise UnknownPermissionError(f"object definition `{resource.type}` not found")
            raise UnknownPermissionError(
                f"relation/permission `{name}` not found under definition `{resource.type}`")
        if subj.relation == name and subj.id == resource.id and subj.type == resource.type:
            return TRUE  # a subject set is a member of itself (`group:g#member` has `member` on `group:g`)
        for i, (res, step, _) in enumerate(req.path):
            if step == name and res == resource:
                return self._cut(req, i)
        if type(member) is s.Relation:
            return self._relation(req, member)
        return self._expr(req, member.expr, False)

    def _cut(self, req: CheckRequest, i: int) -> Outcome:
        cycle = list(req.path[i + 1:]) + [(req.resource, req.name, req.negated)]
        if any(neg for _, _, neg in cycle):
            raise MaxDepthExceededError(
                "cycle through an exclusion has no defined answer: " + _path_text(req.path[i:], req))
        return Outcome(Tri.FALSE, cut=True)

    def _child(self, req: CheckRequest, resource: ObjectRef, name: str, negated: bool) -> Outcome:
        if req.depth_remaining <= 1:
            raise MaxDepthExceededError(
                f"maximum depth exceeded checking {req.subject} on {req.resource}#{req.name}: "
                + _path_text(req.path, req))
        child = CheckRequest(resource, name, req.subject, req.depth_remaining - 1,
                             req.path + ((req.resource, req.name, req.negated),), negated)
        return self.dispatch(child)

    # ------------------------------------------------------------ relations

    def _relation(self, req: CheckRequest, rel: s.Relation) -> Outcome:
        res, subj = req.resource, req.subject
        acc = _Any()
        self._direct(acc, res, req.name, subj, rel)
        if acc.done:
            return acc.result()
        if rel.has_subject_sets:
            for r in self.reader.subject_sets(res, req.name):
                sr = r.subject
                if (sr.type == subj.type and sr.id == subj.id and sr.relation == subj.relation):
                    continue
                cav = self._caveat(r)
                if cav.value is Tri.FALSE:
                    acc.add(cav)
                    continue
                member = self._child(req, stored_object(sr.type, sr.id), sr.relation, False)
                acc.add(_and(cav, member))
                if acc.done:
                    break
        return acc.result()

    def _direct(self, acc: _Any, res: ObjectRef, name: str, subj: SubjectRef, rel: s.Relation) -> None:
        """Add the relationships naming ``subj`` itself, then (if none granted) the wildcard ``type:*``."""
        for r in self.reader.lookup(res, name, subj.type, subj.id, subj.relation):
            acc.add(self._caveat(r))
        if not acc.done and subj.relation is None and subj.type in rel.wildcard_types and subj.id != "*":
            for r in self.reader.lookup(res, name, subj.type, "*", None):
                acc.add(self._caveat(r))

    def _caveat(self, r: Relationship) -> Outcome:
        """The relationship as an outcome: TRUE, or its caveat's verdict; valid until it expires."""
        until = r.expiration.timestamp() if r.expiration is not None else None
        if r.caveat is None:
            return Outcome(Tri.TRUE, valid_until=until) if until is not None else TRUE
        value, missing = caveat_verdict(self.schema, self.context, r)
        return Outcome(value, missing, until)

    # ------------------------------------------------------------ expressions

    def _expr(self, req: CheckRequest, e: s.Expr, negated: bool) -> Outcome:
        if isinstance(e, s.Computed):
            if self.inline_leaves and req.depth_remaining > 1:
                # A relation without subject sets is one lookup in the snapshot: answered here, not as a
                # sub-problem (no request, no cache entry). It cannot recurse, so no cycle or depth can arise.
                res, subj = req.resource, req.subject
                rel = self._members.get((res.type, e.name))
                if type(rel) is s.Relation and not rel.has_subject_sets and not (
                        subj.relation == e.name and subj.id == res.id and subj.type == res.type):
                    acc = _Any()
                    self._direct(acc, res, e.name, subj, rel)
                    return acc.result()
            return self._child(req, req.resource, e.name, negated)
        if isinstance(e, s.Union):
            acc = _Any()
            for c in e.children:
                acc.add(self._expr(req, c, negated))
                if acc.done:
                    break
            return acc.result()
        if isinstance(e, s.Intersection):
            acc_all = _All()
            for c in e.children:
                acc_all.add(self._expr(req, c, negated))
                if acc_all.done:
                    break
            return acc_all.result()
        if isinstance(e, s.Exclusion):
            base = self._expr(req, e.base, negated)
            if base.value is Tri.FALSE:
                return base
            sub = self._expr(req, e.subtracted, True)
            return _and(base, _not(sub))
        if isinstance(e, s.Arrow):
            return self._arrow(req, e, negated)
        if isinstance(e, s.Nil):
            return FALSE
        if isinstance(e, s.Self):
            subj, res = req.subject, req.resource
            return TRUE if subj.relation is None and subj.type == res.type and subj.id == res.id else FALSE
        if isinstance(e, s.Cleared):
            return self._cleared(req, e.classification, negated)
        if isinstance(e, s.Upstream):
            return self._upstream(req, e.permission, negated)
        raise AssertionError(f"unknown expression {e!r}")

    def _cleared(self, req: CheckRequest, classification: str | None, negated: bool) -> Outcome:
        """Headwater: the subject holds a clearance for every requirement of the resource's effective label."""
        every = _All()
        for name, values in self.lineage.requirements(req.resource, classification):
            some = _Any()
            for v in values:
                some.add(self._child(req, ObjectRef(name, v), "cleared", negated))
                if some.done:
                    break
            every.add(some.result())
            if every.done:
                break
        return every.result()

    def _upstream(self, req: CheckRequest, permission: str, negated: bool) -> Outcome:
        """Headwater: the subject has ``permission`` on every upstream object whose type defines it."""
        every = _All()
        for obj, _path in self.lineage.upstream(req.resource):
            if self.schema.member(obj.type, permission) is None:
                continue
            every.add(self._child(req, obj, permission, negated))
            if every.done:
                break
        return every.result()

    def _arrow(self, req: CheckRequest, e: s.Arrow, negated: bool) -> Outcome:
        rels: Iterable[Relationship] = self.reader.subjects(req.resource, e.relation)
        if e.mode is s.ArrowMode.ANY:
            acc = _Any()
            for r in rels:
                cav = self._caveat(r)
                if cav.value is Tri.FALSE:
                    acc.add(cav)
                    continue
                target = self._target(req, r, e.target, negated)
                acc.add(_and(cav, target))
                if acc.done:
                    break
            return acc.result()
        # all(), as SpiceDB: at least one relationship, and for every one (whatever its caveat says) both its
        # caveat and the target hold. A relationship whose caveat is false makes all() false.
        every = _All()
        found = False
        for r in rels:
            found = True
            cav = self._caveat(r)
            if cav.value is Tri.FALSE:
                every.add(cav)
                break
            every.add(_and(cav, self._target(req, r, e.target, negated)))
            if every.done:
                break
        return every.result() if found else FALSE

    def _target(self, req: CheckRequest, r: Relationship, target: str, negated: bool) -> Outcome:
        sr = r.subject
        if self.schema.member(sr.type, target) is None or sr.id == "*":
            return FALSE  # the subject's type has no such relation/permission: grants nothing
        return self._child(req, stored_object(sr.type, sr.id), target, negated)


def caveat_verdict(schema: s.Schema, context: Mapping[str, Any], r: Relationship) -> tuple[Tri, frozenset[str]]:
    """Whether a caveated relationship holds under the request ``context`` (its stored context wins):
    TRUE, FALSE, or UNKNOWN with the missing parameters. The one place caveats are evaluated."""
    assert r.caveat is not None
    caveat = schema.caveats.get(r.caveat.name)
    if caveat is None or caveat.program is None:
        raise CaveatEvaluationError(f"caveat `{r.caveat.name}` on {r} is not defined in the schema")
    merged = dict(context)
    merged.update(r.caveat.context_dict())
    try:
        result = caveat.program.evaluate(merged)
    except Exception as exc:  # the CEL layer's errors: bad context values, runtime errors
        raise CaveatEvaluationError(f"evaluating caveat `{caveat.name}` of {r}: {exc}") from exc
    if result.value is None:
        return Tri.UNKNOWN, frozenset(result.missing)
    return (Tri.TRUE if result.value else Tri.FALSE), frozenset()


# ---------------------------------------------------------------- three-valued combinators


class _Any:
    """Union accumulator with short-circuit on TRUE."""

    __slots__ = ("value", "missing", "until", "cut", "done")

    def __init__(self) -> None:
        self.value = Tri.FALSE
        self.missing: set[str] = set()
        self.until: float | None = None
        self.cut = False
        self.done = False

    def add(self, o: Outcome) -> None:
        if o is FALSE:  # the common outcomes first: nothing to merge
            return
        if o is TRUE:
            self.value = Tri.TRUE
            self.done = True
            return
        self.until = earliest(self.until, o.valid_until)
        self.cut = self.cut or o.cut
        if o.value is Tri.TRUE:
            self.value = Tri.TRUE
            self.done = True
        elif o.value is Tri.UNKNOWN:
            self.value = max(self.value, Tri.UNKNOWN)
            self.missing |= o.missing

    def result(self) -> Outcome:
        if not self.cut and self.until is None:
            if self.value is Tri.TRUE:
                return TRUE
            if self.value is Tri.FALSE:
                return FALSE
        missing = frozenset(self.missing) if self.value is Tri.UNKNOWN else frozenset()
        return Outcome(self.value, missing, self.until, self.cut)


class _All:
    """Intersection accumulator with short-circuit on FALSE; empty means TRUE."""

    __slots__ = ("value", "missing", "until", "cut", "done")

    def __init__(self) -> None:
        self.value = Tri.TRUE
        self.missing: set[str] = set()
        self.until: float | None = None
        self.cut = False
        self.done = False

    def add(self, o: Outcome) -> None:
        if o is TRUE:  # the common outcomes first: nothing to merge
            return
        if o is FALSE:
            self.value = Tri.FALSE
            self.done = True
            return
        self.until = earliest(self.until, o.valid_until)
        self.cut = self.cut or o.cut
        if o.value is Tri.FALSE:
            self.value = Tri.FALSE
            self.done = True
        elif o.value is Tri.UNKNOWN:
            self.value = min(self.value, Tri.UNKNOWN)
            self.missing |= o.missing

    def result(self) -> Outcome:
        if not self.cut and self.until is None:
            if self.value is Tri.TRUE:
                return TRUE
            if self.value is Tri.FALSE:
                return FALSE
        missing = frozenset(self.missing) if self.value is Tri.UNKNOWN else frozenset()
        return Outcome(self.value, missing, self.until, self.cut)


def _and(a: Outcome, b: Outcome) -> Outcome:
    if a is TRUE and not b.via:
        return b
    if b is TRUE and not a.via:
        return a
    acc = _All()
    acc.add(a)
    acc.add(b)
    return acc.result()


def _or(a: Outcome, b: Outcome) -> Outcome:
    acc = _Any()
    acc.add(a)
    acc.add(b)
    return acc.result()


def _not(o: Outcome) -> Outcome:
    if o is TRUE:
        return FALSE
    if o is FALSE:
        return TRUE
    value = {Tri.TRUE: Tri.FALSE, Tri.FALSE: Tri.TRUE, Tri.UNKNOWN: Tri.UNKNOWN}[o.value]
    return Outcome(value, o.missing if value is Tri.UNKNOWN else frozenset(), o.valid_until, o.cut)


def _path_text(path: Iterable[tuple[ObjectRef, str, bool]], req: CheckRequest) -> str:
    steps = [f"{res}#{name}" for res, name, _ in path] + [f"{req.resource}#{req.name}"]
    return " -> ".join(steps)
