"""SharedCache: bounded, keeps what is used, honours expiry; check_key is what CachingChecker uses."""

from __future__ import annotations

from headwater.engine.cache import CachingChecker, SharedCache, check_key
from headwater.engine.dispatch import FALSE, TRUE, CheckRequest, Outcome, Tri
from headwater.engine.relationships import ObjectRef, SubjectRef


def test_never_holds_more_than_maxsize() -> None:
    cache = SharedCache(maxsize=100)
    for i in range(1_000):
        cache.put(("k", i), TRUE)
        assert len(cache) <= 100
    assert cache.stats()["size"] == len(cache) <= 100
    assert cache.get(("k", 999), 0.0) is TRUE  # the newest entries are kept
    assert cache.get(("k", 0), 0.0) is None  # the oldest are gone


def test_an_entry_in_use_survives_generations_of_new_entries() -> None:
    cache = SharedCache(maxsize=100)
    cache.put("hot", TRUE)
    for i in range(2_000):
        cache.put(("cold", i), FALSE)
        if i % 40 == 0:
            assert cache.get("hot", 0.0) is TRUE, i  # used more often than a generation fills
    assert cache.get("hot", 0.0) is TRUE
    assert cache.get(("cold", 0), 0.0) is None


def test_expired_entries_are_misses_and_are_dropped() -> None:
    cache = SharedCache(maxsize=10)
    cache.put("k", Outcome(Tri.TRUE, valid_until=100.0))
    assert cache.get("k", 99.0) is not None
    assert cache.get("k", 100.0) is None
    assert cache.get("k", 0.0) is None  # dropped, not just hidden
    assert cache.stats()["hits"] == 1 and cache.stats()["misses"] == 2


def test_clear_empties_both_generations() -> None:
    cache = SharedCache(maxsize=4)
    for i in range(3):
        cache.put(i, TRUE)
    cache.clear()
    assert len(cache) == 0 and all(cache.get(i, 0.0) is None for i in range(3))


def test_caching_checker_stores_under_check_key_and_answers_from_it() -> None:
    cache = SharedCache(maxsize=10)
    calls = []

    def inner(req: CheckRequest) -> Outcome:
        calls.append(req)
        return TRUE

    checker = CachingChecker(inner, cache, ("digest", 3, ""), now=0.0)
    req = CheckRequest(ObjectRef("doc", "1"), "view", SubjectRef("group", "eng", "member"), 50)
    assert checker.check(req) is TRUE and checker.check(req) is TRUE
    assert len(calls) == 1
    key = check_key(("digest", 3, ""), ObjectRef("doc", "1"), "view", SubjectRef("group", "eng", "member"))
    assert cache.get(key, 0.0) is TRUE
    other = check_key(("digest", 3, ""), ObjectRef("doc", "1"), "view", SubjectRef("group", "eng"))
    assert cache.get(other, 0.0) is None  # the subject relation is part of the key


def test_cut_outcomes_are_not_cached() -> None:
    cache = SharedCache(maxsize=10)
    checker = CachingChecker(lambda req: Outcome(Tri.FALSE, cut=True), cache, ("d", 1, ""), now=0.0)
    checker.check(CheckRequest(ObjectRef("doc", "1"), "view", SubjectRef("user", "tom"), 50))
    assert len(cache) == 0


def test_a_check_asked_as_text_is_answered_from_the_cache_under_its_text_until_a_write() -> None:
    from headwater.engine import Engine
    from headwater.engine.store.memory import MemoryStore

    engine = Engine(MemoryStore())
    engine.write_schema("definition user {}\ndefinition doc {\n relation viewer: user\n permission view = viewer\n}")
    engine.touch("doc:1#viewer@user:tom")
    assert engine.check("doc:1", "view", "user:tom").allowed
    hits = engine.cache_stats()["hits"]
    assert engine.check("doc:1", "view", "user:tom").allowed  # one probe, under the text
    assert engine.cache_stats()["hits"] == hits + 1
    # the same question in other spellings (refs, `...`) gets the same answer
    assert engine.check(ObjectRef("doc", "1"), "view", SubjectRef("user", "tom")).allowed
    assert engine.check("doc:1", "view", "user:tom#...").allowed
    assert not engine.check("doc:1", "view", "user:ann").allowed
    engine.remove("doc:1#viewer@user:tom")  # a new revision: nothing cached before it answers
    assert not engine.check("doc:1", "view", "user:tom").allowed
    assert not engine.check("doc:1", "view", "user:tom").allowed
