"""CheckPermission's ``with_tracing`` through the official ``authzed`` client: SpiceDB's ``debug_trace`` built from
Headwater's explanation (engine/service/authzed/trace.py)."""

from __future__ import annotations

import doctest
from collections.abc import Iterator
from pathlib import Path

import pytest
from authzed.api.v1.debug_pb2 import CheckDebugTrace
from authzed.api.v1 import (
    CheckBulkPermissionsRequest,
    CheckBulkPermissionsRequestItem,
    CheckPermissionRequest,
    CheckPermissionResponse,
    Client,
    Consistency,
    RelationshipUpdate,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
)
from grpcutil import insecure_bearer_token_credentials
from headwater.engine.config import Config
from headwater.engine.service.authzed import trace as trace_module
from headwater.engine.service.server import HeadwaterServer

from .test_authzed_api import obj, rel, struct, subj

ROOT = Path(__file__).resolve().parents[2]
POLICY = (ROOT / "examples/ai-lineage/policy.zed").read_text()
RELATIONSHIPS = [
    "team:analysts#member@user:alice",
    "sensitivity:confidential#cleared@team:analysts#member",
    "sensitivity:internal#cleared@user:bob",
    "sensitivity:confidential#cleared@user:frank",
    "dataset:claims#viewer@team:analysts#member",
    "dataset:claims#label@sensitivity:confidential",
    "dataset:claims_anon#derived_from@dataset:claims",
    "dataset:claims_anon#viewer@user:frank",
    "model:risk#trained_on@dataset:claims_anon",
    "output:o1#produced_by@model:risk",
    "output:o1#requester@user:frank",
    "output:o1#requester@user:bob",
]
HAS, NO = CheckDebugTrace.PERMISSIONSHIP_HAS_PERMISSION, CheckDebugTrace.PERMISSIONSHIP_NO_PERMISSION


def _update(text: str) -> RelationshipUpdate:
    return RelationshipUpdate(operation=RelationshipUpdate.OPERATION_TOUCH, relationship=rel(text))


@pytest.fixture(scope="module")
def spicedb() -> Iterator[tuple[Client, object]]:
    server = HeadwaterServer(Config.of(address="127.0.0.1:0", db=":memory:", insecure_no_auth=True)).start()
    try:
        client = Client(server.address, insecure_bearer_token_credentials("trace-tests"))
        client.WriteSchema(WriteSchemaRequest(schema=POLICY))
        written = client.WriteRelationships(WriteRelationshipsRequest(
            updates=[_update(r) for r in RELATIONSHIPS])).written_at
        yield client, written
    finally:
        server.stop()


def _check(spicedb: tuple[Client, object], resource: str, permission: str, subject: str, tracing: bool = True):
    client, written = spicedb
    return client.CheckPermission(CheckPermissionRequest(
        resource=obj(resource), permission=permission, subject=subj(subject), with_tracing=tracing,
        consistency=Consistency(at_least_as_fresh=written)))


def _walk(t: CheckDebugTrace) -> Iterator[CheckDebugTrace]:
    yield t
    for child in t.sub_problems.traces:
        yield from _walk(child)


def _text(t: CheckDebugTrace) -> str:
    subject = f"{t.subject.object.object_type}:{t.subject.object.object_id}"
    subject += f"#{t.subject.optional_relation}" if t.subject.optional_relation else ""
    return f"{t.resource.object_type}:{t.resource.object_id}#{t.permission}@{subject}"


def test_the_root_names_the_check_and_its_result(spicedb) -> None:
    answer = _check(spicedb, "output:o1", "view", "user:frank")
    root = answer.debug_trace.check
    assert _text(root) == "output:o1#view@user:frank"
    assert root.result == HAS and root.permission_type == CheckDebugTrace.PERMISSION_TYPE_PERMISSION
    assert "definition output" in answer.debug_trace.schema_used
    assert answer.permissionship == answer.PERMISSIONSHIP_HAS_PERMISSION


