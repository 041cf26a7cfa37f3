"""The reference evaluator, kept as a test oracle: the semantics of a check, one branch per expression form.

This is the tree-walking evaluator Headwater ran before the compiled one
(``engine/evaluator.py``) took its place; it reads like the language, and a
property test holds the engine's one evaluator to it outcome for outcome, error
for error and cache entry for cache entry
(``tests/properties/test_compiled_agreement.py``). It is not production code.

Every sub-problem goes back through ``dispatch`` (the head of its own checker
chain, :class:`CachingChecker`, which keys entries with ``headwater.engine.keys``
so that both evaluators fill a cache with the same entries).

Example::

    >>> from headwater.engine.relationships import ObjectRef, SubjectRef
    >>> CheckRequest(ObjectRef("doc", "1"), "view", SubjectRef("user", "tom"), 50).depth_remaining
    50
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

from headwater.dsl import schema as s
from headwater.engine import keys
from headwater.engine.cache import Cache
from headwater.engine.caveats import caveat_verdict
from headwater.engine.errors import CaveatEvaluationError, MaxDepthExceededError, UnknownPermissionError
from headwater.engine.lineage import Lineage
from headwater.engine.outcome import FALSE, TRUE, Outcome, Tri, earliest
from headwater.engine.relationships import ObjectRef, Relationship, SubjectRef, stored_object
from headwater.engine.store import Reader, Row

Dispatch = Callable[["CheckRequest"], Outcome]


def _found(row: Row | None) -> list[Relationship]:
    return [] if row is None else [row.relationship()]


class CheckRequest:
    """Does ``subject`` have ``name`` (a relation or permission) on ``resource``?

    A plain slotted class rather than a frozen dataclass: a check creates one per
    sub-problem, and a frozen dataclass's ``__init__`` costs four times as much.
    Treat it as immutable. Equality and hash cover resource, name, subject and
    depth (not the path, which only serves cycle detection and error messages).

    Example::

        >>> CheckRequest(ObjectRef("doc", "1"), "view", SubjectRef("user", "tom"), 50).name
        'view'
    """

    __slots__ = ("resource", "name", "subject", "depth_remaining", "path", "negated")

    resource: ObjectRef
    name: str
    subject: SubjectRef
    depth_remaining: int
    # (resource, name) pairs on the path from the top-level request, with whether
    # each was entered on the subtracted side of an exclusion (for cycle handling).
    path: tuple[tuple[ObjectRef, str, bool], ...]
    negated: bool  # entered on the subtracted side of an exclusion

    def __init__(self, resource: ObjectRef, name: str, subject: SubjectRef, depth_remaining: int,
                 path: tuple[tuple[ObjectRef, str, bool], ...] = (), negated: bool = False) -> None:
        self.resource = resource
        self.name = name
        self.subject = subject
        self.depth_remaining = depth_remaining
        self.path = path
        self.negated = negated

    def _key(self) -> tuple[ObjectRef, str, SubjectRef, int]:
        return (self.resource, self.name, self.subject, self.depth_remaining)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CheckRequest):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"CheckRequest(resource={self.resource!r}, name={self.name!r}, subject={self.subject!r}, "
                f"depth_remaining={self.depth_remaining!r})")



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
            return _failure(MaxDepthExceededError(
                "cycle through an exclusion has no defined answer: " + _path_text(req.path[i:], req)))
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
            for r in map(Row.relationship, self.reader.subject_sets(res.type, res.id, req.name)):
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
        for r in _found(self.reader.relationship(res.type, res.id, name, subj.type, subj.id, subj.relation or "")):
            acc.add(self._caveat(r))
        if not acc.done and subj.relation is None and subj.type in rel.wildcard_types and subj.id != "*":
            for r in _found(self.reader.relationship(res.type, res.id, name, subj.type, "*", "")):
                acc.add(self._caveat(r))

    def _caveat(self, r: Relationship) -> Outcome:
        """The relationship as an outcome: TRUE, or its caveat's verdict; valid until it expires."""
        until = r.expiration.timestamp() if r.expiration is not None else None
        if r.caveat is None:
            return Outcome(Tri.TRUE, valid_until=until) if until is not None else TRUE
        try:
            value, missing = caveat_verdict(self.schema, self.context, Row.of(r))
        except CaveatEvaluationError as exc:
            return _failure(exc, until)
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
        rels: Iterable[Relationship] = map(Row.relationship, self.reader.relationships(req.resource.type,
                                                                                       req.resource.id, e.relation))
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




