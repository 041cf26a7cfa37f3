"""Errors as SpiceDB reports them: its gRPC status codes and, where SpiceDB attaches one, its ``ErrorReason``.

The reason travels as SpiceDB sends it: a ``google.rpc.Status`` in the trailing metadata
``grpc-status-details-bin`` whose details hold a ``google.rpc.ErrorInfo`` (domain
``authzed.com``, ``reason`` an ``authzed.api.v1.ErrorReason`` name, and metadata). Codes
were measured against SpiceDB v1.54 (``../shared/peers``) where they differ from
``headwater.v1``'s table (:mod:`..errors`)::

    V1Error (raised by the v1 adapter itself) ────────── its own code and reason
    DslSyntaxError ────────────────────────────────────── INVALID_ARGUMENT     SCHEMA_PARSE_ERROR
    DslError (other schema errors) ────────────────────── INVALID_ARGUMENT     SCHEMA_TYPE_ERROR
    SchemaConflictError (would orphan relationships) ──── INVALID_ARGUMENT     (SpiceDB attaches no reason)
    PreconditionFailedError ───────────────────────────── FAILED_PRECONDITION  WRITE_OR_DELETE_PRECONDITION_FAILURE
    AlreadyExistsError ────────────────────────────────── ALREADY_EXISTS       ATTEMPT_TO_RECREATE_RELATIONSHIP
    MaxDepthExceededError ─────────────────────────────── FAILED_PRECONDITION  MAXIMUM_DEPTH_EXCEEDED
    CaveatEvaluationError ─────────────────────────────── INVALID_ARGUMENT     CAVEAT_PARAMETER_TYPE_ERROR or
                                                                           CAVEAT_EVALUATION_ERROR
    InvalidRequestError, by its message:
      "object definition `d` not found" ───────────────── FAILED_PRECONDITION  UNKNOWN_DEFINITION
      "relation/permission `r` not found under ..." ───── FAILED_PRECONDITION  UNKNOWN_RELATION_OR_PERMISSION
      "`d#p` is a permission; ..." ────────────────────── INVALID_ARGUMENT     CANNOT_UPDATE_PERMISSION
      "subjects of type ... are not allowed ..." ──────── INVALID_ARGUMENT     INVALID_SUBJECT_TYPE
      "... updated more than once in one batch" ───────── INVALID_ARGUMENT     UPDATES_ON_SAME_RELATIONSHIP
      "malformed cursor" ──────────────────────────────── INVALID_ARGUMENT     INVALID_CURSOR
    NotImplementedError (an RPC not served yet) ───────── UNIMPLEMENTED
    anything else ─────────────────────────────────────── headwater.v1's code, no reason

The trailer ``headwater-error`` names the error class too, as on ``headwater.v1``.

Example::

    >>> from headwater.engine.errors import MaxDepthExceededError
    >>> failure = failure_for(MaxDepthExceededError("max depth exceeded"))
    >>> failure.code.name, reason_of(failure)
    ('FAILED_PRECONDITION', 'ERROR_REASON_MAXIMUM_DEPTH_EXCEEDED')
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from ....dsl import DslError
from ....dsl.errors import DslSyntaxError
from ...errors import (
    AlreadyExistsError,
    CaveatEvaluationError,
    ImportFailedError,
    InvalidRequestError,
    MaxDepthExceededError,
    PreconditionFailedError,
    SchemaConflictError,
)
from ..errors import ERROR_METADATA_KEY, status_for
from ..handlers import Failure

__all__ = ["DETAILS_METADATA_KEY", "ERROR_DOMAIN", "V1Error", "failure_for", "reason_of", "status_message"]

#: The trailing metadata holding a serialized ``google.rpc.Status`` with the ErrorInfo (gRPC's convention).
DETAILS_METADATA_KEY = "grpc-status-details-bin"
ERROR_DOMAIN = "authzed.com"


class V1Error(Exception):
    """An error the v1 adapter raises itself, with SpiceDB's code, reason and metadata (too many updates, a page
    limit over the maximum, a declassification without its transaction metadata...)."""

    def __init__(self, code: grpc.StatusCode, message: str, reason: str | None = None,
                 metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.metadata = dict(metadata or {})


_I, _F = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION

#: InvalidRequestError messages SpiceDB answers with another code or a reason: (pattern, code, reason); the
#: pattern's named groups become the ErrorInfo's metadata.
_BY_MESSAGE: tuple[tuple[re.Pattern[str], grpc.StatusCode, str], ...] = (
    (re.compile(r"relation(?:/permission)? `(?P<relation_or_permission_name>[^`]+)` not found under definition "
                r"`(?P<definition_name>[^`]+)`"), _F, "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION"),
    (re.compile(r"object definition `(?P<definition_name>[^`]+)` not found"), _F, "ERROR_REASON_UNKNOWN_DEFINITION"),
    (re.compile(r"`(?P<definition_name>[^`#]+)#(?P<permission_name>[^`]+)` is a permission"), _I,
     "ERROR_REASON_CANNOT_UPDATE_PERMISSION"),
    (re.compile(r"subjects of type `[^`]+` are not allowed on relation"), _I, "ERROR_REASON_INVALID_SUBJECT_TYPE"),
    (re.compile(r"relationship '(?P<relationship>[^']+)' is updated more than once"), _I,
     "ERROR_REASON_UPDATES_ON_SAME_RELATIONSHIP"),
    (re.compile(r"malformed cursor"), _I, "ERROR_REASON_INVALID_CURSOR"),
)


def _classify(exc: BaseException) -> tuple[grpc.StatusCode, str | None, dict[str, str]] | None:
    """SpiceDB's (code, reason, metadata) for ``exc`` where it differs from headwater.v1's, else None."""
    if isinstance(exc, V1Error):
        return exc.code, exc.reason, exc.metadata
    if isinstance(exc, ImportFailedError):  # a bulk import answers as its failing relationship's error
        return _classify(exc.cause)
    if isinstance(exc, DslError):
        first = exc.errors[0] if exc.errors else None
        where = {"start_line_number": str(first.line), "start_column_position": str(first.column)} if first else {}
        reason = "ERROR_REASON_SCHEMA_PARSE_ERROR" if isinstance(exc, DslSyntaxError) else \
            "ERROR_REASON_SCHEMA_TYPE_ERROR"
        return _I, reason, where
    if isinstance(exc, SchemaConflictError):
        return _I, None, {}
    if isinstance(exc, PreconditionFailedError):
        return _F, "ERROR_REASON_WRITE_OR_DELETE_PRECONDITION_FAILURE", {}
    if isinstance(exc, AlreadyExistsError):
        return grpc.StatusCode.ALREADY_EXISTS, "ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP", \
            {"relationship": str(exc.relationship)} if exc.relationship is not None else {}
    if isinstance(exc, MaxDepthExceededError):
        return _F, "ERROR_REASON_MAXIMUM_DEPTH_EXCEEDED", {}
    if isinstance(exc, CaveatEvaluationError):
        reason = "ERROR_REASON_CAVEAT_PARAMETER_TYPE_ERROR" if "invalid value for parameter" in str(exc) else \
            "ERROR_REASON_CAVEAT_EVALUATION_ERROR"
        return _I, reason, {}
    if isinstance(exc, InvalidRequestError):
        for pattern, code, reason in _BY_MESSAGE:
            found = pattern.search(str(exc))
            if found is not None:
                return code, reason, found.groupdict()
    if isinstance(exc, NotImplementedError):
        return grpc.StatusCode.UNIMPLEMENTED, None, {}
    return None


def _status(code: grpc.StatusCode, message: str, reason: str | None,
            metadata: Mapping[str, str]) -> status_pb2.Status:
    status = status_pb2.Status(code=code.value[0], message=message)
    if reason is not None:
        info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=dict(metadata))
        detail = any_pb2.Any()
        detail.Pack(info)
        status.details.append(detail)
    return status


def status_message(exc: BaseException) -> status_pb2.Status:
    """``exc`` as a ``google.rpc.Status`` with its ErrorInfo: what a CheckBulkPermissions pair's error holds."""
    failure = failure_for(exc)
    for key, value in failure.trailers:
        if key == DETAILS_METADATA_KEY and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return _status(failure.code, failure.message, None, {})


def failure_for(exc: BaseException) -> Failure:
    """How a v1 call failing with ``exc`` ends: SpiceDB's code, the message, and the ErrorInfo in the trailers."""
    found = _classify(exc)
    if isinstance(exc, NotImplementedError):
        code, message, error_name = grpc.StatusCode.UNIMPLEMENTED, "this method is not served by Headwater yet", None
    elif isinstance(exc, V1Error):
        code, message, error_name = exc.code, str(exc), None
    else:
        base = status_for(exc)  # logs an unexpected error, cuts long messages
        code, message, error_name = base.code, base.message, base.error_name
    reason, metadata = None, {}
    if found is not None:
        code, reason, metadata = found
    trailers: list[tuple[str, str | bytes]] = []
    if error_name:
        trailers.append((ERROR_METADATA_KEY, error_name))
    if reason is not None:
        trailers.append((DETAILS_METADATA_KEY, _status(code, message, reason, metadata).SerializeToString()))
    return Failure(code, message, tuple(trailers))


def reason_of(failure: Failure) -> str | None:
    """The ErrorReason name a failure carries (None if it carries none)."""
    for key, value in failure.trailers:
        if key == DETAILS_METADATA_KEY and isinstance(value, bytes):
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info.reason
    return None

