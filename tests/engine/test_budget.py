"""Bounded work: every request runs under one budget (work units, a deadline, cancellation), and the
lookups' candidate walk is linear in what it finds (issue 14: LookupResources over a long chain)."""

from __future__ import annotations

import threading
import time

import pytest

from headwater.engine import Engine, MemoryStore, lookup
from headwater.engine.budget import STEP, Budget, limits, use
from headwater.engine.config import Config
from headwater.engine.errors import (
    DeadlineExceededError,
    MaxDepthExceededError,
    RequestCancelledError,
    WorkLimitExceededError,
)
from headwater.engine.results import BulkCheckItem

CHAIN_SCHEMA = """definition user {}
definition doc {
    relation viewer: user
    relation parent: doc
    permission view = viewer + parent->view
}
"""


def chain(n: int, **config: object) -> Engine:
    """``doc:c0 -> doc:c1 -> ... -> doc:cN`` by ``parent``, and ``doc:cN#viewer@user:end``."""
    engine = Engine(MemoryStore(), config=Config.of(**config) if config else None)
    engine.write_schema(CHAIN_SCHEMA)
    rels = [f"doc:c{i}#parent@doc:c{i + 1}" for i in range(n)] + [f"doc:c{n}#viewer@user:end"]
    for i in range(0, len(rels), 1000):
        engine.touch(*rels[i:i + 1000])
    return engine


def work_of(call) -> int:
    """Work units ``call`` spends (under an unlimited budget)."""
    with limits() as budget:
        start = budget.left
        call()
        return start - budget.left


# --- the lookup over a chain -------------------------------------------------------------------------------


def test_lookup_over_a_chain_finds_every_link_at_any_depth_check_allows() -> None:
    engine = chain(40)
    found = {r.resource_id for r in engine.lookup_resources("doc", "view", "user:end").results}
    assert found == {f"c{i}" for i in range(41)}
    assert all(engine.check(f"doc:c{i}", "view", "user:end").allowed for i in range(41))


@pytest.mark.parametrize("n", [55, 4000])
def test_lookup_over_a_chain_longer_than_max_depth_fails_as_check_does(n: int) -> None:
    engine = chain(n)
    with pytest.raises(MaxDepthExceededError):
        engine.check("doc:c0", "view", "user:end")
    with pytest.raises(MaxDepthExceededError, match="more than 50 relationships away"):
        engine.lookup_resources("doc", "view", "user:end")


def test_lookup_work_grows_linearly_with_the_chain() -> None:
    """Work units, not time: deterministic. The fixed-point walk of round 1 did one pass over everything per
    level (quadratic: 4x the work for 2x the chain); the layered walk handles each (place, id) once."""
    works = {}
    for n in (10, 20, 40):
        engine = chain(n, max_depth=100)
        works[n] = work_of(lambda e=engine: e.lookup_resources("doc", "view", "user:end"))
    assert works[20] / works[10] < 2.3 and works[40] / works[20] < 2.3, works


def test_a_chain_of_4000_is_refused_before_reading_it_all() -> None:
    """Bounded by max depth: the walk stops one layer past it, whatever the chain's length."""
    short, long = chain(100), chain(4000)
    spent = []
    for engine in (short, long):
        with limits() as budget, pytest.raises(MaxDepthExceededError):
            engine.lookup_resources("doc", "view", "user:end")
        spent.append((1 << 62) - budget.left)
    assert spent[0] == spent[1]


def wide(engine: Engine, n: int) -> Engine:
    """``doc:w0 ... doc:w{n-1}``, each with ``viewer@user:many`` (one reverse read of ``n`` rows)."""
    engine.write_schema(CHAIN_SCHEMA)
    engine.touch(*[f"doc:w{i}#viewer@user:many" for i in range(n)])
    return engine


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_a_reverse_read_is_paged_and_each_page_is_paid_before_the_next(
        store: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lookup, "READ_PAGE", 7)
    engine = wide(Engine(MemoryStore()) if store == "memory" else Engine.open(tmp_path / "w.db"), 50)
    found = {r.resource_id for r in engine.lookup_resources("doc", "view", "user:many", limit=1000).results}
    assert found == {f"w{i}" for i in range(50)}  # every page, no row twice or lost at a page boundary
    pages = []
    read = lookup._Backward._pages

    def counted(self, filter):  # type: ignore[no-untyped-def]
        for row in read(self, filter):
            pages.append(row)
            yield row

    monkeypatch.setattr(lookup._Backward, "_pages", counted)
    engine.clear_caches()
    with limits(max_work=10), pytest.raises(WorkLimitExceededError):
        engine.lookup_resources("doc", "view", "user:many")
    assert len(pages) < 50  # stopped within the second page, not after reading all 50


