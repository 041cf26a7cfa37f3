"""The calls of the Headwater API as values: a request, the RPC it goes to, how to read the answer, and whether it
is safe to repeat. ``Client`` and ``AsyncClient`` share them; each only runs them (blocking, or awaiting).

A :class:`Unary` reads one response; a :class:`Collect` reads every response of a server stream and the revision
token from its trailing metadata. Building them touches no network, so the rules live here once::

    >>> call = check("document:readme", "view", "user:ann")
    >>> call.rpc, call.safe
    (('permissions', 'Check'), True)
    >>> touch_call = write([Update(Operation.TOUCH, parse_relationship("document:a#viewer@user:b"))])
    >>> create_call = write([Update(Operation.CREATE, parse_relationship("document:a#viewer@user:b"))])
    >>> touch_call.safe, create_call.safe
    (True, False)
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from grpc_health.v1 import health_pb2, health_pb2_grpc

from ..engine import errors as engine_errors
from ..engine.audit.records import AuditPage, RecordKind, VerifyResult
from ..engine.consistency import Consistency
from ..engine.expand import ExpandNode
from ..engine.relationships import (
    ObjectRef,
    Relationship,
    SubjectRef,
    parse_object,
    parse_relationship,
    parse_subject,
)
from ..engine.results import (
    Alert,
    BulkCheckItem,
    BulkCheckResult,
    ChangeImpact,
    CheckResult,
    DeleteResult,
    DeriveResult,
    EffectiveLabels,
    LineagePage,
    LookupResourcesPage,
    LookupResult,
    LookupSubjectsPage,
    ReadPage,
    ReplayResult,
    SchemaVersion,
    SchemaWriteReport,
    SubjectResult,
    WatchEvent,
    WriteResult,
)
from ..engine.service import convert
from ..engine.service.errors import ERROR_METADATA_KEY, REVISION_METADATA_KEY, error_from_status
from ..engine.service.pb import (
    audit_pb2,
    audit_pb2_grpc,
    governance_pb2,
    governance_pb2_grpc,
    lineage_pb2,
    lineage_pb2_grpc,
    permission_pb2,
    permission_pb2_grpc,
    relationship_pb2,
    relationship_pb2_grpc,
    schema_pb2,
    schema_pb2_grpc,
)
from ..engine.store import Operation, Precondition, RelationshipFilter, Update
from .retry import Attempts, RetryPolicy

__all__ = [
    "ClientTls",
    "Collect",
    "ExportResult",
    "STUBS",
    "Unary",
    "audit_export_request",
    "monitor_request",
    "impact",
    "read_alert",
    "audit_query",
    "audit_replay",
    "audit_verify",
    "check",
    "channel_options",
    "check_bulk",
    "delete",
    "derive",
    "effective_labels",
    "error_from_rpc",
    "expand",
    "export_relationships",
    "health",
    "import_messages",
    "lineage_walk",
    "lookup_resources",
    "lookup_subjects",
    "pause_or_raise",
    "read_relationships",
    "read_schema",
    "rel",
    "revision_token",
    "schema_history",
    "watch_events",
    "watch_request",
    "write",
    "write_schema",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ClientTls:
    """TLS for the client: the CA that signed the server's certificate (None: the system's roots), and a client
    certificate and key for mutual TLS. Each is a PEM file path or the PEM bytes."""

    ca: str | bytes | None = None
    cert: str | bytes | None = None
    key: str | bytes | None = None
    server_name: str | None = None  # override the name checked against the server certificate

    def pem(self) -> tuple[bytes | None, bytes | None, bytes | None]:
        """(CA, key, certificate) as PEM bytes: the arguments of ``grpc.ssl_channel_credentials``."""
        return _pem(self.ca), _pem(self.key), _pem(self.cert)


def _pem(value: str | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


@dataclass(frozen=True, slots=True)
class ExportResult:
    """Every exported relationship, at the revision ``token``."""

    relationships: list[Relationship]
    token: str

    def __iter__(self) -> Iterator[Relationship]:
        return iter(self.relationships)


@dataclass(frozen=True, slots=True)
class Unary(Generic[T]):
    """One request, one response: ``rpc`` is (the client's stub, the method); ``read`` makes the result."""

    rpc: tuple[str, str]
    request: Any
    read: Callable[[Any], T]
    safe: bool = True


@dataclass(frozen=True, slots=True)
class Collect(Generic[T]):
    """One request, a stream of responses read to the end; ``read`` gets them and the revision token."""

    rpc: tuple[str, str]
    request: Any
    read: Callable[[list[Any], str], T]
    safe: bool = True


#: The client's stubs by name (the first half of a call's ``rpc``); each takes a channel, blocking or asyncio.
STUBS: dict[str, Callable[[Any], Any]] = {
    "permissions": permission_pb2_grpc.PermissionServiceStub,
    "relationships": relationship_pb2_grpc.RelationshipServiceStub,
    "schema": schema_pb2_grpc.SchemaServiceStub,
    "lineage": lineage_pb2_grpc.LineageServiceStub,
    "audit": audit_pb2_grpc.AuditServiceStub,
    "governance": governance_pb2_grpc.GovernanceServiceStub,
    "health": health_pb2_grpc.HealthStub,
}


def channel_options(policy: RetryPolicy, max_message_bytes: int, tls: bool | ClientTls) -> list[tuple[str, Any]]:
    """The options of a client's channel: message sizes, the retry policy, the TLS name override."""
    options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", max_message_bytes),
                                      ("grpc.max_send_message_length", max_message_bytes),
                                      *policy.channel_options()]
    if isinstance(tls, ClientTls) and tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return options


