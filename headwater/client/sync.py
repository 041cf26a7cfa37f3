"""The blocking client: ``Client("localhost:50051", token=...)``, methods that mirror the Engine's.

Each method builds its call with :mod:`headwater.client.calls` and runs it here: with the client's bearer token,
the call's deadline (``timeout=`` on the call, else the client's), and the client's :class:`RetryPolicy` for the
calls that are safe to repeat (see :mod:`headwater.client`).

Example (needs a running server)::

    with Client("localhost:50051", token="hw_live_...", timeout=5.0) as client:
        client.check("output:o1", "view", "user:alice", timeout=0.5).allowed
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from ..engine.audit.records import AuditPage, RecordKind, VerifyResult
from ..engine.consistency import Consistency
from ..engine.expand import ExpandNode
from ..engine.relationships import ObjectRef, Relationship, SubjectRef
from ..engine.results import (
    Alert,
    BulkCheckItem,
    BulkCheckResult,
    ChangeImpact,
    CheckResult,
    DeleteResult,
    DeriveResult,
    EffectiveLabels,
    ImportResult,
    LineagePage,
    LookupResourcesPage,
    LookupSubjectsPage,
    ReadPage,
    ReplayResult,
    SchemaVersion,
    SchemaWriteReport,
    WatchEvent,
    WriteResult,
)
from ..engine.service.errors import RemoteError
from ..engine.store import Operation, Precondition, RelationshipFilter, Update
from . import calls
from .base import ClientBase
from .calls import ClientTls, Collect, ExportResult, Unary
from .retry import Attempts, RetryPolicy

if TYPE_CHECKING:
    from ..dsl.schema import Schema

__all__ = ["Client"]

T = TypeVar("T")


class Client(ClientBase):
    """A connection to a Headwater server; methods mirror the Engine's. Use as a context manager or ``close()``.

    :param address: ``host:port``.
    :param token: the bearer token (sent as ``authorization: Bearer ...`` on every call).
    :param tls: False for plaintext, True for TLS with the system's roots, or a :class:`ClientTls`.
    :param timeout: the default deadline of a call in seconds, retries included (None: no deadline); each method
        takes ``timeout=`` to override it.
    :param retry: the :class:`RetryPolicy` (``NO_RETRY``: none but gRPC's transparent retry).
    :param wait_for_ready: calls wait (within their deadline) for the server instead of failing UNAVAILABLE.
    """

    def __init__(self, address: str, *, token: str | None = None, tls: bool | ClientTls = False,
                 timeout: float | None = 30.0, max_message_bytes: int = 4 * 1024 * 1024,
                 retry: RetryPolicy | None = None, wait_for_ready: bool = False) -> None:
        super().__init__(address, grpc, token=token, tls=tls, timeout=timeout, max_message_bytes=max_message_bytes,
                         retry=retry, wait_for_ready=wait_for_ready)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, call: Unary[T] | Collect[T], timeout: float | None = None) -> T:
        """Run ``call``, retrying what the policy retries while the deadline allows."""
        attempts = self.attempts(call.safe, timeout)
        method = self.method(call.rpc)
        while True:
            try:
                answer = method(call.request, **self.options(attempts.start()))
                if isinstance(call, Unary):
                    return call.read(answer)
                responses = list(answer)
                return call.read(responses, calls.revision_token(answer.trailing_metadata()))
            except grpc.RpcError as err:
                time.sleep(calls.pause_or_raise(attempts, err))

    def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        """A request sent as is to a stub's ``method``, once (tests send what the client's own parsing refuses)."""
        try:
            return method(request, **self.options(self.timeout if timeout is None else timeout))
        except grpc.RpcError as err:
            raise calls.error_from_rpc(err) from None

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the channel connects (RemoteError UNAVAILABLE after ``timeout`` seconds)."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise RemoteError(f"UNAVAILABLE: no server at {self.address} after {timeout}s", "UNAVAILABLE") from None

    def health(self, service: str = "", *, timeout: float | None = None) -> str:
        """The server's health status name for ``service`` ("" = the server): SERVING, NOT_SERVING, ..."""
        return self._run(calls.health(service), timeout)

    # ------------------------------------------------------------ checks

    def check(self, resource: ObjectRef | str, permission: str, subject: SubjectRef | str, *,
              context: Mapping[str, Any] | None = None, consistency: Consistency | None = None,
              explain: bool = False, timeout: float | None = None) -> CheckResult:
        """Does ``subject`` have ``permission`` on ``resource``? Like :meth:`Engine.check`."""
        return self._run(calls.check(resource, permission, subject, context=context, consistency=consistency,
                                     explain=explain), timeout)

    def check_bulk(self, items: Sequence[BulkCheckItem], *, consistency: Consistency | None = None,
                   timeout: float | None = None) -> list[BulkCheckResult]:
        """Many checks at one revision; an item's error stays with that item. Like :meth:`Engine.check_bulk`."""
        return self._run(calls.check_bulk(items, consistency=consistency), timeout)

    def expand(self, resource: ObjectRef | str, permission: str, *, context: Mapping[str, Any] | None = None,
               consistency: Consistency | None = None, timeout: float | None = None) -> tuple[ExpandNode, str]:
        """The expanded subject tree and the revision token. Like :meth:`Engine.expand`."""
        return self._run(calls.expand(resource, permission, context=context, consistency=consistency), timeout)

    def lookup_resources(self, resource_type: str, permission: str, subject: SubjectRef | str, *,
                         context: Mapping[str, Any] | None = None, consistency: Consistency | None = None,
                         limit: int | None = None, cursor: str | None = None,
                         timeout: float | None = None) -> LookupResourcesPage:
        """The resources (all, or at most ``limit`` with a cursor). Like :meth:`Engine.lookup_resources`."""
        return self._run(calls.lookup_resources(resource_type, permission, subject, context=context,
                                                consistency=consistency, limit=limit, cursor=cursor), timeout)

    def lookup_subjects(self, resource: ObjectRef | str, permission: str, subject_type: str,
                        subject_relation: str | None = None, *, context: Mapping[str, Any] | None = None,
                        consistency: Consistency | None = None, limit: int | None = None,
                        cursor: str | None = None, timeout: float | None = None) -> LookupSubjectsPage:
        """The subjects with ``permission``. Like :meth:`Engine.lookup_subjects`."""
        return self._run(calls.lookup_subjects(resource, permission, subject_type, subject_relation,
                                               context=context, consistency=consistency, limit=limit,
                                               cursor=cursor), timeout)

    # ------------------------------------------------------------ relationships

    def write(self, updates: Iterable[Update], preconditions: Sequence[Precondition] = (), *,
              actor: str | None = None, reason: str | None = None, timeout: float | None = None) -> WriteResult:
        """Apply a batch atomically (retried only if it just TOUCHes and DELETEs). Like :meth:`Engine.write`."""
        return self._run(calls.write(updates, preconditions, actor=actor, reason=reason), timeout)

    def touch(self, *relationships: Relationship | str, actor: str | None = None, reason: str | None = None,
              timeout: float | None = None) -> WriteResult:
        return self.write([Update(Operation.TOUCH, calls.rel(r)) for r in relationships], actor=actor,
                          reason=reason, timeout=timeout)

    def create(self, *relationships: Relationship | str, actor: str | None = None, reason: str | None = None,
               timeout: float | None = None) -> WriteResult:
        """Never retried by the client (only gRPC's transparent retry, before the server read it)."""
        return self.write([Update(Operation.CREATE, calls.rel(r)) for r in relationships], actor=actor,
                          reason=reason, timeout=timeout)

    def remove(self, *relationships: Relationship | str, actor: str | None = None, reason: str | None = None,
               timeout: float | None = None) -> WriteResult:
        return self.write([Update(Operation.DELETE, calls.rel(r)) for r in relationships], actor=actor,
                          reason=reason, timeout=timeout)

    def delete(self, filter: RelationshipFilter, *, limit: int | None = None, allow_partial: bool = False,
               preconditions: Sequence[Precondition] = (), actor: str | None = None, reason: str | None = None,
               timeout: float | None = None) -> DeleteResult:
        """Delete by filter. Like :meth:`Engine.delete`."""
        return self._run(calls.delete(filter, limit=limit, allow_partial=allow_partial, preconditions=preconditions,
                                      actor=actor, reason=reason), timeout)

    def read_relationships(self, filter: RelationshipFilter | None = None, *,
                           consistency: Consistency | None = None, limit: int | None = None,
                           cursor: str | None = None, timeout: float | None = None) -> ReadPage:
        """A page of relationships in key order. Like :meth:`Engine.read_relationships`."""
        return self._run(calls.read_relationships(filter, consistency=consistency, limit=limit, cursor=cursor),
                         timeout)

    def read(self, filter: RelationshipFilter, *, consistency: Consistency | None = None,
             limit: int | None = None, timeout: float | None = None) -> tuple[list[Relationship], str]:
        """Matching relationships and the revision token. Like :meth:`Engine.read`."""
        page = self.read_relationships(filter, consistency=consistency, limit=limit, timeout=timeout)
        return page.relationships, page.token

    def export_relationships(self, filter: RelationshipFilter | None = None, *,
                             consistency: Consistency | None = None, batch_size: int = 0,
                             timeout: float | None = None) -> ExportResult:
        """Every matching relationship at one revision."""
        return self._run(calls.export_relationships(filter, consistency=consistency, batch_size=batch_size),
                         timeout)

    def import_relationships(self, relationships: Iterable[Relationship | str], *, chunk_size: int = 500,
                             actor: str | None = None, reason: str | None = None, existing: str = "error",
                             timeout: float | None = None) -> ImportResult:
        """Create relationships, streamed in messages of ``chunk_size``; the server writes atomic batches. A stored
        relationship fails the import, or with ``existing`` "touch" is written again, with "skip" left as it is.
        Never retried by the client (the stream is read once)."""
        started = time.monotonic()
        stream = calls.import_messages(relationships, chunk_size=chunk_size, actor=actor, reason=reason,
                                      existing=existing)
        r = self._run(Unary(("relationships", "Import"), stream, lambda r: r, safe=False), timeout)
        return ImportResult(r.loaded_count, r.batches, r.revision_token, time.monotonic() - started)

    def follow(self, after_token: str | None = None, *, timeout: float | None = None,
               resource_types: Sequence[str] = ()) -> Iterator[WatchEvent]:
        """Changes after ``after_token`` (None: from now), then new ones as they come, until ``timeout`` seconds
        pass (quietly) or the server drains (RemoteError UNAVAILABLE). Like :meth:`Engine.follow`. If the stream
        breaks with a retryable status once a revision is known (``after_token`` or a response), the client
        reconnects after the last revision delivered, so no change is lost nor repeated."""
        deadline = None if timeout is None else time.monotonic() + timeout
        token = after_token
        attempts = Attempts(self.retry, safe=True, timeout=timeout)
        while True:
            attempts.start()
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            stream = self.method(("relationships", "Watch"))(calls.watch_request(token, resource_types),
                                                              **self.options(left))
            try:
                for response in stream:
                    attempts.made = 1  # progress: the retries start over
                    yield from calls.watch_events(response)
                    token = response.revision_token or token
                return
            except grpc.RpcError as err:
                if err.code() is grpc.StatusCode.DEADLINE_EXCEEDED and timeout is not None:
                    return
                attempts.safe = token is not None  # resuming "from now" could lose changes
                time.sleep(calls.pause_or_raise(attempts, err))
            finally:
                stream.cancel()

    def watch(self, after_token: str, *, timeout: float = 0.5) -> list[WatchEvent]:
        """The changes after ``after_token`` that arrive within ``timeout`` seconds. Like :meth:`Engine.watch`."""
        return list(self.follow(after_token, timeout=timeout))

    # ------------------------------------------------------------ schema

    def write_schema(self, text: str, *, actor: str | None = None, dry_run: bool = False,
                     timeout: float | None = None) -> SchemaWriteReport:
        """Store a schema (or, with ``dry_run``, report what would happen). Like :meth:`Engine.write_schema`."""
        return self._run(calls.write_schema(text, actor=actor, dry_run=dry_run), timeout)

    def read_schema(self, consistency: Consistency | None = None, *,
                    timeout: float | None = None) -> tuple[str, str, str]:
        """(canonical schema text, digest, revision token)."""
        return self._run(calls.read_schema(consistency), timeout)

    def schema(self, consistency: Consistency | None = None, *, timeout: float | None = None) -> Schema:
        """The compiled schema in force, compiled locally from the server's text (this imports the schema compiler,
        which ``import headwater.client`` does not). Like :meth:`Engine.schema`."""
        from ..dsl import SchemaLimits, compile_schema

        return compile_schema(self.read_schema(consistency, timeout=timeout)[0], limits=SchemaLimits.unlimited())

    def schema_history(self, *, include_text: bool = False, timeout: float | None = None) -> list[SchemaVersion]:
        return self._run(calls.schema_history(include_text=include_text), timeout)

    # ------------------------------------------------------------ lineage

    def effective_labels(self, obj: ObjectRef | str, *, consistency: Consistency | None = None,
                         timeout: float | None = None) -> EffectiveLabels:
        return self._run(calls.effective_labels(obj, consistency=consistency), timeout)

    def derive(self, obj: ObjectRef | str, lineage: Mapping[str, Sequence[ObjectRef | str]], *,
               relationships: Iterable[Relationship | str] = (), checks: Sequence[tuple[str, SubjectRef | str]] = (),
               context: Mapping[str, Any] | None = None, actor: str | None = None, reason: str | None = None,
               timeout: float | None = None) -> DeriveResult:
        """Record a derived object with its lineage and relationships in one atomic write (refused whole on a
        lineage cycle), then its labels and the ``checks`` at the revision written. Like :meth:`Engine.derive`."""
        return self._run(calls.derive(obj, lineage, relationships=relationships, checks=checks, context=context,
                                     actor=actor, reason=reason), timeout)

    def ancestors(self, obj: ObjectRef | str, *, max_depth: int | None = None, limit: int | None = None,
                  cursor: str | None = None, consistency: Consistency | None = None,
                  timeout: float | None = None) -> LineagePage:
        return self._run(calls.lineage_walk("Ancestors", obj, max_depth=max_depth, limit=limit, cursor=cursor,
                                            consistency=consistency), timeout)

    def descendants(self, obj: ObjectRef | str, *, max_depth: int | None = None, limit: int | None = None,
                    cursor: str | None = None, consistency: Consistency | None = None,
                    timeout: float | None = None) -> LineagePage:
        return self._run(calls.lineage_walk("Descendants", obj, max_depth=max_depth, limit=limit, cursor=cursor,
                                            consistency=consistency), timeout)

    # ------------------------------------------------------------ the audit trail (AuditService, scope audit)

    def audit_query(self, *, kind: RecordKind | str | None = None, subject: str | None = None,
                    resource: str | None = None, permission: str | None = None, result: str | None = None,
                    caller: str | None = None, actor: str | None = None, since: datetime | None = None,
                    until: datetime | None = None, revision: int | None = None, min_revision: int | None = None,
                    max_revision: int | None = None, limit: int = 100, cursor: str | None = None,
                    newest_first: bool = False, timeout: float | None = None) -> AuditPage:
        """A page of audit records matching every filter given. Like :meth:`AuditLog.query`: ``cursor`` is None
        once there is nothing more, else pass it back (with the same filters) for the next page."""
        return self._run(calls.audit_query(
            kind=kind, subject=subject, resource=resource, permission=permission, result=result, caller=caller,
            actor=actor, since=since, until=until, revision=revision, min_revision=min_revision,
            max_revision=max_revision, limit=limit, cursor=cursor, newest_first=newest_first), timeout)

    def audit_export(self, *, timeout: float | None = None, **filters: Any) -> Iterator[str]:
        """The matching audit records as JSON Lines (each line ends with a newline), oldest first, streamed as they
        arrive: ``file.writelines(client.audit_export(kind="decision"))`` writes what ``headwater audit export``
        writes. ``filters`` are those of :meth:`audit_query` (without paging). Retried only before the first
        line arrived."""
        request = calls.audit_export_request(**filters)
        attempts = self.attempts(True, timeout)
        while True:
            try:
                stream = self.method(("audit", "Export"))(request, **self.options(attempts.start()))
                for response in stream:
                    if response.jsonl:
                        attempts.safe = False
                        yield from response.jsonl.splitlines(keepends=True)
                return
            except grpc.RpcError as err:
                time.sleep(calls.pause_or_raise(attempts, err))

    def monitor(self, *, since: datetime | None = None, until: datetime | None = None, follow: bool = False,
                rules_toml: str | None = None, timeout: float | None = None) -> Iterator[Alert]:
        """The alerts of the server's monitoring rules over its audit trail from ``since`` (default: an hour ago) to
        ``until``, oldest first; with ``follow``, new alerts as they happen until ``timeout`` or the caller stops.
        ``rules_toml``: a ``[monitor]`` table (default: the server's rules). Like ``headwater monitor``; the
        ``audit`` scope. Retried only before the first alert arrived."""
        request = calls.monitor_request(since, until, follow, rules_toml)
        attempts = self.attempts(True, timeout)
        while True:
            try:
                stream = self.method(("governance", "Monitor"))(request, **self.options(attempts.start()))
                for response in stream:
                    attempts.safe = False
                    yield calls.read_alert(response)
                return
            except grpc.RpcError as err:
                time.sleep(calls.pause_or_raise(attempts, err))

    def impact(self, *, schema: str | None = None, updates: Iterable[Update] = (), baseline: str | None = None,
               since: datetime | None = None, until: datetime | None = None, limit: int | None = None,
               timeout: float | None = None) -> ChangeImpact:
        """The recorded decisions a proposed ``schema`` and/or relationship ``updates`` would change at the server's
        head revision (``baseline``: a schema to compare from instead of the stored one; ``since``/``until``/
        ``limit``: the window of decision records). Nothing is written or recorded. Like :meth:`Engine.impact`
        and ``headwater impact``; the ``audit`` scope."""
        return self._run(calls.impact(schema=schema, updates=updates, baseline=baseline, since=since,
                                       until=until, limit=limit), timeout)

    def audit_verify(self, *, timeout: float | None = None) -> VerifyResult:
        """Walk the server's whole audit chain: ``ok``, or the first bad record and what is wrong with it. Like
        :meth:`AuditLog.verify` (``str()`` of the result is what ``headwater audit verify`` prints)."""
        return self._run(calls.audit_verify(), timeout)

    def audit_replay(self, record_id: int | None = None, *, context: Mapping[str, Any] | None = None,
                     resource: str | None = None, permission: str | None = None, subject: str | None = None,
                     before: datetime | None = None, timeout: float | None = None) -> ReplayResult:
        """Evaluate a recorded decision again at its recorded revision, with the full explanation. Like
        :meth:`Engine.replay`: name the record by id, or by resource, permission and subject (the latest such
        decision, before ``before`` if given); ``context`` is the request's caveat context (the log keeps its
        hash). Beyond the history window, ``available`` is False and the message says so."""
        return self._run(calls.audit_replay(record_id, context=context, resource=resource, permission=permission,
                                            subject=subject, before=before), timeout)
