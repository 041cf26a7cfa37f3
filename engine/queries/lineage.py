"""Lineage questions: an object's effective labels with provenance, and its ancestors and descendants.

Both read one snapshot through :class:`~..lineage.Lineage` (the walks and the
label rules live there). Effective labels add, for each declassified value, who
declassified it, why and at which revision, from the change history while it is
kept. Walks are breadth first, each object with its distance and one shortest
path, paged with cursors pinned to one revision.

Example::

    >>> from headwater.engine import Engine
    >>> from headwater.engine.store.memory import MemoryStore
    >>> engine = Engine(MemoryStore())
    >>> _ = engine.write_schema("definition dataset {\\n lineage derived_from: dataset\\n}")
    >>> _ = engine.touch("dataset:b#derived_from@dataset:a", "dataset:c#derived_from@dataset:b")
    >>> [(i.object.id, i.depth) for i in engine.ancestors("dataset:c").items]
    [('b', 1), ('a', 2)]
    >>> engine.ancestors("dataset:c").items[1].path
    'dataset:c -derived_from-> dataset:b -derived_from-> dataset:a'
"""

from __future__ import annotations

import json
from typing import Any

from ...dsl import schema as dsl_schema
from ..consistency import Consistency, encode_token
from ..context import Context
from ..errors import InvalidRequestError, RevisionUnavailableError
from ..paging import Place, validate_limit
from ..relationships import ObjectRef, parse_object
from ..results import ClassificationLabel, Declassification, EffectiveLabels, LabelValue, LineageItem, LineagePage
from ..store import Operation

__all__ = ["LineageQuery", "path_text"]


def path_text(start: ObjectRef, path: tuple[Any, ...], direction: str = "ancestors") -> str:
    """``a -r-> b -r-> c`` walking upstream; ``a <-r- b <-r- c`` walking downstream."""
    text = str(start)
    for step in path:
        text += f" -{step.relation}-> {step.target}" if direction == "ancestors" else \
            f" <-{step.relation}- {step.source}"
    return text


class LineageQuery:
    """Effective labels and lineage walks over one engine's :class:`~..context.Context`."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def effective_labels(self, obj: ObjectRef | str, *, consistency: Consistency | None = None) -> EffectiveLabels:
        """See :meth:`~headwater.engine.Engine.effective_labels`."""
        target = obj if isinstance(obj, ObjectRef) else parse_object(obj)
        self.ctx.counters["lineage_effective_labels"] += 1
        with self.ctx.snapshot(consistency) as (reader, schema):
            lineage = self.ctx.lineage(schema, reader)
            labels = lineage.labels(target)
            provenance = lineage.provenance(target)
            declassified = lineage.declassified(target)
            revision = reader.revision
        out: list[ClassificationLabel] = []
        for name, c in sorted(schema.classifications.items()):
            values = labels.of(name)
            levels = [v for v in values if v in c.levels]
            level = max(levels, key=c.rank) if levels else (c.levels[0] if c.levels else None)
            entries = tuple(LabelValue(v, tuple(path_text(target, p) for p in provenance.get(name, {}).get(v, [])))
                            for v in sorted(values, key=lambda v: (v not in c.levels, v)))
            decl = tuple(self._declassification(schema, target, name, v, revision)
                         for v in sorted(declassified.get(name, set())))
            if entries or decl:
                out.append(ClassificationLabel(name, level, tuple(sorted(v for v in values if v in c.categories)),
                                               entries, decl))
        return EffectiveLabels(target, tuple(out), encode_token(revision))

    def _declassification(self, schema: dsl_schema.Schema, obj: ObjectRef, classification: str, value: str,
                          revision: int) -> Declassification:
        """Who declassified ``value`` on ``obj``, why and when (from the change history, while it is kept)."""
        d = schema.definitions[obj.type]
        names = {r.name for r in d.relations.values() if r.kind is dsl_schema.RelationKind.DECLASSIFY
                 and r.classification == classification}
        store = self.ctx.store
        after = 0
        found = Declassification(value, None, None, None)
        while True:
            try:
                changes = store.changes(after)
                break
            except RevisionUnavailableError as exc:
                if exc.oldest <= after:
                    return found
                after = exc.oldest
        for ch in changes:
            rel = ch.relationship
            if (ch.revision <= revision and ch.operation is Operation.TOUCH and rel.resource == obj
                    and rel.relation in names and rel.subject.id == value):
                meta = store.revision_metadata(ch.revision)
                found = Declassification(value, meta.get("actor"), meta.get("reason"), encode_token(ch.revision))
        return found

    def walk(self, obj: ObjectRef | str, direction: str, max_depth: int | None, limit: int | None,
             cursor: str | None, consistency: Consistency | None) -> LineagePage:
        """Ancestors (``direction="ancestors"``) or descendants of ``obj``; see
        :meth:`~headwater.engine.Engine.ancestors`."""
        target = obj if isinstance(obj, ObjectRef) else parse_object(obj)
        validate_limit(limit)
        if max_depth is not None and (not isinstance(max_depth, int) or max_depth < 1):
            raise InvalidRequestError(f"max_depth must be a positive integer, got {max_depth!r}")
        place = Place.start(json.dumps([direction, str(target), max_depth]), cursor, consistency)
        skip = int(place.after) if place.after is not None else 0
        with self.ctx.snapshot(place.consistency) as (reader, schema):
            if target.type not in schema.definitions:
                raise InvalidRequestError(f"object definition `{target.type}` not found")
            items: list[LineageItem] = []
            for node, path in self.ctx.lineage(schema, reader).walk(target, direction):
                if max_depth is not None and len(path) > max_depth:
                    break
                items.append(LineageItem(node, len(path), path_text(target, path, direction)))
            page, next_cursor = items[skip:], None
            if limit is not None and len(page) > limit:  # the position is how many items came before
                page, next_cursor = page[:limit], place.cursor(reader.revision, str(skip + limit))
            return LineagePage(page, next_cursor, encode_token(reader.revision))
