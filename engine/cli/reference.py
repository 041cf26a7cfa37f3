"""The CLI reference (docs/cli.md), generated from the command table: every command, its usage and options.

``tests/cli/test_reference.py`` fails when docs/cli.md is stale; regenerate it with::

    $ python -m headwater.engine.cli.reference > docs/cli.md

Example::

    >>> from headwater.engine.cli.reference import render
    >>> "## headwater check" in render()
    True
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .table import Arg, Command, Group

HEADER = """# Command line reference

<!-- Generated from the command table by `python -m headwater.engine.cli.reference > docs/cli.md`;
     tests/cli/test_reference.py fails when this file is stale. Do not edit by hand. -->

Every command of `headwater`, with its usage and options. Exit codes: 0 success, 1 the command ran and
found problems (a denial, a failing assertion, an unformatted file, a refused dry run), 2 the command
could not run (bad usage, unreadable file, an engine or server error, message on stderr).

Commands that work on data take `--db DB` (a SQLite file or a `postgresql://` URI; default
`$HEADWATER_DB`) or ask a running server: `--server ADDR` with `--token` (default `$HEADWATER_TOKEN`),
`--tls`, `--tls-ca`, `--tls-cert`, `--tls-key`; or a saved context (`headwater context`): with neither
`--db` nor `--server`, the current context's server, or `--profile NAME`'s (`$HEADWATER_CONTEXT`).
The flag is `--profile`, not `--context`, because `--context` is the caveat-context JSON of `check` and
the lookups. `fmt`, `lint`, `validate`, `completion`, `token`, `context`, `migrate` and `serve` are local.

Which target a command uses, first match wins: `--server`; `--profile NAME`; `--db`; `$HEADWATER_DB`;
`$HEADWATER_CONTEXT`; the current context. The token: `--token`, else the context's, else
`$HEADWATER_TOKEN`. Contexts live in `$HEADWATER_CONFIG_DIR/contexts.toml` (default
`$XDG_CONFIG_HOME/headwater`, else `~/.config/headwater`), a file only its owner can read (0600); a
context's token goes to the system keyring instead when the `keyring` package is installed with a
usable backend (`HEADWATER_KEYRING=0` or `context set --no-keyring` keeps it in the file).

`--json` prints one JSON document, or JSON Lines (one object a line) for commands that list (lookups,
`relationships read`, `export`, `watch`, `ancestors`, `descendants`, `check-bulk`, `audit query`); the
keys of each are listed with its `--json` option and stay stable.

Shell completion: `headwater completion bash|zsh|fish` prints a script generated from the parser
(shtab), so it always knows every command and option.
"""


def _value(a: Arg) -> str:
    """How an argument's value is written: ``DB``, ``{bash,zsh}``, or nothing for a flag."""
    o = a.options
    if o.get("action") in ("store_true", "store_false", "help") or "BooleanOptionalAction" in str(o.get("action")):
        return ""
    name = o.get("metavar") or ("{" + ",".join(o["choices"]) + "}" if o.get("choices") else a.dest.upper())
    nargs = o.get("nargs")
    return {"?": f"[{name}]", "+": f"{name} [{name} ...]", "*": f"[{name} ...]"}.get(nargs, name)


def _usage(c: Command) -> str:
    words = ["headwater", c.name]
    for a in c.args:
        if not a.names[0].startswith("-"):
            words.append(_value(a))
        elif a.options.get("required"):
            words.append(f"{a.names[0]} {_value(a)}".strip())
    if any(a.names[0].startswith("-") and not a.options.get("required") for a in c.args):
        words.append("[options]")
    return " ".join(words)


def _row(a: Arg) -> str:
    value = _value(a)
    names = ", ".join(f"{n} {value}".strip() if n.startswith("-") else value for n in a.names)
    if "BooleanOptionalAction" in str(a.options.get("action")):
        names = ", ".join(f"{n}, --no-{n[2:]}" for n in a.names)
    text = str(a.options.get("help") or "").replace("|", "\\|").replace("\n", " ")
    if a.options.get("required") and a.names[0].startswith("-"):
        text = f"required; {text}" if text else "required"
    return f"| `{names}` | {text} |"


def render(table: Sequence[Command | Group] | None = None) -> str:
    """The markdown of docs/cli.md for ``table`` (default: every command of ``headwater``)."""
    if table is None:
        from . import TABLE  # the whole table: imported here, as the table includes this module

        table = TABLE
    parts = [HEADER, "## Commands\n", *(f"- [`headwater {e.name}`](#{_anchor(e.name)}): {e.help}" for e in table), ""]
    for e in table:
        parts.append(f"## headwater {e.name}\n\n{e.description}\n")
        if isinstance(e, Group):
            actions = [c for c in table if c.name.startswith(e.name + " ")]
            parts.extend([*(f"- `headwater {c.name}`: {c.help}" for c in actions), ""])
            continue
        parts.append(f"```text\n{_usage(e)}\n```\n")
        if e.args:
            parts.extend(["| Argument | Meaning |", "|---|---|", *(_row(a) for a in e.args), ""])
    return "\n".join(parts).rstrip("\n") + "\n"


def _anchor(name: str) -> str:
    """GitHub's anchor of the heading ``headwater NAME``."""
    return "headwater-" + name.replace(" ", "-")


if __name__ == "__main__":
    sys.stdout.write(render())
