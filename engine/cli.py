"""The ``headwater`` command line: a thin adapter over ``headwater.dsl`` and ``headwater.engine``.

Exit codes follow the usual conventions of formatters and linters:
0 success, 1 the check found problems (unformatted file, schema errors,
failing assertions), 2 the command could not run (bad usage, unreadable file,
text that does not parse for ``fmt``).

Example::

    $ headwater lint policy.zed
    policy.zed: ok (3 definitions, 4 relations, 2 permissions, 0 caveats)
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from ..dsl import DslError, format_schema, lint_schema, parse_schema

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    parser = _build_parser()
    _add_server_options(parser)
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
    parser = argparse.ArgumentParser(
        prog="headwater",
        description="Headwater: relationship-based access control for AI data.",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    fmt = sub.add_parser("fmt", help="format schema files in canonical style",
                         description="Rewrite schema files in canonical style (comments are kept).")
    fmt.add_argument("files", nargs="+", metavar="FILE", help="schema files (.zed); '-' reads stdin, writes stdout")
    fmt.add_argument("--check", action="store_true",
                     help="do not write; exit 1 if any file is not formatted")
    fmt.add_argument("--diff", action="store_true", help="do not write; print a unified diff of the changes")
    fmt.set_defaults(func=_cmd_fmt)

    lint = sub.add_parser("lint", help="check schema files and report every problem",
                          description="Compile schema files and print every error (with line, column and the "
                                      "offending line) and warning.")
    lint.add_argument("files", nargs="+", metavar="FILE", help="schema files (.zed); '-' reads stdin")
    lint.add_argument("--strict", action="store_true", help="treat warnings as errors")
    lint.set_defaults(func=_cmd_lint)

    validate = sub.add_parser(
        "validate", help="run SpiceDB validation files (schema + relationships + assertions + validation)",
        description="Load each validation file into a fresh in-memory engine, check its assertTrue, "
                    "assertFalse and assertCaveated assertions, and compare each `validation:` block with the "
                    "subjects Expand finds. Failures name the file and line, with expected and actual. Exit 1 on "
                    "any failure or load error.")
    validate.add_argument("files", nargs="+", metavar="FILE", help="validation files (.yaml)")
    validate.add_argument("--json", action="store_true",
                          help="print every assertion and validation entry, expected and actual, as JSON")
    validate.add_argument("--together", action="store_true",
                          help="load all files into one engine, in order (e.g. a schema file, then data files)")
    validate.add_argument("--root", metavar="DIR",
                          help="folder a `schemaFile` must stay inside (default: the current directory if the "
                               "file is under it, else the file's folder)")
    validate.set_defaults(func=_cmd_validate)

    check = sub.add_parser(
        "check", help="check one permission against a database file",
        description="Answer one check: does SUBJECT have PERMISSION on RESOURCE? Prints HAS_PERMISSION, "
                    "NO_PERMISSION or CONDITIONAL_PERMISSION (with the missing caveat parameters) and the "
                    "revision token. Exit 0 for HAS_PERMISSION, 1 otherwise (2 on errors).")
    check.add_argument("resource", metavar="RESOURCE", help="e.g. document:readme")
    check.add_argument("permission", metavar="PERMISSION", help="e.g. view")
    check.add_argument("subject", metavar="SUBJECT", help="e.g. user:alice or group:eng#member")
    check.add_argument("--db", metavar="PATH", help="SQLite database file (required unless --server is given)")
    check.add_argument("--server", metavar="ADDR",
                       help="ask a running `headwater serve` at host:port instead of opening --db")
    check.add_argument("--token", metavar="TOKEN",
                       help="with --server: the bearer token (default: the HEADWATER_TOKEN environment variable)")
    check.add_argument("--context", metavar="JSON", help="caveat context, a JSON object")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.add_argument("--explain", action="store_true",
                       help="say why: the relationships that granted it, or why it was denied (a missing "
                            "clearance and the lineage path that brought the label, ...), then the full tree")
    check.set_defaults(func=_cmd_check)

    expand = sub.add_parser(
        "expand", help="print the subject tree of a permission in a database file",
        description="Expand RESOURCE#PERMISSION fully (SpiceDB's ExpandPermissionTree): print the tree (union, "
                    "intersection and exclusion nodes down to the direct subjects of each relation; `[...]` marks a "
                    "subject granted only under a caveat), then its terminal subjects, each with the "
                    "resource#relation through which it is reached, in validation-file form.")
    expand.add_argument("resource", metavar="RESOURCE", help="e.g. document:readme")
    expand.add_argument("permission", metavar="PERMISSION", help="e.g. view")
    expand.add_argument("--db", required=True, metavar="PATH", help="SQLite database file")
    expand.add_argument("--context", metavar="JSON", help="caveat context, a JSON object")
    expand.add_argument("--json", action="store_true", help="print the tree and the subjects as JSON")
    expand.set_defaults(func=_cmd_expand)

    lr = sub.add_parser("lookup-resources", help="every resource of a type on which a subject has a permission",
                        description="Print every RESOURCE_TYPE object on which SUBJECT has PERMISSION, sorted by id, "
                                    "each HAS_PERMISSION or CONDITIONAL_PERMISSION (with the missing caveat "
                                    "parameters). Complete unless --page-size is given, then a cursor to continue "
                                    "is printed on stderr.")
    lr.add_argument("resource_type", metavar="RESOURCE_TYPE")
    lr.add_argument("permission", metavar="PERMISSION")
    lr.add_argument("subject", metavar="SUBJECT")
    ls = sub.add_parser("lookup-subjects", help="every subject of a type with a permission on a resource",
                        description="Print every subject of SUBJECT_TYPE (or SUBJECT_TYPE#relation) with PERMISSION "
                                    "on RESOURCE; a wildcard answer is printed as `type:*` with the subjects it "
                                    "does not cover.")
    ls.add_argument("resource", metavar="RESOURCE")
    ls.add_argument("permission", metavar="PERMISSION")
    ls.add_argument("subject_type", metavar="SUBJECT_TYPE")
    for p in (lr, ls):
        p.add_argument("--db", required=True, metavar="PATH", help="SQLite database file")
        p.add_argument("--context", metavar="JSON", help="caveat context, a JSON object")
        p.add_argument("--page-size", type=int, help="return one page of this size")
        p.add_argument("--cursor", help="continue from a previous page")
        p.add_argument("--json", action="store_true", help="print JSON lines")
    lr.set_defaults(func=_cmd_lookup_resources)
    ls.set_defaults(func=_cmd_lookup_subjects)

    labels = sub.add_parser("labels", help="the effective sensitivity labels of an object, with provenance",
                            description="Print the effective label of OBJECT in every classification: level, "
                                        "categories, the lineage paths that bring each value, and the "
                                        "declassifications applied (who, why, when).")
    labels.add_argument("object", metavar="OBJECT", help="e.g. output:o1")
    labels.add_argument("--db", required=True, metavar="PATH", help="SQLite database file")
    labels.add_argument("--json", action="store_true", help="print as JSON")
    labels.set_defaults(func=_cmd_labels)
    for direction, what in (("ancestors", "upstream of"), ("descendants", "derived from")):
        walk = sub.add_parser(direction, help=f"objects {what} an object, through lineage relations",
                              description=f"List the objects {what} OBJECT (breadth first, nearest first), each "
                                          "with its depth and one shortest lineage path.")
        walk.add_argument("object", metavar="OBJECT")
        walk.add_argument("--db", required=True, metavar="PATH", help="SQLite database file")
        walk.add_argument("--max-depth", type=int, help="stop this many lineage edges away")
        walk.add_argument("--limit", type=int, help="print at most this many (with a cursor to continue)")
        walk.add_argument("--cursor", help="continue a previous listing")
        walk.set_defaults(func=_cmd_lineage_walk, direction=direction)

    schema = sub.add_parser("schema", help="write or read the schema of a database file",
                            description="Write a schema file into a database (refused if it would orphan "
                                        "stored relationships) or print the stored one.")
    schema_sub = schema.add_subparsers(title="actions", metavar="ACTION")
    sw = schema_sub.add_parser("write", help="compile FILE and store it as the new schema version",
                               description="Compile FILE and store it as the new schema version.")
    sw.add_argument("file", metavar="FILE")
    sw.add_argument("--db", required=True, metavar="PATH", help="SQLite database file (created if missing)")
    sw.add_argument("--dry-run", action="store_true", help="check only; store nothing")
    sw.set_defaults(func=_cmd_schema_write)
    sr = schema_sub.add_parser("read", help="print the stored schema", description="Print the stored schema.")
    sr.add_argument("--db", required=True, metavar="PATH", help="SQLite database file")
    sr.set_defaults(func=_cmd_schema_read)

    rel = sub.add_parser("relationships", help="write, delete or read relationships in a database file",
                         description="Touch, create or delete relationships given as SpiceDB strings, or read "
                                     "them back.")
    rel_sub = rel.add_subparsers(title="actions", metavar="ACTION")
    for name, helptext in (("touch", "create or replace"), ("create", "create (fail if one exists)"),
                           ("delete", "delete")):
        a = rel_sub.add_parser(name, help=f"{helptext} relationships, atomically",
                               description=f"{helptext.capitalize()} relationships in one atomic write.")
        a.add_argument("relationships", nargs="+", metavar="REL", help="e.g. document:readme#viewer@user:alice; "
                       "'-' reads them from stdin, one per line")
        a.add_argument("--db", required=True, metavar="PATH", help="SQLite database file")
        a.add_argument("--actor", help="who makes the change (kept with the revision)")
        a.add_argument("--reason", help="why (kept with the revision)")
        a.set_defaults(func=_cmd_relationships_write, operation=name)
    rr = rel_sub.add_parser("read", help="print relationships matching a filter",
                            description="Print relationships matching a filter, in key order.")
    rr.add_argument("--db", required=True, metavar="PATH", help="SQLite database file")
    rr.add_argument("--resource-type")
    rr.add_argument("--resource-id")
    rr.add_argument("--relation")
    rr.add_argument("--subject-type")
    rr.add_argument("--subject-id")
    rr.add_argument("--limit", type=int)
    rr.add_argument("--page-size", type=int, metavar="N",
                    help="print one page of at most N relationships; the cursor for the next page goes to stderr")
    rr.add_argument("--cursor", help="continue the listing a previous page's cursor belongs to (same filter)")
    rr.set_defaults(func=_cmd_relationships_read)

    export = sub.add_parser(
        "export", help="write the relationships of a database file, one per line",
        description="Write every relationship (or those of one resource type) at one revision to FILE, one per "
                    "line in SpiceDB's text form and in key order; `headwater import` reads the file back. A "
                    "summary with the revision token goes to stderr.")
    export.add_argument("file", nargs="?", default="-", metavar="FILE", help="output file; '-' (default) is stdout")
    export.add_argument("--db", required=True, metavar="PATH", help="SQLite database file")
    export.add_argument("--resource-type", metavar="TYPE", help="only relationships whose resource has this type")
    export.set_defaults(func=_cmd_export)

    imp = sub.add_parser(
        "import", help="create the relationships of a file, in atomic batches",
        description="Create the relationships in FILE (one per line; blank lines and // comments are skipped) in "
                    "atomic batches, each validated against the schema. A relationship that already exists or "
                    "that the schema refuses stops the import with FILE:LINE and exit 1: its batch writes nothing "
                    "and the earlier batches stay committed. Progress and the rate go to stderr (a progress bar "
                    "on a terminal, else one line per batch).")
    imp.add_argument("file", metavar="FILE", help="relationships file; '-' reads stdin")
    imp.add_argument("--db", required=True, metavar="PATH", help="SQLite database file")
    imp.add_argument("--batch-size", type=int, default=1000, metavar="N",
                     help="relationships per atomic write (default 1000, at most the per-write limit of 1000)")
    imp.add_argument("--actor", help="who makes the change (kept with each batch's revision)")
    imp.add_argument("--reason", help="why (kept with each batch's revision)")
    imp.set_defaults(func=_cmd_import)

    watch = sub.add_parser(
        "watch", help="print the relationship changes after a revision",
        description="Print each relationship change after the revision TOKEN names, oldest first, as "
                    "`TOKEN TOUCH|DELETE RELATIONSHIP`; resume from the last token printed. With --follow, keep "
                    "printing new changes until interrupted (or --timeout). A revision that has left the history "
                    "window is an error naming the oldest revision to resume from.")
    watch.add_argument("--db", required=True, metavar="PATH", help="SQLite database file")
    watch.add_argument("--after", required=True, metavar="TOKEN", help="a revision token, e.g. printed by a write")
    watch.add_argument("--follow", action="store_true", help="keep polling for new changes")
    watch.add_argument("--timeout", type=float, metavar="SECONDS", help="with --follow, stop after this long")
    watch.add_argument("--poll-interval", type=float, default=0.5, metavar="SECONDS",
                       help="with --follow, how long to wait when there is nothing new (default 0.5)")
    watch.set_defaults(func=_cmd_watch)
    _add_audit_commands(sub)

    serve = sub.add_parser(
        "serve", help="run the gRPC server",
        description="Serve the Headwater gRPC API (docs/grpc.md): checks, lookups, expand, relationships, the "
                    "schema, lineage and the audit trail, plus gRPC health checking and server reflection, over an "
                    "embedded SQLite database (created on first start). Every setting is a flag, a HEADWATER_* "
                    "environment variable (e.g. HEADWATER_TOKEN_FILE) or a key of the TOML --config file, in that "
                    "order of precedence. Bearer tokens come from --token-file; running without authentication "
                    "needs --insecure-no-auth. --audit keeps an audit log (the AuditService serves it to tokens "
                    "with the audit scope). SIGTERM or SIGINT drains in-flight calls, writes the audit records "
                    "still queued and closes the database. Logs are JSON lines on stderr, one per call (method, "
                    "status, duration, token name).")
    serve.add_argument("--config", metavar="FILE", help="TOML file of settings (keys named like the flags, with _)")
    serve.add_argument("--address", metavar="HOST:PORT", help="where to listen (default 127.0.0.1:50051; port 0 "
                                                               "picks a free port)")
    serve.add_argument("--workers", type=int, metavar="N", help="threads serving calls (default 16)")
    serve.add_argument("--db", metavar="PATH", help="SQLite database file, created on first start (default "
                                                     "headwater.db; :memory: for a throw-away store)")
    serve.add_argument("--schema", metavar="FILE", help="schema file written at start unless already stored")
    serve.add_argument("--token-file", metavar="FILE", help="TOML file of bearer tokens with names and scopes")
    serve.add_argument("--insecure-no-auth", action="store_true", default=None,
                       help="serve WITHOUT authentication (anyone who can connect can read and write everything)")
    serve.add_argument("--tls-cert", metavar="FILE", help="PEM certificate chain: serve TLS (with --tls-key)")
    serve.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    serve.add_argument("--tls-client-ca", metavar="FILE",
                       help="PEM CA bundle: require client certificates signed by it (mutual TLS)")
    serve.add_argument("--max-updates-per-write", type=int, metavar="N", help="updates in one write (default 1000)")
    serve.add_argument("--max-bulk-check-items", type=int, metavar="N", help="items in one bulk check (default 1000)")
    serve.add_argument("--max-caveat-context-bytes", type=int, metavar="N",
                       help="bytes of caveat context on one relationship or check (default 4096)")
    serve.add_argument("--max-page-size", type=int, metavar="N",
                       help="results per streamed page, and the largest page a request may ask for (default 1000)")
    serve.add_argument("--max-message-bytes", type=int, metavar="N",
                       help="largest request or response message (default 4194304)")
    serve.add_argument("--max-depth", type=int, metavar="N", help="longest dispatch chain in one check (default 50)")
    serve.add_argument("--cache-size", type=int, metavar="N",
                       help="entries in the shared check cache; 0 turns the cache off (default 100000)")
    serve.add_argument("--grace-seconds", type=float, metavar="S",
                       help="how long in-flight calls may finish at shutdown (default 10)")
    serve.add_argument("--watch-poll-seconds", type=float, metavar="S",
                       help="how often Watch looks for new changes (default 0.2)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="default info")
    serve.add_argument("--audit", action=argparse.BooleanOptionalAction, default=None,
                       help="keep an audit log beside the database (<db>.audit; docs/audit.md): every change and "
                            "the decisions --audit-decisions selects, with the caller's token name (default off; "
                            "a database that already has an audit log stays audited)")
    serve.add_argument("--audit-decisions", metavar="POLICY",
                       help="which decisions to record: all (default), denials, sample:RATE (e.g. sample:0.01) "
                            "or off (changes only)")
    serve.add_argument("--audit-durable", action=argparse.BooleanOptionalAction, default=None,
                       help="a check answers only once its audit record is committed and fsynced")
    serve.add_argument("--audit-queue-size", type=int, metavar="N",
                       help="audit records queued at most; a check waits for room beyond it (default 10000)")
    serve.add_argument("--audit-key-file", metavar="FILE",
                       help="file holding the HMAC key that signs the audit log's head and checkpoints "
                            "(never logged)")
    serve.set_defaults(func=_cmd_serve)
    return parser


# Commands that can also work against a running server (`--server ADDR`) instead of a database file.
_REMOTE_COMMANDS = ("expand", "lookup-resources", "lookup-subjects", "labels", "ancestors", "descendants",
                    "relationships touch", "relationships create", "relationships delete", "relationships read")


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    """Give the _REMOTE_COMMANDS `--server ADDR` and `--token`, and make their `--db` optional."""
    def subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}

    for name in _REMOTE_COMMANDS:
        p = parser
        for word in name.split():
            p = subparsers(p)[word]
        for action in p._actions:
            if action.dest == "db":
                action.required = False
                action.help = "SQLite database file (or --server ADDR)"
        if not any(a.dest == "server" for a in p._actions):
            p.add_argument("--server", metavar="ADDR", help="ask a running `headwater serve` instead of a file")
            p.add_argument("--token", help="with --server: the bearer token (default: $HEADWATER_TOKEN)")


def _connect(args: argparse.Namespace):  # -> Engine | Client: both offer the methods the commands use
    """A running server's client for `--server`, else the engine over `--db`."""
    if getattr(args, "server", None):
        import os

        from .client import Client

        return Client(args.server, token=args.token or os.environ.get("HEADWATER_TOKEN") or None)
    if not getattr(args, "db", None):
        raise ValueError("give --db PATH, or --server ADDR to ask a running server")
    return _open_engine(args.db)


