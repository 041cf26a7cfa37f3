"""Whole-schema checks, run once every member compiled: wildcards, arrows, type annotations, permission cycles.

SpiceDB refuses a subject set that can hold a wildcard, an arrow that walks a
relation which can hold one, permissions that are aliases of each other in a
cycle and (under ``use typechecking``) a type annotation that does not cover
what the permission can grant. A permission that depends on itself through its
own object is legal, so it is a warning (``permission-depends-on-itself``); the
warnings SpiceDB gives are in ``warnings``.

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
    """Check a permission's arrows (over a wildcard: an error) and its annotation."""
    perm = d.permissions.get(m.name)
    if perm is None:
        return
    for arrow, span, written in _arrows(perm.expr, m.expr):
        if arrow.relation in d.relations and wildcard.relation_holds(d.name, arrow.relation):
            c.error(InvalidArrowError, f"the arrow `{written}` walks relation "
                    f"`{arrow.relation}`, which can hold a wildcard; arrows cannot walk wildcards (permission "
                    f"`{m.name}` in `{d.name}`)", span)
    if perm.annotation is not None and "typechecking" in c.flags:
        reach = _terminal_types(s, d.name, m.name)
        extra = sorted(reach - {t.type for t in perm.annotation})
        if extra:
            c.error(TypeAnnotationError, f"permission `{m.name}` in `{d.name}` is annotated "
                    f"`{' | '.join(str(t) for t in perm.annotation)}` but can also grant "
                    f"subjects of type {', '.join(f'`{x}`' for x in extra)}", m.name_span)


def _check_cycles(c: Compilation, d: schema.Definition, d_ast: ast.Definition) -> None:
    """Refuse permissions that are aliases of each other in a cycle; warn on other same-object cycles.

    Both walks are linear in the definition's size (a definition may have thousands of members).
    """
    spans = {m.name: m.name_span for m in d_ast.members}
    # Pure aliases (`permission a = b`) that loop: SpiceDB refuses these. Each alias has one successor, so
    # following them from each permission in turn finds every loop once.
    alias = {name: p.expr.name for name, p in d.permissions.items()
             if isinstance(p.expr, schema.Computed) and p.expr.name in d.permissions}
    reported: set[str] = set()
    walked: set[str] = set()
    for name in d.permissions:
        chain: dict[str, int] = {}  # the walk from `name`, in order
        node: str | None = name
        while node is not None and node not in walked:
            chain[node] = len(chain)
            walked.add(node)
            node = alias.get(node)
        if node is not None and node in chain:
            cycle = list(chain)[chain[node]:]
            first = min(cycle, key=lambda n: (spans[n].line, spans[n].column))
            c.error(PermissionCycleError, f"permissions in `{d.name}` are aliases of each other in "
                    f"a cycle: {' -> '.join(cycle + [cycle[0]])}", spans[first])
            reported.update(cycle)
    # Other same-object cycles (`a = b + x`, `b = a`) are legal in SpiceDB but can never grant through
    # the cycle: warn. A permission that names itself gets SpiceDB's permission-references-itself instead.
    graph = {name: sorted(set(_computed_names(p.expr)) & set(d.permissions)) for name, p in d.permissions.items()}
    members = {m.name: m for m in d_ast.members}
    for name in _on_cycles(graph):
        if name not in reported and name not in graph[name]:
            c.warn(f"permission `{name}` in `{d.name}` depends on itself through its own object; that path can "
                   "never grant", spans[name], name="permission-depends-on-itself", member=members[name])


def _children(e: schema.Expr) -> tuple[schema.Expr, ...]:
    """The operands of a compiled set operation (none for a leaf)."""
    if isinstance(e, (schema.Union, schema.Intersection)):
        return e.children
    if isinstance(e, schema.Exclusion):
        return (e.base, e.subtracted)
    return ()


def _computed_names(e: schema.Expr) -> Iterator[str]:
    """The names ``e`` reads on its own object (``Computed`` leaves), through unions, intersections, exclusions."""
    stack = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, schema.Computed):
            yield node.name
        stack.extend(reversed(_children(node)))


