"""Schema compilation cost: parse, compile and format a generated policy of N definitions.

    python -m benchmarks.bench_compile [--definitions 1000] [--repeat 5] [--json out.json]
    python -m benchmarks.bench_compile --largest [--repeat 3] [--max-schema-bytes N ...] [--json out.json]

The policy is seeded and realistic in shape: every definition has owners,
viewers, a parent of its own type, a subject set on a team, a caveated relation
and permissions using union, exclusion, intersection and arrows.

``--largest`` measures the largest schemas the limits allow (the defaults of
``SchemaLimits()``, dsl/limits.py, or those given as ``--max-schema-bytes N``
...), one per shape, each as close to every limit as the shape gets: the policy
above filling ``max_schema_bytes``;
``max_schema_definitions`` small definitions with arrows; definitions of
``max_definition_members`` members; permissions nested ``max_expression_nesting``
deep; and long flat expressions of short names (the most tokens per byte). For
each: ``compile_schema`` (parse, compile, canonical text) in CPU and wall seconds,
and a schema write on an in-memory engine followed by its first check (which
builds the evaluator's program), in wall seconds.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

from headwater.dsl import SchemaLimits, compile_schema, format_schema, parse_schema


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


def _fill(limit_bytes: int, head: str, item, count_limit: int) -> str:
    """``head`` then ``item(0)``, ``item(1)``... while the text stays within ``limit_bytes`` and ``count_limit`` items."""
    parts, size, i = [head], len(head.encode()), 0
    while i < count_limit:
        nxt = item(i)
        if size + len(nxt.encode()) + 1 > limit_bytes:
            break
        parts.append(nxt)
        size += len(nxt.encode()) + 1
        i += 1
    return "\n".join(parts) + "\n"


def largest_schemas(limits: SchemaLimits) -> dict[str, str]:
    """The largest schema of each shape that ``limits`` allow (see the module docstring)."""
    b, defs, members, nesting = (limits.max_schema_bytes, limits.max_schema_definitions,
                                 limits.max_definition_members, limits.max_expression_nesting)
    head = "definition user {}\ndefinition team {\n    relation member: user | team#member\n}"
    whole = generate_policy(min(defs - 4, b // 300))
    while len(whole.encode()) > b:  # trim whole definitions from the end until it fits
        whole = whole[:whole.rindex("\n\n/** kind")] + "\n"

    def small(i: int) -> str:
        return (f"definition d{i:05d} {{\n    relation owner: user | team#member\n    relation parent: d{i:05d}\n"
                f"    permission view = owner + parent->view\n}}")

    def fitting(per_member: int) -> int:
        """Members per definition: the limit, or fewer when a definition of that many would not fit in ``b``."""
        return max(2, min(members, (b - len(head) - 100) // per_member))

    def wide(i: int) -> str:
        count = fitting(48)
        half = count // 2
        rels = [f"    relation r{j:04d}: user | team#member" for j in range(half)]
        perms = [f"    permission p{j:04d} = r{j:04d} + " + (f"p{j - 1:04d}" if j else "r0001")
                 + f" - r{(j * 7) % half:04d}" for j in range(count - half)]
        return f"definition wide{i:03d} {{\n" + "\n".join(rels + perms) + "\n}"

    def deep_expression(n: int) -> str:
        e = "aaa"
        for level in range(n):
            e = f"(aaa + {e})" if level % 2 else f"(bbb - {e})"
        return e[1:-1]

    def deep(i: int) -> str:
        line = f"    permission p0000 = {deep_expression(nesting)}"
        perms = [f"    permission p{j:04d} = {deep_expression(nesting)}" for j in range(fitting(len(line) + 1) - 2)]
        return f"definition deep{i:03d} {{\n    relation aaa: user\n    relation bbb: user\n" + "\n".join(perms) + "\n}"

    def dense(i: int) -> str:
        terms = "+".join("aaa" if j % 2 else "bbb" for j in range(5_000))
        return f"definition dense{i:03d} {{\n    relation aaa: user\n    relation bbb: user\n    permission ppp = {terms}\n}}"

    return {
        "policy": whole,
        "definitions": _fill(b, head, small, defs - 2),
        "members": _fill(b, head, wide, defs - 2),
        "nesting": _fill(b, head, deep, defs - 2),
        "dense": _fill(b, head, dense, defs - 2),
    }


def _engine_write(text: str, limits: SchemaLimits) -> tuple[float, float]:
    """Wall seconds of a schema write on a fresh in-memory engine, then of its first check (which builds the
    evaluator's program for the schema)."""
    from headwater.engine import Config, Engine
    from headwater.engine.store.memory import MemoryStore

    engine = Engine(MemoryStore(), config=Config.of(**{f: getattr(limits, f) for f in limits.__slots__}))
    t0 = time.perf_counter()
    schema = engine.write_schema(text).schema
    t1 = time.perf_counter()
    rtype = next(name for name in schema.definitions if name not in ("user", "team"))
    name = next(iter(schema.definitions[rtype].relations))
    engine.check(f"{rtype}:x", name, "user:u")
    t2 = time.perf_counter()
    engine.close()
    return t1 - t0, t2 - t1


def run_largest(repeat: int, limits: SchemaLimits) -> dict:
    """``compile_schema`` and an engine write for each of ``largest_schemas(limits)``."""
    out = {}
    for shape, text in largest_schemas(limits).items():
        compile_schema(text, limits=limits)  # within the limits, or this raises
        cpu, wall = [], []
        for _ in range(repeat):
            c0, w0 = time.process_time(), time.perf_counter()
            schema = compile_schema(text, limits=limits)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        writes = [_engine_write(text, limits) for _ in range(repeat)]
        d = schema.describe()
        out[shape] = {"bytes": len(text.encode()), "definitions": d["definitions"], "relations": d["relations"],
                      "permissions": d["permissions"], "compile_cpu_s": min(cpu), "compile_wall_s": min(wall),
                      # the first check of the first write builds the program; later writes find it cached
                      "write_wall_s": min(w for w, _ in writes), "first_check_wall_s": writes[0][1]}
    return {"benchmark": "compile-largest", "limits": {f: getattr(limits, f) for f in limits.__slots__},
            "repeat": repeat, "machine": _machine(), "shapes": out}


def _machine() -> dict:
    return {"python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine()}


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
        "machine": _machine(),
        "median": {k: statistics.median(v) for k, v in results.items()},
        "min": {k: min(v) for k, v in results.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--definitions", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--largest", action="store_true", help="the largest schemas the limits allow")
    for name in SchemaLimits.__slots__:
        ap.add_argument("--" + name.replace("_", "-"), type=int, metavar="N",
                        help=f"with --largest: {name} (default {getattr(SchemaLimits(), name)})")
    ap.add_argument("--json", type=Path, help="write the results here as JSON")
    args = ap.parse_args()
    if args.largest:
        chosen = {n: getattr(args, n) for n in SchemaLimits.__slots__ if getattr(args, n) is not None}
        r = run_largest(args.repeat, SchemaLimits(**chosen))
        print(f"largest schemas these limits allow: {r['limits']}")
        print(f"{'shape':<13}{'KiB':>6}{'defs':>7}{'members':>9}{'compile cpu':>13}{'wall':>8}{'write':>8}"
              f"{'1st check':>11}")
        for shape, m in r["shapes"].items():
            print(f"{shape:<13}{m['bytes'] / 1024:>6.0f}{m['definitions']:>7}{m['relations'] + m['permissions']:>9}"
                  f"{m['compile_cpu_s']:>12.2f}s{m['compile_wall_s']:>7.2f}s{m['write_wall_s']:>7.2f}s"
                  f"{m['first_check_wall_s']:>10.2f}s")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(r, indent=2))
        return
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
