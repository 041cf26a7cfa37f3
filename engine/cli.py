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
