"""``headwater report`` on a database and on a server: the three formats, --output, --at, --since, errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from headwater.engine import Config, Engine
from headwater.engine.cli import main

from .conftest import POLICY, Target, example_relationships


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture()
def db(tmp_path: Path) -> tuple[str, str]:
    """The example in an audited SQLite file; (its path, the token of the example's revision)."""
    path = str(tmp_path / "report.db")
    with Engine.open(path, config=Config.of(audit=True)) as engine:
        engine.write_schema(POLICY.read_text(encoding="utf-8"))
        token = engine.touch(*example_relationships(), actor="user:stew", reason="anonymized").token
    return path, token


def test_json_on_a_database(db: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    path, token = db
    code, out, err = _run(["report", "--db", path], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["token"] == token and data["permissions"]["output"] == "view"
    pii = next(v for v in data["classifications"] if v["value"] == "pii")
    o2 = next(o for o in pii["objects"] if o["object"] == "output:o2")
    assert o2["paths"] == ["output:o2 -produced_by-> model:fraud -trained_on-> dataset:claims"]
    assert [v["subject"] for v in o2["viewers"]] == ["user:alice"]
    assert [(d["object"], d["actor"], d["reason"]) for d in pii["declassification_log"]] == [
        ("dataset:claims_anon", "user:stew", "anonymized")]


def test_csv_and_html_to_files(db: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = db
    code, out, err = _run(["report", "--db", path, "--format", "csv", "--output", str(tmp_path / "r.csv")], capsys)
    assert code == 0 and out == "" and "csv written to" in err
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text(encoding="utf-8"))))
    assert {"section": "viewer", "value": "pii", "object": "output:o2", "subject": "user:alice"}.items() <= next(
        r for r in rows if r["object"] == "output:o2" and r["value"] == "pii").items()
    code, _, err = _run(["report", "--db", path, "--format", "html", "--output", str(tmp_path / "r.html")], capsys)
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert code == 0 and "<title>Headwater compliance report at revision" in page and "output:o2" in page


def test_at_and_since(db: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    path, token = db
    with Engine.open(path) as engine:
        engine.touch("output:o5#produced_by@model:fraud", "output:o5#requester@user:alice")
    code, out, _ = _run(["report", "--db", path, "--at", token, "--classification", "sensitivity"], capsys)
    assert code == 0 and "output:o5" not in out
    code, out, _ = _run(["report", "--db", path, "--since", token, "--json"], capsys)
    data = json.loads(out)
    assert {c["relationship"] for c in data["changes"]} == {"output:o5#produced_by@model:fraud",
                                                            "output:o5#requester@user:alice"}
    pii = next(d for d in data["diff"] if d["value"] == "pii")
    assert pii["objects_added"] == ["output:o5"]


def test_errors(db: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = db
    code, _, err = _run(["report", "--db", path, "--classification", "nope"], capsys)
    assert code == 2 and "no classification 'nope'" in err
    code, _, err = _run(["report", "--db", path, "--at", "not-a-token"], capsys)
    assert code == 2 and "malformed consistency token" in err
    code, _, err = _run(["report", "--db", path, "--permission", "output=nope"], capsys)
    assert code == 2 and "output has no permission or relation nope" in err


def test_on_a_server_equals_on_the_database(targets: dict[str, Target], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_CONFIG_DIR", str(tmp_path / "config"))
    reports = {}
    for mode in ("db", "server"):
        code, out, err = _run(["report", *targets[mode].args, "--json"], capsys)
        assert code == 0, err
        reports[mode] = json.loads(out)
    for data in reports.values():  # other tests write to these targets: compare what the example holds
        data["classifications"] = [{**v, "objects": [o for o in v["objects"] if o["object"] in _EXAMPLE_OBJECTS],
                                    "declassification_log": []} for v in data["classifications"]]
    assert reports["db"]["classifications"] == reports["server"]["classifications"]
    assert reports["server"]["permissions"] == {"dataset": "read", "model": "use", "output": "view",
                                                "team": None, "user": None}


_EXAMPLE_OBJECTS = {r.split("#")[0] for r in example_relationships()}
