"""``headwater impact`` (and ``headwater schema diff ... --impact``): the recorded decisions a proposed schema or
relationship changes would change; see engine/governance/impact.py and docs/governance.md.

Example::

    $ headwater impact --schema new.zed --relationships changes.txt --db h.db --since 2030-01-01
    impact at hw1_...: 18 decision records read, 18 checks asked again, 0 skipped (caveat context)
    ...

Exit 0 when no recorded decision changes, 1 when some do (or the proposal would be refused), 2 on errors. Works on
a database (``--db``), whose audit log holds the decisions, or a server (``--server``: GovernanceService/Impact, a
token with the ``audit`` scope).
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from ...dsl import SchemaLimits, read_schema_files
from ..governance.impact import ChangeImpact, parse_changes
from .audit import FILTERS
from .shared import DB_OR_SERVER, SERVER, connect, engine_errors, json_flag, plural, print_json, read_input
from .table import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, Command, arg

#: The window of decisions: --since, --until (audit query's) and --limit.
WINDOW = (*FILTERS[:2], arg("--limit", type=int, metavar="N", help="at most N decision records, the newest "
                                                                   "(default: every one in the window)"))


def impact_of(args: argparse.Namespace, *, schema: str | None, baseline: str | None = None,
              updates_file: str | None = None) -> ChangeImpact:
    """The impact, for the command's arguments (the window, the proposal), computed on ``--db`` or by a server
    (GovernanceService/Impact, the ``audit`` scope): where the audit log is."""
    updates = parse_changes(read_input(updates_file)) if updates_file else []
    with connect(args) as target:
        return target.impact(schema=schema, updates=updates, baseline=baseline, since=args.since,
                             until=args.until, limit=args.limit)


def impact_json(impact: ChangeImpact) -> dict[str, Any]:
    """The impact as the JSON document both commands print (stable keys)."""
    return {"token": impact.token, "decisions": impact.decisions, "checks": impact.checks,
            "skipped": impact.skipped, "changed": len(impact.changes), "opened": impact.opened,
            "closed": impact.closed, "conditional": impact.conditional, "errors": impact.errors,
            "refused": list(impact.refused),
            "changes": [{"change": c.change, "resource": c.resource, "permission": c.permission,
                         "subject": c.subject, "before": c.before, "after": c.after,
                         "before_missing": list(c.before_missing), "after_missing": list(c.after_missing),
                         "explanation": list(c.explanation), "records": list(c.records)}
                        for c in impact.changes]}


def print_impact(impact: ChangeImpact, out: TextIO) -> int:
    """Print the impact as text; the exit code (0: nothing changes, 1: something does, or a refusal)."""
    print(f"impact at {impact.token}: {plural(impact.decisions, 'decision record')} read, "
          f"{plural(impact.checks, 'check')} asked again, {impact.skipped} skipped (caveat context)", file=out)
    if impact.refused:
        print("the proposal would be REFUSED (nothing evaluated):", file=out)
        for reason in impact.refused:
            print(f"  refused: {reason}", file=out)
        return EXIT_PROBLEMS
    if not impact.changes:
        print("no recorded decision changes", file=out)
        return EXIT_OK
    print(f"{len(impact.changes)} changed: {impact.opened} opened, {impact.closed} closed, "
          f"{impact.conditional} conditional, {impact.errors} errors", file=out)
    for c in impact.changes:
        records = ", ".join(f"#{r}" for r in c.records)
        print(f"{c.change:<11} {c.resource}#{c.permission}@{c.subject}  {c.before} -> {c.after}  (records "
              f"{records})", file=out)
        for line in c.explanation:
            print(f"    {line}", file=out)
    return EXIT_PROBLEMS


@engine_errors
def _cmd_impact(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.schema is None and args.relationships is None:
        print("error: give --schema FILE, --relationships FILE, or both", file=err)
        return EXIT_USAGE
    impact = impact_of(args, schema=_schema_text(args.schema) if args.schema else None,
                       updates_file=args.relationships)
    if args.json:
        print_json(impact_json(impact), out)
        return EXIT_PROBLEMS if impact.changes or impact.refused else EXIT_OK
    return print_impact(impact, out)


def _schema_text(path: str) -> str:
    """A schema file's text ('-': stdin); a file that imports others becomes the one schema they make."""
    if path == "-":
        return read_input(path)
    files = read_schema_files(path, limits=SchemaLimits.unlimited())
    return files.text if files.imports else files.texts[files.root]


COMMANDS = (
    Command("impact", help="the recorded decisions a proposed schema or relationship changes would change",
            description="Ask the decisions recorded in the audit log again, at the head revision, under a proposed "
                        "schema (--schema) and/or relationship changes (--relationships: one per line, +REL or REL "
                        "touches, -REL deletes, // comments) laid over the stored data, and list every decision "
                        "whose answer would change (opened, closed, conditional, error), with the explanation of "
                        "its new answer and its record ids, then the counts. Nothing is written or recorded. "
                        "Decisions asked with a caveat context are skipped (the log keeps only its hash). Works on "
                        "a database with its audit log, or a server (a token with the audit scope). Exit 0 when nothing changes, 1 when something does (or "
                        "the proposal would be refused), 2 on errors.",
            args=(arg("--schema", metavar="FILE", help="the proposed schema file ('-': stdin)"),
                  arg("--relationships", metavar="FILE", help="the proposed relationship changes ('-': stdin)"),
                  *WINDOW, DB_OR_SERVER, json_flag("print the counts and the changed decisions as JSON"), *SERVER),
            run=_cmd_impact),
)
