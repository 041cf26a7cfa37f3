"""Layering rules (STYLE.md, docs/architecture.md), read from the source with `ast`.

- each third-party library has one home;
- `dsl` never imports `engine`;
- the stores import neither the evaluator nor anything above it (queries, facade, adapters);
- nothing below the facade imports the adapters (service, CLI, the client in headwater/client);
- the adapters use the Engine only: never `engine.store`, `engine.audit` or a private `engine._...`;
- the evaluator sees only the store's protocols, never a backend or a driver;
- no import cycle among the modules (imports needed only for type checking aside);
- no module over 600 lines (generated code aside).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# `headwater/` holds the package root and the client (headwater.client), which installs from there.
PACKAGES = {"dsl": REPO / "dsl", "engine": REPO / "engine", "headwater": REPO / "headwater"}

# library (top-level import name) -> the only modules (repo-relative) allowed to import it
HOMES = {
    "lark": {"dsl/parser.py"},
    "cel_expr_python": {"dsl/cel"},
    "sqlite3": {"engine/sqlitedb.py"},  # the one SQLite helper: the store and the audit log go through it
    "psycopg": {"engine/pgdb.py"},  # the one PostgreSQL helper
    "psycopg_pool": {"engine/pgdb.py"},
    "authzed": {"engine/service/authzed"},  # SpiceDB's API (its generated classes)
    # the service, and the client (a gRPC adapter too: headwater/client, which the engine never imports)
    "grpc": {"engine/service", "headwater/client"},
    "grpc_health": {"engine/service", "headwater/client"},
    "google": {"engine/service", "dsl/cel", "headwater/client"},  # cel-expr-python's values are protobuf messages
    "yaml": {"engine/validationfile.py", "engine/playground/files.py"},  # validation files; the playground writes them
    "prometheus_client": {"engine/metrics.py"},  # the one registry and table of metrics
    # the HTTP listener (engine/service/http: routes in app.py, the server thread in listener.py)
    "starlette": {"engine/service/http"},
    "uvicorn": {"engine/service/http/listener.py"},
    "opentelemetry": {"engine/tracing.py"},
    "jsonschema": {"engine/openlineage/spec.py"},  # OpenLineage events checked against the spec's structure  # tracing, imported only when it is on (OTEL_TRACES_EXPORTER)
}
ADAPTERS = ("engine/service", "engine/cli", "engine/client.py", "engine/__main__.py", "headwater/client")
# what the stores may not import: the evaluator and everything that uses it
ABOVE_THE_STORE = ("evaluator", "chain", "context", "queries", "api", "writes", "streams", "explain", "lookup",
                   "expand", "membership", "validationfile", "service", "cli", "client")


def _modules() -> list[Path]:
    return sorted(p for root in PACKAGES.values() for p in root.rglob("*.py") if "/pb/" not in str(p))


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _module_name(path: Path) -> str:
    """``engine/store/sqlite.py`` -> ``engine.store.sqlite``; a package's ``__init__`` is the package."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(name: str) -> bool:
    return (REPO / Path(*name.split(".")) / "__init__.py").exists()


def _exists(name: str) -> bool:
    return _is_package(name) or (REPO / Path(*name.split("."))).with_suffix(".py").exists()


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Ids of import nodes inside ``if TYPE_CHECKING:`` blocks."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            out |= {id(n) for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)}
    return out


