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

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..dsl import schema as s
from .budget import Budget
from .errors import MaxDepthExceededError
from .lineage import Lineage
from .relationships import ObjectRef, SubjectRef, stored_object
from .store import NO_SUBJECT_RELATION, Reader, RelationshipFilter, Row

__all__ = ["FRESH_ID", "candidate_resources", "candidate_subjects"]

# An id no relationship names (checked by the caller): stands for "any subject the walk never reached".
FRESH_ID = "hw-unreached-subject"
READ_PAGE = 4096  # rows per reverse read; the budget is checked between pages


def candidate_resources(schema: s.Schema, reader: Reader, resource_type: str, name: str,
                        subject: SubjectRef, budget: Budget | None = None, *, max_depth: int = 50) -> set[str]:
    """Ids of ``resource_type`` objects that may have ``name`` for ``subject`` (a superset of the answer).

    Each reverse read spends from ``budget``. Work is linear in what the walk finds: every id reaches each
    place that listens for it once. A candidate only reachable through more than ``max_depth`` hops from
    object to object could not be granted by Check either (each hop is a level of its depth limit), so a walk
    that would go further stops with :class:`~.errors.MaxDepthExceededError`, as Check does."""
    return _Backward(schema, reader, subject, budget, max_depth).run(resource_type, name)


_ANY = None  # an expression that does not narrow the candidates (a filter: ``cleared``, ``upstream``)


class _Node:
    """One expression of a permission: the candidates it holds so far, and where new ones go on to."""

    __slots__ = ("children", "dead", "expr", "key", "parent", "values")

    def __init__(self, expr: s.Expr, parent: _Node | None, key: tuple[str, str]) -> None:
        self.expr = expr
        self.parent = parent
        self.key = key  # the permission it belongs to (where the root's candidates go)
        self.children: list[_Node | None] = []  # None: a child that does not narrow (_ANY)
        self.values: set[str] = set()
        self.dead = False  # stands for nothing: an expression found not to narrow after it was built