def error_from_rpc(err: Any) -> Exception:
    """The exception a failed call raises: the engine error class the server named, else by status code."""
    code_of = getattr(err, "code", None)
    status = code_of() if callable(code_of) else None
    code = status.name if status is not None else "UNKNOWN"
    details = getattr(err, "details", None)
    message = details() if callable(details) else str(err)
    trailing = getattr(err, "trailing_metadata", None)
    name = None
    for key, value in (trailing() if callable(trailing) else None) or ():
        if key == ERROR_METADATA_KEY:
            name = value if isinstance(value, str) else value.decode()
    return error_from_status(code, message or "", name)


def pause_or_raise(attempts: Attempts, err: Any) -> float:
    """After an attempt failed with ``err`` (a ``grpc.RpcError``): the seconds to wait before the next attempt, or
    raise the call's error (not retryable, not safe to repeat, attempts spent, deadline too close). When the deadline
    ends a retry, the error raised is the one retried (UNAVAILABLE...), not DEADLINE_EXCEEDED."""
    error = error_from_rpc(err)
    pause = attempts.after(error)
    if pause is None:
        if attempts.last is not None and getattr(error, "code", None) == "DEADLINE_EXCEEDED":
            error = attempts.last  # the deadline cut short a retry: what kept failing says more
        raise error from None
    attempts.last = error
    return pause


def revision_token(trailing: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The revision token a stream's trailing metadata carries ("" if none)."""
    for key, value in trailing or ():
        if key == REVISION_METADATA_KEY:
            return value if isinstance(value, str) else value.decode()
    return ""


def _object(value: ObjectRef | str) -> ObjectRef:
    return value if isinstance(value, ObjectRef) else parse_object(value)


def _subject(value: SubjectRef | str) -> SubjectRef:
    return value if isinstance(value, SubjectRef) else parse_subject(value)


def rel(value: Relationship | str) -> Relationship:
    """A relationship, parsed if given as text (``document:1#viewer@user:ann``)."""
    return value if isinstance(value, Relationship) else parse_relationship(value)


def _cursor(responses: list[Any], count: int, limit: int | None) -> str | None:
    """The cursor of the next page: the last result's, if the page is full."""
    last = responses[-1].after_result_cursor or None if responses else None
    return last if limit is not None and count >= limit else None


def health(service: str = "") -> Unary[str]:
    def read(r: Any) -> str:
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(r.status))
    return Unary(("health", "Check"), health_pb2.HealthCheckRequest(service=service), read)


