"""The playground's page and JSON API on the HTTP listener (docs/playground.md).

``GET /`` is the page; ``GET /playground/<file>`` its assets (a fixed list read from
the package: nothing else on disk is reachable). The API, every body and answer JSON
unless said otherwise:

========================================================  ==========================================================
``POST /api/playground/workspaces``                        a new scratch workspace: ``{"id", "limits"}``
``GET .../workspaces/{id}``                                its schema, relationship rows and assertion blocks
``PUT .../workspaces/{id}/schema`` ``{"schema"}``           kept as typed; ``{"diagnostics": [{severity, message,
                                                           line, column, end_line, end_column}]}``
``PUT .../workspaces/{id}/relationships``                  ``{"relationships": [row...]}``: all stored when every row
                                                           is good, else nothing (422); ``{"errors": [msg|null...]}``
``PUT .../workspaces/{id}/assertions`` ``{"assertions"}``   the ``assertions:``/``validation:`` YAML, kept
``POST .../workspaces/{id}/assertions``                    run them (``{"assertions"}`` first kept when given)
``POST .../workspaces/{id}/check``                         ``{"resource", "permission", "subject", "context"}`` →
                                                           decision, summary, explanation tree, denial paths
``GET .../workspaces/{id}/lineage?object=``                the lineage graph (``&permission=&subject=``: with the
                                                           explained check whose denial path is highlighted)
``GET .../workspaces/{id}/export``                         the validation file (``application/yaml``)
``PUT .../workspaces/{id}/import`` ``{"yaml"}``             replace the workspace with a validation file
``GET /api/playground/examples/{name}``                    an example's validation file (``{"yaml"}``)
``GET /api/playground/server`` (and ``/check``, ``/lineage``,  the server's own schema and data, read-only: a bearer
``/export``)                                               token with the ``check`` scope
========================================================  ==========================================================

Scratch workspaces need no token (each is its own in-memory engine and cannot reach
the server's store). Bodies must be ``application/json`` (a cross-site form cannot
send that without a preflight, which fails: no CORS header is ever sent) and at most
:data:`MAX_BODY_BYTES`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ....dsl import DslError
from ...errors import EngineError, InvalidRequestError, LimitExceededError, NotFoundError
from ...playground import Limits, Workspace, Workspaces, check_json, diagnostics, lineage_json
from ...playground.files import export_yaml
from ...playground.rows import Row, row_json

__all__ = ["MAX_BODY_BYTES", "Playground"]

MAX_BODY_BYTES = 4 * 1024 * 1024
_STATIC = resources.files("headwater.engine.playground") / "static"
_EXAMPLES = resources.files("headwater.engine.playground") / "examples"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png", ".txt": "text/plain; charset=utf-8"}
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
_API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _answer(value: Any, status: int = 200) -> Response:
    return JSONResponse(value, status_code=status, headers=_API_HEADERS)


def _error(status: int, message: str, **extra: Any) -> Response:
    return _answer({"error": message, **extra}, status)


def _engine_error(exc: Exception) -> Response:
    if isinstance(exc, DslError):
        return _error(400, f"the schema has errors: {exc.errors[0].line}:{exc.errors[0].column}: "
                           f"{exc.errors[0].message}")
    if isinstance(exc, LimitExceededError):
        return _error(413, str(exc))
    if isinstance(exc, NotFoundError):
        return _error(404, str(exc))
    if isinstance(exc, InvalidRequestError):
        return _error(400, str(exc))
    return _error(500, f"{type(exc).__name__}: {exc}")


async def _body(request: Request) -> dict[str, Any] | Response:
    """The request's JSON object, or the response refusing it."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        return _error(415, "send the body as application/json")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"the body is over {MAX_BODY_BYTES} bytes")
    try:
        value = json.loads(body) if body else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _error(400, f"the body is not JSON: {exc}")
    return value if isinstance(value, dict) else _error(400, "the body must be a JSON object")


