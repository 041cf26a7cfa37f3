"""Fixtures for the playground: a real server (in memory, the service tests' tokens) with an HTTP listener on
127.0.0.1:0, and a small JSON client of its API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headwater.engine.config import Config
from headwater.engine.service.server import HeadwaterServer
from tests.service.conftest import TOKENS, write_token_file

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "engine/playground/examples/ai-lineage.yaml"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeadwaterServer]:
    token_file = write_token_file(tmp_path_factory.mktemp("tokens") / "tokens.toml")
    s = HeadwaterServer(Config.of(address="127.0.0.1:0", db=":memory:", token_file=str(token_file),
                                  http_address="127.0.0.1:0")).start()
    yield s
    s.stop(grace=0)


class Api:
    """Calls of the playground API: ``call(method, path, body)`` → (status, decoded JSON or text, headers)."""

    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
             content_type: str = "application/json", raw: bytes | None = None) -> tuple[int, Any, dict[str, str]]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", content_type)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                status, payload, headers = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            status, payload, headers = exc.code, exc.read(), dict(exc.headers)
        kind = headers.get("content-type", "")
        return status, json.loads(payload) if kind.startswith("application/json") else payload.decode(), headers

    def workspace(self) -> str:
        status, body, _ = self.call("POST", "/api/playground/workspaces")
        assert status == 201, body
        return "/api/playground/workspaces/" + body["id"]

    def example(self) -> str:
        """A new workspace holding the AI-lineage example."""
        ws = self.workspace()
        status, body, _ = self.call("PUT", ws + "/import", {"yaml": EXAMPLE.read_text()})
        assert status == 200, body
        return ws


@pytest.fixture(scope="module")
def api(server: HeadwaterServer) -> Api:
    return Api(f"http://127.0.0.1:{server.http.port}")


__all__ = ["EXAMPLE", "REPO", "TOKENS", "Api"]
