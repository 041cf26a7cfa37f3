"""Bulk import and full export of a large store (default 1,000,000 relationships).

    python -m benchmarks.bench_export [--relationships 1000000] [--batch 1000] [--json out.json]

Imports seeded relationships into a fresh SQLite database through
``Engine.import_relationships`` (atomic batches, validated against the schema),
then exports every relationship at one revision through
``Engine.export_relationships``, and reports both rates and the database size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from headwater.engine import Engine

SCHEMA = """
definition user {}
definition team {
    relation member: user | team#member
}
definition document {
    relation owner: user
    relation viewer: user | team#member
    permission view = viewer + owner
}
"""


def relationships(n: int):
    for i in range(n):
        d = i // 10
        if i % 10 == 0:
            yield f"document:d{d}#owner@user:u{i % 50_000}"
        elif i % 10 == 1:
            yield f"document:d{d}#viewer@team:t{i % 5_000}#member"
        else:
            yield f"document:d{d}#viewer@user:u{(i * 7919) % 100_000}"


def run(n: int, batch: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.db"
        engine = Engine.open(path)
        engine.write_schema(SCHEMA)
        t0 = time.perf_counter()
        result = engine.import_relationships(relationships(n), batch_size=batch)
        import_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        exported = sum(1 for _ in engine.export_relationships())
        export_s = time.perf_counter() - t0
        size = os.path.getsize(path) + sum(os.path.getsize(p) for p in Path(tmp).glob("export.db-*"))
        engine.close()
    assert exported == result.count == n, (exported, result.count, n)
    return {"benchmark": "export", "relationships": n, "batch": batch,
            "import_seconds": round(import_s, 1), "import_rate_per_s": round(n / import_s),
            "export_seconds": round(export_s, 1), "export_rate_per_s": round(n / export_s),
            "database_mib": round(size / 2**20, 1),
            "machine": {"python": platform.python_version(), "platform": platform.platform()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--relationships", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    r = run(args.relationships, args.batch)
    print(f"import: {r['relationships']} relationships in {r['import_seconds']} s ({r['import_rate_per_s']}/s)")
    print(f"export: {r['relationships']} relationships in {r['export_seconds']} s ({r['export_rate_per_s']}/s)")
    print(f"database: {r['database_mib']} MiB")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
