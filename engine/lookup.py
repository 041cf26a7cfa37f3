"""Reverse questions: which resources may a subject reach, and which subjects reach a resource.

Both lookups work in two steps, so that they are exact by construction:

1. **Candidates**, a superset of the answer, found by walking the relationships
   (LookupResources walks *backwards* from the subject through the schema's
   relations and arrows; LookupSubjects walks *forwards* from the resource through
   every branch, the subtracted sides of exclusions included).
2. **Check** each candidate with the same evaluator that answers Check, at the
   same snapshot, sharing one memo (so shared sub-problems are evaluated once).
   A candidate is in the result when the check says HAS or CONDITIONAL.

So Check, LookupResources and LookupSubjects cannot disagree: a lookup's answer
is a set of checks. Wildcards in LookupSubjects: every subject the forward walk
never reaches is treated identically by the evaluator, so the answer for one
fresh, unused id stands for all of them; if it has the permission the result
contains ``type:*`` with the reached subjects that do not as exclusions.

Results come sorted by id, so pages (``after`` = the last id of the previous
page) concatenate to the full answer, each item exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..dsl import schema as s
from .lineage import Lineage
from .relationships import ObjectRef, SubjectRef, stored_object
from .store import NO_SUBJECT_RELATION, Reader, RelationshipFilter

__all__ = ["FRESH_ID", "candidate_resources", "candidate_subjects"]

# An id no relationship names (checked by the caller): stands for "any subject the walk never reached".
FRESH_ID = "hw-unreached-subject"


def candidate_resources(schema: s.Schema, reader: Reader, resource_type: str, name: str,
                        subject: SubjectRef) -> set[str]:
    """Ids of ``resource_type`` objects that may have ``name`` for ``subject`` (a superset of the answer)."""
    return _Backward(schema, reader, subject).run(resource_type, name)


class _Backward:
    """Least fixed point of "which objects of T might have relation/permission n", from the subject outwards."""

    def __init__(self, schema: s.Schema, reader: Reader, subject: SubjectRef) -> None:
        self.schema = schema
        self.reader = reader
        self.subject = subject
        self.values: dict[tuple[str, str], set[str]] = {}
        self.visited: set[tuple[str, str]] = set()
        self.changed = False
        self._resources_cache: dict[tuple[str, str, SubjectRef], frozenset[str]] = {}
        self._all: dict[str, set[str]] = {}

    def run(self, type_: str, name: str) -> set[str]:
        while True:
            self.visited = set()
            self.changed = False
            result = self.visit(type_, name)
            if not self.changed:
                return result

    def visit(self, type_: str, name: str) -> set[str]:
        key = (type_, name)
        if key in self.visited:
            return self.values.get(key, set())
        self.visited.add(key)
        new = self.compute(type_, name)
        old = self.values.get(key)
        if old is None or new != old:
            self.values[key] = new if old is None else old | new
            self.changed = self.changed or old is None or not new <= old
        return self.values[key]

    def _resources(self, type_: str, relation: str, subject: SubjectRef) -> frozenset[str]:
        """Ids of ``type_`` objects with a ``relation`` relationship naming exactly ``subject`` (a reverse read)."""
        key = (type_, relation, subject)
        hit = self._resources_cache.get(key)
        if hit is None:
            found = self.reader.read(RelationshipFilter(resource_type=type_, relation=relation,
                                                        subject_type=subject.type, subject_id=subject.id,
                                                        subject_relation=subject.relation or NO_SUBJECT_RELATION))
            hit = frozenset(row.resource_id for row in found)
            self._resources_cache[key] = hit
        return hit

    def compute(self, type_: str, name: str) -> set[str]:
        definition = self.schema.definitions.get(type_)
        out: set[str] = set()
        subj = self.subject
        if subj.relation == name and subj.type == type_:
            out.add(subj.id)  # a subject set is a member of itself
        if definition is None:
            return out
        relation = definition.relations.get(name)
        if relation is not None:
            out |= self._resources(type_, name, subj)
            if subj.relation is None and any(t.wildcard and t.type == subj.type for t in relation.allowed):
                out |= self._resources(type_, name, SubjectRef(subj.type, "*"))
            for t in relation.allowed:
                if t.relation is not None:
                    for x in list(self.visit(t.type, t.relation)):
                        out |= self._resources(type_, name, SubjectRef(t.type, x, t.relation))
            return out
        permission = definition.permissions.get(name)
        if permission is not None:
            found = self.expr(type_, definition, permission.expr)
            out |= self.all_ids(type_) if found is None else found
        return out

    def all_ids(self, type_: str) -> set[str]:
        """Every object of ``type_`` that appears in a relationship (for ``cleared``/``upstream`` alone)."""
        hit = self._all.get(type_)
        if hit is None:
            hit = {row.resource_id for row in self.reader.read(RelationshipFilter(resource_type=type_))}
            hit |= {row.subject_id for row in self.reader.read(RelationshipFilter(subject_type=type_))
                    if row.subject_id != "*"}
            self._all[type_] = hit
        return hit

    def expr(self, type_: str, definition: s.Definition, e: s.Expr) -> set[str] | None:
        """Candidate ids for ``e``, or None for "any object of the type" (a filter such as ``cleared``)."""
        if isinstance(e, s.Computed):
            return set(self.visit(type_, e.name))
        if isinstance(e, (s.Cleared, s.Upstream)):
            return None  # filters: they narrow an intersection and never add candidates of their own
        if isinstance(e, s.Union):
            acc: set[str] = set()
            for c in e.children:
                found = self.expr(type_, definition, c)
                if found is None:
                    return None
                acc |= found
            return acc
        if isinstance(e, s.Intersection):
            parts = [p for p in (self.expr(type_, definition, c) for c in e.children) if p is not None]
            if not parts:
                return None
            return set.intersection(*parts)
        if isinstance(e, s.Exclusion):
            return self.expr(type_, definition, e.base)
        if isinstance(e, s.Arrow):
            left = definition.relations.get(e.relation)
            acc = set()
            for t in left.allowed if left is not None else ():
                if t.wildcard or self.schema.member(t.type, e.target) is None:
                    continue
                for x in list(self.visit(t.type, e.target)):
                    acc |= self._resources(type_, e.relation, SubjectRef(t.type, x, t.relation))
            return acc
        if isinstance(e, s.Self):
            subj = self.subject
            return {subj.id} if subj.relation is None and subj.type == type_ else set()
        return set()  # Nil


@dataclass
class SubjectCandidates:
    """What the forward walk reached: concrete subject ids of the wanted type, and whether a wildcard was seen."""

    ids: set[str]
    wildcard: bool


def candidate_subjects(schema: s.Schema, reader: Reader, resource: ObjectRef, name: str, subject_type: str,
                       subject_relation: str | None) -> SubjectCandidates:
    """Subjects of ``subject_type`` (``#subject_relation``) that may have ``name`` on ``resource`` (a superset)."""
    found = SubjectCandidates(set(), False)
    lineage = Lineage(schema, reader)
    seen: set[tuple[ObjectRef, str]] = set()
    stack: list[tuple[ObjectRef, str]] = [(resource, name)]

    def reach(obj: ObjectRef, n: str) -> None:
        if (obj, n) not in seen:
            stack.append((obj, n))

    while stack:
        obj, n = stack.pop()
        if (obj, n) in seen:
            continue
        seen.add((obj, n))
        if subject_relation is not None and obj.type == subject_type and n == subject_relation:
            found.ids.add(obj.id)  # the subject set obj#n itself
        definition = schema.definitions.get(obj.type)
        if definition is None:
            continue
        if n in definition.relations:
            for row in reader.relationships(obj.type, obj.id, n):
                if row.subject_type == subject_type and (row.subject_relation or None) == subject_relation:
                    if row.subject_id == "*":
                        found.wildcard = True
                    else:
                        found.ids.add(row.subject_id)
                if row.subject_relation:
                    reach(stored_object(row.subject_type, row.subject_id), row.subject_relation)
            continue
        permission = definition.permissions.get(n)
        if permission is None:
            continue
        for e in _walk(permission.expr):
            if isinstance(e, s.Computed):
                reach(obj, e.name)
            elif isinstance(e, s.Arrow):
                for row in reader.relationships(obj.type, obj.id, e.relation):
                    if row.subject_id != "*" and schema.member(row.subject_type, e.target) is not None:
                        reach(stored_object(row.subject_type, row.subject_id), e.target)
            elif isinstance(e, s.Self) and subject_relation is None and obj.type == subject_type:
                found.ids.add(obj.id)
            elif isinstance(e, s.Cleared):
                for classification, values in lineage.requirements(obj, e.classification):
                    for v in values:
                        reach(ObjectRef(classification, v), "cleared")
            elif isinstance(e, s.Upstream):
                for up, _ in lineage.upstream(obj):
                    if schema.member(up.type, e.permission) is not None:
                        reach(up, e.permission)
    return found


def _walk(e: s.Expr) -> Iterable[s.Expr]:
    """Every node of an expression (all branches, subtracted sides included)."""
    stack = [e]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (s.Union, s.Intersection)):
            stack.extend(node.children)
        elif isinstance(node, s.Exclusion):
            stack.extend((node.base, node.subtracted))