# ------------------------------------------------------------------------------------------------ checks


def check(resource: ObjectRef | str, permission: str, subject: SubjectRef | str, *,
          context: Mapping[str, Any] | None = None, consistency: Consistency | None = None,
          explain: bool = False) -> Unary[CheckResult]:
    request = permission_pb2.CheckRequest(
        resource=convert.object_to_proto(_object(resource)), permission=permission,
        subject=convert.subject_to_proto(_subject(subject)), context=convert.context_to_proto(context),
        consistency=convert.consistency_to_proto(consistency), explain=explain)

    return Unary(("permissions", "Check"), request, convert.check_response_from_proto)


def check_bulk(items: Sequence[BulkCheckItem], *,
               consistency: Consistency | None = None) -> Unary[list[BulkCheckResult]]:
    request = permission_pb2.CheckBulkRequest(items=[convert.check_item_to_proto(i) for i in items],
                                              consistency=convert.consistency_to_proto(consistency))

    def read(r: permission_pb2.CheckBulkResponse) -> list[BulkCheckResult]:
        return convert.bulk_results_from_proto(r, items, lambda code, message: error_from_status(code, message))
    return Unary(("permissions", "CheckBulk"), request, read)


def expand(resource: ObjectRef | str, permission: str, *, context: Mapping[str, Any] | None = None,
           consistency: Consistency | None = None) -> Unary[tuple[ExpandNode, str]]:
    request = permission_pb2.ExpandRequest(resource=convert.object_to_proto(_object(resource)),
                                           permission=permission, context=convert.context_to_proto(context),
                                           consistency=convert.consistency_to_proto(consistency))

    def read(r: permission_pb2.ExpandResponse) -> tuple[ExpandNode, str]:
        return convert.expand_from_proto(r), r.revision_token
    return Unary(("permissions", "Expand"), request, read)


def lookup_resources(resource_type: str, permission: str, subject: SubjectRef | str, *,
                     context: Mapping[str, Any] | None = None, consistency: Consistency | None = None,
                     limit: int | None = None, cursor: str | None = None) -> Collect[LookupResourcesPage]:
    request = permission_pb2.LookupResourcesRequest(
        resource_object_type=resource_type, permission=permission,
        subject=convert.subject_to_proto(_subject(subject)), context=convert.context_to_proto(context),
        consistency=convert.consistency_to_proto(consistency), optional_limit=limit or 0,
        optional_cursor=cursor or "")

    def read(responses: list[Any], token: str) -> LookupResourcesPage:
        results = [LookupResult(r.resource_object_id, convert.permissionship_from_proto(r.permissionship),
                                tuple(r.missing_context)) for r in responses]
        return LookupResourcesPage(results, _cursor(responses, len(results), limit), token)
    return Collect(("permissions", "LookupResources"), request, read)


def lookup_subjects(resource: ObjectRef | str, permission: str, subject_type: str,
                    subject_relation: str | None = None, *, context: Mapping[str, Any] | None = None,
                    consistency: Consistency | None = None, limit: int | None = None,
                    cursor: str | None = None) -> Collect[LookupSubjectsPage]:
    request = permission_pb2.LookupSubjectsRequest(
        resource=convert.object_to_proto(_object(resource)), permission=permission,
        subject_object_type=subject_type, optional_subject_relation=subject_relation or "",
        context=convert.context_to_proto(context), consistency=convert.consistency_to_proto(consistency),
        optional_limit=limit or 0, optional_cursor=cursor or "")

    def read(responses: list[Any], token: str) -> LookupSubjectsPage:
        results = [SubjectResult(convert.subject_from_proto(r.subject),
                                 convert.permissionship_from_proto(r.permissionship), tuple(r.missing_context),
                                 tuple(convert.subject_from_proto(s) for s in r.excluded_subjects))
                   for r in responses]
        return LookupSubjectsPage(results, _cursor(responses, len(results), limit), token)
    return Collect(("permissions", "LookupSubjects"), request, read)


# ------------------------------------------------------------------------------------------------ relationships


