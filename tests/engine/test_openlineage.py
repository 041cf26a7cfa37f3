"""OpenLineage events into lineage and labels: the spec check, the mapping, the ids, and the write's rules."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.engine import Engine, LineageCycleError
from headwater.engine.errors import ConfigError, OpenLineageEventError
from headwater.engine.openlineage import (
    DEFAULT_MAPPING,
    SCHEMA_URL,
    Mapping,
    dataset_id,
    dataset_name,
    ingest,
    plan,
    validate_event,
)
from headwater.engine.store.memory import MemoryStore

REPO = Path(__file__).resolve().parents[2]
POLICY = (REPO / "examples/ai-lineage/policy.zed").read_text()
PIPELINE = [json.loads(line) for line in (REPO / "examples/openlineage/pipeline.ndjson").read_text().splitlines()]
OUTPUT = "output:s3=3A//ml-outputs|predictions/2026-12-06"
MODEL = "model:s3=3A//ml-artifacts|models/risk-v3"
CLAIMS = "dataset:postgres=3A//warehouse=3A5432|claims+public+customer_claims"


def engine() -> Engine:
    e = Engine(MemoryStore())
    e.write_schema(POLICY)
    return e


def run_event(job: str, inputs: list[tuple[str, str]], outputs: list[tuple[str, str]], *, event_type: str = "COMPLETE",
              tags: dict[tuple[str, str], list[dict]] | None = None) -> dict:
    tags = tags or {}

    def dataset(ns: str, name: str) -> dict:
        d: dict = {"namespace": ns, "name": name}
        if (ns, name) in tags:
            d["facets"] = {"tags": {"_producer": "https://example.com", "_schemaURL": "https://example.com/t",
                                    "tags": tags[(ns, name)]}}
        return d

    return {"eventType": event_type, "eventTime": "2026-12-06T10:00:00Z", "producer": "https://example.com/p",
            "schemaURL": SCHEMA_URL + "#/$defs/RunEvent", "run": {"runId": "3f5e1b2c-0d4a-4e8f-9a7b-6c5d4e3f2a1b"},
            "job": {"namespace": "jobs", "name": job}, "inputs": [dataset(*d) for d in inputs],
            "outputs": [dataset(*d) for d in outputs]}


# --- the spec -------------------------------------------------------------------------------------

def test_the_pipeline_fixture_events_are_valid_run_events() -> None:
    assert [validate_event(e) for e in PIPELINE] == ["run"] * 4


@pytest.mark.parametrize(("change", "message"), [
    (lambda e: e.pop("eventTime"), "'eventTime' is a required property"),
    (lambda e: e["run"].update(runId="not-a-uuid"), "$.run.runId: 'not-a-uuid' is not a 'uuid'"),
    (lambda e: e.update(eventType="DONE"), "$.eventType: 'DONE' is not one of"),
    (lambda e: e.update(producer="no scheme"), "$.producer: 'no scheme' is not a 'uri'"),
    (lambda e: e["job"].pop("name"), "'name' is a required property"),
    (lambda e: e["inputs"][0].pop("namespace"), "'namespace' is a required property"),
    (lambda e: e.update(eventTime="2026-12-06 10:00"), "is not a 'date-time'"),
    (lambda e: e["inputs"][0].update(facets={"tags": {"_producer": "https://x", "_schemaURL": "https://x",
                                                      "tags": [{"key": "pii"}]}}), "'value' is a required property"),
    (lambda e: e["inputs"][0].update(facets={"schema": {"fields": []}}), "$.inputs[0].facets.schema"),
])
def test_events_off_the_spec_are_refused_naming_the_problem(change, message: str) -> None:
    event = copy.deepcopy(PIPELINE[1])
    change(event)
    with pytest.raises(OpenLineageEventError) as caught:
        validate_event(event)
    assert message in str(caught.value)


def test_dataset_and_job_events_are_told_apart() -> None:
    base = {"eventTime": "2026-12-06T10:00:00Z", "producer": "https://example.com", "schemaURL": SCHEMA_URL}
    assert validate_event({**base, "dataset": {"namespace": "pg", "name": "t"}}) == "dataset"
    assert validate_event({**base, "job": {"namespace": "j", "name": "n"}, "inputs": [], "outputs": []}) == "job"
    with pytest.raises(OpenLineageEventError):
        validate_event([base])


# --- ids ------------------------------------------------------------------------------------------

@given(st.text(min_size=0, max_size=40), st.text(min_size=0, max_size=40))
def test_dataset_ids_round_trip_and_use_spicedb_id_characters(namespace: str, name: str) -> None:
    encoded = dataset_id(namespace, name)
    assert dataset_name(encoded) == (namespace, name)
    assert all(c.isascii() and (c.isalnum() or c in "/_|-=+") for c in encoded)


def test_dataset_ids_are_readable() -> None:
    assert dataset_id("postgres://warehouse:5432", "claims.public.customer_claims") == CLAIMS.split(":", 1)[1]
    with pytest.raises(ValueError):
        dataset_name("no-separator")
    with pytest.raises(OpenLineageEventError, match="more than 1024"):
        dataset_id("s3://x", "a" * 1100)


# --- mapping --------------------------------------------------------------------------------------

def test_the_pipeline_maps_to_lineage_and_labels_of_the_ai_lineage_policy() -> None:
    planned = plan(engine().schema(), PIPELINE)
    assert sorted(map(str, planned.relationships)) == sorted([
        f"{CLAIMS}#label@sensitivity:confidential",
        f"{CLAIMS}#label@sensitivity:pii",
        f"{MODEL}#trained_on@{CLAIMS}",
        "dataset:postgres=3A//warehouse=3A5432|claims+public+applications#label@sensitivity:internal",
        f"{OUTPUT}#produced_by@{MODEL}",
        f"{OUTPUT}#input@dataset:postgres=3A//warehouse=3A5432|claims+public+applications",
    ])
    assert (planned.recorded, planned.ignored) == (4, 0)  # the START events carry the input's tags


def test_started_failed_and_aborted_runs_record_no_lineage() -> None:
    for state in ("START", "FAIL", "ABORT"):
        planned = plan(engine().schema(), [run_event("etl", [("pg", "a")], [("pg", "b")], event_type=state)])
        assert (planned.relationships, planned.recorded, planned.ignored) == ((), 0, 1)
    running = run_event("etl", [("pg", "a")], [("pg", "b")], event_type="RUNNING")
    assert plan(engine().schema(), [running]).relationships == ()
    mapping = Mapping.from_toml({"openlineage": {"event_types": ["COMPLETE", "RUNNING"]}})
    assert [str(r) for r in plan(engine().schema(), [running], mapping).relationships] == [
        "dataset:pg|b#derived_from@dataset:pg|a"]


def test_a_dataset_read_and_written_by_one_run_gets_no_edge_to_itself() -> None:
    event = run_event("etl", [("pg", "a"), ("pg", "b")], [("pg", "b")])
    assert [str(r) for r in plan(engine().schema(), [event]).relationships] == ["dataset:pg|b#derived_from@dataset:pg|a"]


def test_configured_rules_choose_types_and_relations() -> None:
    mapping = Mapping.from_toml({"openlineage": {
        "datasets": [{"namespace": "registry", "type": "model"}],
        "jobs": [{"name": "serve_*", "outputs": "output", "relations": {"model": "produced_by"}}],
        "tags": [{"key": "class", "value": "secret*", "label": "sensitivity:restricted"}],
    }})
    event = run_event("serve_v1", [("registry", "m1"), ("pg", "x")], [("out", "o1")],
                      tags={("pg", "x"): [{"key": "class", "value": "SECRET-2"}, {"key": "class", "value": "open"}]})
    assert sorted(str(r) for r in plan(engine().schema(), [event], mapping).relationships) == [
        "dataset:pg|x#label@sensitivity:restricted",
        "output:out|o1#input@dataset:pg|x",
        "output:out|o1#produced_by@model:registry|m1",
    ]


@pytest.mark.parametrize(("event", "message"), [
    (run_event("etl", [("pg", "a")], [("pg", "b")], tags={("pg", "a"): [{"key": "sensitivity", "value": "top"}]}),
     "`top` is not a value of classification `sensitivity`"),
    (run_event("train_x", [("pg", "a")], [("s3", "m")], tags={("s3", "m"): [{"key": "pii", "value": "true"}]}),
     "`model` has no relation `label`"),
    (run_event("infer_x", [("pg", "a")], [("out", "o")]) | {"outputs": [{"namespace": "out", "name": "o"}],
                                                           "inputs": [{"namespace": "x", "name": "models/q"},
                                                                      {"namespace": "y", "name": "models/r"},
                                                                      {"namespace": "o", "name": "outputs"}]},
     None),
    (run_event("train_x", [("s3", "models/base")], [("s3", "models/tuned")]),
     "no lineage relation of `model` accepts `model`"),
])
def test_events_the_mapping_cannot_record_are_refused(event: dict, message: str | None) -> None:
    e = engine()
    if message is None:  # a valid, mappable event: the control case
        assert plan(e.schema(), [event]).relationships
        return
    with pytest.raises(OpenLineageEventError, match=message.replace("`", ".").replace("(", ".")):
        plan(e.schema(), [event])
    with pytest.raises(OpenLineageEventError, match="^event 2: "):
        plan(e.schema(), [PIPELINE[1], event])


def test_a_mapping_to_a_type_the_schema_lacks_is_refused() -> None:
    mapping = Mapping.from_toml({"openlineage": {"default_type": "table"}})
    with pytest.raises(OpenLineageEventError, match="maps to type `table`"):
        plan(engine().schema(), [PIPELINE[1]], mapping)


@pytest.mark.parametrize(("table", "message"), [
    ({}, "no \\[openlineage\\] table"),
    ({"openlineage": {"dataset": []}}, "unknown key 'dataset'"),
    ({"openlineage": {"datasets": [{"name": "x"}]}}, "without 'type'"),
    ({"openlineage": {"tags": [{"key": "pii", "label": "pii"}]}}, "not `classification:value`"),
    ({"openlineage": {"event_types": ["START"]}}, "cannot be recorded"),
    ({"openlineage": {"jobs": {"name": "x"}}}, "a list of tables"),
])
def test_bad_mappings_are_refused_naming_the_key(table: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Mapping.from_toml(table)


# --- the write ------------------------------------------------------------------------------------

def test_ingesting_makes_the_output_inherit_the_datasets_labels_and_denies_the_uncleared() -> None:
    e = engine()
    e.touch("sensitivity:internal#cleared@user:bob", "sensitivity:confidential#cleared@user:alice",
            "sensitivity:pii#cleared@user:alice", f"{OUTPUT}#requester@user:bob", f"{OUTPUT}#requester@user:alice")
    result = ingest(e, PIPELINE)
    assert (result.events, result.recorded, result.relationships, result.written) == (4, 4, 6, True)
    labels = {v.value: v.paths for c in e.effective_labels(OUTPUT).classifications for v in c.values}
    assert labels["pii"] == (f"{OUTPUT} -produced_by-> {MODEL} -trained_on-> {CLAIMS}",)
    assert set(labels) == {"confidential", "pii", "internal"}
    assert [a.object.type for a in e.ancestors(OUTPUT).items] == ["model", "dataset", "dataset"]
    assert e.check(OUTPUT, "view", "user:alice").allowed
    assert not e.check(OUTPUT, "view", "user:bob").allowed


def test_the_same_events_again_change_nothing_and_order_does_not_matter() -> None:
    forward, backward = engine(), engine()
    first = ingest(forward, PIPELINE)
    again = ingest(forward, PIPELINE)
    assert (again.written, again.token) == (False, first.token)
    for event in reversed(PIPELINE):
        ingest(backward, [event])
    assert sorted(map(str, forward.export_relationships())) == sorted(map(str, backward.export_relationships()))


def test_a_cyclic_event_is_refused_whole() -> None:
    e = engine()
    ingest(e, [run_event("etl", [("pg", "a")], [("pg", "b")])])
    before = sorted(map(str, e.export_relationships()))
    cyclic = run_event("etl", [("pg", "b")], [("pg", "a"), ("pg", "c")],
                       tags={("pg", "c"): [{"key": "pii", "value": "true"}]})
    with pytest.raises(LineageCycleError):
        ingest(e, [cyclic])
    assert sorted(map(str, e.export_relationships())) == before


def test_a_batch_with_one_bad_event_stores_nothing() -> None:
    e = engine()
    bad = copy.deepcopy(PIPELINE[3])
    bad["run"]["runId"] = "x"
    with pytest.raises(OpenLineageEventError, match="^event 4: "):
        ingest(e, [*PIPELINE[:3], bad])
    assert list(e.export_relationships()) == []


def test_the_default_mapping_matches_the_docs() -> None:
    assert DEFAULT_MAPPING.dataset_type("s3://ml-artifacts", "models/risk-v3") == "model"
    assert DEFAULT_MAPPING.job_rule("spark://ml-cluster", "batch_inference.predict_risk").outputs == "output"


CHAIN_SCHEMA = """
classification sensitivity {
    levels public < secret
    cleared: user
}
definition user {}
definition dataset {
    relation label: sensitivity
    lineage derived_from: dataset | output
}
definition model {
    lineage trained_on: dataset
}
definition output {
    lineage produced_by: model
    lineage input: dataset
}
"""


@pytest.mark.parametrize("batched", [True, False])
def test_a_derived_output_read_downstream_keeps_its_type_and_its_labels(batched: bool) -> None:
    e = Engine(MemoryStore())
    e.write_schema(CHAIN_SCHEMA)
    events = [run_event("train", [("pg", "raw")], [("s3", "models/m")],
                        tags={("pg", "raw"): [{"key": "sensitivity", "value": "secret"}]}),
              run_event("predict", [("s3", "models/m")], [("s3", "scores")]),
              run_event("report", [("s3", "scores")], [("pg", "weekly")])]  # reads the predictions
    if batched:
        ingest(e, events)
    else:
        for event in events:
            ingest(e, [event])
    assert "dataset:pg|weekly#derived_from@output:s3|scores" in {str(r) for r in e.export_relationships()}
    labels = {v.value: v.paths for c in e.effective_labels("dataset:pg|weekly").classifications for v in c.values}
    assert labels == {"secret": ("dataset:pg|weekly -derived_from-> output:s3|scores -produced_by-> model:s3|models/m "
                                 "-trained_on-> dataset:pg|raw",)}


def test_a_derived_output_the_policy_cannot_link_downstream_is_refused_not_dropped() -> None:
    e = engine()  # the AI-lineage policy: a dataset cannot derive from an output
    ingest(e, [PIPELINE[3]])
    downstream = run_event("report", [("s3://ml-outputs", "predictions/2026-12-06")], [("pg", "weekly")])
    with pytest.raises(OpenLineageEventError, match="no lineage relation of `dataset` accepts `output`"):
        ingest(e, [downstream])