class _Backward:
    """The least fixed point of "which objects of T might have relation/permission n", from the subject outwards.

    Found in layers: layer d holds what is reachable in d hops from object to object (a relationship read
    backwards); within an object, a permission's expressions pass new candidates on at once. Every
    (place, id) pair is handled once, so the work is linear in the candidates found, never one pass over
    everything per level as a naive fixed-point iteration would be (quadratic on a chain)."""

    def __init__(self, schema: s.Schema, reader: Reader, subject: SubjectRef, budget: Budget | None,
                 max_depth: int) -> None:
        self.schema = schema
        self.reader = reader
        self.subject = subject
        self.budget = budget
        self.max_depth = max_depth
        self.members: dict[tuple[str, str], set[str]] = {}
        # key -> what listens for its new members: ("set", (T, R), t) a subject-set read into relation T#R,
        # ("arrow", node, t) an arrow's read into an expression, ("computed", node) an expression naming it
        self.listeners: dict[tuple[str, str], list[tuple]] = {}
        self.now: deque[tuple[tuple[str, str], set[str]]] = deque()  # this layer's new members to pass on
        self.next: list[tuple[tuple[str, str] | _Node, frozenset[str]]] = []  # reads into the next layer
        self._reads: dict[tuple[str, str, SubjectRef], frozenset[str]] = {}
        self._all: dict[str, set[str]] = {}

    def run(self, type_: str, name: str) -> set[str]:
        self._discover(type_, name)
        depth = 0
        while True:
            while self.now:
                key, new = self.now.popleft()
                for listener in self.listeners.get(key, ()):
                    self._notify(listener, new)
            pending = [(to, ids - (to.values if isinstance(to, _Node) else self.members[to]))
                       for to, ids in self.next]
            pending = [(to, ids) for to, ids in pending if ids]
            self.next = []
            if not pending:
                return self.members[(type_, name)]
            depth += 1
            if depth > self.max_depth + 1:
                to, ids = pending[0]
                t, n = to.key if isinstance(to, _Node) else to
                raise MaxDepthExceededError(
                    f"maximum depth exceeded looking up {type_}#{name} for {self.subject}: {t}:{min(ids)} is more "
                    f"than {self.max_depth} relationships away from it (on the way to {t}#{n})")
            for to, ids in pending:
                self._add(to, set(ids))

    # --- the graph of places, from the schema ------------------------------------------------------------

    def _discover(self, type_: str, name: str) -> None:
        """Every key the answer depends on, with its listeners, then the seeds (direct reads, the subject)."""
        todo = [(type_, name)]
        seeds: list[tuple[tuple[str, str], set[str]]] = []
        while todo:
            key = todo.pop()
            if key in self.members:
                continue
            self.members[key] = set()
            t, n = key
            subj = self.subject
            if subj.relation == n and subj.type == t:
                seeds.append((key, {subj.id}))  # a subject set is a member of itself
            definition = self.schema.definitions.get(t)
            if definition is None:
                continue
            relation = definition.relations.get(n)
            if relation is not None:
                direct = set(self._read(t, n, subj))
                if subj.relation is None and any(a.wildcard and a.type == subj.type for a in relation.allowed):
                    direct |= self._read(t, n, SubjectRef(subj.type, "*"))
                seeds.append((key, direct))
                for a in relation.allowed:
                    if a.relation is not None:
                        self.listeners.setdefault((a.type, a.relation), []).append(("set", key, a))
                        todo.append((a.type, a.relation))
                continue
            permission = definition.permissions.get(n)
            if permission is None:
                continue
            root = self._build(definition, permission.expr, None, key, todo, seeds)
            if root is _ANY:
                seeds.append((key, set(self._all_ids(t))))
        for key, ids in seeds:
            self._add(key, ids)

    def _build(self, definition: s.Definition, e: s.Expr, parent: _Node | None, key: tuple[str, str],
               todo: list[tuple[str, str]], seeds: list) -> _Node | None:
        """The node of ``e`` (None for one that does not narrow), its listeners registered."""
        if isinstance(e, (s.Cleared, s.Upstream)):
            return _ANY
        node = _Node(e, parent, key)
        if isinstance(e, (s.Union, s.Intersection)):
            node.children = [self._build(definition, c, node, key, todo, seeds) for c in e.children]
            if (any(c is _ANY for c in node.children) if isinstance(e, s.Union)
                    else all(c is _ANY for c in node.children)):
                node.dead = True
                return _ANY
        elif isinstance(e, s.Exclusion):
            base = self._build(definition, e.base, node, key, todo, seeds)  # the subtracted side never adds
            if base is _ANY:
                node.dead = True
                return _ANY
            node.children = [base]
        elif isinstance(e, s.Computed):
            target = (definition.name, e.name)
            self.listeners.setdefault(target, []).append(("computed", node))
            todo.append(target)
        elif isinstance(e, s.Arrow):
            left = definition.relations.get(e.relation)
            for a in left.allowed if left is not None else ():
                if a.wildcard or self.schema.member(a.type, e.target) is None:
                    continue
                target = (a.type, e.target)
                self.listeners.setdefault(target, []).append(("arrow", node, a))
                todo.append(target)
        elif isinstance(e, s.Self):
            subj = self.subject
            if subj.relation is None and subj.type == definition.name:
                seeds.append((node, {subj.id}))
        return node  # Nil: a node that never holds anything

    # --- passing candidates on ---------------------------------------------------------------------------

    def _add(self, key: tuple[str, str] | _Node, ids: set[str]) -> None:
        if isinstance(key, _Node):
            self._offer(key, ids)
            return
        members = self.members[key]
        new = ids - members
        if new:
            members |= new
            self.now.append((key, new))

    def _notify(self, listener: tuple, new: set[str]) -> None:
        kind = listener[0]
        if kind == "computed":
            self._offer(listener[1], new)  # the same object: this layer
            return
        if kind == "set":
            _, (t, r), a = listener
            for x in new:
                self.next.append(((t, r), self._read(t, r, SubjectRef(a.type, x, a.relation))))
            return
        _, node, a = listener  # an arrow: one hop, the next layer
        t, r = node.key[0], node.expr.relation
        for x in new:
            self.next.append((node, self._read(t, r, SubjectRef(a.type, x, a.relation))))

    def _offer(self, node: _Node, ids: set[str]) -> None:
        """New candidates for ``node``: kept, then passed to its parent (or its permission)."""
        while not node.dead:
            new = ids - node.values
            if not new:
                return
            node.values |= new
            parent = node.parent
            if parent is None:
                self._add(node.key, new)
                return
            if isinstance(parent.expr, s.Intersection):
                others = [c for c in parent.children if c is not _ANY and c is not node]
                new = {x for x in new if all(x in c.values for c in others)}
            elif isinstance(parent.expr, s.Exclusion) and parent.children[0] is not node:
                return
            node, ids = parent, new

    # --- reads ---------------------------------------------------------------------------------------------

    def _read(self, type_: str, relation: str, subject: SubjectRef) -> frozenset[str]:
        """Ids of ``type_`` objects with a ``relation`` relationship naming exactly ``subject`` (a reverse read)."""
        key = (type_, relation, subject)
        hit = self._reads.get(key)
        if hit is None:
            hit = frozenset(row.resource_id for row in self._pages(RelationshipFilter(
                resource_type=type_, relation=relation, subject_type=subject.type, subject_id=subject.id,
                subject_relation=subject.relation or NO_SUBJECT_RELATION)))
            self._reads[key] = hit
        return hit

    def _pages(self, filter: RelationshipFilter) -> Iterator[Row]:
        """The rows ``filter`` matches, read :data:`READ_PAGE` at a time, each page paid for before the next is
        read (so a deadline or the work limit stops a read of a million rows within one page)."""
        after = None
        while True:
            page = self.reader.read(filter, after=after, limit=READ_PAGE)
            if self.budget is not None:
                self.budget.spend(1 + len(page))
            yield from page
            if len(page) < READ_PAGE:
                return
            after = page[-1].key

    def _all_ids(self, type_: str) -> set[str]:
        """Every object of ``type_`` that appears in a relationship (for ``cleared``/``upstream`` alone)."""
        hit = self._all.get(type_)
        if hit is None:
            hit = {row.resource_id for row in self._pages(RelationshipFilter(resource_type=type_))}
            hit |= {row.subject_id for row in self._pages(RelationshipFilter(subject_type=type_))
                    if row.subject_id != "*"}
            self._all[type_] = hit
        return hit


