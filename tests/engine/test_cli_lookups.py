"""`headwater lookup-resources` and `headwater lookup-subjects` against a database file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headwater.engine.cli import main

SCHEMA = "definition user {}\ndefinition doc {\n relation viewer: user | user:*\n relation banned: user\n" \
         " permission view = viewer - banned\n}\n"


@pytest.fixture
def db(tmp_path: Path) -> str:
    schema = tmp_path / "s.zed"
    schema.write_text(SCHEMA)
    path = str(tmp_path / "x.db")
    assert main(["schema", "write", str(schema), "--db", path]) == 0
    assert main(["relationships", "touch", "--db", path, "doc:a#viewer@user:ann", "doc:b#viewer@user:ann",
                 "doc:c#viewer@user:*", "doc:c#banned@user:bob", "doc:d#viewer@user:bob"]) == 0
    return path


def test_lookup_resources_pages(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["lookup-resources", "doc", "view", "user:ann", "--db", db]) == 0
    assert capsys.readouterr().out.split() == ["doc:a", "HAS_PERMISSION", "doc:b", "HAS_PERMISSION", "doc:c",
                                               "HAS_PERMISSION"]
    assert main(["lookup-resources", "doc", "view", "user:ann", "--db", db, "--page-size", "2", "--json"]) == 0
    captured = capsys.readouterr()
    assert [json.loads(ln)["resource"] for ln in captured.out.splitlines()] == ["doc:a", "doc:b"]
    cursor = captured.err.split("--cursor ")[1].strip()
    assert main(["lookup-resources", "doc", "view", "user:ann", "--db", db, "--page-size", "2", "--cursor",
                 cursor]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == ["doc:c", "HAS_PERMISSION"] and "--cursor" not in captured.err


def test_lookup_subjects_with_wildcard_exclusions(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["lookup-subjects", "doc:c", "view", "user", "--db", db]) == 0
    assert capsys.readouterr().out.strip() == "user:* - {user:bob}  HAS_PERMISSION"


def test_lookup_errors_exit_2(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lookup-resources", "doc", "nope", "user:ann", "--db", db]) == 2
    assert "`nope` not found" in capsys.readouterr().err
