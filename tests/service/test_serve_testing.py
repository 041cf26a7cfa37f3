"""`headwater serve-testing`: one isolated, empty in-memory store per bearer token, through both APIs' clients.

Like `spicedb serve-testing`: the official `authzed` client (sync and async) and Headwater's own
client call one server with different tokens; each token sees only its own schema and
relationships. A fresh token's store is empty, and ReadSchema answers NOT_FOUND there, as
SpiceDB v1.54 was measured to on an empty store ("no schema has been defined").
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from authzed.api.v1 import (
    AsyncClient,
    CheckPermissionRequest,
    CheckPermissionResponse,
    Client,
    LookupResourcesRequest,
    ReadRelationshipsRequest,
    ReadSchemaRequest,
    Relationship,
    RelationshipFilter,
    RelationshipUpdate,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
)
from grpcutil import insecure_bearer_token_credentials
from headwater.client import NO_RETRY
from headwater.engine.client import Client as HwClient
from headwater.engine.client import RemoteError
from headwater.engine.config import Config
from headwater.engine.errors import NotFoundError
from headwater.engine.service.testing import TestingServer, bearer_token

from .test_authzed_api import obj, subj
from .test_serve import _wait_for_serving

HAS = CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION
NO = CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION

ALICE_SCHEMA = """definition user {}

definition document {
    relation viewer: user
    permission view = viewer
}
"""

BOB_SCHEMA = """definition user {}

definition team {
    relation member: user
}

