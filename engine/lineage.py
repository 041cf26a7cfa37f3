"""Lineage walks, effective labels with provenance, clearance requirements, cycle refusal.

Definitions (the normative semantics of Headwater's lineage and sensitivity):

- The *lineage graph* has a step ``X -r-> Y`` for every relationship ``X#r@Y``
  of a ``lineage`` relation ``r``. Objects *upstream* of X are those reachable
  through one or more steps, whatever their types. Writes keep the graph acyclic.
- The *effective label* of X for classification C is X's own labels (its label
  relationships naming ``C:value``) joined with the effective labels of every
  object X has a lineage step to, minus the values declassified on X (which
  remove inherited values only; X's own labels stay).
- Its *level* is the highest level present (the lowest level when none); its
  *categories* are the category values present.
- A subject is *cleared* for X in C when it holds ``cleared`` on ``C:level`` or on
  a higher level (the lowest level needs nothing), and ``cleared`` on ``C:c`` for
  every category ``c``. ``cleared`` without an argument means every classification.

Effective labels and upstream sets depend only on the snapshot, not on the
subject, so they are memoized per revision in the engine's lineage cache
(keys from :mod:`.keys`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ..dsl import schema as s
from . import keys
from .budget import Budget
from .cache import Cache
from .relationships import ObjectRef, Relationship, stored_object
from .store import Operation, Reader, RelationshipFilter, Update

__all__ = ["Labels", "Lineage", "LineageStep", "describe_cycle", "find_lineage_cycle", "is_lineage_relationship"]


@dataclass(frozen=True, slots=True)
class LineageStep:
    """One step of the lineage graph, ``source -relation-> target``: ``source`` was derived from ``target``."""

    source: ObjectRef
    relation: str
    target: ObjectRef

    def __str__(self) -> str:
        return f"{self.source} -{self.relation}-> {self.target}"


@dataclass(frozen=True, slots=True)
class Labels:
    """The effective label of one object in every classification: value sets keyed by classification."""

    values: dict[str, frozenset[str]] = field(default_factory=dict)

    def of(self, classification: str) -> frozenset[str]:
        return self.values.get(classification, frozenset())


class Lineage:
    """Lineage questions about one snapshot; ``cache`` (the engine's lineage cache) keeps answers per revision."""

    def __init__(self, schema: s.Schema, reader: Reader, cache: Cache | None = None,
                 budget: Budget | None = None) -> None:
        self.schema = schema
        self.reader = reader
        self.cache = cache
        self.budget = budget  # the rows the walks read are spent from it (None: not counted)
        self._labels: dict[ObjectRef, Labels] = {}
        self._steps: dict[ObjectRef, list[LineageStep]] = {}
        self._upstream: dict[ObjectRef, tuple[tuple[ObjectRef, tuple[LineageStep, ...]], ...]] = {}

    # ------------------------------------------------------------ graph

    def steps(self, obj: ObjectRef) -> list[LineageStep]:
        """The lineage steps out of ``obj`` (to what it was derived from), in relation then subject order."""
        hit = self._steps.get(obj)
        if hit is None:
            hit = [LineageStep(obj, rel.name, stored_object(row.subject_type, row.subject_id))
                   for rel in self.schema.lineage_relations(obj.type)
                   for row in self.reader.relationships(obj.type, obj.id, rel.name)]
            if self.budget is not None:
                self.budget.spend(1 + len(hit))
            self._steps[obj] = hit
        return hit

    def upstream(self, obj: ObjectRef) -> tuple[tuple[ObjectRef, tuple[LineageStep, ...]], ...]:
        """Every object upstream of ``obj`` (breadth first), each with one shortest path to it."""
        hit = self._upstream.get(obj)
        if hit is not None:
            return hit
        key = keys.upstream(self.schema.digest, self.reader.revision, obj)
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            self._upstream[obj] = cached  # type: ignore[assignment]
            return cached  # type: ignore[return-value]
        seen = {obj}
        out: list[tuple[ObjectRef, tuple[LineageStep, ...]]] = []
        queue: deque[tuple[ObjectRef, tuple[LineageStep, ...]]] = deque([(obj, ())])
        while queue:
            node, path = queue.popleft()
            for e in self.steps(node):
                if e.target not in seen:
                    seen.add(e.target)
                    p = path + (e,)
                    out.append((e.target, p))
                    queue.append((e.target, p))
        result = tuple(out)
        self._upstream[obj] = result
        if self.cache is not None:
            self.cache.put(key, result)
        return result

    def incoming(self, obj: ObjectRef) -> list[LineageStep]:
        """The lineage steps into ``obj`` (from the objects derived from it)."""
        out = []
        for type_name, d in self.schema.definitions.items():
            for rel in d.relations.values():
                if rel.kind is s.RelationKind.LINEAGE and any(t.type == obj.type for t in rel.allowed):
                    found = self.reader.read(RelationshipFilter(resource_type=type_name, relation=rel.name,
                                                                subject_type=obj.type, subject_id=obj.id,
                                                                subject_relation="..."))
                    out.extend(LineageStep(stored_object(row.resource_type, row.resource_id), rel.name, obj)
                               for row in found)
        if self.budget is not None:
            self.budget.spend(1 + len(out))
        return out

    def walk(self, obj: ObjectRef, direction: str) -> list[tuple[ObjectRef, tuple[LineageStep, ...]]]:
        """Breadth-first ancestors (``"ancestors"``) or descendants (``"descendants"``) with shortest paths."""
        if direction == "ancestors":
            return list(self.upstream(obj))
        seen = {obj}
        out: list[tuple[ObjectRef, tuple[LineageStep, ...]]] = []
        queue: deque[tuple[ObjectRef, tuple[LineageStep, ...]]] = deque([(obj, ())])
        while queue:
            node, path = queue.popleft()
            for e in sorted(self.incoming(node), key=lambda e: (str(e.source), e.relation)):
                if e.source not in seen:
                    seen.add(e.source)
                    p = path + (e,)
                    out.append((e.source, p))
                    queue.append((e.source, p))
        return out

    # ------------------------------------------------------------ labels

    def own_labels(self, obj: ObjectRef) -> dict[str, set[str]]:
        """The object's own label values, by classification (its ``label`` relationships)."""
        return self._values(obj, s.RelationKind.LABEL)

    def declassified(self, obj: ObjectRef) -> dict[str, set[str]]:
        """The values declassified on the object, by classification (its ``declassify`` relationships)."""
        return self._values(obj, s.RelationKind.DECLASSIFY)

    def _values(self, obj: ObjectRef, kind: s.RelationKind) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        d = self.schema.definitions.get(obj.type)
        for rel in d.relations.values() if d is not None else ():
            if rel.kind is kind:
                rows = self.reader.relationships(obj.type, obj.id, rel.name)
                if self.budget is not None:
                    self.budget.spend(1 + len(rows))
                for row in rows:
                    out.setdefault(row.subject_type, set()).add(row.subject_id)
        return out

    def labels(self, obj: ObjectRef) -> Labels:
        """The effective label of ``obj`` (see the module docstring); iterative, so any depth works."""
        hit = self._cached_labels(obj)
        if hit is not None:
            return hit
        # Post-order walk over the upstream graph: a node's label needs its targets' labels first.
        stack: list[tuple[ObjectRef, bool]] = [(obj, False)]
        on_stack: set[ObjectRef] = set()
        while stack:
            node, expanded = stack.pop()
            if self._cached_labels(node) is not None:
                continue
            steps = self.steps(node)
            if not expanded:
                stack.append((node, True))
                on_stack.add(node)
                for e in steps:
                    # A target already being computed means a cycle (writes prevent these; foreign data
                    # may not): it contributes nothing rather than looping.
                    if e.target not in on_stack and self._cached_labels(e.target) is None:
                        stack.append((e.target, False))
                continue
            on_stack.discard(node)
            own = self.own_labels(node)
            inherited: dict[str, set[str]] = {}
            for e in steps:
                target = self._cached_labels(e.target)
                for c, values in (target.values.items() if target is not None else ()):
                    inherited.setdefault(c, set()).update(values)
            removed = self.declassified(node)
            result: dict[str, frozenset[str]] = {}
            for c in set(own) | set(inherited):
                values = set(own.get(c, ())) | (inherited.get(c, set()) - removed.get(c, set()))
                if values:
                    result[c] = frozenset(values)
            self._store_labels(node, Labels(result))
        found = self._cached_labels(obj)
        assert found is not None
        return found

    def _cached_labels(self, obj: ObjectRef) -> Labels | None:
        hit = self._labels.get(obj)
        if hit is None and self.cache is not None:
            hit = self.cache.get(keys.effective_labels(self.schema.digest, self.reader.revision, obj))
            if hit is not None:
                self._labels[obj] = hit
        return hit

    def _store_labels(self, obj: ObjectRef, labels: Labels) -> None:
        self._labels[obj] = labels
        if self.cache is not None:
            self.cache.put(keys.effective_labels(self.schema.digest, self.reader.revision, obj), labels)

    def requirements(self, obj: ObjectRef, classification: str | None) -> list[tuple[str, tuple[str, ...]]]:
        """What ``cleared`` asks of a subject on ``obj``: a list of (classification, values), each met by
        ``cleared`` on ANY of the values (a level: that level or higher; a category: that category)."""
        labels = self.labels(obj)
        names = [classification] if classification else sorted(self.schema.classifications)
        out: list[tuple[str, tuple[str, ...]]] = []
        for name in names:
            c = self.schema.classifications.get(name)
            if c is None:
                continue
            values = labels.of(name)
            levels = [v for v in values if v in c.levels]
            if levels:
                top = max(c.rank(v) for v in levels)
                if top > 0:
                    out.append((name, c.levels[top:]))
            for v in sorted(values):
                if v in c.categories:
                    out.append((name, (v,)))
        return out

    # ------------------------------------------------------------ provenance (for explanations and the API)

    def provenance(self, obj: ObjectRef) -> dict[str, dict[str, list[tuple[LineageStep, ...]]]]:
        """For each classification and value in ``obj``'s effective label, the lineage paths that bring it
        (an empty path: ``obj``'s own label). Declassified inherited values are left out."""
        labels = self.labels(obj)
        out: dict[str, dict[str, list[tuple[LineageStep, ...]]]] = {}
        own = self.own_labels(obj)
        for c, values in labels.values.items():
            for v in sorted(values):
                paths: list[tuple[LineageStep, ...]] = []
                if v in own.get(c, ()):
                    paths.append(())
                for target, path in self._paths_to_label(obj, c, v):
                    paths.append(path)
                out.setdefault(c, {})[v] = paths
        return out

    def _paths_to_label(self, obj: ObjectRef, c: str, v: str) -> list[tuple[ObjectRef, tuple[LineageStep, ...]]]:
        """Paths from ``obj`` to each upstream object whose own label ``C:v`` reaches ``obj`` (a value
        declassified at an object does not pass through it)."""
        found: list[tuple[ObjectRef, tuple[LineageStep, ...]]] = []

        def walk(node: ObjectRef, path: tuple[LineageStep, ...]) -> None:
            if path and v in self.own_labels(node).get(c, set()):
                found.append((node, path))
            if v in self.declassified(node).get(c, set()):
                return
            on_path = {obj} | {e.target for e in path}
            for e in self.steps(node):
                if e.target not in on_path and v in self.labels(e.target).of(c):
                    walk(e.target, path + (e,))

        walk(obj, ())
        found.sort(key=lambda fp: (len(fp[1]), str(fp[0])))
        return found


def find_lineage_cycle(schema: s.Schema, reader: Reader, updates: Sequence[Update]) -> list[LineageStep] | None:
    """The cycle (as steps) the batch would create in the lineage graph, or None."""
    lineage_names = {(t, r.name) for t, d in schema.definitions.items() for r in d.relations.values()
                     if r.kind is s.RelationKind.LINEAGE}
    added: dict[ObjectRef, list[LineageStep]] = {}
    removed: set[tuple[ObjectRef, str, ObjectRef]] = set()
    new_steps: list[LineageStep] = []
    for u in updates:
        rel = u.relationship
        if (rel.resource.type, rel.relation) not in lineage_names:
            continue
        e = LineageStep(rel.resource, rel.relation, stored_object(rel.subject.type, rel.subject.id))
        if u.operation is Operation.DELETE:
            removed.add((e.source, e.relation, e.target))
        else:
            added.setdefault(e.source, []).append(e)
            new_steps.append(e)
    if not new_steps:
        return None
    walker = Lineage(schema, reader)
    known: dict[ObjectRef, list[LineageStep]] = {}  # each node's steps, read once for the whole batch

    def out_steps(node: ObjectRef) -> list[LineageStep]:
        steps = known.get(node)
        if steps is None:
            steps = [e for e in walker.steps(node) if (e.source, e.relation, e.target) not in removed]
            steps += added.get(node, ())
            known[node] = steps
        return steps

    # The graph before the batch has no cycle (every earlier write was checked), so a cycle uses a new step
    # and a depth-first search from the new steps' sources finds it; each node is explored once per batch.
    done: set[ObjectRef] = set()  # fully explored: no cycle through them
    new_keys = {(e.source, e.relation, e.target) for e in new_steps}
    for start in new_steps:
        if start.target == start.source:
            return [start]
        if start.source in done:
            continue
        stack: list[tuple[ObjectRef, Iterator[LineageStep]]] = [(start.source, iter(out_steps(start.source)))]
        entered: list[LineageStep | None] = [None]  # the step each stack node was entered by
        on_stack = {start.source: 0}
        while stack:
            node, steps = stack[-1]
            e = next(steps, None)
            if e is None:
                stack.pop()
                entered.pop()
                del on_stack[node]
                done.add(node)
                continue
            if e.target in on_stack:
                cycle = [x for x in entered[on_stack[e.target] + 1:] if x is not None] + [e]
                first = next(i for i, x in enumerate(cycle) if (x.source, x.relation, x.target) in new_keys)
                return cycle[first:] + cycle[:first]  # told from the batch's first new step in it
            if e.target not in done:
                on_stack[e.target] = len(stack)
                stack.append((e.target, iter(out_steps(e.target))))
                entered.append(e)
    return None


def describe_cycle(cycle: list[LineageStep]) -> str:
    """``a -r-> b -r-> a``."""
    text = str(cycle[0].source)
    for e in cycle:
        text += f" -{e.relation}-> {e.target}"
    return text


def is_lineage_relationship(schema: s.Schema, rel: Relationship) -> bool:
    d = schema.definitions.get(rel.resource.type)
    r = d.relations.get(rel.relation) if d is not None else None
    return r is not None and r.kind is s.RelationKind.LINEAGE