def _context(value: Any) -> dict[str, Any] | None:
    if value in (None, "", {}):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidRequestError(f"the context is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidRequestError("the context must be a JSON object")
    return value


class Playground:
    """The endpoints over one server: its scratch workspaces, and a read-only view of its engine."""

    def __init__(self, server: Any, limits: Limits | None = None) -> None:
        self.server = server
        self.workspaces = Workspaces(limits)

    # ---------------------------------------------------------------- the page
    def page(self, request: Request) -> Response:
        return self._file(_STATIC / "index.html", ".html")

    def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if "/" in name or "\\" in name or name.startswith(".") or name == "index.html":
            return Response("not found\n", 404, media_type="text/plain")
        suffix = "." + name.rpartition(".")[2]
        return self._file(_STATIC / name, suffix)

    def _file(self, path: Any, suffix: str) -> Response:
        if suffix not in _TYPES or not path.is_file():
            return Response("not found\n", 404, media_type="text/plain")
        return Response(path.read_bytes(), media_type=_TYPES[suffix], headers=_PAGE_HEADERS)

    def example(self, request: Request) -> Response:
        name = request.path_params["name"]
        path = _EXAMPLES / f"{name}.yaml"
        if not name.replace("-", "").isalnum() or not path.is_file():
            return _error(404, f"no example {name!r}")
        return _answer({"name": name, "yaml": path.read_text(encoding="utf-8")})

    # ---------------------------------------------------------------- scratch workspaces
    def create(self, request: Request) -> Response:
        ws = self.workspaces.create()
        return _answer({"id": ws.id, "limits": ws.limits.as_json()}, 201)

    def _workspace(self, request: Request) -> Workspace | Response:
        ws = self.workspaces.get(request.path_params["id"])
        return ws if ws is not None else _error(404, "no such workspace (it may have expired): create a new one")

    def state(self, request: Request) -> Response:
        ws = self._workspace(request)
        return ws if isinstance(ws, Response) else _answer(ws.state_json())

    def _edit(self, work: Callable[[Workspace, dict[str, Any]], Response]) -> Callable[[Request],
                                                                                        Awaitable[Response]]:
        """An endpoint reading a JSON body and doing ``work`` on the workspace in a worker thread."""
        async def endpoint(request: Request) -> Response:
            body = await _body(request)
            if isinstance(body, Response):
                return body
            ws = self._workspace(request)
            if isinstance(ws, Response):
                return ws

            def run() -> Response:
                try:
                    return work(ws, body)
                except (EngineError, DslError) as exc:
                    return _engine_error(exc)

            return await run_in_threadpool(run)

        return endpoint

    def routes(self) -> dict[str, Callable[[Request], Any]]:
        """The endpoints by name (``app.routes()`` gives each its path, methods and scope)."""
        return {"page": self.page, "asset": self.asset, "example": self.example, "create": self.create,
                "state": self.state, "schema": self._edit(_put_schema), "relationships": self._edit(_put_rows),
                "assertions": self._edit(_put_assertions), "run": self._edit(_post_assertions),
                "check": self._edit(_post_check), "lineage": self.lineage, "export": self.export,
                "import": self._edit(_put_import), "server_state": self.server_state,
                "server_check": self.server_check, "server_lineage": self.server_lineage,
                "server_export": self.server_export}

    def lineage(self, request: Request) -> Response:
        ws = self._workspace(request)
        if isinstance(ws, Response):
            return ws
        try:
            return _answer(_lineage(ws.engine(), request, ws.limits.max_lineage_nodes))
        except (EngineError, DslError) as exc:
            return _engine_error(exc)

    def export(self, request: Request) -> Response:
        ws = self._workspace(request)
        if isinstance(ws, Response):
            return ws
        return Response(ws.export(), media_type="application/yaml; charset=utf-8",
                        headers={**_API_HEADERS, "Content-Disposition": 'attachment; filename="workspace.yaml"'})

    # ---------------------------------------------------------------- the server's own data, read-only
    def server_state(self, request: Request) -> Response:
        try:
            schema, rows = self._server_data()
        except EngineError as exc:
            return _engine_error(exc)
        return _answer({"id": "server", "read_only": True, "schema": schema, "diagnostics": diagnostics(schema),
                        "relationships": [row_json(r) for r in rows], "assertions": "",
                        "limits": self.workspaces.limits.as_json()})

    def _server_data(self) -> tuple[str, list[Row]]:
        engine = self.server.engine
        try:
            schema = engine.read_schema().text
        except NotFoundError:
            schema = ""
        page = engine.read_relationships(limit=self.workspaces.limits.max_relationships)
        return schema, [Row(str(r)) for r in page.relationships]

    async def server_check(self, request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, Response):
            return body
        try:
            return _answer(await run_in_threadpool(_check, self.server.engine, body))
        except EngineError as exc:
            return _engine_error(exc)

    def server_lineage(self, request: Request) -> Response:
        try:
            return _answer(_lineage(self.server.engine, request, self.workspaces.limits.max_lineage_nodes))
        except EngineError as exc:
            return _engine_error(exc)

    def server_export(self, request: Request) -> Response:
        try:
            schema, rows = self._server_data()
        except EngineError as exc:
            return _engine_error(exc)
        return Response(export_yaml(schema, rows, ""), media_type="application/yaml; charset=utf-8",
                        headers={**_API_HEADERS, "Content-Disposition": 'attachment; filename="server.yaml"'})


def _lineage(engine: Any, request: Request, max_nodes: int) -> dict[str, Any]:
    q = request.query_params
    if not q.get("object"):
        raise InvalidRequestError("give the object: ?object=type:id")
    return lineage_json(engine, q["object"], max_nodes=max_nodes, permission=q.get("permission") or None,
                        subject=q.get("subject") or None, context=_context(q.get("context")))


def _check(engine: Any, body: dict[str, Any]) -> dict[str, Any]:
    missing = [k for k in ("resource", "permission", "subject") if not isinstance(body.get(k), str) or not body[k]]
    if missing:
        raise InvalidRequestError(f"give the {', '.join(missing)}")
    return check_json(engine, body["resource"].strip(), body["permission"].strip(), body["subject"].strip(),
                      _context(body.get("context")))


def _put_schema(ws: Workspace, body: dict[str, Any]) -> Response:
    return _answer({"diagnostics": ws.set_schema(body.get("schema", ""))})


def _put_rows(ws: Workspace, body: dict[str, Any]) -> Response:
    errors = ws.set_rows(body.get("relationships"))
    stored = not any(errors)
    return _answer({"stored": stored, "errors": errors}, 200 if stored else 422)


def _put_assertions(ws: Workspace, body: dict[str, Any]) -> Response:
    ws.set_assertions(body.get("assertions", ""))
    return _answer({"stored": True})


def _post_assertions(ws: Workspace, body: dict[str, Any]) -> Response:
    if "assertions" in body:
        ws.set_assertions(body["assertions"])
    return _answer(ws.run_assertions())


def _post_check(ws: Workspace, body: dict[str, Any]) -> Response:
    return _answer(_check(ws.engine(), body))


def _put_import(ws: Workspace, body: dict[str, Any]) -> Response:
    text = body.get("yaml")
    if not isinstance(text, str):
        raise InvalidRequestError("give the validation file as `yaml`")
    ws.import_text(text)
    return _answer(ws.state_json())
