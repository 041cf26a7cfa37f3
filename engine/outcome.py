"""Three-valued check outcomes and the combinators that join them.

Every sub-problem of a check answers with an :class:`Outcome`: ``TRUE``,
``FALSE`` or ``UNKNOWN`` (a caveat lacked context; ``missing`` names the
parameters), combined with Kleene logic. An outcome also says until when it
stays valid (the earliest expiration it read) and whether it depended on
cutting a cycle in the data (then it is path-dependent and never cached).

The two plain outcomes are the shared values :data:`TRUE` and :data:`FALSE`, so
the evaluator's fast paths compare by identity; every combinator returns one of
them whenever the result carries nothing else.

Example::

    >>> both(TRUE, Outcome(Tri.UNKNOWN, frozenset({"ip"}))).missing
    frozenset({'ip'})
    >>> negate(FALSE) is TRUE
    True
    >>> acc = AnyOf()
    >>> acc.add(FALSE); acc.add(TRUE)
    >>> acc.done, acc.result() is TRUE
    (True, True)
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FALSE", "TRUE", "AllOf", "AnyOf", "Outcome", "Tri", "both", "earliest", "failed", "negate"]


class Tri(enum.IntEnum):
    """A three-valued truth value (ordered FALSE < UNKNOWN < TRUE)."""

    FALSE = 0
    UNKNOWN = 1
    TRUE = 2


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to one sub-problem of a check."""

    value: Tri
    missing: frozenset[str] = frozenset()  # caveat parameters that were needed but absent (UNKNOWN only)
    valid_until: float | None = None  # epoch seconds of the earliest expiration read; None: no expiry
    cut: bool = False  # depended on cutting a data cycle (or holds an error): path-dependent, not cacheable
    #: the sub-problem has no answer (a caveat failed, a cycle through an exclusion): value UNKNOWN, cut True.
    #: A union that another branch grants, or an intersection or exclusion that another side denies, does not
    #: depend on it and absorbs it; otherwise it reaches the top and the check raises it.
    error: Exception | None = None


FALSE = Outcome(Tri.FALSE)
TRUE = Outcome(Tri.TRUE)


def earliest(a: float | None, b: float | None) -> float | None:
    """The earlier of two validity deadlines (None means no deadline)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if a < b else b


class _Gathering:
    """Outcomes being accumulated: short-circuits (``done``) on the absorbing value; empty is the neutral one."""

    __slots__ = ("value", "missing", "until", "cut", "done", "error")
    _neutral: Outcome
    _absorbing: Outcome
    _merge: Callable[[Tri, Tri], Tri]  # how UNKNOWN joins the value so far

    def __init__(self) -> None:
        self.value = self._neutral.value
        self.missing: set[str] = set()
        self.until: float | None = None
        self.cut = False
        self.done = False
        self.error: Exception | None = None

    def add(self, o: Outcome) -> None:
        if o is self._neutral:  # the common outcomes first: nothing to merge
            return
        absorbing = self._absorbing
        if o is absorbing:
            self.value = absorbing.value
            self.done = True
            return
        self.until = earliest(self.until, o.valid_until)
        self.cut = self.cut or o.cut
        if o.value is absorbing.value:
            self.value = o.value
            self.done = True
        elif o.error is not None:
            if self.error is None:
                self.error = o.error  # the first, unless a later outcome decides without it
        elif o.value is Tri.UNKNOWN:
            self.value = self._merge(self.value, Tri.UNKNOWN)
            self.missing |= o.missing

    def result(self) -> Outcome:
        if self.error is not None and not self.done:
            return failed(self.error, self.until)
        return _result(self.value, self.missing, self.until, self.cut)


class AnyOf(_Gathering):
    """A union being accumulated: short-circuits (``done``) on TRUE; empty means FALSE."""

    __slots__ = ()
    _neutral, _absorbing, _merge = FALSE, TRUE, max


class AllOf(_Gathering):
    """An intersection being accumulated: short-circuits (``done``) on FALSE; empty means TRUE."""

    __slots__ = ()
    _neutral, _absorbing, _merge = TRUE, FALSE, min


def _result(value: Tri, missing: set[str], until: float | None, cut: bool) -> Outcome:
    if not cut and until is None:
        if value is Tri.TRUE:
            return TRUE
        if value is Tri.FALSE:
            return FALSE
    return Outcome(value, frozenset(missing) if value is Tri.UNKNOWN else frozenset(), until, cut)


def failed(error: Exception, valid_until: float | None = None) -> Outcome:
    """The outcome of a sub-problem that has no answer: ``error`` is raised if the check depends on it."""
    return Outcome(Tri.UNKNOWN, frozenset(), valid_until, True, error)


def both(a: Outcome, b: Outcome) -> Outcome:
    """``a`` and ``b`` (a relationship's caveat and what follows it, for instance)."""
    if a is TRUE:
        return b
    if b is TRUE:
        return a
    acc = AllOf()
    acc.add(a)
    acc.add(b)
    return acc.result()


def negate(o: Outcome) -> Outcome:
    """Not ``o`` (the subtracted side of an exclusion): UNKNOWN stays UNKNOWN."""
    if o is TRUE:
        return FALSE
    if o is FALSE:
        return TRUE
    if o.error is not None:
        return o
    value = {Tri.TRUE: Tri.FALSE, Tri.FALSE: Tri.TRUE, Tri.UNKNOWN: Tri.UNKNOWN}[o.value]
    return Outcome(value, o.missing if value is Tri.UNKNOWN else frozenset(), o.valid_until, o.cut)
