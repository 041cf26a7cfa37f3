"""Recording off the hot path: a bounded queue of records and the one background thread that writes it.

A producer (a check, a write) puts a record on the queue and gets a ticket: the
records queued so far, counted from 1. One writer thread, started with the first
record, takes the whole queue as a batch and appends it in one transaction, at
the latest ``interval`` seconds after its oldest record was queued, at once when
:data:`BATCH` records wait or someone waits for a ticket, and on close. Tickets
are committed in order (one writer, first in first out), so "ticket *t* is
committed" is ``committed >= t``. A batch that fails stays queued and is retried;
whoever waits hears of the failure. A full queue makes producers wait for room
(at most :data:`QUEUE_WAIT` seconds), never drops a record.
"""

from __future__ import annotations

import logging
import threading
import time as _time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .. import tracing
from ..errors import StoreError, StoreUnavailableError
from .records import Pending, RecordKind

__all__ = ["BATCH", "FLUSH_INTERVAL", "QUEUE_WAIT", "RecordWriter"]

_log = logging.getLogger("headwater.audit")

#: The longest a queued record waits before the background writer commits it (seconds).
FLUSH_INTERVAL = 0.1
#: A queue this long wakes the writer before the flush interval is up.
BATCH = 1000
#: Seconds a producer waits for room in a full queue before giving up.
QUEUE_WAIT = 30.0


class RecordWriter:
    """The queue and the writer thread of one audit log (thread-safe; see the module docstring).

    :param place: the log, for messages and the thread's name (``the audit log at <file or URI>``).
    :param connect: run first on the writer thread (opens its connection); if it fails, the thread ends
      and waiters hear that the log is closed.
    :param append: appends a batch to the chain in one transaction, on the writer thread.
    :param queue_size: records queued or being written at most.
    :param interval: the longest a record waits before the writer starts a batch (seconds).

    Example::

        >>> from datetime import UTC, datetime
        >>> written = []
        >>> writer = RecordWriter("the audit log at x.audit", connect=lambda: None, append=written.extend, queue_size=10)
        >>> writer.submit(RecordKind.LOOKUP, datetime(2025, 1, 1, tzinfo=UTC), {"count": 3})
        1
        >>> writer.flush(); len(written), writer.pending
        (1, 0)
        >>> writer.stop()
        True
    """

    def __init__(self, place: str, *, connect: Callable[[], None], append: Callable[[list[Pending]], None],
                 queue_size: int, interval: float = FLUSH_INTERVAL) -> None:
        self._place = place
        self._connect = connect
        self._append = append
        self._queue_size = queue_size
        self._interval = interval
        # all under _cond
        self._cond = threading.Condition()
        self._pending: list[Pending] = []
        self._oldest = 0.0  # monotonic time the oldest pending record was queued
        self._submitted = 0  # tickets handed out
        self._committed = 0  # tickets committed (in order: one writer, FIFO)
        self._urgent = False
        self._closing = False
        self._closed = False
        self._error: BaseException | None = None  # the writer's last failure (None once it succeeds again)
        self._failures = 0  # how many times the writer failed
        self._batches = 0  # batches committed, and the seconds their appends took (the metrics read them)
        self._write_seconds = 0.0
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> int:
        """Records queued or being written, not yet committed."""
        with self._cond:
            return self._submitted - self._committed

    def stats(self) -> dict[str, Any]:
        """``pending`` (queued or being written), ``written`` (committed), ``batches``, ``write_seconds`` (their
        total append time) and ``failures`` (batches that failed and were kept queued)."""
        with self._cond:
            return {"pending": self._submitted - self._committed, "written": self._committed,
                    "batches": self._batches, "write_seconds": self._write_seconds, "failures": self._failures}

    def submit(self, kind: RecordKind, when: datetime, fields: dict[str, Any], *, urgent: bool = False) -> int:
        """Queue a record; returns its ticket. Waits while the queue is full (StoreUnavailableError after
        :data:`QUEUE_WAIT` seconds); StoreError once the log is closing."""
        with self._cond:
            if self._closing:
                raise StoreError(f"{self._place} is closed")
            if self._submitted - self._committed >= self._queue_size:
                self._urgent = True
                self._cond.notify_all()
                deadline = _time.monotonic() + QUEUE_WAIT
                while self._submitted - self._committed >= self._queue_size and not self._closing:
                    left = deadline - _time.monotonic()
                    if left <= 0:
                        raise StoreUnavailableError(
                            f"{self._place} is not keeping up ({self._queue_size} records queued"
                            + (f"; last error: {self._error}" if self._error else "") + "); retry later")
                    self._cond.wait(left)
            if not self._pending:
                self._oldest = _time.monotonic()
            self._pending.append((kind, when, fields))
            self._submitted += 1
            ticket = self._submitted
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"headwater-audit-writer:{self._place.rsplit('/', 1)[-1]}",
                                                daemon=True)
                self._thread.start()
            if urgent or len(self._pending) >= BATCH:
                self._urgent = self._urgent or urgent
                self._cond.notify_all()
            return ticket

    def flush(self) -> None:
        """Write everything queued so far and wait until it is committed."""
        with self._cond:
            target = self._submitted
        self.wait_for(target)

    def wait_for(self, ticket: int) -> None:
        """Return once the record with ``ticket`` is committed: StoreUnavailableError if the writer fails
        meanwhile, StoreError if it has stopped."""
        with self._cond:
            if self._committed >= ticket:
                return
            self._urgent = True
            self._cond.notify_all()
            failures = self._failures
            while self._committed < ticket:
                if self._failures != failures and self._error is not None:
                    raise StoreUnavailableError(f"{self._place} cannot be written ({self._error}); "
                                                "the record stays queued and is written when it recovers")
                if self._thread is None or not self._thread.is_alive():
                    raise StoreError(f"{self._place} is closed; record {ticket} was not written")
                self._cond.wait(0.5)

    def stop(self) -> bool:
        """Write what is queued, then end the writer thread; False if it was stopped already."""
        with self._cond:
            if self._closed:
                return False
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._cond:
            self._closed = True
        return True

    # --- the writer thread -------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._connect()
        except BaseException as exc:  # noqa: BLE001 - reported to waiters
            with self._cond:
                self._error = exc
                self._cond.notify_all()
            return
        while True:
            with self._cond:
                while True:
                    if self._pending:
                        due = self._oldest + self._interval
                        now = _time.monotonic()
                        if self._urgent or self._closing or len(self._pending) >= BATCH or now >= due:
                            break
                        self._cond.wait(due - now)
                    elif self._closing:
                        return
                    else:
                        self._cond.wait()
                batch, self._pending = self._pending, []
                self._urgent = False
            started = _time.perf_counter()
            try:
                with tracing.span("headwater.audit.write", {"headwater.records": len(batch)}):
                    self._append(batch)
            except Exception as exc:  # noqa: BLE001 - kept queued, retried, reported to waiters
                _log.error("cannot write %d audit records to %s: %s", len(batch), self._place, exc)
                with self._cond:
                    self._pending[:0] = batch
                    self._oldest = _time.monotonic()
                    self._error = exc
                    self._failures += 1
                    self._cond.notify_all()
                    if self._closing:
                        _log.error("%s closed with %d records unwritten", self._place, len(self._pending))
                        return
                _time.sleep(self._interval)
                continue
            with self._cond:
                self._committed += len(batch)
                self._batches += 1
                self._write_seconds += _time.perf_counter() - started
                self._error = None
                self._cond.notify_all()
