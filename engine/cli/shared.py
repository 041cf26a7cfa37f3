"""What the command groups share: option groups declared once, opening the engine or a client, errors, files.

Example::

    >>> import io
    >>> buf = io.StringIO(); print_json({"permissionship": "HAS_PERMISSION"}, buf); buf.getvalue()
    '{"permissionship": "HAS_PERMISSION"}\\n'
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ...dsl import DslError
from .. import Config, Engine, EngineError, ImportProgress, ImportResult, Relationship
from ..store.naming import is_file
from .profiles import selected as selected_profile
from .table import EXIT_USAGE, Arg, Run, arg

if TYPE_CHECKING:
    from ..client import Client

# --- option groups -----------------------------------------------------------------------------

DB = arg("--db", metavar="DB", help="the database: a SQLite file or a postgresql:// URI (default: $HEADWATER_DB)")
DB_OR_SERVER = arg("--db", metavar="DB", help="the database: a SQLite file or a postgresql:// URI (default: "
                                              "$HEADWATER_DB), or --server ADDR")
# The last options of every command that can ask a running server instead of a database file.
SERVER = (arg("--server", metavar="ADDR", help="ask a running `headwater serve` at host:port instead of a database "
                                               "(default: the current context's server, see `headwater context`)"),
          arg("--token", help="with a server: the bearer token (default: the context's, else $HEADWATER_TOKEN)"),
          arg("--tls", action="store_true", help="with --server: connect with TLS (the system's roots unless "
                                                 "--tls-ca)"),
          arg("--tls-ca", metavar="FILE", help="with --server: PEM CA bundle that signed the server's certificate "
                                               "(implies --tls)"),
          arg("--tls-cert", metavar="FILE", help="with --server: PEM client certificate for mutual TLS"),
          arg("--tls-key", metavar="FILE", help="with --server: PEM private key of --tls-cert"),
          arg("--profile", metavar="NAME", help="talk to this saved context's server (default: $HEADWATER_CONTEXT, "
                                                "else the current context; see `headwater context`)"))
CONTEXT = arg("--context", metavar="JSON", help="caveat context, a JSON object")
OUTPUT_FILE = arg("file", nargs="?", default="-", metavar="FILE", help="output file; '-' (default) is stdout")


def json_flag(help: str) -> Arg:
    """``--json`` with what it prints."""
    return arg("--json", action="store_true", help=help)


def print_json(data: Any, out: TextIO, *, indent: int | None = None) -> None:
    """The one way commands print JSON: one document (or, with ``indent=None``, one JSON line) ending in a newline;
    keys as given (each command's keys are part of its interface), non-ASCII kept."""
    out.write(json.dumps(data, indent=indent, ensure_ascii=False, default=str) + "\n")


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


def _cli_retry() -> Any:
    from ..client import RetryPolicy

    return RetryPolicy(max_attempts=CLI_RETRY_ATTEMPTS, initial_backoff=0.2, max_backoff=0.5)


def remote(args: argparse.Namespace, *, local: bool | None = None) -> Client | None:
    """The client of the server a command should ask, or None to work on a database.

    In order: ``--server`` (with ``--token``/``--tls*``), ``--profile NAME``; then, unless the command was given
    a database (``local``; default: ``--db`` or ``$HEADWATER_DB``), ``$HEADWATER_CONTEXT``'s or the current
    context's server. A token comes from ``--token``, else the context, else ``$HEADWATER_TOKEN``."""
    if local is None:
        local = bool(getattr(args, "db", None) or os.environ.get("HEADWATER_DB"))
    profile_name = getattr(args, "profile", None)
    if getattr(args, "server", None):
        profile = None
    elif profile_name or not local:
        profile = selected_profile(profile_name)
        if profile is None:
            return None
    else:
        return None
    from ..client import Client, ClientTls

    ca, cert, key = (getattr(args, "tls_ca", None) or (profile and profile.tls_ca),
                     getattr(args, "tls_cert", None) or (profile and profile.tls_cert),
                     getattr(args, "tls_key", None) or (profile and profile.tls_key))
    tls: bool | ClientTls = bool(getattr(args, "tls", False) or (profile and profile.tls))
    if ca or cert or key:
        tls = ClientTls(ca=ca or None, cert=cert or None, key=key or None)
    token = getattr(args, "token", None) or (profile and profile.token) or os.environ.get("HEADWATER_TOKEN")
    # a person waits at the terminal: ride out a restart of a second or so, then say the server is not there
    return Client(profile.address if profile else args.server, token=token or None, tls=tls, retry=_cli_retry())


#: The CLI's retries: three attempts within about a second (the client's default, for services, keeps trying
#: for several seconds).
CLI_RETRY_ATTEMPTS = 3


def connect(args: argparse.Namespace, *, create: bool = False) -> Engine | Client:
    """A running server's client (``--server``, ``--profile`` or the current context: :func:`remote`), else the
    engine over ``--db`` (both offer the methods the commands use); a SQLite file must exist unless ``create``."""
    client = remote(args)
    if client is not None:
        return client
    if not args.db and not os.environ.get("HEADWATER_DB"):
        raise ValueError("give --db DB (or set HEADWATER_DB), or --server ADDR to ask a running server "
                         "(or save one: headwater context set NAME ADDR)")
    return open_engine(args.db, create=create)


def is_remote(target: Engine | Client) -> bool:
    """Whether ``target`` is a server's client (whose methods lack the engine's local-only options)."""
    return not isinstance(target, Engine)


def import_into(target: Engine | Client, relationships: Iterable[str], *, batch_size: int,
                progress: Callable[[ImportProgress], None] | None, **options: Any) -> ImportResult:
    """Import into a database (atomic batches of ``batch_size``, ``progress`` after each) or a server (which
    batches itself and reports only the end); ``options`` (actor, reason, ...) go to both."""
    if is_remote(target):  # the client sends relationships: not the file's blank lines and // comments
        lines = (text for text in (ln.strip() for ln in relationships) if text and not text.startswith("//"))
        return target.import_relationships(lines, **options)
    return target.import_relationships(relationships, batch_size=batch_size, progress=progress, **options)


def relationship_json(r: Relationship) -> dict[str, Any]:
    """A relationship as `--json` prints it: its SpiceDB string and its parts."""
    return {"relationship": str(r), "resource": str(r.resource), "relation": r.relation, "subject": str(r.subject),
            "caveat": r.caveat.name if r.caveat else None,
            "caveat_context": json.loads(r.caveat.context) if r.caveat and r.caveat.context else None,
            "expiration": r.expiration.isoformat() if r.expiration else None}


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
