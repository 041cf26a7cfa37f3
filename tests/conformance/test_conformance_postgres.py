"""Every assertion and ``validation:`` block of SpiceDB's validation files, answered over PostgreSQL.

The same files tests/engine/test_conformance.py runs on the memory store, each loaded into
the tests' PostgreSQL database (emptied first) and checked through an engine over it. The
PostgreSQL reader answers the evaluator's questions its own way (objects read whole, many
in one query: the lineage closure, the read-ahead of the groups rows name), so this holds
those reads to the decisions SpiceDB's files expect, and to the memory store's answers
(their reports must be identical).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.engine import Engine
from headwater.engine.validationfile import run_validation_file

from tests.conformance import CONFORMANCE, validation_files
from tests.conftest import pg_truncate

pytestmark = pytest.mark.conformance

FILES = validation_files()


def _outcomes(report: object) -> list[tuple[object, ...]]:
    return ([(a.kind, a.text, a.actual, a.missing_context, a.passed) for a in report.assertions]  # type: ignore[attr-defined]
            + [(v.resource, v.actual, v.problems, v.passed) for v in report.validations])  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(CONFORMANCE).as_posix())
def test_every_assertion_holds_on_postgresql(path: Path, pg_database: str) -> None:
    pg_truncate(pg_database)
    engines: list[Engine] = []

    def open_engine() -> Engine:
        engines.append(Engine.open(pg_database))
        return engines[-1]

    try:
        report = run_validation_file(path, root=CONFORMANCE, engine_factory=open_engine)
    finally:
        for engine in engines:
            engine.close()
    assert report.load_error is None, report.load_error
    failures = [o for o in _outcomes(report) if not o[-1]]
    assert not failures, failures
    assert _outcomes(report) == _outcomes(run_validation_file(path, root=CONFORMANCE))  # as on the memory store
