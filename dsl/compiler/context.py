"""What one compile knows as it goes: the document, its flags and top-level names, and the problems found.

Every step of the compiler (``names``, ``members``, ``expressions``, ``graph``)
reads and extends one ``Compilation``; the driver in ``__init__`` sorts the
problems by position at the end.

Example::

    >>> from headwater.dsl import parse_schema
    >>> c = Compilation(parse_schema("definition user {}"))
    >>> c.error(SchemaError, "an example problem", ast.NO_SPAN)
    >>> [e.message for e in c.errors]
    ['an example problem']
    >>> c.warn("an example warning", ast.NO_SPAN, name="example")
    >>> str(c.warnings[0])
    '0:0: warning: an example warning (example)'
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import ast
from ..ast import Span
from ..errors import DslError, SchemaError

__all__ = ["Compilation", "IGNORE_WARNING", "LintWarning"]

#: A comment above a relation or permission that reads ``// spicedb-ignore-warning: <name>`` turns off the
#: warning ``<name>`` there, as in SpiceDB (``pkg/development/warnings.go``, ``shouldSkipCheck``).
IGNORE_WARNING = "// spicedb-ignore-warning: "


@dataclass(frozen=True, slots=True)
class LintWarning:
    """A legal but suspicious construct (``headwater lint`` prints these); ``name`` is what a
    ``// spicedb-ignore-warning: <name>`` comment names to turn it off."""

    message: str
    span: Span
    name: str = ""

    def __str__(self) -> str:
        suffix = f" ({self.name})" if self.name else ""
        return f"{self.span.line}:{self.span.column}: warning: {self.message}{suffix}"


class Compilation:
    """The state one compile shares between its steps: flags, names by kind, errors and warnings so far."""

    __slots__ = ("caveats", "classes", "defs", "doc", "errors", "flags", "warnings")

    def __init__(self, doc: ast.Document) -> None:
        self.doc = doc
        self.errors: list[DslError] = []
        self.warnings: list[LintWarning] = []
        self.flags: set[str] = set()
        self.defs: dict[str, ast.Definition] = {}
        self.caveats: dict[str, ast.Caveat] = {}
        self.classes: dict[str, ast.Classification] = {}

    def error(self, cls: type[SchemaError], message: str, span: Span) -> None:
        """Record a problem of kind ``cls`` at ``span``; compiling goes on to find the others."""
        self.errors.append(cls(message, span))

    def warn(self, message: str, span: Span, *, name: str = "", member: ast.Member | None = None) -> None:
        """Record warning ``name`` (legal but suspicious) at ``span``, unless a comment above ``member``
        turns it off (``// spicedb-ignore-warning: name``)."""
        if name and member is not None and any(cm.text == IGNORE_WARNING + name for cm in member.comments):
            return
        self.warnings.append(LintWarning(message, span, name))

    def has_member(self, type_name: str, name: str) -> bool:
        """Whether definition ``type_name`` declares a relation or permission ``name``."""
        d = self.defs.get(type_name)
        return d is not None and any(m.name == name for m in d.members)
