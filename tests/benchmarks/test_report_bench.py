"""benchmarks/bench_report.py runs end to end on a tiny workload and reports what it measured."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `benchmarks` is not an installed package: it lives at the repository root
    sys.path.insert(0, str(REPO))

from benchmarks import bench_report  # noqa: E402


def test_the_report_benchmark_runs() -> None:
    row = bench_report.measure(0.02, "memory", warm=False)
    assert row["objects"] > 0 and row["viewer_entries"] > 0 and row["values"] == 7
    assert row["report_cold_s"] > 0 and row["report_no_viewers_s"] > 0
    assert set(row["render_s"]) == {"json", "csv", "html"}


def test_the_extrapolation_is_a_line() -> None:
    rows = [{"scale": 1, "report_cold_s": 10.0, "report_no_viewers_s": 1.0},
            {"scale": 2, "report_cold_s": 20.0, "report_no_viewers_s": 2.0}]
    estimate = bench_report.extrapolate(rows)
    assert estimate is not None and (estimate["report_cold_s"], estimate["report_no_viewers_s"]) == (200.0, 20.0)
    assert bench_report.extrapolate(rows[:1]) is None
