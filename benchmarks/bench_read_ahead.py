"""PostgreSQL's read-ahead of named groups, on and off, check by check (the same database, the same process).

    python -m benchmarks.bench_read_ahead [--scale 1] [--checks 400] [--json FILE]
                                          [--pg-server postgresql://127.0.0.1:5432/test]

The seeded AI-lineage workload of ``benchmarks.run`` is loaded once into a new
PostgreSQL database (dropped afterwards). Every check of each scenario is asked
cold (every cache emptied) twice, once with the read-ahead
(``engine/store/sql_reader.py``: an object read with up to ``READ_AHEAD`` groups
that rows already read name as subject sets) and once without it (each object
its own query, as before it), alternating which goes first, so that a slow
moment of a shared machine falls on both. Reported: p50/p99 of each and the
queries a check sent. Both must give the same answers (checked).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.run import bench_database, clear_caches, drop_bench_database, load_headwater, log, machine
from benchmarks.workload import generate
from headwater.engine.store import sql_reader

SCENARIOS = ("direct", "nested_team_d4", "lineage_all_d8", "lineage_all_d32", "lineage_upstream_d8",
             "lineage_upstream_d32", "upstream_access_d8", "wide_fan_in")


class _Counted:
    """Counts the queries the readers send, and turns the read-ahead off or on."""

    def __init__(self) -> None:
        self.queries = 0
        self._read_ahead = sql_reader.SqlReader._read_ahead
        self._query, self._rows = sql_reader.SqlReader._query, sql_reader.SqlReader._rows
        counted = self

        def query(reader: Any, *args: Any, **kwargs: Any) -> Any:
            counted.queries += 1
            return counted._query(reader, *args, **kwargs)

        def rows(reader: Any, *args: Any, **kwargs: Any) -> Any:
            counted.queries += 1
            return counted._rows(reader, *args, **kwargs)

        sql_reader.SqlReader._query, sql_reader.SqlReader._rows = query, rows  # type: ignore[method-assign]

    def read_ahead(self, on: bool) -> None:
        sql_reader.SqlReader._read_ahead = (self._read_ahead if on  # type: ignore[method-assign]
                                            else lambda reader, key: False)

    def restore(self) -> None:
        sql_reader.SqlReader._read_ahead = self._read_ahead  # type: ignore[method-assign]
        sql_reader.SqlReader._query, sql_reader.SqlReader._rows = self._query, self._rows  # type: ignore[method-assign]


def run(scale: float, checks: int, pg_server: str) -> dict[str, Any]:
    workload = generate(scale, 42, checks_per_scenario=max(checks, 2000))
    counted = _Counted()
    out: dict[str, Any] = {"benchmark": "read_ahead", "scale": scale, "checks": checks, "machine": machine(),
                           "load_average_at_start": os.getloadavg()[0], "scenarios": {}}
    try:
        with tempfile.TemporaryDirectory() as folder:
            paths = workload.write_files(Path(folder))
            db = bench_database("postgresql", Path(folder), pg_server)
            try:
                engine, _ = load_headwater("postgresql", db, workload.headwater_schema,
                                           paths["headwater_relationships"])
                with engine:
                    for name in SCENARIOS:
                        log(f"{name}: {checks} checks, cold, with and without the read-ahead ...")
                        times: dict[str, list[float]] = {"without": [], "with": []}
                        queries = {"without": 0, "with": 0}
                        for i, c in enumerate(workload.scenarios[name][:checks]):
                            answers = []
                            for mode in (("without", "with") if i % 2 == 0 else ("with", "without")):
                                counted.read_ahead(mode == "with")
                                clear_caches(engine)
                                counted.queries = 0
                                started = time.perf_counter()
                                answers.append(engine.check(c.resource, c.permission, c.subject).permissionship)
                                times[mode].append((time.perf_counter() - started) * 1e6)
                                queries[mode] += counted.queries
                            assert answers[0] == answers[1], (name, c)
                        out["scenarios"][name] = {
                            mode: {"p50_us": round(statistics.median(us), 1),
                                   "p99_us": round(sorted(us)[max(0, int(len(us) * 0.99) - 1)], 1),
                                   "queries_per_check": round(queries[mode] / len(us), 1)}
                            for mode, us in times.items()}
            finally:
                drop_bench_database("postgresql", db, pg_server)
    finally:
        counted.restore()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1)
    ap.add_argument("--checks", type=int, default=400, help="checks per scenario (each asked twice)")
    ap.add_argument("--pg-server", default=os.environ.get("HEADWATER_TEST_PG", "postgresql://127.0.0.1:5432/test"))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    r = run(args.scale, args.checks, args.pg_server)
    for name, s in r["scenarios"].items():
        off, on = s["without"], s["with"]
        print(f"{name:22} without p50 {off['p50_us']:>8} µs p99 {off['p99_us']:>8} µs {off['queries_per_check']:>5} "
              f"queries | with p50 {on['p50_us']:>8} µs p99 {on['p99_us']:>8} µs {on['queries_per_check']:>5} "
              f"queries | p50 {on['p50_us'] / off['p50_us'] - 1:+.0%}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    main()
