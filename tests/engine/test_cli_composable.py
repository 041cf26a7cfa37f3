"""Composable schemas through the command line: `lint`, `fmt`, `validate` and `schema write` on files that import
others (each error in its own file), and text on stdin, which may not import."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from headwater.dsl import compile_schema
from headwater.engine import Engine
from headwater.engine.cli import main

ROOT = ('use import\nuse partial\n\nimport "subjects.zed"\nimport "docs/documents.zed"\n\n'
        "partial viewable {\n    relation viewer: user | group#member\n    permission view = viewer\n}\n")
SUBJECTS = "definition user {}\n\ndefinition group {\n    relation member: user\n}\n"
DOCUMENTS = "definition document {\n    relation owner: user\n    ...viewable\n    permission edit = owner\n}\n"
FLAT = ("definition user {}\ndefinition group {\n relation member: user\n}\ndefinition document {\n"
        " relation owner: user\n relation viewer: user | group#member\n permission view = viewer\n"
        " permission edit = owner\n}\n")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "root.zed").write_text(ROOT)
    (tmp_path / "subjects.zed").write_text(SUBJECTS)
    (tmp_path / "docs" / "documents.zed").write_text(DOCUMENTS)
    return tmp_path / "root.zed"


def test_lint_compiles_the_files_together(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", str(root)]) == 0
    assert capsys.readouterr().out == f"{root}: ok (3 definitions, 3 relations, 2 permissions, 0 caveats)\n"


def test_lint_locates_errors_and_warnings_in_their_files(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    documents = root.parent / "docs" / "documents.zed"
    documents.write_text(DOCUMENTS.replace("permission edit = owner", "permission edit = ownr"))
    assert main(["lint", str(root)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{documents}:4:23: `document` has no relation or permission `ownr`")
    assert "    4 |     permission edit = ownr\n" in out and out.endswith(f"{root}: 1 error\n")
    documents.write_text(DOCUMENTS.replace("permission edit", "permission edit_document"))
    assert main(["lint", str(root)]) == 0
    assert capsys.readouterr().out.startswith(f"{documents}:4:5: warning: ")
    (root.parent / "subjects.zed").unlink()
    assert main(["lint", str(root)]) == 1
    assert capsys.readouterr().out.startswith(f"{root}:4:8: imported file `{root.parent}/subjects.zed` not found")


def test_lint_of_stdin_refuses_an_import_by_name(root: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(ROOT))
    assert main(["lint", "-"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("-:4:1: `import` needs files") and "-:5:1: `import` needs files" in out
    assert "unexpected name" not in out


def test_fmt_keeps_each_file_composable(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fmt", "--check", str(root), str(root.parent / "docs" / "documents.zed")]) == 0
    root.write_text(ROOT.replace("    relation viewer", "relation   viewer").replace('import "subjects.zed"',
                                                                                       "import   'subjects.zed'"))
    assert main(["fmt", "--check", str(root)]) == 1
    assert main(["fmt", str(root)]) == 0
    assert root.read_text() == ROOT  # formatted as written: the imports and the partial stay
    capsys.readouterr()


def test_validate_follows_the_imports_of_a_schema_file(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tests = root.parent / "tests"
    tests.mkdir()
    (tests / "validation.yaml").write_text(
        "schemaFile: ../root.zed\nrelationships: |\n  group:eng#member@user:bob\n"
        "  document:plan#viewer@group:eng#member\n  document:plan#owner@user:ann\nassertions:\n"
        "  assertTrue:\n    - document:plan#view@user:bob\n    - document:plan#edit@user:ann\n"
        "  assertFalse:\n    - document:plan#edit@user:bob\n")
    assert main(["validate", str(tests / "validation.yaml"), "--root", str(root.parent)]) == 0
    assert capsys.readouterr().out.endswith("3 of 3 assertions passed, 3 relationships\n")
    (root.parent / "docs" / "documents.zed").write_text(DOCUMENTS.replace("relation owner: user", "relation owner: usr"))
    assert main(["validate", str(tests / "validation.yaml"), "--root", str(root.parent)]) == 1
    out = capsys.readouterr().out
    assert f"validation.yaml:1: schema error in `schemaFile` '../root.zed': {root.parent}/docs/documents.zed:2:21: " \
           "unknown definition `usr`" in out


def test_schema_write_stores_the_flattened_schema(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                  ) -> None:
    db = str(tmp_path / "x.db")
    assert main(["schema", "write", str(root), "--db", db]) == 0
    assert "stored schema version 1" in capsys.readouterr().out
    with Engine.open(db) as engine:
        stored = engine.read_schema()
    assert "import" not in stored.text and stored.digest == compile_schema(FLAT).digest
    (root.parent / "subjects.zed").write_text(SUBJECTS + "\ndefinition user {}\n")
    assert main(["schema", "write", str(root), "--db", db]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {root.parent}/subjects.zed:7:12: the name `user` is already used by the definition "
                          "at line 1")


def test_schema_write_from_stdin_refuses_an_import(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(ROOT))
    assert main(["schema", "write", "-", "--db", str(tmp_path / "x.db")]) == 2
    assert capsys.readouterr().err.startswith("error: 4:1: `import` needs files")
