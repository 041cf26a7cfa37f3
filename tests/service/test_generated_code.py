"""engine/service/pb/ is generated from proto/ and committed: regenerating it must change nothing."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest

from headwater.engine.service.generate import PB_DIR, PROTO_ROOT, generate

REPO = Path(__file__).resolve().parents[2]


def _pinned_tools_version() -> str:
    match = re.search(r'"grpcio-tools==([^"]+)"', (REPO / "pyproject.toml").read_text())
    assert match, "pyproject.toml pins grpcio-tools in the dev extra"
    return match.group(1)


def test_committed_code_is_current(tmp_path: Path) -> None:
    try:
        installed = importlib.metadata.version("grpcio-tools")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("grpcio-tools is not installed (pip install -e '.[dev]')")
    if installed != _pinned_tools_version():
        pytest.skip(f"grpcio-tools {installed} is installed; the committed code comes from the pinned "
                    f"{_pinned_tools_version()}")
    generate(tmp_path)
    fresh = {p.name: p.read_text() for p in tmp_path.iterdir() if p.is_file()}
    committed = {p.name: p.read_text() for p in PB_DIR.iterdir() if p.is_file()}
    assert sorted(fresh) == sorted(committed), "files differ: run python -m headwater.engine.service.generate"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated code {stale}: run python -m headwater.engine.service.generate"


def test_every_proto_file_is_generated() -> None:
    protos = sorted(p.stem for p in (PROTO_ROOT / "headwater" / "v1").glob("*.proto"))
    assert protos == ["audit", "core", "governance", "lineage", "permission", "relationship", "schema"]
    for stem in protos:
        assert (PB_DIR / f"{stem}_pb2.py").is_file() and (PB_DIR / f"{stem}_pb2_grpc.py").is_file()


def test_generated_imports_are_relative() -> None:
    for path in PB_DIR.glob("*.py"):
        assert "from headwater.v1" not in path.read_text(), path.name


def test_every_field_and_rpc_is_documented() -> None:
    """Each service, RPC, message, enum, enum value, oneof and field has a `//` comment on the line above."""
    declaration = re.compile(r"(rpc |message |enum |service |oneof )|(repeated )?[\w.]+ \w+ = \d+;|[A-Z_0-9]+ = \d+;")
    undocumented = []
    for path in sorted((PROTO_ROOT / "headwater" / "v1").glob("*.proto")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if declaration.match(line.strip()) and not lines[i - 1].strip().startswith("//"):
                undocumented.append(f"{path.name}:{i + 1}: {line.strip()}")
    assert not undocumented, "undocumented:\n" + "\n".join(undocumented)
