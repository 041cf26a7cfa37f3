"""The side-by-side ratios compare the same checks on both engines."""

from __future__ import annotations

from benchmarks.run import scenario_ratios


def test_ratios_cover_only_the_checks_spicedb_ran() -> None:
    # Headwater timed 4 checks; SpiceDB ran the first 2 (a quick run). The expensive later checks must not
    # dilute Headwater's side.
    spicedb = {"n": 2, "p50_us": 100.0, "mean_us": 150.0}
    same, ratios = scenario_ratios(spicedb, [1.0, 2.0, 50.0, 60.0], {"p50_us": 0.5})
    assert same["n"] == 2 and same["mean_us"] == 1.5
    assert ratios == {"cold_speedup_p50": 100.0, "cold_throughput_ratio": 100.0, "warm_speedup_p50": 200.0,
                      "over_checks": 2}


def test_ratios_when_spicedb_ran_every_check() -> None:
    same, ratios = scenario_ratios({"n": 3, "p50_us": 40.0, "mean_us": 40.0}, [2.0, 4.0, 6.0], {"p50_us": 1.0})
    assert same["p50_us"] == 4.0 and ratios["cold_throughput_ratio"] == 10.0 and ratios["over_checks"] == 3
