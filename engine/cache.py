"""The shared check cache and the checker that consults it (and cachetools' only home, for labels).

Keys are ``(schema digest, revision, context key, resource, name, subject)``, so a
cached outcome is an immutable fact about one snapshot: it never needs
invalidating, except by time, because a relationship can expire. Each outcome
carries ``valid_until`` (the earliest expiration it read); an entry past it is a
miss. Only definite outcomes enter the cache: never errors, never path-dependent
(cycle-cut) outcomes. cachetools caches are not thread-safe, so the label cache
and its lock live together here.

Example::

    >>> cache = SharedCache(maxsize=1000)
    >>> cache.stats()["size"]
    0
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Any

from cachetools import LRUCache

from .dispatch import CheckRequest, Dispatch, Outcome
from .relationships import ObjectRef, SubjectRef

__all__ = ["CachingChecker", "LabelCache", "SharedCache", "check_key"]


def check_key(prefix: tuple[Hashable, ...], resource: ObjectRef, name: str, subject: SubjectRef) -> tuple[Hashable, ...]:
    """The shared-cache key of one check request: ``prefix`` (schema digest, revision, context key), then the
    request's fields as plain strings, so hashing the key never calls back into Python.

    Example::

        >>> check_key(("d1", 7, ""), ObjectRef("doc", "1"), "view", SubjectRef("user", "tom"))
        ('d1', 7, '', 'doc', '1', 'view', 'user', 'tom', None)
    """
    return (*prefix, resource.type, resource.id, name, subject.type, subject.id, subject.relation)


class SharedCache:
    """A bounded map of check outcomes with hit/miss counters, shared by every thread of an engine.

    Two generations of plain dicts (see docs/performance.md): new entries go to the young one;
    when it holds half of ``maxsize`` it becomes the old one and the previous old one is dropped.
    A hit in the old generation moves the entry back to the young one, so what is still being
    used survives, as in an LRU, while a hit in the young generation is a single dict lookup
    with no bookkeeping. At most ``maxsize`` entries are kept. Every dict operation is atomic
    under the GIL; the lock only serializes a generation change and ``clear``. The counters
    are statistics, not exact under concurrent use.
    """

    def __init__(self, maxsize: int = 100_000) -> None:
        self.maxsize = maxsize
        self._half = max(1, maxsize // 2)
        self._young: dict[Hashable, Outcome] = {}
        self._old: dict[Hashable, Outcome] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, now: float | None = None) -> Outcome | None:
        """The outcome cached under ``key``, unless it expired at ``now`` (epoch seconds; None: the system
        clock, read only for an outcome that can expire)."""
        outcome = self._young.get(key)
        if outcome is None:
            outcome = self._old.pop(key, None)
            if outcome is None:
                self.misses += 1
                return None
            self.put(key, outcome)
        until = outcome.valid_until
        if until is not None and (time.time() if now is None else now) >= until:
            self._young.pop(key, None)
            self.misses += 1
            return None
        self.hits += 1
        return outcome

    def put(self, key: Hashable, outcome: Outcome) -> None:
        young = self._young
        young[key] = outcome
        if len(young) >= self._half:
            with self._lock:
                if self._young is young:
                    self._old = young
                    self._young = {}

    def clear(self) -> None:
        with self._lock:
            self._young = {}
            self._old = {}

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def stats(self) -> dict[str, Any]:
        total = self.hits + self.misses
        return {"hits": self.hits, "misses": self.misses, "size": len(self),
                "maxsize": self.maxsize, "hit_rate": (self.hits / total) if total else 0.0}


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
        res, subj = req.resource, req.subject
        key = (*self.prefix, res.type, res.id, req.name, subj.type, subj.id, subj.relation)  # = check_key()
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
