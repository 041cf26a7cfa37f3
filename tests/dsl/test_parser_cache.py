"""The parser's LALR tables are cached in the user's own cache directory, never in a shared or writable place."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from headwater.dsl.parser import _table_cache

PARSE = "from headwater.dsl import compile_schema; print(len(compile_schema('definition user {}').definitions))"


def test_the_cache_lives_in_a_private_directory_of_this_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    where = _table_cache()
    assert isinstance(where, str) and Path(where).parent == tmp_path / "headwater"
    assert (tmp_path / "headwater").stat().st_mode & 0o077 == 0


def test_no_cache_in_a_directory_others_may_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "headwater").mkdir()
    os.chmod(tmp_path / "headwater", 0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _table_cache() is False


def test_the_cache_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HEADWATER_PARSER_CACHE", "0")
    assert _table_cache() is False
    assert not (tmp_path / "headwater").exists()


def test_a_damaged_or_stale_cache_file_is_rebuilt(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", PARSE], env=env, capture_output=True, text=True, check=True)
    assert first.stdout.strip() == "1"
    (table,) = (tmp_path / "headwater").iterdir()
    table.write_bytes(b"not the tables\n" + os.urandom(200))
    again = subprocess.run([sys.executable, "-c", PARSE], env=env, capture_output=True, text=True, check=True)
    assert again.stdout.strip() == "1"
    assert table.read_bytes()[:14] != b"not the tables"  # rewritten
