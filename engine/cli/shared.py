"""What the command groups share: option groups declared once, opening the engine or a client, errors, files."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ...dsl import DslError
from .. import Config, Engine, EngineError
from ..store.naming import is_file
from .table import EXIT_USAGE, Arg, Run, arg

if TYPE_CHECKING:
    from ..client import Client

# --- option groups -----------------------------------------------------------------------------

DB = arg("--db", metavar="DB", help="the database: a SQLite file or a postgresql:// URI (default: $HEADWATER_DB)")
DB_OR_SERVER = arg("--db", metavar="DB", help="the database: a SQLite file or a postgresql:// URI (default: "
                                              "$HEADWATER_DB), or --server ADDR")
# The last options of every command that can ask a running server instead of a database file.
SERVER = (arg("--server", metavar="ADDR", help="ask a running `headwater serve` instead of a file"),
          arg("--token", help="with --server: the bearer token (default: $HEADWATER_TOKEN)"))
CONTEXT = arg("--context", metavar="JSON", help="caveat context, a JSON object")
OUTPUT_FILE = arg("file", nargs="?", default="-", metavar="FILE", help="output file; '-' (default) is stdout")


def json_flag(help: str) -> Arg:
    """``--json`` with what it prints."""
    return arg("--json", action="store_true", help=help)


# --- the engine, or a running server -----------------------------------------------------------


def database(given: str | None) -> str:
    """The database a command works on: ``--db``, else ``$HEADWATER_DB``."""
    db = given or os.environ.get("HEADWATER_DB")
    if not db:
        raise ValueError("give --db DB (a SQLite file or a postgresql:// URI), or set HEADWATER_DB")
    return db


def open_engine(db: str | None, *, create: bool = False) -> Engine:
    """The engine over the database ``db`` names (``--db``, else ``$HEADWATER_DB``); a SQLite file must exist
    unless ``create``."""
    db = database(db)
    if is_file(db) and not create and not Path(db).exists():
        raise FileNotFoundError(f"database {db} does not exist (write a schema first: headwater schema write)")
    # A signed audit log is written with its key only (Engine.open refuses otherwise).
    return Engine.open(db, config=Config.of(audit_key=os.environ.get("HEADWATER_AUDIT_KEY") or None))


def connect(args: argparse.Namespace) -> Engine | Client:
    """A running server's client for `--server`, else the engine over `--db` (both offer the methods used)."""
    if args.server:
        from ..client import Client

        return Client(args.server, token=args.token or os.environ.get("HEADWATER_TOKEN") or None)
    if not args.db and not os.environ.get("HEADWATER_DB"):
        raise ValueError("give --db DB (or set HEADWATER_DB), or --server ADDR to ask a running server")
    return open_engine(args.db)


def engine_errors(run: Run) -> Run:
    """The CLI's single place that turns engine errors into a message on stderr and exit 2."""
    @functools.wraps(run)
    def guarded(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
        try:
            return run(args, out, err)
        except (EngineError, DslError, FileNotFoundError, ValueError) as exc:
            text = exc.render() if isinstance(exc, DslError) else str(exc)
            print(f"error: {text}", file=err)
            return EXIT_USAGE
    return guarded


# --- arguments and files -----------------------------------------------------------------------


def context_arg(text: str | None) -> dict[str, Any] | None:
    """The ``--context`` JSON object, or None when not given."""
    context = json.loads(text) if text else None
    if context is not None and not isinstance(context, dict):
        raise ValueError("--context must be a JSON object")
    return context


def read_input(path: str) -> str:
    """The text of the file at ``path``; ``-`` reads stdin."""
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text(encoding="utf-8")


@contextlib.contextmanager
def output(path: str, out: TextIO) -> Iterator[TextIO]:
    """``out`` for ``-``, else the file at ``path`` opened for writing (and closed afterwards)."""
    if path == "-":
        yield out
        return
    with Path(path).open("w", encoding="utf-8") as f:
        yield f


def plural(n: int, noun: str, suffix: str = "s") -> str:
    """``1 relationship``, ``2 relationships``."""
    return f"{n} {noun}{suffix if n != 1 else ''}"
