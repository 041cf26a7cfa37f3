"""The check-latency cost of the audit log: auditing off vs. every decision recorded, in-process, warm cache.

    python -m benchmarks.bench_audit [--relationships 20000] [--checks 2000] [--rounds 10] [--json out.json]

The workload is bench_check's (seeded): warm-cache checks (direct, nested group,
folder chain and denied, mixed) against one SQLite store, through ONE engine
whose ``audit`` attribute is swapped between blocks (one log per policy), so
the store, connection and cache are the same for every policy. Rounds rotate
the policies so that machine noise hits each alike. The background writer runs
in the same process and competes for the GIL, so its cost is in the numbers.
Policies:

- ``off``: no audit log (``engine.audit is None``: one attribute check per call);
- ``all``: every decision recorded (the default policy once auditing is on);
- ``denials``, ``sample:0.01``: fewer records;
- ``all+explain``: every decision recorded with its explanation summary (an extra,
  uncached evaluation per check);
- ``all+durable``: each check waits until its record is committed and fsynced
  (group commit: bounded by the disk, so fewer checks are timed).

Two ratios over ``off``: the mean check latency (what a caller waits), and the
wall time per check including the flush of the writer's backlog at the end of
each round (the CPU the audit log costs in all; median over rounds). Numbers,
not pass/fail.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

from headwater.engine import Engine
from headwater.engine.audit import AuditLog
from headwater.engine.store.sqlite import SqliteStore

from .bench_check import SCHEMA, generate

POLICIES: dict[str, dict | None] = {
    "off": None,
    "all": {"decisions": "all"},
    "denials": {"decisions": "denials"},
    "sample:0.01": {"decisions": "sample:0.01"},
    "all+explain": {"decisions": "all", "explain": "all"},
    "all+durable": {"decisions": "all", "durable": True},
}


def _stats(us: list[float]) -> dict[str, float]:
    s = sorted(us)

    def q(p: float) -> float:
        return round(s[min(len(s) - 1, int(p * len(s)))], 1)

    return {"n": len(s), "mean_us": round(statistics.fmean(s), 2), "p50_us": q(0.50), "p99_us": q(0.99)}


def run(total: int, n_checks: int, rounds: int, block: int) -> dict:
    rels, samples = generate(total)
    rng = random.Random(11)
    checks = [c for k in ("direct", "nested_group", "folder_chain", "denied") for c in samples[k][:n_checks // 4]]
    rng.shuffle(checks)
    tmp = tempfile.TemporaryDirectory()
    engine = Engine(SqliteStore(Path(tmp.name) / "bench.db"))
    engine.write_schema(SCHEMA)
    for i in range(0, len(rels), 1000):
        engine.touch(*rels[i:i + 1000])
    logs = {name: AuditLog(Path(tmp.name) / f"{i}.audit", **options) if options is not None else None
            for i, (name, options) in enumerate(POLICIES.items())}
    for _ in range(2):  # warm the cache: the second pass is all hits
        for resource, subject in checks:
            engine.check(resource, "view", subject)
    timings: dict[str, list[float]] = {name: [] for name in logs}
    wall: dict[str, list[float]] = {name: [] for name in logs}  # per block: time incl. the flush / checks
    names = list(logs)
    position = 0
    for round_ in range(rounds):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:  # rotate: no policy always first
            log = engine.audit = logs[name]
            size = max(10, block // 10) if name == "all+durable" else block
            batch = [checks[(position + k) % len(checks)] for k in range(size)]
            start = time.perf_counter_ns()
            for resource, subject in batch:
                t = time.perf_counter_ns()
                engine.check(resource, "view", subject, caller="bench")
                timings[name].append((time.perf_counter_ns() - t) / 1000)
            if log is not None:
                log.flush()  # the writer's backlog counts in the wall figure
            wall[name].append((time.perf_counter_ns() - start) / 1000 / size)
        position += block
    engine.audit = None
    records = {}
    for name, log in logs.items():
        if log is not None:
            records[name] = log.head()[0]
            assert log.verify().ok
            log.close()
    engine.close()
    tmp.cleanup()
    results = {name: _stats(us) for name, us in timings.items()}
    base, base_wall = results["off"]["mean_us"], statistics.median(wall["off"])
    for name, r in results.items():
        r["ratio_vs_off"] = round(r["mean_us"] / base, 3)
        r["wall_us_per_check"] = round(statistics.median(wall[name]), 2)
        r["wall_ratio_vs_off"] = round(r["wall_us_per_check"] / base_wall, 3)
        r["records"] = records.get(name, 0)
    return {
        "benchmark": "audit", "relationships": len(rels), "distinct_checks": len(checks), "rounds": rounds,
        "block": block,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine()},
        "policies": results,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--relationships", type=int, default=20_000)
    ap.add_argument("--checks", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--block", type=int, default=500, help="checks per policy per round (durable: a tenth)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    r = run(args.relationships, args.checks, args.rounds, args.block)
    print(f"audit cost: {r['relationships']} relationships (SQLite), warm cache, {r['rounds']} rounds of "
          f"{r['block']} checks per policy")
    print(f"{'policy':<14}{'n':>7}{'mean µs':>9}{'p50 µs':>8}{'p99 µs':>8}{'ratio':>7}{'wall µs':>9}"
          f"{'ratio':>7}{'records':>9}")
    for name, s in r["policies"].items():
        print(f"{name:<14}{s['n']:>7}{s['mean_us']:>9}{s['p50_us']:>8}{s['p99_us']:>8}{s['ratio_vs_off']:>7}"
              f"{s['wall_us_per_check']:>9}{s['wall_ratio_vs_off']:>7}{s['records']:>9}")
    print("ratio: mean check latency over off's; wall: time per check including the writer's flush at the end "
          "of each round (median over rounds), and its ratio")
    if args.json:
        args.json.write_text(json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    main()
