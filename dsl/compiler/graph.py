"""Whole-schema checks, run once every member compiled: wildcards, arrows, type annotations, permission cycles.

SpiceDB refuses a subject set that can hold a wildcard, an arrow that walks a
relation which can hold one, permissions that are aliases of each other in a
cycle and (under ``use typechecking``) a type annotation that does not cover
what the permission can grant. An arrow that can never grant and a permission
that depends on itself through its own object are legal, so they are warnings.

Example::

    >>> from headwater.dsl import DslError, compile_schema
    >>> try:
    ...     compile_schema("definition user {}\\ndefinition group {\\n relation member: user | user:*\\n}\\n"
    ...                    "definition doc {\\n relation viewer: group#member\\n}")
    ... except DslError as e:
    ...     print(e.message)
    `group#member` can hold a wildcard, so it cannot be an allowed type (relation `viewer` in `doc`); ...
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import ast, schema
from ..ast import Span
from ..errors import InvalidArrowError, PermissionCycleError, TypeAnnotationError, WildcardError
from .context import Compilation

__all__ = ["check_graph"]


def check_graph(c: Compilation, s: schema.Schema) -> None:
    """Run the checks that need the whole compiled schema ``s``, definition by definition, member by member."""
    wildcard = _WildcardReach(s)
    for d_ast in c.defs.values():
        d = s.definitions[d_ast.name]
        for m in d_ast.members:
            if isinstance(m, ast.Relation):
                _check_subject_sets(c, wildcard, d, m)
            elif isinstance(m, ast.Permission):
                _check_permission(c, s, wildcard, d, m)
        _check_cycles(c, d, d_ast)


def _check_subject_sets(c: Compilation, wildcard: _WildcardReach, d: schema.Definition, m: ast.Relation) -> None:
    """Refuse an allowed subject set of another definition that can hold a wildcard."""
    rel = d.relations.get(m.name)
    if rel is None:
        return
    for a, st in zip(m.allowed, rel.allowed):
        # As SpiceDB: only subject sets of *other* definitions are checked (recursive groups
        # with a public wildcard, `group#member` inside `group`, are legal).
        if st.relation is not None and st.type != d.name and wildcard.relation_holds(st.type, st.relation):
            c.error(WildcardError, f"`{st.type}#{st.relation}` can hold a wildcard, so it cannot be an allowed "
                    f"type (relation `{m.name}` in `{d.name}`); allow the wildcard on this relation directly "
                    "instead", a.span)


def _check_permission(c: Compilation, s: schema.Schema, wildcard: _WildcardReach, d: schema.Definition,
                      m: ast.Permission) -> None:
    """Check a permission's arrows (never granting: a warning; over a wildcard: an error) and its annotation."""
    perm = d.permissions.get(m.name)
    if perm is None:
        return
    for arrow, span in _arrows(perm.expr, m.expr):
        left = d.relations.get(arrow.relation)
        if left is not None and not any(s.member(t.type, arrow.target) for t in left.allowed):
            c.warn(f"the arrow `{arrow.relation}->{arrow.target}` can never grant: no subject type of "
                   f"`{arrow.relation}` ({', '.join(str(t) for t in left.allowed)}) has a relation or "
                   f"permission `{arrow.target}`", span)
        if arrow.relation in d.relations and wildcard.relation_holds(d.name, arrow.relation):
            c.error(InvalidArrowError, f"the arrow `{arrow.relation}->{arrow.target}` walks relation "
                    f"`{arrow.relation}`, which can hold a wildcard; arrows cannot walk wildcards (permission "
                    f"`{m.name}` in `{d.name}`)", span)
    if perm.annotation is not None and "typechecking" in c.flags:
        reach = _terminal_types(s, d.name, m.name, set())
        extra = sorted(reach - {t.type for t in perm.annotation})
        if extra:
            c.error(TypeAnnotationError, f"permission `{m.name}` in `{d.name}` is annotated "
                    f"`{' | '.join(str(t) for t in perm.annotation)}` but can also grant "
                    f"subjects of type {', '.join(f'`{x}`' for x in extra)}", m.name_span)


def _check_cycles(c: Compilation, d: schema.Definition, d_ast: ast.Definition) -> None:
    """Refuse permissions that are aliases of each other in a cycle; warn on other same-object cycles."""
    spans = {m.name: m.name_span for m in d_ast.members}
    # Pure aliases (`permission a = b`) that loop: SpiceDB refuses these.
    reported: set[str] = set()
    for name, perm in d.permissions.items():
        chain = [name]
        expr = perm.expr
        while isinstance(expr, schema.Computed) and expr.name in d.permissions:
            if expr.name in chain:
                cycle = chain[chain.index(expr.name):]
                if not reported & set(cycle):
                    first = min(cycle, key=lambda n: (spans[n].line, spans[n].column))
                    c.error(PermissionCycleError, f"permissions in `{d.name}` are aliases of each other in "
                            f"a cycle: {' -> '.join(cycle + [cycle[0]])}", spans[first])
                    reported.update(cycle)
                break
            chain.append(expr.name)
            expr = d.permissions[expr.name].expr
    # Other same-object cycles (`a = b + x`, `b = a`) are legal in SpiceDB but can never grant through
    # the cycle: warn.
    graph = {name: set(_computed_names(p.expr)) & set(d.permissions) for name, p in d.permissions.items()}
    for name in graph:
        if name in reported:
            continue
        if _reaches(graph, name, name):
            c.warn(f"permission `{name}` in `{d.name}` depends on itself through its own object; that path can "
                   "never grant", spans[name])


