"""benchmarks/bench_read_ahead.py runs end to end on a tiny workload over PostgreSQL: both modes give the same
answers (the benchmark asserts it), the read-ahead sends fewer queries, and the reader is left as it was."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `benchmarks` is not an installed package: it lives at the repository root
    sys.path.insert(0, str(REPO))

from benchmarks import bench_read_ahead  # noqa: E402
from headwater.engine.store import sql_reader  # noqa: E402

from tests.conftest import PG_SERVER  # noqa: E402


def test_the_read_ahead_benchmark_runs() -> None:
    before = (sql_reader.SqlReader._read_ahead, sql_reader.SqlReader._query, sql_reader.SqlReader._rows)
    r = bench_read_ahead.run(0.05, 6, PG_SERVER)
    assert (sql_reader.SqlReader._read_ahead, sql_reader.SqlReader._query, sql_reader.SqlReader._rows) == before
    assert set(r["scenarios"]) == set(bench_read_ahead.SCENARIOS)
    nested = r["scenarios"]["nested_team_d4"]
    assert nested["with"]["queries_per_check"] < nested["without"]["queries_per_check"]
