"""How big a schema may be: its size in bytes, definitions, members per definition and expression nesting.

Every limit is checked before any step that could take long or recurse: the size
before parsing, the rest on the syntax tree right after it (iteratively, so a
tree of any depth is safe), so the compiler, the formatter and the engine never
see a deeper or bigger schema than the limits allow. A schema over a limit is a
:class:`~headwater.dsl.errors.SchemaLimitError` at the place where the limit is
crossed. The engine builds its limits from its settings of the same names
(``engine/config.py``); the defaults and the figures behind them are in
``docs/language.md``.

**Nesting** counts the operators an innermost term sits inside: ``viewer`` is 0,
``a + b + c`` is 1 (a run of ``+``, or of ``&``, counts once), ``a + (b - c)``
is 2, and each ``-`` counts (``a - b - c`` is ``(a - b) - c``: 2), as does
each further arrow of a chain (``a->b->c``: 1). It is at most
:data:`MAX_EXPRESSION_NESTING_CEILING`, the depth every recursive step of the
compiler and the engine handles safely within Python's stack. The type
arguments of a caveat parameter (``list<map<int>>``: 2) count the same way.

Example::

    >>> from headwater.dsl import SchemaLimitError, SchemaLimits, compile_schema
    >>> try:
    ...     compile_schema("definition user {}\\ndefinition group {}", limits=SchemaLimits(max_schema_definitions=1))
    ... except SchemaLimitError as e:
    ...     print(e.line, e.column, e.message)
    2 12 too many definitions: more than the limit of 1 (max_schema_definitions) definitions, caveats and classifications
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from typing import Final

from . import ast
from .ast import Span
from .errors import SchemaLimitError

__all__ = ["MAX_EXPRESSION_NESTING_CEILING", "SchemaLimits", "check_size", "check_tree"]

#: The highest ``max_expression_nesting`` allowed: each recursive step over an expression (compiling it,
#: formatting it, the engine's program, expand) takes at most three Python frames per level, so this
#: stays far below Python's recursion limit (1,000) from any caller.
MAX_EXPRESSION_NESTING_CEILING: Final = 100


@dataclass(frozen=True, slots=True)
class SchemaLimits:
    """The limits one schema must stay within; each default is written once, here.

    The figures behind the defaults (compile time of the largest schema they allow) are
    in ``docs/performance.md``; ``docs/language.md`` lists them for schema authors.
    """

    #: Bytes of schema text (UTF-8). SpiceDB takes schemas up to its 4 MiB message size, but compile time
    #: grows with size (3.6 s for the densest 512 KiB, 7.2 s for 1 MiB), so the default keeps the largest
    #: schema's compile within a few seconds; raise it for bigger schemas.
    max_schema_bytes: int = 512 * 1024
    #: Definitions, caveats and classifications in one schema.
    max_schema_definitions: int = 5_000
    #: Relations and permissions (and lineage and declassify members) in one definition.
    max_definition_members: int = 2_000
    #: Operators an innermost term of a permission expression may sit inside (see the module docstring).
    max_expression_nesting: int = 32

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{f.name} must be a positive integer, got {value!r}")
        if self.max_expression_nesting > MAX_EXPRESSION_NESTING_CEILING:
            raise ValueError(f"max_expression_nesting must be at most {MAX_EXPRESSION_NESTING_CEILING}, got "
                             f"{self.max_expression_nesting!r}")

    @classmethod
    def unlimited(cls) -> SchemaLimits:
        """No limit on size or counts, and nesting at its ceiling: for reading back a schema that was
        accepted when it was written, whatever the limits are now."""
        return cls(sys.maxsize, sys.maxsize, sys.maxsize, MAX_EXPRESSION_NESTING_CEILING)


def check_size(text: str, limits: SchemaLimits) -> SchemaLimitError | None:
    """The error for ``text`` longer than ``max_schema_bytes`` (at the first character past the limit), or None."""
    limit = limits.max_schema_bytes
    if len(text) <= limit // 4:  # a UTF-8 character is at most 4 bytes
        return None
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return None
    kept = data[:limit].decode("utf-8", "ignore")  # the whole characters within the limit
    offset = len(kept)
    line = kept.count("\n") + 1
    column = offset - (kept.rfind("\n") + 1) + 1
    span = Span(offset, offset + 1, line, column, line, column + 1)
    return SchemaLimitError(f"schema too large: {len(data):,} bytes, more than the limit of {limit:,} bytes "
                            "(max_schema_bytes); the limit is reached here", span)


def check_tree(doc: ast.Document, limits: SchemaLimits) -> list[SchemaLimitError]:
    """Every limit ``doc`` exceeds: definitions, members, nesting (one error per place), in text order.

    Iterative, so a tree of any depth is checked without recursion.
    """
    errors: list[SchemaLimitError] = []
    items = [i for i in doc.items if not isinstance(i, (ast.UseFlag, ast.ImportStatement))]
    if len(items) > limits.max_schema_definitions:
        limit = limits.max_schema_definitions
        errors.append(SchemaLimitError(
            f"too many definitions: more than the limit of {limit:,} (max_schema_definitions) definitions, caveats "
            "and classifications", items[limit].name_span))
    for item in items:
        if isinstance(item, (ast.Definition, ast.Partial)):
            if len(item.members) > limits.max_definition_members:
                limit = limits.max_definition_members
                kind = "definition" if isinstance(item, ast.Definition) else "partial"
                errors.append(SchemaLimitError(
                    f"too many members in {kind} `{item.name}`: {len(item.members):,} relations and "
                    f"permissions, more than the limit of {limit:,} (max_definition_members)",
                    item.members[limit].name_span))
            for m in item.members:
                if isinstance(m, ast.Permission):
                    span = _too_deep(m.expr, limits.max_expression_nesting)
                    if span is not None:
                        errors.append(SchemaLimitError(
                            f"expression nested too deeply: more than {limits.max_expression_nesting} levels "
                            f"(max_expression_nesting) in permission `{m.name}`; move part of it into a "
                            "permission of its own", span))
        elif isinstance(item, ast.Caveat):
            for p in item.parameters:
                span = _type_too_deep(p.type, limits.max_expression_nesting)
                if span is not None:
                    errors.append(SchemaLimitError(
                        f"type of parameter `{p.name}` of caveat `{item.name}` nested too deeply: more than "
                        f"{limits.max_expression_nesting} levels (max_expression_nesting)", span))
    return sorted(errors, key=lambda e: (e.span.line, e.span.column))


def _is_operator(e: ast.Expr) -> bool:
    """Whether ``e`` counts as a level: a set operation, or an arrow chained onto another arrow."""
    return isinstance(e, (ast.Union, ast.Intersection, ast.Exclusion)) or (
        isinstance(e, ast.Arrow) and isinstance(e.left, ast.Arrow))


def _too_deep(root: ast.Expr, limit: int) -> Span | None:
    """The span of the outermost (then leftmost) sub-expression of ``root`` nested more than ``limit`` levels."""
    if not _is_operator(root):
        return None
    stack: list[tuple[ast.Expr, int]] = [(root, 1)]
    while stack:
        node, level = stack.pop()
        if level > limit:
            return node.span
        assert isinstance(node, (ast.Union, ast.Intersection, ast.Exclusion, ast.Arrow))
        children = (node.left,) if isinstance(node, ast.Arrow) else (node.right, node.left)  # left is popped first
        for child in children:
            if _is_operator(child):
                # `a + b + c` is `(a + b) + c`: the left operand continues the run of `+` (or `&`) at its level
                run = child is node.left and type(child) is type(node) and isinstance(node, (ast.Union,
                                                                                              ast.Intersection))
                stack.append((child, level if run else level + 1))
    return None


def _type_too_deep(root: ast.CaveatType, limit: int) -> Span | None:
    """The span of the outermost type argument nested more than ``limit`` levels inside ``root``, or None."""
    stack = [(root, 0)]
    while stack:
        node, level = stack.pop()
        if level > limit:
            return node.span
        stack.extend((arg, level + 1) for arg in node.args)
    return None
