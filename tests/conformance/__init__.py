"""Conformance tests, and where SpiceDB's conformance data lives.

The data is kept in the repository (``tests/conformance/data``: origin, commits and the Apache-2.0 license in
``NOTICE.md`` and ``LICENSE`` there), so every clone has it. Every test that reads it takes the path from here and
carries the ``conformance`` marker; such a test must not skip (``tests/conftest.py`` turns a skip into a failure).
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
#: SpiceDB's files, unchanged: ``testconfigs/``, ``examples/``, ``loader/``, ``steelthread/``.
CONFORMANCE = DATA / "spicedb"


def validation_files(*, split_validations: bool = True) -> list[Path]:
    """SpiceDB's validation files: ``testconfigs/*.yaml``, ``examples/*.yaml`` and (with ``split_validations``) the
    ``examples/*/validations/*.yaml`` that share a ``schemaFile``, each group sorted."""
    files = sorted((CONFORMANCE / "testconfigs").glob("*.yaml")) + sorted((CONFORMANCE / "examples").glob("*.yaml"))
    if split_validations:
        files += sorted((CONFORMANCE / "examples").glob("*/validations/*.yaml"))
    return files
