"""Syntax tree → canonical schema text (``headwater fmt``).

Canonical form: one blank line between top-level items (consecutive ``use``
lines stay together), four-space indentation, one member per line, single
spaces around operators, parentheses around every sub-expression whose operator
differs from the enclosing one (so SpiceDB's unusual precedence never misleads a
reader) and no others, and every comment kept. ``parse_schema(format_schema(doc)) == doc`` for every document.

Example::

    >>> from headwater.dsl import parse_schema, format_schema
    >>> print(format_schema(parse_schema("definition doc{relation viewer:user;permission view=(viewer);}")))
    definition doc {
        relation viewer: user
        permission view = viewer
    }
    <BLANKLINE>
"""

from __future__ import annotations

from . import ast

__all__ = ["format_expression", "format_schema"]

_INDENT = "    "
_PRECEDENCE = {ast.Exclusion: 1, ast.Intersection: 2, ast.Union: 3}
_OPERATOR = {ast.Exclusion: "-", ast.Intersection: "&", ast.Union: "+"}


def format_schema(doc: ast.Document) -> str:
    """Print a document as canonical text, ending with one newline."""
    blocks: list[str] = []
    previous: ast.TopLevel | None = None
    for item in doc.items:
        text = _top_level(item)
        if blocks and not (_one_liner(item) and type(previous) is type(item) and not item.comments):
            blocks.append("")
        blocks.append(text)
        previous = item
    if doc.trailing_comments:
        if blocks:
            blocks.append("")
        blocks.extend(_comment(c, "") for c in doc.trailing_comments)
    return "\n".join(blocks) + "\n" if blocks else ""


def format_expression(e: ast.Expr) -> str:
    """Print one permission expression, parenthesizing mixed operators (see the module docstring)."""
    return _expr(e, 0, False)


def _one_liner(item: ast.TopLevel) -> bool:
    """`use` and `import` lines: consecutive ones stay together, without a blank line between them."""
    return isinstance(item, (ast.UseFlag, ast.ImportStatement))


def _top_level(item: ast.TopLevel) -> str:
    lines = [_comment(c, "") for c in item.comments]
    if isinstance(item, ast.UseFlag):
        lines.append(_trail(f"use {item.name}", item.trailing_comment))
    elif isinstance(item, ast.ImportStatement):
        quote = "'" if '"' in item.path else '"'
        lines.append(_trail(f"import {quote}{item.path}{quote}", item.trailing_comment))
    elif isinstance(item, (ast.Definition, ast.Partial)):
        keyword = "definition" if isinstance(item, ast.Definition) else "partial"
        head = f"{keyword} {item.name} {{"
        body: list[str] = []
        for m in item.members:
            body.extend(_comment(c, _INDENT) for c in m.comments)
            body.append(_trail(_INDENT + _member(m), m.trailing_comment))
        body.extend(_comment(c, _INDENT) for c in item.inner_comments)
        if body:
            lines.append(head)
            lines.extend(body)
            lines.append(_trail("}", item.trailing_comment))
        else:
            lines.append(_trail(head + "}", item.trailing_comment))
    elif isinstance(item, ast.Classification):
        lines.append(f"classification {item.name} {{")
        body = []
        if item.levels:
            body.append(f"{_INDENT}levels {' < '.join(item.levels)}")
        if item.categories:
            body.append(f"{_INDENT}categories {', '.join(item.categories)}")
        if item.cleared is not None:
            body.append(f"{_INDENT}cleared: {_allowed(item.cleared)}")
        lines.extend(body)
        lines.extend(_comment(c, _INDENT) for c in item.inner_comments)
        lines.append(_trail("}", item.trailing_comment))
    else:
        params = ", ".join(f"{p.name} {p.type}" for p in item.parameters)
        lines.append(f"caveat {item.name}({params}) {{")
        lines.extend(_INDENT + ln if ln.strip() else "" for ln in item.expression.split("\n"))
        lines.append(_trail("}", item.trailing_comment))
    return "\n".join(lines)


def _member(m: ast.Member) -> str:
    if isinstance(m, ast.Relation):
        return f"relation {m.name}: {_allowed(m.allowed)}"
    if isinstance(m, ast.Lineage):
        return f"lineage {m.name}: {_allowed(m.allowed)}"
    if isinstance(m, ast.Declassify):
        return f"declassify {m.name}: {m.classification} by {m.by}"
    if isinstance(m, ast.PartialReference):
        return f"...{m.name}"
    annotation = f": {_allowed(m.annotation)}" if m.annotation is not None else ""
    return f"permission {m.name}{annotation} = {format_expression(m.expr)}"


def _allowed(allowed: tuple[ast.AllowedType, ...]) -> str:
    parts = []
    for a in allowed:
        text = a.type_name
        if a.wildcard:
            text += ":*"
        elif a.relation is not None:
            text += f"#{a.relation}"
        if a.with_names:
            text += " with " + " and ".join(a.with_names)
        parts.append(text)
    return " | ".join(parts)


def _expr(e: ast.Expr, parent: int, right: bool) -> str:
    if isinstance(e, ast.RelationRef):
        return e.name
    if isinstance(e, ast.Nil):
        return "nil"
    if isinstance(e, ast.SelfRef):
        return "self"
    if isinstance(e, ast.Call):
        return f"{e.function}({e.argument})"
    if isinstance(e, ast.Arrow):
        left = _expr(e.left, 4, False)
        if e.function is ast.ArrowFunction.ARROW:
            return f"{left}->{e.target}"
        return f"{left}.{e.function.value}({e.target})"
    prec = _PRECEDENCE[type(e)]
    # A run of one operator, `a + b + c`, is `(a + b) + c`: walk its left side in a loop, not recursively, so a
    # run of any length prints (nesting, which recurses, is bounded by dsl/limits.py).
    rights = []
    node: ast.Expr = e
    while type(node) is type(e):
        assert isinstance(node, (ast.Union, ast.Intersection, ast.Exclusion))
        rights.append(node.right)
        node = node.left
    operands = [_expr(node, prec, False)] + [_expr(r, prec, True) for r in reversed(rights)]
    text = f" {_OPERATOR[type(e)]} ".join(operands)
    # Parenthesize a sub-expression whose operator differs from its parent's (SpiceDB's precedence,
    # `+` over `&` over `-`, surprises readers used to arithmetic), and a right operand with the
    # same operator (all three are left-associative).
    if parent and (prec != parent or right):
        return f"({text})"
    return text


def _comment(c: ast.Comment, indent: str) -> str:
    # The parser stores comments with canonical continuation-line indentation; only indent here.
    return "\n".join((indent + ln).rstrip() for ln in c.text.split("\n"))


def _trail(text: str, comment: ast.Comment | None) -> str:
    return f"{text}  {comment.text}" if comment is not None else text
