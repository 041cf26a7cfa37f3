"""Cache: bounded, keeps what is used, honours expiry; the chain stores sub-problems under keys.subproblem."""

from __future__ import annotations

from functools import partial

from headwater.engine import chain, keys
from headwater.engine.cache import Cache
from headwater.engine.outcome import FALSE, TRUE, Outcome, Tri
from headwater.engine.relationships import ObjectRef, SubjectRef

SharedCache = partial(Cache, "checks", expiring=True)  # the check cache, as the engine builds it


class _Evaluation:
    """What the chain reads of an evaluation: its check scope and its time."""

    def __init__(self, scope: keys.CheckScope) -> None:
        self.scope, self.now = scope, 0.0


def _scope(digest: str, revision: int, subject: SubjectRef) -> keys.CheckScope:
    return keys.check_scope(digest, revision, "", subject.type, subject.id, subject.relation or "")


def check_key(prefix: tuple[str, int, str], resource: ObjectRef, name: str, subject: SubjectRef) -> object:
    return keys.subproblem(_scope(prefix[0], prefix[1], subject), resource.type, resource.id, name)


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


def test_the_chain_stores_under_the_subproblem_key_and_answers_from_it() -> None:
    cache = SharedCache(maxsize=10)
    calls = []

    def inner(ev: object, rtype: str, rid: str, name: str, depth: int, negated: bool) -> Outcome:
        calls.append((rtype, rid, name))
        return TRUE

    resolve = chain.resolver(inner, memo=None, cache=cache)
    ev = _Evaluation(_scope("digest", 3, SubjectRef("group", "eng", "member")))
    assert resolve(ev, "doc", "1", "view", 50, False) is TRUE and resolve(ev, "doc", "1", "view", 50, False) is TRUE
    assert len(calls) == 1
    key = check_key(("digest", 3, ""), ObjectRef("doc", "1"), "view", SubjectRef("group", "eng", "member"))
    assert cache.get(key, 0.0) is TRUE
    other = check_key(("digest", 3, ""), ObjectRef("doc", "1"), "view", SubjectRef("group", "eng"))
    assert cache.get(other, 0.0) is None  # the subject relation is part of the key


def test_cut_outcomes_are_not_cached() -> None:
    cache = SharedCache(maxsize=10)
    resolve = chain.resolver(lambda *request: Outcome(Tri.FALSE, cut=True), memo={}, cache=cache)
    resolve(_Evaluation(_scope("d", 1, SubjectRef("user", "tom"))), "doc", "1", "view", 50, False)
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


def test_the_warm_path_probes_the_asked_check_key_and_opens_no_snapshot() -> None:
    """The warm path spells keys.asked_check out (a call would be a fifth of its cost): a check asked as text
    is stored under that key, and asked again it is answered from it alone, without a snapshot."""
    import pytest

    from headwater.engine import Engine
    from headwater.engine.store.memory import MemoryStore

    engine = Engine(MemoryStore())
    engine.write_schema("definition user {}\ndefinition doc {\n relation viewer: user\n permission view = viewer\n}")
    engine.touch("doc:1#viewer@user:tom")
    assert engine.check("doc:1", "view", "user:tom").allowed and not engine.check("doc:1", "view", "user:ann").allowed
    cache = engine.caches.checks
    assert cache is not None
    digest, head = engine.schema().digest, engine.store.head()
    assert cache.get(keys.asked_check(digest, head, "doc:1", "view", "user:tom")) is TRUE
    assert cache.get(keys.asked_check(digest, head, "doc:1", "view", "user:ann")) is FALSE

    def no_snapshot(*args: object, **kwargs: object) -> None:
        raise AssertionError("the warm path opened a snapshot")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine.store, "snapshot", no_snapshot)
        assert engine.check("doc:1", "view", "user:tom").allowed
        assert not engine.check("doc:1", "view", "user:ann").allowed
