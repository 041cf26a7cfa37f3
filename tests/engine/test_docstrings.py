"""The docstring examples of the engine modules (and the benchmark helpers) run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["headwater.engine.store", "headwater.engine.store.contract", "headwater.engine.store.validating",
           "headwater.engine.store.sqlite", "headwater.engine.store.sqlite_reader", "headwater.engine.store.sql_reader",
           "headwater.engine.store.postgres", "headwater.engine.store.pg_migrations", "headwater.engine.store.naming",
           "headwater.engine.pgdb", "headwater.engine.dburi", "headwater.engine.store.memory", "headwater.engine.store.overlay", "headwater.engine.bootstrap",
           "headwater.engine.backup", "headwater.engine.queries.derive", "headwater.engine.openlineage.spec",
           "headwater.engine.openlineage.mapping", "headwater.engine.openlineage.ingest",
           "headwater.engine.governance.monitor",
           "headwater.engine.relationships", "headwater.engine.contexts", "headwater.engine.cache", "headwater.engine.outcome",
           "headwater.engine.keys", "headwater.engine.chain", "headwater.engine.budget",
           "headwater.engine.service.admission", "headwater.engine.audit.binding", "headwater.engine.audit.anchors", "headwater.engine.evaluator", "headwater.engine.caveats",
           "headwater.engine.context", "headwater.engine.paging", "headwater.engine.results",
           "headwater.engine.writes", "headwater.engine.streams", "headwater.engine.expand",
           "headwater.engine.membership", "headwater.engine.queries.check", "headwater.engine.queries.expand",
           "headwater.engine.queries.lookups", "headwater.engine.queries.lineage", "headwater.engine.queries.schema",
           "headwater.engine.queries.replay", "headwater.engine.api",
           "headwater.engine.config", "headwater.engine.metrics", "headwater.engine.sqlitedb", "headwater.engine.audit",
           "headwater.engine.audit.records", "headwater.engine.audit.chain", "headwater.engine.audit.writer",
           "headwater.engine.audit.storage", "headwater.engine.audit.sql_storage", "headwater.engine.audit.pg_storage",
           "benchmarks.run"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