definition document {
    relation viewer: user | team#member
    permission view = viewer
}
"""


@pytest.fixture(scope="module")
def server() -> Iterator[TestingServer]:
    srv = TestingServer(Config.of(address="127.0.0.1:0", grace_seconds=2)).start()
    yield srv
    srv.stop()


def v1(server: TestingServer, token: str) -> Client:
    return Client(server.address, insecure_bearer_token_credentials(token))


def touch(client: Client, *rels: str) -> None:
    updates = []
    for rel in rels:
        resource, _, subject = rel.partition("@")
        ref, _, relation = resource.partition("#")
        updates.append(RelationshipUpdate(operation=RelationshipUpdate.OPERATION_TOUCH, relationship=Relationship(
            resource=obj(ref), relation=relation, subject=subj(subject))))
    client.WriteRelationships(WriteRelationshipsRequest(updates=updates))


def check(client: Client, resource: str, permission: str, subject: str) -> int:
    return client.CheckPermission(CheckPermissionRequest(resource=obj(resource), permission=permission,
                                                         subject=subj(subject))).permissionship


def documents(client: Client) -> list[str]:
    found = client.ReadRelationships(ReadRelationshipsRequest(
        relationship_filter=RelationshipFilter(resource_type="document")))
    return sorted(f"{r.relationship.resource.object_id}#{r.relationship.relation}@"
                  f"{r.relationship.subject.object.object_type}:{r.relationship.subject.object.object_id}"
                  for r in found)


def lookup(client: Client, subject: str) -> list[str]:
    return sorted(r.resource_object_id for r in client.LookupResources(LookupResourcesRequest(
        resource_object_type="document", permission="view", subject=subj(subject))))


def test_two_tokens_two_stores_through_the_authzed_client(server: TestingServer) -> None:
    alice, bob = v1(server, "alice-token-authzed"), v1(server, "bob-token-authzed")
    alice.WriteSchema(WriteSchemaRequest(schema=ALICE_SCHEMA))
    bob.WriteSchema(WriteSchemaRequest(schema=BOB_SCHEMA))
    touch(alice, "document:a1#viewer@user:ann", "document:shared#viewer@user:ann")
    touch(bob, "document:b1#viewer@user:ann", "document:shared#viewer@team:core#member",
          "team:core#member@user:ben")

    assert "team" not in alice.ReadSchema(ReadSchemaRequest()).schema_text
    assert "definition team" in bob.ReadSchema(ReadSchemaRequest()).schema_text
    assert documents(alice) == ["a1#viewer@user:ann", "shared#viewer@user:ann"]
    assert documents(bob) == ["b1#viewer@user:ann", "shared#viewer@team:core"]
    assert check(alice, "document:a1", "view", "user:ann") == HAS
    assert check(alice, "document:b1", "view", "user:ann") == NO
    assert check(bob, "document:a1", "view", "user:ann") == NO
    assert check(bob, "document:shared", "view", "user:ben") == HAS
    assert check(alice, "document:shared", "view", "user:ben") == NO
    assert lookup(alice, "user:ann") == ["a1", "shared"]
    assert lookup(bob, "user:ann") == ["b1"]
    assert lookup(bob, "user:ben") == ["shared"]
    # Bob's schema is not Alice's: her store has no `team` definition (FAILED_PRECONDITION, as in SpiceDB).
    with pytest.raises(grpc.RpcError) as refused:
        check(alice, "team:core", "member", "user:ben")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # A third token starts empty: no schema (NOT_FOUND, as SpiceDB), no relationships.
    carol = v1(server, "carol-token-authzed")
    with pytest.raises(grpc.RpcError) as empty:
        carol.ReadSchema(ReadSchemaRequest())
    assert empty.value.code() == grpc.StatusCode.NOT_FOUND
    carol.WriteSchema(WriteSchemaRequest(schema=ALICE_SCHEMA))
    assert documents(carol) == [] and lookup(carol, "user:ann") == []
    assert documents(alice) == ["a1#viewer@user:ann", "shared#viewer@user:ann"]  # unchanged by the others


def test_two_tokens_two_stores_through_headwaters_client(server: TestingServer) -> None:
    with (HwClient(server.address, token="alice-token-hw", timeout=10) as alice,
          HwClient(server.address, token="bob-token-hw", timeout=10) as bob,
          HwClient(server.address, token="carol-token-hw", timeout=10) as carol):
        alice.write_schema(ALICE_SCHEMA)
        bob.write_schema(BOB_SCHEMA)
        alice.touch("document:a1#viewer@user:ann")
        bob.touch("document:b1#viewer@user:ann", "team:core#member@user:ben")

        assert "team" not in alice.read_schema()[0] and "definition team" in bob.read_schema()[0]
        assert [str(r) for r in alice.read_relationships().relationships] == ["document:a1#viewer@user:ann"]
        assert sorted(str(r) for r in bob.read_relationships().relationships) == [
            "document:b1#viewer@user:ann", "team:core#member@user:ben"]
        assert alice.check("document:a1", "view", "user:ann").allowed
        assert not alice.check("document:b1", "view", "user:ann").allowed
        assert not bob.check("document:a1", "view", "user:ann").allowed
        assert [r.resource_id for r in alice.lookup_resources("document", "view", "user:ann").results] == ["a1"]
        assert [r.resource_id for r in bob.lookup_resources("document", "view", "user:ann").results] == ["b1"]
        with pytest.raises(NotFoundError):
            carol.read_schema()
        # Every scope is granted: the schema history needs `audit` on `serve`.
        assert [v.version for v in alice.schema_history()] == [1]


def test_one_token_is_one_store_in_both_apis(server: TestingServer) -> None:
    with HwClient(server.address, token="both-apis-token", timeout=10) as hw:
        hw.write_schema(ALICE_SCHEMA)
        written = hw.touch("document:x#viewer@user:ann").token
    spicedb = v1(server, "both-apis-token")
    assert "definition document" in spicedb.ReadSchema(ReadSchemaRequest()).schema_text
    assert documents(spicedb) == ["x#viewer@user:ann"]
    assert written.startswith("hw1_")


def test_the_async_client_gets_its_own_store(server: TestingServer) -> None:
    async def run() -> tuple[int, str]:
        client = AsyncClient(server.address, insecure_bearer_token_credentials("async-token"))
        await client.WriteSchema(WriteSchemaRequest(schema=ALICE_SCHEMA))
        await client.WriteRelationships(WriteRelationshipsRequest(updates=[RelationshipUpdate(
            operation=RelationshipUpdate.OPERATION_TOUCH, relationship=Relationship(
                resource=obj("document:z"), relation="viewer", subject=subj("user:zed")))]))
        answer = await client.CheckPermission(CheckPermissionRequest(
            resource=obj("document:z"), permission="view", subject=subj("user:zed")))
        return answer.permissionship, (await client.ReadSchema(ReadSchemaRequest())).schema_text

    permissionship, text = asyncio.run(run())
    assert permissionship == HAS and "definition document" in text
    with pytest.raises(grpc.RpcError) as empty:
        v1(server, "not-the-async-token").ReadSchema(ReadSchemaRequest())
    assert empty.value.code() == grpc.StatusCode.NOT_FOUND


def test_calls_without_a_token_share_one_anonymous_store(server: TestingServer) -> None:
    assert bearer_token(None) == "" and bearer_token([("authorization", "Basic abc")]) == ""
    assert bearer_token([("authorization", "bearer  t1 ")]) == "t1"
    with HwClient(server.address, timeout=10) as first, HwClient(server.address, timeout=10) as second:
        first.write_schema(ALICE_SCHEMA)
        first.touch("document:anon#viewer@user:ann")
        assert second.check("document:anon", "view", "user:ann").allowed
    with HwClient(server.address, token="anon-is-not-me", timeout=10) as named, pytest.raises(NotFoundError):
        named.read_schema()


def test_the_least_recently_used_store_is_forgotten_beyond_max_stores() -> None:
    with TestingServer(Config.of(address="127.0.0.1:0", grace_seconds=1), max_stores=2) as srv:
        clients = {name: HwClient(srv.address, token=name, timeout=10) for name in ("one", "two", "three")}
        try:
            clients["one"].write_schema(ALICE_SCHEMA)
            clients["two"].write_schema(ALICE_SCHEMA)
            clients["one"].read_schema()  # "one" is used again: "two" is now the least recently used
            clients["three"].write_schema(ALICE_SCHEMA)
            assert len(srv.stores) == 2
            assert clients["one"].read_schema()[0].startswith("definition user")
            with pytest.raises(NotFoundError):  # forgotten: a new, empty store
                clients["two"].read_schema()
        finally:
            for c in clients.values():
                c.close()


def test_stopping_the_server_ends_a_tokens_watch_at_once() -> None:
    srv = TestingServer(Config.of(address="127.0.0.1:0", grace_seconds=5, watch_poll_seconds=0.05)).start()
    try:
        # no client retries: the test is about the server ending the stream, not the client riding out a restart
        with HwClient(srv.address, token="watcher", timeout=10, retry=NO_RETRY) as c, \
                ThreadPoolExecutor(1) as pool:
            c.write_schema(ALICE_SCHEMA)
            token = c.touch("document:w#viewer@user:ann").token
            following = pool.submit(lambda: list(c.follow(token, timeout=20)))
            time.sleep(0.3)
            started = time.monotonic()
            srv.stop()
            with pytest.raises(RemoteError) as ended:  # drained with the server, not cancelled after the grace
                following.result(timeout=10)
    finally:
        srv.stop()
    assert ended.value.code == "UNAVAILABLE"
    assert time.monotonic() - started < 4


@dataclass
class Command:
    """A ``headwater serve-testing`` process: its "serving" line, and (after the block) its exit code and log."""

    ready: dict[str, Any]
    lines: list[str]
    code: int | None = None


@contextmanager
def serve_testing_command(*flags: str) -> Iterator[Command]:
    """Run ``headwater serve-testing FLAGS`` until it serves; SIGTERM it after the block and wait for its exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    lines: list[str] = []
    with subprocess.Popen([sys.executable, "-m", "headwater.engine", "serve-testing", *flags],
                          env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
        reader.start()
        try:
            command = Command(_wait_for_serving(proc, lines, timeout=60), lines)
            yield command
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
        reader.join(5)
    command.code = code


def test_serve_testing_command_logs_its_port_answers_and_stops_on_sigterm() -> None:
    with serve_testing_command("--address", "127.0.0.1:0", "--readonly-address", "off") as command:
        ready = command.ready
        assert ready["port"] > 0 and ready["mode"] == "testing" and ready["db"] == ":memory:"
        assert "readonly_address" not in ready
        address = f"127.0.0.1:{ready['port']}"
        v1_at(address, "cli-one").WriteSchema(WriteSchemaRequest(schema=ALICE_SCHEMA))
        with pytest.raises(grpc.RpcError) as empty:
            v1_at(address, "cli-two").ReadSchema(ReadSchemaRequest())
        assert empty.value.code() == grpc.StatusCode.NOT_FOUND
    text = "".join(command.lines)
    assert command.code == 0, text
    assert "cli-one" not in text and "cli-two" not in text  # tokens are never logged
    assert "AUTHENTICATION IS OFF" not in text


def v1_at(address: str, token: str) -> Client:
    return Client(address, insecure_bearer_token_credentials(token))


def test_serve_testing_refuses_a_busy_address_and_a_bad_max_stores(server: TestingServer,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from headwater.engine.cli import main

    assert main(["serve-testing", "--address", server.address, "--readonly-address", "off"]) == 2
    assert "cannot listen on" in capsys.readouterr().err
    assert main(["serve-testing", "--address", "127.0.0.1:0", "--readonly-address", server.address]) == 2
    assert f"cannot listen on {server.address} (--readonly-address)" in capsys.readouterr().err
    assert main(["serve-testing", "--max-stores", "0"]) == 2
    assert "--max-stores must be at least 1" in capsys.readouterr().err
