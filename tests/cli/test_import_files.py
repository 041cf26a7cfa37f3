"""`headwater import`: relationship files and validation files, re-runs made safe by --touch / --skip-existing,
and declassifications authorized against their own batch (a steward granted in the same file counts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.engine import Engine
from headwater.engine.cli import main
from headwater.engine.config import Config
from headwater.engine.service.server import HeadwaterServer

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "ai-lineage" / "validation.yaml"
STEW = ["--actor", "user:stew", "--reason", "first load"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_validation_file_loads_schema_and_relationships(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "hw.db"
    code, _, err = run(capsys, "import", str(EXAMPLE), "--db", str(db))
    assert code == 2 and "holds declassifications: give --actor" in err
    assert not db.exists()  # refused before anything was written
    code, out, _ = run(capsys, "import", str(EXAMPLE), "--db", str(db), *STEW)
    assert code == 0 and out.startswith("wrote the schema, imported 41 relationships")
    engine = Engine.open(db)
    try:
        assert engine.check("output:o1", "view", "user:frank").allowed
        # the declassification (by user:stew, made steward in the same file) is in force: frank reads claims_anon
        assert engine.check("dataset:claims_anon", "read", "user:frank").allowed
    finally:
        engine.close()


def test_a_re_run_is_safe_with_touch_or_skip_existing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "hw.db"
    assert run(capsys, "import", str(EXAMPLE), "--db", str(db), *STEW)[0] == 0
    code, _, err = run(capsys, "import", str(EXAMPLE), "--db", str(db), *STEW)
    assert code == 1 and "already exists" in err and f"{EXAMPLE}:7:" in err  # the file's own line
    code, out, _ = run(capsys, "import", str(EXAMPLE), "--db", str(db), *STEW, "--touch")
    assert code == 0 and out.startswith("the schema was already stored; imported 41 relationships")
    code, out, _ = run(capsys, "import", str(EXAMPLE), "--db", str(db), *STEW, "--skip-existing", "--json")
    assert code == 0 and '"schema_written": false' in out
    code, _, err = run(capsys, "import", str(EXAMPLE), "--db", str(db), "--touch", "--skip-existing")
    assert code == 2 and "not both" in err


def test_a_relationship_file_with_touch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "hw.db"
    assert run(capsys, "schema", "write", str(REPO / "examples" / "ai-lineage" / "policy.zed"), "--db", str(db))[0] == 0
    rels = tmp_path / "rels.txt"
    rels.write_text("team:analysts#member@user:alice\nsensitivity:confidential#cleared@team:analysts#member\n")
    assert run(capsys, "import", str(rels), "--db", str(db))[0] == 0
    assert run(capsys, "import", str(rels), "--db", str(db))[0] == 1
    code, out, _ = run(capsys, "import", str(rels), "--db", str(db), "--touch")
    assert code == 0 and out.startswith("imported 2 relationships")
    code, out, _ = run(capsys, "import", str(rels), "--db", str(db), "--skip-existing")
    assert code == 0 and out.startswith("imported 0 relationships")


def test_a_validation_file_through_a_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = HeadwaterServer(Config.of(address="127.0.0.1:0", db=str(tmp_path / "s.db"),
                                       insecure_no_auth=True)).start()
    try:
        code, out, err = run(capsys, "import", str(EXAMPLE), "--server", server.address, *STEW)
        assert code == 0, err
        assert out.startswith("wrote the schema, imported 41 relationships")
        code, out, err = run(capsys, "import", str(EXAMPLE), "--server", server.address, *STEW, "--touch")
        assert code == 0, err
        code, out, err = run(capsys, "check", "output:o1", "view", "user:frank", "--server", server.address)
        assert code == 0 and out.startswith("HAS_PERMISSION")
    finally:
        server.stop()
