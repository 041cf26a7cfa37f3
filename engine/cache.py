"""Cache: the one bounded, thread-safe cache implementation behind every cache the engine keeps.

Keys (built by :mod:`.keys`) name immutable facts about one snapshot or one
schema, so entries never need invalidating; outcomes of checks can expire (a
relationship they read expires), and a cache made with ``expiring=True`` treats
an entry past its ``valid_until`` as a miss and drops it.

It is two generations of plain dicts rather than cachetools' LRU (measured in
``docs/decisions/check-cache.md``: its probe is the floor of every warm check).
New entries go to the young generation; when it holds half of ``maxsize`` it
becomes the old one and the previous old one is dropped (those entries count as
evictions). A hit in the old generation moves the entry back to the young one,
so what is still being used survives, as in an LRU, while a hit in the young
generation is one dict lookup with no bookkeeping. At most ``maxsize`` entries
are kept. Every dict operation is atomic under the GIL; the lock only
serializes a generation change and ``clear``. The counters are statistics, not
exact under concurrent use.

Example::

    >>> cache = Cache("checks", maxsize=1000)
    >>> cache.put("k", 1)
    >>> cache.get("k"), cache.stats()["hits"]
    (1, 1)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Any

__all__ = ["Cache"]


class Cache:
    """A bounded map, shared by every thread of an engine, with hit, miss and eviction counters.

    :param name: what it holds (reported with its statistics).
    :param maxsize: entries kept at most.
    :param expiring: values carry ``valid_until`` (epoch seconds or None); past it, an entry is a miss.
    """

    def __init__(self, name: str, maxsize: int, *, expiring: bool = False) -> None:
        if not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"cache {name}: maxsize must be a positive integer, got {maxsize!r}")
        self.name = name
        self.maxsize = maxsize
        self._expiring = expiring
        self._half = max(1, maxsize // 2)
        self._young: dict[Hashable, Any] = {}
        self._old: dict[Hashable, Any] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def get(self, key: Hashable, now: float | None = None) -> Any:
        """The value cached under ``key`` (None on a miss). For an expiring cache, an entry whose
        ``valid_until`` is at or before ``now`` (epoch seconds; None: the system clock, read only then)
        is a miss and is dropped."""
        value = self._young.get(key)
        if value is None:
            value = self._old.pop(key, None)
            if value is None:
                self.misses += 1
                return None
            self.put(key, value)
        if self._expiring:
            until = value.valid_until
            if until is not None and (time.time() if now is None else now) >= until:
                self._young.pop(key, None)
                self.misses += 1
                return None
        self.hits += 1
        return value

    def put(self, key: Hashable, value: Any) -> None:
        """Remember ``value`` (never None) under ``key``."""
        young = self._young
        young[key] = value
        if len(young) >= self._half:
            with self._lock:
                if self._young is young:
                    self.evictions += len(self._old)
                    self._old = young
                    self._young = {}

    def clear(self) -> None:
        """Forget every entry (the counters stay)."""
        with self._lock:
            self._young = {}
            self._old = {}

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def stats(self) -> dict[str, Any]:
        """``hits``, ``misses``, ``evictions``, ``size``, ``maxsize`` and ``hit_rate``."""
        total = self.hits + self.misses
        return {"hits": self.hits, "misses": self.misses, "evictions": self.evictions, "size": len(self),
                "maxsize": self.maxsize, "hit_rate": (self.hits / total) if total else 0.0}
