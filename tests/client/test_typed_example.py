"""The client's typed surface: ``mypy --strict`` passes on examples/client/typed_example.py, and on the client
package itself, as a user's mypy sees them once Headwater is installed (``py.typed``).

The repository maps ``engine/`` and ``dsl/`` to ``headwater.engine`` and ``headwater.dsl`` at install time, which
mypy cannot follow through the editable install's import hook; the test lays the installed tree out with links.
As for any installed package, the errors of the modules the client imports (the engine's, grpc's untyped ones) are
not the user's: the config silences them, and their types still count."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "client" / "typed_example.py"
CONFIG = """[mypy]
[mypy-headwater.engine.*,headwater.dsl.*]
ignore_errors = True
[mypy-grpc.*,grpc_health.*,google.*]
ignore_missing_imports = True
"""


def test_py_typed_ships_with_the_client() -> None:
    assert (REPO / "headwater" / "client" / "py.typed").exists()
    assert '"headwater.client" = ["py.typed"]' in (REPO / "pyproject.toml").read_text()


def test_mypy_strict_passes_on_the_example_and_the_client(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    tree = tmp_path / "site"
    (tree / "headwater").mkdir(parents=True)
    for name, target in [("__init__.py", "headwater/__init__.py"), ("_lazy.py", "headwater/_lazy.py"),
                         ("client", "headwater/client"), ("engine", "engine"), ("dsl", "dsl")]:
        (tree / "headwater" / name).symlink_to(REPO / target)
    (tmp_path / "mypy.ini").write_text(CONFIG)
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--config-file", str(tmp_path / "mypy.ini"),
                           "--cache-dir", str(tmp_path / "cache"), str(EXAMPLE), str(tree / "headwater" / "client")],
                          cwd=tmp_path, env={"MYPYPATH": str(tree), "PATH": "/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
