"""``POST /api/v1/lineage``: OpenLineage events over HTTP, where the OpenLineage HTTP transport posts them.

The body is one event (a JSON object, as the OpenLineage clients send) or a batch
(a JSON array), optionally gzip-compressed (``Content-Encoding: gzip``, the
transport's ``compression: gzip``). A batch is recorded atomically (see
engine/openlineage/ingest.py). Answers, each with a JSON body:

======  =========================================================================
200     recorded: ``{"revision", "written", "events", "recorded", "ignored",
        "relationships"}`` (``written`` false: everything was already stored)
400     not JSON, not an OpenLineage event, or not mappable: ``{"error"}`` names
        the event and the problem; nothing is stored
409     it would make the lineage graph cyclic: ``{"error"}`` names the cycle;
        nothing is stored
413     a body over 16 MiB (after decompression)
503     the store is busy or unreachable (``Retry-After``): send it again
======  =========================================================================

The caller needs a token with the ``write`` scope (``Authorization: Bearer``); its
name is the audit actor of the write.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ...errors import (
    EngineError,
    InvalidRequestError,
    LineageCycleError,
    PreconditionFailedError,
    RequestStoppedError,
    StoreUnavailableError,
    WriteConflictError,
)
from ...openlineage import ingest, load_mapping

__all__ = ["MAX_BODY_BYTES", "lineage_endpoint"]

MAX_BODY_BYTES = 16 * 1024 * 1024


def _error(status: int, message: str, **headers: str) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


async def _events(request: Request) -> list[Any] | Response:
    """The decoded events of the request, or the response refusing it."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"the body is over {MAX_BODY_BYTES} bytes")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        try:
            body = bytearray(gzip.GzipFile(fileobj=io.BytesIO(bytes(body))).read(MAX_BODY_BYTES + 1))
        except (OSError, EOFError, zlib.error) as exc:
            return _error(400, f"the body is not valid gzip: {exc}")
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"the body is over {MAX_BODY_BYTES} bytes once decompressed")
    elif encoding not in ("identity", ""):
        return _error(415, f"Content-Encoding {encoding!r} is not supported (gzip or none)")
    try:
        decoded = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _error(400, f"the body is not JSON: {exc}")
    events = decoded if isinstance(decoded, list) else [decoded]
    if not events:
        return _error(400, "an empty batch: send one event or a JSON array of events")
    return events


def lineage_endpoint(server: Any) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint of ``server`` (its engine and its ``openlineage_mapping``, read once: a bad mapping file stops
    the start)."""
    mapping = load_mapping(server.config.server.openlineage_mapping)

    async def endpoint(request: Request) -> Response:
        events = await _events(request)
        if isinstance(events, Response):
            return events
        caller = getattr(request.state, "caller", None)
        try:
            result = await run_in_threadpool(ingest, server.engine, events, mapping, actor=caller or "openlineage")
        except LineageCycleError as exc:
            return _error(409, str(exc))
        except InvalidRequestError as exc:
            return _error(400, str(exc))
        except (StoreUnavailableError, WriteConflictError, RequestStoppedError) as exc:
            return _error(503, str(exc), **{"Retry-After": "1"})
        except PreconditionFailedError as exc:
            return _error(409, str(exc))
        except EngineError as exc:
            return _error(500, f"{type(exc).__name__}: {exc}")
        return JSONResponse(result.as_json())

    return endpoint
