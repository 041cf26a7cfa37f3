"""Conversion between ``headwater.v1`` protobuf messages and engine values, in both directions.

Nothing else happens here: no evaluation, no store access, no status codes. Every
``*_from_proto`` builds engine values, whose constructors check every field, so a
malformed message becomes an :class:`~headwater.engine.errors.InvalidRequestError`
naming the field; the ``*_to_proto`` functions never fail on engine values. The
server uses the request-side ``from`` functions and the response-side ``to``
functions; the client uses the other half.

Example::

    >>> from headwater.engine.service.pb import core_pb2
    >>> ref = object_from_proto(core_pb2.ObjectReference(object_type="document", object_id="readme"))
    >>> str(ref), object_to_proto(ref).object_id
    ('document:readme', 'readme')
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from ..api import (
    BulkCheckItem,
    BulkCheckResult,
    CheckResult,
    ClassificationLabel,
    Declassification,
    EffectiveLabels,
    LabelValue,
    LineageItem,
    LineagePage,
    Permissionship,
    ReplayResult,
)
from ..audit import AuditRecord, RecordKind, VerifyResult
from ..consistency import Consistency, ConsistencyMode
from ..dispatch import Tri
from ..errors import InvalidRequestError
from ..expand import ExpandedSubject, ExpandNode, ExpandOperation
from ..explain import ExplainNode, Explanation
from ..relationships import CaveatRef, ObjectRef, Relationship, SubjectRef
from ..store import Operation, Precondition, RelationshipFilter, Update
from ..streams import WatchEvent
from .pb import audit_pb2, core_pb2, lineage_pb2, permission_pb2, relationship_pb2

__all__ = [
    "audit_filter_from_proto",
    "audit_filter_to_proto",
    "audit_record_from_proto",
    "audit_record_to_proto",
    "bulk_results_from_proto",
    "check_item_from_proto",
    "check_item_to_proto",
    "check_result_from_proto",
    "consistency_from_proto",
    "consistency_to_proto",
    "context_from_proto",
    "context_to_proto",
    "expand_from_proto",
    "expand_to_proto",
    "explanation_from_proto",
    "explanation_to_proto",
    "filter_from_proto",
    "filter_to_proto",
    "labels_from_proto",
    "labels_to_proto",
    "lineage_page_from_proto",
    "lineage_page_to_proto",
    "object_from_proto",
    "object_to_proto",
    "permissionship_from_proto",
    "permissionship_to_proto",
    "precondition_from_proto",
    "precondition_to_proto",
    "relationship_from_proto",
    "relationship_to_proto",
    "replay_from_proto",
    "replay_to_proto",
    "subject_from_proto",
    "subject_to_proto",
    "time_from_proto",
    "update_from_proto",
    "update_to_proto",
    "verify_from_proto",
    "verify_to_proto",
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


# ------------------------------------------------------------------ checks


_PERMISSIONSHIP = {Permissionship.NO_PERMISSION: core_pb2.PERMISSIONSHIP_NO_PERMISSION,
                   Permissionship.HAS_PERMISSION: core_pb2.PERMISSIONSHIP_HAS_PERMISSION,
                   Permissionship.CONDITIONAL_PERMISSION: core_pb2.PERMISSIONSHIP_CONDITIONAL_PERMISSION}
_PERMISSIONSHIP_BACK = {v: k for k, v in _PERMISSIONSHIP.items()}


def permissionship_to_proto(p: Permissionship) -> int:
    return _PERMISSIONSHIP[p]


def permissionship_from_proto(value: int) -> Permissionship:
    return _PERMISSIONSHIP_BACK[value]


def check_item_from_proto(msg: permission_pb2.CheckBulkRequestItem) -> BulkCheckItem:
    return BulkCheckItem(object_from_proto(msg.resource, "resource"), msg.permission,
                         subject_from_proto(msg.subject), context_from_proto(msg.context, msg.HasField("context")))


def check_item_to_proto(item: BulkCheckItem) -> permission_pb2.CheckBulkRequestItem:
    resource = item.resource if isinstance(item.resource, ObjectRef) else _parse_object(item.resource)
    subject = item.subject if isinstance(item.subject, SubjectRef) else _parse_subject(item.subject)
    return permission_pb2.CheckBulkRequestItem(resource=object_to_proto(resource), permission=item.permission,
                                               subject=subject_to_proto(subject),
                                               context=context_to_proto(item.context))


def _parse_object(text: str) -> ObjectRef:
    from ..relationships import parse_object

    return parse_object(text)


def _parse_subject(text: str) -> SubjectRef:
    from ..relationships import parse_subject

    return parse_subject(text)


_OUTCOME = {Tri.TRUE: permission_pb2.ExplainStep.OUTCOME_TRUE, Tri.FALSE: permission_pb2.ExplainStep.OUTCOME_FALSE,
            Tri.UNKNOWN: permission_pb2.ExplainStep.OUTCOME_CONDITIONAL}
_OUTCOME_BACK = {v: k for k, v in _OUTCOME.items()}


def explanation_to_proto(e: Explanation) -> permission_pb2.Explanation:
    """The explanation with its tree flattened in pre-order (iteratively: trees can be deep)."""
    msg = permission_pb2.Explanation(summary=list(e.summary))
    stack: list[tuple[ExplainNode, int]] = [(e.tree, 0)]
    while stack:
        node, depth = stack.pop()
        msg.steps.add(depth=depth, label=node.label, kind=node.kind, outcome=_OUTCOME[node.value], note=node.note)
        stack.extend((c, depth + 1) for c in reversed(node.children))
    return msg


def explanation_from_proto(msg: permission_pb2.Explanation) -> Explanation:
    roots: list[ExplainNode] = []
    path: list[ExplainNode] = []
    for step in msg.steps:
        node = ExplainNode(step.label, step.kind, _OUTCOME_BACK.get(step.outcome, Tri.FALSE), [], step.note)
        del path[step.depth:]
        (path[-1].children if path else roots).append(node)
        path.append(node)
    tree = roots[0] if roots else ExplainNode("", "check")
    return Explanation(tuple(msg.summary), tree)


def check_result_from_proto(permissionship: int, missing: Iterable[str], token: str) -> CheckResult:
    return CheckResult(permissionship_from_proto(permissionship), token, tuple(missing))


def bulk_results_from_proto(msg: permission_pb2.CheckBulkResponse, items: Sequence[BulkCheckItem],
                            error_for: Any) -> list[BulkCheckResult]:
    """Client side: pairs back to BulkCheckResults; ``error_for(code_name, message)`` rebuilds an item's error."""
    out = []
    for item, pair in zip(items, msg.pairs):
        if pair.WhichOneof("response") == "error":
            out.append(BulkCheckResult(item, error=error_for(pair.error.code_name, pair.error.message)))
        else:
            out.append(BulkCheckResult(item, check_result_from_proto(pair.item.permissionship,
                                                                     pair.item.missing_context, msg.revision_token)))
    return out