def _imports(path: Path, *, runtime_only: bool = False) -> list[tuple[str, int]]:
    """(module as written, level) of every import of ``path``; relative ones resolved to absolute names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip = _type_checking_only(tree) if runtime_only else set()
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.extend((alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if not node.level:
                out.append((node.module or "", 0))
                continue
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            target = ".".join([*base, *([node.module] if node.module else [])])
            # `from . import keys` imports the module keys, not the package
            names = [f"{target}.{alias.name}" for alias in node.names if _exists(f"{target}.{alias.name}")]
            out.extend((name, node.level) for name in names or [target])
    return out


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_third_party_libraries_stay_in_their_home(path: Path) -> None:
    rel = _rel(path)
    for name, level in _imports(path):
        if level:
            continue
        homes = HOMES.get(name.split(".")[0])
        if homes is None:
            continue
        assert any(rel == h or rel.startswith(h + "/") for h in homes), f"{rel} imports {name}; its home is {homes}"


@pytest.mark.parametrize("path", sorted((REPO / "dsl").rglob("*.py")), ids=_rel)
def test_dsl_never_imports_engine(path: Path) -> None:
    for name, _ in _imports(path):
        assert "engine" not in name.split("."), f"{_rel(path)} imports {name}: dsl must not depend on engine"


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_no_absolute_self_imports(path: Path) -> None:
    """Inside the package, imports are relative, so the folders install under `headwater`."""
    for name, level in _imports(path):
        if level == 0:
            assert name.split(".")[0] not in {"dsl", "engine", "headwater"}, (
                f"{_rel(path)}: use a relative import for {name}")


@pytest.mark.parametrize("path", sorted((REPO / "engine" / "store").rglob("*.py")), ids=_rel)
def test_stores_import_neither_the_evaluator_nor_what_is_above_it(path: Path) -> None:
    for name, _ in _imports(path):
        parts = name.split(".")
        if parts[0] == "engine" and len(parts) > 1:
            assert parts[1] not in ABOVE_THE_STORE, f"{_rel(path)} imports {name}: a store sits below the evaluator"


@pytest.mark.parametrize("path", [p for p in _modules() if not _rel(p).startswith(ADAPTERS)], ids=_rel)
def test_nothing_below_the_facade_imports_an_adapter(path: Path) -> None:
    for name, _ in _imports(path):
        parts = name.split(".")
        if parts[0] == "engine" and len(parts) > 1:
            assert parts[1] not in ("service", "cli", "client"), f"{_rel(path)} imports the adapter {name}"


@pytest.mark.parametrize("path", [p for p in _modules() if not _rel(p).startswith(ADAPTERS)], ids=_rel)
def test_nothing_below_the_adapters_imports_the_client(path: Path) -> None:
    """headwater.client is an adapter too: the engine and the dsl never import it (``from ..client`` in
    ``engine/`` resolves to ``client``, in ``dsl/compiler/`` to ``dsl.client``... none may name it)."""
    for name, _ in _imports(path):
        parts = name.split(".")
        assert parts[0] != "client" and parts[:2] != ["headwater", "client"], f"{_rel(path)} imports the client {name}"


def _engine_reaches(path: Path) -> list[str]:
    """``x.engine.store``, ``engine.audit``, ``engine._private``... in ``path``: what an adapter must not touch."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        owner_name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
        if owner_name == "engine" and (node.attr in ("store", "audit") or node.attr.startswith("_")):
            out.append(f"{_rel(path)}:{node.lineno}: engine.{node.attr}")
    return out


@pytest.mark.parametrize("path", [p for p in _modules() if _rel(p).startswith(ADAPTERS)], ids=_rel)
def test_adapters_use_the_engine_only(path: Path) -> None:
    assert _engine_reaches(path) == []


def test_the_evaluator_sees_only_protocols() -> None:
    banned = {"lark", "sqlite3", "grpc", "google", "cel_expr_python", "yaml"}
    for name, level in _imports(REPO / "engine" / "evaluator.py"):
        assert level or name.split(".")[0] not in banned, f"the evaluator imports {name}"
        assert name not in ("engine.store.memory", "engine.store.sqlite", "engine.store.sqlite_reader"), (
            f"the evaluator imports the backend {name}")


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for path in _modules():
        here = _module_name(path)
        graph[here] = {name for name, _ in _imports(path, runtime_only=True)
                       if name.split(".")[0] in PACKAGES and name != here}
    cycles = [component for component in _strongly_connected(graph) if len(component) > 1]
    assert cycles == [], f"import cycles: {cycles}"


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            nxt = next(edges, None)
            if nxt is not None:
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(sorted(component))
    return out


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_no_module_is_over_600_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= 600, f"{_rel(path)} has {lines} lines: split it by concern"
