"""Engine configuration: every default documented once, here.

Example::

    >>> Config().max_depth
    50
"""

from __future__ import annotations

from dataclasses import dataclass
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
    #: Entries in the shared check cache (0 turns the cache off).
    cache_size: int = 100_000
    #: How long deleted relationships stay readable at old revisions (garbage-collection window).
    gc_window: timedelta = timedelta(hours=24)
    #: How often (at most) a write triggers garbage collection of history older than ``gc_window``
    #: (None: never automatically; call ``Engine.gc()``).
    gc_interval: timedelta | None = timedelta(minutes=10)
