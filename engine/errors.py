"""Errors the engine raises on purpose; each message says what went wrong and with which input.

::

    EngineError ─┬ InvalidRequestError ─┬ InvalidRelationshipError   bad relationship text or value
                 │                      │  └ LineageCycleError       a write would make the lineage graph cyclic
                 │                      ├ LimitExceededError         a request over a size limit
                 │                      │  └ WorkLimitExceededError  a request did more work than its budget
                 │                      ├ CaveatEvaluationError      a caveat's context does not fit, or CEL failed
                 │                      ├ UnknownPermissionError
                 │                      ├ ConfigError                a setting is missing, malformed or contradictory
                 │                      │  └ TokenFileError          the server's token file cannot be used
                 │                      ├ ValidationFileError        a validation file cannot be loaded (file:line)
                 │                      └ OpenLineageEventError      an OpenLineage event is malformed or unmappable
                 ├ DeclassificationRefusedError  a declassification without actor/reason or permission
                 ├ ImportFailedError         one import batch failed (cause attached); earlier ones stay
                 ├ NotFoundError
                 ├ AlreadyExistsError          CREATE of a relationship that exists
                 ├ PreconditionFailedError     names the failing precondition
                 │  ├ SchemaConflictError      a schema change would orphan stored relationships
                 │  └ AuditTrailBrokenError    an audited database's log is missing, another one or behind it
                 ├ RevisionUnavailableError    revision garbage-collected or in the future
                 ├ MaxDepthExceededError
                 ├ RequestStoppedError ─┬ DeadlineExceededError   the request's deadline passed mid-work
                 │                      └ RequestCancelledError   the caller went away (or the server stops)
                 └ StoreError ─┬ StoreUnavailableError   the backend is busy or unreachable: retry
                               └ WriteConflictError      a concurrent write got in the way: retry

A denial is a result, never an exception. Backends translate their driver's
failures into ``StoreError`` subclasses, so no driver exception reaches a caller.

Example::

    >>> from headwater.engine.errors import EngineError, InvalidRequestError
    >>> from headwater.engine.relationships import parse_relationship
    >>> try:
    ...     parse_relationship("doc:a b#viewer@user:x")
    ... except InvalidRequestError as e:
    ...     print(e)
    invalid object id 'a b' in 'doc:a b#viewer@user:x': ids may contain only letters, digits and /_|-=+
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "AuditTrailBrokenError",
    "CaveatEvaluationError",
    "ConfigError",
    "DeadlineExceededError",
    "DeclassificationRefusedError",
    "EngineError",
    "ImportFailedError",
    "InvalidRelationshipError",
    "InvalidRequestError",
    "LimitExceededError",
    "LineageCycleError",
    "MaxDepthExceededError",
    "NotFoundError",
    "OpenLineageEventError",
    "PreconditionFailedError",
    "RequestCancelledError",
    "RequestStoppedError",
    "RevisionUnavailableError",
    "SchemaConflictError",
    "StoreError",
    "StoreUnavailableError",
    "TokenFileError",
    "UnknownPermissionError",
    "ValidationFileError",
    "WorkLimitExceededError",
    "WriteConflictError",
]


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class InvalidRequestError(EngineError):
    """The request itself is wrong; sending it again unchanged fails again."""


class InvalidRelationshipError(InvalidRequestError):
    """Relationship text or a relationship value breaks the naming or format rules."""


class LineageCycleError(InvalidRelationshipError):
    """A write would make the lineage graph cyclic; the message names the cycle."""


class ConfigError(InvalidRequestError):
    """A setting is missing, malformed or contradicts another; the message names the setting and its source."""


class TokenFileError(ConfigError):
    """The token file is missing, unreadable or malformed (the message never quotes a token)."""


class ValidationFileError(InvalidRequestError):
    """A validation file cannot be loaded (bad YAML, bad keys, schema error, bad relationship); names file and
    line."""

    def __init__(self, message: str, path: str, line: int = 0) -> None:
        self.message, self.path, self.line = message, path, line
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")


class OpenLineageEventError(InvalidRequestError):
    """An OpenLineage event that does not follow the spec, or that the mapping cannot turn into relationships
    (the message names the event, by its position in a batch, and the offending part)."""


class LimitExceededError(InvalidRequestError):
    """The request would touch more items than the limit it was given."""

    def __init__(self, message: str, *, limit: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit


class WorkLimitExceededError(LimitExceededError):
    """A request evaluated more sub-problems or read more rows than ``max_work_per_request`` allows."""


class UnknownPermissionError(InvalidRequestError):
    """The schema has no permission or relation of that name on that definition."""


class NotFoundError(EngineError):
    """The requested item does not exist."""


class AlreadyExistsError(EngineError):
    """A CREATE update names a relationship that already exists."""

    def __init__(self, message: str, *, relationship: object = None) -> None:
        super().__init__(message)
        self.relationship = relationship


class PreconditionFailedError(EngineError):
    """A write precondition did not hold; nothing was written."""

    def __init__(self, message: str, *, precondition: object = None) -> None:
        super().__init__(message)
        self.precondition = precondition


class RevisionUnavailableError(EngineError):
    """The revision was garbage-collected or is newer than the head."""

    def __init__(self, message: str, *, revision: int, oldest: int, head: int) -> None:
        super().__init__(message)
        self.revision = revision
        self.oldest = oldest
        self.head = head


class MaxDepthExceededError(EngineError):
    """Evaluation went deeper than the depth budget allows."""


class RequestStoppedError(EngineError):
    """A request stopped before its end because it may not go on; nothing it would have written was written."""


class DeadlineExceededError(RequestStoppedError):
    """The request's deadline passed before its work was done."""


class RequestCancelledError(RequestStoppedError):
    """The caller cancelled the request (or went away), or the server stopped it while shutting down."""


class StoreError(EngineError):
    """The store failed; the cause, if any, is chained as ``__cause__``."""


class StoreUnavailableError(StoreError):
    """The store is busy or unreachable right now; retrying later may succeed."""


class WriteConflictError(StoreError):
    """A concurrent write conflicted with this one; retrying may succeed."""


class CaveatEvaluationError(InvalidRequestError):
    """A caveat could not be evaluated: a context value of the wrong type, or a runtime error in its expression."""


class SchemaConflictError(PreconditionFailedError):
    """A schema change would orphan stored relationships; ``problems`` names each relation and count."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class AuditTrailBrokenError(PreconditionFailedError):
    """An audited database's audit log is missing, is another log, or does not continue what the store recorded
    (rolled back, replaced, or a record lost); the message says what was found and how to acknowledge it
    (``headwater audit acknowledge``). ``problem`` is what was found, without the advice."""

    def __init__(self, message: str, *, problem: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem or message


class DeclassificationRefusedError(EngineError):
    """A declassification write without an actor and a reason, or by an actor lacking the `by` permission."""


class ImportFailedError(EngineError):
    """An import batch failed: nothing of it was written; the batches before it stay committed.

    ``batch`` is the failing batch (1-based), ``line`` the input position of the
    offending relationship when known (1-based; blank and ``//`` lines count, so it
    is the file line when the input is a file's lines), ``committed`` and
    ``committed_batches`` what earlier batches wrote, ``token`` the revision of the
    last committed batch (None if none was), and ``cause`` the underlying error.
    """

    def __init__(self, message: str, *, batch: int, line: int | None, committed: int, committed_batches: int,
                 token: str | None, cause: EngineError) -> None:
        super().__init__(message)
        self.batch = batch
        self.line = line
        self.committed = committed
        self.committed_batches = committed_batches
        self.token = token
        self.cause = cause
