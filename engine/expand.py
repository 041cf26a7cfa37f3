"""Expand: the tree of subjects that have a relation or permission on a resource (SpiceDB's ExpandPermissionTree).

:func:`expand` builds the tree of ``resource#name`` fully: subject sets are
expanded in turn and arrows are followed, down to terminal subjects. It reads like
the language, one function per expression form, and shares its semantics with
the check engine (:mod:`.check`):

- A relation is a leaf listing its direct subjects (objects, wildcards and subject
  sets); when some are subject sets, it is a union of that leaf and the expansion of
  each subject set.
- A permission is a union, intersection or exclusion node named ``resource#permission``
  (a single computed relation, arrow, ``nil`` or ``self`` is wrapped in a one-child union,
  as SpiceDB does). ``nil`` is an empty leaf, ``self`` a leaf holding the resource.
- ``rel->p`` / ``rel.any(p)`` is a union over the subject objects of ``rel`` of their
  ``p``; ``rel.all(p)`` an intersection (no relationships: an intersection of nothing,
  which grants nothing). A subject type without ``p`` (or a wildcard) gives an empty leaf.
- Caveats, as in check: stored context wins over ``context``; a relationship whose caveat
  is false is left out (under ``.all()`` it becomes an empty leaf, which empties the
  intersection, as check says false); an undecided one is kept and marked ``caveated``
  (on the leaf subject, or on the node its subject set or arrow hop expands to). A caveat
  that fails to evaluate under ``context`` (a value of the wrong type) is undecided too:
  expand, like SpiceDB's (which evaluates no caveat), does not fail for it.
  Expired relationships are invisible (the reader hides them).
- Cycles in the data: an ``object#relation`` already on the current path expands to an
  empty leaf there. Going deeper than ``max_depth`` raises :class:`MaxDepthExceededError`
  naming the path.

:func:`~.membership.found_subjects` reduces a tree to its terminal subjects with
SpiceDB's membership-set rules (see its docstring); validation files compare
against those.

Example::

    >>> from headwater.dsl import compile_schema
    >>> from headwater.engine.relationships import ObjectRef, parse_relationship
    >>> from headwater.engine.store.memory import MemoryStore
    >>> from headwater.engine.store import Operation, Update
    >>> schema = compile_schema('''
    ... definition user {}
    ... definition group {
    ...     relation member: user | group#member
    ... }
    ... definition doc {
    ...     relation viewer: user | group#member
    ...     permission view = viewer
    ... }''')
    >>> store = MemoryStore()
    >>> _ = store.write([Update(Operation.TOUCH, parse_relationship(r)) for r in
    ...                  ("doc:1#viewer@user:ann", "doc:1#viewer@group:eng#member", "group:eng#member@user:bob")])
    >>> with store.snapshot() as reader:
    ...     tree = expand(schema, reader, ObjectRef("doc", "1"), "view")
    >>> print(format_tree(tree))
    doc:1#view union
      doc:1#viewer union
        doc:1#viewer: group:eng#member, user:ann
        group:eng#member: user:bob
    >>> from headwater.engine.membership import found_subjects
    >>> [f.validation_string() for f in found_subjects(tree)]
    ['group:eng#member', 'user:ann', 'user:bob']
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..dsl import schema as s
from .budget import Budget
from .caveats import caveat_verdict
from .errors import CaveatEvaluationError, InvalidRequestError, MaxDepthExceededError, UnknownPermissionError
from .lineage import Lineage
from .outcome import Tri
from .relationships import ObjectRef, Relationship, SubjectRef, stored_object
from .store import Reader, Row

__all__ = ["ExpandNode", "ExpandOperation", "ExpandedSubject", "expand", "format_tree"]


class ExpandOperation(enum.Enum):
    """How the children of an expand node combine (a leaf has no operation)."""

    UNION = "union"
    INTERSECTION = "intersection"
    EXCLUSION = "exclusion"  # the first child minus the others


@dataclass(frozen=True, slots=True)
class ExpandedSubject:
    """A direct subject of a relation, with the relationship that names it."""

    subject: SubjectRef
    relationship: Relationship | None  # None only for `self`
    caveated: bool = False  # the relationship's caveat is undecided with the context given


@dataclass(frozen=True, slots=True)
class ExpandNode:
    """One node of an expand tree: the expansion of ``resource#name`` (or of part of its expression)."""

    resource: ObjectRef
    name: str
    operation: ExpandOperation | None = None  # None: a leaf
    children: tuple[ExpandNode, ...] = ()
    subjects: tuple[ExpandedSubject, ...] = ()  # leaf only: the direct subjects
    # Reached through a subject set or arrow hop whose relationship's caveat is undecided:
    # everything below holds only if that caveat does.
    caveated: bool = False

    @property
    def is_leaf(self) -> bool:
        return self.operation is None

    def as_dict(self) -> dict[str, Any]:
        """The tree as plain data (for JSON)."""
        out: dict[str, Any] = {"resource": str(self.resource), "name": self.name}
        if self.caveated:
            out["caveated"] = True
        if self.operation is None:
            out["subjects"] = [{"subject": str(x.subject), "caveated": x.caveated,
                                "relationship": str(x.relationship) if x.relationship else None}
                               for x in self.subjects]
        else:
            out["operation"] = self.operation.value
            out["children"] = [c.as_dict() for c in self.children]
        return out


