"""`headwater serve-testing --load-configs` and its read-only port, as `spicedb serve-testing` has them.

- ``--load-configs FILE[,FILE]``: every new bearer token's store starts with the files'
  schema and relationships (SpiceDB's per-token middleware loads them the same way), each
  store a copy of its own; a bad file is refused at start, at its file and line.
- ``--readonly-address`` (default ``127.0.0.1:50052``, SpiceDB's read-only gRPC port):
  the same per-token stores, read-only. Reads answer; every call that would write is
  ``UNAVAILABLE`` "service read-only" with ``ERROR_REASON_SERVICE_READ_ONLY`` through
  ``authzed.api.v1`` (SpiceDB's ``ErrServiceReadOnly``), and changes nothing.

Through the official ``authzed`` client, Headwater's client and the CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from authzed.api.v1 import (
    AsyncClient,
    BulkImportRelationshipsRequest,
    CheckPermissionRequest,
    CheckPermissionResponse,
    Client,
    Consistency,
    DeleteRelationshipsRequest,
    LookupResourcesRequest,
    ReadSchemaRequest,
    Relationship,
    RelationshipFilter,
    RelationshipUpdate,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
)
from authzed.api.v1.permission_service_pb2 import ImportBulkRelationshipsRequest
from grpcutil import insecure_bearer_token_credentials
from headwater.client import NO_RETRY
from headwater.engine.bootstrap import Seed
from headwater.engine.client import Client as HwClient
from headwater.engine.errors import StoreUnavailableError
from headwater.engine.store import RelationshipFilter as HwFilter
from headwater.engine.config import Config
from headwater.engine.errors import ValidationFileError
from headwater.engine.service.testing import READ_ONLY, TestingServer

from .test_authzed_api import obj, reason_of, subj
from .test_serve_testing import serve_testing_command

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "examples" / "ai-lineage" / "validation.yaml")
HAS = CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION
NO = CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION
FULL = Consistency(fully_consistent=True)


@pytest.fixture(scope="module")
def server() -> Iterator[TestingServer]:
    srv = TestingServer(Config.of(address="127.0.0.1:0", grace_seconds=2), seed=Seed([EXAMPLE]),
                        readonly_address="127.0.0.1:0").start()
    yield srv
    srv.stop()


def v1(address: str, token: str) -> Client:
    return Client(address, insecure_bearer_token_credentials(token))


def check(client: Client, resource: str, permission: str, subject: str) -> int:
    return client.CheckPermission(CheckPermissionRequest(resource=obj(resource), permission=permission,
                                                         subject=subj(subject), consistency=FULL)).permissionship


def rel(text: str) -> Relationship:
    resource, _, rest = text.partition("#")
    relation, _, subject = rest.partition("@")
    return Relationship(resource=obj(resource), relation=relation, subject=subj(subject))


def test_every_new_store_starts_with_the_files_and_each_is_a_copy_of_its_own(server: TestingServer) -> None:
    one, two = v1(server.address, "seed-one"), v1(server.address, "seed-two")
    assert check(one, "output:o1", "view", "user:frank") == HAS  # the example's answers, at once
    assert check(one, "output:o1", "view", "user:bob") == NO
    one.WriteRelationships(WriteRelationshipsRequest(updates=[RelationshipUpdate(
        operation=RelationshipUpdate.Operation.OPERATION_DELETE, relationship=rel("output:o1#requester@user:frank"))]))
    assert check(one, "output:o1", "view", "user:frank") == NO
    assert check(two, "output:o1", "view", "user:frank") == HAS  # the other token's copy is untouched
    assert "definition output" in two.ReadSchema(ReadSchemaRequest()).schema_text
    # Headwater's own client, on a token of its own: the same seeded store, lineage and labels included
    with HwClient(server.address, token="seed-three", retry=NO_RETRY) as hw:
        assert hw.check("output:o1", "view", "user:frank").permissionship.name == "HAS_PERMISSION"
        (label,) = hw.effective_labels("output:o1").classifications  # inherited through its lineage
        assert (label.level, label.values[0].paths[0].endswith("dataset:claims")) == ("confidential", True)


def test_the_read_only_port_reads_the_same_stores(server: TestingServer) -> None:
    writer, reader = v1(server.address, "ro-shared"), v1(server.readonly_address, "ro-shared")
    writer.WriteRelationships(WriteRelationshipsRequest(updates=[RelationshipUpdate(
        operation=RelationshipUpdate.Operation.OPERATION_TOUCH, relationship=rel("dataset:claims#viewer@user:zoe"))]))
    assert check(reader, "dataset:claims", "read", "user:zoe") == check(writer, "dataset:claims", "read", "user:zoe")
    found = {r.resource_object_id for r in reader.LookupResources(LookupResourcesRequest(
        resource_object_type="output", permission="view", subject=subj("user:frank"), consistency=FULL))}
    assert "o1" in found
    assert "definition output" in reader.ReadSchema(ReadSchemaRequest()).schema_text


def _read_only(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as refused:
        call()  # type: ignore[operator]
    return refused.value


def test_every_write_on_the_read_only_port_is_refused_as_spicedb_refuses_it(server: TestingServer) -> None:
    reader, writer = v1(server.readonly_address, "ro-writes"), v1(server.address, "ro-writes")
    before = writer.ReadSchema(ReadSchemaRequest()).schema_text
    calls = {
        "WriteSchema": lambda: reader.WriteSchema(WriteSchemaRequest(schema="definition user {}")),
        "WriteRelationships": lambda: reader.WriteRelationships(WriteRelationshipsRequest(updates=[
            RelationshipUpdate(operation=RelationshipUpdate.Operation.OPERATION_TOUCH,
                               relationship=rel("dataset:claims#viewer@user:mallory"))])),
        "DeleteRelationships": lambda: reader.DeleteRelationships(DeleteRelationshipsRequest(
            relationship_filter=RelationshipFilter(resource_type="output"))),
        "ImportBulkRelationships": lambda: reader.ImportBulkRelationships(iter([ImportBulkRelationshipsRequest(
            relationships=[rel("dataset:claims#viewer@user:mallory")])])),
        "BulkImportRelationships": lambda: reader.BulkImportRelationships(iter([BulkImportRelationshipsRequest(
            relationships=[rel("dataset:claims#viewer@user:mallory")])])),
    }
    for name, call in calls.items():
        error = _read_only(call)
        assert error.code() == grpc.StatusCode.UNAVAILABLE, name
        assert error.details() == READ_ONLY, name
        assert reason_of(error) == "ERROR_REASON_SERVICE_READ_ONLY", name
    assert writer.ReadSchema(ReadSchemaRequest()).schema_text == before  # nothing changed
    assert check(writer, "dataset:claims", "read", "user:mallory") == NO
    assert check(writer, "output:o1", "view", "user:frank") == HAS


def test_the_async_client_is_refused_too(server: TestingServer) -> None:
    async def scenario() -> tuple[int, grpc.StatusCode]:
        reader = AsyncClient(server.readonly_address, insecure_bearer_token_credentials("ro-async"))
        answer = await reader.CheckPermission(CheckPermissionRequest(
            resource=obj("output:o1"), permission="view", subject=subj("user:frank"), consistency=FULL))
        try:
            await reader.WriteSchema(WriteSchemaRequest(schema="definition user {}"))
        except grpc.RpcError as exc:
            return answer.permissionship, exc.code()
        return answer.permissionship, grpc.StatusCode.OK

    assert asyncio.run(scenario()) == (HAS, grpc.StatusCode.UNAVAILABLE)


def test_headwater_v1_writes_are_refused_on_the_read_only_port(server: TestingServer) -> None:
    with HwClient(server.readonly_address, token="ro-hw", retry=NO_RETRY) as reader:
        assert reader.check("output:o1", "view", "user:frank").permissionship.name == "HAS_PERMISSION"
        for call in (lambda: reader.write_schema("definition user {}"),
                     lambda: reader.touch("dataset:claims#viewer@user:mallory"),
                     lambda: reader.delete(HwFilter(resource_type="output"))):
            with pytest.raises(StoreUnavailableError, match=READ_ONLY):
                call()
    with HwClient(server.address, token="ro-hw", retry=NO_RETRY) as writer:
        assert writer.check("dataset:claims", "read", "user:mallory").permissionship.name == "NO_PERMISSION"
        assert writer.check("output:o1", "view", "user:frank").permissionship.name == "HAS_PERMISSION"


def test_a_bad_file_is_refused_at_its_line_before_anything_serves(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: |-\n  definition user {}\n  definition doc {\n    relation viewer: usr\n  }\n"
                   "relationships: ''\n")
    with pytest.raises(ValidationFileError, match=r"bad.yaml:4: schema error at schema line 3, column 20"):
        Seed([str(bad)])
    rels = tmp_path / "rels.yaml"
    rels.write_text("schema: |-\n  definition user {}\n  definition doc {\n    relation viewer: user\n  }\n"
                    "relationships: |-\n  doc:1#viewer@user:a\n  doc:1#owner@user:b\n")
    with pytest.raises(ValidationFileError, match=r"rels.yaml:8: doc:1#owner@user:b: relation `owner` not found"):
        Seed([str(rels)])


def test_several_files_make_one_schema_and_an_error_names_its_own_file(tmp_path: Path) -> None:
    users = tmp_path / "users.yaml"
    users.write_text("schema: |-\n  definition user {}\nrelationships: ''\n")
    docs = tmp_path / "docs.yaml"
    docs.write_text("schema: |-\n  definition doc {\n    relation viewer: user\n    permission view = viewer\n  }\n"
                    "relationships: |-\n  doc:1#viewer@user:a\n")
    seed = Seed([str(users), str(docs)])
    with TestingServer(Config.of(address="127.0.0.1:0", grace_seconds=1), seed=seed) as srv:
        assert check(v1(srv.address, "two-files"), "doc:1", "view", "user:a") == HAS
    docs.write_text("schema: |-\n  definition doc {\n    relation viewer: usr\n  }\nrelationships: ''\n")
    with pytest.raises(ValidationFileError, match=r"docs.yaml:3: schema error at schema line 2, column 20"):
        Seed([str(users), str(docs)])


def test_the_command_loads_configs_serves_read_only_and_refuses_a_bad_file(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]
                                                                           ) -> None:
    from headwater.engine.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: |-\n  definition doc {\n    relation viewer: usr\n  }\nrelationships: ''\n")
    assert main(["serve-testing", "--address", "127.0.0.1:0", "--readonly-address", "off",
                 "--load-configs", str(bad)]) == 2
    assert "bad.yaml:3: schema error at schema line 2, column 20" in capsys.readouterr().err

    with serve_testing_command("--address", "127.0.0.1:0", "--readonly-address", "127.0.0.1:0",
                               "--load-configs", EXAMPLE) as command:
        ready = command.ready
        assert ready["load_configs"] == [EXAMPLE]
        address, readonly = f"127.0.0.1:{ready['port']}", ready["readonly_address"]
        assert readonly != address and int(readonly.rsplit(":", 1)[1]) > 0
        assert check(v1(address, "cli-seed"), "output:o1", "view", "user:frank") == HAS
        assert check(v1(readonly, "cli-seed"), "output:o1", "view", "user:bob") == NO
        error = _read_only(lambda: v1(readonly, "cli-seed").WriteSchema(WriteSchemaRequest(
            schema="definition user {}")))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert command.code == 0, "".join(command.lines)
