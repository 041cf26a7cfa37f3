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
  (on the leaf subject, or on the node its subject set or arrow hop expands to).
  Expired relationships are invisible (the reader hides them).
- Cycles in the data: an ``object#relation`` already on the current path expands to an
  empty leaf there. Going deeper than ``max_depth`` raises :class:`MaxDepthExceededError`
  naming the path.

:func:`found_subjects` reduces a tree to its terminal subjects with SpiceDB's
membership-set rules (see its docstring); validation files compare against those.

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
    >>> [f.validation_string() for f in found_subjects(tree)]
    ['group:eng#member', 'user:ann', 'user:bob']
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..dsl import schema as s
from .dispatch import Tri
from .check import caveat_verdict
from .errors import InvalidRequestError, MaxDepthExceededError, UnknownPermissionError
from .lineage import Lineage
from .relationships import ObjectRef, Relationship, SubjectRef
from .store import Reader

__all__ = ["ExpandNode", "ExpandOperation", "ExpandedSubject", "FoundSubject", "expand", "format_tree",
           "found_subjects"]


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
           context: Mapping[str, Any] | None = None, max_depth: int = 50) -> ExpandNode:
    """The fully expanded tree of ``resource#name`` (a relation or permission) at ``reader``'s revision."""
    return _Expander(schema, reader, context or {}, max_depth).expand(resource, name, ())


_Path = tuple[tuple[ObjectRef, str], ...]


class _Expander:
    def __init__(self, schema: s.Schema, reader: Reader, context: Mapping[str, Any], max_depth: int) -> None:
        self.schema = schema
        self.reader = reader
        self.context = context
        self.max_depth = max_depth
        self._lineage_walker: Lineage | None = None

    # ------------------------------------------------------------ entry

    def expand(self, resource: ObjectRef, name: str, path: _Path) -> ExpandNode:
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
        for r in self.reader.subjects(resource, name):
            holds = self._caveat(r)
            if holds is Tri.FALSE:
                continue
            caveated = holds is Tri.UNKNOWN
            direct.append(ExpandedSubject(r.subject, r, caveated))
            sr = r.subject
            if sr.relation is not None:
                child = self.expand(ObjectRef(sr.type, sr.id), sr.relation, path)
                nested.append(replace(child, caveated=caveated))
        leaf = ExpandNode(resource, name, subjects=tuple(direct))
        if not nested:
            return leaf
        return ExpandNode(resource, name, ExpandOperation.UNION, (leaf, *nested))

    def _caveat(self, r: Relationship) -> Tri:
        """Whether the relationship's caveat holds: TRUE (or no caveat), FALSE, or UNKNOWN (context missing)."""
        if r.caveat is None:
            return Tri.TRUE
        return caveat_verdict(self.schema, self.context, r)[0]

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
        for r in self.reader.subjects(resource, e.relation):
            holds = self._caveat(r)
            if holds is Tri.FALSE:
                if every:
                    children.append(ExpandNode(resource, name))  # a false caveat fails all()
                continue
            sr = r.subject
            if sr.id == "*" or self.schema.member(sr.type, e.target) is None:
                children.append(ExpandNode(resource, name))  # this subject's type has no `target`: nothing
                continue
            child = self.expand(ObjectRef(sr.type, sr.id), e.target, path)
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


# ---------------------------------------------------------------- terminal subjects (membership sets)


@dataclass(frozen=True, slots=True)
class FoundSubject:
    """A terminal subject of an expand tree, with the ``object#relation`` leaves it was found under."""

    subject: SubjectRef
    relations: frozenset[str] = frozenset()  # "type:id#relation" of the relationships that reach it
    caveated: bool = False
    excluded: tuple[FoundSubject, ...] = ()  # for a wildcard: the subjects it does not cover

    def validation_string(self) -> str:
        """SpiceDB's form: ``user:tom``, ``user:tom[...]`` (caveated), ``user:* - {user:a, user:b[...]}``."""
        text = str(self.subject) + ("[...]" if self.caveated else "")
        if self.subject.is_wildcard and self.excluded:
            text += " - {" + ", ".join(sorted(x.validation_string() for x in self.excluded)) + "}"
        return text

    def covers(self, subject: SubjectRef) -> bool | None:
        """Whether this found subject includes ``subject``: True, False, or None when only under a caveat."""
        if self.subject == subject:
            return None if self.caveated else True
        if not self.subject.is_wildcard or subject.relation is not None or subject.type != self.subject.type:
            return False
        exclusion = next((x for x in self.excluded if x.subject.id == subject.id), None)
        if exclusion is not None and not exclusion.caveated:
            return False
        return None if self.caveated or exclusion is not None else True


