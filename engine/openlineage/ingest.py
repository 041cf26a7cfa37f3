"""OpenLineage events into lineage and label relationships: one atomic, idempotent write per call.

A run event's (or job event's) outputs are derived from its inputs: each output
becomes an object (its type by the :class:`~.mapping.Mapping`) with one lineage
relationship to each input, by the lineage relation of the output's type that
accepts the input's type (or the one the job rule names). A dataset's ``tags``
facet, on any event, becomes label relationships on its object. Only the run
events the mapping records (``COMPLETE``; ``RUNNING`` or ``OTHER`` if listed)
contribute lineage: a started, failed or aborted run has not produced its outputs.
A dataset read and written by the same run gets no edge to itself. An input takes the type
its dataset was given as an output (a job rule may type outputs apart from the dataset
rules: an inference job's predictions are ``output`` objects), earlier in the batch or
already in the store, so that lineage read from a derived object continues through it.

Every relationship is a TOUCH, so the same event twice changes nothing, and events
may come in any order. :func:`plan` validates a batch against the spec and maps it
against the schema without writing; :func:`ingest` writes the whole batch atomically
(refused whole, with :class:`~headwater.engine.errors.LineageCycleError`, if it would
make the lineage graph cyclic), or writes nothing when everything is already stored.

Example::

    >>> from headwater.engine import Engine
    >>> from headwater.engine.store.memory import MemoryStore
    >>> engine = Engine(MemoryStore())
    >>> _ = engine.write_schema(open("examples/ai-lineage/policy.zed").read())
    >>> event = {"eventType": "COMPLETE", "eventTime": "2026-12-06T10:00:00Z",
    ...          "producer": "https://example.com/etl", "schemaURL": SCHEMA_URL + "#/$defs/RunEvent",
    ...          "run": {"runId": "0194c3a8-4a9f-7c4e-9b1e-2f0b6c1d2e3f"},
    ...          "job": {"namespace": "ml", "name": "train_risk"},
    ...          "inputs": [{"namespace": "pg", "name": "claims", "facets": {"tags": {
    ...              "_producer": "https://example.com/etl", "_schemaURL": "https://example.com/tags",
    ...              "tags": [{"key": "pii", "value": "true", "field": "email"}]}}}],
    ...          "outputs": [{"namespace": "s3", "name": "models/risk"}]}
    >>> result = ingest(engine, [event])
    >>> result.relationships, result.written
    (2, True)
    >>> sorted(str(r) for r in plan(engine.schema(), [event]).relationships)
    ['dataset:pg|claims#label@sensitivity:pii', 'model:s3|models/risk#trained_on@dataset:pg|claims']
    >>> ingest(engine, [event]).written
    False
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ...dsl.schema import Schema
from ..errors import OpenLineageEventError
from ..relationships import ObjectRef, Relationship, SubjectRef
from ..store import Operation, RelationshipFilter, Update
from .mapping import DEFAULT_MAPPING, JobRule, Mapping, dataset_id
from .spec import SCHEMA_URL, validate_event

__all__ = ["IngestResult", "Known", "Plan", "SCHEMA_URL", "ingest", "plan", "stored_types"]


@dataclass(frozen=True, slots=True)
class Plan:
    """What a batch of events maps to: its relationships (deduplicated, in event order), how many events
    contributed lineage or labels, and how many were ignored (run events of a state the mapping does not
    record, without tags)."""

    relationships: tuple[Relationship, ...]
    recorded: int
    ignored: int


@dataclass(frozen=True, slots=True)
class IngestResult:
    """An ingested batch: the revision its relationships are stored at (``token``), whether this call wrote them
    (False: all were already stored), and the counts of :class:`Plan`."""

    token: str
    written: bool
    events: int
    recorded: int
    ignored: int
    relationships: int

    def as_json(self) -> dict[str, Any]:
        return {"revision": self.token, "written": self.written, "events": self.events,
                "recorded": self.recorded, "ignored": self.ignored, "relationships": self.relationships}


#: Which type a dataset's object already has in the store: (object id, candidate types) -> the type, or None.
Known = Callable[[str, Sequence[str]], str | None]


def stored_types(source: Any) -> Known:
    """:data:`Known` read from an Engine or a Client: the first candidate type with a stored object of that id."""
    def known(object_id: str, types: Sequence[str]) -> str | None:
        for type_ in types:
            if source.read(RelationshipFilter(resource_type=type_, resource_id=object_id), limit=1)[0]:
                return type_
        return None

    return known


class _Mapper:
    """Maps validated events against one schema."""

    def __init__(self, schema: Schema, mapping: Mapping, known: Known | None) -> None:
        self.schema, self.mapping, self.known = schema, mapping, known
        self.out: dict[Relationship, None] = {}
        self.produced: dict[str, str] = {}  # object id -> type, of the outputs mapped so far
        self.seen: dict[str, str | None] = {}  # object id -> its type in the store (None: not stored), asked once
        self.derived = tuple(name for name in schema.definitions if schema.lineage_relations(name))

    def input_type(self, namespace: str, name: str) -> str:
        """An input's type: the type it was given as an output (a job rule may type outputs differently from the
        dataset rules), in this batch or already in the store; else the dataset rules'."""
        object_id = dataset_id(namespace, name)
        if object_id in self.produced:
            return self.produced[object_id]
        by_rules = self.mapping.dataset_type(namespace, name)
        if self.known is None:
            return by_rules
        if object_id not in self.seen:  # a batch names the same inputs again and again
            self.seen[object_id] = self.known(object_id, (by_rules, *(t for t in self.derived if t != by_rules)))
        return self.seen[object_id] or by_rules

    def object(self, dataset: dict[str, Any], type_: str | None = None, *, output: bool = False) -> ObjectRef:
        namespace, name = dataset["namespace"], dataset["name"]
        if type_ is None:
            type_ = self.mapping.dataset_type(namespace, name) if output else self.input_type(namespace, name)
        if output:
            self.produced[dataset_id(namespace, name)] = type_
        if self.schema.definition(type_) is None:
            raise OpenLineageEventError(f"dataset {namespace!r} {name!r} maps to type `{type_}`, which the schema "
                                        "does not define (see the mapping's dataset and job rules)")
        return ObjectRef(type_, dataset_id(namespace, name))

    def labels(self, obj: ObjectRef, dataset: dict[str, Any]) -> bool:
        tags = ((dataset.get("facets") or {}).get("tags") or {}).get("tags") or []
        found = False
        for tag in tags:
            for rule in self.mapping.tags:
                label = rule.label_for(tag["key"], tag["value"], tag.get("field"))
                if label is not None:
                    self.add(Relationship(obj, self.label_relation(obj, label, tag), self.label_value(label, tag)))
                    found = True
        return found

    def label_value(self, label: str, tag: dict[str, Any]) -> SubjectRef:
        classification, _, value = label.partition(":")
        known = self.schema.classifications.get(classification)
        if known is None:
            raise OpenLineageEventError(f"tag {tag['key']}={tag['value']}: the schema has no classification "
                                        f"`{classification}`")
        if value not in known.values:
            raise OpenLineageEventError(f"tag {tag['key']}={tag['value']}: `{value}` is not a value of "
                                        f"classification `{classification}` ({', '.join(known.values)})")
        return SubjectRef(classification, value)

    def label_relation(self, obj: ObjectRef, label: str, tag: dict[str, Any]) -> str:
        relation = self.mapping.label_relation
        member = self.schema.member(obj.type, relation)
        classification = label.partition(":")[0]
        if member is None or not any(a.type == classification for a in getattr(member, "allowed", ())):
            raise OpenLineageEventError(f"tag {tag['key']}={tag['value']} on {obj}: `{obj.type}` has no relation "
                                        f"`{relation}` holding `{classification}` values, so the label cannot be "
                                        "recorded (map the dataset to another type, or set label_relation)")
        return relation

    def lineage_relation(self, output: ObjectRef, source: ObjectRef, rule: JobRule | None) -> str:
        fitting = [r.name for r in self.schema.lineage_relations(output.type)
                   if any(a.type == source.type and a.relation is None and not a.wildcard for a in r.allowed)]
        named = rule.relations.get(source.type) if rule is not None else None
        if named is not None:
            if named not in fitting:
                raise OpenLineageEventError(f"the job rule links `{output.type}` to `{source.type}` by `{named}`, "
                                            f"which is not a lineage relation of `{output.type}` accepting "
                                            f"`{source.type}` (those are: {', '.join(fitting) or 'none'})")
            return named
        if len(fitting) != 1:
            lineage = ", ".join(f"{r.name}: {' | '.join(str(a) for a in r.allowed)}"
                                for r in self.schema.lineage_relations(output.type))
            raise OpenLineageEventError(
                f"{output} from {source}: " + ("no" if not fitting else "more than one") + f" lineage relation of "
                f"`{output.type}` accepts `{source.type}` ({lineage or 'it has none'}); "
                + ("map the datasets to other types" if not fitting else "name one in the job rule's relations"))
        return fitting[0]

    def add(self, relationship: Relationship) -> None:
        self.out.setdefault(relationship, None)

    def event(self, event: dict[str, Any], kind: str) -> bool:
        """Map one event; whether it contributed anything."""
        if kind == "dataset":
            return self.labels(self.object(event["dataset"]), event["dataset"])  # typed as an input would be
        job = event["job"]
        rule = self.mapping.job_rule(job["namespace"], job["name"])
        inputs = [(self.object(d), d) for d in event.get("inputs") or ()]
        outputs = [(self.object(d, rule.outputs if rule is not None else None, output=True), d)
                   for d in event.get("outputs") or ()]
        found = False
        for obj, dataset in inputs + outputs:
            found = self.labels(obj, dataset) or found
        if kind == "run" and event.get("eventType", "OTHER") not in self.mapping.event_types:
            return found
        for output, _ in outputs:
            for source, _ in inputs:
                if (source.type, source.id) != (output.type, output.id):
                    self.add(Relationship(output, self.lineage_relation(output, source, rule),
                                          SubjectRef(source.type, source.id)))
                    found = True
        return found


