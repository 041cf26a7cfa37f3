"""``headwater impact`` and ``headwater schema diff ... --impact`` on an audited database: the changed decisions,
the counts, --json, the exit codes (0 nothing changes, 1 something does or the proposal is refused, 2 errors),
and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from headwater.engine import Config, Engine
from headwater.engine.cli import main

from .conftest import POLICY, Target, example_relationships

OPEN = POLICY.read_text(encoding="utf-8").replace("permission view = requester & cleared",
                                                  "permission view = requester")


@pytest.fixture
def db(tmp_path: Path) -> str:
    """The ai-lineage example in an audited SQLite file, with a decision recorded for each output and user."""
    path = str(tmp_path / "h.db")
    with Engine.open(path, config=Config.of(audit=True)) as engine:
        engine.write_schema(POLICY.read_text(encoding="utf-8"))
        engine.touch(*example_relationships(), actor="user:stew", reason="seed")
        for output in ("output:o1", "output:o2", "output:o3"):
            for user in ("alice", "bob", "frank"):
                engine.check(output, "view", f"user:{user}")
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _state(db: str) -> tuple[int, int]:
    with Engine.open(db) as engine:
        return engine.store.head(), len(engine.audit_query(limit=1000).records)


def test_schema_diff_impact_lists_the_opened_outputs(db: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    new = tmp_path / "open.zed"
    new.write_text(OPEN, encoding="utf-8")
    state = _state(db)
    code, out, err = _run(["schema", "diff", str(new), "--impact", "--db", db], capsys)
    assert code == 1, err
    lines = out.splitlines()
    assert "~ permission output#view" in lines
    assert "impact at hw1_" in out and "9 decision records read, 9 checks asked again, 0 skipped" in out
    assert "2 changed: 2 opened, 0 closed, 0 conditional, 0 errors" in lines
    assert any(ln.startswith("opened      output:o2#view@user:frank  NO_PERMISSION -> HAS_PERMISSION  (records #")
               for ln in lines), out
    assert "    granted: output:o2#view for user:frank" in lines
    # OLD NEW: the answers under OLD against those under NEW, over the stored data; --json adds "impact"
    code, out, _ = _run(["schema", "diff", str(POLICY), str(new), "--impact", "--db", db, "--json"], capsys)
    document = json.loads(out)
    assert code == 1 and set(document) == {"old", "new", "diff", "changes", "impact"}
    impact = document["impact"]
    assert (impact["changed"], impact["opened"], impact["closed"]) == (2, 2, 0)
    assert set(impact["changes"][0]) == {"change", "resource", "permission", "subject", "before", "after",
                                         "before_missing", "after_missing", "explanation", "records"}
    # the same file: nothing changes, exit 0; without --impact, diff as before
    assert _run(["schema", "diff", str(POLICY), "--impact", "--db", db], capsys)[:2][0] == 0
    code, out, _ = _run(["schema", "diff", str(POLICY), str(new), "--json"], capsys)
    assert code == 0 and "impact" not in json.loads(out)
    assert _state(db) == state


def test_impact_of_relationship_changes(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    changes = tmp_path / "changes.txt"
    changes.write_text("// the analysts lose their clearance\n-sensitivity:confidential#cleared@team:analysts#member\n",
                       encoding="utf-8")
    state = _state(db)
    code, out, err = _run(["impact", "--relationships", str(changes), "--db", db, "--json"], capsys)
    assert code == 1, err
    document = json.loads(out)
    assert {"token", "decisions", "checks", "skipped", "changed", "opened", "closed", "conditional", "errors",
            "refused", "changes"} == set(document)
    assert [(c["resource"], c["subject"], c["change"]) for c in document["changes"]] == [
        ("output:o2", "user:alice", "closed")]
    assert document["changes"][0]["explanation"][0] == "denied: output:o2#view for user:alice"
    code, out, _ = _run(["impact", "--schema", str(POLICY), "--db", db], capsys)
    assert code == 0 and "no recorded decision changes" in out
    code, out, _ = _run(["impact", "--schema", str(POLICY), "--db", db, "--since", "2999-01-01"], capsys)
    assert code == 0 and "0 decision records read" in out
    assert _state(db) == state


def test_a_refused_proposal_exits_1(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    narrower = tmp_path / "narrower.zed"
    narrower.write_text(POLICY.read_text(encoding="utf-8").replace("    relation steward: user\n", "", 1).replace(
        "declassify scrubbed: sensitivity by steward", "relation scrubbed: sensitivity"), encoding="utf-8")
    code, out, _ = _run(["impact", "--schema", str(narrower), "--db", db], capsys)
    assert code == 1
    assert "would be REFUSED" in out and "refused: cannot remove relation `dataset#steward`" in out


def test_errors_exit_2(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(["impact", "--db", db], capsys)
    assert code == 2 and "give --schema FILE, --relationships FILE, or both" in err
    bad = tmp_path / "bad.txt"
    bad.write_text("+dataset:claims#viewer@user:zed\nnonsense\n", encoding="utf-8")
    code, _, err = _run(["impact", "--relationships", str(bad), "--db", db], capsys)
    assert code == 2 and "line 2" in err
    code, _, err = _run(["schema", "diff", str(POLICY), str(POLICY), "--impact", "--server", "localhost:1"], capsys)
    assert code == 2 and "UNAVAILABLE" in err  # no server there: a clear error, exit 2
    plain = str(tmp_path / "plain.db")
    with Engine.open(plain) as engine:
        engine.write_schema(POLICY.read_text(encoding="utf-8"))
    code, _, err = _run(["impact", "--schema", str(POLICY), "--db", plain], capsys)
    assert code == 2 and "audit" in err


@pytest.mark.parametrize("mode", ["db", "server", "tls"])
def test_schema_diff_impact_on_every_target(mode: str, targets: dict[str, Target], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """OLD and NEW compared over the stored data where the audit log is: the seeded decision (alice reads
    dataset:claims as a viewer, through team:analysts) is closed by a NEW that lets only owners read."""
    owners_only = tmp_path / "owners-only.zed"
    owners_only.write_text(POLICY.read_text(encoding="utf-8").replace(
        "permission read = (owner + viewer) & cleared", "permission read = owner & cleared"), encoding="utf-8")
    code, out, err = _run(["schema", "diff", str(POLICY), str(owners_only), "--impact", *targets[mode].args], capsys)
    assert code == 1, err
    assert "~ permission dataset#read" in out
    assert "closed      dataset:claims#read@user:alice  HAS_PERMISSION -> NO_PERMISSION" in out