@contextlib.contextmanager
def _output(path: str, out: TextIO) -> Iterator[TextIO]:
    """``out`` for ``-``, else the file at ``path`` opened for writing (and closed afterwards)."""
    if path == "-":
        yield out
        return
    with Path(path).open("w", encoding="utf-8") as f:
        yield f


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text(encoding="utf-8")


def _cmd_fmt(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    status = EXIT_OK
    for path in args.files:
        try:
            text = _read(path)
            formatted = format_schema(parse_schema(text, filename=path))
        except (OSError, UnicodeDecodeError) as exc:
            print(f"{path}: cannot read: {exc}", file=err)
            return EXIT_USAGE
        except DslError as exc:
            print(exc.with_source(text, path).render(), file=err)
            return EXIT_USAGE
        if path == "-" and not (args.check or args.diff):
            out.write(formatted)
            continue
        if formatted == text:
            continue
        if args.diff:
            out.writelines(difflib.unified_diff(text.splitlines(True), formatted.splitlines(True),
                                                f"{path} (original)", f"{path} (formatted)"))
        if args.check or args.diff:
            print(f"{path}: would reformat", file=err)
            status = EXIT_PROBLEMS
            continue
        Path(path).write_text(formatted, encoding="utf-8")
        print(f"{path}: formatted", file=err)
    return status


def _cmd_lint(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    status = EXIT_OK
    for path in args.files:
        try:
            text = _read(path)
        except (OSError, UnicodeDecodeError) as exc:
            print(f"{path}: cannot read: {exc}", file=err)
            return EXIT_USAGE
        try:
            schema, warnings = lint_schema(text, filename=path)
        except DslError as exc:
            for e in exc.errors:
                print(e.with_source(text, path).render(), file=out)
            n = len(exc.errors)
            print(f"{path}: {n} error{'s' if n != 1 else ''}", file=out)
            status = EXIT_PROBLEMS
            continue
        for w in warnings:
            print(f"{path}:{w}", file=out)
        if warnings and args.strict:
            status = EXIT_PROBLEMS
        d = schema.describe()
        print(f"{path}: ok ({d['definitions']} definitions, {d['relations']} relations, "
              f"{d['permissions']} permissions, {d['caveats']} caveats"
              + (f", {len(warnings)} warnings" if warnings else "") + ")", file=out)
    return status


def _cmd_validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .validationfile import run_validation_file

    groups = [args.files] if args.together else [[f] for f in args.files]
    reports = [run_validation_file(g, root=args.root) for g in groups]
    if args.json:
        json.dump([{"file": r.path, "ok": r.ok, "load_error": str(r.load_error) if r.load_error else None,
                    "relationships": r.relationships,
                    "assertions": [a.as_dict() for a in r.assertions],
                    "validations": [v.as_dict() for v in r.validations]} for r in reports], out, indent=2)
        out.write("\n")
        return EXIT_OK if all(r.ok for r in reports) else EXIT_PROBLEMS
    status = EXIT_OK
    for r in reports:
        if r.load_error is not None:
            print(f"{r.load_error}", file=out)
            print(f"{r.path}: could not be loaded", file=out)
            status = EXIT_PROBLEMS
            continue
        for a in r.failures:
            where = f"{r.path}:{a.line}"
            if a.error:
                print(f"{where}: {a.kind} {a.text!r}: error: {a.error}", file=out)
            else:
                detail = f" (missing context: {', '.join(a.missing_context)})" if a.missing_context else ""
                print(f"{where}: {a.kind} failed: {a.text} is {a.actual}{detail}, expected {a.expected}", file=out)
        for v in r.validation_failures:
            print(f"{v.path}:{v.line}: {v.message}", file=out)
        passed = len(r.assertions) - len(r.failures)
        validated = (f", {len(r.validations) - len(r.validation_failures)} of {len(r.validations)} validation "
                     "entries passed" if r.validations else "")
        print(f"{r.path}: {passed} of {len(r.assertions)} assertions passed{validated}, {r.relationships} "
              "relationships", file=out)
        if not r.ok:
            status = EXIT_PROBLEMS
    return status


def _open_engine(path: str, *, create: bool = False):  # -> Engine
    from .api import Engine

    if not create and not Path(path).exists():
        raise FileNotFoundError(f"database {path} does not exist (write a schema first: headwater schema write)")
    return Engine.open(path)


def _engine_errors(fn):  # the CLI's single place that turns engine errors into messages + exit 2
    def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
        from .errors import EngineError

        try:
            return fn(args, out, err)
        except (EngineError, DslError, FileNotFoundError, ValueError) as exc:
            text = exc.render() if isinstance(exc, DslError) else str(exc)
            print(f"error: {text}", file=err)
            return EXIT_USAGE
    return run


@_engine_errors
def _cmd_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    context = json.loads(args.context) if args.context else None
    if context is not None and not isinstance(context, dict):
        raise ValueError("--context must be a JSON object")
    if args.server:
        import os

        from .client import Client

        with Client(args.server, token=args.token or os.environ.get("HEADWATER_TOKEN") or None) as client:
            result = client.check(args.resource, args.permission, args.subject, context=context,
                                  explain=args.explain)
    elif args.db:
        with _open_engine(args.db) as engine:
            result = engine.check(args.resource, args.permission, args.subject, context=context,
                                  explain=args.explain)
    else:
        raise ValueError("give --db PATH, or --server ADDR to ask a running server")
    if args.json:
        data = {"permissionship": result.permissionship.name, "missing_context": list(result.missing_context),
                "token": result.token}
        if result.explanation is not None:
            data["explanation"] = {"summary": list(result.explanation.summary),
                                   "tree": result.explanation.tree.render()}
        json.dump(data, out)
        out.write("\n")
    else:
        extra = f" (missing context: {', '.join(result.missing_context)})" if result.missing_context else ""
        print(f"{result.permissionship.name}{extra}  at {result.token}", file=out)
        if result.explanation is not None:
            print(result.explanation.render(), file=out)
    return EXIT_OK if result.allowed else EXIT_PROBLEMS


@_engine_errors
def _cmd_expand(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .expand import format_tree, found_subjects

    context = json.loads(args.context) if args.context else None
    if context is not None and not isinstance(context, dict):
        raise ValueError("--context must be a JSON object")
    with _connect(args) as engine:
        tree, token = engine.expand(args.resource, args.permission, context=context)
    subjects = [(f.validation_string(), "/".join(f"<{r}>" for r in sorted(f.relations)))
                for f in found_subjects(tree)]
    if args.json:
        json.dump({"tree": tree.as_dict(), "token": token,
                   "subjects": [{"subject": s, "relations": r} for s, r in subjects]}, out)
        out.write("\n")
        return EXIT_OK
    print(format_tree(tree), file=out)
    print(f"{len(subjects)} subject{'s' if len(subjects) != 1 else ''} at {token}:", file=out)
    for s, r in subjects:
        print(f"  [{s}] is {r}", file=out)
    return EXIT_OK


@_engine_errors
def _cmd_schema_write(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    text = _read(args.file)
    with _open_engine(args.db, create=True) as engine:
        result = engine.write_schema(text, dry_run=args.dry_run)
    verb = "would store" if args.dry_run else "stored"
    print(f"{verb} schema version {result.version} ({result.digest[:12]}) at {result.token}", file=out)
    return EXIT_OK


@_engine_errors
def _cmd_schema_read(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _open_engine(args.db) as engine:
        stored = engine.store.read_schema()
    if stored is None:
        print("error: no schema has been written yet", file=err)
        return EXIT_PROBLEMS
    out.write(stored.text if stored.text.endswith("\n") else stored.text + "\n")
    return EXIT_OK


@_engine_errors
def _cmd_relationships_write(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    rels = args.relationships
    if rels == ["-"]:
        rels = [ln.strip() for ln in sys.stdin if ln.strip() and not ln.strip().startswith("//")]
    with _connect(args) as engine:
        fn = {"touch": engine.touch, "create": engine.create, "delete": engine.remove}[args.operation]
        result = fn(*rels, actor=args.actor, reason=args.reason)
    print(f"{args.operation}: {len(rels)} relationship{'s' if len(rels) != 1 else ''} at {result.token}", file=out)
    return EXIT_OK


@_engine_errors
def _cmd_relationships_read(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .store import RelationshipFilter

    f = RelationshipFilter(resource_type=args.resource_type, resource_id=args.resource_id, relation=args.relation,
                           subject_type=args.subject_type, subject_id=args.subject_id)
    paged = args.page_size is not None or args.cursor is not None
    if paged and args.limit is not None:
        raise ValueError("give --limit, or --page-size/--cursor, not both")
    next_cursor = None
    with _connect(args) as engine:
        if paged:
            page = engine.read_relationships(f, limit=args.page_size, cursor=args.cursor)
            rels, token, next_cursor = page.relationships, page.token, page.cursor
        else:
            rels, token = engine.read(f, limit=args.limit)
    for r in rels:
        print(r, file=out)
    print(f"{len(rels)} relationship{'s' if len(rels) != 1 else ''} at {token}", file=err)
    if next_cursor is not None:
        print(f"next page: --cursor {next_cursor}", file=err)
    return EXIT_OK


@_engine_errors
def _cmd_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .store import RelationshipFilter

    with _open_engine(args.db) as engine:
        export = engine.export_relationships(RelationshipFilter(resource_type=args.resource_type))
        n = 0
        with _output(args.file, out) as target:
            for page in export.pages():
                target.writelines(f"{r}\n" for r in page)
                n += len(page)
    print(f"exported {n} relationship{'s' if n != 1 else ''} at {export.token}", file=err)
    return EXIT_OK


@_engine_errors
def _cmd_import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .streams import ImportFailedError, ImportProgress

    name = "<stdin>" if args.file == "-" else args.file
    source = getattr(sys.stdin, "buffer", sys.stdin) if args.file == "-" else Path(args.file).open("rb")
    total = None if args.file == "-" else Path(args.file).stat().st_size
    done = [0]  # bytes read so far: how far the bar is
    tty = err.isatty()

    def lines():  # -> Iterator[str], one item per file line so errors name the file line
        for raw in source:
            done[0] += len(raw)
            yield raw.decode("utf-8") if isinstance(raw, bytes) else raw

    def progress(p: ImportProgress) -> None:
        rate = f"{p.relationships:,} relationships, {p.batches} batch{'es' if p.batches != 1 else ''}, {p.rate:,.0f}/s"
        if not tty:
            print(f"batch {p.batches}: {rate}", file=err)
            return
        if total:
            filled = min(30, int(30 * done[0] / total))
            err.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done[0] / total:4.0%}  {rate}")
        else:
            err.write(f"\r{rate}")
        err.flush()

    try:
        with _open_engine(args.db) as engine:
            result = engine.import_relationships(lines(), batch_size=args.batch_size, progress=progress,
                                                 actor=args.actor, reason=args.reason)
    except ImportFailedError as exc:
        if tty:
            err.write("\n")
        print(f"{name}:{exc.line}: {exc}" if exc.line is not None else f"{name}: {exc}", file=err)
        return EXIT_PROBLEMS
    finally:
        if args.file != "-":
            source.close()
    if tty and result.batches:
        err.write("\n")
    print(f"imported {result.count} relationship{'s' if result.count != 1 else ''} in {result.batches} "
          f"batch{'es' if result.batches != 1 else ''} ({result.seconds:.1f}s, {result.rate:,.0f}/s) at "
          f"{result.token}", file=out)
    return EXIT_OK


@_engine_errors
def _cmd_watch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    last, n = args.after, 0
    with _open_engine(args.db) as engine:
        events = (engine.follow(args.after, poll_interval=args.poll_interval, timeout=args.timeout) if args.follow
                  else engine.watch(args.after))
        for event in events:
            print(f"{event.token} {event.operation.name} {event.relationship}", file=out, flush=True)
            last, n = event.token, n + 1
    print(f"{n} change{'s' if n != 1 else ''}; resume with --after {last}", file=err)
    return EXIT_OK


@_engine_errors
def _cmd_labels(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _connect(args) as engine:
        result = engine.effective_labels(args.object)
    if args.json:
        json.dump({"object": str(result.object), "token": result.token, "classifications": [
            {"classification": c.classification, "level": c.level, "categories": list(c.categories),
             "values": [{"value": v.value, "paths": list(v.paths)} for v in c.values],
             "declassified": [{"value": d.value, "actor": d.actor, "reason": d.reason, "token": d.token}
                              for d in c.declassified]} for c in result.classifications]}, out, indent=2)
        out.write("\n")
        return EXIT_OK
    if not result.classifications:
        print(f"{result.object}: no labels (the lowest level of every classification)", file=out)
    for c in result.classifications:
        cats = ", ".join(c.categories) or "none"
        print(f"{result.object}: {c.classification} level {c.level}, categories {cats}", file=out)
        for v in c.values:
            for path in v.paths or ("(no path)",):
                print(f"  {c.classification}:{v.value}  " + ("own label" if path == str(result.object) else
                                                             f"from {path}"), file=out)
        for d in c.declassified:
            print(f"  declassified {c.classification}:{d.value} by {d.actor or '?'} ({d.reason or 'no reason kept'}) "
                  f"at {d.token or 'a collected revision'}", file=out)
    return EXIT_OK


@_engine_errors
def _cmd_lineage_walk(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _connect(args) as engine:
        walk = engine.ancestors if args.direction == "ancestors" else engine.descendants
        page = walk(args.object, max_depth=args.max_depth, limit=args.limit, cursor=args.cursor)
    for item in page.items:
        print(f"{item.depth}  {item.object}  {item.path}", file=out)
    if page.cursor:
        print(f"more: --cursor {page.cursor}", file=err)
    return EXIT_OK


def _context_arg(text: str | None) -> dict | None:
    context = json.loads(text) if text else None
    if context is not None and not isinstance(context, dict):
        raise ValueError("--context must be a JSON object")
    return context


@_engine_errors
def _cmd_lookup_resources(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _connect(args) as engine:
        page = engine.lookup_resources(args.resource_type, args.permission, args.subject,
                                       context=_context_arg(args.context), limit=args.page_size, cursor=args.cursor)
    for r in page.results:
        if args.json:
            out.write(json.dumps({"resource": f"{args.resource_type}:{r.resource_id}",
                                  "permissionship": r.permissionship.name,
                                  "missing_context": list(r.missing_context)}) + "\n")
        else:
            extra = f"  (missing context: {', '.join(r.missing_context)})" if r.missing_context else ""
            print(f"{args.resource_type}:{r.resource_id}  {r.permissionship.name}{extra}", file=out)
    if page.cursor:
        print(f"more: --cursor {page.cursor}", file=err)
    return EXIT_OK


@_engine_errors
def _cmd_lookup_subjects(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    subject_type, _, relation = args.subject_type.partition("#")
    with _connect(args) as engine:
        page = engine.lookup_subjects(args.resource, args.permission, subject_type, relation or None,
                                      context=_context_arg(args.context), limit=args.page_size, cursor=args.cursor)
    for r in page.results:
        excluded = f" - {{{', '.join(str(x) for x in r.excluded)}}}" if r.excluded else ""
        if args.json:
            out.write(json.dumps({"subject": str(r.subject), "excluded": [str(x) for x in r.excluded],
                                  "permissionship": r.permissionship.name,
                                  "missing_context": list(r.missing_context)}) + "\n")
        else:
            extra = f"  (missing context: {', '.join(r.missing_context)})" if r.missing_context else ""
            print(f"{r.subject}{excluded}  {r.permissionship.name}{extra}", file=out)
    if page.cursor:
        print(f"more: --cursor {page.cursor}", file=err)
    return EXIT_OK


def _cmd_serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .errors import EngineError
    from .service.auth import TokenFileError
    from .service.server import ConfigError, load_server_config, serve

    names = ("address", "workers", "db", "schema", "token_file", "insecure_no_auth", "tls_cert", "tls_key",
             "tls_client_ca", "max_updates_per_write", "max_bulk_check_items", "max_caveat_context_bytes",
             "max_page_size", "max_message_bytes", "max_depth", "cache_size", "grace_seconds", "watch_poll_seconds",
             "log_level", "audit", "audit_decisions", "audit_durable", "audit_queue_size", "audit_key_file")
    try:
        config = load_server_config({n: getattr(args, n) for n in names}, config_file=args.config)
        return serve(config)
    except (ConfigError, TokenFileError, EngineError, DslError, OSError) as exc:
        text = exc.render() if isinstance(exc, DslError) else str(exc)
        print(f"error: {text}", file=err)
        return EXIT_USAGE


# --- headwater audit (engine/audit.py, docs/audit.md) ---------------------------------------------


def _add_audit_commands(sub) -> None:  # sub: the top-level subparsers action
    audit = sub.add_parser(
        "audit", help="verify, query, export, replay or prune the audit log of a database file",
        description="The audit log kept beside a database (<database>.audit): every relationship and schema "
                    "change and the recorded decisions, hash-chained so that any edit, insertion, removal, "
                    "reordering or truncation is caught by `verify`. Once a database has an audit log, every "
                    "command that opens the database records into it. The HMAC key, if the log has one, comes "
                    "from the HEADWATER_AUDIT_KEY environment variable.")
    audit.set_defaults(func=lambda args, out, err: (audit.print_help(out), EXIT_USAGE)[1])
    actions = audit.add_subparsers(title="actions", metavar="ACTION")

    def target(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", metavar="PATH", help="SQLite database file; its log is PATH.audit")
        p.add_argument("--audit", metavar="FILE", help="the audit log file, if not PATH.audit")

    def filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--since", type=_time_arg, metavar="TIME", help="records at or after TIME (ISO 8601; UTC "
                                                                        "unless it has an offset)")
        p.add_argument("--until", type=_time_arg, metavar="TIME", help="records before TIME")
        p.add_argument("--kind", choices=["decision", "lookup", "relationships", "schema", "declassification",
                                          "checkpoint"])
        p.add_argument("--subject", metavar="S", help="e.g. user:alice")
        p.add_argument("--resource", metavar="R", help="e.g. document:readme")
        p.add_argument("--permission", metavar="P")
        p.add_argument("--result", choices=["HAS_PERMISSION", "NO_PERMISSION", "CONDITIONAL_PERMISSION"])
        p.add_argument("--caller", metavar="NAME", help="who asked (e.g. a gRPC token's name)")
        p.add_argument("--actor", metavar="SUBJECT", help="who made a change")
        p.add_argument("--revision", type=int, metavar="N", help="records at revision N")
        p.add_argument("--min-revision", type=int, metavar="N")
        p.add_argument("--max-revision", type=int, metavar="N")

    init = actions.add_parser("init", help="start an audit log for a database",
                              description="Create the audit log of a database; from then on every command that "
                                          "opens the database records its changes and decisions in it.")
    target(init)
    init.set_defaults(func=_cmd_audit_init)
    verify = actions.add_parser("verify", help="walk the hash chain; exit 1 naming the first bad record",
                                description="Walk the whole chain and the head. Prints `ok: ...` (exit 0), or the "
                                            "first record that was altered, inserted, removed or reordered, or "
                                            "where the tail was truncated (exit 1).")
    target(verify)
    verify.set_defaults(func=_cmd_audit_verify)
    query = actions.add_parser("query", help="print records matching filters, a page at a time",
                               description="Print the records matching every filter given, oldest first, one per "
                                           "line (or JSON Lines with --json); the cursor for the next page goes "
                                           "to stderr.")
    target(query)
    filters(query)
    query.add_argument("--limit", type=int, default=100, metavar="N", help="records per page (default 100)")
    query.add_argument("--cursor", help="continue a previous page (same filters)")
    query.add_argument("--newest-first", action="store_true", help="newest records first")
    query.add_argument("--json", action="store_true", help="print each record as a JSON line")
    query.set_defaults(func=_cmd_audit_query)
    export = actions.add_parser("export", help="write matching records as JSON Lines (for a SIEM)",
                                description="Write every record matching the filters to FILE as JSON Lines: each "
                                            "record's fields plus `hash` and `prev_hash`, oldest first.")
    export.add_argument("file", nargs="?", default="-", metavar="FILE", help="output file; '-' (default) is stdout")
    target(export)
    filters(export)
    export.set_defaults(func=_cmd_audit_export)
    replay = actions.add_parser("replay", help="evaluate a recorded decision again, with the full explanation",
                                description="Evaluate the decision of record RECORD_ID again at its recorded "
                                            "revision, print both answers and the full explanation. Exit 0 when "
                                            "the answer is the same, 1 when it differs or the revision has left "
                                            "the history window.")
    replay.add_argument("record_id", type=int, metavar="RECORD_ID")
    target(replay)
    replay.add_argument("--context", metavar="JSON", help="the request's caveat context (the log keeps its hash)")
    replay.add_argument("--json", action="store_true", help="print the result as JSON")
    replay.set_defaults(func=_cmd_audit_replay)
    prune = actions.add_parser("prune", help="delete records older than a time, leaving a signed checkpoint",
                               description="Verify and delete the records older than --before; a checkpoint "
                                           "record (signed with HEADWATER_AUDIT_KEY if set) stands for them, so "
                                           "the rest still verifies.")
    target(prune)
    prune.add_argument("--before", type=_time_arg, required=True, metavar="TIME")
    prune.set_defaults(func=_cmd_audit_prune)


def _time_arg(text: str):  # -> datetime
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _audit_file(args: argparse.Namespace) -> Path:
    from .audit import audit_path_for

    if args.audit:
        return Path(args.audit)
    if not args.db:
        raise ValueError("give --db PATH (its log is PATH.audit) or --audit FILE")
    return audit_path_for(args.db)


def _open_audit(args: argparse.Namespace, *, create: bool = False):  # -> AuditLog
    import os

    from .audit import AuditLog

    path = _audit_file(args)
    if not create and not path.exists():
        raise FileNotFoundError(f"no audit log at {path} (start one with: headwater audit init --db DATABASE)")
    return AuditLog(path, create=create, key=os.environ.get("HEADWATER_AUDIT_KEY") or None)


def _audit_filters(args: argparse.Namespace) -> dict:
    names = ("since", "until", "kind", "subject", "resource", "permission", "result", "caller", "actor", "revision",
             "min_revision", "max_revision")
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


@_engine_errors
def _cmd_audit_init(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    path = _audit_file(args)
    existed = path.exists()
    with _open_audit(args, create=True) as log:
        count, _ = log.head()
    print(f"{path}: {'already an audit log' if existed else 'audit log started'} ({count} records)", file=out)
    return EXIT_OK


@_engine_errors
def _cmd_audit_verify(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _open_audit(args) as log:
        result = log.verify()
    print(result, file=out)
    return EXIT_OK if result.ok else EXIT_PROBLEMS


@_engine_errors
def _cmd_audit_query(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _open_audit(args) as log:
        page = log.query(limit=args.limit, cursor=args.cursor, newest_first=args.newest_first,
                         **_audit_filters(args))
    for record in page.records:
        print(record.to_json() if args.json else record.describe(), file=out)
    n = len(page.records)
    print(f"{n} record{'s' if n != 1 else ''}", file=err)
    if page.cursor:
        print(f"more: --cursor {page.cursor}", file=err)
    return EXIT_OK


@_engine_errors
def _cmd_audit_export(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _open_audit(args) as log:
        with _output(args.file, out) as target:
            n = log.export(target, **_audit_filters(args))
    print(f"exported {n} record{'s' if n != 1 else ''}", file=err)
    return EXIT_OK


@_engine_errors
def _cmd_audit_replay(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import os

    from .api import Engine
    from .config import Config

    if not args.db:
        raise ValueError("replay needs --db PATH (the database the decision was made against)")
    path = _audit_file(args)
    if not path.exists():
        raise FileNotFoundError(f"no audit log at {path}")
    if not Path(args.db).exists():
        raise FileNotFoundError(f"database {args.db} does not exist")
    context = _context_arg(args.context)
    config = Config(audit=True, audit_path=str(path), audit_key=os.environ.get("HEADWATER_AUDIT_KEY") or None)
    with Engine.open(args.db, config=config) as engine:
        replayed = engine.replay(args.record_id, context=context)
    record, result = replayed.record, replayed.result
    if args.json:
        json.dump({"record": record.body, "available": replayed.available, "same": replayed.same,
                   "permissionship": result.permissionship.name if result else None,
                   "missing_context": list(result.missing_context) if result else None,
                   "explanation": ({"summary": list(result.explanation.summary),
                                    "tree": result.explanation.tree.render()}
                                   if result and result.explanation else None),
                   "message": replayed.message}, out)
        out.write("\n")
    else:
        print(f"record #{record.id} at {record['time']}: {record.resource}#{record.permission}@{record.subject} "
              f"was {record.result} at revision {record.revision}", file=out)
        print(replayed.message, file=out)
        if result is not None and result.explanation is not None:
            print(result.explanation.render(), file=out)
    return EXIT_OK if replayed.same else EXIT_PROBLEMS


@_engine_errors
def _cmd_audit_prune(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    with _open_audit(args) as log:
        checkpoint = log.prune(args.before)
    if checkpoint is None:
        print("nothing to prune", file=out)
    else:
        print(f"pruned {checkpoint['pruned_now']} records; checkpoint #{checkpoint.id} ({checkpoint['signed']}) "
              "stands for them", file=out)
    return EXIT_OK
