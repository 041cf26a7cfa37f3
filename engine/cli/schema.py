"""``headwater schema write``, ``schema read`` and ``schema diff``: the stored schema, in a database or a server.

Example::

    $ headwater schema diff old.zed new.zed
    --- old.zed
    +++ new.zed
    ...
    + relation document#editor
    ~ permission document#view
    $ headwater schema write new.zed --dry-run --server localhost:50051
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Mapping
from typing import Any, TextIO

from ...dsl import SchemaLimits, compile_schema, read_schema_files
from ...dsl.schema import Definition, Schema
from ..errors import NotFoundError
from .impact import WINDOW, impact_json, impact_of, print_impact
from .shared import DB_OR_SERVER, SERVER, connect, engine_errors, is_remote, json_flag, print_json, read_input
from .table import EXIT_OK, EXIT_PROBLEMS, Command, Group, arg


def schema_file_text(path: str) -> str:
    """The schema text of ``path`` (``-``: stdin). A file that imports others (composable schemas) is the one
    schema `zed schema compile` makes of them; compiled here first, so that every error names its file."""
    if path == "-":
        return read_input(path)  # text alone: partials are fine, imports need files
    files = read_schema_files(path, limits=SchemaLimits.unlimited())
    if not files.imports:
        return files.texts[files.root]
    files.compile(SchemaLimits.unlimited())
    return files.text


def _stored_text(target: Any) -> str | None:
    """The schema text a database or server holds, None when it has none."""
    try:
        stored = target.read_schema()
    except NotFoundError:
        return None
    return stored[0] if isinstance(stored, tuple) else stored.text  # the client answers (text, digest, token)


@engine_errors
def _cmd_schema_write(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    text = schema_file_text(args.file)
    with connect(args, create=True) as target:
        if args.dry_run:  # the server's WriteSchema(dry_run) and the engine's plan: the same report
            report = target.write_schema(text, dry_run=True) if is_remote(target) else target.plan_schema(text)
        else:
            result = target.write_schema(text, actor=args.actor)
    if not args.dry_run:
        if args.json:
            print_json({"stored": True, "version": result.version, "digest": result.digest, "token": result.token},
                       out)
        else:
            print(f"stored schema version {result.version} ({result.digest[:12]}) at {result.token}", file=out)
        return EXIT_OK
    if args.json:
        print_json({"stored": False, "accepted": report.accepted, "refused": list(report.refused),
                    "version": report.version, "digest": report.digest, "token": report.token,
                    "diff": report.diff}, out)
    else:
        out.write(report.diff)
        if not report.diff:
            print("no change from the stored schema", file=out)
        verdict = "would be accepted" if report.accepted else "would be REFUSED"
        print(f"{verdict} as schema version {report.version} ({report.digest[:12]}) at {report.token}", file=out)
        for reason in report.refused:
            print(f"  refused: {reason}", file=out)
    return EXIT_OK if report.accepted else EXIT_PROBLEMS


@engine_errors
def _cmd_schema_read(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with connect(args) as target:
        try:
            stored = target.read_schema()
        except NotFoundError as exc:
            print(f"error: {exc}", file=err)
            return EXIT_PROBLEMS
    text, digest, token = stored if isinstance(stored, tuple) else (stored.text, stored.digest, stored.token)
    if args.json:
        print_json({"schema": text, "digest": digest, "token": token}, out)
        return EXIT_OK
    out.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


# --- schema diff -------------------------------------------------------------------------------


def schema_changes(old: Schema, new: Schema) -> list[dict[str, str]]:
    """What changes semantically from ``old`` to ``new``: definitions, relations, permissions, caveats and
    classifications added, removed or changed (comments and layout are not changes)."""
    changes: list[dict[str, str]] = []

    def compare(kind: str, before: Mapping[str, Any], after: Mapping[str, Any], prefix: str = "") -> None:
        for name in sorted(before.keys() | after.keys()):
            if name not in after:
                changes.append({"change": "removed", "kind": kind, "name": prefix + name})
            elif name not in before:
                changes.append({"change": "added", "kind": kind, "name": prefix + name})
            elif kind == "definition":
                _compare_members(before[name], after[name], compare)
            elif before[name] != after[name]:
                changes.append({"change": "changed", "kind": kind, "name": prefix + name})

    compare("definition", old.definitions, new.definitions)
    compare("caveat", old.caveats, new.caveats)
    compare("classification", old.classifications, new.classifications)
    for flag in sorted(old.flags ^ new.flags):
        changes.append({"change": "added" if flag in new.flags else "removed", "kind": "use", "name": flag})
    return changes


def _compare_members(before: Definition, after: Definition, compare: Any) -> None:
    compare("relation", before.relations, after.relations, f"{after.name}#")
    compare("permission", before.permissions, after.permissions, f"{after.name}#")


_MARK = {"added": "+", "removed": "-", "changed": "~"}


@engine_errors
def _cmd_schema_diff(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.new is None:  # one file: against what the database or server holds
        with connect(args) as target:
            old_text, old_name = _stored_text(target) or "", "stored schema"
        new_text, new_name = schema_file_text(args.old), args.old
    else:
        old_text, old_name = schema_file_text(args.old), args.old
        new_text, new_name = schema_file_text(args.new), args.new
    limits = SchemaLimits.unlimited()
    old, new = compile_schema(old_text, limits=limits), compile_schema(new_text, limits=limits)
    diff = "".join(difflib.unified_diff(old.text.splitlines(True), new.text.splitlines(True), old_name, new_name))
    changes = schema_changes(old, new)
    impact = impact_of(args, schema=new_text, baseline=None if args.new is None else old_text) if args.impact else None
    if args.json:
        print_json({"old": old_name, "new": new_name, "diff": diff, "changes": changes,
                    **({"impact": impact_json(impact)} if impact is not None else {})}, out)
        return EXIT_OK if impact is None or not (impact.changes or impact.refused) else EXIT_PROBLEMS
    out.write(diff)
    for c in changes:
        print(f"{_MARK[c['change']]} {c['kind']} {c['name']}", file=out)
    if not changes:
        print("no semantic change" + (" (layout or comments only)" if diff else ""), file=out)
    return EXIT_OK if impact is None else print_impact(impact, out)


COMMANDS = (
    Group("schema", help="write, read or compare the schema of a database or server",
          description="Write a schema file into a database or server (refused if it would orphan stored "
                      "relationships), print the stored one, or compare two schemas."),
    Command("schema write", help="compile FILE and store it as the new schema version",
            description="Compile FILE and store it as the new schema version. A FILE that imports others "
                        "(composable schemas) is stored as the one schema they make together. With --dry-run, "
                        "store nothing: print the diff from the stored schema and whether the write would be "
                        "accepted (exit 0) or refused (exit 1, with each reason, e.g. relationships it would "
                        "orphan).",
            args=(arg("file", metavar="FILE", help="schema file (.zed); '-' reads stdin"),
                  arg("--db", metavar="DB", help="the database: a SQLite file (created if missing) or a postgresql:// "
                                                 "URI (default: $HEADWATER_DB), or --server ADDR"),
                  arg("--dry-run", action="store_true", help="store nothing: print the diff and whether the write "
                                                             "would be accepted (exit 0) or refused (exit 1)"),
                  arg("--actor", help="who writes it (kept with the revision)"),
                  json_flag("print the result (and with --dry-run the diff and refusals) as JSON"), *SERVER),
            run=_cmd_schema_write),
    Command("schema read", help="print the stored schema", description="Print the stored schema.",
            args=(DB_OR_SERVER, json_flag("print the schema text, its digest and the revision token as JSON"), *SERVER),
            run=_cmd_schema_read),
    Command("schema diff", help="compare two schemas: a unified diff and what changes",
            description="Compare two schema files (OLD NEW), or one file with the schema a database or server holds "
                        "(NEW alone, with --db, --server or a context): a unified diff of their canonical "
                        "(formatted) texts, then each semantic change, one per line: `+` added, `-` removed, `~` "
                        "changed, then its kind (definition, relation, permission, caveat, classification, use) "
                        "and name (definition#member). Exit 0 whatever the differences (2 on errors). With "
                        "--impact (on --db, whose audit log holds the decisions, or a server: the audit scope), "
                        "then list the recorded decisions "
                        "whose answer NEW would change at the head revision (see `headwater impact`; with OLD and "
                        "NEW, the answers under OLD are compared with those under NEW, both over the stored data); "
                        "exit 1 when some would change or NEW would be refused.",
            args=(arg("old", metavar="OLD", help="the old schema file (or, alone, the new one)"),
                  arg("new", nargs="?", metavar="NEW", help="the new schema file"),
                  DB_OR_SERVER, json_flag("print the diff and the changes as JSON"),
                  arg("--impact", action="store_true", help="also list the recorded decisions NEW would change "
                                                            "(nothing is written)"),
                  *WINDOW, *SERVER),
            run=_cmd_schema_diff),
)
