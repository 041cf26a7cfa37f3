"""Reading compiled caveat expressions through the generated classes in dsl/cel/pb/."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path

import pytest

from headwater.dsl.cel import CelType, compile_caveat, referenced_names

REPO = Path(__file__).resolve().parents[2]
PB = REPO / "dsl" / "cel" / "pb"


def test_committed_classes_are_current(tmp_path: Path) -> None:
    """dsl/cel/pb/ is generated from cel_expr.proto and committed: regenerating it must change nothing."""
    pinned = re.search(r'"grpcio-tools==([^"]+)"', (REPO / "pyproject.toml").read_text())
    assert pinned, "pyproject.toml pins grpcio-tools in the dev extra"
    if importlib.util.find_spec("grpc_tools") is None or importlib.metadata.version("grpcio-tools") != pinned[1]:
        pytest.skip(f"the committed code comes from grpcio-tools {pinned[1]} (pip install -e '.[dev]')")
    from grpc_tools import protoc

    args = ["grpc_tools.protoc", f"-I{REPO}", f"--python_out={tmp_path}", f"--pyi_out={tmp_path}",
            str(PB / "cel_expr.proto")]
    assert protoc.main(args) == 0
    for name in ("cel_expr_pb2.py", "cel_expr_pb2.pyi"):
        fresh = (tmp_path / "dsl" / "cel" / "pb" / name).read_text()
        assert fresh == (PB / name).read_text(), f"stale {name}: regenerate it (see dsl/cel/pb/cel_expr.proto)"


def _nested_maps(depth: int) -> str:
    expr = "true"
    for i in range(depth):
        expr = f"a.map(x{i}, {expr}).size() > 0 ? true : false"
    return expr


def test_trees_deeper_than_protobufs_nesting_limit_are_read() -> None:
    """cel-cpp accepts ten nested `map` macros, a tree nested deeper than protobuf parses in one message."""
    expression = _nested_maps(10)
    assert referenced_names(expression) == frozenset({"a"})
    caveat = compile_caveat("deep", {"a": CelType("list", (CelType("int"),))}, expression)
    assert caveat.referenced == frozenset({"a"})
    assert caveat.evaluate({"a": [1]}).value is True
