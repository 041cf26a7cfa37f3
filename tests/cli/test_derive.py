"""``headwater derive`` against a database (--db) and a running server (--server): the derivation recorded and
answered at its revision, a repeat unchanged, --json, a cycle refused whole with a message naming it, bad
arguments refused before anything is written."""

from __future__ import annotations

import json

import pytest

from headwater.engine.cli import main

from .conftest import Target

MODES = ["db", "server"]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(autouse=True)
def _no_saved_context(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("HEADWATER_DB", raising=False)
    monkeypatch.setenv("HEADWATER_CONFIG_DIR", str(tmp_path / "config"))


@pytest.mark.parametrize("mode", MODES)
def test_derive_records_and_answers_then_a_repeat_is_unchanged(mode: str, targets: dict[str, Target],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    obj, where = f"output:d_{mode}", targets[mode].args
    derivation = [obj, "--lineage", "produced_by=model:fraud", "--relationship", f"{obj}#requester@user:alice",
                  "--relationship", f"{obj}#requester@user:bob"]
    code, out, err = _run(["derive", *derivation, "--check", "view@user:alice", "--check", "view@user:bob",
                           "--actor", "user:pipeline", "--reason", "inference 7", *where], capsys)
    assert code == 1, err  # bob may not view it: as `headwater check`, a denial exits 1
    lines = out.splitlines()
    assert lines[0].startswith(f"{obj}: written at hw1_")
    token = lines[0].rsplit(" ", 1)[1]
    assert f"  sensitivity:pii  from {obj} -produced_by-> model:fraud -trained_on-> dataset:claims" in lines
    assert lines[-2:] == ["view@user:alice  HAS_PERMISSION", "view@user:bob  NO_PERMISSION"]

    code, out, err = _run(["derive", *derivation, "--check", "view@user:alice", *where, "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["written"] is False and data["token"] == token and data["object"] == obj
    values = {v["value"]: v["paths"] for c in data["classifications"] for v in c["values"]}
    assert values["confidential"] == [f"{obj} -produced_by-> model:fraud -trained_on-> dataset:claims"]
    assert data["decisions"] == [{"permission": "view", "subject": "user:alice", "permissionship": "HAS_PERMISSION",
                                  "missing_context": []}]
    code, out, _ = _run(["relationships", "read", "--resource-type", "output", "--resource-id", f"d_{mode}", *where],
                        capsys)
    assert sorted(out.split()) == sorted([f"{obj}#produced_by@model:fraud", f"{obj}#requester@user:alice",
                                          f"{obj}#requester@user:bob"])


@pytest.mark.parametrize("mode", MODES)
def test_a_cycle_is_refused_whole_naming_it(mode: str, targets: dict[str, Target],
                                            capsys: pytest.CaptureFixture[str]) -> None:
    a, b, where = f"dataset:cy_a_{mode}", f"dataset:cy_b_{mode}", targets[mode].args
    code, out, err = _run(["derive", b, "--lineage", f"derived_from={a}", *where], capsys)
    assert code == 0 and "written" in out, err
    code, out, err = _run(["derive", a, "--lineage", f"derived_from={b}", "--relationship", f"{a}#owner@user:dan",
                           *where, "--json"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and f"{a} -derived_from-> {b} -derived_from-> {a}" in err
    code, out, _ = _run(["relationships", "read", "--resource-type", "dataset", "--resource-id", f"cy_a_{mode}",
                         *where], capsys)
    assert code == 0 and out == ""  # not even the owner


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("args, message", [
    (["--lineage", "produced_by"], "expected RELATION=OBJECT"),
    (["--lineage", "produced_by=model:fraud", "--check", "view"], "expected PERMISSION@SUBJECT"),
    (["--lineage", "requester=user:bob"], "`requester` is not a lineage relation of `output`"),
    (["--lineage", "produced_by=model:fraud", "--relationship", "output:other#requester@user:bob"],
     "are the derived object's"),
    (["--lineage", "produced_by=model:fraud", "--context", "[1]"], "--context must be a JSON object"),
])
def test_bad_arguments_write_nothing(mode: str, args: list[str], message: str, targets: dict[str, Target],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(["derive", f"output:bad_{mode}", *args, *targets[mode].args], capsys)
    assert code == 2 and message in err, err
    code, out, _ = _run(["relationships", "read", "--resource-type", "output", "--resource-id", f"bad_{mode}",
                         *targets[mode].args], capsys)
    assert out == ""


def test_lineage_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["derive", "output:o1", "--db", "unused.db"])
    assert usage.value.code == 2 and "--lineage" in capsys.readouterr().err
