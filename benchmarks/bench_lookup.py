"""LookupResources over 10,000 candidate resources (and LookupSubjects on a busy resource).

    python -m benchmarks.bench_lookup [--resources 10000] [--store sqlite|memory] [--json out.json]

Workload: ``--resources`` documents in 200 folders (parent chains); a user is a
viewer of every folder's root through a team (so all documents are candidates
and reachable), banned on 10% of documents, and a direct viewer of some more.
Reports the time to stream the whole answer (page size 1000) cold and warm,
and the first-page latency.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from headwater.engine import Engine
from headwater.engine.store.memory import MemoryStore
from headwater.engine.store.sqlite import SqliteStore

SCHEMA = """
definition user {}

definition team {
    relation member: user | team#member
}

definition folder {
    relation parent: folder
    relation viewer: user | team#member
    permission view = viewer + parent->view
}

definition document {
    relation folder: folder
    relation viewer: user | team#member
    relation banned: user
    permission view = viewer + folder->view - banned
}
"""


def build(n: int, store_kind: str, tmp: str) -> Engine:
    store = SqliteStore(Path(tmp) / "lookup.db") if store_kind == "sqlite" else MemoryStore()
    engine = Engine(store)
    engine.write_schema(SCHEMA)
    rels = ["team:eng#member@user:ann", "team:all#member@team:eng#member"]
    for f in range(200):
        rels.append(f"folder:f{f}#parent@folder:f{f // 2}" if f else "folder:f0#viewer@team:all#member")
    for d in range(n):
        rels.append(f"document:d{d:05d}#folder@folder:f{d % 200}")
        if d % 10 == 0:
            rels.append(f"document:d{d:05d}#banned@user:ann")
        if d % 7 == 0:
            rels.append(f"document:d{d:05d}#viewer@user:bob")
    for i in range(0, len(rels), 1000):
        engine.touch(*rels[i:i + 1000])
    return engine


def stream(engine: Engine, page: int) -> tuple[int, float, float]:
    t0 = time.perf_counter()
    first = None
    cursor, total = None, 0
    while True:
        p = engine.lookup_resources("document", "view", "user:ann", limit=page, cursor=cursor)
        if first is None:
            first = time.perf_counter() - t0
        total += len(p.results)
        cursor = p.cursor
        if cursor is None:
            return total, time.perf_counter() - t0, first or 0.0


def run(n: int, store_kind: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        engine = build(n, store_kind, tmp)
        expected = n - len(range(0, n, 10))
        engine.clear_caches()
        total, cold_s, cold_first = stream(engine, 1000)
        assert total == expected, (total, expected)
        _, warm_s, warm_first = stream(engine, 1000)
        t = time.perf_counter()
        whole = engine.lookup_resources("document", "view", "user:ann")
        unpaged_s = time.perf_counter() - t
        assert len(whole.results) == expected and whole.cursor is None
        t = time.perf_counter()
        subjects = engine.lookup_subjects("document:d00001", "view", "user")
        ls_s = time.perf_counter() - t
        engine.close()
    return {
        "benchmark": "lookup", "store": store_kind, "candidates": n, "results": expected,
        "lookup_resources": {"cold_stream_s": round(cold_s, 3), "cold_first_page_ms": round(cold_first * 1e3, 1),
                             "warm_stream_s": round(warm_s, 3), "warm_first_page_ms": round(warm_first * 1e3, 1),
                             "warm_unpaged_s": round(unpaged_s, 3),
                             "cold_per_candidate_us": round(cold_s / n * 1e6, 1)},
        "lookup_subjects": {"results": len(subjects.results), "seconds": round(ls_s, 4)},
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resources", type=int, default=10_000)
    ap.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    r = run(args.resources, args.store)
    lr = r["lookup_resources"]
    print(f"LookupResources: {r['candidates']} candidates, {r['results']} results ({r['store']})")
    print(f"  cold: whole answer in {lr['cold_stream_s']} s (first page of 1000: {lr['cold_first_page_ms']} ms, "
          f"{lr['cold_per_candidate_us']} µs per candidate)")
    print(f"  warm: whole answer in {lr['warm_stream_s']} s (first page {lr['warm_first_page_ms']} ms); "
          f"unpaged {lr['warm_unpaged_s']} s")
    print(f"LookupSubjects on one document: {r['lookup_subjects']['results']} subjects in "
          f"{r['lookup_subjects']['seconds'] * 1e3:.1f} ms")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
