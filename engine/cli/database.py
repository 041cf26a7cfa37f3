"""``headwater migrate``: bring a database's tables to this version's layout."""

from __future__ import annotations

import argparse
from typing import TextIO

from .. import Engine
from .shared import DB, database, engine_errors
from .table import EXIT_OK, Command, arg


@engine_errors
def _cmd_migrate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    report = Engine.migrate(database(args.db), dry_run=args.dry_run)
    verb = "would apply" if report.dry_run else "applied"
    for version, name in report.steps:
        print(f"{verb} migration {version}: {name}", file=out)
    if not report.steps:
        print(f"{report.database}: up to date (table layout version {report.version})", file=out)
    elif report.dry_run:
        print(f"{report.database}: {len(report.steps)} migration(s) to apply; run without --dry-run to apply them",
              file=out)
    else:
        print(f"{report.database}: now at table layout version {report.version}", file=out)
    return EXIT_OK


COMMANDS = (
    Command("migrate", help="create or upgrade a database's tables (PostgreSQL: required before serve)",
            description="Apply the migrations the database lacks, in one transaction, and print each; running it "
                        "again changes nothing. A PostgreSQL database must be migrated before `headwater serve` "
                        "uses it (servers refuse an unmigrated or newer one); a SQLite file also migrates itself "
                        "when opened. Local: it works on the database itself, never through a server.",
            args=(DB, arg("--dry-run", action="store_true", help="print the migrations that would be applied; "
                                                                  "change nothing")),
            run=_cmd_migrate),
)
