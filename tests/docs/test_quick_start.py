"""README.md's quick start, run as written: `make serve`, then every command and snippet against that server.

The section's ``console`` blocks are shell sessions: ``$ make serve`` starts in the
background (the test waits until it serves on 127.0.0.1:50051); every other ``$``
command runs through the shell, must exit 0 (or 1, the CLI's exit for a denial) and must
print the lines under it (``...`` matches anything). A ``python`` block runs as a script and must print the ``text`` block after
it. Everything runs in a scratch folder that links the repository's Makefile,
pyproject.toml, .venv and examples, so ``make serve`` creates its ``headwater.db`` there
and the README's relative paths hold.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
PORT = 50051


def _section() -> str:
    text = README.read_text()
    start = text.index("## Quick start")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _steps() -> list[tuple[str, str, list[str]]]:
    """("shell", command, expected lines) and ("python", source, expected lines), in the section's order."""
    steps: list[tuple[str, str, list[str]]] = []
    blocks = re.findall(r"```(\w+)\n(.*?)```", _section(), re.S)
    for i, (lang, body) in enumerate(blocks):
        if lang == "console":
            for line in body.splitlines():
                if line.startswith("$ "):
                    steps.append(("shell", line[2:], []))
                elif steps and steps[-1][0] == "shell":
                    steps[-1][2].append(line)
        elif lang == "python":
            after = blocks[i + 1] if i + 1 < len(blocks) else ("", "")
            steps.append(("python", body, after[1].splitlines() if after[0] == "text" else []))
    return steps


def _matches(expected: list[str], got: str, what: str) -> None:
    """Every line as shown (``...`` matches anything), and no more lines."""
    lines = got.rstrip("\n").splitlines()
    while expected and not expected[-1].strip():
        expected = expected[:-1]
    assert len(lines) == len(expected), (what, expected, got)
    for want, line in zip(expected, lines):
        assert re.fullmatch(re.escape(want).replace(r"\.\.\.", ".*"), line), (what, want, line)


def _port_free() -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", PORT)) != 0


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("quick-start")
    for name in ("Makefile", "pyproject.toml", ".venv", "examples"):
        (work / name).symlink_to(REPO / name)
    return work


@pytest.fixture(scope="module")
def serving(workdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`make serve`, as the README's first command says, until the module's tests are done."""
    commands = [cmd for kind, cmd, _ in _steps() if kind == "shell"]
    assert commands[0] == "make serve", "the quick start begins with `make serve`"
    assert _port_free(), f"port {PORT} is taken: the quick start's server needs it"
    log = (workdir / "serve.log").open("wb")
    process = subprocess.Popen(commands[0], shell=True, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "serving on 127.0.0.1:50051" not in (workdir / "serve.log").read_text(errors="replace"):
            assert process.poll() is None, (workdir / "serve.log").read_text()
            assert time.monotonic() < deadline, (workdir / "serve.log").read_text()
            time.sleep(0.1)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # make and the server it started: the server drains and stops
        process.wait(30)
        deadline = time.monotonic() + 30
        while '"event": "stopped"' not in (workdir / "serve.log").read_text(errors="replace"):
            if time.monotonic() > deadline:
                os.killpg(process.pid, signal.SIGKILL)
                break
            time.sleep(0.1)
        log.close()
    assert '"event": "stopped"' in (workdir / "serve.log").read_text()


def test_the_section_has_commands_and_a_snippet() -> None:
    kinds = [kind for kind, _, _ in _steps()]
    assert kinds.count("shell") >= 3 and kinds.count("python") >= 1


@pytest.mark.parametrize("index", range(1, len(_steps())), ids=lambda i: _steps()[i][1].splitlines()[0][:60])
def test_each_step_prints_what_the_readme_shows(index: int, serving: subprocess.Popen[bytes], workdir: Path) -> None:
    kind, body, expected = _steps()[index]
    if kind == "shell":
        done = subprocess.run(body, shell=True, cwd=workdir, capture_output=True, text=True, timeout=60)
        assert done.returncode in (0, 1), (body, done.stdout, done.stderr)  # 1: a denial, as `test` exits
        _matches(expected, done.stdout, body)
    else:
        done = subprocess.run([sys.executable, "-c", body], cwd=workdir, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (body, done.stderr)
        _matches(expected, done.stdout, body)