def _children(e: schema.Expr) -> tuple[schema.Expr, ...]:
    """The operands of a compiled set operation (none for a leaf)."""
    if isinstance(e, (schema.Union, schema.Intersection)):
        return e.children
    if isinstance(e, schema.Exclusion):
        return (e.base, e.subtracted)
    return ()


def _computed_names(e: schema.Expr) -> Iterator[str]:
    """The names ``e`` reads on its own object (``Computed`` leaves), through unions, intersections, exclusions."""
    if isinstance(e, schema.Computed):
        yield e.name
    for child in _children(e):
        yield from _computed_names(child)


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    """Whether ``goal`` is reachable from ``start`` in one or more steps of ``graph``."""
    seen: set[str] = set()
    stack = list(graph.get(start, ()))
    while stack:
        n = stack.pop()
        if n == goal:
            return True
        if n not in seen:
            seen.add(n)
            stack.extend(graph.get(n, ()))
    return False


def _arrows(e: schema.Expr, a: ast.Expr) -> Iterator[tuple[schema.Arrow, Span]]:
    """Each compiled arrow with the span of its source (matched by walking both trees)."""
    spans = {}
    stack: list[ast.Expr] = [a]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Arrow) and isinstance(node.left, ast.RelationRef):
            spans.setdefault((node.left.name, node.target), node.span)
        elif isinstance(node, (ast.Union, ast.Intersection, ast.Exclusion)):
            stack.extend((node.left, node.right))
    cstack: list[schema.Expr] = [e]
    while cstack:
        node = cstack.pop()
        if isinstance(node, schema.Arrow):
            yield node, spans.get((node.relation, node.target), ast.NO_SPAN)
        else:
            cstack.extend(_children(node))


class _WildcardReach:
    """Whether a relation can hold a wildcard subject, directly or through subject sets of relations."""

    def __init__(self, s: schema.Schema) -> None:
        self.s = s
        self.memo: dict[tuple[str, str], bool] = {}

    def relation_holds(self, type_: str, relation: str, visiting: frozenset[tuple[str, str]] = frozenset()) -> bool:
        """Whether ``type_#relation`` can hold a wildcard (permissions do not count, as in SpiceDB)."""
        key = (type_, relation)
        if key in self.memo:
            return self.memo[key]
        if key in visiting:
            return False
        d = self.s.definitions.get(type_)
        rel = d.relations.get(relation) if d else None
        if rel is None:
            return False  # permissions do not count (as in SpiceDB)
        result = rel.allows_wildcard or any(
            t.relation is not None and self.relation_holds(t.type, t.relation, visiting | {key}) for t in rel.allowed
        )
        self.memo[key] = result
        return result


def _terminal_types(s: schema.Schema, type_: str, name: str, visiting: set[tuple[str, str]]) -> set[str]:
    """Object types of the subjects that ``type_#name`` can grant (for ``use typechecking``)."""
    key = (type_, name)
    if key in visiting:
        return set()
    visiting.add(key)
    d = s.definitions.get(type_)
    out: set[str] = set()
    if d is None:
        return out
    rel = d.relations.get(name)
    if rel is not None:
        for t in rel.allowed:
            if t.relation is None or t.wildcard:
                out.add(t.type)
            else:
                out |= _terminal_types(s, t.type, t.relation, visiting)
        return out
    perm = d.permissions.get(name)
    if perm is None:
        return out

    def walk(e: schema.Expr) -> set[str]:
        if isinstance(e, schema.Computed):
            return _terminal_types(s, type_, e.name, visiting)
        if isinstance(e, schema.Self):
            return {type_}
        if isinstance(e, (schema.Union, schema.Intersection)):
            acc: set[str] = set()
            for c in e.children:
                acc |= walk(c)
            return acc
        if isinstance(e, schema.Exclusion):
            return walk(e.base)
        if isinstance(e, schema.Arrow):
            acc = set()
            left = d.relations.get(e.relation)
            for t in left.allowed if left else ():
                if s.member(t.type, e.target) is not None:
                    acc |= _terminal_types(s, t.type, e.target, visiting)
            return acc
        return set()

    return walk(perm.expr)
