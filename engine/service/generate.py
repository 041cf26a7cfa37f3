"""Regenerate ``engine/service/pb/`` from ``proto/headwater/v1/*.proto`` with grpcio-tools.

The generated modules are committed and never edited by hand; run this after
changing a ``.proto`` file, and ``tests/service/test_generated_code.py`` fails
while the committed code is stale. protoc writes ``from headwater.v1 import
core_pb2``; this script rewrites those lines into relative imports so that the
modules live inside ``headwater.engine.service.pb`` (the package ``headwater.v1``
does not exist).

Usage::

    python -m headwater.engine.service.generate           # rewrite engine/service/pb/
    python -m headwater.engine.service.generate --out DIR  # write elsewhere (the staleness test)
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = ["PB_DIR", "PROTO_ROOT", "generate"]

_HERE = Path(__file__).resolve().parent
PB_DIR = _HERE / "pb"
PROTO_ROOT = _HERE.parent.parent / "proto"
_PACKAGE_DIR = Path("headwater") / "v1"
_IMPORT_RE = re.compile(r"^from headwater\.v1 import (\w+_pb2)", re.M)
_INIT = '''"""Generated protobuf and gRPC modules for ``headwater.v1`` (see ``engine/service/generate.py``).

Never edit these files by hand: change ``proto/headwater/v1/*.proto`` and run
``python -m headwater.engine.service.generate``.
"""
'''


def generate(out: Path = PB_DIR, proto_root: Path = PROTO_ROOT) -> list[Path]:
    """Compile every ``.proto`` under ``proto_root/headwater/v1`` into ``out`` (replacing its contents)."""
    from grpc_tools import protoc  # grpcio-tools: a build/dev dependency only

    protos = sorted((proto_root / _PACKAGE_DIR).glob("*.proto"))
    if not protos:
        raise FileNotFoundError(f"no .proto files under {proto_root / _PACKAGE_DIR}")
    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = ["grpc_tools.protoc", f"-I{proto_root}", f"-I{well_known}", f"--python_out={tmp}",
                f"--pyi_out={tmp}", f"--grpc_python_out={tmp}",
                *(p.relative_to(proto_root).as_posix() for p in protos)]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed: " + " ".join(args))
        generated = sorted((Path(tmp) / _PACKAGE_DIR).iterdir())
        out.mkdir(parents=True, exist_ok=True)
        for old in out.iterdir():
            if old.is_file() and (old.suffix in (".py", ".pyi")):
                old.unlink()
            elif old.is_dir() and old.name == "__pycache__":
                shutil.rmtree(old)
        written = []
        for src in generated:
            text = _IMPORT_RE.sub(r"from . import \1", src.read_text(encoding="utf-8"))
            target = out / src.name
            target.write_text(text, encoding="utf-8")
            written.append(target)
    init = out / "__init__.py"
    init.write_text(_INIT, encoding="utf-8")
    return [init, *written]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m headwater.engine.service.generate",
                                     description="Regenerate the headwater.v1 protobuf/gRPC modules.")
    parser.add_argument("--out", type=Path, default=PB_DIR, help=f"output folder (default {PB_DIR})")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path, file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