def plan(schema: Schema, events: Sequence[Any], mapping: Mapping = DEFAULT_MAPPING, *,
         known: Known | None = None) -> Plan:
    """Validate ``events`` (decoded JSON) and map them against ``schema``; OpenLineageEventError names the first
    bad one (``event 2: $.run.runId: ...`` in a batch of several). ``known`` (:func:`stored_types`) lets an input
    take the type its dataset already has in the store."""
    mapper = _Mapper(schema, mapping, known)
    recorded = ignored = 0
    for position, event in enumerate(events, 1):
        try:
            if mapper.event(event, validate_event(event)):
                recorded += 1
            else:
                ignored += 1
        except OpenLineageEventError as exc:
            if len(events) == 1:
                raise
            raise OpenLineageEventError(f"event {position}: {exc}") from None
    return Plan(tuple(mapper.out), recorded, ignored)


def ingest(engine: Any, events: Sequence[Any], mapping: Mapping = DEFAULT_MAPPING, *, actor: str | None = None,
           reason: str | None = None) -> IngestResult:
    """Record ``events`` in ``engine`` in one atomic TOUCH write (none when everything is already stored), refused
    whole on a bad event (OpenLineageEventError) or a lineage cycle (LineageCycleError)."""
    planned = plan(engine.schema(), events, mapping, known=stored_types(engine))
    if reason is None:
        reason = _reason(events)
    token, written = engine.touch_changed([Update(Operation.TOUCH, r) for r in planned.relationships],
                                          actor=actor, reason=reason)
    return IngestResult(token, written, len(events), planned.recorded, planned.ignored, len(planned.relationships))


def _reason(events: Sequence[Any]) -> str:
    if len(events) != 1:
        return f"OpenLineage: {len(events)} events"
    event = events[0]
    if "dataset" in event and "job" not in event:
        return f"OpenLineage dataset event {event['dataset']['namespace']} {event['dataset']['name']}"
    job = f"{event['job']['namespace']} {event['job']['name']}"
    if "run" in event:
        return f"OpenLineage {event.get('eventType', 'OTHER')} run {event['run']['runId']} of job {job}"
    return f"OpenLineage job event {job}"