def found_subjects(node: ExpandNode) -> list[FoundSubject]:
    """The terminal subjects of an expand tree, by SpiceDB's membership-set rules (sorted by subject).

    These are the rules of SpiceDB's ``internal/developmentmembership`` (``membership.go``,
    ``trackingsubjectset.go``) over ``internal/datasets/basesubjectset.go``, which its
    validation files are checked with:

    - Subjects are grouped by ``type#relation``; each group holds concrete subjects and at
      most one wildcard (with excluded subjects). A leaf contributes each subject, found under
      the leaf's ``resource#relation``; merging two entries for one subject unions their
      relation sets (an entry built from several sources gets all their relations).
    - Union: add everything. A concrete subject and a wildcard both stay; a concrete subject
      added to a wildcard removes it from the wildcard's exclusions (unless the subject is
      caveated, then the exclusion stays, caveated). Two wildcards: caveated only if both
      are; their exclusions are intersected.
    - Intersection (first child, then each further child): groups missing on either side
      go. A concrete subject stays if it is on both sides, or if the other side has a
      wildcard not excluding it (a caveated wildcard or exclusion makes it caveated); a
      wildcard stays only when both sides have one (exclusions united). An empty intersection
      (``.all()`` over no relationships) is empty.
    - Exclusion (first child minus each further child, group by group): a subtracted
      concrete subject is removed (made caveated if the subtracted one is caveated, gaining
      its relations); subtracted from a wildcard it becomes an exclusion of the wildcard
      (``user:* - {user:banned}``). A subtracted wildcard removes every concrete subject it
      does not exclude and removes the wildcard; what the subtracted wildcard excludes and
      the first one did not becomes concrete. A caveated subtracted wildcard makes them
      caveated instead.
    - A caveat on a node (a caveated subject set or arrow hop) makes everything under it
      caveated. Caveats are only tracked as present or not (``[...]``).
    """
    return sorted(_membership(node).subjects(), key=lambda f: f.subject)


def _membership(node: ExpandNode) -> _Membership:
    if node.operation is None:
        out = _Membership()
        onr = f"{node.resource}#{node.name}"
        for x in node.subjects:
            out.add(FoundSubject(x.subject, frozenset((onr,)), x.caveated))
    elif node.operation is ExpandOperation.UNION:
        out = _Membership()
        for child in node.children:
            out.add_all(_membership(child))
    elif not node.children:
        out = _Membership()
    elif node.operation is ExpandOperation.INTERSECTION:
        out = _membership(node.children[0])
        for child in node.children[1:]:
            out = out.intersect(_membership(child))
    else:
        out = _membership(node.children[0])
        for child in node.children[1:]:
            out = out.exclude(_membership(child))
    return out.under_caveat() if node.caveated else out


class _Membership:
    """Found subjects grouped by ``(type, relation)`` (SpiceDB's TrackingSubjectSet)."""

    def __init__(self, groups: dict[tuple[str, str | None], _Group] | None = None) -> None:
        self.groups = groups if groups is not None else {}

    def _group(self, key: tuple[str, str | None]) -> _Group:
        if key not in self.groups:
            self.groups[key] = _Group(key)
        return self.groups[key]

    def add(self, fs: FoundSubject) -> None:
        self._group((fs.subject.type, fs.subject.relation)).add(fs)

    def add_all(self, other: _Membership) -> None:
        for key, group in other.groups.items():
            for fs in group.as_list():
                self._group(key).add(fs)

    def intersect(self, other: _Membership) -> _Membership:
        out = {}
        for key, group in self.groups.items():
            if key in other.groups:
                out[key] = group.clone()
                out[key].intersect(other.groups[key])
        return _Membership(out)

    def exclude(self, other: _Membership) -> _Membership:
        out = {}
        for key, group in self.groups.items():
            out[key] = group.clone()
            if key in other.groups:
                for fs in other.groups[key].as_list():
                    out[key].subtract(fs)
        return _Membership(out)

    def under_caveat(self) -> _Membership:
        out = {}
        for key, group in self.groups.items():
            out[key] = _Group(key)
            out[key].concrete = {i: group.make(i, True, (), c) for i, c in group.concrete.items()}
            if group.wildcard is not None:
                out[key].wildcard = group.make("*", True, group.wildcard.excluded, group.wildcard)
        return _Membership(out)

    def subjects(self) -> list[FoundSubject]:
        return [fs for group in self.groups.values() for fs in group.as_list()]


