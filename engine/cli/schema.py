"""``headwater schema write`` and ``schema read``: the schema stored in a database file."""

from __future__ import annotations

import argparse
from typing import TextIO

from ...dsl import SchemaLimits, read_schema_files
from ..errors import NotFoundError
from .shared import DB, engine_errors, open_engine, read_input
from .table import EXIT_OK, EXIT_PROBLEMS, Command, Group, arg


@engine_errors
def _cmd_schema_write(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.file == "-":
        text = read_input(args.file)  # text alone: partials are fine, imports need files
    else:
        # A file that imports others (composable schemas) is written as the one schema `zed schema compile` makes
        # of them; compiled here first, so that every error names the file it is in. The engine's limits apply to
        # the result.
        files = read_schema_files(args.file, limits=SchemaLimits.unlimited())
        text = files.texts[files.root]
        if files.imports:
            files.compile(SchemaLimits.unlimited())
            text = files.text
    with open_engine(args.db, create=True) as engine:
        result = engine.write_schema(text, dry_run=args.dry_run)
    verb = "would store" if args.dry_run else "stored"
    print(f"{verb} schema version {result.version} ({result.digest[:12]}) at {result.token}", file=out)
    return EXIT_OK


@engine_errors
def _cmd_schema_read(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with open_engine(args.db) as engine:
        try:
            stored = engine.read_schema()
        except NotFoundError as exc:
            print(f"error: {exc}", file=err)
            return EXIT_PROBLEMS
    out.write(stored.text if stored.text.endswith("\n") else stored.text + "\n")
    return EXIT_OK


COMMANDS = (
    Group("schema", help="write or read the schema of a database file",
          description="Write a schema file into a database (refused if it would orphan stored relationships) or "
                      "print the stored one."),
    Command("schema write", help="compile FILE and store it as the new schema version",
            description="Compile FILE and store it as the new schema version. A FILE that imports others "
                        "(composable schemas) is stored as the one schema they make together.",
            args=(arg("file", metavar="FILE"),
                  arg("--db", metavar="DB", help="the database: a SQLite file (created if missing) or a postgresql:// URI "
                                                 "(default: $HEADWATER_DB)"),
                  arg("--dry-run", action="store_true", help="check only; store nothing")),
            run=_cmd_schema_write),
    Command("schema read", help="print the stored schema", description="Print the stored schema.",
            args=(DB,), run=_cmd_schema_read),
)