@dataclass
class SubjectCandidates:
    """What the forward walk reached: concrete subject ids of the wanted type, and whether a wildcard was seen."""

    ids: set[str]
    wildcard: bool


def candidate_subjects(schema: s.Schema, reader: Reader, resource: ObjectRef, name: str, subject_type: str,
                       subject_relation: str | None, budget: Budget | None = None) -> SubjectCandidates:
    """Subjects of ``subject_type`` (``#subject_relation``) that may have ``name`` on ``resource`` (a superset).
    Each (object, relation) the walk reaches spends from ``budget``, and so does each row it reads."""
    found = SubjectCandidates(set(), False)
    lineage = Lineage(schema, reader, budget=budget)
    spend = budget.spend if budget is not None else None
    seen: set[tuple[ObjectRef, str]] = set()
    stack: list[tuple[ObjectRef, str]] = [(resource, name)]

    def reach(obj: ObjectRef, n: str) -> None:
        if (obj, n) not in seen:
            stack.append((obj, n))

    # `cleared` and `upstream(p)` beside a granting branch of an intersection only narrow it: they are walked
    # only if a wildcard turns up (then the subjects they reach may be the ones that hold the permission);
    # otherwise every subject that has the intersection is reached through its granting branch. Walking them
    # always would make every holder of a clearance a candidate for every labeled object.
    deferred: list[tuple[ObjectRef, s.Expr]] = []
    while stack or (found.wildcard and deferred):
        if not stack:
            for deferred_obj, e in deferred:
                _reach_narrowing(schema, lineage, deferred_obj, e, reach)
            deferred.clear()
            continue
        obj, n = stack.pop()
        if (obj, n) in seen:
            continue
        seen.add((obj, n))
        if subject_relation is not None and obj.type == subject_type and n == subject_relation:
            found.ids.add(obj.id)  # the subject set obj#n itself
        definition = schema.definitions.get(obj.type)
        if definition is None:
            continue
        if spend is not None:
            spend(1)
        if n in definition.relations:
            rows = reader.relationships(obj.type, obj.id, n)
            if spend is not None:
                spend(len(rows))
            for row in rows:
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
        deferred_narrowing: list[s.Expr] = []
        for e in _walk(permission.expr, deferred_narrowing, lambda c, t=obj.type: _reached_holders(schema, t, c)):
            if isinstance(e, s.Computed):
                reach(obj, e.name)
            elif isinstance(e, s.Arrow):
                rows = reader.relationships(obj.type, obj.id, e.relation)
                if spend is not None:
                    spend(len(rows))
                for row in rows:
                    if row.subject_id != "*" and schema.member(row.subject_type, e.target) is not None:
                        reach(stored_object(row.subject_type, row.subject_id), e.target)
            elif isinstance(e, s.Self) and subject_relation is None and obj.type == subject_type:
                found.ids.add(obj.id)
            elif isinstance(e, (s.Cleared, s.Upstream)):
                _reach_narrowing(schema, lineage, obj, e, reach)
        deferred.extend((obj, e) for e in deferred_narrowing)
    return found


