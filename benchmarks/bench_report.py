"""The compliance report's cost on the seeded AI-lineage workload (benchmarks/workload.py).

    python -m benchmarks.bench_report [--scale 1 5] [--store sqlite|memory] [--json benchmarks/results/report.json]

For each scale: generate the workload (scale 1 is about 50,000 relationships, scale 20 about 1,000,000), load
it into a fresh engine, then time ``build_report`` (every classification, the default viewing permissions:
``read`` on datasets, ``use`` on models, ``view`` on outputs) cold (caches emptied) and once more warm, and
the JSON, CSV and HTML renderings. Reported: the shape (values, objects listed, viewer entries), the seconds
of each step, and objects per second; with several scales, a linear extrapolation to scale 20 (the work
is per object: the units of the workload are independent, so it grows with the number of units).
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from headwater.engine import Config, Engine
from headwater.engine.governance.report import build_report
from headwater.engine.governance.report_render import render_csv, render_html
from headwater.engine.store.memory import MemoryStore
from headwater.engine.store.sqlite import SqliteStore

from .workload import generate


def measure(scale: float, store_kind: str, *, seed: int = 42, warm: bool = True,
            cache_size: int | None = None, no_viewers: bool = True) -> dict[str, Any]:
    """Load the workload of ``scale`` and time the report on it."""
    t = time.perf_counter()
    workload = generate(scale, seed, checks_per_scenario=1)
    generated = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "report.db") if store_kind == "sqlite" else MemoryStore()
        config = Config.of(cache_size=cache_size) if cache_size is not None else None
        with Engine(store, config=config) as engine:
            engine.write_schema(workload.headwater_schema)
            t = time.perf_counter()
            loaded = engine.import_relationships(workload.relationships, batch_size=1000)
            load_s = time.perf_counter() - t
            engine.clear_caches()
            t = time.perf_counter()
            report = build_report(engine)
            cold = time.perf_counter() - t
            warm_s = None
            if warm:
                t = time.perf_counter()
                build_report(engine)
                warm_s = time.perf_counter() - t
            no_viewers_s = None
            if no_viewers:
                t = time.perf_counter()
                build_report(engine, viewers=False)
                no_viewers_s = round(time.perf_counter() - t, 3)
            renders = {}
            for name, render in (("json", lambda: json.dumps(report.to_json())),
                                 ("csv", lambda: render_csv(report, io.StringIO())),
                                 ("html", lambda: render_html(report))):
                t = time.perf_counter()
                render()
                renders[name] = round(time.perf_counter() - t, 3)
    viewer_entries = sum(len(o.viewers) for v in report.values for o in v.objects)
    return {
        "scale": scale, "store": store_kind, "cache_size": cache_size or Config().cache.size,
        "relationships": loaded.count,
        "generate_s": round(generated, 2), "load_s": round(load_s, 2),
        "values": len(report.values), "objects": report.objects,
        "object_entries": sum(len(v.objects) for v in report.values), "viewer_entries": viewer_entries,
        "report_cold_s": round(cold, 3), "report_warm_s": None if warm_s is None else round(warm_s, 3),
        "objects_per_s_cold": round(report.objects / cold) if cold else None,
        "report_no_viewers_s": no_viewers_s,
        "render_s": renders,
    }


def extrapolate(rows: list[dict[str, Any]], target: float = 20) -> dict[str, Any] | None:
    """Least-squares lines through (scale, seconds), evaluated at ``target`` (None with fewer than 2 rows)."""
    if len(rows) < 2:
        return None
    out: dict[str, Any] = {"scale": target, "method": "least squares over scales "
                                                      + ", ".join(f"{r['scale']:g}" for r in rows)}
    for key in ("report_cold_s", "report_no_viewers_s"):
        known = [r for r in rows if r.get(key) is not None]
        if len(known) < 2:
            continue
        xs, ys = [r["scale"] for r in known], [r[key] for r in known]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        out[key] = round(my + slope * (target - mx), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, nargs="+", default=[1.0])
    ap.add_argument("--store", choices=("sqlite", "memory"), default="sqlite")
    ap.add_argument("--no-warm", action="store_true", help="skip the warm run")
    ap.add_argument("--cache-size", type=int, help="the engine's check cache entries (default: Config's)")
    ap.add_argument("--skip-no-viewers", action="store_true", help="skip the run without viewers")
    ap.add_argument("--json", metavar="FILE", help="write the results here too")
    args = ap.parse_args()
    rows = []
    for scale in args.scale:
        row = measure(scale, args.store, warm=not args.no_warm, cache_size=args.cache_size,
                      no_viewers=not args.skip_no_viewers)
        print(json.dumps(row), flush=True)
        rows.append(row)
    out = {"benchmark": "report", "python": platform.python_version(), "machine": platform.machine(),
           "results": rows, "scale_20_estimate": extrapolate(rows)}
    print(json.dumps(out["scale_20_estimate"]))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
