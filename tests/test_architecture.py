"""Layering rules from STYLE.md, read from the source with `ast`: each third-party library has one home."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = {"dsl": REPO / "dsl", "engine": REPO / "engine"}

# library (top-level import name) -> the only modules (repo-relative) allowed to import it
HOMES = {
    "lark": {"dsl/parser.py"},
    "cel_expr_python": {"dsl/cel"},
    # engine/sqlitedb.py: the one SQLite helper (the audit log's file goes through it; the store is to follow)
    "sqlite3": {"engine/sqlitedb.py", "engine/store/sqlite.py", "engine/store/sqlite_reader.py", "engine/store/migrations.py"},
    "cachetools": {"engine/cache.py"},
    "grpc": {"engine/service"},
    "google": {"engine/service", "dsl/cel"},  # cel-expr-python's values are protobuf messages
    "yaml": {"engine/validation.py", "engine/validationfile.py"},
}


def _modules() -> list[Path]:
    return sorted(p for root in PACKAGES.values() for p in root.rglob("*.py") if "/pb/" not in str(p))


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.level if hasattr(node, "level") else 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            out.append((("." * node.level) + (node.module or ""), node.level))
    return out


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_third_party_libraries_stay_in_their_home(path: Path) -> None:
    rel = _rel(path)
    for name, level in _imports(path):
        if level:
            continue
        top = name.split(".")[0]
        homes = HOMES.get(top)
        if homes is None:
            continue
        assert any(rel == h or rel.startswith(h + "/") for h in homes), f"{rel} imports {name}; its home is {homes}"


@pytest.mark.parametrize("path", sorted((REPO / "dsl").rglob("*.py")), ids=_rel)
def test_dsl_never_imports_engine(path: Path) -> None:
    for name, level in _imports(path):
        assert "engine" not in name.split("."), f"{_rel(path)} imports {name}: dsl must not depend on engine"


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_no_absolute_self_imports(path: Path) -> None:
    """Inside the package, imports are relative, so the folders install under `headwater`."""
    for name, level in _imports(path):
        if level == 0:
            assert name.split(".")[0] not in {"dsl", "engine"}, f"{_rel(path)}: use a relative import for {name}"


def test_evaluator_sees_only_protocols() -> None:
    check = REPO / "engine" / "check.py"
    if not check.exists():
        pytest.skip("engine/check.py not written yet")
    banned = {"lark", "sqlite3", "sqlite_utils", "grpc", "google", "cachetools"}
    for name, level in _imports(check):
        assert level or name.split(".")[0] not in banned
