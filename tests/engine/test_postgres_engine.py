"""Engines over one PostgreSQL database behave as one: what two servers writing at once cannot break (issue 16).

Each ``Engine`` here has its own pool and caches, as two ``headwater serve`` processes
would; ``tests/service/test_postgres_servers.py`` runs real servers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater.engine import Consistency, Engine
from headwater.engine.consistency import decode_token, encode_token
from headwater.engine.errors import DeclassificationRefusedError, LineageCycleError
from headwater.engine.store import RelationshipFilter
from tests.conftest import pg_truncate

POLICY = (Path(__file__).resolve().parents[2] / "examples" / "ai-lineage" / "policy.zed").read_text()


@pytest.fixture
def engines(pg_database: str) -> Iterator[tuple[Engine, Engine]]:
    pg_truncate(pg_database)
    a, b = Engine.open(pg_database), Engine.open(pg_database)
    a.write_schema(POLICY)
    yield a, b
    a.close()
    b.close()


def _race(*writes) -> list[BaseException | None]:
    """Run each write on its own thread, released together; each one's error (None: it succeeded)."""
    barrier = threading.Barrier(len(writes))
    outcomes: list[BaseException | None] = [None] * len(writes)

    def run(i: int) -> None:
        barrier.wait()
        try:
            writes[i]()
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertions
            outcomes[i] = exc
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(writes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return outcomes


def test_two_engines_writing_the_two_halves_of_a_lineage_cycle_at_once_store_only_one(
        engines: tuple[Engine, Engine]) -> None:
    a, b = engines
    for n in range(25):
        outcomes = _race(lambda: a.touch(f"dataset:x{n}#derived_from@dataset:y{n}"),
                         lambda: b.touch(f"dataset:y{n}#derived_from@dataset:x{n}"))
        refused = [o for o in outcomes if o is not None]
        assert len(refused) == 1 and isinstance(refused[0], LineageCycleError), outcomes
        stored = [str(r) for r in a.read_relationships(RelationshipFilter(resource_type="dataset"),
                                                       consistency=Consistency.fully_consistent()).relationships]
        assert len([r for r in stored if r.endswith((f"x{n}", f"y{n}"))]) == 1, stored


def test_a_longer_cycle_closed_by_three_engines_at_once_is_refused(engines: tuple[Engine, Engine],
                                                                   pg_database: str) -> None:
    a, b = engines
    c = Engine.open(pg_database)
    try:
        for n in range(10):
            outcomes = _race(lambda: a.touch(f"dataset:p{n}#derived_from@dataset:q{n}"),
                             lambda: b.touch(f"dataset:q{n}#derived_from@dataset:r{n}"),
                             lambda: c.touch(f"dataset:r{n}#derived_from@dataset:p{n}"))
            assert sum(o is None for o in outcomes) == 2, outcomes
            assert all(o is None or isinstance(o, LineageCycleError) for o in outcomes), outcomes
    finally:
        c.close()


def test_a_write_on_one_engine_is_seen_by_the_other_at_its_token(engines: tuple[Engine, Engine]) -> None:
    a, b = engines
    b.check("dataset:d", "read", "user:ann")  # b caches its view of the head
    for n in range(20):
        token = a.touch(f"dataset:d{n}#owner@user:ann", f"dataset:d{n}#label@sensitivity:confidential").token
        assert b.check(f"dataset:d{n}", "read", "user:ann", consistency=Consistency.at_least_as_fresh(token)).allowed \
            is False  # owner, but not cleared for confidential
        token = a.touch("sensitivity:confidential#cleared@user:ann").token
        assert b.check(f"dataset:d{n}", "read", "user:ann",
                       consistency=Consistency.at_least_as_fresh(token)).allowed
        token = a.remove("sensitivity:confidential#cleared@user:ann").token
        assert not b.check(f"dataset:d{n}", "read", "user:ann", consistency=Consistency.fully_consistent()).allowed


def test_following_changes_on_one_engine_sees_the_writes_of_the_other(engines: tuple[Engine, Engine]) -> None:
    a, b = engines
    start = a.touch("team:t#member@user:ann").token
    seen: list[str] = []
    stop = threading.Event()

    def follow() -> None:
        for event in b.follow(start, poll_interval=0.05, timeout=20, stop=stop):
            seen.append(f"{event.operation.value} {event.relationship}")
            if len(seen) == 3:
                stop.set()
    thread = threading.Thread(target=follow)
    thread.start()
    a.touch("team:t#member@user:bob")
    a.touch("team:t#member@user:cat")
    a.remove("team:t#member@user:ann")
    thread.join(30)
    assert seen == ["touch team:t#member@user:bob", "touch team:t#member@user:cat", "delete team:t#member@user:ann"]


def test_a_declassification_raced_by_the_removal_of_its_steward_is_authorized_at_the_revision_it_lands(
        engines: tuple[Engine, Engine]) -> None:
    """Server A takes the steward's role away while server B writes the steward's declassification: either the
    declassification lands while the steward still holds the role, or it is refused; never after."""
    a, b = engines
    results: list[object] = []
    for n in range(20):
        a.touch(f"dataset:s{n}#steward@user:stew")
        outcomes = _race(lambda: a.remove(f"dataset:s{n}#steward@user:stew"),
                         lambda: results.append(b.touch(f"dataset:s{n}#scrubbed@sensitivity:pii", actor="user:stew",
                                                        reason="masked")))
        assert outcomes[0] is None, outcomes
        if outcomes[1] is not None:
            assert isinstance(outcomes[1], DeclassificationRefusedError), outcomes
            continue
        landed = decode_token(results[-1].token)  # type: ignore[attr-defined]
        before = a.read_relationships(RelationshipFilter(resource_type="dataset", resource_id=f"s{n}",
                                                         relation="steward"),
                                      consistency=Consistency.at_exact_snapshot(encode_token(landed - 1)))
        assert [str(r) for r in before.relationships] == [f"dataset:s{n}#steward@user:stew"]
