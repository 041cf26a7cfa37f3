"""The command table: what a command is (``Arg``, ``Command``, ``Group``) and how argparse is built from a table.

Each command is declared once, as data, beside the function that runs it (one module per command
group); ``build_parser`` turns the whole table into the ``argparse`` parser. Shared option groups
(``shared.DB``, ``shared.SERVER``, ...) are ``Arg`` values reused by many entries.

Example::

    >>> table = [Command("hello", help="greet someone", description="Print a greeting.",
    ...                  args=(arg("name", metavar="NAME"),), run=lambda args, out, err: EXIT_OK)]
    >>> build_parser("demo", "A demo.", table).parse_args(["hello", "ann"]).name
    'ann'
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

EXIT_OK = 0
EXIT_PROBLEMS = 1  # the command ran and found problems (unformatted file, failing assertion, a denial)
EXIT_USAGE = 2  # the command could not run (bad usage, unreadable file, an engine error)

Run = Callable[[argparse.Namespace, TextIO, TextIO], int]  # (parsed arguments, stdout, stderr) -> exit code


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of a command: the names and keyword arguments of ``ArgumentParser.add_argument``."""

    names: tuple[str, ...]  # ("--db",) or ("resource",)
    options: Mapping[str, Any]  # metavar, help, type, action, default, ...

    @property
    def dest(self) -> str:
        """The attribute of the parsed arguments that holds this argument (as argparse names it)."""
        if "dest" in self.options:
            return str(self.options["dest"])
        name = next((n for n in self.names if n.startswith("--")), self.names[0])
        return name.lstrip("-").replace("-", "_")


def arg(*names: str, **options: Any) -> Arg:
    """An ``Arg``, written like ``add_argument``: ``arg("--db", metavar="PATH", help="...")``."""
    return Arg(names, options)


@dataclass(frozen=True, slots=True)
class Command:
    """One command: the words that select it, its help, its arguments and the function that runs it."""

    name: str  # "check", or "schema write" for an action of a group
    help: str  # its line in the parent's list of commands
    description: str  # the top of `headwater NAME --help`
    args: tuple[Arg, ...]  # in the order --help lists them
    run: Run
    defaults: Mapping[str, Any] = field(default_factory=dict)  # more attributes run() reads, e.g. operation


@dataclass(frozen=True, slots=True)
class Group:
    """A command whose actions are commands of their own (``schema`` holds ``schema write``, ``schema read``)."""

    name: str
    help: str
    description: str
    help_when_bare: bool = False  # `headwater NAME` alone prints this group's help (else the top-level help)


def build_parser(prog: str, description: str, table: Sequence[Command | Group]) -> argparse.ArgumentParser:
    """The argparse parser of ``table``; a group comes before its actions, and --help lists them in table order."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.set_defaults(cli_parser=parser)  # what `completion` generates its script from
    subparsers = {(): parser.add_subparsers(title="commands", metavar="COMMAND")}
    for entry in table:
        *parent, word = entry.name.split()
        p = subparsers[tuple(parent)].add_parser(word, help=entry.help, description=entry.description)
        if isinstance(entry, Group):
            if entry.help_when_bare:
                p.set_defaults(func=_help_printer(p))
            subparsers[tuple(entry.name.split())] = p.add_subparsers(title="actions", metavar="ACTION")
            continue
        for a in entry.args:
            p.add_argument(*a.names, **a.options)
        p.set_defaults(func=entry.run, **entry.defaults)
    return parser


def _help_printer(parser: argparse.ArgumentParser) -> Run:
    def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
        parser.print_help(out)
        return EXIT_USAGE
    return run
