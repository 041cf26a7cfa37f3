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
import difflib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ..dsl import DslError, format_schema, lint_schema, parse_schema

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2


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
        "validate", help="run SpiceDB validation files (schema + relationships + assertions)",
        description="Load each validation file into a fresh in-memory engine and check its assertTrue, "
                    "assertFalse and assertCaveated assertions. Failures name the file and line. Exit 1 on any "
                    "failure or load error.")
    validate.add_argument("files", nargs="+", metavar="FILE", help="validation files (.yaml)")
    validate.add_argument("--json", action="store_true", help="print every assertion, expected and actual, as JSON")
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
    check.add_argument("--db", required=True, metavar="PATH", help="SQLite database file")
    check.add_argument("--context", metavar="JSON", help="caveat context, a JSON object")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(func=_cmd_check)

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
    rr.set_defaults(func=_cmd_relationships_read)
    return parser


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
                    "assertions": [a.as_dict() for a in r.assertions]} for r in reports], out, indent=2)
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
        passed = len(r.assertions) - len(r.failures)
        note = (f"; {r.validation_entries} `validation:` entries not checked yet (they need Expand)"
                if r.validation_entries else "")
        print(f"{r.path}: {passed} of {len(r.assertions)} assertions passed, {r.relationships} relationships{note}",
              file=out)
        if r.failures:
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
    with _open_engine(args.db) as engine:
        result = engine.check(args.resource, args.permission, args.subject, context=context)
    if args.json:
        json.dump({"permissionship": result.permissionship.name, "missing_context": list(result.missing_context),
                   "token": result.token}, out)
        out.write("\n")
    else:
        extra = f" (missing context: {', '.join(result.missing_context)})" if result.missing_context else ""
        print(f"{result.permissionship.name}{extra}  at {result.token}", file=out)
    return EXIT_OK if result.allowed else EXIT_PROBLEMS


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
    with _open_engine(args.db) as engine:
        fn = {"touch": engine.touch, "create": engine.create, "delete": engine.remove}[args.operation]
        result = fn(*rels, actor=args.actor, reason=args.reason)
    print(f"{args.operation}: {len(rels)} relationship{'s' if len(rels) != 1 else ''} at {result.token}", file=out)
    return EXIT_OK


@_engine_errors
def _cmd_relationships_read(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from .store import RelationshipFilter

    f = RelationshipFilter(resource_type=args.resource_type, resource_id=args.resource_id, relation=args.relation,
                           subject_type=args.subject_type, subject_id=args.subject_id)
    with _open_engine(args.db) as engine:
        rels, token = engine.read(f, limit=args.limit)
    for r in rels:
        print(r, file=out)
    print(f"{len(rels)} relationship{'s' if len(rels) != 1 else ''} at {token}", file=err)
    return EXIT_OK
