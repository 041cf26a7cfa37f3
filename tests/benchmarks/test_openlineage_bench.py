"""benchmarks/bench_openlineage.py runs end to end on a few events, over HTTP and in-process."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `benchmarks` is not an installed package: it lives at the repository root
    sys.path.insert(0, str(REPO))

from benchmarks import bench_openlineage  # noqa: E402


def test_the_ingestion_benchmark_runs_every_path() -> None:
    r = bench_openlineage.run(20, 10)
    assert {"single", "batched", "single_again_no_write", "in_process_memory_store"} == set(r)
    assert (r["single"]["requests"], r["batched"]["requests"], r["single"]["events"]) == (20, 2, 20)
    assert set(r["in_process_memory_store"]) == {"single", "batched"}
    assert all(p["events_per_s"] > 0 for p in (r["single"], r["batched"]))
