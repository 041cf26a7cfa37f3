"""Where a check's time goes: profile the warm and cold check paths on the side-by-side workload.

    python -m benchmarks.profile_hot_path [--scale 1] [--scenario lineage_all_d8] [--mode warm|cold]
                                          [--checks 2000] [--db FILE] [--top 25] [--pyinstrument [--flat]]

Loads the workload of ``benchmarks/workload.py`` into a SQLite store (or reuses
``--db`` when it already holds it), then runs the scenario's checks the way
``benchmarks.run`` does (cold: every Headwater cache emptied before each check;
warm: chunks of 50 checks run once, then again under the profiler) and prints
the functions with the largest *own* time (cProfile ``tottime``), each with its
share of the profiled time, plus the cumulative time of the main steps.
cProfile adds a fixed cost to every Python call, so many small calls look
dearer than they are; ``--pyinstrument`` (``pip install pyinstrument``) prints
a sampled call tree instead.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from headwater.engine import Engine
from headwater.engine.store.sqlite import SqliteStore

from .run import WARM_CHUNK, clear_caches
from .workload import generate

STEPS = [  # (label, file suffix, function): cumulative time of the main steps of a check
    ("CheckQuery.check (Engine.check)", "engine/queries/check.py", "check"),
    ("CheckQuery._warm_answer (the asked-check probe)", "engine/queries/check.py", "_warm_answer"),
    ("Context.snapshot (read transaction + schema)", "engine/context.py", "snapshot"),
    ("SqliteSnapshot.__enter__", "engine/store/sqlite_reader.py", "__enter__"),
    ("CheckQuery.evaluate", "engine/queries/check.py", "evaluate"),
    ("chain: cached (a sub-problem: the shared cache, then evaluation)", "engine/chain.py", "cached"),
    ("evaluator.enter (evaluation of a sub-problem)", "engine/evaluator.py", "enter"),
    ("Program.direct (exact and wildcard matches)", "engine/evaluator.py", "direct"),
    ("Cache.get", "engine/cache.py", "get"),
    ("Cache.put", "engine/cache.py", "put"),
    ("reader.relationship", "engine/store/sqlite_reader.py", "relationship"),
    ("reader.relationships", "engine/store/sqlite_reader.py", "relationships"),
    ("reader.subject_sets", "engine/store/sqlite_reader.py", "subject_sets"),
    ("SqliteReader._object (one query per object)", "engine/store/sqlite_reader.py", "_object"),
    ("SqliteReader._rows", "engine/store/sqlite_reader.py", "_rows"),
    ("Lineage.upstream", "engine/lineage.py", "upstream"),
    ("Lineage.labels", "engine/lineage.py", "labels"),
    ("parse_object", "engine/relationships.py", "parse_object"),
    ("parse_subject", "engine/relationships.py", "parse_subject"),
]


class _Breakdown:
    """Wall time spent in a few engine functions (wrapped in place, in this process only), per category."""

    def __init__(self, engine: Engine) -> None:
        from contextlib import contextmanager

        from headwater.engine import cache as cache_mod
        from headwater.engine import evaluator as evaluator_mod
        from headwater.engine.store import sqlite_reader as reader_mod

        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.active = True  # accumulate only while True (the timed half of a warm run)
        clock = time.perf_counter

        def timed(category: str, fn):
            def wrapper(*a, **kw):
                t = clock()
                try:
                    return fn(*a, **kw)
                finally:
                    if self.active:
                        self.seconds[category] = self.seconds.get(category, 0.0) + clock() - t
                        self.calls[category] = self.calls.get(category, 0) + 1
            return wrapper

        sql = "SQL queries (execute + fetchall)"
        reader_mod.SqliteReader._query = timed(sql, reader_mod.SqliteReader._query)
        reader_mod.SqliteReader._rows = timed(sql, reader_mod.SqliteReader._rows)
        evaluator_mod._row_outcome = timed("rows -> outcomes (caveats, expiration)", evaluator_mod._row_outcome)
        # The chain's resolvers bound the check cache's methods when the engine was built, so these count the
        # other probes only (schemas, programs, labels, the warm path).
        cache_mod.Cache.get = timed("cache get (outside the chain)", cache_mod.Cache.get)
        cache_mod.Cache.put = timed("cache put (outside the chain)", cache_mod.Cache.put)
        store = engine.store
        snapshot = store.snapshot

        @contextmanager
        def timed_snapshot(*a, **kw):
            t = clock()
            cm = snapshot(*a, **kw)
            reader = cm.__enter__()
            spent = clock() - t
            try:
                yield reader
            finally:
                t = clock()
                cm.__exit__(None, None, None)
                if self.active:
                    key = "open/close the read transaction"
                    self.seconds[key] = self.seconds.get(key, 0.0) + spent + clock() - t

        store.snapshot = timed_snapshot  # type: ignore[method-assign]

    def report(self, total: float, n: int) -> str:
        lines = [f"{'share':>6} {'µs/check':>10} {'calls/check':>11}  category"]
        rest = total
        for k, v in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            rest -= v
            calls = self.calls.get(k)
            lines.append(f"{v / total:>6.1%} {v / n * 1e6:>10.2f} {calls / n if calls else 1:>11.1f}  {k}")
        lines.append(f"{rest / total:>6.1%} {rest / n * 1e6:>10.2f} {'':>11}  everything else (evaluator, values, "
                     "schema, wrappers)")
        return "\n".join(lines)


def load(db: Path, scale: float) -> Engine:
    workload = generate(scale)
    engine = Engine(SqliteStore(db))
    if engine.store.head() == 0:
        engine.write_schema(workload.headwater_schema)
        engine.import_relationships(workload.relationships, batch_size=1000)
    return engine


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1)
    ap.add_argument("--scenario", default="lineage_all_d8")
    ap.add_argument("--mode", choices=["warm", "cold"], default="warm")
    ap.add_argument("--checks", type=int, default=2000)
    ap.add_argument("--db", type=Path, help="a database holding the workload (created and loaded if missing)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--pyinstrument", action="store_true", help="print a sampled call tree (pyinstrument)")
    ap.add_argument("--flat", action="store_true", help="with --pyinstrument: own time per function, not a tree")
    ap.add_argument("--breakdown", action="store_true",
                    help="wall time per category (SQL, rows, cache, read transaction), measured by wrapping")
    args = ap.parse_args()
    tmp = None
    if args.db is None:
        tmp = tempfile.TemporaryDirectory()
        args.db = Path(tmp.name) / "profile.db"
    engine = load(args.db, args.scale)
    checks = generate(args.scale).scenarios[args.scenario][:args.checks]

    def run_cold() -> None:
        for c in checks:
            clear_caches(engine)  # untimed in benchmarks.run; here it is a visible (small) line of its own
            engine.check(c.resource, c.permission, c.subject)

    chunks = [checks[i:i + WARM_CHUNK] for i in range(0, len(checks), WARM_CHUNK)]

    def run_warm(profiler: object) -> None:
        for chunk in chunks:
            for c in chunk:
                engine.check(c.resource, c.permission, c.subject)
            profiler.enable()  # type: ignore[attr-defined]
            for c in chunk:
                engine.check(c.resource, c.permission, c.subject)
            profiler.disable()  # type: ignore[attr-defined]

    if args.breakdown:
        bd = _Breakdown(engine)
        spent = [0.0]

        class _Clock:
            def enable(self) -> None:
                bd.active = True
                spent.append(time.perf_counter())

            def disable(self) -> None:
                spent[0] += time.perf_counter() - spent.pop()
                bd.active = False

        if args.mode == "cold":
            for c in checks:
                clear_caches(engine)
                t = time.perf_counter()
                engine.check(c.resource, c.permission, c.subject)
                spent[0] += time.perf_counter() - t
        else:
            bd.active = False
            run_warm(_Clock())
        print(f"{args.scenario}, {args.mode}: {len(checks)} checks, {spent[0] / len(checks) * 1e6:.1f} µs per check "
              "(wall time, wrappers included)")
        print(bd.report(spent[0], len(checks)))
        return

    if args.pyinstrument:
        from pyinstrument import Profiler

        p = Profiler(interval=0.0001)
        if args.mode == "cold":
            p.start()
            run_cold()
            p.stop()
        else:
            class _Toggle:
                def enable(self) -> None:
                    p.start()

                def disable(self) -> None:
                    p.stop()

            run_warm(_Toggle())
        print(p.output_text(unicode=True, color=False, show_all=False, flat=args.flat))
        return

    prof = cProfile.Profile()
    if args.mode == "cold":
        prof.enable()
        run_cold()
        prof.disable()
    else:
        run_warm(prof)
    stats = pstats.Stats(prof)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"{args.scenario}, {args.mode}: {len(checks)} checks, {total:.3f} s profiled "
          f"({total / len(checks) * 1e6:.1f} µs per check under cProfile)")
    rows = []
    for (file, line, fn), (cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((tt, ct, nc, file, line, fn))
    print(f"\n{'own %':>6} {'own µs/check':>12} {'calls/check':>11}  function")
    for tt, ct, nc, file, line, fn in sorted(rows, reverse=True)[:args.top]:
        where = file.split("/work/main/")[-1].split("site-packages/")[-1]
        print(f"{tt / total:>6.1%} {tt / len(checks) * 1e6:>12.2f} {nc / len(checks):>11.1f}  {fn} ({where}:{line})")
    print(f"\n{'cum %':>6} {'cum µs/check':>12} {'calls/check':>11}  step")
    for label, suffix, name in STEPS:
        for tt, ct, nc, file, line, fn in rows:
            if fn == name and file.endswith(suffix):
                print(f"{ct / total:>6.1%} {ct / len(checks) * 1e6:>12.2f} {nc / len(checks):>11.1f}  {label}")
                break
    engine.close()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
