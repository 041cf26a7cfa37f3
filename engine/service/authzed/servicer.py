"""SpiceDB's ``authzed.api.v1`` PermissionsService, SchemaService and ExperimentalService (bulk calls) over one Engine: convert, call, convert back.

The class extends the official servicer bases of the ``authzed`` package, so an RPC not
written here yet answers UNIMPLEMENTED (the base raises NotImplementedError). As in
:mod:`..servicer`, nothing here evaluates, reads the store or caches; errors are engine
errors, or :class:`.errors.V1Error` where SpiceDB answers a request the engine accepts
(a filter naming an unknown definition, a page limit over the maximum) or with its own
limit error. The handler layer authenticates, limits, logs and turns errors into
statuses with :func:`.errors.failure_for`.

Where SpiceDB and Headwater differ in what a call may do, SpiceDB's rule holds here:

- a read or delete filter must set a field and name known definitions and relations;
- every streamed result carries ``after_result_cursor`` at the end of each page (the
  last result's cursor resumes the listing; after the last result of a complete
  listing it is a marker that resumes to nothing);
- LookupSubjects' ``optional_concrete_limit`` is UNIMPLEMENTED, as in SpiceDB.

Writes carry who and why in ``optional_transaction_metadata`` (keys ``actor`` and
``reason``); a declassification needs both (:data:`.convert.TRANSACTION_KEYS`).

Example (without a network: the handler layer passes a real ``grpc.ServicerContext``)::

    >>> from authzed.api.v1 import CheckPermissionRequest, ObjectReference, SubjectReference
    >>> from headwater.engine import Engine
    >>> from headwater.engine.store.memory import MemoryStore
    >>> engine = Engine(MemoryStore())
    >>> _ = engine.write_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n}")
    >>> _ = engine.touch("doc:1#viewer@user:ann")
    >>> request = CheckPermissionRequest(
    ...     resource=ObjectReference(object_type="doc", object_id="1"), permission="viewer",
    ...     subject=SubjectReference(object=ObjectReference(object_type="user", object_id="ann")))
    >>> AuthzedServicer(engine).CheckPermission(request, None).permissionship
    2
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from authzed.api.v1 import (
    core_pb2,
    debug_pb2,
    experimental_service_pb2,
    experimental_service_pb2_grpc,
    permission_service_pb2,
    permission_service_pb2_grpc,
    schema_service_pb2,
    schema_service_pb2_grpc,
    watch_service_pb2,
    watch_service_pb2_grpc,
)

from ...api import Engine
from ...config import Config
from ...consistency import Consistency
from ...errors import (
    DeclassificationRefusedError,
    InvalidRequestError,
    LimitExceededError,
    NotFoundError,
    RequestCancelledError,
)
from ...results import BulkCheckItem, BulkCheckResult, CheckResult
from ...store import RelationshipFilter
from ..servicer import CALLER, Servicer
from . import convert, reflection, trace, watch
from .errors import V1Error, status_message

__all__ = ["DONE_CURSOR", "AuthzedServicer"]

_P = permission_service_pb2
_E = experimental_service_pb2
_S = schema_service_pb2

#: The cursor after the last result of a complete listing: resuming from it returns nothing.
DONE_CURSOR = "hwv1_done"


@contextmanager
def _definition_needs_schema(type_: str) -> Iterator[None]:
    """Before any schema is written, SpiceDB answers that the definition is unknown (FAILED_PRECONDITION)."""
    try:
        yield
    except NotFoundError as exc:
        raise V1Error(grpc.StatusCode.FAILED_PRECONDITION, f"object definition `{type_}` not found",
                      "ERROR_REASON_UNKNOWN_DEFINITION", {"definition_name": type_}) from exc


@contextmanager
def _declassification_needs_metadata(metadata: dict[str, str | None]) -> Iterator[None]:
    """A declassification refused for want of an actor or a reason is a bad request naming the keys to send."""
    try:
        yield
    except DeclassificationRefusedError as exc:
        missing = [key for key in convert.TRANSACTION_KEYS if metadata[key] is None]
        if not missing:
            raise  # an actor without the declassification's `by` permission: PERMISSION_DENIED
        raise V1Error(grpc.StatusCode.INVALID_ARGUMENT,
                      f"writing a declassification needs optional_transaction_metadata keys 'actor' (a subject, "
                      f"e.g. user:steward) and 'reason'; missing: {', '.join(repr(k) for k in missing)}") from exc


def _experimental(call: Callable[[Any, Any], Any], request: Any, response: Any) -> Any:
    """An ExperimentalService twin of a SchemaService reflection call: its messages have the same fields and
    numbers, so the request and the answer convert through their encoding."""
    twin = type(request).__name__.removeprefix("Experimental")
    answer = call(getattr(_S, twin).FromString(request.SerializeToString()), None)
    return response.FromString(answer.SerializeToString())


def _bulk_item(msg: _P.CheckBulkPermissionsRequestItem) -> BulkCheckItem | InvalidRequestError:
    try:
        return convert.check_item_from_v1(msg)
    except InvalidRequestError as exc:
        return exc


def _bulk_pair(msg: Any, outcome: BulkCheckResult | InvalidRequestError, pair: Any = _P.CheckBulkPermissionsPair,
               item: Any = _P.CheckBulkPermissionsResponseItem,
               debug: Callable[[CheckResult], debug_pb2.DebugInformation] | None = None) -> Any:
    """One item's answer, or its error as a google.rpc.Status with SpiceDB's ErrorInfo (``pair`` and ``item``: the
    messages of CheckBulkPermissions, or of the experimental BulkCheckPermission; ``debug`` makes the debug trace
    of an explained answer)."""
    if isinstance(outcome, BulkCheckResult) and outcome.result is not None:
        answer = item(permissionship=convert.permissionship_to_v1(outcome.result.permissionship),
                      partial_caveat_info=convert.partial_caveat_info(outcome.result.missing_context))
        if debug is not None and outcome.result.explanation is not None:
            answer.debug_trace.CopyFrom(debug(outcome.result))
        return pair(request=msg, item=answer)
    error = outcome.error if isinstance(outcome, BulkCheckResult) else outcome
    assert error is not None
    return pair(request=msg, error=status_message(error))


class AuthzedServicer(permission_service_pb2_grpc.PermissionsServiceServicer,
                      schema_service_pb2_grpc.SchemaServiceServicer,
                      experimental_service_pb2_grpc.ExperimentalServiceServicer,
                      watch_service_pb2_grpc.WatchServiceServicer):
    """The ``authzed.api.v1`` RPCs served so far, over one Engine (limits from ``config``). Watch runs on
    ``watcher``'s ``headwater.v1`` Watch (the server's servicer, whose draining ends it; default: one of its own)."""

    def __init__(self, engine: Engine, config: Config | None = None, watcher: Servicer | None = None) -> None:
        self.engine = engine
        self.watcher = watcher or Servicer(engine, config)
        limits = (config or engine.config).limits
        self.max_page_size = limits.max_page_size
        self.max_updates = limits.max_updates_per_write
        self.max_import_batch = limits.max_import_batch
        self.max_checks = limits.max_bulk_check_items

    # ------------------------------------------------------------ helpers

    def _limit(self, requested: int) -> int:
        if requested > self.max_page_size:
            raise V1Error(grpc.StatusCode.INVALID_ARGUMENT,
                          f"provided limit {requested} is greater than maximum allowed of {self.max_page_size}",
                          "ERROR_REASON_EXCEEDS_MAXIMUM_ALLOWABLE_LIMIT",
                          {"limit_provided": str(requested), "maximum_limit_allowed": str(self.max_page_size)})
        return requested

    def _stream(self, limit: int, cursor: str, fetch: Callable[[int, str | None], Any],
                items: Callable[[Any], list[Any]]) -> Iterator[tuple[Any, Any, core_pb2.Cursor | None]]:
        """Each item of a paged listing with its page and the cursor after it (on each page's last item), until the
        listing is complete or ``limit`` items (0: no limit) were yielded. The budget of the call stops it when
        the client goes away or its deadline passes."""
        if cursor == DONE_CURSOR:
            return
        remaining = limit or None
        after = cursor or None
        while True:
            size = self.max_page_size if remaining is None else min(remaining, self.max_page_size)
            page = fetch(size, after)
            found = items(page)
            for n, item in enumerate(found, start=1):
                last = n == len(found)
                yield page, item, core_pb2.Cursor(token=page.cursor or DONE_CURSOR) if last else None
            if remaining is not None:
                remaining -= len(found)
            if page.cursor is None or remaining == 0:
                return
            after = page.cursor

    def _check_filter(self, f: RelationshipFilter, consistency: Consistency | None) -> None:
        """SpiceDB refuses an empty filter, and one naming a definition or relation the schema does not have."""
        if f.is_empty:
            raise V1Error(grpc.StatusCode.INVALID_ARGUMENT,
                          "the relationship filter provided is not valid: at least one field must be set",
                          "ERROR_REASON_INVALID_FILTER", {"filter": ""})
        if f.resource_type is None:
            return
        with _definition_needs_schema(f.resource_type):
            schema = self.engine.schema(consistency)
        if f.resource_type in schema.classifications:
            return
        if schema.definition(f.resource_type) is None:
            raise InvalidRequestError(f"object definition `{f.resource_type}` not found")
        if f.relation is not None and schema.member(f.resource_type, f.relation) is None:
            raise InvalidRequestError(f"relation/permission `{f.relation}` not found under definition "
                                      f"`{f.resource_type}`")

    # ------------------------------------------------------------ PermissionsService: checks

    def CheckPermission(self, request: _P.CheckPermissionRequest, context: Any) -> _P.CheckPermissionResponse:
        resource = convert.object_from_v1(request.resource, "resource")
        consistency = convert.consistency_from_v1(request.consistency, request.HasField("consistency"))
        with _definition_needs_schema(resource.type):
            result = self.engine.check(
                resource, request.permission, convert.subject_from_v1(request.subject),
                context=convert.context_from_v1(request), consistency=consistency,
                explain=request.with_tracing, caller=CALLER.get())
        response = _P.CheckPermissionResponse(checked_at=convert.zed_token(result.token),
                                              permissionship=convert.permissionship_to_v1(result.permissionship),
                                              partial_caveat_info=convert.partial_caveat_info(result.missing_context))
        if request.with_tracing and result.explanation is not None:
            response.debug_trace.CopyFrom(self._debug_information(result))
        return response

    def ExpandPermissionTree(self, request: _P.ExpandPermissionTreeRequest,
                             context: Any) -> _P.ExpandPermissionTreeResponse:
        """The tree of ``resource#permission``, expanded down to terminal subjects (SpiceDB expands one level
        and leaves subject sets for the client to expand: Headwater's tree holds what those would give)."""
        resource = convert.object_from_v1(request.resource, "resource")
        with _definition_needs_schema(resource.type):
            tree, token = self.engine.expand(
                resource, request.permission,
                consistency=convert.consistency_from_v1(request.consistency, request.HasField("consistency")))
        return _P.ExpandPermissionTreeResponse(expanded_at=convert.zed_token(token),
                                               tree_root=convert.expand_tree_to_v1(tree))

    def CheckBulkPermissions(self, request: _P.CheckBulkPermissionsRequest,
                             context: Any) -> _P.CheckBulkPermissionsResponse:
        return self._check_bulk(request, _P.CheckBulkPermissionsResponse, _P.CheckBulkPermissionsPair,
                                _P.CheckBulkPermissionsResponseItem)

    def _check_bulk(self, request: Any, response: Any, pair: Any, item: Any) -> Any:
        if len(request.items) > self.max_checks:
            raise V1Error(grpc.StatusCode.INVALID_ARGUMENT,
                          f"check count of {len(request.items)} is greater than maximum allowed of "
                          f"{self.max_checks}", "ERROR_REASON_TOO_MANY_CHECKS_IN_REQUEST",
                          {"check_count": str(len(request.items)), "maximum_checks_allowed": str(self.max_checks)})
        consistency = convert.consistency_from_v1(request.consistency, request.HasField("consistency"))
        parsed = [_bulk_item(msg) for msg in request.items]  # a malformed item fails alone
        items = [p for p in parsed if isinstance(p, BulkCheckItem)]
        tracing = bool(getattr(request, "with_tracing", False))  # the experimental request has no such field
        answers = iter(self.engine.check_bulk(items, consistency=consistency, explain=tracing, caller=CALLER.get())
                       if items else ())
        outcomes = [p if isinstance(p, InvalidRequestError) else next(answers) for p in parsed]
        tokens = [o.result.token for o in outcomes if isinstance(o, BulkCheckResult) and o.result is not None]
        return response(
            checked_at=convert.zed_token(tokens[0] if tokens else self.engine.revision_token(consistency)),
            pairs=[_bulk_pair(msg, o, pair, item, self._debug_information if tracing else None)
                   for msg, o in zip(request.items, outcomes)])

    def _debug_information(self, result: CheckResult) -> debug_pb2.DebugInformation:
        """SpiceDB's debug trace of an explained answer, with the schema in force at its revision."""
        assert result.explanation is not None
        at = Consistency.at_exact_snapshot(result.token)
        return trace.debug_information(result.explanation.tree, self.engine.schema(at),
                                       self.engine.read_schema(at).text)

    # ------------------------------------------------------------ PermissionsService: lookups

    def LookupResources(self, request: _P.LookupResourcesRequest,
                        context: Any) -> Iterator[_P.LookupResourcesResponse]:
        subject = convert.subject_from_v1(request.subject)
        ctx = convert.context_from_v1(request)
        consistency = convert.consistency_from_v1(request.consistency, request.HasField("consistency"))
        caller = CALLER.get()

        def fetch(size: int, cursor: str | None) -> Any:
            with _definition_needs_schema(request.resource_object_type):
                return self.engine.lookup_resources(request.resource_object_type, request.permission, subject,
                                                    context=ctx, consistency=consistency, limit=size, cursor=cursor,
                                                    caller=caller)

        for page, r, after in self._stream(self._limit(request.optional_limit), request.optional_cursor.token, fetch,
                                           lambda page: page.results):
            yield _P.LookupResourcesResponse(
                looked_up_at=convert.zed_token(page.token), resource_object_id=r.resource_id,
                permissionship=convert.lookup_permissionship_to_v1(r.permissionship),
                partial_caveat_info=convert.partial_caveat_info(r.missing_context), after_result_cursor=after)

    def LookupSubjects(self, request: _P.LookupSubjectsRequest,
                       context: Any) -> Iterator[_P.LookupSubjectsResponse]:
        if request.optional_concrete_limit:
            raise V1Error(grpc.StatusCode.UNIMPLEMENTED, "concrete limit is not yet supported")
        resource = convert.object_from_v1(request.resource, "resource")
        ctx = convert.context_from_v1(request)
        consistency = convert.consistency_from_v1(request.consistency, request.HasField("consistency"))
        wildcards = request.wildcard_option != _P.LookupSubjectsRequest.WILDCARD_OPTION_EXCLUDE_WILDCARDS
        caller = CALLER.get()

        def fetch(size: int, cursor: str | None) -> Any:
            with _definition_needs_schema(resource.type):
                return self.engine.lookup_subjects(resource, request.permission, request.subject_object_type,
                                                   request.optional_subject_relation or None, context=ctx,
                                                   consistency=consistency, limit=size, cursor=cursor, caller=caller)

        for page, r, after in self._stream(0, request.optional_cursor.token, fetch, lambda page: page.results):
            if r.subject.id == "*" and not wildcards:
                continue
            response = convert.resolved_subject_to_v1(r)
            response.looked_up_at.token = page.token
            if after is not None:
                response.after_result_cursor.CopyFrom(after)
            yield response

    # ------------------------------------------------------------ PermissionsService: relationships

    def ReadRelationships(self, request: _P.ReadRelationshipsRequest,
                          context: Any) -> Iterator[_P.ReadRelationshipsResponse]:
        f = convert.filter_from_v1(request.relationship_filter)
        consistency = convert.consistency_from_v1(request.consistency, request.HasField("consistency"))
        limit = self._limit(request.optional_limit)
        self._check_filter(f, consistency)

        def fetch(size: int, cursor: str | None) -> Any:
            return self.engine.read_relationships(f, consistency=consistency, limit=size, cursor=cursor)

        for page, rel, after in self._stream(limit, request.optional_cursor.token, fetch,
                                             lambda page: page.relationships):
            yield _P.ReadRelationshipsResponse(read_at=convert.zed_token(page.token),
                                               relationship=convert.relationship_to_v1(rel), after_result_cursor=after)

    def WriteRelationships(self, request: _P.WriteRelationshipsRequest,
                           context: Any) -> _P.WriteRelationshipsResponse:
        n = len(request.updates)
        if n > self.max_updates:
            raise V1Error(grpc.StatusCode.INVALID_ARGUMENT,
                          f"too many updates ({n}) for WriteRelationships call (maximum: {self.max_updates})",
                          "ERROR_REASON_TOO_MANY_UPDATES_IN_REQUEST",
                          {"update_count": str(n), "maximum_updates_allowed": str(self.max_updates)})
        updates = [convert.update_from_v1(u) for u in request.updates]
        preconditions = [convert.precondition_from_v1(p) for p in request.optional_preconditions]
        metadata = convert.transaction_metadata_from_v1(request)
        first = updates[0].relationship.resource.type if updates else ""
        with _declassification_needs_metadata(metadata), _definition_needs_schema(first):
            result = self.engine.write(updates, preconditions, actor=metadata["actor"], reason=metadata["reason"])
        return _P.WriteRelationshipsResponse(written_at=convert.zed_token(result.token))

    def DeleteRelationships(self, request: _P.DeleteRelationshipsRequest,
                            context: Any) -> _P.DeleteRelationshipsResponse:
        f = convert.filter_from_v1(request.relationship_filter)
        preconditions = [convert.precondition_from_v1(p) for p in request.optional_preconditions]
        metadata = convert.transaction_metadata_from_v1(request)
        self._check_filter(f, Consistency.fully_consistent())
        limit = request.optional_limit or None
        try:
            with _declassification_needs_metadata(metadata):
                result = self.engine.delete(f, limit=limit, allow_partial=request.optional_allow_partial_deletions,
                                            preconditions=preconditions, actor=metadata["actor"],
                                            reason=metadata["reason"])
        except LimitExceededError as exc:
            if limit is None or not str(exc).startswith("delete would remove more than"):
                raise
            raise V1Error(grpc.StatusCode.INVALID_ARGUMENT,
                          f"found more than {limit} relationships to be deleted and partial deletion was not "
                          "requested", "ERROR_REASON_TOO_MANY_RELATIONSHIPS_FOR_TRANSACTIONAL_DELETE",
                          {"limit": str(limit), "filter_resource_type": f.resource_type or ""}) from exc
        progress = (_P.DeleteRelationshipsResponse.DELETION_PROGRESS_PARTIAL if result.partial
                    else _P.DeleteRelationshipsResponse.DELETION_PROGRESS_COMPLETE)
        return _P.DeleteRelationshipsResponse(deleted_at=convert.zed_token(result.token), deletion_progress=progress,
                                              relationships_deleted_count=result.deleted)

    def ImportBulkRelationships(self, requests: Iterator[_P.ImportBulkRelationshipsRequest],
                                context: Any) -> _P.ImportBulkRelationshipsResponse:
        return _P.ImportBulkRelationshipsResponse(num_loaded=self._import(requests, context))

    def ExportBulkRelationships(self, request: _P.ExportBulkRelationshipsRequest,
                                context: Any) -> Iterator[_P.ExportBulkRelationshipsResponse]:
        for relationships, cursor in self._export(request):
            yield _P.ExportBulkRelationshipsResponse(relationships=relationships, after_result_cursor=cursor)

    def _import(self, requests: Iterator[Any], context: Any) -> int:
        """Create every streamed relationship (one that exists is an error); the number loaded. Each batch of
        ``max_import_batch`` relationships is one transaction: an import within that size is all or nothing, as
        SpiceDB's import is (a larger one commits in batches: a transaction held open while a client streams
        without end would hold the store's write lock without end)."""

        def relationships() -> Iterator[Any]:
            position = 0
            for msg in requests:
                if context is not None and not context.is_active():
                    raise RequestCancelledError("the import was cancelled")
                for rel in msg.relationships:
                    position += 1
                    try:
                        yield convert.relationship_from_v1(rel)
                    except InvalidRequestError as exc:
                        raise InvalidRequestError(f"relationship {position} of the import: {exc}") from None

        result = self.engine.import_relationships(relationships(), batch_size=self.max_import_batch)
        return result.count

    def _export(self, request: Any) -> Iterator[tuple[list[core_pb2.Relationship], core_pb2.Cursor]]:
        """Pages of ``optional_limit`` (default the maximum page size) relationships at one revision, each with
        the cursor after it; the last page's cursor resumes to nothing."""
        if request.optional_cursor.token == DONE_CURSOR:
            return
        consistency = convert.consistency_from_v1(request.consistency, request.HasField("consistency"))
        f = convert.filter_from_v1(request.optional_relationship_filter)
        if not f.is_empty:
            self._check_filter(f, consistency)
        size = self._limit(request.optional_limit) or self.max_page_size
        cursor = request.optional_cursor.token or None
        while True:
            page = self.engine.read_relationships(f, consistency=consistency, limit=size, cursor=cursor)
            if page.relationships or page.cursor is None:
                yield ([convert.relationship_to_v1(r) for r in page.relationships],
                       core_pb2.Cursor(token=page.cursor or DONE_CURSOR))
            if page.cursor is None:
                return
            cursor = page.cursor

    # ------------------------------------------------------------ ExperimentalService

    def BulkImportRelationships(self, requests: Iterator[_E.BulkImportRelationshipsRequest],
                                context: Any) -> _E.BulkImportRelationshipsResponse:
        return _E.BulkImportRelationshipsResponse(num_loaded=self._import(requests, context))

    def BulkExportRelationships(self, request: _E.BulkExportRelationshipsRequest,
                                context: Any) -> Iterator[_E.BulkExportRelationshipsResponse]:
        for relationships, cursor in self._export(request):
            yield _E.BulkExportRelationshipsResponse(relationships=relationships, after_result_cursor=cursor)

    def BulkCheckPermission(self, request: _E.BulkCheckPermissionRequest,
                            context: Any) -> _E.BulkCheckPermissionResponse:
        return self._check_bulk(request, _E.BulkCheckPermissionResponse, _E.BulkCheckPermissionPair,
                                _E.BulkCheckPermissionResponseItem)

    def ExperimentalReflectSchema(self, request: _E.ExperimentalReflectSchemaRequest,
                                  context: Any) -> _E.ExperimentalReflectSchemaResponse:
        return _experimental(self.ReflectSchema, request, _E.ExperimentalReflectSchemaResponse)

    def ExperimentalDiffSchema(self, request: _E.ExperimentalDiffSchemaRequest,
                               context: Any) -> _E.ExperimentalDiffSchemaResponse:
        return _experimental(self.DiffSchema, request, _E.ExperimentalDiffSchemaResponse)

    def ExperimentalComputablePermissions(self, request: _E.ExperimentalComputablePermissionsRequest,
                                          context: Any) -> _E.ExperimentalComputablePermissionsResponse:
        return _experimental(self.ComputablePermissions, request, _E.ExperimentalComputablePermissionsResponse)

    def ExperimentalDependentRelations(self, request: _E.ExperimentalDependentRelationsRequest,
                                       context: Any) -> _E.ExperimentalDependentRelationsResponse:
        return _experimental(self.DependentRelations, request, _E.ExperimentalDependentRelationsResponse)

    # ------------------------------------------------------------ WatchService

    def Watch(self, request: watch_service_pb2.WatchRequest,
              context: Any) -> Iterator[watch_service_pb2.WatchResponse]:
        """The changes after ``optional_start_cursor`` (default: now), one response per revision, with SpiceDB's
        filters, update kinds and checkpoints (:mod:`.watch`); it ends with UNAVAILABLE when the server drains."""
        return watch.watch(request, context, self.watcher, lambda f: self._check_filter(f, None))

    # ------------------------------------------------------------ SchemaService

    def ReadSchema(self, request: schema_service_pb2.ReadSchemaRequest,
                   context: Any) -> schema_service_pb2.ReadSchemaResponse:
        read = self.engine.read_schema()
        return schema_service_pb2.ReadSchemaResponse(schema_text=read.text, read_at=convert.zed_token(read.token))

    def WriteSchema(self, request: schema_service_pb2.WriteSchemaRequest,
                    context: Any) -> schema_service_pb2.WriteSchemaResponse:
        result = self.engine.write_schema(request.schema)
        return schema_service_pb2.WriteSchemaResponse(written_at=convert.zed_token(result.token))

    def _schema_snapshot(self, request: Any) -> reflection.Snapshot:
        return reflection.snapshot(self.engine, convert.consistency_from_v1(request.consistency,
                                                                            request.HasField("consistency")))

    def ReflectSchema(self, request: _S.ReflectSchemaRequest, context: Any) -> _S.ReflectSchemaResponse:
        at = self._schema_snapshot(request)
        definitions, caveats = reflection.reflect(at.schema, at.text, request.optional_filters)
        return _S.ReflectSchemaResponse(definitions=definitions, caveats=caveats, read_at=convert.zed_token(at.token))

    def DiffSchema(self, request: _S.DiffSchemaRequest, context: Any) -> _S.DiffSchemaResponse:
        at = self._schema_snapshot(request)
        diffs = reflection.diff(at.schema, at.text, request.comparison_schema, at.limits)
        return _S.DiffSchemaResponse(diffs=diffs, read_at=convert.zed_token(at.token))

    def ComputablePermissions(self, request: _S.ComputablePermissionsRequest,
                              context: Any) -> _S.ComputablePermissionsResponse:
        at = self._schema_snapshot(request)
        found = reflection.computable(at.schema, request.definition_name, request.relation_name,
                                      request.optional_definition_name_filter)
        return _S.ComputablePermissionsResponse(permissions=found, read_at=convert.zed_token(at.token))

    def DependentRelations(self, request: _S.DependentRelationsRequest,
                           context: Any) -> _S.DependentRelationsResponse:
        at = self._schema_snapshot(request)
        found = reflection.dependent(at.schema, request.definition_name, request.permission_name)
        return _S.DependentRelationsResponse(relations=found, read_at=convert.zed_token(at.token))
