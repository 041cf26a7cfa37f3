"""Admission of heavy calls: lookups, expands, exports, listings and audit scans take turns.

A heavy call's work grows with the data, not with the request (a LookupResources
over a deep folder tree, an export of every relationship). Each holds a worker
thread while it runs, so twenty of them at once could hold every worker and stall
the checks that services wait on. The server therefore lets at most
``heavy_calls`` of them run at once (a setting, default 4); others wait for a turn
(while their deadline allows) as long as heavy calls then leave a quarter of the
workers (at least 2) to everything else; a further one is refused at once with
RESOURCE_EXHAUSTED, which a client retries later. So 4 of the default 16 workers
are always left to checks and writes.

Workers are threads of one Python process, so a heavy call also competes with the
checks for the interpreter lock, and a check that waits for the lock after each
SQL query would wait a switch interval (5 ms) behind every heavy call each time.
So a heavy call makes way: at each budget checkpoint (every 256 units of work,
a millisecond or two) while a light call is running, it sleeps
:data:`MAKE_WAY_SECONDS`, which lets the light calls run first.

Example::

    >>> from headwater.engine.budget import Budget
    >>> gate = HeavyCalls(1, waiting=1)
    >>> gate.enter(Budget())            # the one turn
    >>> gate.enter(Budget(deadline=0))  # waits for a turn, and its deadline has passed
    Traceback (most recent call last):
    ...
    headwater.engine.errors.DeadlineExceededError: the deadline passed before the request was done
    >>> gate.leave()
"""

from __future__ import annotations

import threading
import time

from ..budget import Budget
from ..errors import LimitExceededError

__all__ = ["HEAVY_METHODS", "MAKE_WAY_SECONDS", "HeavyCalls", "reserved_workers"]

#: How long a heavy call sleeps at a checkpoint while light calls run (it gives up the interpreter lock).
MAKE_WAY_SECONDS = 0.0005

#: Calls that hold a worker while mostly idle: never counted as light calls a heavy call makes way for.
_IDLE_METHODS = frozenset({"/headwater.v1.RelationshipService/Watch"})

#: Calls whose work grows with the data rather than with the request: they take turns through the server's
#: :class:`HeavyCalls` gate, so that they cannot hold every worker while checks and writes wait.
HEAVY_METHODS = frozenset({
    "/headwater.v1.PermissionService/LookupResources", "/headwater.v1.PermissionService/LookupSubjects",
    "/headwater.v1.PermissionService/Expand", "/headwater.v1.RelationshipService/Read",
    "/headwater.v1.RelationshipService/Export", "/headwater.v1.LineageService/Ancestors",
    "/headwater.v1.LineageService/Descendants", "/headwater.v1.AuditService/Query",
    "/headwater.v1.AuditService/Export", "/headwater.v1.AuditService/Verify",
    "/headwater.v1.GovernanceService/Impact",
})


def reserved_workers(workers: int) -> int:
    """Workers heavy calls never hold: a quarter of them, at least 2."""
    return max(2, workers // 4)


class HeavyCalls:
    """At most ``slots`` heavy calls run at once and ``waiting`` more wait for a turn (until their deadline);
    any further one is refused at once with RESOURCE_EXHAUSTED."""

    @classmethod
    def for_workers(cls, slots: int, workers: int) -> HeavyCalls:
        """The gate of a server with ``workers`` threads: heavy calls, running or waiting, leave a quarter of them
        (at least 2) to light calls."""
        return cls(slots, waiting=max(0, workers - reserved_workers(workers) - slots))

    def __init__(self, slots: int, *, waiting: int) -> None:
        self.slots = slots
        self.max_waiting = waiting
        self._free = threading.Semaphore(slots)
        self._lock = threading.Lock()
        self._waiting = 0
        self.light = 0  # light calls running now (statistics-grade: updated under the lock, read without)

    def light_started(self, method: str) -> bool:
        """Count a light call as running (True), unless it is an idle one (Watch)."""
        if method in _IDLE_METHODS:
            return False
        with self._lock:
            self.light += 1
        return True

    def light_ended(self) -> None:
        with self._lock:
            self.light -= 1

    def _make_way(self) -> None:
        if self.light:
            time.sleep(MAKE_WAY_SECONDS)

    def enter(self, budget: Budget) -> None:
        budget.pause = self._make_way
        if self._free.acquire(blocking=False):
            return
        with self._lock:
            if self._waiting >= self.max_waiting:
                raise LimitExceededError(
                    f"too many heavy calls at once (lookups, expands, exports, listings, audit scans): {self.slots} "
                    f"running and {self._waiting} waiting (heavy_calls); retry later", limit=self.slots)
            self._waiting += 1
        try:
            while not self._free.acquire(timeout=0.05):
                budget.checkpoint()  # the caller may give up, or its deadline pass, while it waits
        finally:
            with self._lock:
                self._waiting -= 1

    def leave(self) -> None:
        self._free.release()
