"""docs/cli.md is generated from the command table, and completion scripts from the parser: neither goes stale."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from headwater.engine.cli import TABLE, main
from headwater.engine.cli.reference import render
from headwater.engine.cli.table import Command

REPO = Path(__file__).resolve().parents[2]


def test_docs_cli_md_is_up_to_date() -> None:
    current = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == render(), "docs/cli.md is stale: python -m headwater.engine.cli.reference > docs/cli.md"


def test_the_reference_names_every_command_and_option() -> None:
    text = render()
    for entry in TABLE:
        assert f"## headwater {entry.name}\n" in text
        if isinstance(entry, Command):
            for a in entry.args:
                if a.names[0].startswith("-"):
                    assert f"`{a.names[0]}" in text


def test_readme_links_the_reference() -> None:
    assert "docs/cli.md" in (REPO / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_mentions_every_command(shell: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    for entry in TABLE:
        assert entry.name.split()[-1] in script, f"{entry.name} missing from the {shell} completion"
    assert "--profile" in script and "--tls-ca" in script
    if shell == "bash":
        assert "_shtab_compgen_files" in script  # FILE arguments complete as paths
    if shutil.which(shell):  # the shell itself parses it
        path = tmp_path / f"headwater.{shell}"
        path.write_text(script, encoding="utf-8")
        subprocess.run([shell, "-n", str(path)], check=True, capture_output=True, timeout=60)


def test_completion_refuses_an_unknown_shell(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["completion", "powershell7"])
    assert e.value.code == 2