def _on_cycles(graph: dict[str, list[str]]) -> list[str]:
    """The nodes of ``graph`` that reach themselves in one or more steps, in ``graph``'s order.

    Tarjan's strongly connected components, iteratively: a node is on a cycle when its
    component has more than one node, or it has an edge to itself.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cyclic: set[str] = set()
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph.get(nxt, ()))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph.get(node, ()):
                        cyclic.update(component)
    return [name for name in graph if name in cyclic]


def _arrows(e: schema.Expr, a: ast.Expr) -> Iterator[tuple[schema.Arrow, Span, str]]:
    """Each compiled arrow with the span of its source and its text as written (``owner->parent``,
    ``owner.all(parent)``), matched by walking both trees."""
    arrows: list[schema.Arrow] = []
    cstack: list[schema.Expr] = [e]
    while cstack:
        node = cstack.pop()
        if isinstance(node, schema.Arrow):
            arrows.append(node)
        else:
            cstack.extend(_children(node))
    if not arrows:
        return
    spans = {}
    stack: list[ast.Expr] = [a]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Arrow) and isinstance(node.left, ast.RelationRef):
            written = (f"{node.left.name}->{node.target}" if node.function is ast.ArrowFunction.ARROW
                       else f"{node.left.name}.{node.function.value}({node.target})")
            spans.setdefault((node.left.name, node.target), (node.span, written))
        elif isinstance(node, (ast.Union, ast.Intersection, ast.Exclusion)):
            stack.extend((node.left, node.right))
    for arrow in arrows:
        span, written = spans.get((arrow.relation, arrow.target), (ast.NO_SPAN, f"{arrow.relation}->{arrow.target}"))
        yield arrow, span, written


class _WildcardReach:
    """Which relations can hold a wildcard subject: their own, or one reached through subject sets of relations.

    Computed once for the whole schema (backwards from the relations that allow a wildcard), so asking is a
    set lookup; permissions do not count, as in SpiceDB.
    """

    def __init__(self, s: schema.Schema) -> None:
        holders_of: dict[tuple[str, str], list[tuple[str, str]]] = {}  # relation -> relations whose sets name it
        frontier: list[tuple[str, str]] = []
        for d in s.definitions.values():
            for rel in d.relations.values():
                key = (d.name, rel.name)
                if rel.allows_wildcard:
                    frontier.append(key)
                for t in rel.allowed:
                    if t.relation is not None:
                        holders_of.setdefault((t.type, t.relation), []).append(key)
        self.holding: set[tuple[str, str]] = set(frontier)
        while frontier:
            for holder in holders_of.get(frontier.pop(), ()):
                if holder not in self.holding:
                    self.holding.add(holder)
                    frontier.append(holder)

    def relation_holds(self, type_: str, relation: str) -> bool:
        """Whether ``type_#relation`` can hold a wildcard."""
        return (type_, relation) in self.holding


def _terminal_types(s: schema.Schema, type_: str, name: str) -> set[str]:
    """Object types of the subjects that ``type_#name`` can grant (for ``use typechecking``).

    A walk over every relation and permission that ``type_#name`` reaches, each visited once.
    """
    out: set[str] = set()
    seen = {(type_, name)}
    pending = [(type_, name)]

    def reach(key: tuple[str, str]) -> None:
        if key not in seen:
            seen.add(key)
            pending.append(key)

    while pending:
        t_name, m_name = pending.pop()
        d = s.definitions.get(t_name)
        if d is None:
            continue
        rel = d.relations.get(m_name)
        if rel is not None:
            for t in rel.allowed:
                if t.relation is None or t.wildcard:
                    out.add(t.type)
                else:
                    reach((t.type, t.relation))
            continue
        perm = d.permissions.get(m_name)
        exprs: list[schema.Expr] = [perm.expr] if perm is not None else []
        while exprs:
            e = exprs.pop()
            if isinstance(e, schema.Computed):
                reach((t_name, e.name))
            elif isinstance(e, schema.Self):
                out.add(t_name)
            elif isinstance(e, (schema.Union, schema.Intersection)):
                exprs.extend(e.children)
            elif isinstance(e, schema.Exclusion):
                exprs.append(e.base)
            elif isinstance(e, schema.Arrow):
                left = d.relations.get(e.relation)
                for t in left.allowed if left else ():
                    if s.member(t.type, e.target) is not None:
                        reach((t.type, e.target))
    return out
