"""Fixtures for the CLI tests: the ai-lineage example in a SQLite file, and servers (plaintext and TLS) over copies.

``targets`` gives, for each way a command can reach data, the arguments that select it: ``db`` (``--db FILE``),
``server`` (``--server ADDR --token T``) and ``tls`` (the same over TLS, ``--tls-ca``); each has the example's
schema and relationships, an audit log and one recorded decision.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from headwater.engine import Config, Engine
from headwater.engine.audit import AuditLog
from headwater.engine.client import Client, ClientTls
from headwater.engine.service.server import HeadwaterServer
from tests.service.conftest import TOKENS, write_token_file
from tests.service import test_tls

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "ai-lineage"
POLICY = EXAMPLE / "policy.zed"
ADMIN = TOKENS["admin"][0]
certs = test_tls.certs  # the TLS certificates fixture (a test CA and a server certificate for 127.0.0.1)


def example_relationships() -> list[str]:
    """The relationships block of examples/ai-lineage/validation.yaml, one SpiceDB string each."""
    lines = (EXAMPLE / "validation.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("relationships: |-") + 1
    out = []
    for line in lines[start:]:
        if line and not line.startswith(" "):
            break
        text = line.strip()
        if text and not text.startswith("//"):
            out.append(text)
    return out


@dataclass
class Target:
    """One way to reach the example's data: the CLI arguments, and what the tests need to know of it."""

    name: str
    args: list[str]
    token: str = ""  # a revision token to watch from
    decision: int = 0  # the id of a recorded decision, to replay
    extra: dict[str, str] = field(default_factory=dict)


def _seed_database(path: Path) -> tuple[str, int]:
    """The example in an audited SQLite file, with one recorded decision: (a revision token, the decision's id)."""
    with Engine.open(str(path), config=Config.of(audit=True)) as engine:
        engine.write_schema(POLICY.read_text(encoding="utf-8"))
        token = engine.touch(*example_relationships(), actor="user:stew", reason="seed").token
        engine.check("dataset:claims", "read", "user:alice")
    with AuditLog(Path(f"{path}.audit")) as log:
        decision = log.query(kind="decision", limit=1).records[0].id
    return token, decision


def _seed_server(client: Client) -> tuple[str, int]:
    client.write_schema(POLICY.read_text(encoding="utf-8"))
    token = client.touch(*example_relationships(), actor="user:stew", reason="seed").token
    client.check("dataset:claims", "read", "user:alice")
    deadline = time.monotonic() + 10
    while True:  # the server records decisions in the background
        records = client.audit_query(kind="decision", limit=1).records
        if records or time.monotonic() > deadline:
            return token, records[0].id
        time.sleep(0.05)


@pytest.fixture()
def make_mtls_server(tmp_path: Path, certs: Path) -> Iterator[Callable[[], str]]:
    """Start a server that requires client certificates signed by the test CA; its address."""
    started: list[HeadwaterServer] = []

    def make() -> str:
        token_file = write_token_file(tmp_path / "tokens.toml")
        server = HeadwaterServer(Config.of(address="127.0.0.1:0", db=str(tmp_path / "mtls.db"),
                                           token_file=str(token_file), tls_cert=str(certs / "server.pem"),
                                           tls_key=str(certs / "server.key"), tls_client_ca=str(certs / "ca.pem"),
                                           grace_seconds=1.0)).start()
        started.append(server)
        return server.address

    yield make
    for server in started:
        server.stop(grace=0)


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory, certs: Path) -> Iterator[dict[str, Target]]:
    root = tmp_path_factory.mktemp("cli-data")
    db = root / "local.db"
    token, decision = _seed_database(db)
    token_file = write_token_file(root / "tokens.toml")
    servers = []
    out = {"db": Target("db", ["--db", str(db)], token, decision)}
    for name, tls in (("server", {}), ("tls", {"tls_cert": str(certs / "server.pem"),
                                               "tls_key": str(certs / "server.key")})):
        server = HeadwaterServer(Config.of(address="127.0.0.1:0", db=str(root / f"{name}.db"),
                                           token_file=str(token_file), audit=True, watch_poll_seconds=0.05,
                                           grace_seconds=1.0, **tls)).start()
        servers.append(server)
        client_tls = ClientTls(ca=str(certs / "ca.pem")) if tls else False
        with Client(server.address, token=ADMIN, tls=client_tls, timeout=10) as c:
            token, decision = _seed_server(c)
        args = ["--server", server.address, "--token", ADMIN] + (["--tls-ca", str(certs / "ca.pem")] if tls else [])
        out[name] = Target(name, args, token, decision, {"address": server.address})
    yield out
    for server in servers:
        server.stop(grace=0)
