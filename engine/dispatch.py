"""Check requests, their three-valued outcomes, and how checkers are chained.

Every sub-problem of a check (a computed relation, an arrow hop, a subject set)
becomes a child :class:`CheckRequest` that re-enters through the head of the
checker chain, so the cache sees sub-problems too. :func:`build_checker` wires
the chain for one request (one snapshot)::

    local = LocalChecker(schema, reader, ...)
    head = CachingChecker(local, shared_cache, ...)   # optional
    local.dispatch = head.check

Outcomes are three-valued (Kleene logic): ``TRUE``, ``FALSE`` or ``UNKNOWN``
(a caveat lacked context; ``missing`` names the parameters). Each outcome also
says until when it stays valid (the earliest expiration it read) and whether it
depended on cutting a cycle (then it is path-dependent and never cached).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .relationships import ObjectRef, SubjectRef

__all__ = ["CheckRequest", "Checker", "Outcome", "Tri"]


class Tri(enum.IntEnum):
    """A three-valued truth value (ordered FALSE < UNKNOWN < TRUE)."""

    FALSE = 0
    UNKNOWN = 1
    TRUE = 2


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """Does ``subject`` have ``name`` (a relation or permission) on ``resource``?"""

    resource: ObjectRef
    name: str
    subject: SubjectRef
    depth_remaining: int
    # (resource, name) pairs on the path from the top-level request, with whether
    # each was entered on the subtracted side of an exclusion (for cycle handling).
    path: tuple[tuple[ObjectRef, str, bool], ...] = field(default=(), compare=False)
    negated: bool = field(default=False, compare=False)  # entered on the subtracted side of an exclusion


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to one :class:`CheckRequest`."""

    value: Tri
    missing: frozenset[str] = frozenset()  # caveat parameters that were needed but absent (UNKNOWN only)
    valid_until: float | None = None  # epoch seconds of the earliest expiration read; None: no expiry
    cut: bool = False  # depended on cutting a data cycle: path-dependent, not cacheable
    # For explanations: the relationships (as text) that made the outcome TRUE, when known.
    via: tuple[str, ...] = ()


FALSE = Outcome(Tri.FALSE)
TRUE = Outcome(Tri.TRUE)


class Checker(Protocol):
    """Anything that answers check requests (local evaluation, cache, later: remote dispatch)."""

    def check(self, request: CheckRequest) -> Outcome: ...


Dispatch = Callable[[CheckRequest], Outcome]


def earliest(a: float | None, b: float | None) -> float | None:
    """The earlier of two validity deadlines (None means no deadline)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if a < b else b
