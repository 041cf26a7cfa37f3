"""The cache chain, assembled here and nowhere else (as OpenFGA's ``internal/graph/builder.go`` does).

Every sub-problem of a check (a computed relation, an arrow hop, a subject set,
a clearance) re-enters through the head of the chain::

    depth limit → memo (this request) → shared check cache (this engine) → evaluator (Program.enter)

so the caches see sub-problems too. Only definite answers are remembered: never
errors, never a path-dependent (cycle-cut) outcome; the shared cache drops an
outcome past its ``valid_until``. A request's memo holds what it computed for
the items of one bulk check or lookup (and, without a shared cache, for one
check). Keys come from :mod:`.keys`.

A check asked as text at the recent head is first looked up under the text itself
(:func:`asked_answer`, the warm path: one probe, no parsing); a check computed in
full is remembered under its text too (:func:`remember_asked`).

:class:`Caches` builds every cache the engine keeps from its configuration, each
the one :class:`~.cache.Cache` implementation with its own statistics.

Example::

    >>> from headwater.engine.evaluator import Evaluation
    >>> calls = []
    >>> def enter(ev, rtype, rid, name, depth, negated):
    ...     calls.append(name)
    ...     return TRUE
    >>> resolve = resolver(enter, memo={}, cache=None)
    >>> class Ev:  # what a resolver reads of an Evaluation
    ...     scope, now = ("d", 1, "", "user", "tom", ""), 0.0
    ...     stack = []
    >>> resolve(Ev, "doc", "1", "view", 5, False) is resolve(Ev, "doc", "1", "view", 5, False) is TRUE
    True
    >>> calls
    ['view']
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import keys
from .cache import Cache
from .outcome import FALSE, TRUE, Outcome

from .evaluator import too_deep

if TYPE_CHECKING:
    from .config import Config
    from .evaluator import Evaluation, Resolve

__all__ = ["Caches", "asked_answer", "remember_asked", "resolver"]


def resolver(enter: Resolve, *, memo: dict[Hashable, Outcome] | None, cache: Cache | None) -> Resolve:
    """The head of the chain for one request: the depth limit, then ``memo`` (if any), then ``cache`` (if any),
    then ``enter`` one step deeper.

    Each variant is one flat function: a check is thousands of sub-problems, each a few Python frames deep per
    level of the data, and a frame more per level costs more than its call (CPython 3.11 grows the frame stack
    in 16 KiB chunks, mapped and unmapped as a deep check crosses their boundaries). For the same reason the
    sub-problem key is spelled here as :func:`.keys.subproblem` lays it out (``tests/engine/test_cache.py`` holds the
    two equal)."""
    if memo is None and cache is None:
        def evaluated(ev: Evaluation, rtype: str, rid: str, name: str, depth: int, negated: bool) -> Outcome:
            if depth <= 1 and ev.stack:
                raise too_deep(ev)
            return enter(ev, rtype, rid, name, depth - 1, negated)
        return evaluated  # explanations: every step is evaluated (and traced)

    if cache is None:
        remembered = memo.get  # type: ignore[union-attr]

        def memoized(ev: Evaluation, rtype: str, rid: str, name: str, depth: int, negated: bool) -> Outcome:
            if depth <= 1 and ev.stack:
                raise too_deep(ev)
            key = (ev.scope, rtype, rid, name)  # keys.subproblem
            hit = remembered(key)
            if hit is not None:
                return hit
            outcome = enter(ev, rtype, rid, name, depth - 1, negated)
            if not outcome.cut:
                memo[key] = outcome  # type: ignore[index]
            return outcome
        return memoized

    probe, put = cache.get, cache.put
    if memo is None:
        def cached(ev: Evaluation, rtype: str, rid: str, name: str, depth: int, negated: bool) -> Outcome:
            if depth <= 1 and ev.stack:
                raise too_deep(ev)
            key = (ev.scope, rtype, rid, name)  # keys.subproblem
            hit = probe(key, ev.now)
            if hit is not None:
                return hit
            outcome = enter(ev, rtype, rid, name, depth - 1, negated)
            if not outcome.cut:
                put(key, outcome)
            return outcome
        return cached

    remembered = memo.get

    def memoized_and_cached(ev: Evaluation, rtype: str, rid: str, name: str, depth: int,
                            negated: bool) -> Outcome:
        if depth <= 1 and ev.stack:
            raise too_deep(ev)
        key = (ev.scope, rtype, rid, name)  # keys.subproblem
        hit = remembered(key)
        if hit is not None:
            return hit
        hit = probe(key, ev.now)
        if hit is not None:
            memo[key] = hit
            return hit
        outcome = enter(ev, rtype, rid, name, depth - 1, negated)
        if not outcome.cut:
            memo[key] = outcome
            put(key, outcome)
        return outcome
    return memoized_and_cached


def asked_answer(cache: Cache, digest: str, revision: int, resource: str, permission: str, subject: str,
                 now: float | None) -> Outcome | None:
    """The warm path: the cached outcome of a check asked exactly so (as text, without context) at
    ``revision``, or None."""
    found: Outcome | None = cache.get(keys.asked_check(digest, revision, resource, permission, subject), now)
    return found


def remember_asked(cache: Cache, digest: str, revision: int, resource: str, permission: str, subject: str,
                   outcome: Outcome) -> None:
    """Remember a computed top-level outcome under the text it was asked with too (see :func:`asked_answer`)."""
    if not outcome.cut:
        cache.put(keys.asked_check(digest, revision, resource, permission, subject), outcome)


@dataclass(frozen=True, slots=True)
class Caches:
    """Every cache an engine keeps, built from its configuration in one place."""

    checks: Cache | None  # outcomes of checks and of their sub-problems; None: off
    lineage: Cache | None  # effective labels and upstream sets, per revision; None: off
    schemas: Cache  # compiled schemas, by digest
    schema_at: Cache  # the stored schema in force at each revision
    listings: Cache  # the candidates of a lookup listing, for its next pages

    @classmethod
    def build(cls, config: Config) -> Caches:
        size = config.cache.size
        return cls(
            checks=Cache("checks", size, expiring=True) if size else None,
            lineage=Cache("lineage", config.cache.lineage_size) if size else None,
            schemas=Cache("schemas", config.cache.schema_size),
            schema_at=Cache("schema_at", config.cache.revision_size),
            listings=Cache("listings", config.cache.listing_size),
        )

    def all(self) -> list[Cache]:
        """The caches that are on."""
        return [c for c in (self.checks, self.lineage, self.schemas, self.schema_at, self.listings) if c is not None]

    def stats(self) -> dict[str, dict[str, Any]]:
        """Each cache's statistics, by name."""
        return {c.name: c.stats() for c in self.all()}


_ = (FALSE, TRUE)  # the outcomes a resolver returns as they are
