"""Lineage cost: a `cleared` check on an output with 1,000 upstream objects, 50 levels deep.

    python -m benchmarks.bench_lineage [--layers 50] [--width 20] [--repeat 20] [--store sqlite|memory]

The lineage graph: ``layers`` x ``width`` datasets; each dataset derives from two
datasets of the layer below (seeded); one model is trained on the top layer and
an output is produced by it, so the output has layers*width + 1 upstream objects.
Labels sit on the bottom layer. Measured: the output's ``view`` check (cleared)
cold (all caches emptied) and warm, ``use`` on the model (cleared and
upstream(read) over all 1,000 datasets) cold and warm, and the cost of a label
change at the bottom (the first check after the write, then warm again).
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

POLICY = Path(__file__).resolve().parents[1] / "examples" / "ai-lineage" / "policy.zed"


def build(layers: int, width: int, store_kind: str, tmp: str) -> Engine:
    rng = random.Random(11)
    store = SqliteStore(Path(tmp) / "lineage.db") if store_kind == "sqlite" else MemoryStore()
    engine = Engine(store)
    engine.write_schema(POLICY.read_text())
    rels = ["team:analysts#member@user:ann", "sensitivity:confidential#cleared@team:analysts#member",
            "sensitivity:pii#cleared@user:ann", "output:o#requester@user:ann", "model:m#operator@user:ann",
            "output:o#produced_by@model:m"]
    for layer in range(layers):
        for i in range(width):
            d = f"dataset:l{layer}_{i}"
            rels.append(f"{d}#viewer@team:analysts#member")
            if layer == 0:
                if i % 5 == 0:
                    rels.append(f"{d}#label@sensitivity:confidential")
                if i % 7 == 0:
                    rels.append(f"{d}#label@sensitivity:pii")
            else:
                for j in {i, (i + rng.randrange(1, width)) % width}:  # every dataset stays reachable
                    rels.append(f"{d}#derived_from@dataset:l{layer - 1}_{j}")
    for i in range(width):
        rels.append(f"model:m#trained_on@dataset:l{layers - 1}_{i}")
    for k in range(0, len(rels), 1000):
        engine.touch(*rels[k:k + 1000])
    return engine


def _time(fn, repeat: int, before=None) -> dict[str, float]:
    out = []
    for _ in range(repeat):
        if before:
            before()
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    s = sorted(out)
    return {"p50_ms": round(statistics.median(s), 3), "p95_ms": round(s[min(len(s) - 1, int(0.95 * len(s)))], 3),
            "min_ms": round(s[0], 3)}


def run(layers: int, width: int, repeat: int, store_kind: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        engine = build(layers, width, store_kind, tmp)
        upstream = len(engine.ancestors("output:o").items)

        def clear() -> None:
            engine.clear_caches()
            engine.caches.lineage.clear()

        view = lambda: engine.check("output:o", "view", "user:ann")  # noqa: E731
        use = lambda: engine.check("model:m", "use", "user:ann")  # noqa: E731
        assert view().allowed and use().allowed
        results = {
            "view_cleared_cold": _time(view, repeat, clear),
            "view_cleared_warm": _time(view, repeat),
            "use_cleared_upstream_cold": _time(use, max(3, repeat // 4), clear),
            "use_cleared_upstream_warm": _time(use, repeat),
        }
        changes = []
        for k in range(repeat):
            engine.touch(f"dataset:l0_{k % width}#label@sensitivity:internal" if k % 2 == 0
                         else f"dataset:l0_{k % width}#owner@user:u{k}")
            t = time.perf_counter()
            view()
            changes.append((time.perf_counter() - t) * 1e3)
        results["view_first_check_after_upstream_change"] = {"p50_ms": round(statistics.median(changes), 3),
                                                             "max_ms": round(max(changes), 3)}
        engine.close()
    return {"benchmark": "lineage", "store": store_kind, "layers": layers, "width": width,
            "upstream_objects": upstream, "repeat": repeat, "results": results,
            "machine": {"python": platform.python_version(), "platform": platform.platform()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", type=int, default=50)
    ap.add_argument("--width", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--store", choices=["sqlite", "memory"], default="sqlite")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    r = run(args.layers, args.width, args.repeat, args.store)
    print(f"lineage: {r['upstream_objects']} objects upstream of the output, {args.layers} levels ({r['store']})")
    for name, v in r["results"].items():
        print(f"  {name:<42} " + "  ".join(f"{k}={val}" for k, val in v.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
