"""Errors raised for schema text and caveats: each names the problem and, for schema text, its line and column.

::

    DslError ─┬ DslSyntaxError                 text that does not parse
              ├ SchemaError ─┬ UnknownTypeError, UnknownRelationError, UnknownCaveatError
              │              ├ DuplicateNameError, DuplicateAllowedTypeError
              │              ├ PermissionCycleError, InvalidArrowError, WildcardError
              │              ├ InvalidNameError, UseFlagError, CaveatError
              │              ├ TypeAnnotationError
              │              └ SchemaImportError, PartialError   composable schemas (dsl/composable.py)
              ├ SchemaLimitError               a schema over a limit of dsl/limits.py (size, count, nesting)
              ├ CelError                       a caveat expression that does not compile (position within it)
              ├ CaveatContextError             a context value that does not fit its caveat parameter
              └ CelEvaluationError             a runtime error evaluating a caveat whose parameters are all bound

A compile can find several problems at once: the error raised is the first one
(by position) and carries all of them in ``errors``. Calling a function with
arguments of the wrong kind (a non-``str`` schema, an unknown caveat parameter
type given to ``compile_caveat``) raises ``TypeError`` or ``ValueError``, as
Python does, not a ``DslError``.

Example::

    >>> from headwater.dsl import compile_schema, DslError
    >>> try:
    ...     compile_schema("definition doc {\\n  relation viewer: usr\\n}")
    ... except DslError as e:
    ...     print(e.line, e.column, e.message)
    2 20 unknown definition `usr` (allowed type of relation `viewer` in `doc`)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .ast import NO_SPAN, Span

if TYPE_CHECKING:
    from .cel import CelType


class DslError(Exception):
    """A problem in schema text or a caveat, with its position and the offending line where there is one."""

    def __init__(self, message: str, span: Span = NO_SPAN, source: str = "", filename: str | None = None) -> None:
        self.message = message
        self.span = span
        self.source = source
        self.filename = filename
        self.errors: tuple[DslError, ...] = (self,)
        super().__init__(self.render())

    @property
    def line(self) -> int:
        """The 1-based line of the problem; 0 when it has no position."""
        return self.span.line

    @property
    def column(self) -> int:
        """The 1-based column of the problem; 0 when it has no position."""
        return self.span.column

    def with_source(self, source: str, filename: str | None = None) -> DslError:
        """Attach the source text (and file name) so that ``render`` can show the line."""
        self.source = source
        self.filename = filename if filename is not None else self.filename
        self.args = (self.render(),)
        return self

    def render(self) -> str:
        """``file:line:col: message``, then the offending line and a caret under the problem."""
        where = f"{self.line}:{self.column}" if self.span.line else ""
        prefix = ":".join(p for p in (self.filename or "", where) if p)
        head = f"{prefix}: {self.message}" if prefix else self.message
        if not self.source or not self.span.line:
            return head
        lines = self.source.splitlines()
        if not 0 < self.span.line <= len(lines):
            return head
        text = lines[self.span.line - 1].replace("\t", " ")
        width = 1
        if self.span.end_line == self.span.line and self.span.end_column > self.span.column:
            width = self.span.end_column - self.span.column
        gutter = f"{self.span.line:>5} | "
        caret = " " * (len(gutter) - 2) + "| " + " " * (self.span.column - 1) + "^" * width
        return f"{head}\n{gutter}{text}\n{caret}"

    def __str__(self) -> str:
        return self.render()


class DslSyntaxError(DslError):
    """The text does not follow the grammar."""


class SchemaError(DslError):
    """The text parses but does not describe a valid schema."""


class UnknownTypeError(SchemaError):
    """A definition (or caveat parameter type) that does not exist."""


class UnknownRelationError(SchemaError):
    """A relation or permission that does not exist on the definition named."""


class UnknownCaveatError(SchemaError):
    """A caveat that is not declared."""


class DuplicateNameError(SchemaError):
    """Two definitions, caveats, members or parameters with the same name."""


class DuplicateAllowedTypeError(SchemaError):
    """The same allowed subject type listed twice on one relation."""


class PermissionCycleError(SchemaError):
    """Permissions that are aliases of each other in a cycle."""


class InvalidArrowError(SchemaError):
    """An arrow over a permission, a chained arrow, or an arrow over a wildcard relation."""


class WildcardError(SchemaError):
    """A subject set that can hold a wildcard."""


class InvalidNameError(SchemaError):
    """A name that breaks SpiceDB's naming rules or is a reserved word."""


class UseFlagError(SchemaError):
    """An unknown ``use`` flag, one placed after a definition, or a construct used without its flag."""


class CaveatError(SchemaError):
    """A caveat with an invalid parameter type, an unused parameter or an invalid CEL expression."""


class TypeAnnotationError(SchemaError):
    """A permission whose type annotation does not cover what it can produce (``use typechecking``)."""


class SchemaImportError(SchemaError):
    """An ``import`` that cannot be followed: no files to read (schema text), a missing file, a path outside the
    root file's folder, or an import cycle."""


class PartialError(SchemaError):
    """A ``...name`` that names no partial, or partials that splice each other in a cycle."""


class SchemaLimitError(DslError):
    """A schema beyond one of its limits (``SchemaLimits``): too many bytes, definitions or members, or an
    expression nested too deeply; the position is where the limit is crossed."""


class CelError(DslError):
    """A caveat expression that does not compile: a syntax error, an unknown name or a type error.

    ``line`` and ``column`` are 1-based and relative to the expression text;
    ``str()`` is ``line:column: message``.
    """

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message, Span(0, 0, line, column, line, column))


class CaveatContextError(DslError):
    """A context value that does not fit the declared type of its caveat parameter, or names no parameter."""

    caveat: str
    parameter: str
    expected: CelType

    def __init__(self, caveat: str, parameter: str, expected: CelType, detail: str, *,
                 message: str | None = None) -> None:
        super().__init__(message or f"invalid value for parameter `{parameter}` of caveat `{caveat}`: "
                                    f"expected {expected}: {detail}")
        self.caveat = caveat
        self.parameter = parameter
        self.expected = expected


class CelEvaluationError(DslError):
    """A runtime error (division by zero, overflow, bad CIDR...) while evaluating a fully-bound caveat."""

    caveat: str

    def __init__(self, caveat: str, detail: str) -> None:
        super().__init__(f"error evaluating caveat `{caveat}`: {detail}")
        self.caveat = caveat
