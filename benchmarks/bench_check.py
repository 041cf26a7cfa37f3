"""Check latency on a seeded workload: p50 / p95 / p99, cold and warm cache, in-process.

    python -m benchmarks.bench_check [--relationships 100000] [--checks 2000] [--store sqlite|memory]
                                     [--json out.json]

The workload (seeded, deterministic): users, nested groups (up to 4 levels),
folders with parent chains, documents in folders with direct viewers and group
viewers. Scenarios:

- ``direct``: a user who is a direct viewer of the document;
- ``nested_group``: a user reaching the document through a group nested 1-4 deep;
- ``folder_chain``: a user reaching the document through the folder's ancestors;
- ``denied``: a user with no path (every branch is explored).

"Cold" clears the shared cache before every check (each check reads the store);
"warm" repeats checks whose answers are cached. Numbers, not pass/fail.
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
from headwater.engine.store.memory import MemoryStore
from headwater.engine.store.sqlite import SqliteStore

SCHEMA = """
definition user {}

definition group {
    relation member: user | group#member
}

definition folder {
    relation parent: folder
    relation viewer: user | group#member
    permission view = viewer + parent->view
}

definition document {
    relation folder: folder
    relation viewer: user | group#member
    relation owner: user
    permission view = owner + viewer + folder->view
}
"""


def generate(total: int, seed: int = 7) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
    """Relationships (about ``total``) and the check samples for each scenario."""
    rng = random.Random(seed)
    n_users = max(100, total // 20)
    n_groups = max(20, total // 200)
    n_folders = max(50, total // 50)
    n_docs = max(100, total // 5)
    rels: list[str] = []
    # nested groups: group i (i >= n_groups/4) nests inside a lower-numbered group
    depth = {0: 0}
    for g in range(n_groups):
        for _ in range(5):
            rels.append(f"group:g{g}#member@user:u{rng.randrange(n_users)}")
        if g >= 4:
            parent = rng.randrange(max(1, g // 2), g)
            if depth.get(parent, 0) < 3:
                rels.append(f"group:g{parent}#member@group:g{g}#member")
                depth[g] = depth.get(parent, 0) + 1
    for f in range(n_folders):
        if f >= 10:
            rels.append(f"folder:f{f}#parent@folder:f{rng.randrange(f // 2, f)}")
        if rng.random() < 0.3:
            rels.append(f"folder:f{f}#viewer@user:u{rng.randrange(n_users)}")
        if rng.random() < 0.2:
            rels.append(f"folder:f{f}#viewer@group:g{rng.randrange(n_groups)}#member")
    doc_viewers: dict[int, list[str]] = {}
    doc_groups: dict[int, int] = {}
    while len(rels) < total:
        d = rng.randrange(n_docs)
        if d not in doc_groups:
            rels.append(f"document:d{d}#folder@folder:f{rng.randrange(n_folders)}")
            g = rng.randrange(n_groups)
            rels.append(f"document:d{d}#viewer@group:g{g}#member")
            doc_groups[d] = g
        u = f"u{rng.randrange(n_users)}"
        if u not in doc_viewers.setdefault(d, []):
            rels.append(f"document:d{d}#viewer@user:{u}")
            doc_viewers[d].append(u)
    rels = list(dict.fromkeys(rels))

    members: dict[int, list[str]] = {}
    for r in rels:
        if r.startswith("group:") and "@user:" in r:
            g = int(r.split(":")[1].split("#")[0][1:])
            members.setdefault(g, []).append(r.split("@user:")[1])
    nested = [g for g in depth if depth[g] >= 1 and g in members]
    docs = sorted(doc_viewers)
    samples: dict[str, list[tuple[str, str]]] = {"direct": [], "nested_group": [], "folder_chain": [], "denied": []}
    for _ in range(4000):
        d = rng.choice(docs)
        samples["direct"].append((f"document:d{d}", f"user:{rng.choice(doc_viewers[d])}"))
        samples["denied"].append((f"document:d{d}", f"user:nobody{rng.randrange(10**6)}"))
    parent_of = {int(r.split("@group:g")[1].split("#")[0]): int(r.split(":")[1].split("#")[0][1:])
                 for r in rels if r.startswith("group:") and "@group:" in r}  # child group -> parent group
    doc_by_group: dict[int, list[int]] = {}
    for d, g in doc_groups.items():
        doc_by_group.setdefault(g, []).append(d)
    for g in nested:
        top = g
        while top in parent_of:
            top = parent_of[top]
        for d in doc_by_group.get(top, [])[:20]:
            samples["nested_group"].append((f"document:d{d}", f"user:{rng.choice(members[g])}"))
    folder_viewers = [r for r in rels if r.startswith("folder:") and "#viewer@user:" in r]
    children: dict[int, list[int]] = {}
    for r in rels:
        if "#parent@folder:" in r:
            children.setdefault(int(r.split("#parent@folder:f")[1]), []).append(int(r.split(":")[1].split("#")[0][1:]))
    doc_in_folder: dict[int, list[int]] = {}
    for r in rels:
        if r.startswith("document:") and "#folder@" in r:
            doc_in_folder.setdefault(int(r.split("@folder:f")[1]), []).append(int(r.split(":")[1].split("#")[0][1:]))
    for r in folder_viewers:
        f = int(r.split(":")[1].split("#")[0][1:])
        u = r.split("@user:")[1]
        frontier = children.get(f, [])[:3]
        for c in frontier:
            for d in doc_in_folder.get(c, [])[:3]:
                samples["folder_chain"].append((f"document:d{d}", f"user:{u}"))
    for k in samples:
        rng.shuffle(samples[k])
    return rels, samples


def _percentiles(us: list[float]) -> dict[str, float]:
    s = sorted(us)

    def q(p: float) -> float:
        return round(s[min(len(s) - 1, int(p * len(s)))], 1)

    return {"n": len(s), "p50_us": q(0.50), "p95_us": q(0.95), "p99_us": q(0.99),
            "mean_us": round(statistics.fmean(s), 1)}


def run(total: int, n_checks: int, store_kind: str) -> dict:
    rels, samples = generate(total)
    tmp = tempfile.TemporaryDirectory()
    store = SqliteStore(Path(tmp.name) / "bench.db") if store_kind == "sqlite" else MemoryStore()
    engine = Engine(store)
    engine.write_schema(SCHEMA)
    t0 = time.perf_counter()
    for i in range(0, len(rels), 1000):
        engine.touch(*rels[i:i + 1000])
    load_s = time.perf_counter() - t0
    results: dict[str, dict] = {}
    for scenario, checks in samples.items():
        checks = checks[:n_checks]
        if not checks:
            continue
        expected = not scenario == "denied"
        cold, warm = [], []
        for resource, subject in checks:
            engine.clear_caches()
            t = time.perf_counter()
            r = engine.check(resource, "view", subject)
            cold.append((time.perf_counter() - t) * 1e6)
            assert r.allowed == expected, (scenario, resource, subject)
        for resource, subject in checks:  # warm-up pass fills the cache
            engine.check(resource, "view", subject)
        for resource, subject in checks:
            t = time.perf_counter()
            engine.check(resource, "view", subject)
            warm.append((time.perf_counter() - t) * 1e6)
        results[scenario] = {"cold": _percentiles(cold), "warm": _percentiles(warm)}
    engine.close()
    tmp.cleanup()
    return {
        "benchmark": "check", "store": store_kind, "relationships": len(rels), "checks_per_scenario": n_checks,
        "load_seconds": round(load_s, 2), "load_rate_per_s": round(len(rels) / load_s),
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine()},
        "scenarios": results,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--relationships", type=int, default=100_000)
    ap.add_argument("--checks", type=int, default=2000)
    ap.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    r = run(args.relationships, args.checks, args.store)
    print(f"check latency: {r['relationships']} relationships on {r['store']}, loaded in {r['load_seconds']} s "
          f"({r['load_rate_per_s']}/s)")
    print(f"{'scenario':<14}{'cache':<6}{'n':>6}{'p50 µs':>10}{'p95 µs':>10}{'p99 µs':>10}")
    for name, res in r["scenarios"].items():
        for mode in ("cold", "warm"):
            p = res[mode]
            print(f"{name:<14}{mode:<6}{p['n']:>6}{p['p50_us']:>10}{p['p95_us']:>10}{p['p99_us']:>10}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
