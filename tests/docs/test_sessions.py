"""The shell sessions and Python snippets of README.md and docs/*.md, run as written.

Each file with ``console`` blocks or plain ``python`` blocks (no ``>>>``: those are
doctests, run by test_docs_examples.py) is one session, run in order in a scratch folder
that links the repository's Makefile, pyproject.toml, .venv and examples (so ``make
serve`` and relative paths work, and files the session writes stay in the folder), with
``.venv/bin`` first on PATH:

- ``$ COMMAND`` runs through the shell and must exit 0, or 1 (the CLI's exit for a
  denial or a failed check), and print the lines under it, stdout and stderr together as
  a terminal shows them (``...`` matches anything; no more lines than shown); a command ending in ``&`` (and ``make serve``) runs in the
  background until the session ends, and the session waits until it logs that it serves;
  a ``<<'EOF'`` here-document is part of its command;
- a ``python`` block runs as a script and must print the ``text`` block that follows it,
  when that block is not itself a session.

Servers listen on 127.0.0.1:50051 as the docs say, so sessions run one at a time. The
database ``postgresql://localhost/headwater_doc`` of a file's examples is a new database
on the tests' PostgreSQL server, the same one for the file's ``$ headwater`` blocks (run
by test_docs_examples.py) and its sessions.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINKED = ("Makefile", "pyproject.toml", ".venv", "examples")
PG_DB = "postgresql://localhost/headwater_doc"
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


@dataclass
class Step:
    kind: str  # "shell" or "python"
    code: str
    expected: list[str] = field(default_factory=list)
    line: int = 0


def _steps(path: Path) -> list[Step]:
    text = path.read_text()
    blocks = [(m.group(1), m.group(2), text[:m.start()].count("\n") + 1) for m in BLOCK.finditer(text)]
    steps: list[Step] = []
    for i, (lang, body, line) in enumerate(blocks):
        if lang == "console":
            lines = iter(body.splitlines())
            for row in lines:
                if row.startswith("$ "):
                    command = row[2:]
                    here = re.search(r"<<'?(\w+)'?\s*$", command)
                    if here:  # the here-document belongs to the command
                        for more in lines:
                            command += "\n" + more
                            if more == here.group(1):
                                break
                    steps.append(Step("shell", command, [], line))
                elif steps and steps[-1].kind == "shell":
                    steps[-1].expected.append(row)
        elif lang == "python" and ">>>" not in body:
            after = blocks[i + 1] if i + 1 < len(blocks) else ("", "", 0)
            output = after[0] == "text" and not after[1].startswith("$ ")
            steps.append(Step("python", body, after[1].splitlines() if output else [], line))
    return steps


SESSIONS = [p for p in FILES if _steps(p)]


def _matches(expected: list[str], got: str, what: str) -> None:
    """Every line as shown (``...`` matches anything), and no more lines."""
    lines = got.rstrip("\n").splitlines() if got.strip() else []
    while expected and not expected[-1].strip():
        expected = expected[:-1]
    assert len(lines) == len(expected), (what, expected, got)
    for want, line in zip(expected, lines):
        assert re.fullmatch(re.escape(want).replace(r"\.\.\.", ".*"), line), (what, want, line)


class Session:
    """A scratch folder, its environment, and the background processes to stop at the end."""

    def __init__(self, folder: Path, pg: str | None = None) -> None:
        self.folder = folder
        self.pg = pg
        for name in LINKED:
            (folder / name).symlink_to(REPO / name)
        self.env = {**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                    "HEADWATER_CONFIG_DIR": str(folder / ".config"),
                    "PYTHONUNBUFFERED": "1"}  # stdout and stderr interleave as on a terminal
        self.env.pop("HEADWATER_DB", None)
        self.background: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(self, command: str, where: str) -> None:
        log = self.folder / f"background-{len(self.background)}.log"
        process = subprocess.Popen(command.removesuffix("&").strip(), shell=True, cwd=self.folder, env=self.env,
                                   stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        self.background.append((process, log))
        deadline = time.monotonic() + 60
        while "serving on" not in log.read_text(errors="replace"):
            assert process.poll() is None, (where, command, log.read_text())
            assert time.monotonic() < deadline, (where, command, log.read_text())
            time.sleep(0.1)

    def run(self, step: Step, where: str) -> None:
        if self.pg is not None:
            step = Step(step.kind, step.code.replace(PG_DB, self.pg), [e.replace(PG_DB, self.pg) for e in step.expected],
                        step.line)
        if step.kind == "python":
            done = subprocess.run([sys.executable, "-c", step.code], cwd=self.folder, env=self.env,
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, (where, done.stderr)
            if step.expected:
                _matches(step.expected, done.stdout, where)
            return
        if step.code == "make serve" or step.code.rstrip().endswith("&"):
            self.start(step.code, where)
            return
        done = subprocess.run(step.code, shell=True, cwd=self.folder, env=self.env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=120)  # what a terminal shows
        assert done.returncode in (0, 1), (where, step.code, done.stdout)
        _matches(step.expected, done.stdout, f"{where}: {step.code}")

    def close(self) -> None:
        for process, log in self.background:
            if process.poll() is not None:
                continue  # it already ended (a failed start, reported by run())
            os.killpg(process.pid, signal.SIGTERM)  # the process group: `make` and the server it started
            process.wait(30)
            deadline = time.monotonic() + 30
            while '"event": "stopped"' not in log.read_text(errors="replace") and time.monotonic() < deadline:
                time.sleep(0.1)
            if '"event": "stopped"' not in log.read_text(errors="replace"):
                os.killpg(process.pid, signal.SIGKILL)
                raise AssertionError(f"a background server did not stop on SIGTERM: {log.read_text()}")


@pytest.mark.parametrize("path", SESSIONS, ids=lambda p: p.name)
def test_session_runs_as_written(path: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    pg = request.getfixturevalue("pg_server").database() if PG_DB in path.read_text() else None
    session = Session(tmp_path, pg)
    try:
        for step in _steps(path):
            session.run(step, f"{path.name}:{step.line}")
    finally:
        session.close()


def test_the_readme_quick_start_is_a_session() -> None:
    steps = _steps(REPO / "README.md")
    assert steps[0].code == "make serve"
    assert sum(s.kind == "shell" for s in steps) >= 3 and any(s.kind == "python" and s.expected for s in steps)
