"""Schema compilation cost: parse, compile and format a generated policy of N definitions.

    python -m benchmarks.bench_compile [--definitions 1000] [--repeat 5] [--json out.json]

The policy is seeded and realistic in shape: every definition has owners,
viewers, a parent of its own type, a subject set on a team, a caveated relation
and permissions using union, exclusion, intersection and arrows.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from headwater.dsl import compile_schema, format_schema, parse_schema


def generate_policy(n: int) -> str:
    parts = [
        "use expiration",
        "caveat on_network(ip ipaddress, cidr string) {\n    ip.in_cidr(cidr)\n}",
        "definition user {}",
        "definition team {\n    relation member: user | team#member\n}",
    ]
    for i in range(n):
        parent = f"kind{i - 1:04d}" if i else "team"
        parts.append(
            f"/** kind {i} */\n"
            f"definition kind{i:04d} {{\n"
            f"    relation owner: user\n"
            f"    relation viewer: user | team#member | user with on_network | user with expiration\n"
            f"    relation banned: user\n"
            f"    relation parent: kind{i:04d}\n"
            f"    relation upstream: {parent}\n"
            f"    permission edit = owner + parent->edit\n"
            f"    permission view = (viewer + edit + parent->view) - banned\n"
            f"    permission audit = view & owner & upstream.all(member)\n"
            f"}}"
        )
    return "\n\n".join(parts) + "\n"


def _time(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def run(definitions: int, repeat: int) -> dict:
    text = generate_policy(definitions)
    doc = parse_schema(text)
    results = {
        "parse_s": _time(lambda: parse_schema(text), repeat),
        "compile_s": _time(lambda: compile_schema(doc), repeat),
        "parse_and_compile_s": _time(lambda: compile_schema(text), repeat),
        "format_s": _time(lambda: format_schema(doc), repeat),
    }
    return {
        "benchmark": "compile",
        "definitions": definitions,
        "bytes": len(text),
        "lines": text.count("\n"),
        "repeat": repeat,
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine()},
        "median": {k: statistics.median(v) for k, v in results.items()},
        "min": {k: min(v) for k, v in results.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--definitions", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path, help="write the results here as JSON")
    args = ap.parse_args()
    r = run(args.definitions, args.repeat)
    print(f"compile benchmark: {r['definitions']} definitions, {r['lines']} lines, {r['bytes'] / 1024:.0f} KiB")
    print(f"{'step':<22}{'median':>10}{'min':>10}")
    for k in r["median"]:
        print(f"{k:<22}{r['median'][k] * 1000:>8.0f}ms{r['min'][k] * 1000:>8.0f}ms")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=2))


if __name__ == "__main__":
    main()
