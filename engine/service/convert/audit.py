"""Conversion of the audit messages: filters, records, verification and replays.

See :mod:`headwater.engine.service.convert` for the rules they all follow.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from ...audit import AuditRecord, RecordKind, VerifyResult
from ...errors import InvalidRequestError
from ...results import (
    Alert,
    ChangeImpact,
    CheckResult,
    ImpactedDecision,
    Permissionship,
    ReplayResult,
)
from ..pb import audit_pb2, core_pb2, governance_pb2
from .permissions import (
    explanation_from_proto,
    explanation_to_proto,
    permissionship_from_proto,
    permissionship_to_proto,
)

__all__ = [
    "alert_from_proto",
    "alert_to_proto",
    "audit_filter_from_proto",
    "audit_filter_to_proto",
    "audit_record_from_proto",
    "audit_record_to_proto",
    "impact_from_proto",
    "impact_to_proto",
    "replay_from_proto",
    "replay_to_proto",
    "time_from_proto",
    "verify_from_proto",
    "verify_to_proto",
]

# ------------------------------------------------------------------ the audit trail


_RECORD_KIND = {RecordKind.DECISION: audit_pb2.AUDIT_RECORD_KIND_DECISION,
                RecordKind.LOOKUP: audit_pb2.AUDIT_RECORD_KIND_LOOKUP,
                RecordKind.RELATIONSHIPS: audit_pb2.AUDIT_RECORD_KIND_RELATIONSHIPS,
                RecordKind.SCHEMA: audit_pb2.AUDIT_RECORD_KIND_SCHEMA,
                RecordKind.DECLASSIFICATION: audit_pb2.AUDIT_RECORD_KIND_DECLASSIFICATION,
                RecordKind.CHECKPOINT: audit_pb2.AUDIT_RECORD_KIND_CHECKPOINT,
                RecordKind.ACKNOWLEDGEMENT: audit_pb2.AUDIT_RECORD_KIND_ACKNOWLEDGEMENT}
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


def alert_to_proto(alert: Alert) -> governance_pb2.MonitorResponse:
    """An alert of the monitoring rules; its evidence as a Struct (the JSON of ``headwater monitor``)."""
    evidence = struct_pb2.Struct()
    evidence.update(json.loads(json.dumps(alert.as_json()["evidence"], default=str)))
    return governance_pb2.MonitorResponse(rule=alert.rule, time=_timestamp(alert.time), subject=alert.subject or "",
                                          value=alert.value or "", summary=alert.summary, record_id=alert.record_id,
                                          evidence=evidence)


def alert_from_proto(msg: governance_pb2.MonitorResponse) -> Alert:
    """The client's side of :func:`alert_to_proto` (record ids and counts back to integers)."""
    evidence = json_format.MessageToDict(msg.evidence)
    for key, value in list(evidence.items()):
        if isinstance(value, float) and value.is_integer() and key not in ("expected", "threshold"):
            evidence[key] = int(value)
        elif isinstance(value, list):
            evidence[key] = [int(v) if isinstance(v, float) and v.is_integer() else v for v in value]
    return Alert(msg.rule, time_from_proto(msg.time, "time"), msg.subject or None, msg.value or None, msg.summary,
                 msg.record_id, evidence)


def impact_to_proto(impact: ChangeImpact) -> governance_pb2.ImpactResponse:
    """A change impact (:meth:`Engine.impact`) as GovernanceService/Impact answers it."""
    return governance_pb2.ImpactResponse(
        token=impact.token, decisions=impact.decisions, checks=impact.checks, skipped=impact.skipped,
        refused=list(impact.refused),
        changes=[governance_pb2.ImpactedDecision(
            resource=c.resource, permission=c.permission, subject=c.subject, before=c.before, after=c.after,
            explanation=list(c.explanation), records=list(c.records), before_missing=list(c.before_missing),
            after_missing=list(c.after_missing)) for c in impact.changes])


def impact_from_proto(msg: governance_pb2.ImpactResponse) -> ChangeImpact:
    """The client's side of :func:`impact_to_proto`."""
    return ChangeImpact(msg.token, msg.decisions, msg.checks, msg.skipped, tuple(
        ImpactedDecision(c.resource, c.permission, c.subject, c.before, c.after, tuple(c.explanation),
                         tuple(c.records), tuple(c.before_missing), tuple(c.after_missing)) for c in msg.changes),
        tuple(msg.refused))
