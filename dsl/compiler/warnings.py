"""SpiceDB's schema warnings, with SpiceDB's names, conditions and positions.

SpiceDB (``pkg/development/warningdefs.go`` and ``warnings.go``) warns about six
legal but suspicious constructs; ``headwater lint`` reports the same ones:

* ``relation-name-references-parent``: a relation or permission whose name ends
  with its definition's name (``permission view_document`` in ``document``);
* ``permission-references-itself``: a permission that names itself in its own
  expression;
* ``arrow-references-relation``: an arrow whose target is a *relation* (not a
  permission) of another definition;
* ``arrow-references-unreachable-relation``: an arrow whose target exists on no
  subject type of its left relation, so it can never grant;
* ``arrow-walks-subject-relation``: an arrow over a relation that allows a subject
  set (``group#member``); the arrow walks to the object and ignores ``#member``;
* ``mixed-operators-without-parentheses``: ``+``, ``&`` and ``-`` mixed at one
  level of parentheses (``viewer - banned & editor``).

A comment ``// spicedb-ignore-warning: <name>`` above the relation or permission
turns that warning off there (``context.IGNORE_WARNING``). Warnings about a
member's name and its operators point at the member (its keyword), the others at
the name or arrow in the expression, as SpiceDB's do.

Example::

    >>> from headwater.dsl import lint_schema
    >>> _, found = lint_schema("definition user {}\\ndefinition document {\\n relation viewer: user\\n"
    ...                        " permission view_document = viewer\\n}")
    >>> print(found[0])
    4:2: warning: Permission "view_document" references parent type "document" in its name; ...
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import ast, schema
from .context import Compilation

__all__ = ["check_warnings"]

# How SpiceDB names each operator in the mixed-operators warning, in the order it lists them.
_OPERATOR_NAMES = ((ast.Union, "union (+)"), (ast.Exclusion, "exclusion (-)"), (ast.Intersection, "intersection (&)"))
_BINARY = (ast.Union, ast.Intersection, ast.Exclusion)


def check_warnings(c: Compilation, s: schema.Schema) -> None:
    """Add SpiceDB's warnings for every relation and permission of every definition, in SpiceDB's order."""
    for d_ast in c.defs.values():
        d = s.definitions[d_ast.name]
        for m in d_ast.members:
            if isinstance(m, (ast.Relation, ast.Permission)):
                _name_references_parent(c, d, m)
            if isinstance(m, ast.Permission):
                for node in _operands(m.expr):
                    if isinstance(node, ast.RelationRef) and node.name == m.name:
                        c.warn(f'Permission "{m.name}" references itself: the reference can never grant, and a '
                               "check that meets it under an exclusion fails (SpiceDB raises an error due to "
                               "infinite recursion)", node.span, name="permission-references-itself", member=m)
                    elif isinstance(node, ast.Arrow) and isinstance(node.left, ast.RelationRef):
                        _check_arrow(c, s, d, m, node, node.left.name)
                _mixed_operators(c, m)


def _name_references_parent(c: Compilation, d: schema.Definition, m: ast.Relation | ast.Permission) -> None:
    if m.name.endswith(d.name):
        kind = "Permission" if isinstance(m, ast.Permission) else "Relation"
        c.warn(f'{kind} "{m.name}" references parent type "{d.name}" in its name; it is recommended to drop '
               "the suffix", m.span, name="relation-name-references-parent", member=m)


def _operands(e: ast.Expr) -> Iterator[ast.Expr]:
    """The leaves of ``e`` (names, arrows, calls, ``nil``, ``self``) in the order written."""
    stack = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, _BINARY):
            stack.extend((node.right, node.left))
        else:
            yield node


def _arrow_text(arrow: ast.Arrow, left: str) -> str:
    if arrow.function is ast.ArrowFunction.ARROW:
        return f"{left}->{arrow.target}"
    return f"{left}.{arrow.function.value}({arrow.target})"


def _check_arrow(c: Compilation, s: schema.Schema, d: schema.Definition, m: ast.Permission, arrow: ast.Arrow,
                 left: str) -> None:
    """SpiceDB's three arrow warnings, in its order: a relation as target, no target at all, a subject set."""
    rel = d.relations.get(left)
    if rel is None:
        return
    text = _arrow_text(arrow, left)
    under = f'Arrow `{text}` under permission "{m.name}"'
    for t in rel.allowed:
        target = s.definitions.get(t.type) if t.type != d.name else None  # within a definition: no warning
        if target is not None and arrow.target in target.relations:
            c.warn(f'{under} references relation "{arrow.target}" on definition "{t.type}"; it is recommended to '
                   "point to a permission", arrow.span, name="arrow-references-relation", member=m)
            break
    if not any(s.member(t.type, arrow.target) for t in rel.allowed):
        c.warn(f'{under} references relation/permission "{arrow.target}" that does not exist on any subject '
               f'types of relation "{left}"', arrow.span, name="arrow-references-unreachable-relation", member=m)
    for t in rel.allowed:
        if t.relation is not None and not t.wildcard:
            c.warn(f'{under} references relation "{left}" that has relation "{t.relation}" on subject '
                   f'"{t.type}": *the subject relation will be ignored for the arrow*', arrow.span,
                   name="arrow-walks-subject-relation", member=m)
            break


def _mixed_operators(c: Compilation, m: ast.Permission) -> None:
    """Warn when one level of parentheses mixes ``+``, ``&`` and ``-``; SpiceDB reports the first level closed.

    Parentheses are read from the spans: a parenthesized left operand starts after its parent, a parenthesized
    right one ends before it. A tree built by hand has no spans, so no parentheses to read: it is not checked.
    """
    if not isinstance(m.expr, _BINARY) or m.expr.span == ast.NO_SPAN:
        return
    levels: list[tuple[float, set[type]]] = [(float("inf"), set())]  # (where the level closes, its operators)
    stack: list[tuple[ast.Expr, int]] = [(m.expr, 0)]
    while stack:
        node, level = stack.pop()
        levels[level][1].add(type(node))
        for child, inside in ((node.left, node.left.span.start > node.span.start),
                              (node.right, node.right.span.end < node.span.end)):
            if isinstance(child, _BINARY):
                if inside:
                    levels.append((child.span.end, set()))
                stack.append((child, len(levels) - 1 if inside else level))
    for _, ops in sorted(levels, key=lambda lv: lv[0]):
        if len(ops) > 1:
            mixed = " and ".join(label for op, label in _OPERATOR_NAMES if op in ops)
            c.warn(f'Permission "{m.name}" mixes {mixed} at the same level of nesting; consider adding '
                   "parentheses to clarify precedence", m.span, name="mixed-operators-without-parentheses",
                   member=m)
            return
