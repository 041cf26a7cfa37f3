"""``headwater labels``, ``ancestors`` and ``descendants``: sensitivity labels and the lineage graph."""

from __future__ import annotations

import argparse
from typing import TextIO

from .. import EffectiveLabels
from .shared import DB_OR_SERVER, SERVER, connect, engine_errors, json_flag, print_json
from .table import EXIT_OK, Command, arg


@engine_errors
def _cmd_labels(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with connect(args) as engine:
        result = engine.effective_labels(args.object)
    if args.json:
        print_json({"object": str(result.object), "token": result.token, "classifications": [
            {"classification": c.classification, "level": c.level, "categories": list(c.categories),
             "values": [{"value": v.value, "paths": list(v.paths)} for v in c.values],
             "declassified": [{"value": d.value, "actor": d.actor, "reason": d.reason, "token": d.token}
                              for d in c.declassified]} for c in result.classifications]}, out, indent=2)
        return EXIT_OK
    _print_labels(result, out)
    return EXIT_OK


def _print_labels(result: EffectiveLabels, out: TextIO) -> None:
    if not result.classifications:
        print(f"{result.object}: no labels (the lowest level of every classification)", file=out)
    for c in result.classifications:
        cats = ", ".join(c.categories) or "none"
        print(f"{result.object}: {c.classification} level {c.level}, categories {cats}", file=out)
        for v in c.values:
            for path in v.paths or ("(no path)",):
                print(f"  {c.classification}:{v.value}  " + ("own label" if path == str(result.object) else
                                                             f"from {path}"), file=out)
        for d in c.declassified:
            print(f"  declassified {c.classification}:{d.value} by {d.actor or '?'} ({d.reason or 'no reason kept'}) "
                  f"at {d.token or 'a collected revision'}", file=out)


@engine_errors
def _cmd_lineage_walk(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with connect(args) as engine:
        walk = engine.ancestors if args.direction == "ancestors" else engine.descendants
        page = walk(args.object, max_depth=args.max_depth, limit=args.limit, cursor=args.cursor)
    for item in page.items:
        if args.json:
            print_json({"depth": item.depth, "object": str(item.object), "path": item.path}, out)
        else:
            print(f"{item.depth}  {item.object}  {item.path}", file=out)
    if page.cursor:
        print(f"more: --cursor {page.cursor}", file=err)
    return EXIT_OK


def _walk_command(direction: str, what: str) -> Command:
    """``ancestors`` or ``descendants``: the same walk, in one direction."""
    return Command(
        direction, help=f"objects {what} an object, through lineage relations",
        description=f"List the objects {what} OBJECT (breadth first, nearest first), each with its depth and one "
                    "shortest lineage path.",
        args=(arg("object", metavar="OBJECT"), DB_OR_SERVER,
              arg("--max-depth", type=int, help="stop this many lineage steps away"),
              arg("--limit", type=int, help="print at most this many (with a cursor to continue)"),
              arg("--cursor", help="continue a previous listing"),
              json_flag("print JSON lines: depth, object, path"), *SERVER),
        run=_cmd_lineage_walk, defaults={"direction": direction})


COMMANDS = (
    Command(
        "labels", help="the effective sensitivity labels of an object, with provenance",
        description="Print the effective label of OBJECT in every classification: level, categories, the lineage "
                    "paths that bring each value, and the declassifications applied (who, why, when).",
        args=(arg("object", metavar="OBJECT", help="e.g. output:o1"), DB_OR_SERVER, json_flag("print as JSON"),
              *SERVER),
        run=_cmd_labels),
    _walk_command("ancestors", "upstream of"),
    _walk_command("descendants", "derived from"),
)