def write(updates: Iterable[Update], preconditions: Sequence[Precondition] = (), *, actor: str | None = None,
          reason: str | None = None) -> Unary[WriteResult]:
    """A write is safe to repeat when it only TOUCHes and DELETEs and has no preconditions (once applied, the same
    write again changes nothing; a precondition could fail the second time). CREATE is not: a second CREATE of
    what the first created fails with ALREADY_EXISTS."""
    updates = list(updates)
    request = relationship_pb2.WriteRequest(
        updates=[convert.update_to_proto(u) for u in updates],
        optional_preconditions=[convert.precondition_to_proto(p) for p in preconditions],
        actor=actor or "", reason=reason or "")
    safe = not preconditions and all(u.operation in (Operation.TOUCH, Operation.DELETE) for u in updates)

    def read(r: relationship_pb2.WriteResponse) -> WriteResult:
        return WriteResult(r.revision_token)
    return Unary(("relationships", "Write"), request, read, safe)


def delete(filter: RelationshipFilter, *, limit: int | None = None, allow_partial: bool = False,
           preconditions: Sequence[Precondition] = (), actor: str | None = None,
           reason: str | None = None) -> Unary[DeleteResult]:
    """Safe to repeat without a limit or preconditions (the second deletes nothing more)."""
    request = relationship_pb2.DeleteRequest(
        filter=convert.filter_to_proto(filter), optional_limit=limit or 0,
        optional_allow_partial_deletions=allow_partial,
        optional_preconditions=[convert.precondition_to_proto(p) for p in preconditions],
        actor=actor or "", reason=reason or "")

    def read(r: relationship_pb2.DeleteResponse) -> DeleteResult:
        return DeleteResult(r.revision_token, r.deleted_count, r.partial)
    return Unary(("relationships", "Delete"), request, read, limit is None and not preconditions)


def read_relationships(filter: RelationshipFilter | None = None, *, consistency: Consistency | None = None,
                       limit: int | None = None, cursor: str | None = None) -> Collect[ReadPage]:
    request = relationship_pb2.ReadRequest(filter=convert.filter_to_proto(filter),
                                           consistency=convert.consistency_to_proto(consistency),
                                           optional_limit=limit or 0, optional_cursor=cursor or "")

    def read(responses: list[Any], token: str) -> ReadPage:
        rels = [convert.relationship_from_proto(r.relationship) for r in responses]
        return ReadPage(rels, _cursor(responses, len(rels), limit), token)
    return Collect(("relationships", "Read"), request, read)


def export_relationships(filter: RelationshipFilter | None = None, *, consistency: Consistency | None = None,
                         batch_size: int = 0) -> Collect[ExportResult]:
    request = relationship_pb2.ExportRequest(filter=convert.filter_to_proto(filter),
                                             consistency=convert.consistency_to_proto(consistency),
                                             optional_batch_size=batch_size)

    def read(responses: list[Any], token: str) -> ExportResult:
        return ExportResult([convert.relationship_from_proto(x) for r in responses for x in r.relationships], token)
    return Collect(("relationships", "Export"), request, read)


#: What an import does with a stored relationship (Engine.import_relationships' ``existing``) on the wire.
IMPORT_EXISTING = {"error": relationship_pb2.IMPORT_EXISTING_ERROR, "touch": relationship_pb2.IMPORT_EXISTING_TOUCH,
                   "skip": relationship_pb2.IMPORT_EXISTING_SKIP}


def import_messages(relationships: Iterable[Relationship | str], *, chunk_size: int = 500,
                    actor: str | None = None, reason: str | None = None,
                    existing: str = "error") -> Iterator[relationship_pb2.ImportRequest]:
    """The client stream of an import: ``chunk_size`` relationships a message, actor, reason and what a stored
    relationship does (``existing``: error, touch or skip) on the first. The arguments are checked now."""
    if existing not in IMPORT_EXISTING:
        raise engine_errors.InvalidRequestError(f"existing must be one of {', '.join(IMPORT_EXISTING)}, "
                                                f"got {existing!r}")
    return _import_stream(iter(relationships), chunk_size, actor or "", reason or "", IMPORT_EXISTING[existing])


