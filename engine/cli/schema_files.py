"""``headwater fmt``, ``lint`` and ``validate``: schema and validation files on disk, no database.

Example::

    $ headwater validate policy.zed
    policy.zed: ok (3 definitions, 4 relations, 2 permissions, 0 caveats)
"""

from __future__ import annotations

import argparse
import difflib
import io
from pathlib import Path
from typing import Any, TextIO

from ...dsl import DslError, format_schema, lint_schema, parse_schema, read_schema_files
from ..validationfile import ValidationReport, run_validation_file
from .shared import print_json, read_input
from .table import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, Command, arg


def _cmd_fmt(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    status = EXIT_OK
    for path in args.files:
        try:
            text = read_input(path)
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
    status, reports = EXIT_OK, []
    for path in args.files:
        code = _lint_file(path, args.strict, out, err, reports if getattr(args, "json", False) else None)
        if code == EXIT_USAGE:
            return code
        status = max(status, code)
    if reports:
        print_json(reports, out, indent=2)
    return status


def _lint_file(path: str, strict: bool, out: TextIO, err: TextIO, reports: list[dict[str, Any]] | None) -> int:
    """Lint one schema file: its errors and warnings, then the summary line (or, given ``reports``, a JSON report
    appended to it instead); the exit code for it."""
    if reports is not None:
        text = io.StringIO()
        code = _lint_file(path, strict, text, err, None)
        lines = text.getvalue().splitlines()
        if code != EXIT_USAGE:
            reports.append({"file": path, "ok": code == EXIT_OK, "summary": lines[-1], "messages": lines[:-1]})
        return code
    try:
        if path == "-":  # text alone: partials are fine, imports need files
            schema, found = lint_schema(read_input(path), filename=path)
            warnings = [(path, w) for w in found]
        else:  # the file and every file it imports (composable schemas), each error in its own file
            schema, warnings = read_schema_files(path).lint()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{path}: cannot read: {exc}", file=err)
        return EXIT_USAGE
    except DslError as exc:
        for e in exc.errors:
            print(e.render(), file=out)
        n = len(exc.errors)
        print(f"{path}: {n} error{'s' if n != 1 else ''}", file=out)
        return EXIT_PROBLEMS
    for file, w in warnings:
        print(f"{file}:{w}", file=out)
    d = schema.describe()
    print(f"{path}: ok ({d['definitions']} definitions, {d['relations']} relations, "
          f"{d['permissions']} permissions, {d['caveats']} caveats"
          + (f", {len(warnings)} warnings" if warnings else "") + ")", file=out)
    return EXIT_PROBLEMS if warnings and strict else EXIT_OK


def _cmd_validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    schemas = [f for f in args.files if f.endswith(".zed")]
    if schemas:  # a bare schema file: lint and compile it, like `zed validate schema.zed`
        if args.together or len(schemas) != len(args.files):
            print("error: give either schema files (.zed) or validation files, without --together for schema "
                  "files", file=err)
            return EXIT_USAGE
        return _cmd_lint(argparse.Namespace(files=schemas, strict=False, json=args.json), out, err)
    groups = [args.files] if args.together else [[f] for f in args.files]
    reports = [run_validation_file(g, root=args.root) for g in groups]
    if args.json:
        print_json([{"file": r.path, "ok": r.ok, "load_error": str(r.load_error) if r.load_error else None,
                     "relationships": r.relationships,
                     "assertions": [a.as_dict() for a in r.assertions],
                     "validations": [v.as_dict() for v in r.validations]} for r in reports], out, indent=2)
        return EXIT_OK if all(r.ok for r in reports) else EXIT_PROBLEMS
    status = EXIT_OK
    for r in reports:
        _print_report(r, out)
        if not r.ok:
            status = EXIT_PROBLEMS
    return status


def _print_report(r: ValidationReport, out: TextIO) -> None:
    if r.load_error is not None:
        print(f"{r.load_error}", file=out)
        print(f"{r.path}: could not be loaded", file=out)
        return
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


COMMANDS = (
    Command(
        "fmt", help="format schema files in canonical style",
        description="Rewrite schema files in canonical style (comments are kept). Each file is formatted as "
                    "written: a composable schema keeps its `import` lines and partials. Local: files on disk, no "
                    "database or server.",
        args=(arg("files", nargs="+", metavar="FILE", help="schema files (.zed); '-' reads stdin, writes stdout"),
              arg("--check", action="store_true", help="do not write; exit 1 if any file is not formatted"),
              arg("--diff", action="store_true", help="do not write; print a unified diff of the changes")),
        run=_cmd_fmt),
    Command(
        "lint", help="check schema files and report every problem",
        description="Compile schema files and print every error (with file, line, column and the offending line) "
                    "and warning. A file that imports others (composable schemas) is compiled with them. Local: files "
                    "on disk, no database or server.",
        args=(arg("files", nargs="+", metavar="FILE", help="schema files (.zed); '-' reads stdin"),
              arg("--strict", action="store_true", help="treat warnings as errors"),
              arg("--json", action="store_true", help="print one report a file as JSON: file, ok, summary (the "
                                                       "line printed without --json), messages (errors, warnings)")),
        run=_cmd_lint),
    Command(
        "validate", help="run SpiceDB validation files (schema + relationships + assertions + validation)",
        description="Load each validation file into a fresh in-memory engine, check its assertTrue, "
                    "assertFalse and assertCaveated assertions, and compare each `validation:` block with the "
                    "subjects Expand finds. Failures name the file and line, with expected and actual. Exit 1 on "
                    "any failure or load error. A schema file (.zed) is linted and compiled instead, printing what "
                    "`headwater lint` prints (exit 1 on errors). Local: files on disk, no database or server.",
        args=(arg("files", nargs="+", metavar="FILE", help="validation files (.yaml), or schema files (.zed)"),
              arg("--json", action="store_true",
                  help="print every assertion and validation entry, expected and actual, as JSON"),
              arg("--together", action="store_true",
                  help="load all files into one engine, in order (e.g. a schema file, then data files)"),
              arg("--root", metavar="DIR",
                  help="folder a `schemaFile` must stay inside (default: the current directory if the file is "
                       "under it, else the file's folder)")),
        run=_cmd_validate),
)
