"""benchmarks/bench_tracing.py runs end to end on a few checks, with every server answering them."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `benchmarks` is not an installed package: it lives at the repository root
    sys.path.insert(0, str(REPO))

from benchmarks import bench_tracing  # noqa: E402


def test_the_tracing_benchmark_runs() -> None:
    r = bench_tracing.run(20, 2)
    assert r["checks_per_server"] == 20
    assert all(r[name]["n"] == 20 for name in bench_tracing.SERVERS)
    assert r["span_off_ns"] > 0 and r["rpc_and_check_span_drop_us"] > 0
    assert r["otlp_bytes_received"] > 0  # the OTLP server exported its spans to the collector stand-in
