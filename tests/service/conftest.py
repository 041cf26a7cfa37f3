"""Fixtures for the gRPC service tests: real servers on 127.0.0.1 (port 0) and clients with scoped tokens."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from headwater.engine.client import Client
from headwater.engine.service.handlers import ACCESS_LOGGER
from headwater.engine.config import Config
from headwater.engine.service.server import HeadwaterServer

SCHEMA = """use expiration

caveat on_tuesday(day string) {
    day == "tue"
}

classification sensitivity {
    levels public < internal < confidential
    categories pii
    cleared: user
}

definition user {}

definition group {
    relation member: user | group#member
}

definition document {
    relation owner: user
    relation viewer: user | user:* | group#member | user with on_tuesday
    relation banned: user
    relation label: sensitivity
    relation steward: user
    declassify scrubbed: sensitivity by steward
    lineage derived_from: document
    permission edit = owner
    permission view = (viewer + edit) - banned
    permission read = view & cleared
}
"""

RELATIONSHIPS = [
    "document:readme#owner@user:ann",
    "document:readme#viewer@user:bob",
    "document:readme#viewer@group:eng#member",
    "document:readme#banned@user:mallory",
    "group:eng#member@user:cat",
    "document:public#viewer@user:*",
    "document:tuesday#viewer@user:dan[on_tuesday]",
    "document:raw#label@sensitivity:confidential",
    "document:raw#label@sensitivity:pii",
    "document:raw#viewer@user:bob",
    "document:clean#derived_from@document:raw",
    "document:clean#steward@user:stew",
    "document:report#derived_from@document:clean",
    "document:report#viewer@user:bob",
    "sensitivity:confidential#cleared@user:bob",
    "sensitivity:pii#cleared@user:bob",
]

# name -> (secret, scopes)
TOKENS = {
    "reader": ("reader-token-0123456789", ["check"]),
    "writer": ("writer-token-0123456789", ["check", "write"]),
    "schemer": ("schemer-token-0123456789", ["schema"]),
    "auditor": ("auditor-token-0123456789", ["audit"]),
    "admin": ("admin-token-0123456789abc", ["check", "write", "schema", "audit"]),
}

#: Small limits so that tests can reach them cheaply.
LIMITS = dict(max_updates_per_write=50, max_bulk_check_items=20, max_caveat_context_bytes=512, max_page_size=100,
              max_message_bytes=1024 * 1024, max_depth=20, watch_poll_seconds=0.05, grace_seconds=2.0)


def write_token_file(path: Path) -> Path:
    lines = []
    for name, (secret, scopes) in TOKENS.items():
        lines += ["[[tokens]]", f'name = "{name}"', f"scopes = {scopes!r}".replace("'", '"'), f'token = "{secret}"', ""]
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_token_file(tmp_path_factory.mktemp("tokens") / "tokens.toml")


@pytest.fixture(scope="module")
def make_server(tmp_path_factory: pytest.TempPathFactory, token_file: Path) -> Iterator[Callable[..., HeadwaterServer]]:
    """Start a server (SQLite in a temp folder, the test tokens, small limits); settings override the defaults."""
    started: list[HeadwaterServer] = []

    def make(**settings: Any) -> HeadwaterServer:
        values: dict[str, Any] = dict(address="127.0.0.1:0", db=str(tmp_path_factory.mktemp("db") / "hw.db"),
                                      token_file=str(token_file), **LIMITS)
        if settings.get("insecure_no_auth"):
            values.pop("token_file")
        values.update(settings)
        server = HeadwaterServer(Config.of(**values)).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop(grace=0)


def client_for(server: HeadwaterServer, who: str | None = "admin", **kwargs: Any) -> Client:
    token = TOKENS[who][0] if who else None
    return Client(server.address, token=token, timeout=kwargs.pop("timeout", 10.0), **kwargs)


def seed(client: Client) -> str:
    """Write the test schema and relationships; the revision token of the last write."""
    client.write_schema(SCHEMA, actor="user:admin")
    return client.touch(*RELATIONSHIPS, actor="user:admin", reason="seed").token


@pytest.fixture(scope="module")
def server(make_server: Callable[..., HeadwaterServer]) -> HeadwaterServer:
    """A seeded server shared by a module's tests (tests that change data use their own)."""
    s = make_server()
    with client_for(s) as c:
        seed(c)
    return s


@pytest.fixture()
def admin(server: HeadwaterServer) -> Iterator[Client]:
    with client_for(server) as c:
        yield c


class AccessLog(logging.Handler):
    """Collects the structured access-log records."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[dict[str, Any]] = []
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(dict(getattr(record, "fields", {}) or {}))
        self.texts.append(self.format(record))


@pytest.fixture()
def access_log() -> Iterator[AccessLog]:
    from headwater.engine.service.server import JsonFormatter

    handler = AccessLog()
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(ACCESS_LOGGER)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old_level)
