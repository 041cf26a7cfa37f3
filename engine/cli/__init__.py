"""The ``headwater`` command line: a thin adapter over ``headwater.dsl`` and ``headwater.engine``.

Each command converts its arguments, calls the :class:`~headwater.engine.Engine` (or, with
``--server``, the client of a running server) and prints the result. Exit codes follow the
usual conventions of formatters and linters: 0 success, 1 the check found problems
(unformatted file, schema errors, failing assertions), 2 the command could not run (bad
usage, unreadable file, text that does not parse for ``fmt``).

The parser is built from one table (``table.py``): every command is declared once, as data,
beside the function that runs it, in the module of its group:

- ``schema_files.py``   fmt, lint, validate (files on disk)
- ``schema.py``         schema write, schema read
- ``queries.py``        check, expand, lookup-resources, lookup-subjects
- ``lineage.py``        labels, ancestors, descendants
- ``relationships.py``  relationships touch/create/delete/read, export, import, watch
- ``audit.py``          audit init/verify/query/export/replay/prune
- ``database.py``       migrate
- ``serve.py``          serve
- ``shared.py``         the option groups and helpers the groups share

Example::

    $ headwater lint policy.zed
    policy.zed: ok (3 definitions, 4 relations, 2 permissions, 0 caveats)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import audit, database, lineage, queries, relationships, schema, schema_files, serve
from .table import EXIT_OK, EXIT_USAGE, build_parser

__all__ = ["main"]

# Every command, in the order `headwater --help` lists them.
_TABLE = (*schema_files.COMMANDS, *queries.COMMANDS, *lineage.COMMANDS, *schema.COMMANDS, *relationships.COMMANDS,
          *audit.COMMANDS, *database.COMMANDS, *serve.COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args, sys.stdout, sys.stderr))
    except BrokenPipeError:
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


def _build_parser() -> argparse.ArgumentParser:
    return build_parser("headwater", "Headwater: relationship-based access control for AI data.", _TABLE)
