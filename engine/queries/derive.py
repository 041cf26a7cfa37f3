"""Recording a derivation in one call: a derived object, its lineage and its ordinary relationships, then its label.

"This output was produced by this model from these inputs for this requester": one
atomic write of the object's ``lineage`` relationships (named by the schema's lineage
relations of the object's type: ``produced_by``, ``input``, ``trained_on``,
``derived_from``...) and of its ordinary relationships (``requester``, ``owner``...),
refused whole if it would make the lineage graph cyclic (the write's own rule), and,
at the revision just written, the object's effective label with provenance and the
decisions asked for ("may the requester view it?").

Repeating a derivation with the same content writes nothing: when every relationship is
already stored as given, the answer is read at the head revision instead of writing a
new one.

Example::

    >>> from headwater.engine import Engine
    >>> from headwater.engine.store.memory import MemoryStore
    >>> engine = Engine(MemoryStore())
    >>> _ = engine.write_schema(open("examples/ai-lineage/policy.zed").read())
    >>> _ = engine.touch("dataset:claims#label@sensitivity:confidential", "model:risk#trained_on@dataset:claims",
    ...                  "sensitivity:confidential#cleared@user:alice")
    >>> result = engine.derive("output:o9", {"produced_by": ["model:risk"]},
    ...                        relationships=["output:o9#requester@user:alice", "output:o9#requester@user:bob"],
    ...                        checks=[("view", "user:alice"), ("view", "user:bob")])
    >>> [(v.value, v.paths) for label in result.labels.classifications for v in label.values]
    [('confidential', ('output:o9 -produced_by-> model:risk -trained_on-> dataset:claims',))]
    >>> [d.permissionship.name for d in result.decisions]
    ['HAS_PERMISSION', 'NO_PERMISSION']
    >>> engine.derive("output:o9", {"produced_by": ["model:risk"]},
    ...               relationships=["output:o9#requester@user:alice", "output:o9#requester@user:bob"]).written
    False
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ..consistency import Consistency
from ..errors import InvalidRequestError
from ..relationships import ObjectRef, Relationship, SubjectRef, parse_object, parse_relationship, parse_subject
from ..results import DeriveResult
from ..store import Operation, Row, Update

__all__ = ["DeriveResult", "derivation_updates"]  # DeriveResult lives with the other results (engine/results.py)


def derivation_updates(schema: object, obj: ObjectRef | str, lineage: Mapping[str, Sequence[ObjectRef | str]],
                       relationships: Iterable[Relationship | str]) -> list[Update]:
    """The TOUCH updates of a derivation, checked: each lineage relation is a ``lineage`` relation of the object's
    type, and each ordinary relationship is one of the derived object's own."""
    from ...dsl.schema import RelationKind, Schema

    assert isinstance(schema, Schema)
    target = obj if isinstance(obj, ObjectRef) else parse_object(obj)
    definition = schema.definition(target.type)
    if definition is None:
        raise InvalidRequestError(f"object definition `{target.type}` not found")
    names = sorted(r.name for r in definition.relations.values() if r.kind is RelationKind.LINEAGE)
    if not lineage:
        raise InvalidRequestError(f"a derivation of {target} needs its lineage: one or more of "
                                  f"{', '.join(names) or '(no lineage relation on ' + target.type + ')'}")
    updates: list[Update] = []
    for relation, sources in lineage.items():
        if relation not in names:
            raise InvalidRequestError(f"`{relation}` is not a lineage relation of `{target.type}`; its lineage "
                                      f"relations are: {', '.join(names) or 'none'}")
        if not sources:
            raise InvalidRequestError(f"lineage relation `{relation}` of {target} names no object")
        for source in sources:
            subject = SubjectRef(source.type, source.id) if isinstance(source, ObjectRef) else parse_subject(source)
            updates.append(Update(Operation.TOUCH, Relationship(target, relation, subject)))
    for item in relationships:
        rel = item if isinstance(item, Relationship) else parse_relationship(item)
        if rel.resource != target:
            raise InvalidRequestError(f"{rel}: a derivation's relationships are the derived object's ({target})")
        updates.append(Update(Operation.TOUCH, rel))
    return updates


def stored_as_given(reader: object, updates: Sequence[Update]) -> bool:
    """Whether every relationship of ``updates`` is stored exactly (caveat and expiration included)."""
    for u in updates:
        row = Row.of(u.relationship)
        if reader.relationship(*row.key) != row:  # type: ignore[attr-defined]
            return False
    return True


def read_at(token: str) -> Consistency:
    return Consistency.at_exact_snapshot(token)
