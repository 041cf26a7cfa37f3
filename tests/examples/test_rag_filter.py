"""examples/rag-filter runs: a document derived from a restricted dataset is dropped until the user is cleared.

An in-process `serve-testing` server (as in examples/rag-filter/README.md), the example's
schema and relationships written through the official `authzed` client, then the
filter (CheckBulkPermissions, and the LookupResources variant) on a retriever's list.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from authzed.api.v1 import Client
from grpcutil import insecure_bearer_token_credentials
from headwater.engine.config import Config
from headwater.engine.service.testing import TestingServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rag-filter"
# What the retriever returned for a question about pay, best match first ("missing" was deleted since).
RETRIEVED = ["salary-review", "handbook", "missing", "roadmap"]


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rag_filter_example", EXAMPLE / "filter.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


rag = _load_example()


@pytest.fixture()
def address() -> Iterator[str]:
    server = TestingServer(Config.of(address="127.0.0.1:0")).start()
    try:
        yield server.address
    finally:
        server.stop(grace=0)


@pytest.mark.parametrize("keep", ["filter_by_check", "filter_by_lookup"])
def test_restricted_document_reappears_once_cleared(address: str, keep: str) -> None:
    client = Client(address, insecure_bearer_token_credentials("rag-test"))
    keep_for = getattr(rag, keep)
    token = rag.setup(client)
    # alice is cleared for internal: the document derived from hr-cases (restricted) is dropped.
    assert keep_for(client, "alice", RETRIEVED, token=token) == ["handbook", "roadmap"]
    # bob has no clearance: only what comes from public data.
    assert keep_for(client, "bob", RETRIEVED, token=token) == ["handbook"]
    token = rag.clear(client, "alice", "restricted")
    assert keep_for(client, "alice", RETRIEVED, token=token) == ["salary-review", "handbook", "roadmap"]
    assert keep_for(client, "bob", RETRIEVED, token=token) == ["handbook"]
    assert keep_for(client, "alice", [], token=token) == []


def test_command_line(address: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's commands, through ``main``."""
    common = ["--address", address, "--token", "rag-cli"]
    assert rag.main([*common, "setup"]) == 0
    capsys.readouterr()
    for lookup in ([], ["--lookup"]):
        rag.main([*common, "filter", "alice", *RETRIEVED, *lookup])
        assert capsys.readouterr().out.split() == ["handbook", "roadmap"]
    rag.main([*common, "clear", "alice", "restricted"])
    capsys.readouterr()
    for lookup in ([], ["--lookup"]):
        rag.main([*common, "filter", "alice", *RETRIEVED, *lookup])
        assert capsys.readouterr().out.split() == ["salary-review", "handbook", "roadmap"]
