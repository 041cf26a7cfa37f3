"""The `headwater` command line: every command has help, exit codes follow convention."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from headwater.engine.cli import _build_parser, main

GOOD = "definition user {}\n\ndefinition doc {\n    relation viewer: user\n    permission view = viewer\n}\n"
UGLY = "definition user {}\ndefinition doc{relation viewer:user // who\npermission view=(viewer)\n}\n"
BROKEN = "definition doc {\n  relation viewer: usr\n  permission view = viewr\n}\n"


def _commands() -> list[str]:
    parser = _build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(sub.choices)


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: headwater {command}" in out and len(out) > 100


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "commands" in capsys.readouterr().out


def test_fmt_rewrites_and_check_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.zed"
    f.write_text(UGLY)
    assert main(["fmt", "--check", str(f)]) == 1
    assert f.read_text() == UGLY  # --check never writes
    assert main(["fmt", str(f)]) == 0
    formatted = f.read_text()
    assert "relation viewer: user  // who" in formatted
    assert "permission view = viewer\n" in formatted
    assert main(["fmt", "--check", str(f)]) == 0


def test_fmt_diff_shows_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "p.zed"
    f.write_text(UGLY)
    assert main(["fmt", "--diff", str(f)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("---") and "+    permission view = viewer" in out


def test_fmt_on_syntax_error_exits_2_and_names_the_position(tmp_path: Path, capsys) -> None:
    f = tmp_path / "bad.zed"
    f.write_text("definition doc {\n  relation owner user\n}\n")
    assert main(["fmt", str(f)]) == 2
    err = capsys.readouterr().err
    assert f"{f}:2:18: unexpected name `user`; expected `:`" in err
    assert f.read_text().startswith("definition doc {\n  relation owner user")  # untouched


def test_fmt_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fmt", str(tmp_path / "nope.zed")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_lint_ok_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.zed", tmp_path / "bad.zed"
    good.write_text(GOOD)
    bad.write_text(BROKEN)
    assert main(["lint", str(good)]) == 0
    assert "ok (2 definitions, 1 relations, 1 permissions, 0 caveats)" in capsys.readouterr().out
    assert main(["lint", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:2:20: unknown definition `usr`" in out
    assert f"{bad}:3:21: `doc` has no relation or permission `viewr`" in out
    assert "2 errors" in out
    assert "^^^" in out


def test_lint_warnings_and_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "w.zed"
    f.write_text("definition user {}\ndefinition doc {\n relation viewer: user\n permission aaa = bbb + viewer\n"
                 " permission bbb = aaa\n}\n")
    assert main(["lint", str(f)]) == 0
    assert "warning: permission `aaa` in `doc` depends on itself" in capsys.readouterr().out
    assert main(["lint", "--strict", str(f)]) == 1


def test_stdin_formatting(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(UGLY))
    assert main(["fmt", "-"]) == 0
    assert capsys.readouterr().out.startswith("definition user {}\n\ndefinition doc {")


def test_console_script_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "headwater.engine", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "fmt" in proc.stdout and "lint" in proc.stdout
