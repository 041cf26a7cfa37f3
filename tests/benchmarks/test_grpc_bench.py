"""The gRPC path of ``benchmarks.run``: ``headwater serve`` over the benchmark's own SQLite file, every check
scenario sent from a separate client process (``benchmarks.grpc_client``), warm and cold (``--cache-size 0``),
next to an empty-RPC floor; every gRPC answer must be the workload's expected answer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `benchmarks` is not an installed package: it lives at the repository root
    sys.path.insert(0, str(REPO))

from benchmarks import run as bench  # noqa: E402
from benchmarks.workload import generate  # noqa: E402

PER_SCENARIO = 6  # half allowed, half denied where the scenario has both


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory):
    """A one-unit workload (scale 0.05) loaded by the benchmark's own loader; (engine, workdir, samples)."""
    workdir = tmp_path_factory.mktemp("grpc-bench")
    workload = generate(0.05, 42, checks_per_scenario=200)
    paths = workload.write_files(workdir)
    engine, _ = bench.load_headwater("sqlite", str(workdir / "headwater.db"), workload.headwater_schema,
                                     paths["headwater_relationships"])
    samples = {}
    for sc in bench.SCENARIOS:
        checks = workload.scenarios[sc.name]
        yes = [c for c in checks if c.expected][:PER_SCENARIO // 2]
        no = [c for c in checks if not c.expected][:PER_SCENARIO // 2]
        pick = yes + no
        samples[sc.name] = pick + [c for c in checks if c not in pick][:PER_SCENARIO - len(pick)]
    yield engine, workdir, samples
    engine.close()


def test_measure_grpc_times_every_scenario_and_answers_as_expected(loaded) -> None:
    engine, workdir, samples = loaded
    answers_expected = [c.expected for checks in samples.values() for c in checks]
    assert True in answers_expected and False in answers_expected  # an always-yes or always-no server fails
    head, history = engine.store.head(), len(engine.store.schema_history())

    g = bench.measure_grpc(workdir / "headwater.db", samples, workdir, floor_min=40, cold_checks=4)

    assert g["status"] == "measured", g["errors"]
    assert set(g["scenarios"]) == set(samples) == {sc.name for sc in bench.SCENARIOS}
    for name, checks in samples.items():
        r = g["scenarios"][name]
        assert r["warm"]["n"] == len(checks) and r["cold"]["n"] == 4, name
        assert 0 < r["warm"]["p50_us"] <= r["warm"]["p99_us"] and 0 < r["cold"]["p50_us"] <= r["cold"]["p99_us"]
        assert r["empty_rpc"]["n"] == len(checks)  # one empty RPC interleaved with each timed warm check
        assert r["warm_over_empty_rpc_p50"] == round(r["warm"]["p50_us"] / r["empty_rpc"]["p50_us"], 2)
        expected = [bench.expected_name(c) for c in checks]
        assert g["answers"][name]["warm"] == expected, name
        assert g["answers"][name]["cold"] == expected[:4], name
    assert g["empty_rpc"]["n"] >= 40 and g["empty_rpc"]["p50_us"] > 0
    # The servers only read the benchmark's database: no write, no second schema version.
    assert engine.store.head() == head and len(engine.store.schema_history()) == history


def test_grpc_verdict_and_table() -> None:
    def pct(p50: float) -> dict:
        return {"n": 10, "p50_us": p50, "p95_us": p50 * 2, "p99_us": p50 * 3}

    g = {"status": "measured", "empty_rpc": pct(200.0), "errors": {}, "scenarios": {
        "direct": {"title": "direct grant", "cold": {**pct(400.0), "answered": 10, "unexpected": 0},
                   "warm": {**pct(260.0), "answered": 10, "unexpected": 0}, "warm_over_empty_rpc_p50": 1.3},
        "wide_fan_in": {"title": "wide fan-in", "cold": {**pct(9000.0), "answered": 10, "unexpected": 2},
                        "warm": {**pct(340.0), "answered": 10, "unexpected": 0}, "warm_over_empty_rpc_p50": 1.7}}}
    target, measured, verdict = bench.grpc_verdict(g)
    assert verdict == "MET" and "1.30×" in measured and "worst scenario wide fan-in 1.70×" in measured
    g["scenarios"]["direct"]["warm_over_empty_rpc_p50"] = 1.6
    assert bench.grpc_verdict(g)[2] == "NOT MET"
    assert bench.grpc_verdict({"status": "skipped (--no-grpc)"})[1:] == ("gRPC: skipped (--no-grpc)", "n/a")
    lines = bench.grpc_report(g, lambda p: f"{p['p50_us']:.0f}" if p.get("n") else "-")
    fan_in = next(line for line in lines if line.startswith("wide fan-in"))
    assert "9000" in fan_in and "340" in fan_in and "2 DIFF/20" in fan_in
    assert "ok/20" in next(line for line in lines if line.startswith("direct grant"))
    assert "--cache-size 0" in "\n".join(lines)


def test_client_process_reports_errors_as_answers_and_a_failed_server_start_says_why(loaded, tmp_path: Path) -> None:
    _, workdir, samples = loaded
    with bench.grpc_server(workdir / "headwater.db", tmp_path, "t") as address:
        checks = tmp_path / "checks.json"
        checks.write_text(json.dumps({"direct": [[c.resource, c.permission, c.subject] for c in samples["direct"][:2]]
                                      + [["dataset:x", "no_such_permission", "user:y"]]}))
        out = tmp_path / "out.json"
        subprocess.run([sys.executable, "-m", "benchmarks.grpc_client", "--address", address, "--mode", "cold",
                        "--checks", str(checks), "--out", str(out), "--prime", "0"], cwd=REPO, check=True, timeout=60)
    result = json.loads(out.read_text())["scenarios"]["direct"]
    assert result["answers"][:2] == [bench.expected_name(c) for c in samples["direct"][:2]]
    assert result["answers"][2].startswith("ERROR") and len(result["times_us"]) == 3
    with pytest.raises(bench.GrpcUnavailable, match="exited with status"):
        with bench.grpc_server(workdir / "headwater.db", tmp_path, "bad", ("--cache-size", "-1")):
            pass


def test_measure_scenario_answers_as_expected_and_probes_the_engines_own_keys(loaded) -> None:
    engine, _workdir, samples = loaded
    checks = samples["lineage_all_d8"]
    r = bench.measure_scenario(engine, checks)
    assert r["answers"] == [bench.expected_name(c) for c in checks]
    assert r["warm"]["cache_misses"] == 0 and not r["warm_differs_from_cold"]
    # the floor probes the keys the engine cached its answers under: every probe must hit
    assert r["probe_floor"]["n"] == len(checks) and r["probe_floor"]["hits"] == len(checks)
