"""Engine configuration: every default documented once, here.

Example::

    >>> Config().max_depth
    50
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

__all__ = ["Config"]


@dataclass(frozen=True, slots=True)
class Config:
    """Limits and tuning for an :class:`~headwater.engine.Engine`."""

    #: Longest chain of dispatches one check may take before MaxDepthExceededError (SpiceDB's default too).
    max_depth: int = 50
    #: Updates in one write (SpiceDB's default).
    max_updates_per_write: int = 1000
    #: Bytes of caveat context stored on one relationship, and sent with one check.
    max_caveat_context_bytes: int = 4096
    #: Items in one bulk check.
    max_bulk_check_items: int = 10_000
    #: How stale a minimize_latency read may be: the head revision is re-read at most this often (this process's
    #: own writes are seen at once). Zero reads the head for every check. SpiceDB's equivalent defaults to 5 s.
    head_staleness: timedelta = timedelta(milliseconds=50)
    #: Entries in the shared check cache (0 turns the cache off).
    cache_size: int = 100_000
    #: How long deleted relationships stay readable at old revisions (garbage-collection window).
    gc_window: timedelta = timedelta(hours=24)
    #: How often (at most) a write triggers garbage collection of history older than ``gc_window``
    #: (None: never automatically; call ``Engine.gc()``).
    gc_interval: timedelta | None = timedelta(minutes=10)
    #: Keep an audit log (engine/audit.py, docs/audit.md): every relationship and schema change, and the
    #: decisions ``audit_decisions`` selects. ``Engine.open`` also turns it on for a database that already
    #: has an audit log beside it.
    audit: bool = False
    #: The audit log's SQLite file. None: ``<database>.audit`` beside a SqliteStore's file; a temporary
    #: file, removed on close, for any other store (MemoryStore).
    audit_path: str | None = None
    #: Which decisions the audit log records: "all", "denials" (NO_PERMISSION and CONDITIONAL_PERMISSION),
    #: "sample:<rate>" (e.g. "sample:0.01") or "off" (changes only). Lookups: one record per call, under
    #: "all" and "sample".
    audit_decisions: str = "all"
    #: Which recorded decisions carry their explanation's summary lines: "off", "denials" or "all". Each
    #: costs one more (uncached) evaluation on the checking thread.
    audit_explain: str = "off"
    #: A check returns only once its decision record is committed and fsynced. Off: records are written
    #: in the background, at the latest 100 ms after the check (see docs/audit.md for what a crash loses).
    audit_durable: bool = False
    #: Audit records queued or being written at most; a check waits for room beyond it.
    audit_queue_size: int = 10_000
    #: HMAC key signing the audit log's pruning checkpoints and head (None: a plain SHA-256).
    audit_key: str | None = field(default=None, repr=False)
