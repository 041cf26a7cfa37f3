"""``headwater report``: the compliance report (engine/governance/report.py; docs/governance.md)."""

from __future__ import annotations

import argparse
from typing import TextIO

from ..governance.report import DEFAULT_PERMISSIONS, build_report
from ..governance.report_render import render_csv, render_html
from .shared import DB_OR_SERVER, SERVER, connect, engine_errors, json_flag, output, print_json
from .table import EXIT_OK, Command, arg


@engine_errors
def _cmd_report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    fmt = "json" if args.json else args.format
    with connect(args) as source:
        report = build_report(source, at=args.at, since=args.since, classification=args.classification,
                              permissions=args.permission or (), viewers=not args.no_viewers)
    with output(args.output, out) as target:
        if fmt == "json":
            print_json(report.to_json(), target, indent=2)
        elif fmt == "csv":
            render_csv(report, target)
        else:
            target.write(render_html(report))
    if args.output != "-":
        print(f"report at {report.token}: {len(report.values)} classification values, {report.objects} objects, "
              f"{fmt} written to {args.output}", file=err)
    return EXIT_OK


COMMANDS = (
    Command(
        "report", help="the compliance report: per classification value, who is cleared, what carries it, who may "
                       "view it",
        description="For each classification value: who is cleared (directly, through teams, with expirations), "
                    "which objects carry it and through which lineage path, who holds each one's viewing permission "
                    "now (exact, from the lookups; conditional answers marked), and every declassification (actor, "
                    "reason, revision). --at reports a past revision, --since adds what changed after one. JSON, "
                    "CSV (one table, a `section` column) or one self-contained HTML page.",
        args=(arg("--format", choices=("json", "csv", "html"), default="json", help="json (default), csv or html"),
              arg("--output", default="-", metavar="FILE", help="write the report to FILE ('-', the default: stdout)"),
              arg("--at", metavar="TOKEN", help="the report at this past revision (default: the newest)"),
              arg("--since", metavar="TOKEN",
                  help="also list the changes after this revision and how the report differs from then"),
              arg("--classification", metavar="NAME", help="only this classification (default: every one)"),
              arg("--permission", action="append", metavar="PERM|TYPE=PERM",
                  help="the viewing permission: TYPE=PERM for one definition; plain PERMs are the order of "
                       f"preference for the others (default: the first of {', '.join(DEFAULT_PERMISSIONS)} a "
                       "definition has; repeatable)"),
              arg("--no-viewers", action="store_true",
                  help="list no viewers (labels, paths, clearances and declassifications only: fast on a large store)"),
              DB_OR_SERVER, json_flag("the same as --format json"), *SERVER),
        run=_cmd_report),
)
