"""The ``sh`` blocks of README.md and docs/: commands that are not run by the docs' sessions, checked as written.

``console`` and ``python`` blocks run (test_sessions.py, test_docs_examples.py). An ``sh``
block holds what a test cannot run to its end: a benchmark of fifteen minutes, the fuzz
suite at length, a server that serves until it is stopped, an export to an OpenTelemetry
collector, an npm build that needs the registry. Each of its commands is still checked
against the program it names, so a renamed flag or a moved file fails here:

- ``headwater ...`` and ``.venv/bin/python -m MODULE ...``: the arguments are parsed by the
  program's own ``argparse`` parser (a flag it does not know, a missing value, a bad
  choice exit 2), and the program stops there, before doing anything;
- ``pytest ...``: its paths exist and pytest collects them with the options given;
- ``VAR=value`` prefixes: a ``HEADWATER_*`` variable is read by the code, an ``OTEL_*`` one
  is a standard OpenTelemetry variable the SDK (or engine/tracing.py) reads;
- ``cd playground && npm ci && npm run build``: the folder has a lockfile and the script.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from headwater.engine.cli import main as headwater_main

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


class _Parsed(Exception):
    """Raised in place of running the program once its arguments are parsed."""


def _commands() -> list[tuple[str, str]]:
    found = []
    for path in DOCS:
        text = path.read_text()
        for match in re.finditer(r"```sh\n(.*?)```", text, re.S):
            line_no = text[:match.start()].count("\n") + 2
            logical = ""
            for offset, line in enumerate(match.group(1).splitlines()):
                logical += line.split("  #", 1)[0].rstrip().removesuffix("\\") + " "
                if not line.rstrip().endswith("\\"):
                    if logical.strip():
                        found.append((f"{path.relative_to(REPO)}:{line_no + offset}", logical.strip()))
                    logical = ""
    return found


COMMANDS = _commands()


def test_the_docs_have_sh_blocks_to_check() -> None:
    assert len(COMMANDS) >= 10, COMMANDS


def _environment(words: list[str]) -> list[str]:
    """Check and drop the VAR=value prefixes."""
    sources = "\n".join(p.read_text() for p in [*(REPO / "engine").rglob("*.py"), *(REPO / "tests").rglob("*.py")])
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
        name = words.pop(0).split("=", 1)[0]
        if name.startswith("HEADWATER_"):
            assert name in sources, f"{name} is read nowhere"
        else:
            assert name.startswith("OTEL_"), name
            from opentelemetry.sdk import environment_variables as sdk

            assert name in vars(sdk).values() or name in (REPO / "engine" / "tracing.py").read_text(), name
    return words


def _parse_only(run: object, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Run a program whose arguments argparse parses, stopping right after the parse."""
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, args: object = None, namespace: object = None) -> object:
        original(self, args, namespace)  # a bad argument exits 2 here
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(_Parsed):
        run()  # type: ignore[operator]


@pytest.mark.parametrize("where, command", COMMANDS, ids=[where for where, _ in COMMANDS])
def test_each_sh_command_is_right_as_written(where: str, command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    if command.startswith("cd playground && "):
        steps = [shlex.split(step) for step in command.removeprefix("cd playground && ").split("&&")]
        package = json.loads((REPO / "playground" / "package.json").read_text())
        assert (REPO / "playground" / "package-lock.json").is_file(), where
        for step in steps:
            assert step[0] == "npm", (where, step)
            if step[1] == "run":
                assert step[2] in package["scripts"], (where, step)
        return
    words = _environment(shlex.split(command))
    program, args = words[0], words[1:]
    if program == "headwater":
        _parse_only(lambda: headwater_main(args), ["headwater", *args], monkeypatch)
    elif program == ".venv/bin/python" and args[:2] == ["-m", "pytest"]:
        options = [a for a in args[2:] if a not in ("-q", "-x")]
        for a in options:
            if not a.startswith("-"):
                assert (REPO / a).exists(), (where, a)
        done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                               *options], cwd=REPO, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "HEADWATER_FUZZ": "ci"})
        assert done.returncode == 0, (where, done.stdout[-2000:], done.stderr[-2000:])
    elif program == ".venv/bin/python" and args[0] == "-m":
        module = args[1]
        assert module.startswith("benchmarks."), (where, module)
        monkeypatch.delitem(sys.modules, module, raising=False)  # run as __main__, not beside an imported copy
        _parse_only(lambda: runpy.run_module(module, run_name="__main__"), [module, *args[2:]], monkeypatch)
    else:
        pytest.fail(f"{where}: no check for {program!r}: add one here")
