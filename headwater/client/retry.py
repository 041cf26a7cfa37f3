"""Retries: which failures are worth another attempt, how long to wait, and gRPC's own retry configuration.

Two layers, one :class:`RetryPolicy`:

- **gRPC's retry policy** (the channel's service config, ``grpc.enable_retries``): for the unary methods that are
  always safe to repeat (:data:`SAFE_UNARY_METHODS`), gRPC itself retries UNAVAILABLE inside one attempt of the
  client's loop: :data:`GRPC_ATTEMPTS` tries at most, a few ``initial_backoff`` apart, within the call's
  deadline. That absorbs a blip (a connection reset, a draining server's GOAWAY) at once; it is kept short
  because its tries multiply with the loop's. gRPC's *transparent* retry
  (a call that never reached the server's application: the connection was refused or reset before the server read
  it) is always on, for every method, CREATE included.
- **The client's loop** (:func:`plan`, run by ``Client`` and ``AsyncClient``): around every call that is safe to
  repeat, unary and streaming alike, it retries the policy's codes once gRPC has given up, waiting
  ``initial_backoff * multiplier**n`` seconds (at most ``max_backoff``, with jitter), until ``max_attempts``
  attempts were made or the call's deadline (the client's ``timeout``, or the call's) would pass first. gRPC's
  policy cannot do that for server streams once a message arrived, cannot tell the admission control's "retry
  later" from a request over a limit (both RESOURCE_EXHAUSTED), and cannot bound the total time across attempts.

CANCELLED is retried because the client never cancels a call it is running (an asyncio task cancelled raises
``asyncio.CancelledError``, not a status): a call comes back CANCELLED when the server cancelled it, as a server
stopping without a grace period does with the calls in flight.

RESOURCE_EXHAUSTED is retried only when it is the server's admission control refusing a heavy call for now
(``engine/service/admission.py``: its message names ``(heavy_calls)`` and says "retry later"); a request over a
configured limit (``max_updates_per_write``, ``max_work_per_request``...) fails the same way every time and is
never retried.

The channel's reconnect backoff is bounded by ``max_backoff`` too (gRPC's default grows to 120 s), so a channel
whose server restarted reconnects within a wait or two.

Example::

    >>> policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, multiplier=2.0, jitter=0.0)
    >>> [policy.backoff(n) for n in range(5)]
    [0.1, 0.2, 0.4, 0.8, 1.0]
    >>> policy.retryable("UNAVAILABLE", "connection refused"), policy.retryable("INVALID_ARGUMENT", "")
    (True, False)
    >>> policy.retryable("CANCELLED", "the server stopped")
    True
    >>> policy.retryable("RESOURCE_EXHAUSTED", "too many updates in one write (max_updates_per_write)")
    False
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ADMISSION_MARKER", "GRPC_ATTEMPTS", "NO_RETRY", "SAFE_UNARY_METHODS", "Attempts", "RetryPolicy"]

#: Tries of gRPC's own retry policy within one attempt of the client's loop (gRPC allows up to 5).
GRPC_ATTEMPTS = 3

#: What the admission control's refusal says (engine/service/admission.py); tests/client checks it still does.
ADMISSION_MARKER = "(heavy_calls); retry later"

#: Unary methods that are safe to repeat whatever their request: reads, checks, lookups, schema writes (the same
#: text again is the same schema) and health. ``Write`` and ``Delete`` are not here: whether one is safe depends on
#: its request (TOUCH and DELETE updates without preconditions are; CREATE is not), so only the client's loop,
#: which sees the request, retries them. Nor is LineageService ``Derive``: it only TOUCHes, so a repeat writes
#: nothing more, but it is a write, and writes are retried by the client's loop alone (``calls.derive``).
SAFE_UNARY_METHODS: tuple[tuple[str, str], ...] = (
    ("headwater.v1.PermissionService", "Check"),
    ("headwater.v1.PermissionService", "CheckBulk"),
    ("headwater.v1.PermissionService", "Expand"),
    ("headwater.v1.SchemaService", "Write"),
    ("headwater.v1.SchemaService", "Read"),
    ("headwater.v1.SchemaService", "History"),
    ("headwater.v1.LineageService", "EffectiveLabels"),
    ("headwater.v1.LineageService", "Ancestors"),
    ("headwater.v1.LineageService", "Descendants"),
    ("headwater.v1.AuditService", "Verify"),
    ("headwater.v1.AuditService", "Replay"),
    ("headwater.v1.GovernanceService", "Impact"),
    ("grpc.health.v1.Health", "Check"),
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a client retries a call that is safe to repeat (see the module docstring for which are).

    :param max_attempts: attempts of the client's loop, the first included (1: no retries by the loop; gRPC's
        transparent retry still happens).
    :param initial_backoff: seconds before the first retry.
    :param max_backoff: the longest wait between two attempts (and the channel's longest reconnect backoff).
    :param multiplier: each wait is this many times the one before, up to ``max_backoff``.
    :param jitter: the fraction of each wait drawn at random (0: exact waits; 0.5: between half and all of it), so
        that clients a restart failed together do not retry together.
    :param codes: the gRPC status code names retried (RESOURCE_EXHAUSTED only for the admission control's refusal).
    """

    max_attempts: int = 8
    initial_backoff: float = 0.1
    max_backoff: float = 2.0
    multiplier: float = 2.0
    jitter: float = 0.5
    codes: frozenset[str] = field(default=frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "CANCELLED"}))

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.initial_backoff <= 0 or self.max_backoff < self.initial_backoff or self.multiplier < 1:
            raise ValueError("need 0 < initial_backoff <= max_backoff and multiplier >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter is a fraction between 0 and 1, not {self.jitter}")

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first), jitter applied."""
        wait = min(self.max_backoff, self.initial_backoff * self.multiplier ** retry)
        return wait * (1 - self.jitter * random.random())

    def retryable(self, code: str, message: str) -> bool:
        """Is a failure with status ``code`` and ``message`` worth another attempt (of a call safe to repeat)?"""
        if code not in self.codes:
            return False
        return code != "RESOURCE_EXHAUSTED" or ADMISSION_MARKER in message

    def service_config(self) -> str:
        """gRPC's service config (JSON): UNAVAILABLE retried for :data:`SAFE_UNARY_METHODS`, at most
        :data:`GRPC_ATTEMPTS` tries, waits from ``initial_backoff`` up to 4 times that (gRPC draws each at random
        below its bound)."""
        if self.max_attempts < 2 or "UNAVAILABLE" not in self.codes:
            return json.dumps({"methodConfig": []})
        policy = {"maxAttempts": min(self.max_attempts, GRPC_ATTEMPTS),
                  "initialBackoff": _seconds(self.initial_backoff),
                  "maxBackoff": _seconds(min(self.max_backoff, 4 * self.initial_backoff)),
                  "backoffMultiplier": self.multiplier,
                  "retryableStatusCodes": ["UNAVAILABLE"]}
        names = [{"service": service, "method": method} for service, method in SAFE_UNARY_METHODS]
        return json.dumps({"methodConfig": [{"name": names, "retryPolicy": policy}]})

    def channel_options(self) -> list[tuple[str, Any]]:
        """The channel options that carry this policy: retries on, the service config, bounded reconnects."""
        reconnect_ms = max(1, int(self.initial_backoff * 1000))
        return [("grpc.enable_retries", 1), ("grpc.service_config", self.service_config()),
                ("grpc.initial_reconnect_backoff_ms", reconnect_ms), ("grpc.min_reconnect_backoff_ms", reconnect_ms),
                ("grpc.max_reconnect_backoff_ms", max(reconnect_ms, int(self.max_backoff * 1000)))]


#: No retries by the client's loop (gRPC's transparent retry only).
NO_RETRY = RetryPolicy(max_attempts=1)


def _seconds(value: float) -> str:
    return f"{value:.3f}s"


class Attempts:
    """The client loop's bookkeeping for one call: after a failure, :meth:`wait` says how long to sleep before the
    next attempt, or None to give up (not retryable, not safe, attempts spent, or the deadline too close).

    Example::

        >>> clock = iter([0.0, 0.0, 0.5, 0.6]).__next__
        >>> attempts = Attempts(RetryPolicy(max_attempts=2, jitter=0.0), safe=True, timeout=10.0, clock=clock)
        >>> attempts.start()  # the first attempt's deadline, in seconds
        10.0
        >>> attempts.wait("UNAVAILABLE", "connection refused")
        0.1
        >>> attempts.start()
        9.4
        >>> attempts.wait("UNAVAILABLE", "connection refused") is None  # two attempts made
        True
    """

    def __init__(self, policy: RetryPolicy, *, safe: bool, timeout: float | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.safe = safe
        self.clock = clock
        self.deadline = None if timeout is None else clock() + timeout
        self.made = 0
        self.last: Exception | None = None  # the last failure retried

    def start(self) -> float | None:
        """An attempt starts: the seconds it may take (its gRPC timeout); None: no deadline."""
        self.made += 1
        return None if self.deadline is None else max(0.0, self.deadline - self.clock())

    def after(self, error: Exception) -> float | None:
        """:meth:`wait` for the exception a failed attempt raised (its ``.code``, its text)."""
        return self.wait(str(getattr(error, "code", "UNKNOWN")), str(error))

    def wait(self, code: str, message: str) -> float | None:
        """After a failed attempt: the seconds to sleep before the next one, or None to raise the failure."""
        if not self.safe or self.made >= self.policy.max_attempts or not self.policy.retryable(code, message):
            return None
        pause = self.policy.backoff(self.made - 1)
        if self.deadline is not None and self.clock() + pause >= self.deadline:
            return None
        return pause
