"""The conformance suite (SpiceDB's validation files) through gRPC gives the same answers as in-process.

Each file is loaded into an in-process Engine; one server serves that engine, and
every assertion (Check) and ``validation:`` entry (Expand) is run twice, directly
and through the Client, and the two reports must be identical.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.engine import Engine
from headwater.engine.config import Config
from headwater.engine.service.server import HeadwaterServer
from headwater.engine.store.memory import MemoryStore
from headwater.engine.validationfile import (
    ValidationReport,
    _load_into,
    _run_checks,
    load_validation_file,
)

from tests.conformance import CONFORMANCE, validation_files

from .conftest import client_for

pytestmark = pytest.mark.conformance
FILES = validation_files()


def _summary(report: ValidationReport) -> list[tuple]:
    return ([(a.kind, a.text, a.actual, a.missing_context, a.error is not None) for a in report.assertions]
            + [(v.resource, v.expected, v.actual, v.problems, v.error is not None) for v in report.validations])


def test_conformance_through_grpc_matches_in_process(token_file: Path) -> None:
    compared = 0
    for path in FILES:
        engine = Engine(MemoryStore())
        loaded = load_validation_file(path, root=CONFORMANCE)  # every file loads (tests/engine/test_conformance.py)
        for doc in loaded:
            _load_into(engine, doc)
        local, remote = ValidationReport(str(path)), ValidationReport(str(path))
        _run_checks(engine, loaded, local)
        server = HeadwaterServer(Config.of(address="127.0.0.1:0", db=":memory:", token_file=str(token_file)),
                                 engine=engine).start()
        try:
            with client_for(server) as client:
                _run_checks(client, loaded, remote)
        finally:
            server.stop(grace=0)
        assert _summary(remote) == _summary(local), path.name
        assert local.ok, path.name
        compared += len(local.assertions) + len(local.validations)
    assert compared >= 230