def _reach_narrowing(schema: s.Schema, lineage: Lineage, obj: ObjectRef, e: s.Expr,
                     reach: Callable[[ObjectRef, str], None]) -> None:
    """Reach what ``cleared`` (the clearances of obj's effective label) or ``upstream(p)`` (p upstream) names."""
    if isinstance(e, s.Cleared):
        for classification, values in lineage.requirements(obj, e.classification):
            for v in values:
                reach(ObjectRef(classification, v), "cleared")
    elif isinstance(e, s.Upstream):
        for up, _ in lineage.upstream(obj):
            if schema.member(up.type, e.permission) is not None:
                reach(up, e.permission)


def _walk(e: s.Expr, deferred: list[s.Expr] | None = None,
          reached: Callable[[s.Expr], bool] | None = None) -> Iterable[s.Expr]:
    """Every node of an expression (all branches, subtracted sides included); with ``deferred``, the ``cleared``
    and ``upstream(p)`` children of an intersection go there instead when another child's holders are all
    ``reached`` by the walk (see :func:`_reached_holders`)."""
    stack = [e]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, s.Intersection) and deferred is not None and reached is not None:
            narrowing = [c for c in node.children if isinstance(c, (s.Cleared, s.Upstream))]
            if narrowing and any(reached(c) for c in node.children if c not in narrowing):
                deferred.extend(narrowing)
                stack.extend(c for c in node.children if c not in narrowing)
                continue
            stack.extend(node.children)
        elif isinstance(node, (s.Union, s.Intersection)):
            stack.extend(node.children)
        elif isinstance(node, s.Exclusion):
            stack.extend((node.base, node.subtracted))


_REACHED: dict[str, dict[tuple[str, str], bool]] = {}  # schema digest -> (type, member) -> holders all reached


def _reached_holders(schema: s.Schema, type_: str, e: s.Expr,
                     table: dict[tuple[str, str], bool] | None = None) -> bool:
    """Whether every subject holding ``e`` on an object of ``type_`` is reached by the forward walk (or the walk
    meets a wildcard): true of relations and what is built from them; not of ``cleared`` and ``upstream(p)``,
    which hold for subjects no relationship names (a level that needs no clearance, nothing upstream)."""
    if table is None:
        table = _reached_table(schema)
    if isinstance(e, (s.Cleared, s.Upstream)):
        return False
    if isinstance(e, (s.Nil, s.Self)):
        return True
    if isinstance(e, s.Union):
        return all(_reached_holders(schema, type_, c, table) for c in e.children)
    if isinstance(e, s.Intersection):
        return any(_reached_holders(schema, type_, c, table) for c in e.children)
    if isinstance(e, s.Exclusion):
        return _reached_holders(schema, type_, e.base, table)
    if isinstance(e, s.Computed):
        return table.get((type_, e.name), True)
    if isinstance(e, s.Arrow):
        relation = schema.member(type_, e.relation)
        return isinstance(relation, s.Relation) and all(table.get((t.type, e.target), True) for t in relation.allowed)
    return False


def _reached_table(schema: s.Schema) -> dict[tuple[str, str], bool]:
    """:func:`_reached_holders` of every relation and permission of ``schema``, once per schema: the greatest
    fixed point (a cycle of unions and intersections grants nothing by itself, so it holds what its other parts
    hold), built whole before it is shared."""
    table = _REACHED.get(schema.digest) if schema.digest else None
    if table is not None:
        return table
    table = {(d.name, n): True for d in schema.definitions.values() for n in (*d.relations, *d.permissions)}
    changed = True
    while changed:
        changed = False
        for d in schema.definitions.values():
            for r in d.relations.values():
                value = all(t.relation is None or table.get((t.type, t.relation), True) for t in r.allowed)
                if table[(d.name, r.name)] and not value:
                    table[(d.name, r.name)], changed = False, True
            for p in d.permissions.values():
                if table[(d.name, p.name)] and not _reached_holders(schema, d.name, p.expr, table):
                    table[(d.name, p.name)], changed = False, True
    if len(_REACHED) > 64:
        _REACHED.clear()
    if schema.digest:
        _REACHED[schema.digest] = table
    return table
