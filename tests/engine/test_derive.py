"""Engine.derive (engine/queries/derive.py): a derived object, its lineage and relationships in one atomic write,
its label and decisions at that revision; cycles refused whole, a repeat writes nothing, bad input refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.engine import Engine
from headwater.engine.errors import InvalidRequestError, LineageCycleError
from headwater.engine.store.memory import MemoryStore

POLICY = (Path(__file__).resolve().parents[2] / "examples" / "ai-lineage" / "policy.zed").read_text()


@pytest.fixture()
def engine() -> Engine:
    engine = Engine(MemoryStore())
    engine.write_schema(POLICY)
    engine.touch("dataset:claims#label@sensitivity:confidential", "dataset:claims#label@sensitivity:pii",
                 "model:risk#trained_on@dataset:claims", "sensitivity:confidential#cleared@user:alice",
                 "sensitivity:pii#cleared@user:alice", "dataset:q1#label@sensitivity:internal")
    return engine


def test_a_derivation_is_one_write_answered_at_its_revision(engine: Engine) -> None:
    head = engine.store.head()
    result = engine.derive("output:o1", {"produced_by": ["model:risk"], "input": ["dataset:q1"]},
                           relationships=["output:o1#requester@user:alice", "output:o1#requester@user:bob"],
                           checks=[("view", "user:alice"), ("view", "user:bob")], actor="user:pipeline",
                           reason="inference 42")
    assert result.written and engine.store.head() == head + 1  # one revision for the whole derivation
    assert engine.store.revision_metadata(head + 1) == {"actor": "user:pipeline", "reason": "inference 42"}
    labels = {v.value: v.paths for c in result.labels.classifications for v in c.values}
    assert labels["pii"] == ("output:o1 -produced_by-> model:risk -trained_on-> dataset:claims",)
    assert labels["internal"] == ("output:o1 -input-> dataset:q1",)
    assert result.labels.token == result.token
    assert [(d.permissionship.name, d.token) for d in result.decisions] == [
        ("HAS_PERMISSION", result.token), ("NO_PERMISSION", result.token)]


def test_the_same_derivation_again_writes_nothing(engine: Engine) -> None:
    first = engine.derive("output:o2", {"produced_by": ["model:risk"]}, relationships=["output:o2#requester@user:bob"])
    head = engine.store.head()
    again = engine.derive("output:o2", {"produced_by": ["model:risk"]}, relationships=["output:o2#requester@user:bob"],
                          checks=[("view", "user:bob")])
    assert not again.written and engine.store.head() == head and again.token == first.token
    assert again.labels.classifications == first.labels.classifications
    more = engine.derive("output:o2", {"produced_by": ["model:risk"], "input": ["dataset:q1"]})
    assert more.written  # new content is written


def test_a_cyclic_derivation_is_refused_whole(engine: Engine) -> None:
    engine.derive("dataset:d2", {"derived_from": ["dataset:d1"]})
    head = engine.store.head()
    with pytest.raises(LineageCycleError, match="dataset:d1 -derived_from-> dataset:d2 -derived_from-> dataset:d1"):
        engine.derive("dataset:d1", {"derived_from": ["dataset:d2"]}, relationships=["dataset:d1#owner@user:ann"])
    assert engine.store.head() == head  # not even the owner


@pytest.mark.parametrize("obj, lineage, relationships, message", [
    ("output:o3", {}, (), "needs its lineage: one or more of input, produced_by"),
    ("output:o3", {"requester": ["user:bob"]}, (), "`requester` is not a lineage relation of `output`"),
    ("output:o3", {"produced_by": []}, (), "names no object"),
    ("output:o3", {"produced_by": ["model:risk"]}, ["output:other#requester@user:bob"],
     "a derivation's relationships are the derived object's"),
    ("nope:o3", {"produced_by": ["model:risk"]}, (), "object definition `nope` not found"),
])
def test_bad_derivations_are_refused_before_anything_is_written(engine: Engine, obj: str, lineage: dict,
                                                                relationships: tuple, message: str) -> None:
    head = engine.store.head()
    with pytest.raises(InvalidRequestError, match=message):
        engine.derive(obj, lineage, relationships=relationships)
    assert engine.store.head() == head
