"""Permission expressions: names resolved, arrows checked, Headwater's ``cleared`` and ``upstream`` calls.

Chains of ``+`` and ``&`` are flattened into one ``Union`` or ``Intersection``
node. A ``cleared`` or ``upstream`` call is checked against the labels and
lineage that can reach the definition.

Example::

    >>> from headwater.dsl import parse_schema
    >>> from headwater.dsl.compiler.names import collect_names
    >>> c = Compilation(parse_schema("definition doc {\\n permission view = owner + reader + nil\\n}"))
    >>> collect_names(c)
    >>> view = c.defs["doc"].members[0]
    >>> compile_expression(c, c.defs["doc"], view, view.expr, {}, {"owner", "reader", "view"})
    Union(children=(Computed(name='owner'), Computed(name='reader'), Nil()))
"""

from __future__ import annotations

from .. import ast, schema
from ..errors import InvalidArrowError, SchemaError, UnknownRelationError, UnknownTypeError
from .context import Compilation

__all__ = ["compile_expression"]


def compile_expression(c: Compilation, d: ast.Definition, p: ast.Permission, e: ast.Expr,
                       relations: dict[str, schema.Relation], names: set[str]) -> schema.Expr:
    """The compiled form of ``e``, an expression (or part of one) of permission ``p`` in ``d``.

    ``relations`` holds ``d``'s compiled relations and ``names`` every member name of ``d``.
    """
    if type(e) is ast.RelationRef and e.name in names and e.name != "cleared":
        return schema.Computed(e.name)  # the usual leaf, first (an expression can have 100,000 of them)
    where = f"permission `{p.name}` in `{d.name}`"
    if isinstance(e, ast.Nil):
        return schema.Nil()
    if isinstance(e, ast.SelfRef):
        if "self" in c.flags:
            return schema.Self()
        e = ast.RelationRef("self", e.span)
    if isinstance(e, ast.Call):
        return _call(c, d, where, e, names)
    if isinstance(e, ast.RelationRef):
        if e.name == "cleared" and e.name not in names and c.classes:
            return _call(c, d, where, ast.Call("cleared", "", e.span), names)
        if e.name not in names:
            hint = "; to mean the resource itself, add `use self` at the top" if e.name == "self" else ""
            c.error(UnknownRelationError, f"`{d.name}` has no relation or permission `{e.name}` "
                    f"(used in {where}){hint}", e.span)
        return schema.Computed(e.name)
    if isinstance(e, ast.Arrow):
        return _arrow(c, d, where, e, relations, names)
    if isinstance(e, ast.Union):
        return schema.Union(_flatten(c, d, p, e, ast.Union, relations, names))
    if isinstance(e, ast.Intersection):
        return schema.Intersection(_flatten(c, d, p, e, ast.Intersection, relations, names))
    if isinstance(e, ast.Exclusion):
        return schema.Exclusion(compile_expression(c, d, p, e.left, relations, names),
                                compile_expression(c, d, p, e.right, relations, names))
    raise AssertionError(f"unknown expression node {e!r}")


def _arrow(c: Compilation, d: ast.Definition, where: str, e: ast.Arrow, relations: dict[str, schema.Relation],
           names: set[str]) -> schema.Expr:
    """``left->target``: the left side must be one relation of ``d`` (not a permission, not another arrow)."""
    left = e.left
    if not isinstance(left, ast.RelationRef):
        c.error(InvalidArrowError, f"chained arrows are not supported (in {where}); introduce a "
                "permission for the inner arrow", e.span)
        return schema.Nil()
    if left.name not in names:
        c.error(UnknownRelationError, f"`{d.name}` has no relation `{left.name}` (left side of an "
                f"arrow in {where})", left.span)
    elif left.name not in relations:
        c.error(InvalidArrowError, f"the left side of an arrow must be a relation, but `{left.name}` "
                f"is a permission (in {where})", left.span)
    mode = schema.ArrowMode.ALL if e.function is ast.ArrowFunction.ALL else schema.ArrowMode.ANY
    return schema.Arrow(left.name, e.target, mode)


def _flatten(c: Compilation, d: ast.Definition, p: ast.Permission, e: ast.Union | ast.Intersection,
             cls: type[ast.Union | ast.Intersection], relations: dict[str, schema.Relation],
             names: set[str]) -> tuple[schema.Expr, ...]:
    """The operands of a chain of ``cls`` (``a + b + c``), left to right, each compiled."""
    out: list[schema.Expr] = []
    stack: list[ast.Expr] = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, cls):
            stack.append(node.right)
            stack.append(node.left)
        else:
            out.append(compile_expression(c, d, p, node, relations, names))
    return tuple(out)


def _call(c: Compilation, d: ast.Definition, where: str, e: ast.Call, names: set[str]) -> schema.Expr:
    """Headwater's ``cleared``, ``cleared(C)`` and ``upstream(p)``."""
    if e.function == "cleared":
        reachable = _label_classes(c, d.name)
        if e.argument:
            if e.argument not in c.classes:
                c.error(UnknownTypeError, f"unknown classification `{e.argument}` in `cleared(...)` ({where})",
                        e.argument_span)
            elif e.argument not in reachable:
                c.error(SchemaError, f"`cleared({e.argument})` can never matter in `{d.name}`: no "
                        f"`{e.argument}` label can reach it (no relation of that classification on "
                        f"`{d.name}` or on anything upstream of it through lineage) ({where})", e.span)
            return schema.Cleared(e.argument)
        if not reachable:
            c.error(SchemaError, f"`cleared` can never matter in `{d.name}`: no label can reach it (no label "
                    f"relation on `{d.name}` or on anything upstream of it through lineage) ({where})", e.span)
        return schema.Cleared(None)
    if e.function == "upstream":
        upstream = _upstream_types(c, d.name)
        if not any(c.has_member(t, e.argument) for t in upstream):
            found = ", ".join(f"`{t}`" for t in sorted(upstream)) or "none"
            c.error(UnknownRelationError, f"`upstream({e.argument})`: no definition upstream of `{d.name}` "
                    f"through lineage has a relation or permission `{e.argument}` (upstream types: {found}) "
                    f"({where})", e.argument_span)
        return schema.Upstream(e.argument)
    c.error(SchemaError, f"unknown function `{e.function}(...)`; Headwater has `cleared(classification)` and "
            f"`upstream(permission)` ({where})", e.span)
    return schema.Nil()


def _upstream_types(c: Compilation, type_name: str) -> set[str]:
    """Types reachable from ``type_name`` through one or more lineage relations."""
    out: set[str] = set()
    stack = [type_name]
    while stack:
        d = c.defs.get(stack.pop())
        for m in d.members if d is not None else ():
            if isinstance(m, ast.Lineage):
                for a in m.allowed:
                    if a.type_name not in out:
                        out.add(a.type_name)
                        stack.append(a.type_name)
    return out


def _label_classes(c: Compilation, type_name: str) -> set[str]:
    """Classifications whose labels can reach objects of ``type_name`` (own labels or upstream)."""
    out: set[str] = set()
    for t in {type_name} | _upstream_types(c, type_name):
        d = c.defs.get(t)
        for m in d.members if d is not None else ():
            if isinstance(m, ast.Relation):
                out |= {a.type_name for a in m.allowed if a.type_name in c.classes}
    return out
