"""Examples in docs/*.md run: `>>>` blocks as doctests, `$ headwater ...` blocks as CLI calls."""

from __future__ import annotations

import doctest
import re
import shlex
from pathlib import Path

import pytest

from headwater.engine.cli import main

REPO = Path(__file__).resolve().parents[2]
DOCS = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]
DOCTEST_FILES = [p for p in DOCS if ">>> " in p.read_text()]
DB = "/tmp/headwater-doc.db"
TMP_PREFIX = "/tmp/headwater-doc"  # other files of a docs session (a backup, a second database): in the test's tmp
PG_DB = "postgresql://localhost/headwater_doc"  # in a docs example: a new PostgreSQL database for the session


@pytest.mark.parametrize("path", DOCTEST_FILES, ids=lambda p: p.name)
def test_doctest_examples(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # examples open files relative to the repository
    result = doctest.testfile(str(path), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def _cli_sessions() -> list[tuple[str, list[tuple[list[str], list[str]]]]]:
    sessions = []
    for path in DOCS:
        for block in re.findall(r"```\n(\$ headwater.*?)```", path.read_text(), re.S):
            steps: list[tuple[list[str], list[str]]] = []
            for line in block.splitlines():
                if line.startswith("$ headwater "):
                    steps.append((shlex.split(line[len("$ headwater "):]), []))
                elif steps and line.strip():
                    steps[-1][1].append(line)
            sessions.append((path.name, steps))
    return sessions


@pytest.mark.parametrize("name, steps", _cli_sessions(), ids=lambda v: v if isinstance(v, str) else "")
def test_cli_examples(name: str, steps, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest) -> None:
    monkeypatch.chdir(REPO)
    db = str(tmp_path / "doc.db")
    pg = request.getfixturevalue("pg_server").database() if any(PG_DB in argv for argv, _ in steps) else None
    for argv, expected in steps:
        # /tmp/headwater-doc.db is the session's database; any other /tmp/headwater-doc* file lives beside it
        argv = [db if a == DB else pg if a == PG_DB else a.replace(TMP_PREFIX, str(tmp_path / "doc")) for a in argv]
        expected = [line.replace(PG_DB, pg) if pg else line for line in expected]
        expected = [line.replace(TMP_PREFIX, str(tmp_path / "doc")) for line in expected]
        code = main(argv)
        out = capsys.readouterr().out
        assert code in (0, 1), (argv, code)
        for want, got in zip(expected, out.splitlines()):
            pattern = re.escape(want).replace(r"\.\.\.", ".*")
            assert re.fullmatch(pattern, got), (argv, want, got)
        assert len(out.splitlines()) >= len(expected), (argv, out)
