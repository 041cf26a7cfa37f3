"""Backups (engine/backup.py, `headwater backup create|restore`): one file holding a store, restored exactly.

The round trip runs at scale 1 of the benchmark workload (about 50,000 relationships with
caveats, expirations, lineage and declassifications), through the CLI on SQLite files,
and through a server; damaged files are refused before anything is written.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from benchmarks.workload import generate
from headwater.engine import Engine, Operation, RelationshipFilter, Update, parse_relationship
from headwater.engine.backup import read_header, verify
from headwater.engine.cli import main
from headwater.engine.config import Config
from headwater.engine.service.server import HeadwaterServer

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "ai-lineage" / "validation.yaml"


def contents(db: Path) -> tuple[str, list[str]]:
    engine = Engine.open(db)
    try:
        return engine.read_schema().text, sorted(str(r) for r in engine.export_relationships())
    finally:
        engine.close()


@pytest.fixture(scope="module")
def scale_1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store holding the scale-1 workload."""
    db = tmp_path_factory.mktemp("scale1") / "source.db"
    workload = generate(scale=1)
    engine = Engine.open(db)
    engine.write_schema(workload.headwater_schema)
    rels = [parse_relationship(r) for r in workload.relationships]
    for i in range(0, len(rels), 1000):
        engine.write([Update(Operation.TOUCH, r) for r in rels[i:i + 1000]], trusted=True)
    engine.close()
    return db


def test_a_scale_1_store_round_trips_through_the_cli(scale_1: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    backup = tmp_path / "store.backup.gz"
    assert main(["backup", "create", str(backup), "--db", str(scale_1)]) == 0
    created = capsys.readouterr().out
    schema, relationships = contents(scale_1)
    assert f"backed up {len(relationships):,}".replace(",", "") in created.replace(",", "")
    header, count = verify(backup)
    assert count == len(relationships) > 40_000
    assert header.schema_text == schema and header.schema_version == 1
    assert header.token.startswith("hw1_") and header.schema_history[0]["actor"] is None
    restored = tmp_path / "restored.db"
    assert main(["backup", "restore", str(backup), "--db", str(restored)]) == 0
    assert "restored" in capsys.readouterr().out
    assert contents(restored) == (schema, relationships)
    # the restore is recorded: every revision after the schema says who and why
    engine = Engine.open(restored)
    try:
        head = engine.store.head()
        assert engine.store.revision_metadata(head)["actor"] == "restore"
    finally:
        engine.close()


def test_a_restore_needs_an_empty_store(scale_1: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    backup = tmp_path / "b.backup"
    assert main(["backup", "create", str(backup), "--db", str(scale_1)]) == 0
    head = Engine.open(scale_1).store.head()
    assert main(["backup", "restore", str(backup), "--db", str(scale_1)]) == 2
    assert "empty store only" in capsys.readouterr().err
    assert Engine.open(scale_1).store.head() == head


def test_damaged_backups_are_refused_before_anything_is_written(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "s.db"
    engine = Engine.open(source)
    engine.write_schema("definition user {}\ndefinition doc {\n relation viewer: user\n}")
    engine.touch(*[f"doc:{i}#viewer@user:u{i}" for i in range(20)])
    engine.close()
    backup = tmp_path / "s.backup"
    assert main(["backup", "create", str(backup), "--db", str(source)]) == 0
    lines = backup.read_text().splitlines(keepends=True)
    cases = {
        "truncated": "".join(lines[:-3]),
        "altered": "".join(lines).replace("doc:7#viewer@user:u7", "doc:7#viewer@user:mallory"),
        "not a backup": "doc:1#viewer@user:ann\n",
    }
    for name, text in cases.items():
        damaged = tmp_path / f"{name}.backup"
        damaged.write_text(text)
        target = tmp_path / f"{name}.db"
        assert main(["backup", "restore", str(damaged), "--db", str(target)]) == 2, name
        assert "error:" in capsys.readouterr().err
        assert not target.exists(), name
    # gzip by name, plain otherwise
    assert main(["backup", "create", str(tmp_path / "s.backup.gz"), "--db", str(source)]) == 0
    with gzip.open(tmp_path / "s.backup.gz", "rt") as f:
        assert f.readline().startswith('{"created_at"')
    assert read_header(tmp_path / "s.backup.gz").schema_version == 1


def test_backup_and_restore_through_a_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The AI-lineage example (with a declassification) out of one server and into another, with the ordinary
    calls: the declassification is restored last, by its steward."""
    source = HeadwaterServer(Config.of(address="127.0.0.1:0", db=str(tmp_path / "a.db"), insecure_no_auth=True,
                                       bootstrap=str(EXAMPLE))).start()
    target = HeadwaterServer(Config.of(address="127.0.0.1:0", db=str(tmp_path / "b.db"),
                                       insecure_no_auth=True)).start()
    try:
        backup = tmp_path / "lineage.backup"
        assert main(["backup", "create", str(backup), "--server", source.address]) == 0
        capsys.readouterr()
        assert main(["backup", "restore", str(backup), "--server", target.address]) == 2
        assert "holds 1 declassification" in capsys.readouterr().err  # refused before anything is written
        assert Engine.open(tmp_path / "b.db").schema_history() == []
        assert main(["backup", "restore", str(backup), "--server", target.address, "--actor", "user:stew",
                     "--reason", "move to the new cluster"]) == 0
        assert "restored" in capsys.readouterr().out
    finally:
        source.stop()
        target.stop()
    assert contents(tmp_path / "a.db") == contents(tmp_path / "b.db")
    engine = Engine.open(tmp_path / "b.db")
    try:
        assert engine.check("output:o1", "view", "user:frank").allowed
        assert engine.read_relationships(RelationshipFilter(resource_type="dataset", relation="scrubbed")) \
            .relationships
    finally:
        engine.close()
