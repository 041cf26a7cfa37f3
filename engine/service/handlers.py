"""The handler layer: every ``headwater.v1`` RPC wrapped with authentication, errors, deadlines and logging.

Handlers are built from the service descriptors of the generated modules, so
each RPC in the ``.proto`` files is served (a test checks that none is missing).
For each call, in order:

1. a request that does not decode (invalid UTF-8 in a string, a truncated message,
   nesting past protobuf's limit) is INVALID_ARGUMENT, not gRPC's default INTERNAL;
2. the bearer token is checked against the method's scope (unless the server runs
   with ``--insecure-no-auth``);
3. a call whose deadline has already passed is DEADLINE_EXCEEDED without doing work;
4. the servicer method runs with :data:`.servicer.CALLER` set to the token's name (so
   checks and lookups are recorded in the audit log with who asked) and under one
   :class:`~..budget.Budget` (``max_work_per_request``, the call's deadline, and
   cancellation: the client going away, or the server stopping after its grace
   period), so every kind of work stops within milliseconds of either; any exception becomes a status through
   :func:`.errors.status_for` (the one table), with the error class in the trailing
   metadata ``headwater-error``;
5. one structured log line records the method, status, duration, the token's
   *name* (never the token) and the call's request id;
6. with tracing on (:mod:`..tracing`), the call is a server span, a child of the client's W3C trace context,
   current around the servicer method (so the engine's spans are its children).

Every call has a request id (:data:`.servicer.REQUEST_ID`, set around the servicer method like
``CALLER``): the client's ``x-request-id`` metadata when it is sane (1 to 128 characters of
letters, digits and ``-_.:/+=@~``), else a new random one; the response's trailing metadata
carries it back as ``x-request-id``, with ``headwater-version`` (trailing, not initial: sending
initial metadata of its own costs a unary call a separate batch, about 10% of a warm check).

What differs between the APIs served through this layer (``headwater.v1`` here, SpiceDB's
``authzed.api.v1`` in :mod:`.authzed`) is one :class:`ApiRules` value: the scope each
method needs, which methods are heavy, and how an error becomes a status.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message_factory

from .. import tracing
from ..budget import Budget, use
from ..errors import DeadlineExceededError, InvalidRequestError
from .admission import HEAVY_METHODS, HeavyCalls
from .auth import TokenEntry, TokenSet, require_scope
from .errors import ERROR_METADATA_KEY, ShuttingDownError, status_for
from .pb import audit_pb2, governance_pb2, lineage_pb2, permission_pb2, relationship_pb2, schema_pb2
from ..version import version
from .servicer import CALLER, REQUEST_ID, Servicer

__all__ = ["ACCESS_LOGGER", "HEADWATER_RULES", "REQUEST_ID_KEY", "SERVICES", "VERSION_KEY", "ApiRules", "Failure",
           "build_handlers", "request_id", "service_handler", "service_names"]

ACCESS_LOGGER = "headwater.service.access"
_access = logging.getLogger(ACCESS_LOGGER)

#: The metadata key of a call's request id (sent by a client, returned in the response's trailing metadata).
REQUEST_ID_KEY = "x-request-id"
#: The trailing metadata key naming the server's version (:func:`..version.version`) on every response.
VERSION_KEY = "headwater-version"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9\-_.:/+=@~]{1,128}")


def request_id(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    """The client's ``x-request-id`` if it is sane (1 to 128 of ``A-Za-z0-9-_.:/+=@~``: nothing that could
    forge a log line), else a new random id (32 hex digits)."""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str) and _SANE_REQUEST_ID.fullmatch(value):
            return value
    return uuid.uuid4().hex


#: (generated module, service name, RPC name -> Servicer attribute where they differ)
SERVICES: tuple[tuple[Any, str, dict[str, str]], ...] = (
    (permission_pb2, "PermissionService", {}),
    (relationship_pb2, "RelationshipService", {}),
    (schema_pb2, "SchemaService", {"Write": "WriteSchema", "Read": "ReadSchema", "History": "SchemaHistory"}),
    (lineage_pb2, "LineageService", {}),
    (audit_pb2, "AuditService", {"Query": "AuditQuery", "Export": "AuditExport", "Verify": "AuditVerify",
                                 "Replay": "AuditReplay"}),
    (governance_pb2, "GovernanceService", {}),
)


def service_names() -> list[str]:
    """Full names of the Headwater services, e.g. ``headwater.v1.PermissionService``."""
    return [module.DESCRIPTOR.services_by_name[name].full_name for module, name, _ in SERVICES]


_END = object()  # the end of a server stream


@dataclass(frozen=True, slots=True)
class Failure:
    """How a failed call ends: the status code, its message, and the trailing metadata sent with it."""

    code: grpc.StatusCode
    message: str
    trailers: Sequence[tuple[str, str | bytes]] = ()


def _headwater_failure(exc: BaseException) -> Failure:
    status = status_for(exc)
    return Failure(status.code, status.message, ((ERROR_METADATA_KEY, status.error_name),) if status.error_name else ())


@dataclass(frozen=True, slots=True)
class ApiRules:
    """What an API served through this layer decides for itself: the scope check of a token for a method (raises
    PermissionDeniedError), the methods that take turns as heavy calls, and the failure an exception becomes."""

    require_scope: Callable[[TokenEntry, str], None]
    heavy_methods: frozenset[str]
    failure: Callable[[BaseException], Failure]


#: The rules of ``headwater.v1``: :data:`.auth.METHOD_SCOPES`, :data:`.admission.HEAVY_METHODS`, the one status table.
HEADWATER_RULES = ApiRules(require_scope, HEAVY_METHODS, _headwater_failure)


class _Undecodable:
    """Stands for a request message that did not parse; the handler answers INVALID_ARGUMENT."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _safe(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def load(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as exc:  # DecodeError, RecursionError, UnicodeDecodeError...
            return _Undecodable(f"{type(exc).__name__}: {exc}"[:200])
    return load


