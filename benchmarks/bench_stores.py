"""SQLite, PostgreSQL and real SpiceDB on the same workload, in the same run (issue 16).

    python -m benchmarks.bench_stores [--scale 1] [--checks 500] [--no-spicedb] [--json FILE]
                                      [--pg-server postgresql://127.0.0.1:5432/test]

The seeded AI-lineage workload of ``benchmarks/run.py`` is generated once and
loaded into Headwater over SQLite (a file), over PostgreSQL (a database created
on ``--pg-server`` and dropped afterwards) and into real SpiceDB v1.54 (embedded,
its caches off). For each store: bulk-import speed, every check scenario cold
(Headwater's caches emptied before each check) and warm (p50/p99), and this
process's resident memory after loading and checking. The checks, answers and
SpiceDB's figures are those of ``benchmarks.run`` (its functions are reused);
every answer is held to the workload's expected answer. The goal of issue 16:
PostgreSQL's cold deep-lineage check at most 3x SQLite's (``ratios`` in the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.run import (
    DEFAULT_PEERS,
    SCENARIOS,
    Agreement,
    SpicedbPeer,
    bench_database,
    drop_bench_database,
    load_headwater,
    log,
    machine,
    measure_scenario,
    percentiles,
)
from benchmarks.workload import generate

STORES = ("sqlite", "postgresql")


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"benchmark": "stores", "date": datetime.now(UTC).isoformat(timespec="seconds"),
                           "command": " ".join(["python -m benchmarks.bench_stores", *sys.argv[1:]]),
                           "machine": machine(), "scale": args.scale, "checks": args.checks,
                           "load_average_at_start": os.getloadavg(), "stores": {}}
    workload = generate(args.scale, 42, checks_per_scenario=max(args.checks, 2000))
    out["workload"] = workload.counts
    workdir = Path(tempfile.mkdtemp(prefix="headwater-stores-"))
    paths = workload.write_files(workdir)
    agreement = Agreement()
    for kind in STORES:
        db = bench_database(kind, workdir, args.pg_server)
        try:
            base = _rss_mib()
            log(f"{kind}: importing {workload.counts['relationships']:,} relationships ...")
            engine, imported = load_headwater(kind, db, workload.headwater_schema, paths["headwater_relationships"])
            loaded = _rss_mib()
            result: dict[str, Any] = {"import": imported, "scenarios": {}}
            for sc in SCENARIOS:
                checks = workload.scenarios[sc.name][:args.checks]
                log(f"{kind}: {sc.name}, {len(checks)} checks cold and warm ...")
                r = measure_scenario(engine, checks)
                agreement.expect(f"{kind}: {sc.name}", checks, r["answers"])
                result["scenarios"][sc.name] = {"cold": r["cold"], "warm": r["warm"]}
            result["rss_mib"] = {"before_load": base, "after_load": loaded, "after_checks": _rss_mib()}
            engine.close()
            out["stores"][kind] = result
        finally:
            drop_bench_database(kind, db, args.pg_server)
    if not args.no_spicedb:
        peer, why = SpicedbPeer.start(args.peers_dir, log)
        if peer is None:
            out["spicedb"] = {"status": why}
        else:
            try:
                log("SpiceDB: importing ...")
                sp = peer.call("load", schema=workload.spicedb_schema,
                               relationships_file=str(paths["spicedb_relationships"]), batch=1000)
                result = {"import": {"relationships": sp["relationships"], "seconds": round(sp["seconds"], 3),
                                     "per_s": round(sp["relationships"] / sp["seconds"])},
                          "rss_mib": {"before_load": sp["rss_before"]["rss_mib"],
                                      "after_load": sp["rss_after"]["rss_mib"]}, "scenarios": {}}
                for sc in SCENARIOS:
                    if not sc.compared:
                        continue
                    checks = workload.scenarios[sc.name][:args.spicedb_checks]
                    log(f"SpiceDB: {sc.name}, {len(checks)} checks ...")
                    spr = peer.call("checks", checks=[[c.resource, c.permission, c.subject] for c in checks],
                                    budget_s=args.spicedb_budget)
                    result["scenarios"][sc.name] = {"cold": percentiles(spr["latencies_us"])}
                out["stores"]["spicedb"] = result
            finally:
                peer.close()
    sqlite, pg = out["stores"]["sqlite"]["scenarios"], out["stores"]["postgresql"]["scenarios"]
    out["ratios"] = {"postgresql_cold_p50_over_sqlite": {
        name: round(pg[name]["cold"]["p50_us"] / sqlite[name]["cold"]["p50_us"], 2) for name in sqlite}}
    out["unexpected_answers"] = len(agreement.unexpected)
    return out


def report(out: dict[str, Any]) -> str:
    stores = list(out["stores"])
    lines = [f"stores — {out['date']} — scale {out['scale']}: {out['workload']['relationships']:,} relationships; "
             f"{out['machine'].get('cpu', '')}", ""]
    header = f"{'scenario':34}" + "".join(f"{s + ' cold p50/p99':>26}" for s in stores) + \
        "".join(f"{s + ' warm p50':>18}" for s in stores if s != "spicedb") + f"{'pg/sqlite cold':>16}"
    lines += [header, "-" * len(header)]

    def fmt(v: float | None) -> str:
        return "-" if v is None else (f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.1f} µs")
    for name, ratio in out["ratios"]["postgresql_cold_p50_over_sqlite"].items():
        row = f"{name:34}"
        for s in stores:
            c = out["stores"][s]["scenarios"].get(name, {}).get("cold", {})
            row += f"{fmt(c.get('p50_us')) + ' / ' + fmt(c.get('p99_us')):>26}"
        for s in stores:
            if s != "spicedb":
                row += f"{fmt(out['stores'][s]['scenarios'][name]['warm'].get('p50_us')):>18}"
        lines.append(row + f"{ratio:>15}×")
    lines.append("")
    for s in stores:
        imp, rss = out["stores"][s]["import"], out["stores"][s]["rss_mib"]
        lines.append(f"{s}: import {imp['per_s']:,} relationships/s; resident memory {rss['before_load']} -> "
                     f"{rss['after_load']} MiB after loading" + (f", {rss['after_checks']} MiB after the checks"
                                                                   if "after_checks" in rss else ""))
    lines.append(f"answers differing from the workload's expected answer: {out['unexpected_answers']}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1)
    ap.add_argument("--checks", type=int, default=500, help="Headwater checks per scenario, cold and warm")
    ap.add_argument("--spicedb-checks", type=int, default=200, help="SpiceDB checks per scenario")
    ap.add_argument("--spicedb-budget", type=float, default=60.0, help="seconds per SpiceDB scenario at most")
    ap.add_argument("--no-spicedb", action="store_true")
    ap.add_argument("--pg-server", default=os.environ.get("HEADWATER_TEST_PG", "postgresql://127.0.0.1:5432/test"))
    ap.add_argument("--peers-dir", type=Path, default=Path(os.environ.get("HEADWATER_PEERS_DIR", DEFAULT_PEERS)))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    started = time.perf_counter()
    out = run(args)
    out["seconds"] = round(time.perf_counter() - started, 1)
    print(report(out))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2, default=str))
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