def expand(schema: s.Schema, reader: Reader, resource: ObjectRef, name: str, *,
           context: Mapping[str, Any] | None = None, max_depth: int = 50, lineage: Lineage | None = None,
           budget: Budget | None = None) -> ExpandNode:
    """The fully expanded tree of ``resource#name`` (a relation or permission) at ``reader``'s revision. Each
    node of the tree and each row read spends from ``budget`` (a tree can be far larger than the data)."""
    return _Expander(schema, reader, context or {}, max_depth, lineage, budget).expand(resource, name, ())


_Path = tuple[tuple[ObjectRef, str], ...]


def _free(units: int) -> None:
    """Spending without a budget."""


class _Expander:
    def __init__(self, schema: s.Schema, reader: Reader, context: Mapping[str, Any], max_depth: int,
                 lineage: Lineage | None, budget: Budget | None) -> None:
        self.schema = schema
        self.reader = reader
        self.context = context
        self.max_depth = max_depth
        self._lineage_walker = lineage
        self._spend = budget.spend if budget is not None else _free

    # ------------------------------------------------------------ entry

    def expand(self, resource: ObjectRef, name: str, path: _Path) -> ExpandNode:
        self._spend(1)
        if (resource, name) in path:
            return ExpandNode(resource, name)  # a cycle in the data: nothing more along this path
        if len(path) >= self.max_depth:
            steps = [f"{r}#{n}" for r, n in (*path, (resource, name))]
            raise MaxDepthExceededError(f"maximum depth exceeded expanding {steps[0]}: {' -> '.join(steps)}")
        member = self.schema.member(resource.type, name)
        if member is None:
            if resource.type not in self.schema.definitions:
                raise UnknownPermissionError(f"object definition `{resource.type}` not found")
            raise UnknownPermissionError(f"relation/permission `{name}` not found under definition "
                                         f"`{resource.type}`")
        path = (*path, (resource, name))
        if isinstance(member, s.Relation):
            return self._relation(resource, name, path)
        node = self._expr(resource, name, member.expr, path)
        if isinstance(member.expr, (s.Union, s.Intersection, s.Exclusion)):
            return node
        return ExpandNode(resource, name, ExpandOperation.UNION, (node,))

    # ------------------------------------------------------------ relations

    def _relation(self, resource: ObjectRef, name: str, path: _Path) -> ExpandNode:
        direct: list[ExpandedSubject] = []
        nested: list[ExpandNode] = []
        rows = self.reader.relationships(resource.type, resource.id, name)
        self._spend(len(rows))
        for row in rows:
            holds = self._caveat(row)
            if holds is Tri.FALSE:
                continue
            caveated = holds is Tri.UNKNOWN
            r = row.relationship()
            direct.append(ExpandedSubject(r.subject, r, caveated))
            if row.subject_relation:
                child = self.expand(stored_object(row.subject_type, row.subject_id), row.subject_relation, path)
                nested.append(replace(child, caveated=caveated))
        leaf = ExpandNode(resource, name, subjects=tuple(direct))
        if not nested:
            return leaf
        return ExpandNode(resource, name, ExpandOperation.UNION, (leaf, *nested))

    def _caveat(self, row: Row) -> Tri:
        """Whether the relationship's caveat holds: TRUE (or no caveat), FALSE, or UNKNOWN (context missing)."""
        if row.caveat_name is None:
            return Tri.TRUE
        try:
            return caveat_verdict(self.schema, self.context, row)[0]
        except CaveatEvaluationError:
            return Tri.UNKNOWN  # undecided under this context: kept and marked, as SpiceDB's expand (which
            # evaluates no caveat) keeps every caveated subject; a check that depends on it fails instead


    # ------------------------------------------------------------ expressions

    def _expr(self, resource: ObjectRef, name: str, e: s.Expr, path: _Path) -> ExpandNode:
        if isinstance(e, s.Computed):
            return self.expand(resource, e.name, path)
        if isinstance(e, s.Union):
            return self._set(resource, name, ExpandOperation.UNION, e.children, path)
        if isinstance(e, s.Intersection):
            return self._set(resource, name, ExpandOperation.INTERSECTION, e.children, path)
        if isinstance(e, s.Exclusion):
            return self._set(resource, name, ExpandOperation.EXCLUSION, (e.base, e.subtracted), path)
        if isinstance(e, s.Arrow):
            return self._arrow(resource, name, e, path)
        if isinstance(e, s.Nil):
            return ExpandNode(resource, name)
        if isinstance(e, s.Self):
            return ExpandNode(resource, name, subjects=(ExpandedSubject(SubjectRef(resource.type, resource.id), None),))
        if isinstance(e, s.Cleared):
            return self._cleared(resource, name, e.classification, path)
        if isinstance(e, s.Upstream):
            return self._upstream(resource, name, e.permission, path)
        raise InvalidRequestError(f"expand does not support `{type(e).__name__}` expressions ({resource}#{name})")

    def _everyone(self, resource: ObjectRef, name: str, types: Iterable[str]) -> ExpandNode:
        """A leaf standing for every subject (a requirement that asks nothing): ``type:*`` per subject type."""
        subjects = tuple(ExpandedSubject(SubjectRef(t, "*"), None) for t in sorted(set(types)))
        return ExpandNode(resource, name, subjects=subjects)

    def _cleared(self, resource: ObjectRef, name: str, classification: str | None, path: _Path) -> ExpandNode:
        """Headwater: the intersection, over the label's requirements, of the union of the subjects cleared
        on each value that meets it; every subject when the label asks for nothing."""
        requirements = self._lineage().requirements(resource, classification)
        if not requirements:
            return self._everyone(resource, name, self._clearable_types())
        children = []
        for cname, values in requirements:
            options = tuple(self.expand(ObjectRef(cname, v), "cleared", path) for v in values)
            children.append(ExpandNode(resource, name, ExpandOperation.UNION, options))
        return ExpandNode(resource, name, ExpandOperation.INTERSECTION, tuple(children))

    def _upstream(self, resource: ObjectRef, name: str, permission: str, path: _Path) -> ExpandNode:
        """Headwater: the intersection of ``permission`` on every upstream object that defines it."""
        nodes = tuple(self.expand(obj, permission, path) for obj, _ in self._lineage().upstream(resource)
                      if self.schema.member(obj.type, permission) is not None)
        if not nodes:
            types = [t for t in self.schema.definitions if t not in self.schema.classifications]
            return self._everyone(resource, name, types)
        return ExpandNode(resource, name, ExpandOperation.INTERSECTION, nodes)

    def _lineage(self) -> Lineage:
        if self._lineage_walker is None:
            self._lineage_walker = Lineage(self.schema, self.reader)
        return self._lineage_walker

    def _clearable_types(self) -> list[str]:
        return [t.type for c in self.schema.classifications for t in self.schema.definitions[c].relations[
            "cleared"].allowed if t.relation is None]

    def _set(self, resource: ObjectRef, name: str, op: ExpandOperation, children: Iterable[s.Expr],
             path: _Path) -> ExpandNode:
        return ExpandNode(resource, name, op, tuple(self._expr(resource, name, c, path) for c in children))

    def _arrow(self, resource: ObjectRef, name: str, e: s.Arrow, path: _Path) -> ExpandNode:
        every = e.mode is s.ArrowMode.ALL
        children: list[ExpandNode] = []
        rows = self.reader.relationships(resource.type, resource.id, e.relation)
        self._spend(len(rows))
        for row in rows:
            holds = self._caveat(row)
            if holds is Tri.FALSE:
                if every:
                    children.append(ExpandNode(resource, name))  # a false caveat fails all()
                continue
            if row.subject_id == "*" or self.schema.member(row.subject_type, e.target) is None:
                children.append(ExpandNode(resource, name))  # this subject's type has no `target`: nothing
                continue
            child = self.expand(stored_object(row.subject_type, row.subject_id), e.target, path)
            children.append(replace(child, caveated=holds is Tri.UNKNOWN))
        op = ExpandOperation.INTERSECTION if every else ExpandOperation.UNION
        return ExpandNode(resource, name, op, tuple(children))


def format_tree(node: ExpandNode, indent: str = "") -> str:
    """The tree as indented text: ``resource#name operation`` or ``resource#name: subjects`` per line."""
    mark = " [caveated]" if node.caveated else ""
    if node.operation is None:
        subjects = ", ".join(str(x.subject) + ("[...]" if x.caveated else "")
                             for x in sorted(node.subjects, key=lambda x: x.subject))
        return f"{indent}{node.resource}#{node.name}{mark}: {subjects or '(none)'}"
    lines = [f"{indent}{node.resource}#{node.name} {node.operation.value}{mark}"]
    lines += [format_tree(c, indent + "  ") for c in node.children]
    return "\n".join(lines)
