"""Budget: how much work one request may do, and until when (cooperative cancellation).

Every request runs under one :class:`Budget`: a number of work units
(``max_work_per_request``: one unit per sub-problem the evaluator computes,
per relationship row a walk or a listing reads), an optional deadline and an
optional "has the caller gone?" test. Work that can grow with the data (the
evaluator, the lookups' candidate walks, lineage walks, expand, streams and
exports, audit queries) spends from the budget as it goes, and the budget
checks its deadline and the caller at least every :data:`STEP` units, so a
request whose deadline passes or whose caller cancels stops within a few
milliseconds and frees its worker:

- over budget: :class:`~.errors.WorkLimitExceededError` (RESOURCE_EXHAUSTED);
- past the deadline: :class:`~.errors.DeadlineExceededError` (DEADLINE_EXCEEDED);
- cancelled: :class:`~.errors.RequestCancelledError` (CANCELLED).

The budget of the request being served is a context variable: the gRPC service
sets it from the call's deadline and cancellation; an embedding program sets it
with :func:`limits` (or gets the engine's default, with no deadline). Reading it
costs one context-variable lookup per request.

Example::

    >>> from headwater.engine import Engine, MemoryStore
    >>> from headwater.engine.errors import WorkLimitExceededError
    >>> engine = Engine(MemoryStore())
    >>> _ = engine.write_schema("definition user {}\\ndefinition doc {\\n relation parent: doc\\n"
    ...                         " relation viewer: user\\n permission view = viewer + parent->view\\n}")
    >>> _ = engine.touch(*[f"doc:d{i}#parent@doc:d{i + 1}" for i in range(40)])
    >>> with limits(max_work=10):
    ...     engine.check("doc:d0", "view", "user:ann", consistency=None).allowed
    Traceback (most recent call last):
    ...
    headwater.engine.errors.WorkLimitExceededError: the request did more work than max_work_per_request allows (10 units: sub-problems evaluated and rows read)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from .errors import DeadlineExceededError, RequestCancelledError, WorkLimitExceededError

__all__ = ["STEP", "Budget", "current", "limits", "use"]

#: Work units lent at a time: the deadline and the caller are checked at least this often.
STEP = 256

_CURRENT: ContextVar[Budget | None] = ContextVar("headwater_budget", default=None)


class Budget:
    """What one request may still spend, until when, and a test of whether its caller is still there.

    :param max_work: work units in all (None: unlimited).
    :param deadline: ``time.monotonic()`` past which the request stops (None: none).
    :param cancelled: returns True once the request is to stop (the caller went away, the server stops).
    """

    __slots__ = ("cancelled", "deadline", "left", "max_work", "pause", "until_checkpoint")

    def __init__(self, *, max_work: int | None = None, deadline: float | None = None,
                 cancelled: Callable[[], bool] | None = None) -> None:
        self.max_work = max_work
        self.left = max_work if max_work is not None else 1 << 62
        self.deadline = deadline
        self.cancelled = cancelled
        self.pause: Callable[[], object] | None = None  # called at each checkpoint (a heavy call making way)
        self.until_checkpoint = 0  # units of work before the next checkpoint (the first work checks at once)

    def checkpoint(self) -> None:
        """Raise if the request must stop now: past its deadline (first: a caller's deadline also makes it
        look cancelled), or cancelled."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise DeadlineExceededError("the deadline passed before the request was done")
        if self.cancelled is not None and self.cancelled():
            raise RequestCancelledError("the request was cancelled")
        if self.pause is not None:
            self.pause()

    def lend(self) -> int:
        """Up to :data:`STEP` units for a hot loop to count down itself (return what is left with :meth:`repay`);
        checks the deadline and the caller first when :data:`STEP` units were used since the last check."""
        if self.until_checkpoint <= 0:
            self.checkpoint()
            self.until_checkpoint = STEP
        if self.left <= 0:
            raise self._over()
        n = STEP if self.left > STEP else self.left
        self.left -= n
        self.until_checkpoint -= n
        return n

    def repay(self, units: int) -> None:
        """Give back units lent and not spent."""
        if units > 0:
            self.left += units
            self.until_checkpoint += units

    def spend(self, units: int) -> None:
        """Spend ``units`` (a read of that many rows, one step of a walk); checks the deadline and the caller
        each time :data:`STEP` more units have been used."""
        self.left -= units
        if self.left < 0:
            raise self._over()
        self.until_checkpoint -= units
        if self.until_checkpoint <= 0:
            self.checkpoint()
            self.until_checkpoint = STEP

    def _over(self) -> WorkLimitExceededError:
        return WorkLimitExceededError(
            f"the request did more work than max_work_per_request allows ({self.max_work} units: sub-problems "
            "evaluated and rows read)", limit=self.max_work)


def current(default_max_work: int | None) -> Budget:
    """The budget of the request being served, or a fresh one of ``default_max_work`` units without a deadline."""
    budget = _CURRENT.get()
    return budget if budget is not None else Budget(max_work=default_max_work)


@contextmanager
def limits(*, max_work: int | None = None, timeout: float | None = None,
           cancelled: Callable[[], bool] | None = None) -> Iterator[Budget]:
    """Run the engine calls inside the ``with`` block under one budget, shared by all of them: ``max_work``
    units in all (None: no work limit, instead of the engine's ``max_work_per_request`` per call), stop
    ``timeout`` seconds from now, and when ``cancelled()`` turns True. A nested block replaces the outer
    budget for its duration. The gRPC service runs every call in such a block."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with use(Budget(max_work=max_work, deadline=deadline, cancelled=cancelled)) as budget:
        yield budget


@contextmanager
def use(budget: Budget) -> Iterator[Budget]:
    """Run the engine calls inside the ``with`` block under ``budget`` (the service: one per call, set around
    each step of a stream)."""
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)
