"""``headwater labels``, ``ancestors``, ``descendants`` and ``derive``: sensitivity labels and the lineage graph."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from .. import EffectiveLabels
from .shared import CONTEXT, DB_OR_SERVER, SERVER, connect, context_arg, engine_errors, json_flag, print_json
from .table import EXIT_OK, EXIT_PROBLEMS, Command, arg


@engine_errors
def _cmd_labels(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with connect(args) as engine:
        result = engine.effective_labels(args.object)
    if args.json:
        print_json({"object": str(result.object), "token": result.token,
                    "classifications": _classifications_json(result)}, out, indent=2)
        return EXIT_OK
    _print_labels(result, out)
    return EXIT_OK


def _classifications_json(result: EffectiveLabels) -> list[dict[str, Any]]:
    return [{"classification": c.classification, "level": c.level, "categories": list(c.categories),
             "values": [{"value": v.value, "paths": list(v.paths)} for v in c.values],
             "declassified": [{"value": d.value, "actor": d.actor, "reason": d.reason, "token": d.token}
                              for d in c.declassified]} for c in result.classifications]


def _lineage_arg(items: list[str]) -> dict[str, list[str]]:
    """``--lineage RELATION=OBJ[,OBJ...]`` (repeatable) as Engine.derive takes it."""
    lineage: dict[str, list[str]] = {}
    for item in items:
        relation, sep, objects = item.partition("=")
        sources = [o.strip() for o in objects.split(",") if o.strip()]
        if not sep or not relation.strip() or not sources:
            raise ValueError(f"--lineage {item!r}: expected RELATION=OBJECT[,OBJECT...], e.g. produced_by=model:risk")
        lineage.setdefault(relation.strip(), []).extend(sources)
    return lineage


def _check_arg(item: str) -> tuple[str, str]:
    """``--check PERMISSION@SUBJECT``, e.g. ``view@user:alice``."""
    permission, sep, subject = item.partition("@")
    if not sep or not permission.strip() or not subject.strip():
        raise ValueError(f"--check {item!r}: expected PERMISSION@SUBJECT, e.g. view@user:alice")
    return permission.strip(), subject.strip()


@engine_errors
def _cmd_derive(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    lineage = _lineage_arg(args.lineage or [])
    checks = [_check_arg(c) for c in args.check or []]
    context = context_arg(args.context)
    with connect(args) as engine:
        result = engine.derive(args.object, lineage, relationships=args.relationship or [], checks=checks,
                               context=context, actor=args.actor, reason=args.reason)
    decisions = [{"permission": p, "subject": s, "permissionship": d.permissionship.name,
                  "missing_context": list(d.missing_context)} for (p, s), d in zip(checks, result.decisions)]
    if args.json:
        print_json({"object": str(result.labels.object), "token": result.token, "written": result.written,
                    "classifications": _classifications_json(result.labels), "decisions": decisions}, out, indent=2)
    else:
        print(f"{result.labels.object}: {'written' if result.written else 'unchanged (already recorded)'} "
              f"at {result.token}", file=out)
        _print_labels(result.labels, out)
        for d in decisions:
            missing = f" (missing context: {', '.join(d['missing_context'])})" if d["missing_context"] else ""
            print(f"{d['permission']}@{d['subject']}  {d['permissionship']}{missing}", file=out)
    return EXIT_OK if all(d.allowed for d in result.decisions) else EXIT_PROBLEMS


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
    Command(
        "derive", help="record a derived object with its lineage, then its labels and checks",
        description="Record OBJECT in one atomic write: its lineage (--lineage, by the schema's lineage relations "
                    "of its definition) and its own relationships (--relationship), each created or replaced; "
                    "refused whole, naming the cycle, if the lineage would become cyclic. Then print, at the "
                    "revision written, its effective labels with the lineage paths that bring them and the answer "
                    "to each --check. The same derivation again writes nothing (`unchanged`). Exit 1 when a check "
                    "asked is not HAS_PERMISSION (as `headwater check`), 2 when nothing could be recorded.",
        args=(arg("object", metavar="OBJECT", help="the derived object, e.g. output:o9"),
              arg("--lineage", action="append", required=True, metavar="RELATION=OBJ[,OBJ...]",
                  help="a lineage relation and the objects it comes from, e.g. produced_by=model:risk (repeatable)"),
              arg("--relationship", action="append", metavar="REL",
                  help="one of the object's own relationships, e.g. output:o9#requester@user:alice (repeatable)"),
              arg("--check", action="append", metavar="PERMISSION@SUBJECT",
                  help="a check on the object to answer at the revision written, e.g. view@user:alice "
                       "(repeatable)"),
              CONTEXT, DB_OR_SERVER,
              arg("--actor", help="who records it (kept with the revision)"),
              arg("--reason", help="why (kept with the revision)"),
              json_flag("print as JSON: object, token, written, classifications, decisions"), *SERVER),
        run=_cmd_derive),
)