def _validate_decoded(request: Any) -> None:
    if isinstance(request, _Undecodable):
        raise InvalidRequestError(f"malformed request message ({request.reason}); strings must be valid UTF-8")


class _Call:
    """One call's bookkeeping: who, how long, how it ended."""

    __slots__ = ("budget", "context", "heavy", "light", "method", "request_id", "rules", "running", "scope",
                 "span", "started", "status", "token_name")

    def __init__(self, method: str, context: grpc.ServicerContext, rules: ApiRules) -> None:
        self.method = method
        self.context = context
        self.rules = rules
        self.started = time.monotonic()
        self.status = "CANCELLED"  # unless it finishes or fails
        self.token_name: str | None = None
        self.budget: Budget | None = None
        self.running: Servicer | None = None  # counted as running there until end()
        self.heavy: HeavyCalls | None = None  # holding a turn there until end()
        self.light: HeavyCalls | None = None  # counted there as a light call (heavy calls make way) until end()
        self.request_id = ""
        self.span: tracing.RpcSpan | None = None  # tracing on (engine/tracing.py): the call's server span
        self.scope: Any = tracing.NOOP  # entered around the servicer method: the span made current

    def begin(self, tokens: TokenSet | None, servicer: Servicer) -> None:
        metadata = self.context.invocation_metadata()
        self.request_id = request_id(metadata)
        if tracing.tracer is not None:
            self.span = self.scope = tracing.rpc_span(self.method, metadata, self.request_id)
        if servicer.draining.is_set():
            raise ShuttingDownError("the server is shutting down")
        servicer.call_started()
        self.running = servicer
        if tokens is not None:
            entry = tokens.identify(metadata)
            self.token_name = entry.name
            self.rules.require_scope(entry, self.method)
        remaining = self.context.time_remaining()
        if remaining is not None and remaining <= 0:
            raise DeadlineExceededError("the deadline passed before the call started")
        context, stopped = self.context, servicer.stopped

        def cancelled() -> bool:
            return stopped.is_set() or not context.is_active()

        self.budget = Budget(max_work=servicer.max_work_per_request, cancelled=cancelled,
                             deadline=None if remaining is None else self.started + remaining)
        if self.method in self.rules.heavy_methods:
            servicer.heavy_calls.enter(self.budget)
            self.heavy = servicer.heavy_calls
        elif servicer.heavy_calls.light_started(self.method):
            self.light = servicer.heavy_calls

    def fail(self, exc: BaseException) -> None:
        failure = self.rules.failure(exc)
        self.status = failure.code.name
        if failure.trailers:
            self.context.set_trailing_metadata(tuple(failure.trailers))
        self.context.abort(failure.code, failure.message)

    def end(self) -> None:
        """The handler is done: name the request id and version in the trailing metadata (after what the method
        or a failure put there), log the call, and stop counting it as running."""
        if self.request_id:
            self.context.set_trailing_metadata((*(self.context.trailing_metadata() or ()),
                                                (REQUEST_ID_KEY, self.request_id), (VERSION_KEY, version())))
        self.log()
        if self.span is not None:
            self.span.finish(self.status, grpc.StatusCode[self.status].value[0])
            self.span = None
        if self.heavy is not None:
            self.heavy.leave()
            self.heavy = None
        if self.light is not None:
            self.light.light_ended()
            self.light = None
        if self.running is not None:
            self.running.call_ended()
            self.running = None

    def log(self) -> None:
        fields = {"method": self.method, "status": self.status,
                  "duration_ms": round((time.monotonic() - self.started) * 1000, 3),
                  "token": self.token_name, "peer": self.context.peer(), "request_id": self.request_id}
        _access.info("rpc %s %s", self.method, self.status, extra={"fields": fields})