# ------------------------------------------------------------------ expand


_EXPAND_OP = {None: permission_pb2.ExpandNode.OPERATION_LEAF,
              ExpandOperation.UNION: permission_pb2.ExpandNode.OPERATION_UNION,
              ExpandOperation.INTERSECTION: permission_pb2.ExpandNode.OPERATION_INTERSECTION,
              ExpandOperation.EXCLUSION: permission_pb2.ExpandNode.OPERATION_EXCLUSION}
_EXPAND_OP_BACK = {v: k for k, v in _EXPAND_OP.items()}


def expand_to_proto(tree: ExpandNode, token: str) -> permission_pb2.ExpandResponse:
    """The tree flattened in pre-order, iteratively."""
    msg = permission_pb2.ExpandResponse(revision_token=token)
    stack: list[tuple[ExpandNode, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        n = msg.nodes.add(depth=depth, resource=object_to_proto(node.resource), name=node.name,
                          operation=_EXPAND_OP[node.operation], caveated=node.caveated)
        for s in node.subjects:
            es = n.subjects.add(subject=subject_to_proto(s.subject), caveated=s.caveated)
            if s.relationship is not None:
                es.relationship.CopyFrom(relationship_to_proto(s.relationship))
        stack.extend((c, depth + 1) for c in reversed(node.children))
    return msg


def expand_from_proto(msg: permission_pb2.ExpandResponse) -> ExpandNode:
    """Rebuild the ExpandNode tree (bottom-up, since nodes are frozen)."""
    nodes = list(msg.nodes)
    if not nodes:
        raise InvalidRequestError("empty expand tree")
    children: list[list[ExpandNode]] = [[] for _ in nodes]
    parent: list[int] = []
    path: list[int] = []
    for i, n in enumerate(nodes):
        del path[n.depth:]
        parent.append(path[-1] if path else -1)
        path.append(i)
    built: list[ExpandNode | None] = [None] * len(nodes)
    for i in range(len(nodes) - 1, -1, -1):
        n = nodes[i]
        subjects = tuple(ExpandedSubject(subject_from_proto(s.subject),
                                         relationship_from_proto(s.relationship) if s.HasField("relationship")
                                         else None, s.caveated) for s in n.subjects)
        node = ExpandNode(object_from_proto(n.resource), n.name, _EXPAND_OP_BACK[n.operation],
                          tuple(reversed(children[i])), subjects, n.caveated)
        built[i] = node
        if parent[i] >= 0:
            children[parent[i]].append(node)
    root = built[0]
    assert root is not None
    return root


# ------------------------------------------------------------------ lineage


def labels_to_proto(labels: EffectiveLabels) -> lineage_pb2.EffectiveLabelsResponse:
    return lineage_pb2.EffectiveLabelsResponse(
        object=object_to_proto(labels.object), revision_token=labels.token,
        classifications=[lineage_pb2.ClassificationLabel(
            classification=c.classification, level=c.level or "", categories=list(c.categories),
            values=[lineage_pb2.LabelValue(value=v.value, paths=list(v.paths)) for v in c.values],
            declassified=[lineage_pb2.Declassification(value=d.value, actor=d.actor or "", reason=d.reason or "",
                                                       revision_token=d.token or "") for d in c.declassified])
            for c in labels.classifications])


def labels_from_proto(msg: lineage_pb2.EffectiveLabelsResponse) -> EffectiveLabels:
    return EffectiveLabels(object_from_proto(msg.object), tuple(
        ClassificationLabel(c.classification, c.level or None, tuple(c.categories),
                            tuple(LabelValue(v.value, tuple(v.paths)) for v in c.values),
                            tuple(Declassification(d.value, d.actor or None, d.reason or None,
                                                   d.revision_token or None) for d in c.declassified))
        for c in msg.classifications), msg.revision_token)


def lineage_page_to_proto(page: LineagePage) -> lineage_pb2.LineageWalkResponse:
    return lineage_pb2.LineageWalkResponse(
        items=[lineage_pb2.LineageItem(object=object_to_proto(i.object), depth=i.depth, path=i.path)
               for i in page.items], next_cursor=page.cursor or "", revision_token=page.token)


def lineage_page_from_proto(msg: lineage_pb2.LineageWalkResponse) -> LineagePage:
    return LineagePage([LineageItem(object_from_proto(i.object), i.depth, i.path) for i in msg.items],
                       msg.next_cursor or None, msg.revision_token)


# ------------------------------------------------------------------ the audit trail


_RECORD_KIND = {RecordKind.DECISION: audit_pb2.AUDIT_RECORD_KIND_DECISION,
                RecordKind.LOOKUP: audit_pb2.AUDIT_RECORD_KIND_LOOKUP,
                RecordKind.RELATIONSHIPS: audit_pb2.AUDIT_RECORD_KIND_RELATIONSHIPS,
                RecordKind.SCHEMA: audit_pb2.AUDIT_RECORD_KIND_SCHEMA,
                RecordKind.DECLASSIFICATION: audit_pb2.AUDIT_RECORD_KIND_DECLASSIFICATION,
                RecordKind.CHECKPOINT: audit_pb2.AUDIT_RECORD_KIND_CHECKPOINT}
_RECORD_KIND_BACK = {v: k for k, v in _RECORD_KIND.items()}
_RESULT_BACK = {core_pb2.PERMISSIONSHIP_NO_PERMISSION: "NO_PERMISSION",
                core_pb2.PERMISSIONSHIP_HAS_PERMISSION: "HAS_PERMISSION",
                core_pb2.PERMISSIONSHIP_CONDITIONAL_PERMISSION: "CONDITIONAL_PERMISSION"}
_RESULT = {v: k for k, v in _RESULT_BACK.items()}
_MAX_SQL_INT = 2**63 - 1  # the largest record id or revision the audit log can hold (SQLite INTEGER)


def _timestamp(moment: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(moment)
    return ts


def time_from_proto(ts: timestamp_pb2.Timestamp, name: str) -> datetime:
    """A timestamp as an aware UTC datetime; InvalidRequestError naming ``name`` when out of range."""
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidRequestError(f"invalid {name} timestamp (seconds={ts.seconds}, nanos={ts.nanos}): "
                                  f"{exc}") from None


def audit_filter_from_proto(msg: audit_pb2.AuditFilter) -> dict[str, Any]:
    """The keyword arguments of :meth:`AuditLog.query` that the filter sets (empty fields match anything)."""
    out: dict[str, Any] = {}
    if msg.kind:
        if msg.kind not in _RECORD_KIND_BACK:
            raise InvalidRequestError(f"unknown audit record kind {msg.kind}")
        out["kind"] = _RECORD_KIND_BACK[msg.kind]
    if msg.result:
        if msg.result not in _RESULT_BACK:
            raise InvalidRequestError(f"unknown permissionship {msg.result} in the audit filter")
        out["result"] = _RESULT_BACK[msg.result]
    for name in ("subject", "resource", "permission", "caller", "actor"):
        if getattr(msg, name):
            out[name] = getattr(msg, name)
    for name in ("revision", "min_revision", "max_revision"):
        value = getattr(msg, name)
        if value > _MAX_SQL_INT:
            raise InvalidRequestError(f"audit filter {name} {value} is out of range (at most {_MAX_SQL_INT})")
        if value:
            out[name] = value
    if msg.HasField("since"):
        out["since"] = time_from_proto(msg.since, "since")
    if msg.HasField("until"):
        out["until"] = time_from_proto(msg.until, "until")
    return out


def audit_filter_to_proto(*, kind: RecordKind | str | None = None, subject: str | None = None,
                          resource: str | None = None, permission: str | None = None, result: str | None = None,
                          caller: str | None = None, actor: str | None = None, since: datetime | None = None,
                          until: datetime | None = None, revision: int | None = None,
                          min_revision: int | None = None, max_revision: int | None = None) -> audit_pb2.AuditFilter:
    """The filter message for the same keyword arguments as :meth:`AuditLog.query` takes."""
    msg = audit_pb2.AuditFilter(subject=subject or "", resource=resource or "", permission=permission or "",
                                caller=caller or "", actor=actor or "", revision=revision or 0,
                                min_revision=min_revision or 0, max_revision=max_revision or 0)
    if kind is not None:
        try:
            msg.kind = _RECORD_KIND[kind if isinstance(kind, RecordKind) else RecordKind(kind)]
        except ValueError:
            raise InvalidRequestError(f"unknown record kind {kind!r}: use one of "
                                      f"{', '.join(k.value for k in RecordKind)}") from None
    if result is not None:
        value = result.value if isinstance(result, Permissionship) else result
        if value not in _RESULT:
            raise InvalidRequestError(f"unknown result {result!r}: use HAS_PERMISSION, NO_PERMISSION or "
                                      "CONDITIONAL_PERMISSION")
        msg.result = _RESULT[value]
    for name, moment in (("since", since), ("until", until)):
        if moment is not None:
            if moment.utcoffset() is None:
                raise InvalidRequestError(f"invalid time {moment!r}: must be timezone-aware")
            getattr(msg, name).CopyFrom(_timestamp(moment))
    return msg


def audit_record_to_proto(record: AuditRecord) -> audit_pb2.AuditRecord:
    body = record.body
    revision = body.get("revision")
    return audit_pb2.AuditRecord(
        id=record.id, kind=_RECORD_KIND[record.kind], time=_timestamp(record.time), caller=body.get("caller") or "",
        actor=body.get("actor") or "", resource=body.get("resource") or "", permission=body.get("permission") or "",
        subject=body.get("subject") or "", result=_RESULT.get(body.get("result"), core_pb2.PERMISSIONSHIP_UNSPECIFIED),
        revision=revision if isinstance(revision, int) and revision > 0 else 0,
        revision_token=body.get("token") or "", description=record.describe(), json=record.to_json(),
        hash=record.hash, prev_hash=record.prev_hash)


def audit_record_from_proto(msg: audit_pb2.AuditRecord) -> AuditRecord:
    """The engine's record, rebuilt from the record's JSON (its body is exactly what the log stores)."""
    data = json.loads(msg.json)
    body = {k: v for k, v in data.items() if k not in ("hash", "prev_hash")}
    return AuditRecord(msg.id, _RECORD_KIND_BACK[msg.kind], msg.time.ToDatetime(tzinfo=UTC), body, msg.hash,
                       msg.prev_hash)


def verify_to_proto(result: VerifyResult) -> audit_pb2.AuditVerifyResponse:
    return audit_pb2.AuditVerifyResponse(ok=result.ok, records=result.records, count=result.count,
                                         head_hash=result.head_hash, record_id=result.record_id or 0,
                                         problem=result.problem or "", notes=list(result.notes),
                                         summary=str(result))


def verify_from_proto(msg: audit_pb2.AuditVerifyResponse) -> VerifyResult:
    return VerifyResult(msg.ok, msg.records, msg.count, msg.head_hash, msg.record_id or None, msg.problem or None,
                        tuple(msg.notes))


def replay_to_proto(replayed: ReplayResult) -> audit_pb2.AuditReplayResponse:
    record = replayed.record
    msg = audit_pb2.AuditReplayResponse(
        record=audit_record_to_proto(record), available=replayed.available, same=bool(replayed.same),
        recorded=_RESULT.get(record.result, core_pb2.PERMISSIONSHIP_UNSPECIFIED), message=replayed.message,
        revision_token=record.get("token") or "")
    result = replayed.result
    if result is not None:
        msg.permissionship = permissionship_to_proto(result.permissionship)
        msg.missing_context.extend(result.missing_context)
        if result.explanation is not None:
            msg.explanation.CopyFrom(explanation_to_proto(result.explanation))
    return msg


def replay_from_proto(msg: audit_pb2.AuditReplayResponse) -> ReplayResult:
    record = audit_record_from_proto(msg.record)
    if not msg.available:
        return ReplayResult(record, False, None, None, msg.message)
    result = CheckResult(permissionship_from_proto(msg.permissionship), msg.revision_token,
                         tuple(msg.missing_context),
                         explanation_from_proto(msg.explanation) if msg.HasField("explanation") else None)
    return ReplayResult(record, True, msg.same, result, msg.message)
