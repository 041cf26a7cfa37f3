"""The shared check cache (cachetools' only home) and the checker that consults it.

Keys are ``(schema digest, revision, context key, resource, name, subject)``, so a
cached outcome is an immutable fact about one snapshot: it never needs
invalidating, except by time, because a relationship can expire. Each outcome
carries ``valid_until`` (the earliest expiration it read); an entry past it is a
miss. Only definite outcomes enter the cache: never errors, never path-dependent
(cycle-cut) outcomes. cachetools caches are not thread-safe, so the cache and
its lock live together here.

Example::

    >>> cache = SharedCache(maxsize=1000)
    >>> cache.stats()["size"]
    0
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

from cachetools import LRUCache

from .dispatch import CheckRequest, Dispatch, Outcome

__all__ = ["CachingChecker", "LabelCache", "SharedCache"]


class SharedCache:
    """A thread-safe LRU of check outcomes with hit/miss counters."""

    def __init__(self, maxsize: int = 100_000) -> None:
        self._data: LRUCache[Hashable, Outcome] = LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, now: float) -> Outcome | None:
        with self._lock:
            outcome = self._data.get(key)
            if outcome is not None and outcome.valid_until is not None and now >= outcome.valid_until:
                del self._data[key]
                outcome = None
            if outcome is None:
                self.misses += 1
            else:
                self.hits += 1
            return outcome

    def put(self, key: Hashable, outcome: Outcome) -> None:
        with self._lock:
            self._data[key] = outcome

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            total = self.hits + self.misses
            return {"hits": self.hits, "misses": self.misses, "size": len(self._data),
                    "maxsize": self._data.maxsize, "hit_rate": (self.hits / total) if total else 0.0}


class CachingChecker:
    """Answers from the shared cache (and a per-call memo), else asks ``inner`` and remembers."""

    def __init__(self, inner: Dispatch, cache: SharedCache | None, prefix: tuple[Hashable, ...], now: float,
                 memo: dict[Hashable, Outcome] | None = None) -> None:
        self.inner = inner
        self.cache = cache
        self.prefix = prefix
        self.now = now
        self.memo = memo

    def check(self, req: CheckRequest) -> Outcome:
        key = (*self.prefix, req.resource, req.name, req.subject)
        memo = self.memo
        if memo is not None:
            hit = memo.get(key)
            if hit is not None:
                return hit
        cache = self.cache
        if cache is not None:
            hit = cache.get(key, self.now)
            if hit is not None:
                if memo is not None:
                    memo[key] = hit
                return hit
        outcome = self.inner(req)
        if not outcome.cut:
            if memo is not None:
                memo[key] = outcome
            if cache is not None:
                cache.put(key, outcome)
        return outcome


class LabelCache:
    """A thread-safe LRU for effective labels and upstream sets (keyed by schema digest and revision)."""

    def __init__(self, maxsize: int = 50_000) -> None:
        self._data: LRUCache[Hashable, object] = LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> object | None:
        with self._lock:
            return self._data.get(key)

    def put(self, key: Hashable, value: object) -> None:
        with self._lock:
            self._data[key] = value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
