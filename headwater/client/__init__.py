"""The Python client of a Headwater server (the gRPC API ``headwater.v1``), blocking and asyncio.

:class:`Client` and :class:`AsyncClient` have the same methods (``check``, ``check_bulk``, ``expand``,
``lookup_resources``, ``lookup_subjects``, ``write``/``touch``/``create``/``remove``/``delete``,
``read_relationships``, ``import_relationships``/``export_relationships``, ``watch``/``follow``,
``write_schema``/``read_schema``/``schema_history``, ``effective_labels``, ``derive``, ``ancestors``/``descendants``,
the ``audit_*`` calls, ``health``), which mirror :class:`~headwater.engine.Engine`'s and return the engine's own result
types (``CheckResult``, ``LookupResourcesPage``, ``WriteResult``...). A failed call raises the engine error the
server raised (``NotFoundError``, ``AlreadyExistsError``...), or :class:`RemoteError` for a status no engine
error stands for (UNAUTHENTICATED, UNAVAILABLE, DEADLINE_EXCEEDED...); each has ``.code``, the status's name.

**Deadlines.** Every call has one: the client's ``timeout`` (30 s unless set), or the call's ``timeout=``. It bounds
the whole call, retries and their waits included.

**Retries** (:class:`RetryPolicy`: attempts, backoff, multiplier, jitter, codes). A call is retried when it failed
with UNAVAILABLE (the server is down, restarting or draining), CANCELLED (the server cancelled it as it stopped), or
RESOURCE_EXHAUSTED from the admission control ("too many heavy calls... retry later"; never a request over a
limit), *and it is safe to repeat*:

- safe: every read, check, lookup, expand, listing, export, audit call and health check; ``write_schema`` (the same
  text again leaves the same schema); writes whose updates are all TOUCH or DELETE without preconditions
  (``touch``, ``remove``) and ``derive`` (only TOUCHes: a repeat writes nothing more, and answers
  ``written=False``); ``delete`` by filter without ``limit`` or preconditions; ``follow`` resumes after the
  last revision it delivered (only once it knows one); ``audit_export`` until its first line arrived.
- not safe, so never retried by the client: CREATE (``create``, ``import_relationships``, a ``write`` with a CREATE
  update), writes and deletes with preconditions, ``delete`` with a ``limit``. If the first attempt was applied and
  only its answer lost, a second would fail (ALREADY_EXISTS, a precondition) or do more. gRPC's *transparent* retry
  still covers them: it resends a call that never reached the server (the connection was refused or reset first).
  On UNAVAILABLE such a write may or may not have been applied: read it back, or write with TOUCH.

gRPC's own retry policy (the channel's service config) retries UNAVAILABLE for the always-safe unary methods within
one attempt; the client's loop retries everything safe, streams included, until ``max_attempts`` or the deadline.
``wait_for_ready=True`` makes calls wait for a server (within their deadline) instead of failing UNAVAILABLE.

**Light import.** ``import headwater.client`` loads grpcio, protobuf, grpc_health, the generated messages and the
engine's small pure modules (results, relationships, errors) — not the schema parser (lark), CEL, YAML, SQLite
or PostgreSQL drivers, nor the evaluator. The package is typed (``py.typed``).

Example (needs a running server)::

    from headwater.client import AsyncClient, Client, RetryPolicy

    with Client("localhost:50051", token="hw_live_...", timeout=5.0) as client:
        if client.check("output:o1", "view", "user:alice").allowed:
            ...

    async def main() -> None:
        async with AsyncClient("localhost:50051", retry=RetryPolicy(max_attempts=4)) as client:
            page = await client.lookup_resources("output", "view", "user:alice", timeout=2.0)
"""

from __future__ import annotations

from ..engine.errors import (
    AlreadyExistsError,
    EngineError,
    InvalidRequestError,
    NotFoundError,
    PreconditionFailedError,
)
from ..engine.relationships import ObjectRef, Relationship, SubjectRef, parse_relationship
from ..engine.results import (
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
    LookupResult,
    LookupSubjectsPage,
    Permissionship,
    ReadPage,
    ReplayResult,
    SchemaVersion,
    SchemaWriteReport,
    SubjectResult,
    WatchEvent,
    WriteResult,
)
from ..engine.service.errors import RemoteError
from .aio import AsyncClient
from .calls import ClientTls, ExportResult
from .retry import NO_RETRY, RetryPolicy
from .sync import Client

SchemaVersionInfo = SchemaVersion  # the name the client gave it first

__all__ = [
    "NO_RETRY",
    "AlreadyExistsError",
    "AsyncClient",
    "BulkCheckItem",
    "BulkCheckResult",
    "ChangeImpact",
    "CheckResult",
    "Client",
    "ClientTls",
    "DeleteResult",
    "DeriveResult",
    "EffectiveLabels",
    "EngineError",
    "ExportResult",
    "ImportResult",
    "InvalidRequestError",
    "LineagePage",
    "LookupResourcesPage",
    "LookupResult",
    "LookupSubjectsPage",
    "NotFoundError",
    "ObjectRef",
    "Permissionship",
    "PreconditionFailedError",
    "ReadPage",
    "Relationship",
    "RemoteError",
    "ReplayResult",
    "RetryPolicy",
    "SchemaVersion",
    "SchemaVersionInfo",
    "SchemaWriteReport",
    "SubjectRef",
    "SubjectResult",
    "WatchEvent",
    "WriteResult",
    "parse_relationship",
]