def _single_response(method: str, fn: Callable[..., Any], tokens: TokenSet | None, servicer: Servicer,
                     rules: ApiRules, prepare: Callable[[Any], Any]) -> Callable[..., Any]:
    """A handler answering once (unary, or a client stream): ``prepare`` readies the request(s) for ``fn``."""
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        call = _Call(method, context, rules)
        response = None
        try:
            call.begin(tokens, servicer)
            prepared = prepare(request)
            reset, reset_id = CALLER.set(call.token_name), REQUEST_ID.set(call.request_id)
            try:
                with use(call.budget), call.scope:  # type: ignore[arg-type]
                    response = fn(prepared, context)
            finally:
                REQUEST_ID.reset(reset_id)
                CALLER.reset(reset)
            call.status = "OK"
            return response
        except Exception as exc:
            call.fail(exc)
        finally:
            call.end()
            if servicer.observer is not None:  # metrics on (engine/service/observe.py)
                servicer.observer(method, call.status, call.started, response)
    return handle


def _decoded(request: Any) -> Any:
    _validate_decoded(request)
    return request


def _each_decoded(requests: Iterator[Any]) -> Iterator[Any]:
    for request in requests:
        _validate_decoded(request)
        yield request


def _unary(method: str, fn: Callable[..., Any], tokens: TokenSet | None, servicer: Servicer,
           rules: ApiRules) -> Callable[..., Any]:
    return _single_response(method, fn, tokens, servicer, rules, _decoded)


def _client_stream(method: str, fn: Callable[..., Any], tokens: TokenSet | None, servicer: Servicer,
                   rules: ApiRules) -> Callable[..., Any]:
    return _single_response(method, fn, tokens, servicer, rules, _each_decoded)


def _server_stream(method: str, fn: Callable[..., Any], tokens: TokenSet | None, servicer: Servicer,
                   rules: ApiRules) -> Callable[..., Any]:
    def handle(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        call = _Call(method, context, rules)
        response = None  # (a stream's decisions are not counted)
        try:
            call.begin(tokens, servicer)
            _validate_decoded(request)
            responses = fn(request, context)
            while True:
                # The caller is set around each step only: between steps this thread is gRPC's.
                reset, reset_id = CALLER.set(call.token_name), REQUEST_ID.set(call.request_id)
                try:
                    with use(call.budget), call.scope:  # type: ignore[arg-type]
                        item = next(responses, _END)
                finally:
                    REQUEST_ID.reset(reset_id)
                    CALLER.reset(reset)
                if item is _END:
                    break
                yield item
            call.status = "OK"
        except Exception as exc:
            call.fail(exc)
        finally:
            call.end()
            if servicer.observer is not None:  # metrics on (engine/service/observe.py)
                servicer.observer(method, call.status, call.started, response)
    return handle


def service_handler(service: Any, method_for: Callable[[str], Callable[..., Any]], tokens: TokenSet | None,
                    servicer: Servicer, rules: ApiRules = HEADWATER_RULES) -> grpc.GenericRpcHandler:
    """The generic handler of one service (its ``ServiceDescriptor``), every RPC wrapped: ``method_for(name)`` is
    the function serving RPC ``name``; ``servicer`` keeps the server's lifecycle (draining, running calls, heavy
    turns, the work budget)."""
    handlers = {}
    for m in service.methods:
        request_cls = message_factory.GetMessageClass(m.input_type)
        response_cls = message_factory.GetMessageClass(m.output_type)
        fn = method_for(m.name)
        full = f"/{service.full_name}/{m.name}"
        options = {"request_deserializer": _safe(request_cls.FromString),
                   "response_serializer": response_cls.SerializeToString}
        if m.client_streaming and m.server_streaming:
            raise NotImplementedError(f"{full}: bidirectional streams are not served")
        if m.client_streaming:
            handlers[m.name] = grpc.stream_unary_rpc_method_handler(
                _client_stream(full, fn, tokens, servicer, rules), **options)
        elif m.server_streaming:
            handlers[m.name] = grpc.unary_stream_rpc_method_handler(
                _server_stream(full, fn, tokens, servicer, rules), **options)
        else:
            handlers[m.name] = grpc.unary_unary_rpc_method_handler(_unary(full, fn, tokens, servicer, rules),
                                                                   **options)
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def build_handlers(servicer: Servicer, tokens: TokenSet | None) -> list[grpc.GenericRpcHandler]:
    """One generic handler per Headwater service, every RPC wrapped (``tokens`` None: no authentication)."""
    return [service_handler(module.DESCRIPTOR.services_by_name[name],
                            lambda rpc, rename=rename: getattr(servicer, rename.get(rpc, rpc)), tokens, servicer)
            for module, name, rename in SERVICES]