def _import_stream(it: Iterator[Relationship | str], chunk_size: int, actor: str, reason: str,
                   existing: int) -> Iterator[relationship_pb2.ImportRequest]:
    first = True
    while True:
        chunk = [rel(r) for r in itertools.islice(it, chunk_size)]
        if not chunk and not first:
            return
        yield relationship_pb2.ImportRequest(relationships=[convert.relationship_to_proto(r) for r in chunk],
                                             actor=actor if first else "", reason=reason if first else "",
                                             existing=existing if first else 0)  # type: ignore[arg-type]
        first = False
        if len(chunk) < chunk_size:
            return


def watch_request(after_token: str | None, resource_types: Sequence[str]) -> relationship_pb2.WatchRequest:
    return relationship_pb2.WatchRequest(optional_start_revision_token=after_token or "",
                                         optional_resource_types=list(resource_types))


def watch_events(response: relationship_pb2.WatchResponse) -> list[WatchEvent]:
    """The changes of one Watch response (one revision's, or a checkpoint's none)."""
    return [convert.watch_change_from_proto(change) for change in response.changes]


# ------------------------------------------------------------------------------------------------ schema


def write_schema(text: str, *, actor: str | None = None, dry_run: bool = False) -> Unary[SchemaWriteReport]:
    """Safe to repeat: the same text written again is the schema in force, unchanged."""
    def read(r: schema_pb2.WriteSchemaResponse) -> SchemaWriteReport:
        return SchemaWriteReport(r.revision_token, r.version, r.digest, r.dry_run, r.accepted, tuple(r.refused),
                                 r.diff)
    return Unary(("schema", "Write"), schema_pb2.WriteSchemaRequest(schema=text, dry_run=dry_run, actor=actor or ""),
                 read)


def read_schema(consistency: Consistency | None = None) -> Unary[tuple[str, str, str]]:
    def read(r: schema_pb2.ReadSchemaResponse) -> tuple[str, str, str]:
        return r.schema, r.digest, r.revision_token
    request = schema_pb2.ReadSchemaRequest(consistency=convert.consistency_to_proto(consistency))
    return Unary(("schema", "Read"), request, read)


def schema_history(*, include_text: bool = False) -> Unary[list[SchemaVersion]]:
    def read(r: schema_pb2.SchemaHistoryResponse) -> list[SchemaVersion]:
        return [SchemaVersion(v.version, v.digest, v.revision_token, v.actor or None,
                              v.schema if include_text else None) for v in r.versions]
    return Unary(("schema", "History"), schema_pb2.SchemaHistoryRequest(include_text=include_text), read)


# ------------------------------------------------------------------------------------------------ lineage


def effective_labels(obj: ObjectRef | str, *, consistency: Consistency | None = None) -> Unary[EffectiveLabels]:
    request = lineage_pb2.EffectiveLabelsRequest(object=convert.object_to_proto(_object(obj)),
                                                 consistency=convert.consistency_to_proto(consistency))
    return Unary(("lineage", "EffectiveLabels"), request, convert.labels_from_proto)


def derive(obj: ObjectRef | str, lineage: Mapping[str, Sequence[ObjectRef | str]], *,
           relationships: Iterable[Relationship | str] = (), checks: Sequence[tuple[str, SubjectRef | str]] = (),
           context: Mapping[str, Any] | None = None, actor: str | None = None,
           reason: str | None = None) -> Unary[DeriveResult]:
    """Safe to repeat, as a write that only TOUCHes without preconditions is: a derivation already stored is not
    written again. The client's loop retries it; gRPC's own policy does not (it is no
    :data:`~.retry.SAFE_UNARY_METHODS` member), as it does not retry Write. A repeat whose first attempt was
    applied and only its answer lost answers ``written=False`` (at the head revision then)."""
    request = convert.derive_request_to_proto(
        _object(obj), {relation: [_object(o) for o in objects] for relation, objects in lineage.items()},
        [rel(r) for r in relationships], [(permission, _subject(s)) for permission, s in checks], context, actor,
        reason)
    return Unary(("lineage", "Derive"), request, convert.derive_from_proto)


