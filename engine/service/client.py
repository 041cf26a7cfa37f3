"""A Python client of the Headwater gRPC API whose methods mirror :class:`~headwater.engine.Engine`.

Public as ``headwater.engine.client``; it lives here because grpc's one home is
``engine/service``. Results are the engine's own types (``CheckResult``,
``LookupResourcesPage``, ``ExpandNode``, ``WriteResult``, ``EffectiveLabels``,
``AuditPage``, ``VerifyResult``, ``ReplayResult``, ...)
or close equivalents where the wire carries less (:class:`SchemaWriteReport`,
:class:`ExportResult`). A failed call raises the engine error the server raised
(the trailing metadata ``headwater-error`` names its class), or :class:`RemoteError`
for statuses with no engine equivalent (UNAUTHENTICATED, PERMISSION_DENIED for a
missing scope, UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL). Every raised error has
``.code``, the gRPC status code's name.

Example (needs a running server)::

    client = Client("localhost:50051", token="hw_live_...", tls=ClientTls(ca="ca.pem"))
    client.check("output:o1", "view", "user:alice").allowed
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ...dsl import Schema, SchemaLimits, compile_schema
from .. import errors as engine_errors
from ..results import (
    BulkCheckItem,
    BulkCheckResult,
    CheckResult,
    DeleteResult,
    EffectiveLabels,
    ImportResult,
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
from ..audit import AuditPage, RecordKind, VerifyResult
from ..consistency import Consistency
from ..expand import ExpandNode
from ..relationships import ObjectRef, Relationship, SubjectRef, parse_object, parse_relationship, parse_subject
from ..store import Operation, Precondition, RelationshipFilter, Update
from . import convert
from .errors import ERROR_METADATA_KEY, REVISION_METADATA_KEY, RemoteError, error_from_status
from .pb import (
    audit_pb2,
    audit_pb2_grpc,
    lineage_pb2,
    lineage_pb2_grpc,
    permission_pb2,
    permission_pb2_grpc,
    relationship_pb2,
    relationship_pb2_grpc,
    schema_pb2,
    schema_pb2_grpc,
)

__all__ = ["Client", "ClientTls", "ExportResult", "RemoteError", "SchemaVersionInfo", "SchemaWriteReport"]

SchemaVersionInfo = SchemaVersion  # the name the client gave it first


@dataclass(frozen=True, slots=True)
class ClientTls:
    """TLS for the client: the CA that signed the server's certificate (None: the system's roots), and a client
    certificate and key for mutual TLS. Each is a PEM file path or the PEM bytes."""

    ca: str | bytes | None = None
    cert: str | bytes | None = None
    key: str | bytes | None = None
    server_name: str | None = None  # override the name checked against the server certificate


@dataclass(frozen=True, slots=True)
class ExportResult:
    """Every exported relationship, at the revision ``token``."""

    relationships: list[Relationship]
    token: str

    def __iter__(self) -> Iterator[Relationship]:
        return iter(self.relationships)


def _pem(value: str | bytes | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


def _object(value: ObjectRef | str) -> ObjectRef:
    return value if isinstance(value, ObjectRef) else parse_object(value)


def _subject(value: SubjectRef | str) -> SubjectRef:
    return value if isinstance(value, SubjectRef) else parse_subject(value)


def _rel(value: Relationship | str) -> Relationship:
    return value if isinstance(value, Relationship) else parse_relationship(value)


def _raise(err: grpc.RpcError) -> Exception:
    code = err.code().name if hasattr(err, "code") and err.code() is not None else "UNKNOWN"
    message = err.details() if hasattr(err, "details") else str(err)
    name = None
    trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == ERROR_METADATA_KEY:
            name = value if isinstance(value, str) else value.decode()
    return error_from_status(code, message or "", name)


class Client:
    """A connection to a Headwater server; methods mirror the Engine's. Use as a context manager or ``close()``.

    :param address: ``host:port``.
    :param token: the bearer token (sent as ``authorization: Bearer ...`` on every call).
    :param tls: False for plaintext, True for TLS with the system's roots, or a :class:`ClientTls`.
    :param timeout: seconds each call may take (None: no deadline).
    """

    def __init__(self, address: str, *, token: str | None = None, tls: bool | ClientTls = False,
                 timeout: float | None = 30.0, max_message_bytes: int = 4 * 1024 * 1024) -> None:
        options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", max_message_bytes),
                                          ("grpc.max_send_message_length", max_message_bytes)]
        if tls:
            t = tls if isinstance(tls, ClientTls) else ClientTls()
            if t.server_name:
                options.append(("grpc.ssl_target_name_override", t.server_name))
            credentials = grpc.ssl_channel_credentials(_pem(t.ca), _pem(t.key), _pem(t.cert))
            self.channel = grpc.secure_channel(address, credentials, options=options)
        else:
            self.channel = grpc.insecure_channel(address, options=options)
        self.address = address
        self.timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._permissions = permission_pb2_grpc.PermissionServiceStub(self.channel)
        self._relationships = relationship_pb2_grpc.RelationshipServiceStub(self.channel)
        self._schema = schema_pb2_grpc.SchemaServiceStub(self.channel)
        self._lineage = lineage_pb2_grpc.LineageServiceStub(self.channel)
        self._audit = audit_pb2_grpc.AuditServiceStub(self.channel)
        self._health = health_pb2_grpc.HealthStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        try:
            return method(request, timeout=timeout if timeout is not None else self.timeout,
                          metadata=self._metadata)
        except grpc.RpcError as err:
            raise _raise(err) from None

    def _collect(self, method: Any, request: Any) -> tuple[list[Any], str]:
        """Every response of a server stream, and the revision token from the trailing metadata."""
        try:
            call = method(request, timeout=self.timeout, metadata=self._metadata)
            responses = list(call)
            token = ""
            for key, value in call.trailing_metadata() or ():
                if key == REVISION_METADATA_KEY:
                    token = value if isinstance(value, str) else value.decode()
            return responses, token
        except grpc.RpcError as err:
            raise _raise(err) from None

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the channel connects (RemoteError UNAVAILABLE after ``timeout`` seconds)."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise RemoteError(f"UNAVAILABLE: no server at {self.address} after {timeout}s", "UNAVAILABLE") from None

    def health(self, service: str = "") -> str:
        """The server's health status name for ``service`` ("" = the server): SERVING, NOT_SERVING, ..."""
        response = self._call(self._health.Check, health_pb2.HealthCheckRequest(service=service))
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    # ------------------------------------------------------------ checks

    def check(self, resource: ObjectRef | str, permission: str, subject: SubjectRef | str, *,
              context: Mapping[str, Any] | None = None, consistency: Consistency | None = None,
              explain: bool = False) -> CheckResult:
        """Does ``subject`` have ``permission`` on ``resource``? Like :meth:`Engine.check`."""
        request = permission_pb2.CheckRequest(
            resource=convert.object_to_proto(_object(resource)), permission=permission,
            subject=convert.subject_to_proto(_subject(subject)), context=convert.context_to_proto(context),
            consistency=convert.consistency_to_proto(consistency), explain=explain)
        r = self._call(self._permissions.Check, request)
        return CheckResult(convert.permissionship_from_proto(r.permissionship), r.revision_token,
                           tuple(r.missing_context),
                           convert.explanation_from_proto(r.explanation) if r.HasField("explanation") else None)

    def check_bulk(self, items: Sequence[BulkCheckItem], *,
                   consistency: Consistency | None = None) -> list[BulkCheckResult]:
        """Many checks at one revision; an item's error stays with that item. Like :meth:`Engine.check_bulk`."""
        request = permission_pb2.CheckBulkRequest(items=[convert.check_item_to_proto(i) for i in items],
                                                  consistency=convert.consistency_to_proto(consistency))
        r = self._call(self._permissions.CheckBulk, request)
        return convert.bulk_results_from_proto(r, items, lambda code, message: error_from_status(code, message))

    def expand(self, resource: ObjectRef | str, permission: str, *, context: Mapping[str, Any] | None = None,
               consistency: Consistency | None = None) -> tuple[ExpandNode, str]:
        """The expanded subject tree and the revision token. Like :meth:`Engine.expand`."""
        request = permission_pb2.ExpandRequest(resource=convert.object_to_proto(_object(resource)),
                                               permission=permission, context=convert.context_to_proto(context),
                                               consistency=convert.consistency_to_proto(consistency))
        r = self._call(self._permissions.Expand, request)
        return convert.expand_from_proto(r), r.revision_token

    def lookup_resources(self, resource_type: str, permission: str, subject: SubjectRef | str, *,
                         context: Mapping[str, Any] | None = None, consistency: Consistency | None = None,
                         limit: int | None = None, cursor: str | None = None) -> LookupResourcesPage:
        """The resources (all, or at most ``limit`` with a cursor). Like :meth:`Engine.lookup_resources`."""
        request = permission_pb2.LookupResourcesRequest(
            resource_object_type=resource_type, permission=permission,
            subject=convert.subject_to_proto(_subject(subject)), context=convert.context_to_proto(context),
            consistency=convert.consistency_to_proto(consistency), optional_limit=limit or 0,
            optional_cursor=cursor or "")
        responses, token = self._collect(self._permissions.LookupResources, request)
        results = [LookupResult(r.resource_object_id, convert.permissionship_from_proto(r.permissionship),
                                tuple(r.missing_context)) for r in responses]
        last_cursor = responses[-1].after_result_cursor or None if responses else None
        more = limit is not None and len(results) >= limit
        return LookupResourcesPage(results, last_cursor if more else None, token)

    def lookup_subjects(self, resource: ObjectRef | str, permission: str, subject_type: str,
                        subject_relation: str | None = None, *, context: Mapping[str, Any] | None = None,
                        consistency: Consistency | None = None, limit: int | None = None,
                        cursor: str | None = None) -> LookupSubjectsPage:
        """The subjects with ``permission``. Like :meth:`Engine.lookup_subjects`."""
        request = permission_pb2.LookupSubjectsRequest(
            resource=convert.object_to_proto(_object(resource)), permission=permission,
            subject_object_type=subject_type, optional_subject_relation=subject_relation or "",
            context=convert.context_to_proto(context), consistency=convert.consistency_to_proto(consistency),
            optional_limit=limit or 0, optional_cursor=cursor or "")
        responses, token = self._collect(self._permissions.LookupSubjects, request)
        results = [SubjectResult(convert.subject_from_proto(r.subject),
                                 convert.permissionship_from_proto(r.permissionship), tuple(r.missing_context),
                                 tuple(convert.subject_from_proto(s) for s in r.excluded_subjects))
                   for r in responses]
        last_cursor = responses[-1].after_result_cursor or None if responses else None
        more = limit is not None and len(results) >= limit
        return LookupSubjectsPage(results, last_cursor if more else None, token)

    # ------------------------------------------------------------ relationships

    def write(self, updates: Iterable[Update], preconditions: Sequence[Precondition] = (), *,
              actor: str | None = None, reason: str | None = None) -> WriteResult:
        """Apply a batch atomically. Like :meth:`Engine.write`."""
        request = relationship_pb2.WriteRequest(
            updates=[convert.update_to_proto(u) for u in updates],
            optional_preconditions=[convert.precondition_to_proto(p) for p in preconditions],
            actor=actor or "", reason=reason or "")
        return WriteResult(self._call(self._relationships.Write, request).revision_token)

    def touch(self, *relationships: Relationship | str, actor: str | None = None,
              reason: str | None = None) -> WriteResult:
        return self.write([Update(Operation.TOUCH, _rel(r)) for r in relationships], actor=actor, reason=reason)

    def create(self, *relationships: Relationship | str, actor: str | None = None,
               reason: str | None = None) -> WriteResult:
        return self.write([Update(Operation.CREATE, _rel(r)) for r in relationships], actor=actor, reason=reason)

    def remove(self, *relationships: Relationship | str, actor: str | None = None,
               reason: str | None = None) -> WriteResult:
        return self.write([Update(Operation.DELETE, _rel(r)) for r in relationships], actor=actor, reason=reason)

    def delete(self, filter: RelationshipFilter, *, limit: int | None = None, allow_partial: bool = False,
               preconditions: Sequence[Precondition] = (), actor: str | None = None,
               reason: str | None = None) -> DeleteResult:
        """Delete by filter. Like :meth:`Engine.delete`."""
        request = relationship_pb2.DeleteRequest(
            filter=convert.filter_to_proto(filter), optional_limit=limit or 0,
            optional_allow_partial_deletions=allow_partial,
            optional_preconditions=[convert.precondition_to_proto(p) for p in preconditions],
            actor=actor or "", reason=reason or "")
        r = self._call(self._relationships.Delete, request)
        return DeleteResult(r.revision_token, r.deleted_count, r.partial)

    def read_relationships(self, filter: RelationshipFilter | None = None, *,
                           consistency: Consistency | None = None, limit: int | None = None,
                           cursor: str | None = None) -> ReadPage:
        """A page of relationships in key order. Like :meth:`Engine.read_relationships`."""
        request = relationship_pb2.ReadRequest(filter=convert.filter_to_proto(filter),
                                               consistency=convert.consistency_to_proto(consistency),
                                               optional_limit=limit or 0, optional_cursor=cursor or "")
        responses, token = self._collect(self._relationships.Read, request)
        rels = [convert.relationship_from_proto(r.relationship) for r in responses]
        last_cursor = responses[-1].after_result_cursor or None if responses else None
        more = limit is not None and len(rels) >= limit
        return ReadPage(rels, last_cursor if more else None, token)

    def read(self, filter: RelationshipFilter, *, consistency: Consistency | None = None,
             limit: int | None = None) -> tuple[list[Relationship], str]:
        """Matching relationships and the revision token. Like :meth:`Engine.read`."""
        page = self.read_relationships(filter, consistency=consistency, limit=limit)
        return page.relationships, page.token

    def export_relationships(self, filter: RelationshipFilter | None = None, *,
                             consistency: Consistency | None = None, batch_size: int = 0) -> ExportResult:
        """Every matching relationship at one revision."""
        request = relationship_pb2.ExportRequest(filter=convert.filter_to_proto(filter),
                                                 consistency=convert.consistency_to_proto(consistency),
                                                 optional_batch_size=batch_size)
        responses, token = self._collect(self._relationships.Export, request)
        return ExportResult([convert.relationship_from_proto(x) for r in responses for x in r.relationships], token)

    def import_relationships(self, relationships: Iterable[Relationship | str], *, chunk_size: int = 500,
                             actor: str | None = None, reason: str | None = None) -> ImportResult:
        """Create relationships, streamed in messages of ``chunk_size``; the server writes atomic batches."""
        started = time.monotonic()

        def messages() -> Iterator[relationship_pb2.ImportRequest]:
            it = iter(relationships)
            first = True
            while True:
                chunk = list(itertools.islice(it, chunk_size))
                if not chunk and not first:
                    return
                yield relationship_pb2.ImportRequest(
                    relationships=[convert.relationship_to_proto(_rel(r)) for r in chunk],
                    actor=(actor or "") if first else "", reason=(reason or "") if first else "")
                first = False
                if len(chunk) < chunk_size:
                    return

        r = self._call(self._relationships.Import, messages())
        return ImportResult(r.loaded_count, r.batches, r.revision_token, time.monotonic() - started)

    def follow(self, after_token: str | None = None, *, timeout: float | None = None,
               resource_types: Sequence[str] = ()) -> Iterator[WatchEvent]:
        """Changes after ``after_token`` (None: from now), then new ones as they come, until ``timeout`` seconds
        pass (quietly) or the server drains (RemoteError UNAVAILABLE). Like :meth:`Engine.follow`."""
        request = relationship_pb2.WatchRequest(optional_start_revision_token=after_token or "",
                                                optional_resource_types=list(resource_types))
        stream = self._relationships.Watch(request, timeout=timeout, metadata=self._metadata)
        try:
            for response in stream:
                for change in response.changes:
                    yield convert.watch_change_from_proto(change)
        except grpc.RpcError as err:
            if err.code() is grpc.StatusCode.DEADLINE_EXCEEDED and timeout is not None:
                return
            raise _raise(err) from None
        finally:
            stream.cancel()

    def watch(self, after_token: str, *, timeout: float = 0.5) -> list[WatchEvent]:
        """The changes after ``after_token`` that arrive within ``timeout`` seconds. Like :meth:`Engine.watch`."""
        return list(self.follow(after_token, timeout=timeout))

    # ------------------------------------------------------------ schema

    def write_schema(self, text: str, *, actor: str | None = None, dry_run: bool = False) -> SchemaWriteReport:
        """Store a schema (or, with ``dry_run``, report what would happen). Like :meth:`Engine.write_schema`."""
        r = self._call(self._schema.Write, schema_pb2.WriteSchemaRequest(schema=text, dry_run=dry_run,
                                                                         actor=actor or ""))
        return SchemaWriteReport(r.revision_token, r.version, r.digest, r.dry_run, r.accepted, tuple(r.refused),
                                 r.diff)

    def read_schema(self, consistency: Consistency | None = None) -> tuple[str, str, str]:
        """(canonical schema text, digest, revision token)."""
        r = self._call(self._schema.Read,
                       schema_pb2.ReadSchemaRequest(consistency=convert.consistency_to_proto(consistency)))
        return r.schema, r.digest, r.revision_token

    def schema(self, consistency: Consistency | None = None) -> Schema:
        """The compiled schema in force (compiled locally from the server's text). Like :meth:`Engine.schema`."""
        return compile_schema(self.read_schema(consistency)[0], limits=SchemaLimits.unlimited())

    def schema_history(self, *, include_text: bool = False) -> list[SchemaVersionInfo]:
        r = self._call(self._schema.History, schema_pb2.SchemaHistoryRequest(include_text=include_text))
        return [SchemaVersion(v.version, v.digest, v.revision_token, v.actor or None,
                                  v.schema if include_text else None) for v in r.versions]

    # ------------------------------------------------------------ lineage

    def effective_labels(self, obj: ObjectRef | str, *, consistency: Consistency | None = None) -> EffectiveLabels:
        request = lineage_pb2.EffectiveLabelsRequest(object=convert.object_to_proto(_object(obj)),
                                                     consistency=convert.consistency_to_proto(consistency))
        return convert.labels_from_proto(self._call(self._lineage.EffectiveLabels, request))

    def ancestors(self, obj: ObjectRef | str, *, max_depth: int | None = None, limit: int | None = None,
                  cursor: str | None = None, consistency: Consistency | None = None) -> LineagePage:
        return self._walk(self._lineage.Ancestors, obj, max_depth, limit, cursor, consistency)

    def descendants(self, obj: ObjectRef | str, *, max_depth: int | None = None, limit: int | None = None,
                    cursor: str | None = None, consistency: Consistency | None = None) -> LineagePage:
        return self._walk(self._lineage.Descendants, obj, max_depth, limit, cursor, consistency)

    def _walk(self, method: Any, obj: ObjectRef | str, max_depth: int | None, limit: int | None,
              cursor: str | None, consistency: Consistency | None) -> LineagePage:
        request = lineage_pb2.LineageWalkRequest(object=convert.object_to_proto(_object(obj)),
                                                 optional_max_depth=max_depth or 0, optional_limit=limit or 0,
                                                 optional_cursor=cursor or "",
                                                 consistency=convert.consistency_to_proto(consistency))
        return convert.lineage_page_from_proto(self._call(method, request))

    # ------------------------------------------------------------ the audit trail (AuditService, scope audit)

    def audit_query(self, *, kind: RecordKind | str | None = None, subject: str | None = None,
                    resource: str | None = None, permission: str | None = None, result: str | None = None,
                    caller: str | None = None, actor: str | None = None, since: datetime | None = None,
                    until: datetime | None = None, revision: int | None = None, min_revision: int | None = None,
                    max_revision: int | None = None, limit: int = 100, cursor: str | None = None,
                    newest_first: bool = False) -> AuditPage:
        """A page of audit records matching every filter given. Like :meth:`AuditLog.query`: ``cursor`` is None
        once there is nothing more, else pass it back (with the same filters) for the next page."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise engine_errors.InvalidRequestError(f"invalid limit {limit!r}: must be a positive integer")
        request = audit_pb2.AuditQueryRequest(
            filter=convert.audit_filter_to_proto(
                kind=kind, subject=subject, resource=resource, permission=permission, result=result, caller=caller,
                actor=actor, since=since, until=until, revision=revision, min_revision=min_revision,
                max_revision=max_revision),
            newest_first=newest_first, optional_limit=limit, optional_cursor=cursor or "")
        responses, _ = self._collect(self._audit.Query, request)
        records = [convert.audit_record_from_proto(r.record) for r in responses]
        last_cursor = responses[-1].after_result_cursor or None if responses else None
        return AuditPage(records, last_cursor if len(records) >= limit else None)

    def audit_export(self, *, timeout: float | None = None, **filters: Any) -> Iterator[str]:
        """The matching audit records as JSON Lines (each line ends with a newline), oldest first, streamed as they
        arrive: ``file.writelines(client.audit_export(kind="decision"))`` writes what ``headwater audit export``
        writes. ``filters`` are those of :meth:`audit_query` (without paging); ``timeout`` (seconds) overrides the
        client's for this long call."""
        request = audit_pb2.AuditExportRequest(filter=convert.audit_filter_to_proto(**filters))
        try:
            call = self._audit.Export(request, timeout=timeout if timeout is not None else self.timeout,
                                      metadata=self._metadata)
            for response in call:
                if response.jsonl:
                    yield from response.jsonl.splitlines(keepends=True)
        except grpc.RpcError as err:
            raise _raise(err) from None

    def audit_verify(self) -> VerifyResult:
        """Walk the server's whole audit chain: ``ok``, or the first bad record and what is wrong with it. Like
        :meth:`AuditLog.verify` (``str()`` of the result is what ``headwater audit verify`` prints)."""
        return convert.verify_from_proto(self._call(self._audit.Verify, audit_pb2.AuditVerifyRequest()))

    def audit_replay(self, record_id: int | None = None, *, context: Mapping[str, Any] | None = None,
                     resource: str | None = None, permission: str | None = None, subject: str | None = None,
                     before: datetime | None = None) -> ReplayResult:
        """Evaluate a recorded decision again at its recorded revision, with the full explanation. Like
        :meth:`Engine.replay`: name the record by id, or by resource, permission and subject (the latest such
        decision, before ``before`` if given); ``context`` is the request's caveat context (the log keeps its
        hash). Beyond the history window, ``available`` is False and the message says so."""
        request = audit_pb2.AuditReplayRequest(record_id=record_id or 0,
                                               context_json=json.dumps(dict(context)) if context else "",
                                               resource=resource or "", permission=permission or "",
                                               subject=subject or "")
        if before is not None:
            request.before.CopyFrom(convert.audit_filter_to_proto(until=before).until)
        return convert.replay_from_proto(self._call(self._audit.Replay, request))
