"""The docstring examples of the engine modules (and the benchmark helpers) run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["headwater.engine.store", "headwater.engine.store.sqlite", "headwater.engine.store.memory",
           "headwater.engine.relationships", "headwater.engine.cache", "headwater.engine.dispatch",
           "headwater.engine.config", "headwater.engine.sqlitedb", "headwater.engine.audit",
           "headwater.engine.audit.records", "headwater.engine.audit.chain", "headwater.engine.audit.writer",
           "headwater.engine.audit.storage", "benchmarks.run"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