def lineage_walk(method: str, obj: ObjectRef | str, *, max_depth: int | None = None, limit: int | None = None,
                 cursor: str | None = None, consistency: Consistency | None = None) -> Unary[LineagePage]:
    """``method`` is ``Ancestors`` or ``Descendants``."""
    request = lineage_pb2.LineageWalkRequest(object=convert.object_to_proto(_object(obj)),
                                             optional_max_depth=max_depth or 0, optional_limit=limit or 0,
                                             optional_cursor=cursor or "",
                                             consistency=convert.consistency_to_proto(consistency))
    return Unary(("lineage", method), request, convert.lineage_page_from_proto)


# ------------------------------------------------------------------------------------------------ audit


def audit_query(*, kind: RecordKind | str | None = None, subject: str | None = None, resource: str | None = None,
                permission: str | None = None, result: str | None = None, caller: str | None = None,
                actor: str | None = None, since: datetime | None = None, until: datetime | None = None,
                revision: int | None = None, min_revision: int | None = None, max_revision: int | None = None,
                limit: int = 100, cursor: str | None = None, newest_first: bool = False) -> Collect[AuditPage]:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise engine_errors.InvalidRequestError(f"invalid limit {limit!r}: must be a positive integer")
    request = audit_pb2.AuditQueryRequest(
        filter=convert.audit_filter_to_proto(
            kind=kind, subject=subject, resource=resource, permission=permission, result=result, caller=caller,
            actor=actor, since=since, until=until, revision=revision, min_revision=min_revision,
            max_revision=max_revision),
        newest_first=newest_first, optional_limit=limit, optional_cursor=cursor or "")

    def read(responses: list[Any], token: str) -> AuditPage:
        records = [convert.audit_record_from_proto(r.record) for r in responses]
        return AuditPage(records, _cursor(responses, len(records), limit))
    return Collect(("audit", "Query"), request, read)


def audit_export_request(**filters: Any) -> audit_pb2.AuditExportRequest:
    return audit_pb2.AuditExportRequest(filter=convert.audit_filter_to_proto(**filters))


def read_alert(msg: governance_pb2.MonitorResponse) -> Alert:
    return convert.alert_from_proto(msg)


def monitor_request(since: datetime | None, until: datetime | None, follow: bool,
                    rules_toml: str | None) -> governance_pb2.MonitorRequest:
    request = governance_pb2.MonitorRequest(follow=follow, rules_toml=rules_toml or "")
    if since is not None:
        request.since.FromDatetime(since)
    if until is not None:
        request.until.FromDatetime(until)
    return request


def impact(*, schema: str | None = None, updates: Iterable[Update] = (), baseline: str | None = None,
           since: datetime | None = None, until: datetime | None = None,
           limit: int | None = None) -> Unary[ChangeImpact]:
    request = governance_pb2.ImpactRequest(schema=schema or "", baseline_schema=baseline or "", limit=limit or 0,
                                           updates=[convert.update_to_proto(u) for u in updates])
    if since is not None:
        request.since.FromDatetime(since)
    if until is not None:
        request.until.FromDatetime(until)
    return Unary(("governance", "Impact"), request, convert.impact_from_proto)


def audit_verify() -> Unary[VerifyResult]:
    return Unary(("audit", "Verify"), audit_pb2.AuditVerifyRequest(), convert.verify_from_proto)


def audit_replay(record_id: int | None = None, *, context: Mapping[str, Any] | None = None,
                 resource: str | None = None, permission: str | None = None, subject: str | None = None,
                 before: datetime | None = None) -> Unary[ReplayResult]:
    request = audit_pb2.AuditReplayRequest(record_id=record_id or 0,
                                           context_json=json.dumps(dict(context)) if context else "",
                                           resource=resource or "", permission=permission or "",
                                           subject=subject or "")
    if before is not None:
        request.before.CopyFrom(convert.audit_filter_to_proto(until=before).until)
    return Unary(("audit", "Replay"), request, convert.replay_from_proto)
