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

import bisect
import dataclasses
from typing import Any

from . import ast

__all__ = ["attach_comments", "normalize_comment"]

_BLOCKS = (ast.Definition, ast.Partial, ast.Classification)  # the items with a body between braces


def normalize_comment(text: str) -> str:
    """Canonical comment text: continuation lines of a block comment re-indented relative to its start."""
    lines = text.rstrip().split("\n")
    out = [lines[0].rstrip()]
    for ln in lines[1:]:
        s = ln.strip()
        out.append(" " + s if s.startswith("*") else ("    " + s if s else ""))
    return "\n".join(out)


def attach_comments(doc: ast.Document, comments: list[ast.Comment]) -> ast.Document:
    """``doc`` with ``comments`` (in text order) attached to its items and members; linear in their number."""
    items, rest = _attach(list(doc.items), comments)
    starts = [item.span.start for item in items]
    inside: dict[int, list[ast.Comment]] = {}
    trailing: list[ast.Comment] = []
    for c in rest:
        i = bisect.bisect_left(starts, c.span.start) - 1  # the last item starting before the comment
        if i >= 0 and isinstance(items[i], _BLOCKS) and c.span.start < items[i].span.end:
            inside.setdefault(i, []).append(c)
        else:
            trailing.append(c)
    new_items = []
    for i, item in enumerate(items):
        if isinstance(item, (ast.Definition, ast.Partial)):
            members, left = _attach(list(item.members), inside.get(i, []))
            item = dataclasses.replace(item, members=tuple(members), inner_comments=tuple(left))
        elif isinstance(item, ast.Classification):
            item = dataclasses.replace(item, inner_comments=tuple(inside.get(i, [])))
        new_items.append(item)
    return dataclasses.replace(doc, items=tuple(new_items), trailing_comments=tuple(trailing))


def _attach(elements: list[Any], comments: list[ast.Comment]) -> tuple[list[Any], list[ast.Comment]]:
    """Give each element the comments before it and one trailing comment on its last line.

    Returns the updated elements and the comments that follow the last element
    (or lie inside a definition, for the caller to distribute). ``elements`` are in
    text order and do not overlap, so each comment finds its place by bisection.
    """
    ends = [el.span.end for el in elements]
    leading: dict[int, list[ast.Comment]] = {}
    trailing: dict[int, ast.Comment] = {}
    unplaced: list[ast.Comment] = []
    for c in comments:
        k = bisect.bisect_right(ends, c.span.start)  # the first element ending after the comment starts
        before = elements[k - 1] if k > 0 else None
        if (before is not None and c.span.line == before.span.end_line and k - 1 not in trailing
                and not (k < len(elements) and elements[k].span.start < c.span.start)):
            trailing[k - 1] = c  # on the last line of the element before it
        elif k == len(elements):
            unplaced.append(c)  # after the last element
        elif isinstance(elements[k], _BLOCKS) and elements[k].span.start < c.span.start:
            unplaced.append(c)  # inside a definition: its members get it
        else:
            leading.setdefault(k, []).append(c)
    out = [
        dataclasses.replace(el, comments=tuple(leading.get(i, ())), trailing_comment=trailing.get(i))
        for i, el in enumerate(elements)
    ]
    return out, unplaced