class CachingChecker:
    """Answers from a shared cache (and a per-call memo), else asks ``inner`` and remembers."""

    def __init__(self, inner: Dispatch, cache: Cache | None, prefix: tuple[str, int, str], now: float,
                 memo: dict[Hashable, Outcome] | None = None) -> None:
        self.inner = inner
        self.cache = cache
        self.prefix = prefix  # (schema digest, revision, context key)
        self.now = now
        self.memo = memo

    def check(self, req: CheckRequest) -> Outcome:
        res, subj = req.resource, req.subject
        scope = keys.check_scope(*self.prefix, subj.type, subj.id, subj.relation or "")
        key = keys.subproblem(scope, res.type, res.id, req.name)
        memo = self.memo
        if memo is not None:
            hit = memo.get(key)
            if hit is not None:
                return hit
        cache = self.cache
        if cache is not None:
            hit = cache.get(key, self.now)
            if hit is not None:
                if memo is not None:
                    memo[key] = hit
                return hit
        outcome = self.inner(req)
        if not outcome.cut:
            if memo is not None:
                memo[key] = outcome
            if cache is not None:
                cache.put(key, outcome)
        return outcome


# ---------------------------------------------------------------- three-valued combinators


class _Any:
    """Union accumulator with short-circuit on TRUE."""

    __slots__ = ("value", "missing", "until", "cut", "done", "errors")

    def __init__(self) -> None:
        self.value = Tri.FALSE
        self.missing: set[str] = set()
        self.until: float | None = None
        self.cut = False
        self.done = False
        self.errors: list[Exception] = []

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
        elif o.error is not None:
            self.errors.append(o.error)
        elif o.value is Tri.UNKNOWN:
            self.value = max(self.value, Tri.UNKNOWN)
            self.missing |= o.missing

    def result(self) -> Outcome:
        if self.value is not Tri.TRUE and self.errors:  # the answer depends on a branch without one
            return _failure(self.errors[0], self.until)
        if not self.cut and self.until is None:
            if self.value is Tri.TRUE:
                return TRUE
            if self.value is Tri.FALSE:
                return FALSE
        missing = frozenset(self.missing) if self.value is Tri.UNKNOWN else frozenset()
        return Outcome(self.value, missing, self.until, self.cut)


class _All:
    """Intersection accumulator with short-circuit on FALSE; empty means TRUE."""

    __slots__ = ("value", "missing", "until", "cut", "done", "errors")

    def __init__(self) -> None:
        self.value = Tri.TRUE
        self.missing: set[str] = set()
        self.until: float | None = None
        self.cut = False
        self.done = False
        self.errors: list[Exception] = []

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
        elif o.error is not None:
            self.errors.append(o.error)
        elif o.value is Tri.UNKNOWN:
            self.value = min(self.value, Tri.UNKNOWN)
            self.missing |= o.missing

    def result(self) -> Outcome:
        if self.value is not Tri.FALSE and self.errors:  # the answer depends on a branch without one
            return _failure(self.errors[0], self.until)
        if not self.cut and self.until is None:
            if self.value is Tri.TRUE:
                return TRUE
            if self.value is Tri.FALSE:
                return FALSE
        missing = frozenset(self.missing) if self.value is Tri.UNKNOWN else frozenset()
        return Outcome(self.value, missing, self.until, self.cut)


def _and(a: Outcome, b: Outcome) -> Outcome:
    if a is TRUE:
        return b
    if b is TRUE:
        return a
    acc = _All()
    acc.add(a)
    acc.add(b)
    return acc.result()


def _failure(error: Exception, until: float | None = None) -> Outcome:
    """A sub-problem without an answer: raised by :func:`answer` if the check depends on it."""
    return Outcome(Tri.UNKNOWN, frozenset(), until, True, error)


def answer(outcome: Outcome) -> Outcome:
    """The top-level outcome of a check, or its error raised."""
    if outcome.error is not None:
        raise outcome.error
    return outcome


def _not(o: Outcome) -> Outcome:
    if o is TRUE:
        return FALSE
    if o is FALSE:
        return TRUE
    if o.error is not None:
        return o
    value = {Tri.TRUE: Tri.FALSE, Tri.FALSE: Tri.TRUE, Tri.UNKNOWN: Tri.UNKNOWN}[o.value]
    return Outcome(value, o.missing if value is Tri.UNKNOWN else frozenset(), o.valid_until, o.cut)


def _path_text(path: Iterable[tuple[ObjectRef, str, bool]], req: CheckRequest) -> str:
    steps = [f"{res}#{name}" for res, name, _ in path] + [f"{req.resource}#{req.name}"]
    return " -> ".join(steps)
