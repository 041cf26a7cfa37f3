"""``headwater openlineage ingest`` and ``id``: a file of events recorded on a database or through a server, a repeat
unchanged, bad lines named by number with nothing of their batch stored, cycles refused whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headwater.engine import Engine
from headwater.engine.cli import main

from .conftest import REPO, Target

MODES = ["db", "server"]
PIPELINE = REPO / "examples" / "openlineage" / "pipeline.ndjson"
OUTPUT = "output:s3=3A//ml-outputs|predictions/2026-12-06"
MODEL = "model:s3=3A//ml-artifacts|models/risk-v3"
CLAIMS = "dataset:postgres=3A//warehouse=3A5432|claims+public+customer_claims"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def _no_saved_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEADWATER_DB", raising=False)
    monkeypatch.setenv("HEADWATER_CONFIG_DIR", str(tmp_path / "config"))


def _event(job: str, inputs: list[str], outputs: list[str]) -> str:
    return json.dumps({"eventType": "COMPLETE", "eventTime": "2026-12-06T10:00:00Z", "producer": "https://x.example",
                       "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                       "run": {"runId": "3f5e1b2c-0d4a-4e8f-9a7b-6c5d4e3f2a1b"},
                       "job": {"namespace": "etl", "name": job},
                       "inputs": [{"namespace": "pg", "name": n} for n in inputs],
                       "outputs": [{"namespace": "pg", "name": n} for n in outputs]})


@pytest.mark.parametrize("mode", MODES)
def test_ingest_records_the_pipeline_and_the_output_inherits_its_labels(mode: str, targets: dict[str, Target],
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    where = targets[mode].args
    code, out, err = _run(["openlineage", "ingest", str(PIPELINE), *where], capsys)
    assert code == 0, err
    assert out.startswith("4 events read, 4 recorded, 0 ignored: 6 relationships at hw1_")
    code, out, err = _run(["labels", OUTPUT, *where, "--json"], capsys)
    values = {v["value"]: v["paths"] for c in json.loads(out)["classifications"] for v in c["values"]}
    assert values["pii"] == [f"{OUTPUT} -produced_by-> {MODEL} -trained_on-> {CLAIMS}"]
    code, out, err = _run(["openlineage", "ingest", str(PIPELINE), *where, "--json", "--batch", "3"], capsys)
    assert code == 0, err
    # counted per batch: the applications table's label is in both batches of 3 and 1 events
    assert {k: v for k, v in json.loads(out).items() if k != "revision"} == {
        "events": 4, "recorded": 4, "ignored": 0, "relationships": 7}


@pytest.mark.parametrize("mode", MODES)
def test_a_bad_line_is_named_and_nothing_of_its_batch_is_stored(mode: str, targets: dict[str, Target], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    where = targets[mode].args
    good = [_event("copy", [f"src_{mode}"], [f"dst_{mode}"]), _event("copy", [f"dst_{mode}"], [f"dst2_{mode}"])]
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join([good[0], "", good[1], '{"eventTime": "2026-12-06T10:00:00Z"}']) + "\n")
    code, out, err = _run(["openlineage", "ingest", str(path), "--batch", "2", *where], capsys)
    assert code == 2
    assert f"{path}:4: $: 'producer' is a required property; nothing of {path}:4 was stored (the 2 events before " \
           "it were, at hw1_" in err
    code, out, err = _run(["ancestors", f"dataset:pg|dst2_{mode}", *where, "--json"], capsys)
    assert [json.loads(line)["object"] for line in out.splitlines()] == [f"dataset:pg|dst_{mode}",
                                                                         f"dataset:pg|src_{mode}"]
    path.write_text("{not json\n")
    code, out, err = _run(["openlineage", "ingest", str(path), *where], capsys)
    assert code == 2 and f"{path}:1: not JSON" in err


@pytest.mark.parametrize("mode", MODES)
def test_a_cyclic_batch_is_refused_whole(mode: str, targets: dict[str, Target], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    where = targets[mode].args
    path = tmp_path / "cycle.ndjson"
    path.write_text(_event("copy", [f"a_{mode}"], [f"b_{mode}"]) + "\n" + _event("copy", [f"b_{mode}"], [f"a_{mode}"])
                    + "\n")
    code, out, err = _run(["openlineage", "ingest", str(path), *where], capsys)
    assert code == 2 and "cycl" in err and f"{path}:1-2" in err
    code, out, err = _run(["ancestors", f"dataset:pg|b_{mode}", *where, "--json"], capsys)
    assert out == ""


def test_the_mapping_file_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "hw.db"
    with Engine.open(str(db)) as engine:
        engine.write_schema((REPO / "examples/ai-lineage/policy.zed").read_text())
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[openlineage]\n[[openlineage.datasets]]\nnamespace = "pg"\ntype = "model"\n')
    assert _run(["openlineage", "id", "pg", "t", "--mapping", str(mapping)], capsys)[1] == "model:pg|t\n"
    assert _run(["openlineage", "id", "pg", "t"], capsys)[1] == "dataset:pg|t\n"
    mapping.write_text('[openlineage]\ndatasets = 3\n')
    code, out, err = _run(["openlineage", "ingest", str(PIPELINE), "--mapping", str(mapping), "--db", str(db)], capsys)
    assert code == 2 and "datasets: a list of tables" in err