class _Group:
    """The subjects of one ``type#relation``: concrete ones by id, and at most one wildcard (BaseSubjectSet).

    Caveats are booleans here, which is exact for the rules, as they only ever ask whether
    an expression is present: ``and``/``or`` are caveated when either side is; SpiceDB's
    short-circuited ``or`` is caveated only when both are; ``not`` keeps it.
    """

    def __init__(self, key: tuple[str, str | None]) -> None:
        self.key = key
        self.concrete: dict[str, FoundSubject] = {}
        self.wildcard: FoundSubject | None = None

    def make(self, subject_id: str, caveated: bool, excluded: Iterable[FoundSubject],
             *sources: FoundSubject | None) -> FoundSubject:
        relations = frozenset().union(*(src.relations for src in sources if src is not None))
        return FoundSubject(SubjectRef(self.key[0], subject_id, self.key[1]), relations, caveated, tuple(excluded))

    def clone(self) -> _Group:
        out = _Group(self.key)
        out.concrete = dict(self.concrete)
        out.wildcard = self.wildcard
        return out

    def as_list(self) -> list[FoundSubject]:
        return list(self.concrete.values()) + ([self.wildcard] if self.wildcard is not None else [])

    def _set_concrete(self, subject_id: str, fs: FoundSubject | None) -> None:
        if fs is None:
            self.concrete.pop(subject_id, None)
        else:
            self.concrete[subject_id] = fs

    # ------------------------------------------------------------ union

    def add(self, fs: FoundSubject) -> None:
        if fs.subject.is_wildcard:
            wildcard = self._union_wildcards(self.wildcard, fs)
            for concrete in self.concrete.values():
                wildcard = self._union_wildcard_concrete(wildcard, concrete)
            self.wildcard = wildcard
            return
        self._set_concrete(fs.subject.id, self._union_concretes(self.concrete.get(fs.subject.id), fs))
        self.wildcard = self._union_wildcard_concrete(self.wildcard, fs)

    def _union_wildcards(self, existing: FoundSubject | None, adding: FoundSubject) -> FoundSubject:
        if existing is None:
            return adding
        # Exclusions are intersected: what one wildcard excludes, the other may include.
        mine, theirs = _Group(self.key), _Group(self.key)
        for x in existing.excluded:
            mine.add(x)
        for x in adding.excluded:
            theirs.add(x)
        mine.intersect(theirs)
        return self.make("*", existing.caveated and adding.caveated, mine.as_list(), existing, adding)

    def _union_wildcard_concrete(self, wildcard: FoundSubject | None, adding: FoundSubject) -> FoundSubject | None:
        if wildcard is None:
            return None
        excluded = []
        for x in wildcard.excluded:
            if x.subject.id != adding.subject.id:
                excluded.append(x)
            elif adding.caveated:  # still excluded when the added subject's caveat is false
                excluded.append(self.make(adding.subject.id, True, (), x, adding))
        return self.make("*", wildcard.caveated, excluded, wildcard)

    def _union_concretes(self, existing: FoundSubject | None, adding: FoundSubject | None) -> FoundSubject | None:
        if existing is None:
            return adding
        if adding is None:
            return existing
        return self.make(existing.subject.id, existing.caveated and adding.caveated, (), existing, adding)

    # ------------------------------------------------------------ exclusion

    def subtract(self, removing: FoundSubject) -> None:
        if removing.subject.is_wildcard:
            for concrete in list(self.concrete.values()):
                self._set_concrete(concrete.subject.id, self._subtract_wildcard_from_concrete(concrete, removing))
            self.wildcard, concretes = self._subtract_wildcards(self.wildcard, removing)
            for concrete in concretes:
                self._set_concrete(concrete.subject.id, concrete)
            return
        existing = self.concrete.get(removing.subject.id)
        if existing is not None:
            remaining = (self.make(existing.subject.id, True, (), existing, removing) if removing.caveated
                         else None)
            self._set_concrete(removing.subject.id, remaining)
        if self.wildcard is not None:
            self.wildcard = self._exclude_from_wildcard(self.wildcard, removing)

    def _subtract_wildcards(self, existing: FoundSubject | None,
                            removing: FoundSubject) -> tuple[FoundSubject | None, list[FoundSubject]]:
        if existing is None:
            return None, []
        if not removing.caveated and not removing.excluded:
            return None, []  # {*} - {*} = {}
        # What the removed wildcard excludes (and this one did not, for sure) stays, as concrete subjects.
        mine = {x.subject.id: x for x in existing.excluded}
        concretes = []
        for x in removing.excluded:
            prior = mine.get(x.subject.id)
            if prior is None or prior.caveated:
                caveated = existing.caveated or removing.caveated or x.caveated or prior is not None
                concretes.append(self.make(x.subject.id, caveated, (), x))
        if existing.caveated or removing.caveated:
            return self.make("*", True, existing.excluded, existing, removing), concretes
        return None, concretes

    def _subtract_wildcard_from_concrete(self, concrete: FoundSubject, wildcard: FoundSubject) -> FoundSubject | None:
        exclusion = next((x for x in wildcard.excluded if x.subject.id == concrete.subject.id), None)
        if exclusion is None:
            if not wildcard.caveated:
                return None
            return self.make(concrete.subject.id, True, (), concrete)
        if not exclusion.caveated:
            return concrete
        return self.make(concrete.subject.id, True, (), concrete)

    def _exclude_from_wildcard(self, wildcard: FoundSubject, removing: FoundSubject) -> FoundSubject:
        excluded, found = [], False
        for x in wildcard.excluded:
            if x.subject.id == removing.subject.id:
                excluded.append(self.make(removing.subject.id, x.caveated and removing.caveated, (), x, removing))
                found = True
            else:
                excluded.append(x)
        if not found:
            excluded.append(removing)
        return self.make("*", wildcard.caveated, excluded, wildcard)

    # ------------------------------------------------------------ intersection

    def intersect(self, other: _Group) -> None:
        mine, theirs = self.wildcard, other.wildcard
        self.wildcard = None
        if mine is not None and theirs is not None:
            excluded = _Group(self.key)
            for x in (*mine.excluded, *theirs.excluded):
                excluded.add(x)
            self.wildcard = self.make("*", mine.caveated or theirs.caveated, excluded.as_list(), mine, theirs)
        updated: dict[str, FoundSubject] = {}
        for concrete in self.concrete.values():
            other_concrete = other.concrete.get(concrete.subject.id)
            both = (self.make(concrete.subject.id, concrete.caveated or other_concrete.caveated, (), concrete,
                              other_concrete) if other_concrete is not None else None)
            result = self._union_concretes(both, self._intersect_with_wildcard(concrete, theirs))
            if result is not None:
                updated[concrete.subject.id] = result
        if mine is not None:
            for other_concrete in other.concrete.values():
                via_mine = self._intersect_with_wildcard(other_concrete, mine)
                result = self._union_concretes(updated.get(other_concrete.subject.id), via_mine)
                if result is not None:
                    updated[other_concrete.subject.id] = result
        self.concrete = updated

    def _intersect_with_wildcard(self, concrete: FoundSubject, wildcard: FoundSubject | None) -> FoundSubject | None:
        if wildcard is None:
            return None
        exclusion = next((x for x in wildcard.excluded if x.subject.id == concrete.subject.id), None)
        if exclusion is None:
            if not wildcard.caveated:
                return concrete
            return self.make(concrete.subject.id, True, (), concrete, wildcard)
        if not exclusion.caveated:
            return None
        return self.make(concrete.subject.id, True, (), concrete, wildcard, exclusion)
