"""The HTTP listener's routes: the one place where endpoints are added, each declaring the token it needs.

:func:`routes` lists every route the listener serves (``/metrics``, the OpenLineage
ingestion ``/api/v1/lineage``, the playground's page and API). A :class:`Route` says what
it needs of the caller: nothing (``scope=None``), a bearer token of the token file
with a scope (``scope="check"``, checked like gRPC's: ``Authorization: Bearer
<token>``, 401 without a valid token, 403 without the scope; nothing is checked when
the server runs with ``--insecure-no-auth``; the caller's token name is in
``request.state.caller``), or a token of its own (``token``: the
SHA-256 of the secret, as ``metrics_token_file`` gives ``/metrics``). Endpoints are
plain functions of a Starlette ``Request``; Starlette runs them on its worker threads,
never on the event loop, so an endpoint may block on the engine; an endpoint that
reads the request body is ``async`` and hands its blocking work to a thread itself.

Example::

    >>> app = build_app([Route("/hello", lambda request: PlainTextResponse("hi"))], tokens=lambda: None)
    >>> sorted(r.path for r in app.routes)
    ['/hello']
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route as StarletteRoute

from ..auth import TokenSet
from ..errors import UnauthenticatedError
from .openlineage import lineage_endpoint
from .playground import Playground

__all__ = ["PlainTextResponse", "Route", "RouteContext", "build_app", "routes"]


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint: its path, the function answering it, its HTTP methods and what it needs of the caller.

    ``scope``: a token of the token file with that scope (None: no token); ``token``: instead, the SHA-256 digest
    of a secret of the route's own (``/metrics`` with ``metrics_token_file``)."""

    path: str
    endpoint: Callable[[Request], Any]
    methods: tuple[str, ...] = ("GET",)
    scope: str | None = None
    token: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class RouteContext:
    """What the routes are built from: the server's metrics (None: off), the token of /metrics (its digest), and
    the server object itself for routes that need more (the engine behind it, its config)."""

    metrics: Any = None
    metrics_token: bytes | None = None
    server: Any = None
    playground: bool = True


def routes(ctx: RouteContext) -> list[Route]:
    """Every route of the HTTP listener (add new endpoints here)."""
    out: list[Route] = []
    if ctx.metrics is not None:
        metrics = ctx.metrics

        def scrape(request: Request) -> Response:
            body, content_type = metrics.exposition()
            return Response(body, media_type=content_type)

        out.append(Route("/metrics", scrape, token=ctx.metrics_token))
    if ctx.server is not None:
        out.append(Route("/api/v1/lineage", lineage_endpoint(ctx.server), methods=("POST",), scope="write"))
    if ctx.server is not None and ctx.playground:
        # The playground (docs/playground.md): the page, scratch workspaces (no token: each is its own in-memory
        # engine), and the server's own data read-only (the check scope).
        play = Playground(ctx.server).routes()
        ws = "/api/playground/workspaces/{id}"
        out += [Route("/", play["page"]), Route("/playground/{name}", play["asset"]),
                Route("/api/playground/examples/{name}", play["example"]),
                Route("/api/playground/workspaces", play["create"], methods=("POST",)),
                Route(ws, play["state"]), Route(ws + "/schema", play["schema"], methods=("PUT",)),
                Route(ws + "/relationships", play["relationships"], methods=("PUT",)),
                Route(ws + "/assertions", play["assertions"], methods=("PUT",)),
                Route(ws + "/assertions", play["run"], methods=("POST",)),
                Route(ws + "/check", play["check"], methods=("POST",)), Route(ws + "/lineage", play["lineage"]),
                Route(ws + "/export", play["export"]), Route(ws + "/import", play["import"], methods=("PUT",)),
                Route("/api/playground/server", play["server_state"], scope="check"),
                Route("/api/playground/server/check", play["server_check"], methods=("POST",), scope="check"),
                Route("/api/playground/server/lineage", play["server_lineage"], scope="check"),
                Route("/api/playground/server/export", play["server_export"], scope="check")]
    return out


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, secret = header.strip().partition(" ")
    return secret.strip() if scheme.lower() == "bearer" and secret.strip() else None


def _refusal(status: int, message: str) -> Response:
    return PlainTextResponse(message + "\n", status_code=status, headers={"WWW-Authenticate": "Bearer"})


def _refused(route: Route, tokens: Callable[[], TokenSet | None], request: Request) -> Response | None:
    """Why ``request`` may not call ``route`` (a 401 or 403 response), or None; the caller's token name, when
    there is one, goes to ``request.state.caller``."""
    request.state.caller = None
    if route.token is not None:
        secret = _bearer(request)
        presented = hashlib.sha256((secret or "").encode("utf-8", "surrogateescape")).digest()
        if secret is None or not hmac.compare_digest(presented, route.token):
            return _refusal(401, "missing or invalid bearer token")
        return None
    known = tokens()
    if known is not None:  # None: the server runs without authentication
        try:
            entry = known.identify([("authorization", request.headers.get("authorization", ""))]
                                   if "authorization" in request.headers else [])
        except UnauthenticatedError as exc:
            return _refusal(401, str(exc))
        if route.scope not in entry.scopes:
            return PlainTextResponse(f"token {entry.name!r} lacks the {route.scope} scope\n", status_code=403)
        request.state.caller = entry.name
    return None


def _guarded(route: Route, tokens: Callable[[], TokenSet | None]) -> Callable[[Request], Any]:
    """``route.endpoint`` behind the check of what it needs (see :class:`Route`); an ``async`` endpoint (one that
    reads the request body) stays one."""
    endpoint = route.endpoint
    if route.token is None and route.scope is None:
        return endpoint
    if inspect.iscoroutinefunction(endpoint):
        async def guarded_async(request: Request) -> Response:
            refusal = _refused(route, tokens, request)
            return refusal if refusal is not None else await endpoint(request)

        return guarded_async

    def guarded(request: Request) -> Response:
        refusal = _refused(route, tokens, request)
        return refusal if refusal is not None else endpoint(request)

    return guarded


def build_app(all_routes: Sequence[Route], *, tokens: Callable[[], TokenSet | None]) -> Starlette:
    """The ASGI application serving ``all_routes``; ``tokens`` gives the token set in force at each request (None:
    no authentication), so a reloaded token file applies at once."""
    return Starlette(routes=[StarletteRoute(r.path, _guarded(r, tokens), methods=list(r.methods))
                             for r in all_routes])
