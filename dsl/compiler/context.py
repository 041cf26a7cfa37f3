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
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import ast
from ..ast import Span
from ..errors import DslError, SchemaError

__all__ = ["Compilation", "LintWarning"]


@dataclass(frozen=True, slots=True)
class LintWarning:
    """A legal but suspicious construct (``headwater lint`` prints these)."""

    message: str
    span: Span

    def __str__(self) -> str:
        return f"{self.span.line}:{self.span.column}: warning: {self.message}"


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

    def warn(self, message: str, span: Span) -> None:
        """Record a warning (legal but suspicious) at ``span``."""
        self.warnings.append(LintWarning(message, span))

    def has_member(self, type_name: str, name: str) -> bool:
        """Whether definition ``type_name`` declares a relation or permission ``name``."""
        d = self.defs.get(type_name)
        return d is not None and any(m.name == name for m in d.members)
