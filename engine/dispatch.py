"""Check requests, their three-valued outcomes, and how the reference checkers are chained.

In the reference evaluator (engine/check.py) every sub-problem of a check (a
computed relation, an arrow hop, a subject set) becomes a child
:class:`CheckRequest` that re-enters through the head of the checker chain, so
the cache sees sub-problems too. The chain for one request (one snapshot)::

    local = LocalChecker(schema, reader, ...)
    head = CachingChecker(local.check, shared_cache, ...)   # optional
    local.dispatch = head.check

The compiled evaluator the engine runs (engine/compiled.py) makes the same
sub-problems as plain calls, with the same cache keys, and returns these outcomes.

Outcomes are three-valued (Kleene logic): ``TRUE``, ``FALSE`` or ``UNKNOWN``
(a caveat lacked context; ``missing`` names the parameters). Each outcome also
says until when it stays valid (the earliest expiration it read) and whether it
depended on cutting a cycle (then it is path-dependent and never cached).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .relationships import ObjectRef, SubjectRef

__all__ = ["CheckRequest", "Checker", "Outcome", "Tri"]


class Tri(enum.IntEnum):
    """A three-valued truth value (ordered FALSE < UNKNOWN < TRUE)."""

    FALSE = 0
    UNKNOWN = 1
    TRUE = 2


class CheckRequest:
    """Does ``subject`` have ``name`` (a relation or permission) on ``resource``?

    A plain slotted class rather than a frozen dataclass: a check creates one per
    sub-problem, and a frozen dataclass's ``__init__`` costs four times as much.
    Treat it as immutable. Equality and hash cover resource, name, subject and
    depth (not the path, which only serves cycle detection and error messages).

    Example::

        >>> from headwater.engine.relationships import ObjectRef, SubjectRef
        >>> CheckRequest(ObjectRef("doc", "1"), "view", SubjectRef("user", "tom"), 50)
        CheckRequest(resource=ObjectRef(type='doc', id='1'), name='view', subject=SubjectRef(type='user', id='tom', relation=None), depth_remaining=50)
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
