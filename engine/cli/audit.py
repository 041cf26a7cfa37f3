"""``headwater audit init|verify|anchor|acknowledge|query|export|replay|prune``: the audit log of a database
(docs/audit.md): ``<file>.audit`` beside a SQLite file, the ``audit_*`` tables of a PostgreSQL database."""

from __future__ import annotations

import argparse
import os
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .. import AuditLog, Config, Engine, NotFoundError, ReplayResult
from ..audit import Anchor, VerifyResult, audit_location_for
from ..store.naming import describe, is_file, kind_of
from .shared import OUTPUT_FILE, SERVER, context_arg, engine_errors, json_flag, output, plural, print_json, remote
from .table import EXIT_OK, EXIT_PROBLEMS, Command, Group, arg

if TYPE_CHECKING:
    from ..client import Client

#: Seconds `audit anchor --post` waits for the endpoint.
POST_TIMEOUT = 10.0


def _time_arg(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _audit_key() -> str | None:
    return os.environ.get("HEADWATER_AUDIT_KEY") or None


def _audit_location(args: argparse.Namespace) -> str | Path:
    """The log: ``--audit FILE``, else ``DATABASE.audit`` beside a SQLite file, else the PostgreSQL database."""
    if args.audit:
        return Path(args.audit)
    if not args.db:
        raise ValueError("give --db DATABASE (a SQLite file, whose log is DATABASE.audit, or a postgresql:// URI) "
                         "or --audit FILE")
    return audit_location_for(args.db)


def _open_audit(args: argparse.Namespace, *, create: bool = False) -> AuditLog:
    # The audit commands work on the log alone (no engine, no store): the audit package's public API.
    try:
        return AuditLog(_audit_location(args), create=create, key=_audit_key())
    except NotFoundError as exc:
        raise NotFoundError(f"{exc} (start one with: headwater audit init --db DATABASE)") from None


def _audit_filters(args: argparse.Namespace) -> dict[str, Any]:
    return {a.dest: getattr(args, a.dest) for a in FILTERS if getattr(args, a.dest) is not None}


def _server(args: argparse.Namespace) -> Client | None:
    """The server's client when the command asks one (its AuditService, scope audit): ``--server``, ``--profile``,
    or a context when neither --db nor --audit is given."""
    return remote(args, local=bool(args.db or args.audit))


@engine_errors
def _cmd_audit_init(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        log, started = _open_audit(args), False
    except NotFoundError:
        log, started = _open_audit(args, create=True), True
    with log:
        count, _ = log.head()
    shown = describe(_audit_location(args))
    print(f"{shown}: {'audit log started' if started else 'already an audit log'} ({count} records)", file=out)
    return EXIT_OK


def _verify(args: argparse.Namespace, anchors: list[Anchor]) -> VerifyResult:
    """The chain, the store it must continue (when the database exists) and the anchors."""
    if args.db and (kind_of(args.db) == "postgresql" or Path(args.db).exists()):
        config = Config.of(audit_path=args.audit, audit_key=_audit_key())
        return Engine.verify_audit_trail(args.db, config=config, anchors=anchors)
    return AuditLog.verify_file(_audit_location(args), key=_audit_key(), anchors=anchors)


@engine_errors
def _cmd_audit_verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    anchors = [Anchor.parse(_read_anchor(name), name) for name in args.anchor]
    client = _server(args)
    if client is not None:
        if anchors:
            raise ValueError("--anchor needs the log itself (--db or --audit), not a server")
        with client:
            result = client.audit_verify()
    else:
        result = _verify(args, anchors)
    if args.json:
        print_json({"ok": result.ok, "records": result.records, "count": result.count, "head_hash": result.head_hash,
                    "record_id": result.record_id, "problem": result.problem, "notes": list(result.notes),
                    "message": str(result)}, out)
    else:
        print(result, file=out)
    return EXIT_OK if result.ok else EXIT_PROBLEMS


def _read_anchor(name: str) -> str:
    try:
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the anchor {name}: {exc}") from None


@engine_errors
def _cmd_audit_anchor(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    result = _verify(args, [])
    if not result.ok:  # an anchor vouches for the log: never for one that does not verify
        print(result, file=out)
        return EXIT_PROBLEMS
    with _open_audit(args) as log:
        anchor = log.anchor()
    text = anchor.to_json() + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"anchored record #{anchor.sequence} in {args.output}", file=err)
    elif not args.post:
        out.write(text)
    if args.post:
        print(f"anchored record #{anchor.sequence} at {args.post} ({_post(args.post, text)})", file=err)
    return EXIT_OK


def _post(url: str, body: str) -> str:
    """POST the anchor to the operator's endpoint; its answer (``HTTP 201``), ValueError when it fails."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"--post needs an http:// or https:// URL, not {url!r}")
    headers = {"Content-Type": "application/json"}
    authorization = os.environ.get("HEADWATER_ANCHOR_AUTHORIZATION")
    if authorization:
        headers["Authorization"] = authorization
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=POST_TIMEOUT) as response:
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        raise ValueError(f"cannot post the anchor to {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise ValueError(f"cannot post the anchor to {url}: {reason}") from None


@engine_errors
def _cmd_audit_acknowledge(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if is_file(args.db) and not Path(args.db).exists():
        raise FileNotFoundError(f"database {args.db} does not exist")
    config = Config.of(audit_path=args.audit, audit_key=_audit_key())
    record = Engine.acknowledge_audit_break(args.db, by=args.by, reason=args.reason, config=config)
    if record is None:
        print(f"nothing to acknowledge: the audit log of {describe(args.db)} continues what the store recorded",
              file=out)
    else:
        print(f"acknowledged: {record.describe()}", file=out)
    return EXIT_OK


@engine_errors
def _cmd_audit_query(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    client = _server(args)
    with client if client is not None else _open_audit(args) as source:
        query = source.audit_query if client is not None else source.query
        page = query(limit=args.limit, cursor=args.cursor, newest_first=args.newest_first, **_audit_filters(args))
    for record in page.records:
        print(record.to_json() if args.json else record.describe(), file=out)
    print(plural(len(page.records), "record"), file=err)
    if page.cursor:
        print(f"more: --cursor {page.cursor}", file=err)
    return EXIT_OK


@engine_errors
def _cmd_audit_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    client = _server(args)
    if client is not None:
        with client, output(args.file, out) as target:
            n = 0
            for line in client.audit_export(**_audit_filters(args)):
                target.write(line)
                n += 1
    else:
        with _open_audit(args) as log, output(args.file, out) as target:
            n = log.export(target, **_audit_filters(args))
    print(f"exported {plural(n, 'record')}", file=err)
    return EXIT_OK


@engine_errors
def _cmd_audit_replay(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    context = context_arg(args.context)
    client = _server(args)
    if client is not None:
        with client:
            replayed = client.audit_replay(args.record_id, context=context)
    else:
        replayed = _replay_local(args, context)
    if args.json:
        print_json(_replay_json(replayed), out)
    else:
        record, result = replayed.record, replayed.result
        print(f"record #{record.id} at {record['time']}: {record.resource}#{record.permission}@{record.subject} "
              f"was {record.result} at revision {record.revision}", file=out)
        print(replayed.message, file=out)
        if result is not None and result.explanation is not None:
            print(result.explanation.render(), file=out)
    return EXIT_OK if replayed.same else EXIT_PROBLEMS


def _replay_local(args: argparse.Namespace, context: dict[str, Any] | None) -> ReplayResult:
    if not args.db:
        raise ValueError("replay needs --db DATABASE (the database the decision was made against), or --server")
    location = _audit_location(args)
    if isinstance(location, Path) and not location.exists():
        raise FileNotFoundError(f"no audit log at {location}")
    if is_file(args.db) and not Path(args.db).exists():
        raise FileNotFoundError(f"database {args.db} does not exist")
    config = Config.of(audit=True, audit_path=args.audit, audit_key=_audit_key())
    with Engine.open(args.db, config=config) as engine:
        return engine.replay(args.record_id, context=context)


def _replay_json(replayed: ReplayResult) -> dict[str, Any]:
    result = replayed.result
    return {"record": replayed.record.body, "available": replayed.available, "same": replayed.same,
            "permissionship": result.permissionship.name if result else None,
            "missing_context": list(result.missing_context) if result else None,
            "explanation": ({"summary": list(result.explanation.summary), "tree": result.explanation.tree.render()}
                            if result and result.explanation else None),
            "message": replayed.message}


@engine_errors
def _cmd_audit_prune(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _open_audit(args) as log:
        checkpoint = log.prune(args.before)
    if checkpoint is None:
        print("nothing to prune", file=out)
    else:
        print(f"pruned {checkpoint['pruned_now']} records; checkpoint #{checkpoint.id} ({checkpoint['signed']}) "
              "stands for them", file=out)
    return EXIT_OK


# Which log: every action takes these.
_DB_HELP = "SQLite database file (its log is DATABASE.audit) or postgresql:// URI (its log is in that database)"
TARGET = (arg("--db", metavar="DATABASE", help=_DB_HELP),
          arg("--audit", metavar="FILE", help="the audit log file, if not DATABASE.audit"))
# Which records: query and export take these; each one given narrows the selection.
FILTERS = (
    arg("--since", type=_time_arg, metavar="TIME", help="records at or after TIME (ISO 8601; UTC unless it has an "
                                                        "offset)"),
    arg("--until", type=_time_arg, metavar="TIME", help="records before TIME"),
    arg("--kind", choices=["decision", "lookup", "relationships", "schema", "declassification", "checkpoint",
                           "acknowledgement"]),
    arg("--subject", metavar="S", help="e.g. user:alice"),
    arg("--resource", metavar="R", help="e.g. document:readme"),
    arg("--permission", metavar="P"),
    arg("--result", choices=["HAS_PERMISSION", "NO_PERMISSION", "CONDITIONAL_PERMISSION"]),
    arg("--caller", metavar="NAME", help="who asked (e.g. a gRPC token's name)"),
    arg("--actor", metavar="SUBJECT", help="who made a change"),
    arg("--revision", type=int, metavar="N", help="records at revision N"),
    arg("--min-revision", type=int, metavar="N"),
    arg("--max-revision", type=int, metavar="N"),
)

COMMANDS = (
    Group("audit", help="verify, query, export, replay or prune the audit log of a database",
          description="The audit log kept beside a SQLite database (<database>.audit), or in a PostgreSQL "
                      "database (its audit_* tables, shared by every server): every relationship and schema "
                      "change and the recorded decisions, hash-chained so that any edit, insertion, removal, "
                      "reordering or truncation is caught by `verify`. Once a database has an audit log, every "
                      "command that opens the database records into it, and refuses to open it when the log is "
                      "missing, another one or behind the store, until `acknowledge`. The HMAC key, if the log "
                      "has one, comes from the HEADWATER_AUDIT_KEY environment variable.",
          help_when_bare=True),
    Command("audit init", help="start an audit log for a database (local: the log file or database itself)",
            description="Create the audit log of a database; from then on every command that opens the database "
                        "records its changes and decisions in it.",
            args=TARGET, run=_cmd_audit_init),
    Command("audit verify", help="walk the hash chain; exit 1 naming the first problem",
            description="Walk the whole chain and the head. Prints `ok: ...` (exit 0), or the first problem (exit "
                        "1): a record that was altered, inserted, removed or reordered, a truncated tail, a missing "
                        "or unsigned head, a signed log without its key, a log that does not continue what the "
                        "database recorded (missing, replaced, rolled back), a file that is not a readable log, or "
                        "an anchor the log no longer holds.",
            args=(*TARGET, arg("--anchor", nargs="+", default=[], metavar="FILE",
                               help="anchors from `headwater audit anchor`: the log must still hold each one "
                                    "(a local log only)"),
                  json_flag("print the verdict as JSON: ok, records, count, head_hash, record_id, problem, notes, "
                            "message"), *SERVER),
            run=_cmd_audit_verify),
    Command("audit anchor", help="print the head (signed with the key) to keep outside the host (local)",
            description="Verify the log, then emit its head (log id, sequence, hash, time and, with "
                        "HEADWATER_AUDIT_KEY, an HMAC signature) as one JSON document: on stdout, in --output FILE, "
                        "or POSTed to --post URL (with the Authorization header from HEADWATER_ANCHOR_AUTHORIZATION "
                        "if set). Keep it where the host cannot change it; `audit verify --anchor FILE` then catches "
                        "a rollback to an older copy. Exit 1 (and no anchor) when the log does not verify.",
            args=(*TARGET, arg("--output", metavar="FILE", help="write the anchor to FILE instead of stdout"),
                  arg("--post", metavar="URL", help="POST the anchor (application/json) to an http(s) URL")),
            run=_cmd_audit_anchor),
    Command("audit acknowledge", help="accept a broken audit trail (missing, replaced or rolled-back log; local)",
            description="A database whose audit log is missing, another log, or behind the store refuses to open. "
                        "Once the cause is understood, this records who accepts the break and why in the log (a new "
                        "one if there is none; an unreadable log must be moved aside first) and in the store, "
                        "naming the previous log and the store revision; the chain goes on from there.",
            args=(arg("--db", required=True, metavar="DATABASE", help=_DB_HELP),
                  arg("--audit", metavar="FILE", help="the audit log file, if not DATABASE.audit"),
                  arg("--by", required=True, metavar="NAME", help="who acknowledges (e.g. user:ops-alice)"),
                  arg("--reason", required=True, metavar="TEXT", help="why (e.g. an incident ticket)")),
            run=_cmd_audit_acknowledge),
    Command("audit query", help="print records matching filters, a page at a time",
            description="Print the records matching every filter given, oldest first, one per line (or JSON Lines "
                        "with --json); the cursor for the next page goes to stderr.",
            args=(*TARGET, *FILTERS,
                  arg("--limit", type=int, default=100, metavar="N", help="records per page (default 100)"),
                  arg("--cursor", help="continue a previous page (same filters)"),
                  arg("--newest-first", action="store_true", help="newest records first"),
                  json_flag("print each record as a JSON line"), *SERVER),
            run=_cmd_audit_query),
    Command("audit export", help="write matching records as JSON Lines (for a SIEM)",
            description="Write every record matching the filters to FILE as JSON Lines: each record's fields plus "
                        "`hash` and `prev_hash`, oldest first.",
            args=(OUTPUT_FILE, *TARGET, *FILTERS, *SERVER), run=_cmd_audit_export),
    Command("audit replay", help="evaluate a recorded decision again, with the full explanation",
            description="Evaluate the decision of record RECORD_ID again at its recorded revision, print both "
                        "answers and the full explanation. Exit 0 when the answer is the same, 1 when it differs or "
                        "the revision has left the history window.",
            args=(arg("record_id", type=int, metavar="RECORD_ID"), *TARGET,
                  arg("--context", metavar="JSON", help="the request's caveat context (the log keeps its hash)"),
                  json_flag("print the result as JSON"), *SERVER),
            run=_cmd_audit_replay),
    Command("audit prune", help="delete records older than a time, leaving a signed checkpoint (local)",
            description="Verify and delete the records older than --before; a checkpoint record (signed with "
                        "HEADWATER_AUDIT_KEY if set) stands for them, so the rest still verifies.",
            args=(*TARGET, arg("--before", type=_time_arg, required=True, metavar="TIME")),
            run=_cmd_audit_prune),
)
