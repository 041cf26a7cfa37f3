"""Conversion of the shared messages: references, contexts, relationships, filters, preconditions, updates,
changes and consistency.

See :mod:`headwater.engine.service.convert` for the rules they all follow.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from ...consistency import Consistency, ConsistencyMode
from ...errors import InvalidRequestError
from ...relationships import CaveatRef, ObjectRef, Relationship, SubjectRef
from ...results import (
    WatchEvent,
)
from ...store import Operation, Precondition, RelationshipFilter, Update
from ..pb import core_pb2, relationship_pb2

__all__ = [
    "consistency_from_proto",
    "consistency_to_proto",
    "context_from_proto",
    "context_to_proto",
    "filter_from_proto",
    "filter_to_proto",
    "object_from_proto",
    "object_to_proto",
    "precondition_from_proto",
    "precondition_to_proto",
    "relationship_from_proto",
    "relationship_to_proto",
    "subject_from_proto",
    "subject_to_proto",
    "update_from_proto",
    "update_to_proto",
    "watch_change_from_proto",
    "watch_change_to_proto",
]


_MAX_STRUCT_DEPTH = 32  # nesting levels of a context value accepted (protobuf parsing stops at 100)


# ------------------------------------------------------------------ references


def object_from_proto(msg: core_pb2.ObjectReference, what: str = "object") -> ObjectRef:
    """An ObjectRef; InvalidRequestError if the reference is missing or malformed."""
    if not msg.object_type and not msg.object_id:
        raise InvalidRequestError(f"missing {what}: give object_type and object_id")
    return ObjectRef(msg.object_type, msg.object_id)


def object_to_proto(ref: ObjectRef) -> core_pb2.ObjectReference:
    return core_pb2.ObjectReference(object_type=ref.type, object_id=ref.id)


def subject_from_proto(msg: core_pb2.SubjectReference, what: str = "subject") -> SubjectRef:
    """A SubjectRef (``optional_relation`` empty or ``...`` means none)."""
    if not msg.HasField("object"):
        raise InvalidRequestError(f"missing {what}: give object (object_type, object_id) and optional_relation")
    obj = msg.object
    if not obj.object_type and not obj.object_id:
        raise InvalidRequestError(f"missing {what}: give object_type and object_id")
    return SubjectRef(obj.object_type, obj.object_id, msg.optional_relation or None)


def subject_to_proto(ref: SubjectRef) -> core_pb2.SubjectReference:
    return core_pb2.SubjectReference(object=core_pb2.ObjectReference(object_type=ref.type, object_id=ref.id),
                                     optional_relation=ref.relation or "")


# ------------------------------------------------------------------ context (google.protobuf.Struct)


def context_from_proto(msg: struct_pb2.Struct, present: bool = True) -> dict[str, Any] | None:
    """The Struct as plain JSON values; None when absent. Non-finite numbers and deep nesting are refused."""
    if not present:
        return None
    return _struct_value(msg, 0)


def _struct_value(msg: struct_pb2.Struct, depth: int) -> dict[str, Any]:
    if depth > _MAX_STRUCT_DEPTH:
        raise InvalidRequestError(f"context is nested more than {_MAX_STRUCT_DEPTH} levels deep")
    return {key: _value(value, depth + 1) for key, value in msg.fields.items()}


def _value(msg: struct_pb2.Value, depth: int) -> Any:
    kind = msg.WhichOneof("kind")
    if kind == "struct_value":
        return _struct_value(msg.struct_value, depth)
    if kind == "list_value":
        if depth > _MAX_STRUCT_DEPTH:
            raise InvalidRequestError(f"context is nested more than {_MAX_STRUCT_DEPTH} levels deep")
        return [_value(v, depth + 1) for v in msg.list_value.values]
    if kind == "number_value":
        if not math.isfinite(msg.number_value):
            raise InvalidRequestError(f"context numbers must be finite, got {msg.number_value}")
        return msg.number_value
    if kind == "string_value":
        return msg.string_value
    if kind == "bool_value":
        return msg.bool_value
    return None  # null_value, or a Value with nothing set


def context_to_proto(context: Mapping[str, Any] | None) -> struct_pb2.Struct | None:
    """A Struct holding ``context`` (None for None); InvalidRequestError for values JSON cannot hold."""
    if context is None:
        return None
    msg = struct_pb2.Struct()
    try:
        msg.update(json.loads(json.dumps(dict(context), allow_nan=False)))
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"context must be a JSON object of finite values: {exc}") from None
    return msg


# ------------------------------------------------------------------ relationships


def relationship_from_proto(msg: core_pb2.Relationship) -> Relationship:
    if not msg.HasField("resource"):
        raise InvalidRequestError("missing relationship resource")
    resource = object_from_proto(msg.resource, "relationship resource")
    subject = subject_from_proto(msg.subject, "relationship subject")
    caveat = None
    if msg.HasField("optional_caveat"):
        c = msg.optional_caveat
        context = context_from_proto(c.context) if c.HasField("context") else {}
        caveat = CaveatRef(c.caveat_name, json.dumps(context, allow_nan=False, ensure_ascii=False))
    expiration = None
    if msg.HasField("optional_expires_at"):
        expiration = _datetime(msg.optional_expires_at)
    return Relationship(resource, msg.relation, subject, caveat, expiration)


def _datetime(ts: timestamp_pb2.Timestamp) -> datetime:
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidRequestError(f"invalid expiration timestamp (seconds={ts.seconds}, nanos={ts.nanos}): "
                                  f"{exc}") from None


def relationship_to_proto(rel: Relationship) -> core_pb2.Relationship:
    msg = core_pb2.Relationship(resource=object_to_proto(rel.resource), relation=rel.relation,
                                subject=subject_to_proto(rel.subject))
    if rel.caveat is not None:
        msg.optional_caveat.caveat_name = rel.caveat.name
        msg.optional_caveat.context.update(rel.caveat.context_dict())
    if rel.expiration is not None:
        msg.optional_expires_at.FromDatetime(rel.expiration)
    return msg


def filter_from_proto(msg: core_pb2.RelationshipFilter) -> RelationshipFilter:
    return RelationshipFilter(
        resource_type=msg.resource_type or None,
        resource_id=msg.optional_resource_id or None,
        resource_id_prefix=msg.optional_resource_id_prefix or None,
        relation=msg.optional_relation or None,
        subject_type=msg.optional_subject_type or None,
        subject_id=msg.optional_subject_id or None,
        subject_relation=msg.optional_subject_relation or None,
    )


def filter_to_proto(f: RelationshipFilter | None) -> core_pb2.RelationshipFilter:
    f = f or RelationshipFilter()
    return core_pb2.RelationshipFilter(
        resource_type=f.resource_type or "", optional_resource_id=f.resource_id or "",
        optional_resource_id_prefix=f.resource_id_prefix or "", optional_relation=f.relation or "",
        optional_subject_type=f.subject_type or "", optional_subject_id=f.subject_id or "",
        optional_subject_relation=f.subject_relation or "")


_PRECONDITION = {core_pb2.Precondition.OPERATION_MUST_MATCH: True,
                 core_pb2.Precondition.OPERATION_MUST_NOT_MATCH: False}


def precondition_from_proto(msg: core_pb2.Precondition) -> Precondition:
    if msg.operation not in _PRECONDITION:
        raise InvalidRequestError(f"invalid precondition operation {msg.operation}: give OPERATION_MUST_MATCH "
                                  "or OPERATION_MUST_NOT_MATCH")
    return Precondition(filter_from_proto(msg.filter), _PRECONDITION[msg.operation])


def precondition_to_proto(p: Precondition) -> core_pb2.Precondition:
    op = core_pb2.Precondition.OPERATION_MUST_MATCH if p.must_match else core_pb2.Precondition.OPERATION_MUST_NOT_MATCH
    return core_pb2.Precondition(operation=op, filter=filter_to_proto(p.filter))


_UPDATE = {relationship_pb2.RelationshipUpdate.OPERATION_CREATE: Operation.CREATE,
           relationship_pb2.RelationshipUpdate.OPERATION_TOUCH: Operation.TOUCH,
           relationship_pb2.RelationshipUpdate.OPERATION_DELETE: Operation.DELETE}
_UPDATE_BACK = {v: k for k, v in _UPDATE.items()}


def update_from_proto(msg: relationship_pb2.RelationshipUpdate) -> Update:
    if msg.operation not in _UPDATE:
        raise InvalidRequestError(f"invalid update operation {msg.operation}: give OPERATION_CREATE, "
                                  "OPERATION_TOUCH or OPERATION_DELETE")
    return Update(_UPDATE[msg.operation], relationship_from_proto(msg.relationship))


def update_to_proto(u: Update) -> relationship_pb2.RelationshipUpdate:
    return relationship_pb2.RelationshipUpdate(operation=_UPDATE_BACK[u.operation],
                                               relationship=relationship_to_proto(u.relationship))


_CHANGE = {Operation.TOUCH: relationship_pb2.RelationshipChange.OPERATION_TOUCH,
           Operation.DELETE: relationship_pb2.RelationshipChange.OPERATION_DELETE}
_CHANGE_BACK = {v: k for k, v in _CHANGE.items()}


def watch_change_to_proto(event: WatchEvent) -> relationship_pb2.RelationshipChange:
    return relationship_pb2.RelationshipChange(operation=_CHANGE[event.operation],
                                               relationship=relationship_to_proto(event.relationship),
                                               revision_token=event.token)


def watch_change_from_proto(msg: relationship_pb2.RelationshipChange) -> WatchEvent:
    return WatchEvent(msg.revision_token, _CHANGE_BACK[msg.operation], relationship_from_proto(msg.relationship))


# ------------------------------------------------------------------ consistency


def consistency_from_proto(msg: core_pb2.Consistency, present: bool = True) -> Consistency | None:
    """None (the engine's default, minimize latency) when unset."""
    kind = msg.WhichOneof("requirement") if present else None
    if kind is None or kind == "minimize_latency":
        return None
    if kind == "fully_consistent":
        return Consistency.fully_consistent()
    if kind == "at_least_as_fresh":
        return Consistency.at_least_as_fresh(msg.at_least_as_fresh)
    return Consistency.at_exact_snapshot(msg.at_exact_snapshot)


def consistency_to_proto(c: Consistency | None) -> core_pb2.Consistency:
    if c is None or c.mode is ConsistencyMode.MINIMIZE_LATENCY:
        return core_pb2.Consistency(minimize_latency=True)
    if c.mode is ConsistencyMode.FULLY_CONSISTENT:
        return core_pb2.Consistency(fully_consistent=True)
    if c.mode is ConsistencyMode.AT_LEAST_AS_FRESH:
        return core_pb2.Consistency(at_least_as_fresh=c.token or "")
    return core_pb2.Consistency(at_exact_snapshot=c.token or "")