# --- the work limit ----------------------------------------------------------------------------------------


def test_check_over_its_work_limit_is_refused_naming_the_limit() -> None:
    engine = chain(40, max_work_per_request=10)
    with pytest.raises(WorkLimitExceededError, match="max_work_per_request") as err:
        engine.check("doc:c0", "view", "user:end")
    assert err.value.limit == 10
    assert chain(40, max_work_per_request=1000).check("doc:c0", "view", "user:end").allowed


def test_each_check_has_its_own_budget_without_a_limits_block() -> None:
    engine = chain(5, max_work_per_request=50)
    for _ in range(30):  # 30 checks of about 6 sub-problems each: over 50 together, never alone
        engine.check("doc:c0", "view", "user:end", consistency=None)
        engine.caches.checks.clear()


def test_a_limits_block_is_one_budget_for_all_its_calls() -> None:
    engine = chain(5)
    with limits(max_work=20), pytest.raises(WorkLimitExceededError):
        for _ in range(10):
            engine.check("doc:c0", "view", "user:end")
            engine.caches.checks.clear()


def test_lookups_and_bulk_checks_spend_one_budget_per_request() -> None:
    engine = chain(30, max_work_per_request=40)
    with pytest.raises(WorkLimitExceededError):
        engine.lookup_resources("doc", "view", "user:end")
    with pytest.raises(WorkLimitExceededError):
        engine.lookup_subjects("doc:c0", "view", "user")
    items = [BulkCheckItem("doc:c0", "view", f"user:u{i}") for i in range(3)]  # 31 sub-problems each
    with pytest.raises(WorkLimitExceededError):  # the request stops: not an error per item
        engine.check_bulk(items)


def test_expand_spends_from_the_budget() -> None:
    engine = chain(30, max_work_per_request=20)
    with pytest.raises(WorkLimitExceededError):
        engine.expand("doc:c0", "view")


def test_work_lent_and_not_spent_is_repaid() -> None:
    engine = chain(3)
    with limits(max_work=10_000) as budget:
        engine.check("doc:c0", "view", "user:end")
        assert 0 < 10_000 - budget.left < STEP  # a few sub-problems, not a whole loan of STEP units


# --- deadlines and cancellation ----------------------------------------------------------------------------


def test_a_passed_deadline_stops_a_check() -> None:
    engine = chain(40)
    with limits(timeout=0), pytest.raises(DeadlineExceededError):
        engine.check("doc:c0", "view", "user:end")


def test_cancellation_stops_a_lookup_and_a_bulk_check() -> None:
    engine = chain(40)
    with limits(cancelled=lambda: True):
        with pytest.raises(RequestCancelledError):
            engine.lookup_resources("doc", "view", "user:end")
        with pytest.raises(RequestCancelledError):
            engine.check_bulk([BulkCheckItem("doc:c0", "view", "user:end")])


def test_cancellation_from_another_thread_stops_a_long_lookup_promptly() -> None:
    """A lookup over 20,000 candidates; another thread cancels it after 50 ms; it stops at its next checkpoint
    (every STEP units of work), long before it would have finished."""
    engine = Engine(MemoryStore())
    engine.write_schema("definition user {}\ndefinition doc {\n relation viewer: user\n permission view = viewer\n}")
    for i in range(0, 20_000, 1000):
        engine.touch(*[f"doc:d{j}#viewer@user:many" for j in range(i, i + 1000)])
    stop = threading.Event()
    timer = threading.Timer(0.05, stop.set)
    timer.start()
    started = time.monotonic()
    with limits(cancelled=stop.is_set), pytest.raises(RequestCancelledError):
        engine.lookup_resources("doc", "view", "user:many")
    stopped_after = time.monotonic() - started
    full = time.monotonic()
    assert len(engine.lookup_resources("doc", "view", "user:many").results) == 20_000
    full = time.monotonic() - full
    assert stopped_after < full  # not a timing target (see benchmarks/bench_lookup_chain.py): it did stop


def test_budget_checkpoint_order_and_use() -> None:
    budget = Budget(max_work=5, deadline=time.monotonic() + 60, cancelled=lambda: False)
    with use(budget):
        budget.spend(5)
        with pytest.raises(WorkLimitExceededError):
            budget.spend(1)
    with pytest.raises(DeadlineExceededError):
        Budget(deadline=0).lend()
