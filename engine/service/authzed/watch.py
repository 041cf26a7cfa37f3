"""SpiceDB's WatchService.Watch over Headwater's change log: filters, update kinds, schema updates and checkpoints.

The rounds of changes come from :meth:`..servicer.Servicer.watch_rounds`, the loop
``headwater.v1``'s Watch reads too (so draining ends both with UNAVAILABLE). What this
module adds is SpiceDB's shape of the stream:

- relationship updates, one response per revision, kept when their resource type is in
  ``optional_object_types`` and they match one of ``optional_relationship_filters``
  (both may not be given together, as in SpiceDB);
- ``optional_update_kinds``: relationship updates (the default), schema updates (a
  response with ``schema_updated`` at the revision that wrote each new schema version)
  and checkpoints (``is_checkpoint`` responses at a revision through which every change
  has been sent; sent when that revision advances, and every :data:`HEARTBEAT_SECONDS`
  while nothing changes, so an idle stream stays alive behind proxies);
- responses in revision order; at one revision, relationship updates before the schema
  update, as SpiceDB sends them.

A revision is sent as a schema update or a checkpoint only once the change log is known to
hold nothing older that was not sent yet: the head revision is read before each round's
query, so a round that finds nothing proves every change up to it was seen.

Not carried: ``optional_transaction_metadata`` (Headwater keeps a write's actor and reason
in the audit log, not in the change log).

Example (``kinds`` reads the request's update kinds)::

    >>> from authzed.api.v1 import watch_service_pb2 as w
    >>> kinds(w.WatchRequest(optional_update_kinds=[w.WATCH_KIND_INCLUDE_CHECKPOINTS]))
    WatchKinds(relationships=False, schema=False, checkpoints=True)
    >>> kinds(w.WatchRequest())
    WatchKinds(relationships=True, schema=False, checkpoints=False)
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from authzed.api.v1 import core_pb2, watch_service_pb2

from ...api import Engine
from ...consistency import decode_token
from ...results import Operation, WatchEvent
from ...store import RelationshipFilter
from ..servicer import Servicer
from . import convert
from .errors import V1Error

__all__ = ["HEARTBEAT_SECONDS", "WatchKinds", "kinds", "watch"]

_W = watch_service_pb2

#: While nothing changes, a watch that asked for checkpoints gets one this often.
HEARTBEAT_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class WatchKinds:
    """Which kinds of responses a Watch asked for."""

    relationships: bool
    schema: bool
    checkpoints: bool


def kinds(request: _W.WatchRequest) -> WatchKinds:
    """The update kinds of ``request``: relationship updates when none is named (or UNSPECIFIED is), as in SpiceDB."""
    named = set(request.optional_update_kinds)
    unknown = named - set(_W.WatchKind.values())
    if unknown:
        raise V1Error(grpc.StatusCode.INVALID_ARGUMENT, f"invalid WatchRequest.OptionalUpdateKinds: unknown kind(s) "
                      f"{sorted(unknown)}")
    return WatchKinds(relationships=not named or bool(named & {_W.WATCH_KIND_UNSPECIFIED,
                                                                _W.WATCH_KIND_INCLUDE_RELATIONSHIP_UPDATES}),
                      schema=_W.WATCH_KIND_INCLUDE_SCHEMA_UPDATES in named,
                      checkpoints=_W.WATCH_KIND_INCLUDE_CHECKPOINTS in named)


def _update(event: WatchEvent) -> core_pb2.RelationshipUpdate:
    """A change as SpiceDB's update: a write is TOUCH, a removal DELETE."""
    operation = (core_pb2.RelationshipUpdate.OPERATION_DELETE if event.operation is Operation.DELETE
                 else core_pb2.RelationshipUpdate.OPERATION_TOUCH)
    return core_pb2.RelationshipUpdate(operation=operation, relationship=convert.relationship_to_v1(event.relationship))


def watch(request: _W.WatchRequest, context: Any, watcher: Servicer,
          check_filter: Callable[[RelationshipFilter], None]) -> Iterator[_W.WatchResponse]:
    """The responses of one Watch call (``check_filter`` refuses a filter naming what the schema lacks)."""
    wanted = kinds(request)
    types = set(request.optional_object_types)
    if wanted.relationships and types and request.optional_relationship_filters:
        raise V1Error(grpc.StatusCode.INVALID_ARGUMENT, "cannot specify both object types and relationship filters")
    filters = [convert.filter_from_v1(f) for f in request.optional_relationship_filters]
    for f in filters:
        check_filter(f)
    engine = watcher.engine
    start = (request.optional_start_cursor.token if request.HasField("optional_start_cursor") else "") \
        or engine.revision_token()

    def kept(event: WatchEvent) -> bool:
        if types and event.relationship.resource.type not in types:
            return False
        return not filters or any(f.matches(event.relationship) for f in filters)

    schema_seen = decode_token(start)  # schema versions written after this revision are news
    checkpoint = decode_token(start)  # the last checkpoint sent
    last_sent = time.monotonic()
    head = start
    for events, _ in watcher.watch_rounds(start, context):
        responses: list[tuple[int, int, _W.WatchResponse]] = []  # (revision, order at that revision, response)
        if wanted.relationships:
            for token, group in itertools.groupby(events, key=lambda e: e.token):
                updates = [_update(e) for e in group if kept(e)]
                if updates:
                    responses.append((decode_token(token), 0, _W.WatchResponse(
                        updates=updates, changes_through=convert.zed_token(token))))
        # every change up to `safe` has been read: the head read before this round's query when the round found
        # everything there was (less than a page), else the last change read
        safe_token = events[-1].token if events else head
        if len(events) < watcher.max_page_size and decode_token(head) > decode_token(safe_token):
            safe_token = head
        safe = decode_token(safe_token)
        if wanted.schema:
            for version in _schema_versions(engine, schema_seen, safe):
                responses.append((decode_token(version), 1, _W.WatchResponse(
                    schema_updated=True, changes_through=convert.zed_token(version))))
            schema_seen = max(schema_seen, safe)
        responses.sort(key=lambda r: r[:2])
        for _, _, response in responses:
            yield response
            last_sent = time.monotonic()
        if wanted.checkpoints and (safe > checkpoint or time.monotonic() - last_sent >= HEARTBEAT_SECONDS):
            checkpoint = max(checkpoint, safe)
            yield _W.WatchResponse(is_checkpoint=True, changes_through=convert.zed_token(safe_token))
            last_sent = time.monotonic()
        if wanted.schema or wanted.checkpoints:
            head = engine.revision_token()  # before the next round's query


def _schema_versions(engine: Engine, after: int, through: int) -> list[str]:
    """The tokens of the schema versions written after revision ``after``, up to ``through``, oldest first."""
    if through <= after:
        return []
    return [v.token for v in engine.schema_history() if after < decode_token(v.token) <= through]
