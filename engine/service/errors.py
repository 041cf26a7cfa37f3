"""The one table that maps errors to gRPC status codes (and, for the client, back).

::

    DslError (schema text) ─────────────────────────────── INVALID_ARGUMENT  "line L, column C: ..."
    EngineError ─┬ InvalidRequestError ───────────────────── INVALID_ARGUMENT
                 │  └ LimitExceededError ─────────────────── RESOURCE_EXHAUSTED  (names the limit;
                 │     └ WorkLimitExceededError                    max_work_per_request too)
                 ├ NotFoundError ─────────────────────────── NOT_FOUND
                 ├ AlreadyExistsError ────────────────────── ALREADY_EXISTS
                 ├ PreconditionFailedError ───────────────── FAILED_PRECONDITION
                 │  ├ SchemaConflictError ────────────────── FAILED_PRECONDITION
                 │  └ AuditTrailBrokenError ──────────────── FAILED_PRECONDITION
                 ├ MaxDepthExceededError ─────────────────── FAILED_PRECONDITION
                 ├ DeadlineExceededError ─────────────────── DEADLINE_EXCEEDED
                 ├ RequestCancelledError ─────────────────── CANCELLED
                 ├ RevisionUnavailableError ──────────────── OUT_OF_RANGE
                 ├ DeclassificationRefusedError ──────────── PERMISSION_DENIED
                 ├ ImportFailedError ─────────────────────── the code of its cause
                 └ StoreError ─┬ WriteConflictError ──────── ABORTED
                               └ StoreUnavailableError ───── UNAVAILABLE
    ServiceError (raised by the service itself) ─┬ UnauthenticatedError ── UNAUTHENTICATED
                                                 ├ PermissionDeniedError ── PERMISSION_DENIED
                                                 └ ShuttingDownError ────── UNAVAILABLE
    anything else ────────────────────────────────────────── INTERNAL, "internal error (ref ...)"

The client reads the same table backwards (:func:`error_from_status`): the error class
the trailer names, else the one engine error class of the status code, else
``RemoteError`` (an ``EngineError`` with the code)::

    EngineError ─ RemoteError    a failed call that no engine or schema error stands for

An unexpected error is logged with its traceback under a short reference that the
client's message repeats; its text never reaches the client. Messages are cut to
:data:`MAX_MESSAGE_CHARS` so a hostile input cannot blow up the trailers. The
trailing metadata ``headwater-error`` names the error class, so the client can
raise the same class.

Example::

    >>> from headwater.engine.errors import NotFoundError
    >>> status_for(NotFoundError("no schema")).code.name
    'NOT_FOUND'
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import grpc

from ...dsl import DslError
from ...dsl import errors as dsl_errors
from .. import errors as engine_errors
from ..errors import (
    AlreadyExistsError,
    DeadlineExceededError,
    DeclassificationRefusedError,
    EngineError,
    ImportFailedError,
    InvalidRequestError,
    LimitExceededError,
    MaxDepthExceededError,
    NotFoundError,
    PreconditionFailedError,
    RequestCancelledError,
    RequestStoppedError,
    RevisionUnavailableError,
    StoreUnavailableError,
    WriteConflictError,
)

__all__ = [
    "DeadlineExceededError",
    "ERROR_METADATA_KEY",
    "MAX_MESSAGE_CHARS",
    "PermissionDeniedError",
    "REVISION_METADATA_KEY",
    "STATUS_TABLE",
    "RemoteError",
    "ServiceError",
    "ShuttingDownError",
    "Status",
    "UnauthenticatedError",
    "error_from_status",
    "status_for",
]

_log = logging.getLogger("headwater.service")

ERROR_METADATA_KEY = "headwater-error"
#: Trailing metadata of every server stream: the revision token it read (also there when it sent nothing).
REVISION_METADATA_KEY = "headwater-revision-token"
MAX_MESSAGE_CHARS = 2000


class ServiceError(Exception):
    """An error the service raises itself (not the engine): authentication, scopes, shutdown."""


class UnauthenticatedError(ServiceError):
    """No bearer token, or one the server does not know."""


class PermissionDeniedError(ServiceError):
    """A known token without the scope the method needs."""


class ShuttingDownError(ServiceError):
    """The server is draining; retry against another instance or after the restart."""


# Most specific first: the first matching row wins.
STATUS_TABLE: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (DslError, grpc.StatusCode.INVALID_ARGUMENT),
    (LimitExceededError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (InvalidRequestError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (PreconditionFailedError, grpc.StatusCode.FAILED_PRECONDITION),  # SchemaConflictError too
    (MaxDepthExceededError, grpc.StatusCode.FAILED_PRECONDITION),
    (DeadlineExceededError, grpc.StatusCode.DEADLINE_EXCEEDED),
    (RequestCancelledError, grpc.StatusCode.CANCELLED),
    (RequestStoppedError, grpc.StatusCode.CANCELLED),
    (RevisionUnavailableError, grpc.StatusCode.OUT_OF_RANGE),
    (DeclassificationRefusedError, grpc.StatusCode.PERMISSION_DENIED),
    (WriteConflictError, grpc.StatusCode.ABORTED),
    (StoreUnavailableError, grpc.StatusCode.UNAVAILABLE),
    (UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (ShuttingDownError, grpc.StatusCode.UNAVAILABLE),
)


@dataclass(frozen=True, slots=True)
class Status:
    """What a failed call answers: the code, the message, and the error class name (None for INTERNAL)."""

    code: grpc.StatusCode
    message: str
    error_name: str | None


def status_for(exc: BaseException) -> Status:
    """The status for ``exc``; an unexpected error is logged with its traceback and gets a generic message."""
    if isinstance(exc, ImportFailedError):
        inner = status_for(exc.cause)
        if inner.code is not grpc.StatusCode.INTERNAL:
            return Status(inner.code, _cut(str(exc)), inner.error_name)
    for cls, code in STATUS_TABLE:
        if isinstance(exc, cls):
            return Status(code, _cut(_message(exc)), type(exc).__name__)
    ref = uuid.uuid4().hex[:12]
    _log.error("unexpected error (ref %s)", ref, exc_info=exc)
    return Status(grpc.StatusCode.INTERNAL, f"internal error (ref {ref}); the server log has the details", None)


def _message(exc: BaseException) -> str:
    if isinstance(exc, DslError):
        return "; ".join(f"schema error at line {e.line}, column {e.column}: {e.message}" for e in exc.errors)
    return str(exc) or type(exc).__name__


def _cut(text: str) -> str:
    if len(text) <= MAX_MESSAGE_CHARS:
        return text
    return text[:MAX_MESSAGE_CHARS] + f"... ({len(text) - MAX_MESSAGE_CHARS} more characters)"


def item_error_code(exc: EngineError) -> tuple[int, str, str]:
    """(numeric code, code name, message) for one item of a batch (CheckBulk)."""
    status = status_for(exc)
    return status.code.value[0], status.code.name, status.message


# --- the client's side ----------------------------------------------------------------------------


class RemoteError(EngineError):
    """A call failed with a status that no engine error stands for; ``code`` names the status."""

    def __init__(self, message: str, code: str = "UNKNOWN") -> None:
        super().__init__(message)
        self.code = code


def _engine_error_by_code() -> dict[str, type[EngineError]]:
    """Each status code's engine error class: the first of STATUS_TABLE, unless the service's own errors use
    that code too (then the code alone does not say which)."""
    out: dict[str, type[EngineError]] = {}
    shared = {code.name for cls, code in STATUS_TABLE if issubclass(cls, ServiceError)}
    for cls, code in STATUS_TABLE:
        if issubclass(cls, EngineError) and code.name not in shared:
            out.setdefault(code.name, cls)
    return out


_BY_CODE = _engine_error_by_code()


def error_from_status(code: str, message: str, error_name: str | None = None) -> Exception:
    """The exception for a failed call (or a CheckBulk item): the engine or schema error class the trailer
    names if known, else the engine error of the status code, else :class:`RemoteError`; ``.code`` is set on it.

    Example::

        >>> type(error_from_status("NOT_FOUND", "no schema")).__name__
        'NotFoundError'
        >>> error_from_status("DEADLINE_EXCEEDED", "too slow").code
        'DEADLINE_EXCEEDED'
    """
    exc: Exception
    cls = getattr(engine_errors, error_name, None) if error_name else None
    dsl_cls = getattr(dsl_errors, error_name, None) if error_name else None
    if not (isinstance(cls, type) and issubclass(cls, EngineError)):
        cls = _BY_CODE.get(code)
    if isinstance(dsl_cls, type) and issubclass(dsl_cls, dsl_errors.DslError):
        try:
            exc = dsl_cls(message)
        except TypeError:  # an error built from other fields than a message: the schema error it is
            exc = dsl_errors.DslError(message)
    elif cls is engine_errors.RevisionUnavailableError:
        exc = cls(message, revision=-1, oldest=-1, head=-1)
    elif cls is not None:
        try:
            exc = cls(message)
        except TypeError:  # an error built from other fields than a message (ImportFailedError...)
            exc = RemoteError(f"{code}: {message}", code)
    else:
        exc = RemoteError(f"{code}: {message}", code)
    exc.code = code  # type: ignore[attr-defined]
    return exc
