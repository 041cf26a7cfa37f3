"""Fixtures of the client tests: a real server (SQLite in a temp folder, no tokens), seeded with the service tests'
schema and relationships, and free ports for servers that stop and start again."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater.client import Client
from headwater.engine.config import Config
from headwater.engine.service.server import HeadwaterServer
from tests.service.conftest import RELATIONSHIPS, SCHEMA

__all__ = ["free_port", "start_server"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db: Path, address: str = "127.0.0.1:0", **settings: object) -> HeadwaterServer:
    return HeadwaterServer(Config.of(address=address, db=str(db), insecure_no_auth=True, grace_seconds=0.5,
                                     watch_poll_seconds=0.05, **settings)).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HeadwaterServer]:
    """A seeded server keeping an audit log, shared by a module's tests."""
    s = start_server(tmp_path_factory.mktemp("client") / "hw.db", audit=True)
    with Client(s.address, timeout=10.0) as c:
        c.write_schema(SCHEMA, actor="user:admin")
        c.touch(*RELATIONSHIPS, actor="user:admin", reason="seed")
    yield s
    s.stop(grace=0)