def test_a_granted_check_contains_the_granting_relationship(spicedb) -> None:
    root = _check(spicedb, "dataset:claims", "read", "user:alice").debug_trace.check
    found = {_text(t): t for t in _walk(root)}
    viewer = found["dataset:claims#viewer@team:analysts#member"]
    assert viewer.result == HAS and viewer.permission_type == CheckDebugTrace.PERMISSION_TYPE_RELATION
    # the subject set's check (team:analysts#member for user:alice), holding the membership relationship
    member = [t for t in _walk(root) if _text(t) == "team:analysts#member@user:alice" and t.sub_problems.traces]
    assert member and member[0].result == HAS
    assert _text(member[0].sub_problems.traces[0]) == "team:analysts#member@user:alice"
    # the relation check under the permission: dataset:claims#viewer for user:alice
    assert found["dataset:claims#viewer@user:alice"].result == HAS


def test_a_denied_lineage_check_shows_the_missing_clearance_path(spicedb) -> None:
    answer = _check(spicedb, "output:o1", "view", "user:bob")
    root = answer.debug_trace.check
    assert _text(root) == "output:o1#view@user:bob" and root.result == NO
    found = {_text(t): t for t in _walk(root)}
    assert found["output:o1#requester@user:bob"].result == HAS  # the requester branch held
    missing = found["sensitivity:confidential#cleared@user:bob"]
    assert missing.result == NO
    assert missing.source.startswith(trace_module.LINEAGE_SOURCE)
    assert ("output:o1 -produced_by-> model:risk -trained_on-> dataset:claims_anon -derived_from-> dataset:claims"
            in missing.source)


def test_without_tracing_there_is_no_debug_trace(spicedb) -> None:
    answer = _check(spicedb, "output:o1", "view", "user:frank", tracing=False)
    assert not answer.HasField("debug_trace")
    assert answer.permissionship == answer.PERMISSIONSHIP_HAS_PERMISSION


def test_check_bulk_with_tracing_gives_each_item_its_trace(spicedb) -> None:
    client, written = spicedb
    items = [CheckBulkPermissionsRequestItem(resource=obj(r), permission=p, subject=subj(s))
             for r, p, s in [("output:o1", "view", "user:frank"), ("output:o1", "view", "user:bob"),
                             ("nope:1", "view", "user:bob")]]
    traced = client.CheckBulkPermissions(CheckBulkPermissionsRequest(
        items=items, with_tracing=True, consistency=Consistency(at_least_as_fresh=written)))
    frank, bob, bad = traced.pairs
    assert _text(frank.item.debug_trace.check) == "output:o1#view@user:frank"
    assert frank.item.debug_trace.check.result == HAS
    assert frank.item.permissionship == CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION
    bob_traces = {_text(t): t for t in _walk(bob.item.debug_trace.check)}
    assert bob_traces["sensitivity:confidential#cleared@user:bob"].result == NO
    assert "definition output" in bob.item.debug_trace.schema_used
    assert bad.HasField("error")  # an item's error stays with that item
    plain = client.CheckBulkPermissions(CheckBulkPermissionsRequest(
        items=items[:2], consistency=Consistency(at_least_as_fresh=written)))
    assert [p.item.permissionship for p in plain.pairs] == [frank.item.permissionship, bob.item.permissionship]
    assert not any(p.item.HasField("debug_trace") for p in plain.pairs)


def test_a_caveated_relationship_carries_its_caveat_evaluation() -> None:
    server = HeadwaterServer(Config.of(address="127.0.0.1:0", db=":memory:", insecure_no_auth=True)).start()
    try:
        client = Client(server.address, insecure_bearer_token_credentials("trace-caveat"))
        client.WriteSchema(WriteSchemaRequest(schema="""caveat on_tuesday(day string) {
    day == "tue"
}
definition user {}
definition doc {
    relation viewer: user with on_tuesday
    permission view = viewer
}"""))
        update = _update("doc:1#viewer@user:ann")
        update.relationship.optional_caveat.caveat_name = "on_tuesday"
        written = client.WriteRelationships(WriteRelationshipsRequest(updates=[update])).written_at
        context = struct({"day": "wed"})
        answer = client.CheckPermission(CheckPermissionRequest(
            resource=obj("doc:1"), permission="view", subject=subj("user:ann"), with_tracing=True,
            context=context, consistency=Consistency(at_least_as_fresh=written)))
        found = {_text(t): t for t in _walk(answer.debug_trace.check)}
        info = found["doc:1#viewer@user:ann"].caveat_evaluation_info
        assert info.caveat_name == "on_tuesday" and info.result == info.RESULT_FALSE
    finally:
        server.stop()


def test_the_module_examples() -> None:
    assert doctest.testmod(trace_module, optionflags=doctest.ELLIPSIS).failed == 0
