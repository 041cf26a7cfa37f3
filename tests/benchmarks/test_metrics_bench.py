"""benchmarks/bench_metrics.py runs end to end on a few checks, and its scrape counts every check it sent."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `benchmarks` is not an installed package: it lives at the repository root
    sys.path.insert(0, str(REPO))

from benchmarks import bench_metrics  # noqa: E402


def test_the_metrics_benchmark_runs_and_counts_its_checks() -> None:
    r = bench_metrics.run(30, 3)
    assert r["checks_per_server"] == 30
    assert r["checks_counted_by_the_scrape"] == 600 + 30  # the warm-up and the timed checks of the "on" server
    assert {"off", "on", "off_again"} <= set(r) and r["hook_us_per_call"] > 0
