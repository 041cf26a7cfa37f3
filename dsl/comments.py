"""Comments in the syntax tree: each attached to the element it documents or trails, none lost.

SpiceDB keeps doc comments on the element that follows; Headwater keeps every
comment, so ``headwater fmt`` is lossless: the comments before an element, one
trailing comment on its last line, and comments at the end of a definition,
classification or file (see ``docs/architecture.md``).

Example::

    >>> from headwater.dsl import parse_schema
    >>> doc = parse_schema("// users\\ndefinition user {} // no relations\\n")
    >>> doc.items[0].comments[0].text, doc.items[0].trailing_comment.text
    ('// users', '// no relations')
"""

from __future__ import annotations

import dataclasses
from typing import Any

from . import ast

__all__ = ["attach_comments", "normalize_comment"]


def normalize_comment(text: str) -> str:
    """Canonical comment text: continuation lines of a block comment re-indented relative to its start."""
    lines = text.rstrip().split("\n")
    out = [lines[0].rstrip()]
    for ln in lines[1:]:
        s = ln.strip()
        out.append(" " + s if s.startswith("*") else ("    " + s if s else ""))
    return "\n".join(out)


def attach_comments(doc: ast.Document, comments: list[ast.Comment]) -> ast.Document:
    items, rest = _attach(list(doc.items), comments)
    new_items = []
    for item in items:
        if isinstance(item, ast.Definition):
            inside = [c for c in rest if item.span.start < c.span.start < item.span.end]
            rest = [c for c in rest if not item.span.start < c.span.start < item.span.end]
            members, left = _attach(list(item.members), inside)
            item = dataclasses.replace(item, members=tuple(members), inner_comments=tuple(left))
        elif isinstance(item, ast.Classification):
            inside = [c for c in rest if item.span.start < c.span.start < item.span.end]
            rest = [c for c in rest if not item.span.start < c.span.start < item.span.end]
            item = dataclasses.replace(item, inner_comments=tuple(inside))
        new_items.append(item)
    return dataclasses.replace(doc, items=tuple(new_items), trailing_comments=tuple(rest))


def _attach(elements: list[Any], comments: list[ast.Comment]) -> tuple[list[Any], list[ast.Comment]]:
    """Give each element the comments before it and one trailing comment on its last line.

    Returns the updated elements and the comments that follow the last element
    (or lie inside a definition, for the caller to distribute).
    """
    leading: dict[int, list[ast.Comment]] = {i: [] for i in range(len(elements))}
    trailing: dict[int, ast.Comment] = {}
    unplaced: list[ast.Comment] = []
    for c in comments:
        placed = False
        for i, el in enumerate(elements):
            if isinstance(el, (ast.Definition, ast.Classification)) and el.span.start < c.span.start < el.span.end:
                unplaced.append(c)  # inside a definition: its members get it
                placed = True
                break
            if (c.span.start >= el.span.end and c.span.line == el.span.end_line and i not in trailing
                    and not (i + 1 < len(elements) and elements[i + 1].span.start < c.span.start)):
                trailing[i] = c
                placed = True
                break
            if c.span.start < el.span.end:
                leading[i].append(c)
                placed = True
                break
        if not placed:
            unplaced.append(c)
    out = [
        dataclasses.replace(el, comments=tuple(leading[i]), trailing_comment=trailing.get(i))
        for i, el in enumerate(elements)
    ]
    return out, unplaced
