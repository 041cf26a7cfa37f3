"""Measurements that need a fresh process: cold start and resident memory (run by ``benchmarks.run``).

    python -m benchmarks.probes cold-start --db FILE --check RESOURCE PERMISSION SUBJECT
    python -m benchmarks.probes memory --store sqlite|memory --schema FILE --relationships FILE
                                       [--check-file FILE] [--db FILE]

Each prints one JSON object on stdout.

- ``cold-start``: in a new interpreter, the time to import Headwater, open an
  existing SQLite database (``Engine.open``), answer the first check (every
  cache empty, the schema compiled on first use) and a second, different check.
  The database file is in the OS page cache (it was just written); dropping that
  needs root and would disturb other work on the machine.
- ``memory``: resident set size (Linux ``VmRSS``) after the imports, an engine and
  the schema (the baseline), after importing every relationship (``gc.collect()``
  first), and after running the checks in ``--check-file`` (caches filled). The
  relationships are read lazily from the file, so the input is not held in memory.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

_T0 = time.perf_counter()


def rss_mib() -> float:
    """This process's resident set size in MiB (Linux), or the peak where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _lines(path: Path):
    with path.open() as f:
        for line in f:
            line = line.strip()
            if line:
                yield line


def cold_start(db: Path, checks: list[tuple[str, str, str]]) -> dict:
    t = time.perf_counter()
    from headwater.engine import Engine

    imported = time.perf_counter()
    engine = Engine.open(db)
    opened = time.perf_counter()
    answers, seconds = [], []
    for resource, permission, subject in checks:
        s = time.perf_counter()
        answers.append(engine.check(resource, permission, subject).permissionship.name)
        seconds.append(time.perf_counter() - s)
    engine.close()
    return {"interpreter_to_main_s": t - _T0, "import_s": imported - t, "open_s": opened - imported,
            "first_check_s": seconds[0], "second_check_s": seconds[1] if len(seconds) > 1 else None,
            "open_and_first_check_s": opened - imported + seconds[0], "answers": answers}


def memory(store: str, schema: Path, relationships: Path, check_file: Path | None, db: Path | None) -> dict:
    from headwater.engine import Engine
    from headwater.engine.store.memory import MemoryStore
    from headwater.engine.store.sqlite import SqliteStore

    if store == "sqlite":
        assert db is not None, "--db is needed for the sqlite store"
        engine = Engine(SqliteStore(db))
    else:
        engine = Engine(MemoryStore())
    engine.write_schema(schema.read_text())
    gc.collect()
    baseline = rss_mib()
    t = time.perf_counter()
    result = engine.import_relationships(_lines(relationships), batch_size=1000)
    load_s = time.perf_counter() - t
    gc.collect()
    loaded = rss_mib()
    after_checks = None
    if check_file is not None:
        for resource, permission, subject in json.loads(check_file.read_text()):
            engine.check(resource, permission, subject)
        gc.collect()
        after_checks = rss_mib()
    out = {"store": store, "relationships": result.count, "load_s": load_s, "baseline_mib": baseline,
           "loaded_mib": loaded, "after_checks_mib": after_checks,
           "cache_entries": engine.cache_stats()["size"]}
    engine.close()
    if db is not None:
        out["db_bytes"] = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="probe", required=True)
    cs = sub.add_parser("cold-start", help="open an existing database, answer a first and a second check")
    cs.add_argument("--db", type=Path, required=True)
    cs.add_argument("--check", nargs=3, action="append", required=True, metavar=("RESOURCE", "PERMISSION", "SUBJECT"))
    mem = sub.add_parser("memory", help="resident memory after loading a relationship file")
    mem.add_argument("--store", choices=["sqlite", "memory"], required=True)
    mem.add_argument("--schema", type=Path, required=True)
    mem.add_argument("--relationships", type=Path, required=True)
    mem.add_argument("--check-file", type=Path, help="JSON list of [resource, permission, subject] run after loading")
    mem.add_argument("--db", type=Path, help="database file for --store sqlite (must not exist)")
    args = ap.parse_args()
    if args.probe == "cold-start":
        out = cold_start(args.db, [tuple(c) for c in args.check])
    else:
        out = memory(args.store, args.schema, args.relationships, args.check_file, args.db)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
