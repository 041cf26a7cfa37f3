"""The ``headwater`` command line: a thin adapter over ``headwater.dsl`` and ``headwater.engine``.

Each command converts its arguments, calls the :class:`~headwater.engine.Engine` (or, with
``--server``, the client of a running server) and prints the result. Exit codes follow the
usual conventions of formatters and linters: 0 success, 1 the check found problems
(unformatted file, schema errors, failing assertions), 2 the command could not run (bad
usage, unreadable file, text that does not parse for ``fmt``).

The parser is built from one table (``table.py``): every command is declared once, as data,
beside the function that runs it, in the module of its group:

- ``schema_files.py``   fmt, lint, validate (files on disk)
- ``schema.py``         schema write (--dry-run), schema read, schema diff
- ``queries.py``        check, check-bulk, expand, lookup-resources, lookup-subjects
- ``lineage.py``        labels, ancestors, descendants, derive
- ``openlineage.py``    openlineage ingest/id (OpenLineage events from a file; engine/openlineage)
- ``monitor.py``, ``report.py``, ``impact.py``  governance over the audit trail (engine/governance)
- ``relationships.py``  relationships touch/create/delete/read, export, import, watch
- ``audit.py``          audit init/verify/query/export/replay/prune
- ``backup.py``         backup create/restore (engine/backup.py)
- ``database.py``       migrate
- ``serve.py``          serve
- ``contexts.py``       context set/use/list/remove (saved servers, like zed context)
- ``profiles.py``       where the saved contexts live (contexts.toml, mode 0600; the keyring)
- ``tokens.py``         token create (a bearer token and its token-file entry)
- ``completion.py``     completion bash|zsh|fish (shtab, from the parser)
- ``shared.py``         the option groups and helpers the groups share (--db, --server/--tls*/--profile, JSON)
- ``reference.py``      docs/cli.md, generated from the table (``python -m headwater.engine.cli.reference``)

Every command that works on data takes ``--db`` or a server (``--server``, ``--profile`` or the
current context), and ``--json`` where it prints data.

Example::

    $ headwater lint policy.zed
    policy.zed: ok (3 definitions, 4 relations, 2 permissions, 0 caveats)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..version import describe
from . import (audit, backup, completion, contexts, database, impact, lineage, monitor, openlineage, queries,
               relationships, report, schema, schema_files, serve, tokens)
from . import playground
from .table import EXIT_OK, EXIT_USAGE, build_parser

__all__ = ["main"]

# Every command, in the order `headwater --help` lists them.
TABLE = (*schema_files.COMMANDS, *queries.COMMANDS, *lineage.COMMANDS, *openlineage.COMMANDS, *schema.COMMANDS,
         *relationships.COMMANDS,
         *backup.COMMANDS, *audit.COMMANDS, *monitor.COMMANDS, *report.COMMANDS, *impact.COMMANDS, *database.COMMANDS,
         *serve.COMMANDS, *playground.COMMANDS, *contexts.COMMANDS, *tokens.COMMANDS, *completion.COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    parser = build_cli_parser()
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


def build_cli_parser() -> argparse.ArgumentParser:
    """The parser of every command (``headwater --help``); completion scripts are generated from it."""
    parser = build_parser("headwater", "Headwater: relationship-based access control for AI data.", TABLE)
    parser.add_argument("--version", action="version", version=describe(),
                        help="print the version (and the commit, when run from a git checkout) and exit")
    return parser


_build_parser = build_cli_parser  # the name the tests knew first
