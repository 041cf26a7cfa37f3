"""One method per RPC: convert the request, call :class:`~headwater.engine.Engine`, convert the answer.

No evaluation, no SQL, no caching decisions live here. Methods raise engine errors
(or :mod:`.errors` service errors); the handler layer (:mod:`.handlers`) turns them
into status codes with the one table, checks the token and logs the call. Methods
that stream check the call between items and stop when it is cancelled, its
deadline passes or the server drains.

Example (without a network: the handler layer passes a real ``grpc.ServicerContext``)::

    >>> from headwater.engine import Engine
    >>> from headwater.engine.store.memory import MemoryStore
    >>> from headwater.engine.service.pb import core_pb2, permission_pb2
    >>> engine = Engine(MemoryStore())
    >>> _ = engine.write_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n}")
    >>> _ = engine.touch("doc:1#viewer@user:ann")
    >>> request = permission_pb2.CheckRequest(
    ...     resource=core_pb2.ObjectReference(object_type="doc", object_id="1"), permission="viewer",
    ...     subject=core_pb2.SubjectReference(object=core_pb2.ObjectReference(object_type="user", object_id="ann")))
    >>> Servicer(engine).Check(request, None).permissionship == core_pb2.PERMISSIONSHIP_HAS_PERMISSION
    True
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from contextvars import ContextVar
from typing import Any

from ..api import Engine
from ..audit import RecordKind
from ..config import Config
from ..context import utc_now
from ..contexts import validate_context
from ..errors import DeadlineExceededError, InvalidRequestError, LimitExceededError, RequestCancelledError
from ..governance.monitor import follow, monitor_rules, scan
from ..relationships import Relationship
from ..results import WatchEvent
from . import convert
from .admission import HeavyCalls
from .errors import REVISION_METADATA_KEY, ShuttingDownError, item_error_code
from .pb import audit_pb2, governance_pb2, lineage_pb2, permission_pb2, relationship_pb2, schema_pb2

__all__ = ["CALLER", "REQUEST_ID", "Servicer"]

#: The name of the bearer token of the call being served (None without authentication). The handler
#: layer sets it around each call (and each step of a stream); checks and lookups pass it to the
#: engine as ``caller``, so that the audit log says who asked.
CALLER: ContextVar[str | None] = ContextVar("headwater_caller", default=None)

#: The id of the call being served: the client's ``x-request-id`` metadata when it is sane, else one the
#: handler layer generated; set around each call (and each step of a stream) like :data:`CALLER`. The access
#: log line carries it, every JSON log line written during the call too, and a tracing layer can put it on
#: its spans.
REQUEST_ID: ContextVar[str | None] = ContextVar("headwater_request_id", default=None)

_MAX_RECORD_ID = 2**63 - 1  # SQLite's largest INTEGER
#: ImportRequest.existing -> what Engine.import_relationships calls it.
_IMPORT_EXISTING = {relationship_pb2.IMPORT_EXISTING_ERROR: "error", relationship_pb2.IMPORT_EXISTING_TOUCH: "touch",
                    relationship_pb2.IMPORT_EXISTING_SKIP: "skip"}
_EXPORT_CHUNK = 1024 * 1024  # characters of JSON Lines per Export message, at most (unless one record is longer)


class Servicer:
    """The implementation of every ``headwater.v1`` RPC over one Engine (the page size and Watch's poll interval
    come from ``config``; the engine enforces its own limits)."""

    #: Called once per finished call by the handler layer when metrics are on (:class:`.observe.RpcObserver`).
    observer: Callable[..., None] | None = None

    def __init__(self, engine: Engine, config: Config | None = None) -> None:
        self.engine = engine
        config = config or engine.config
        self.max_page_size = config.limits.max_page_size
        self.watch_poll_seconds = config.server.watch_poll_seconds
        self.monitor_rules_file = config.audit.monitor_rules
        self.max_work_per_request = config.limits.max_work_per_request
        self.heavy_calls = HeavyCalls.for_workers(config.server.heavy_calls, config.server.workers)
        self.draining = threading.Event()  # no new calls
        self.stopped = threading.Event()  # the calls still running are cancelled (the grace period is over)
        self._stops: set[threading.Event] = set()
        self._stops_lock = threading.Lock()
        self._running = 0  # calls between begin and end (their handlers have not returned yet)
        self._idle = threading.Condition()

    # ------------------------------------------------------------ lifecycle helpers

    def drain(self) -> None:
        """Stop the long streams (Watch) now: the server is shutting down."""
        self.draining.set()
        with self._stops_lock:
            for stop in self._stops:
                stop.set()

    def cancel_running(self) -> None:
        """The grace period is over: every call still running stops at its next budget checkpoint."""
        self.draining.set()
        self.stopped.set()

    def call_started(self) -> None:
        with self._idle:
            self._running += 1

    def call_ended(self) -> None:
        with self._idle:
            self._running -= 1
            if self._running == 0:
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> int:
        """Wait until no call is running, at most ``timeout`` seconds; the number still running."""
        with self._idle:
            self._idle.wait_for(lambda: self._running == 0, timeout)
            return self._running

    def _page(self, requested: int) -> int:
        """The page size to use: the request's (if any, within the limit) or the server's."""
        if requested > self.max_page_size:
            raise LimitExceededError(f"page size {requested} is over the limit of {self.max_page_size} "
                                     "(max_page_size)", limit=self.max_page_size)
        return requested or self.max_page_size

    def _paged(self, context: Any, limit: int, cursor: str, fetch: Callable[[int, str | None], Any],
               items: Callable[[Any], list[Any]], *, revision: bool = True) -> Iterator[tuple[Any, Any, str]]:
        """The one paging loop of the streamed listings: ``fetch(size, cursor)`` page after page, until the
        listing is complete, ``limit`` results (0: no limit) were sent, or the call ends; yields each item with
        its page and the cursor to continue after it (the page's cursor on its last item, else "")."""
        remaining = limit or None
        next_cursor: str | None = cursor or None
        while self._alive(context):
            size = self.max_page_size if remaining is None else min(remaining, self.max_page_size)
            page = fetch(size, next_cursor)
            if revision:
                self._trailer(context, page.token)
            found = items(page)
            for n, item in enumerate(found, start=1):
                yield page, item, (page.cursor or "") if n == len(found) else ""
            if remaining is not None:
                remaining -= len(found)
            if page.cursor is None or remaining == 0:
                return
            next_cursor = page.cursor

    def _alive(self, context: Any) -> bool:
        """False once the call is cancelled; DeadlineExceededError once its deadline has passed;
        RequestCancelledError once the server has stopped waiting for it (the grace period is over)."""
        if self.stopped.is_set():
            raise RequestCancelledError("the server stopped before the stream was complete")
        if context is None:
            return True
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            raise DeadlineExceededError("the deadline passed before the stream was complete")
        return bool(context.is_active())

    @staticmethod
    def _trailer(context: Any, token: str) -> None:
        """Streams name their revision in the trailing metadata too, so an empty stream still carries it."""
        if context is not None:
            context.set_trailing_metadata(((REVISION_METADATA_KEY, token),))

    # ------------------------------------------------------------ PermissionService

    def Check(self, request: permission_pb2.CheckRequest, context: Any) -> permission_pb2.CheckResponse:
        result = self.engine.check(
            convert.object_from_proto(request.resource, "resource"), request.permission,
            convert.subject_from_proto(request.subject),
            context=convert.context_from_proto(request.context, request.HasField("context")),
            consistency=convert.consistency_from_proto(request.consistency, request.HasField("consistency")),
            explain=request.explain, caller=CALLER.get())
        return convert.check_response_to_proto(result)

    def CheckBulk(self, request: permission_pb2.CheckBulkRequest, context: Any) -> permission_pb2.CheckBulkResponse:
        limit = self.engine.config.limits.max_bulk_check_items
        if len(request.items) > limit:
            raise LimitExceededError(f"{len(request.items)} items in one bulk check; the limit is {limit} "
                                     "(max_bulk_check_items)", limit=limit)
        consistency = convert.consistency_from_proto(request.consistency, request.HasField("consistency"))
        response = permission_pb2.CheckBulkResponse()
        items = []
        errors: dict[int, Exception] = {}
        for i, msg in enumerate(request.items):
            try:
                items.append(convert.check_item_from_proto(msg))
            except InvalidRequestError as exc:  # a malformed item fails alone, like an engine error would
                errors[i] = exc
        results = (iter(self.engine.check_bulk(items, consistency=consistency, caller=CALLER.get())) if items
                   else iter(()))
        token = ""
        for i, msg in enumerate(request.items):
            pair = response.pairs.add(request=msg)
            error: Exception | None = errors.get(i)
            if error is None:
                r = next(results)
                if r.result is not None:
                    token = r.result.token
                    pair.item.permissionship = convert.permissionship_to_proto(r.result.permissionship)
                    pair.item.missing_context.extend(r.result.missing_context)
                    continue
                error = r.error
            assert error is not None
            code, name, message = item_error_code(error)  # type: ignore[arg-type]
            pair.error.code, pair.error.code_name, pair.error.message = code, name, message
        response.revision_token = token or self.engine.revision_token(consistency)
        return response

    def Expand(self, request: permission_pb2.ExpandRequest, context: Any) -> permission_pb2.ExpandResponse:
        tree, token = self.engine.expand(
            convert.object_from_proto(request.resource, "resource"), request.permission,
            context=convert.context_from_proto(request.context, request.HasField("context")),
            consistency=convert.consistency_from_proto(request.consistency, request.HasField("consistency")))
        return convert.expand_to_proto(tree, token)

    def LookupResources(self, request: permission_pb2.LookupResourcesRequest,
                        context: Any) -> Iterator[permission_pb2.LookupResourcesResponse]:
        subject = convert.subject_from_proto(request.subject)
        ctx = convert.context_from_proto(request.context, request.HasField("context"))
        consistency = convert.consistency_from_proto(request.consistency, request.HasField("consistency"))
        caller = CALLER.get()

        def fetch(size: int, cursor: str | None) -> Any:
            return self.engine.lookup_resources(request.resource_object_type, request.permission, subject,
                                                context=ctx, consistency=consistency, limit=size, cursor=cursor,
                                                caller=caller)

        for page, r, after in self._paged(context, request.optional_limit, request.optional_cursor, fetch,
                                          lambda page: page.results):
            yield permission_pb2.LookupResourcesResponse(
                resource_object_id=r.resource_id, permissionship=convert.permissionship_to_proto(r.permissionship),
                missing_context=list(r.missing_context), revision_token=page.token, after_result_cursor=after)

    def LookupSubjects(self, request: permission_pb2.LookupSubjectsRequest,
                       context: Any) -> Iterator[permission_pb2.LookupSubjectsResponse]:
        resource = convert.object_from_proto(request.resource, "resource")
        ctx = convert.context_from_proto(request.context, request.HasField("context"))
        consistency = convert.consistency_from_proto(request.consistency, request.HasField("consistency"))
        caller = CALLER.get()

        def fetch(size: int, cursor: str | None) -> Any:
            return self.engine.lookup_subjects(resource, request.permission, request.subject_object_type,
                                               request.optional_subject_relation or None, context=ctx,
                                               consistency=consistency, limit=size, cursor=cursor, caller=caller)

        for page, r, after in self._paged(context, request.optional_limit, request.optional_cursor, fetch,
                                          lambda page: page.results):
            yield permission_pb2.LookupSubjectsResponse(
                subject=convert.subject_to_proto(r.subject),
                permissionship=convert.permissionship_to_proto(r.permissionship),
                missing_context=list(r.missing_context),
                excluded_subjects=[convert.subject_to_proto(s) for s in r.excluded],
                revision_token=page.token, after_result_cursor=after)

    # ------------------------------------------------------------ RelationshipService

    def _write_limit(self, n: int) -> None:
        limit = self.engine.config.limits.max_updates_per_write
        if n > limit:
            raise LimitExceededError(f"{n} updates in one write; the limit is {limit} (max_updates_per_write)",
                                     limit=limit)

    def Write(self, request: relationship_pb2.WriteRequest, context: Any) -> relationship_pb2.WriteResponse:
        self._write_limit(len(request.updates))
        updates = [convert.update_from_proto(u) for u in request.updates]
        preconditions = [convert.precondition_from_proto(p) for p in request.optional_preconditions]
        result = self.engine.write(updates, preconditions, actor=request.actor or None,
                                   reason=request.reason or None)
        return relationship_pb2.WriteResponse(revision_token=result.token)

    def Delete(self, request: relationship_pb2.DeleteRequest, context: Any) -> relationship_pb2.DeleteResponse:
        result = self.engine.delete(
            convert.filter_from_proto(request.filter), limit=request.optional_limit or None,
            allow_partial=request.optional_allow_partial_deletions,
            preconditions=[convert.precondition_from_proto(p) for p in request.optional_preconditions],
            actor=request.actor or None, reason=request.reason or None)
        return relationship_pb2.DeleteResponse(revision_token=result.token, deleted_count=result.deleted,
                                               partial=result.partial)

    def Read(self, request: relationship_pb2.ReadRequest, context: Any) -> Iterator[relationship_pb2.ReadResponse]:
        f = convert.filter_from_proto(request.filter)
        consistency = convert.consistency_from_proto(request.consistency, request.HasField("consistency"))

        def fetch(size: int, cursor: str | None) -> Any:
            return self.engine.read_relationships(f, consistency=consistency, limit=size, cursor=cursor)

        for page, rel, after in self._paged(context, request.optional_limit, request.optional_cursor, fetch,
                                            lambda page: page.relationships):
            yield relationship_pb2.ReadResponse(relationship=convert.relationship_to_proto(rel),
                                                revision_token=page.token, after_result_cursor=after)

    def Import(self, requests: Iterator[relationship_pb2.ImportRequest],
               context: Any) -> relationship_pb2.ImportResponse:
        first = next(requests, None)
        if first is None:
            raise InvalidRequestError("an import needs at least one message")

        def relationships() -> Iterator[Relationship]:
            position = 0
            for msg in itertools.chain([first], requests):
                if not self._alive(context):
                    raise RequestCancelledError("the import was cancelled")
                for rel in msg.relationships:
                    position += 1
                    try:
                        yield convert.relationship_from_proto(rel)
                    except InvalidRequestError as exc:
                        raise InvalidRequestError(f"relationship {position} of the import: {exc}") from None

        existing = _IMPORT_EXISTING.get(first.existing)
        if existing is None:
            raise InvalidRequestError(f"invalid ImportRequest.existing {first.existing}: give IMPORT_EXISTING_ERROR, "
                                      "_TOUCH or _SKIP")
        result = self.engine.import_relationships(relationships(),
                                                  batch_size=self.engine.config.limits.max_updates_per_write,
                                                  actor=first.actor or None, reason=first.reason or None,
                                                  existing=existing)
        return relationship_pb2.ImportResponse(loaded_count=result.count, batches=result.batches,
                                               revision_token=result.token)

    def Export(self, request: relationship_pb2.ExportRequest,
               context: Any) -> Iterator[relationship_pb2.ExportResponse]:
        export = self.engine.export_relationships(
            convert.filter_from_proto(request.filter),
            consistency=convert.consistency_from_proto(request.consistency, request.HasField("consistency")),
            batch_size=self._page(request.optional_batch_size))
        self._trailer(context, export.token)
        sent = False
        for page in export.pages():
            if not self._alive(context):
                return
            yield relationship_pb2.ExportResponse(relationships=[convert.relationship_to_proto(r) for r in page],
                                                  revision_token=export.token)
            sent = True
        if not sent:  # the revision token still reaches the client
            yield relationship_pb2.ExportResponse(revision_token=export.token)

    def Watch(self, request: relationship_pb2.WatchRequest,
              context: Any) -> Iterator[relationship_pb2.WatchResponse]:
        types = set(request.optional_resource_types)
        for events, _ in self.watch_rounds(request.optional_start_revision_token, context):
            for token, group in itertools.groupby(events, key=lambda e: e.token):
                changes = [convert.watch_change_to_proto(e) for e in group
                           if not types or e.relationship.resource.type in types]
                if changes:
                    yield relationship_pb2.WatchResponse(changes=changes, revision_token=token)

    def watch_rounds(self, start_token: str, context: Any) -> Iterator[tuple[list[WatchEvent], str]]:
        """The changes after ``start_token`` (default: now) in rounds: each round's events, oldest first (at most a
        page), and the token the next round reads after. An empty round means the watch caught up and waited one
        poll interval. Ends when the client goes away or its deadline passes; raises :class:`ShuttingDownError`
        (UNAVAILABLE) when the server drains, naming the token to resume after. Both APIs' Watch read this."""
        after = start_token or self.engine.revision_token()
        self.engine.watch(after, limit=1)  # refuse a malformed or unavailable start before streaming
        stop = threading.Event()
        with self._stops_lock:
            self._stops.add(stop)
        if context is not None:
            context.add_callback(stop.set)
        try:
            while True:
                if self.draining.is_set():
                    raise ShuttingDownError(f"the server is shutting down; resume the watch after {after}")
                if stop.is_set() or not self._alive(context):
                    return
                events = self.engine.watch(after, limit=self.max_page_size)
                if events:
                    after = events[-1].token
                yield events, after
                if not events:
                    wait = self.watch_poll_seconds
                    remaining = context.time_remaining() if context is not None else None
                    stop.wait(wait if remaining is None else max(0.0, min(wait, remaining)))
        finally:
            with self._stops_lock:
                self._stops.discard(stop)

    # ------------------------------------------------------------ SchemaService

    def WriteSchema(self, request: schema_pb2.WriteSchemaRequest, context: Any) -> schema_pb2.WriteSchemaResponse:
        if request.dry_run:
            plan = self.engine.plan_schema(request.schema)
            return schema_pb2.WriteSchemaResponse(revision_token=plan.token, version=plan.version,
                                                  digest=plan.digest if plan.accepted else "", dry_run=True,
                                                  accepted=plan.accepted, refused=list(plan.refused), diff=plan.diff)
        result = self.engine.write_schema(request.schema, actor=request.actor or None)
        return schema_pb2.WriteSchemaResponse(revision_token=result.token, version=result.version,
                                              digest=result.digest, accepted=True)

    def ReadSchema(self, request: schema_pb2.ReadSchemaRequest, context: Any) -> schema_pb2.ReadSchemaResponse:
        consistency = convert.consistency_from_proto(request.consistency, request.HasField("consistency"))
        schema = self.engine.schema(consistency)
        token = self.engine.revision_token(consistency)
        return schema_pb2.ReadSchemaResponse(schema=schema.text, digest=schema.digest, revision_token=token)

    def SchemaHistory(self, request: schema_pb2.SchemaHistoryRequest,
                      context: Any) -> schema_pb2.SchemaHistoryResponse:
        response = schema_pb2.SchemaHistoryResponse(revision_token=self.engine.revision_token())
        for version in self.engine.schema_history(include_text=request.include_text):
            response.versions.add(version=version.version, digest=version.digest, revision_token=version.token,
                                  actor=version.actor or "", schema=version.text or "")
        return response

    # ------------------------------------------------------------ LineageService

    def EffectiveLabels(self, request: lineage_pb2.EffectiveLabelsRequest,
                        context: Any) -> lineage_pb2.EffectiveLabelsResponse:
        labels = self.engine.effective_labels(
            convert.object_from_proto(request.object),
            consistency=convert.consistency_from_proto(request.consistency, request.HasField("consistency")))
        return convert.labels_to_proto(labels)

    def Derive(self, request: lineage_pb2.DeriveRequest, context: Any) -> lineage_pb2.DeriveResponse:
        self._write_limit(sum(len(e.sources) for e in request.lineage) + len(request.relationships))
        limit = self.engine.config.limits.max_bulk_check_items
        if len(request.checks) > limit:
            raise LimitExceededError(f"{len(request.checks)} checks in one derivation; the limit is {limit} "
                                     "(max_bulk_check_items)", limit=limit)
        result = self.engine.derive(
            convert.object_from_proto(request.object), convert.lineage_from_proto(request.lineage),
            relationships=[convert.relationship_from_proto(r) for r in request.relationships],
            checks=[convert.derive_check_from_proto(c) for c in request.checks],
            context=convert.context_from_proto(request.context, request.HasField("context")),
            actor=request.actor or None, reason=request.reason or None, caller=CALLER.get())
        return convert.derive_to_proto(result)

    def Ancestors(self, request: lineage_pb2.LineageWalkRequest, context: Any) -> lineage_pb2.LineageWalkResponse:
        return self._walk(self.engine.ancestors, request)

    def Descendants(self, request: lineage_pb2.LineageWalkRequest,
                    context: Any) -> lineage_pb2.LineageWalkResponse:
        return self._walk(self.engine.descendants, request)

    def _walk(self, walk: Any, request: lineage_pb2.LineageWalkRequest) -> lineage_pb2.LineageWalkResponse:
        page = walk(convert.object_from_proto(request.object), max_depth=request.optional_max_depth or None,
                    limit=self._page(request.optional_limit), cursor=request.optional_cursor or None,
                    consistency=convert.consistency_from_proto(request.consistency, request.HasField("consistency")))
        return convert.lineage_page_to_proto(page)

    # ------------------------------------------------------------ AuditService

    def AuditQuery(self, request: audit_pb2.AuditQueryRequest,
                   context: Any) -> Iterator[audit_pb2.AuditQueryResponse]:
        filters = convert.audit_filter_from_proto(request.filter)

        def fetch(size: int, cursor: str | None) -> Any:
            return self.engine.audit_query(limit=size, cursor=cursor, newest_first=request.newest_first, **filters)

        for _, record, after in self._paged(context, request.optional_limit, request.optional_cursor, fetch,
                                            lambda page: page.records, revision=False):
            yield audit_pb2.AuditQueryResponse(record=convert.audit_record_to_proto(record), after_result_cursor=after)

    def AuditExport(self, request: audit_pb2.AuditExportRequest,
                    context: Any) -> Iterator[audit_pb2.AuditExportResponse]:
        filters = convert.audit_filter_from_proto(request.filter)
        size = self._page(request.optional_batch_size)
        cursor = request.optional_cursor or None
        sent = False
        while self._alive(context):
            page = self.engine.audit_query(limit=size, cursor=cursor, **filters)
            chunk: list[str] = []
            length = 0
            for record in page.records:
                line = record.to_json() + "\n"
                if chunk and length + len(line) > _EXPORT_CHUNK:
                    yield audit_pb2.AuditExportResponse(jsonl="".join(chunk), records=len(chunk))
                    sent = True
                    chunk, length = [], 0
                chunk.append(line)
                length += len(line)
            if chunk or not sent:
                yield audit_pb2.AuditExportResponse(jsonl="".join(chunk), records=len(chunk),
                                                    after_cursor=page.cursor or "")
                sent = True
            if page.cursor is None:
                return
            cursor = page.cursor

    def AuditVerify(self, request: audit_pb2.AuditVerifyRequest, context: Any) -> audit_pb2.AuditVerifyResponse:
        return convert.verify_to_proto(self.engine.audit_verify())

    def AuditReplay(self, request: audit_pb2.AuditReplayRequest, context: Any) -> audit_pb2.AuditReplayResponse:
        context_value = _replay_context(request.context_json) if request.context_json else None
        if request.record_id > _MAX_RECORD_ID:
            raise InvalidRequestError(f"record_id {request.record_id} is out of range (at most {_MAX_RECORD_ID})")
        if request.record_id:
            self.engine.audit_record(request.record_id)  # a log that is off, or a missing record, fails first
            replayed = self.engine.replay(request.record_id, context=context_value)
        else:
            if not (request.resource and request.permission and request.subject):
                raise InvalidRequestError("name the decision to replay: a record_id, or resource, permission and "
                                          "subject")
            before = convert.time_from_proto(request.before, "before") if request.HasField("before") else None
            self.engine.audit_query(kind=RecordKind.DECISION, limit=1)  # a log that is off fails first
            replayed = self.engine.replay(resource=request.resource, permission=request.permission,
                                          subject=request.subject, before=before, context=context_value)
        return convert.replay_to_proto(replayed)


    # --- governance ---------------------------------------------------------------------------

    def Monitor(self, request: governance_pb2.MonitorRequest,
                context: Any) -> Iterator[governance_pb2.MonitorResponse]:
        rules = monitor_rules(request.rules_toml, self.monitor_rules_file)
        now = utc_now()
        since = _optional_time(request, "since") or now - timedelta(hours=1)
        if request.follow:
            alerts = follow(self.engine, rules, since=since, poll_seconds=self.watch_poll_seconds,
                            stop=lambda: not self._alive(context))
        else:
            alerts = iter(scan(self.engine, rules, since=since, until=_optional_time(request, "until")))
        for alert in alerts:
            if not self._alive(context):
                return
            yield convert.alert_to_proto(alert)

    def Impact(self, request: governance_pb2.ImpactRequest, context: Any) -> governance_pb2.ImpactResponse:
        self._write_limit(len(request.updates))  # the proposal is bounded as a write of it would be
        impact = self.engine.impact(schema=request.schema or None,
                                    updates=[convert.update_from_proto(u) for u in request.updates],
                                    baseline=request.baseline_schema or None, since=_optional_time(request, "since"),
                                    until=_optional_time(request, "until"), limit=request.limit or None)
        return convert.impact_to_proto(impact)


def _optional_time(request: Any, name: str) -> datetime | None:
    """The request's Timestamp field ``name`` as a time, or None when it is not set."""
    return convert.time_from_proto(getattr(request, name), name) if request.HasField(name) else None


def _replay_context(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except RecursionError:
        raise InvalidRequestError("context_json is nested too deeply") from None
    except ValueError as exc:
        raise InvalidRequestError(f"context_json is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidRequestError("context_json must be a JSON object")
    validate_context(value, "context_json")
    return value
