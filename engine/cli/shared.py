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
from .table import EXIT_USAGE, Arg, Run, arg

if TYPE_CHECKING:
    from ..client import Client

# --- option groups -----------------------------------------------------------------------------

DB = arg("--db", required=True, metavar="PATH", help="SQLite database file")
DB_OR_SERVER = arg("--db", metavar="PATH", help="SQLite database file (or --server ADDR)")
# The last options of every command that can ask a running server instead of a database file.
SERVER = (arg("--server", metavar="ADDR", help="ask a running `headwater serve` instead of a file"),
          arg("--token", help="with --server: the bearer token (default: $HEADWATER_TOKEN)"))
CONTEXT = arg("--context", metavar="JSON", help="caveat context, a JSON object")
OUTPUT_FILE = arg("file", nargs="?", default="-", metavar="FILE", help="output file; '-' (default) is stdout")


def json_flag(help: str) -> Arg:
    """``--json`` with what it prints."""
    return arg("--json", action="store_true", help=help)


# --- the engine, or a running server -----------------------------------------------------------


def open_engine(path: str, *, create: bool = False) -> Engine:
    """The engine over the database file at ``path``; it must exist unless ``create``."""
    if not create and not Path(path).exists():
        raise FileNotFoundError(f"database {path} does not exist (write a schema first: headwater schema write)")
    # A signed audit log is written with its key only (Engine.open refuses otherwise).
    return Engine.open(path, config=Config.of(audit_key=os.environ.get("HEADWATER_AUDIT_KEY") or None))


def connect(args: argparse.Namespace) -> Engine | Client:
    """A running server's client for `--server`, else the engine over `--db` (both offer the methods used)."""
    if args.server:
        from ..client import Client

        return Client(args.server, token=args.token or os.environ.get("HEADWATER_TOKEN") or None)
    if not args.db:
        raise ValueError("give --db PATH, or --server ADDR to ask a running server")
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
