"""SpiceDB's API (authzed.api.v1) on the Headwater server, through the official `authzed` client (sync and async).

Each test starts (or shares) a real server on 127.0.0.1 and calls it as a SpiceDB client
would: `authzed.api.v1.Client` with `grpcutil.insecure_bearer_token_credentials`. Errors
are checked by status code and by the ErrorReason SpiceDB attaches (a google.rpc.ErrorInfo
in the `grpc-status-details-bin` trailer). Codes that differ from headwater.v1 were
measured against SpiceDB v1.54 (docs/decisions/authzed-api.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from authzed.api.v1 import (
    AsyncClient,
    CheckBulkPermissionsRequest,
    CheckBulkPermissionsRequestItem,
    CheckPermissionRequest,
    CheckPermissionResponse,
    Client,
    Consistency,
    ContextualizedCaveat,
    Cursor,
    DeleteRelationshipsRequest,
    DeleteRelationshipsResponse,
    ExpandPermissionTreeRequest,
    LookupResourcesRequest,
    LookupSubjectsRequest,
    ObjectReference,
    Precondition,
    ReadRelationshipsRequest,
    ReadSchemaRequest,
    Relationship,
    RelationshipFilter,
    RelationshipUpdate,
    SubjectFilter,
    SubjectReference,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
    ZedToken,
    permission_service_pb2,
)
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2, status_pb2
from grpcutil import insecure_bearer_token_credentials
from headwater.engine.consistency import Consistency as HwConsistency
from headwater.engine.service.server import HeadwaterServer

from .conftest import RELATIONSHIPS, SCHEMA, TOKENS, client_for, seed

HAS = CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION
NO = CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION
CONDITIONAL = CheckPermissionResponse.PERMISSIONSHIP_CONDITIONAL_PERMISSION
LOOKUP_HAS = permission_service_pb2.LOOKUP_PERMISSIONSHIP_HAS_PERMISSION
LOOKUP_CONDITIONAL = permission_service_pb2.LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION
TOUCH, CREATE, DELETE = (RelationshipUpdate.OPERATION_TOUCH, RelationshipUpdate.OPERATION_CREATE,
                         RelationshipUpdate.OPERATION_DELETE)


# ------------------------------------------------------------------ helpers


def v1_client(server: HeadwaterServer, who: str = "admin") -> Client:
    return Client(server.address, insecure_bearer_token_credentials(TOKENS[who][0]))


def obj(text: str) -> ObjectReference:
    type_, _, id_ = text.partition(":")
    return ObjectReference(object_type=type_, object_id=id_)


def subj(text: str) -> SubjectReference:
    ref, _, relation = text.partition("#")
    return SubjectReference(object=obj(ref), optional_relation=relation)


def rel(text: str, caveat: str | None = None, context: dict[str, Any] | None = None,
        expires: datetime | None = None) -> Relationship:
    left, _, subject = text.partition("@")
    resource, _, relation = left.partition("#")
    msg = Relationship(resource=obj(resource), relation=relation, subject=subj(subject))
    if caveat is not None:
        msg.optional_caveat.CopyFrom(ContextualizedCaveat(caveat_name=caveat, context=struct(context or {})))
    if expires is not None:
        msg.optional_expires_at.FromDatetime(expires)
    return msg


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(values)
    return s


def check(resource: str, permission: str, subject: str, **kwargs: Any) -> CheckPermissionRequest:
    return CheckPermissionRequest(resource=obj(resource), permission=permission, subject=subj(subject), **kwargs)


def text_of(r: Relationship) -> str:
    sub = f"{r.subject.object.object_type}:{r.subject.object.object_id}"
    if r.subject.optional_relation:
        sub += f"#{r.subject.optional_relation}"
    return f"{r.resource.object_type}:{r.resource.object_id}#{r.relation}@{sub}"


def write(client: Client, *texts: str, operation: int = TOUCH, **kwargs: Any) -> ZedToken:
    updates = [RelationshipUpdate(operation=operation, relationship=rel(t)) for t in texts]
    return client.WriteRelationships(WriteRelationshipsRequest(updates=updates, **kwargs)).written_at


def reason_of(error: grpc.RpcError) -> str | None:
    """The ErrorReason name of a failed call's ErrorInfo detail, as SpiceDB clients read it."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    assert info.domain == "authzed.com"
                    return info.reason
    return None


def fails(call: Callable[[], Any], code: grpc.StatusCode, reason: str | None = None) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    error = info.value
    assert error.code() == code, (error.code(), error.details())
    assert reason_of(error) == reason, (reason_of(error), error.details())
    return error


@pytest.fixture(scope="module")
def v1(server: HeadwaterServer) -> Iterator[Client]:
    yield v1_client(server)


@pytest.fixture()
def fresh(make_server: Callable[..., HeadwaterServer]) -> Iterator[tuple[HeadwaterServer, Client]]:
    """A seeded server of the test's own, for tests that change data."""
    server = make_server()
    with client_for(server) as c:
        seed(c)
    yield server, v1_client(server)


# ------------------------------------------------------------------ CheckPermission


def test_check_permission_in_every_consistency_mode(v1: Client) -> None:
    token = v1.ReadSchema(ReadSchemaRequest()).read_at.token
    modes = [Consistency(minimize_latency=True), Consistency(fully_consistent=True),
             Consistency(at_least_as_fresh=ZedToken(token=token)), Consistency(at_exact_snapshot=ZedToken(token=token)),
             None]
    for mode in modes:
        kwargs = {} if mode is None else {"consistency": mode}
        answer = v1.CheckPermission(check("document:readme", "view", "user:bob", **kwargs))
        assert answer.permissionship == HAS
        assert answer.checked_at.token.startswith("hw1_")
    assert v1.CheckPermission(check("document:readme", "view", "user:cat")).permissionship == HAS  # via group
    # a denial is a result, not an error
    assert v1.CheckPermission(check("document:readme", "view", "user:mallory")).permissionship == NO


def test_check_permission_with_caveat_context(v1: Client) -> None:
    answer = v1.CheckPermission(check("document:tuesday", "view", "user:dan"))
    assert answer.permissionship == CONDITIONAL
    assert list(answer.partial_caveat_info.missing_required_context) == ["day"]
    assert v1.CheckPermission(check("document:tuesday", "view", "user:dan",
                                    context=struct({"day": "tue"}))).permissionship == HAS
    answer = v1.CheckPermission(check("document:tuesday", "view", "user:dan", context=struct({"day": "wed"})))
    assert answer.permissionship == NO and not answer.HasField("partial_caveat_info")


def test_check_permission_errors_are_spicedb_s(v1: Client) -> None:
    fails(lambda: v1.CheckPermission(check("document:readme", "nope", "user:bob")),
          grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION")
    fails(lambda: v1.CheckPermission(check("nodef:1", "view", "user:bob")),
          grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_DEFINITION")
    fails(lambda: v1.CheckPermission(check("document:a b", "view", "user:bob")), grpc.StatusCode.INVALID_ARGUMENT)
    fails(lambda: v1.CheckPermission(CheckPermissionRequest(permission="view", subject=subj("user:bob"))),
          grpc.StatusCode.INVALID_ARGUMENT)
    fails(lambda: v1.CheckPermission(check("document:readme", "view", "user:bob",
                                           consistency=Consistency(at_least_as_fresh=ZedToken(token="garbage")))),
          grpc.StatusCode.INVALID_ARGUMENT)
    fails(lambda: v1.CheckPermission(check("document:tuesday", "view", "user:dan", context=struct({"day": 3}))),
          grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_CAVEAT_PARAMETER_TYPE_ERROR")


def test_check_without_a_schema_names_the_unknown_definition(make_server: Callable[..., HeadwaterServer]) -> None:
    client = v1_client(make_server())
    fails(lambda: client.CheckPermission(check("document:1", "view", "user:bob")),
          grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_DEFINITION")
    fails(lambda: client.ReadSchema(ReadSchemaRequest()), grpc.StatusCode.NOT_FOUND)


def test_max_depth_is_failed_precondition(fresh: tuple[HeadwaterServer, Client]) -> None:
    _, client = fresh
    chain = [f"group:g{i}#member@group:g{i + 1}#member" for i in range(30)] + ["group:g30#member@user:deep"]
    write(client, *chain)
    fails(lambda: client.CheckPermission(check("group:g0", "member", "user:deep")),
          grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_MAXIMUM_DEPTH_EXCEEDED")


# ------------------------------------------------------------------ CheckBulkPermissions


def test_check_bulk_permissions(v1: Client) -> None:
    items = [CheckBulkPermissionsRequestItem(resource=obj("document:readme"), permission="view",
                                             subject=subj("user:bob")),
             CheckBulkPermissionsRequestItem(resource=obj("document:readme"), permission="nope",
                                             subject=subj("user:bob")),
             CheckBulkPermissionsRequestItem(resource=obj("document:tuesday"), permission="view",
                                             subject=subj("user:dan")),
             CheckBulkPermissionsRequestItem(resource=obj("document:readme"), permission="view",
                                             subject=subj("user:mallory"))]
    answer = v1.CheckBulkPermissions(CheckBulkPermissionsRequest(items=items))
    assert answer.checked_at.token.startswith("hw1_")
    assert [p.request.permission for p in answer.pairs] == ["view", "nope", "view", "view"]
    assert answer.pairs[0].item.permissionship == HAS
    error = answer.pairs[1].error
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    info = error_details_pb2.ErrorInfo()
    assert error.details[0].Unpack(info) and info.reason == "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION"
    assert answer.pairs[2].item.permissionship == CONDITIONAL
    assert list(answer.pairs[2].item.partial_caveat_info.missing_required_context) == ["day"]
    assert answer.pairs[3].item.permissionship == NO
    too_many = CheckBulkPermissionsRequest(items=items * 6)  # 24 > max_bulk_check_items (20)
    fails(lambda: v1.CheckBulkPermissions(too_many), grpc.StatusCode.INVALID_ARGUMENT,
          "ERROR_REASON_TOO_MANY_CHECKS_IN_REQUEST")


# ------------------------------------------------------------------ ZedTokens across both APIs


def test_zedtokens_are_headwater_tokens_in_both_directions(fresh: tuple[HeadwaterServer, Client]) -> None:
    server, client = fresh
    before = client.CheckPermission(check("document:readme", "view", "user:zoe")).checked_at
    written = write(client, "document:readme#viewer@user:zoe")
    with client_for(server) as hw:
        # the v1 ZedToken is a consistency token of headwater.v1
        assert hw.check("document:readme", "view", "user:zoe",
                        consistency=HwConsistency.at_exact_snapshot(written.token)).allowed
        assert not hw.check("document:readme", "view", "user:zoe",
                            consistency=HwConsistency.at_exact_snapshot(before.token)).allowed
        hw_token = hw.remove("document:readme#viewer@user:zoe").token
    # and a headwater.v1 token is a ZedToken
    assert client.CheckPermission(check("document:readme", "view", "user:zoe", consistency=Consistency(
        at_least_as_fresh=ZedToken(token=hw_token)))).permissionship == NO
    assert client.CheckPermission(check("document:readme", "view", "user:zoe", consistency=Consistency(
        at_exact_snapshot=written))).permissionship == HAS


# ------------------------------------------------------------------ WriteRelationships


def test_write_relationships_touch_create_delete(fresh: tuple[HeadwaterServer, Client]) -> None:
    _, client = fresh
    write(client, "document:w1#viewer@user:amy", "document:w1#owner@user:amy")
    write(client, "document:w1#viewer@user:amy")  # touch again: fine
    fails(lambda: write(client, "document:w1#viewer@user:amy", operation=CREATE), grpc.StatusCode.ALREADY_EXISTS,
          "ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP")
    write(client, "document:w1#viewer@user:ben", operation=CREATE)
    token = write(client, "document:w1#viewer@user:amy", operation=DELETE)
    found = [text_of(r.relationship) for r in client.ReadRelationships(ReadRelationshipsRequest(
        consistency=Consistency(at_least_as_fresh=token),
        relationship_filter=RelationshipFilter(resource_type="document", optional_resource_id="w1")))]
    assert found == ["document:w1#owner@user:amy", "document:w1#viewer@user:ben"]


def test_write_relationships_refuses_bad_updates_and_changes_nothing(fresh: tuple[HeadwaterServer, Client]) -> None:
    _, client = fresh
    cases = [("document:w2#nope@user:amy", grpc.StatusCode.FAILED_PRECONDITION,
              "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION"),
             ("nodef:w2#viewer@user:amy", grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_DEFINITION"),
             ("document:w2#view@user:amy", grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_CANNOT_UPDATE_PERMISSION"),
             ("document:w2#owner@group:eng", grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_INVALID_SUBJECT_TYPE")]
    for text, code, reason in cases:
        fails(lambda text=text: write(client, "document:w2#viewer@user:amy", text), code, reason)
    fails(lambda: client.WriteRelationships(WriteRelationshipsRequest(updates=[
        RelationshipUpdate(operation=TOUCH, relationship=rel("document:w2#viewer@user:amy")),
        RelationshipUpdate(operation=DELETE, relationship=rel("document:w2#viewer@user:amy"))])),
        grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_UPDATES_ON_SAME_RELATIONSHIP")
    too_many = [f"document:w{i}#viewer@user:amy" for i in range(51)]  # max_updates_per_write is 50 here
    fails(lambda: write(client, *too_many), grpc.StatusCode.INVALID_ARGUMENT,
          "ERROR_REASON_TOO_MANY_UPDATES_IN_REQUEST")
    listed = list(client.ReadRelationships(ReadRelationshipsRequest(
        consistency=Consistency(fully_consistent=True),
        relationship_filter=RelationshipFilter(resource_type="document", optional_resource_id="w2"))))
    assert listed == []


def test_write_relationships_preconditions(fresh: tuple[HeadwaterServer, Client]) -> None:
    _, client = fresh
    must_match = Precondition(operation=Precondition.OPERATION_MUST_MATCH,
                              filter=RelationshipFilter(resource_type="document", optional_resource_id="nothing"))
    fails(lambda: write(client, "document:p1#viewer@user:amy", optional_preconditions=[must_match]),
          grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_WRITE_OR_DELETE_PRECONDITION_FAILURE")
    must_not = Precondition(operation=Precondition.OPERATION_MUST_NOT_MATCH,
                            filter=RelationshipFilter(resource_type="document", optional_resource_id="nothing"))
    token = write(client, "document:p1#viewer@user:amy", optional_preconditions=[must_not])
    assert client.CheckPermission(check("document:p1", "view", "user:amy", consistency=Consistency(
        at_least_as_fresh=token))).permissionship == HAS


def test_write_relationships_with_caveats_and_expiration(fresh: tuple[HeadwaterServer, Client]) -> None:
    _, client = fresh
    client.WriteSchema(WriteSchemaRequest(schema=SCHEMA.replace(
        "user with on_tuesday", "user with on_tuesday | user with expiration")))
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    updates = [RelationshipUpdate(operation=TOUCH,
                                  relationship=rel("document:c1#viewer@user:amy", caveat="on_tuesday")),
               RelationshipUpdate(operation=TOUCH, relationship=rel("document:c1#viewer@user:ben", caveat="on_tuesday",
                                                                    context={"day": "tue"})),
               RelationshipUpdate(operation=TOUCH, relationship=rel("document:c1#viewer@user:cyd", expires=soon)),
               RelationshipUpdate(operation=TOUCH, relationship=rel("document:c1#viewer@user:old",
                                                                    expires=datetime(2001, 1, 1, tzinfo=UTC)))]
    token = client.WriteRelationships(WriteRelationshipsRequest(updates=updates)).written_at
    fresh_enough = Consistency(at_least_as_fresh=token)
    amy = client.CheckPermission(check("document:c1", "view", "user:amy", consistency=fresh_enough))
    assert amy.permissionship == CONDITIONAL and list(amy.partial_caveat_info.missing_required_context) == ["day"]
    assert client.CheckPermission(check("document:c1", "view", "user:ben", consistency=fresh_enough)).permissionship \
        == HAS
    assert client.CheckPermission(check("document:c1", "view", "user:cyd", consistency=fresh_enough)).permissionship \
        == HAS
    assert client.CheckPermission(check("document:c1", "view", "user:old", consistency=fresh_enough)).permissionship \
        == NO
    read = {text_of(r.relationship): r.relationship for r in client.ReadRelationships(ReadRelationshipsRequest(
        consistency=fresh_enough, relationship_filter=RelationshipFilter(resource_type="document",
                                                                         optional_resource_id="c1")))}
    assert read["document:c1#viewer@user:ben"].optional_caveat.caveat_name == "on_tuesday"
    assert dict(read["document:c1#viewer@user:ben"].optional_caveat.context) == {"day": "tue"}
    assert read["document:c1#viewer@user:cyd"].optional_expires_at.ToDatetime(tzinfo=UTC) == soon
    assert "document:c1#viewer@user:old" not in read  # expired


# ------------------------------------------------------------------ DeleteRelationships


def test_delete_relationships(fresh: tuple[HeadwaterServer, Client]) -> None:
    _, client = fresh
    write(client, *[f"document:d{i}#viewer@user:amy" for i in range(5)])
    by_amy = RelationshipFilter(resource_type="document", optional_relation="viewer",
                                optional_subject_filter=SubjectFilter(subject_type="user", optional_subject_id="amy"))
    fails(lambda: client.DeleteRelationships(DeleteRelationshipsRequest(relationship_filter=by_amy, optional_limit=2)),
          grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_TOO_MANY_RELATIONSHIPS_FOR_TRANSACTIONAL_DELETE")
    partial = client.DeleteRelationships(DeleteRelationshipsRequest(relationship_filter=by_amy, optional_limit=2,
                                                                    optional_allow_partial_deletions=True))
    assert partial.deletion_progress == DeleteRelationshipsResponse.DELETION_PROGRESS_PARTIAL
    assert partial.relationships_deleted_count == 2
    rest = client.DeleteRelationships(DeleteRelationshipsRequest(relationship_filter=by_amy))
    assert rest.deletion_progress == DeleteRelationshipsResponse.DELETION_PROGRESS_COMPLETE
    assert rest.relationships_deleted_count == 3
    assert list(client.ReadRelationships(ReadRelationshipsRequest(
        consistency=Consistency(at_least_as_fresh=rest.deleted_at), relationship_filter=by_amy))) == []


def test_delete_relationships_errors(fresh: tuple[HeadwaterServer, Client]) -> None:
    _, client = fresh
    fails(lambda: client.DeleteRelationships(DeleteRelationshipsRequest(relationship_filter=RelationshipFilter())),
          grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_INVALID_FILTER")
    fails(lambda: client.DeleteRelationships(DeleteRelationshipsRequest(
        relationship_filter=RelationshipFilter(resource_type="nodef"))),
        grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_DEFINITION")
    fails(lambda: client.DeleteRelationships(DeleteRelationshipsRequest(
        relationship_filter=RelationshipFilter(resource_type="document", optional_relation="nope"))),
        grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION")
    must_match = Precondition(operation=Precondition.OPERATION_MUST_MATCH,
                              filter=RelationshipFilter(resource_type="document", optional_resource_id="nothing"))
    fails(lambda: client.DeleteRelationships(DeleteRelationshipsRequest(
        relationship_filter=RelationshipFilter(resource_type="document"), optional_preconditions=[must_match])),
        grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_WRITE_OR_DELETE_PRECONDITION_FAILURE")
    assert client.CheckPermission(check("document:readme", "view", "user:bob")).permissionship == HAS  # untouched


# ------------------------------------------------------------------ ReadRelationships


def test_read_relationships_filters_limits_and_cursors(v1: Client) -> None:
    everything = RelationshipFilter(resource_type="document")
    whole = [text_of(r.relationship) for r in v1.ReadRelationships(ReadRelationshipsRequest(
        relationship_filter=everything))]
    assert sorted(whole) == sorted(r.split("[")[0] for r in RELATIONSHIPS if r.startswith("document:"))
    paged: list[str] = []
    cursor: Cursor | None = None
    for _ in range(len(whole) + 2):
        kwargs = {"optional_cursor": cursor} if cursor is not None else {}
        page = list(v1.ReadRelationships(ReadRelationshipsRequest(relationship_filter=everything, optional_limit=3,
                                                                  **kwargs)))
        paged += [text_of(r.relationship) for r in page]
        if len(page) < 3:
            break
        cursor = page[-1].after_result_cursor
        assert cursor.token
    assert paged == whole
    groups = v1.ReadRelationships(ReadRelationshipsRequest(relationship_filter=RelationshipFilter(
        resource_type="document", optional_subject_filter=SubjectFilter(
            subject_type="group", optional_relation=SubjectFilter.RelationFilter(relation="member")))))
    assert [text_of(r.relationship) for r in groups] == ["document:readme#viewer@group:eng#member"]
    fails(lambda: list(v1.ReadRelationships(ReadRelationshipsRequest(relationship_filter=everything,
                                                                      optional_limit=101))),
          grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_EXCEEDS_MAXIMUM_ALLOWABLE_LIMIT")
    fails(lambda: list(v1.ReadRelationships(ReadRelationshipsRequest(relationship_filter=everything, optional_limit=1,
                                                                      optional_cursor=Cursor(token="garbage")))),
          grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_INVALID_CURSOR")
    fails(lambda: list(v1.ReadRelationships(ReadRelationshipsRequest(relationship_filter=RelationshipFilter(
        resource_type="nodef")))), grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_DEFINITION")
    fails(lambda: list(v1.ReadRelationships(ReadRelationshipsRequest(relationship_filter=RelationshipFilter()))),
          grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_INVALID_FILTER")


# ------------------------------------------------------------------ LookupResources and LookupSubjects


def test_lookup_resources(v1: Client) -> None:
    found = {r.resource_object_id: r for r in v1.LookupResources(LookupResourcesRequest(
        resource_object_type="document", permission="view", subject=subj("user:bob")))}
    assert sorted(found) == ["public", "raw", "readme", "report"]
    assert all(r.permissionship == LOOKUP_HAS for r in found.values())
    dan = list(v1.LookupResources(LookupResourcesRequest(resource_object_type="document", permission="view",
                                                         subject=subj("user:dan"))))
    conditional = [r for r in dan if r.resource_object_id == "tuesday"]
    assert conditional[0].permissionship == LOOKUP_CONDITIONAL
    assert list(conditional[0].partial_caveat_info.missing_required_context) == ["day"]
    pages: list[str] = []
    cursor = None
    while True:
        kwargs = {"optional_cursor": cursor} if cursor is not None else {}
        page = list(v1.LookupResources(LookupResourcesRequest(resource_object_type="document", permission="view",
                                                              subject=subj("user:bob"), optional_limit=1, **kwargs)))
        if not page:
            break
        assert len(page) == 1 and page[0].after_result_cursor.token
        pages.append(page[0].resource_object_id)
        cursor = page[0].after_result_cursor
    assert pages == sorted(found)
    fails(lambda: list(v1.LookupResources(LookupResourcesRequest(resource_object_type="document", permission="nope",
                                                                 subject=subj("user:bob")))),
          grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION")


def test_lookup_subjects(v1: Client) -> None:
    readme = [r.subject.subject_object_id for r in v1.LookupSubjects(LookupSubjectsRequest(
        resource=obj("document:readme"), permission="view", subject_object_type="user"))]
    assert sorted(readme) == ["ann", "bob", "cat"]
    public = list(v1.LookupSubjects(LookupSubjectsRequest(resource=obj("document:public"), permission="view",
                                                          subject_object_type="user")))
    assert [r.subject.subject_object_id for r in public] == ["*"]
    assert public[0].subject_object_id == "*"  # the deprecated field too
    without = list(v1.LookupSubjects(LookupSubjectsRequest(
        resource=obj("document:public"), permission="view", subject_object_type="user",
        wildcard_option=LookupSubjectsRequest.WILDCARD_OPTION_EXCLUDE_WILDCARDS)))
    assert without == []
    members = [r.subject.subject_object_id for r in v1.LookupSubjects(LookupSubjectsRequest(
        resource=obj("document:readme"), permission="viewer", subject_object_type="group",
        optional_subject_relation="member"))]
    assert members == ["eng"]
    tuesday = list(v1.LookupSubjects(LookupSubjectsRequest(resource=obj("document:tuesday"), permission="view",
                                                           subject_object_type="user")))
    assert tuesday[0].subject.permissionship == LOOKUP_CONDITIONAL
    fails(lambda: list(v1.LookupSubjects(LookupSubjectsRequest(resource=obj("document:readme"), permission="view",
                                                               subject_object_type="user",
                                                               optional_concrete_limit=1))),
          grpc.StatusCode.UNIMPLEMENTED)


# ------------------------------------------------------------------ SchemaService


def test_read_and_write_schema(fresh: tuple[HeadwaterServer, Client]) -> None:
    _, client = fresh
    read = client.ReadSchema(ReadSchemaRequest())
    assert read.schema_text == SCHEMA and read.read_at.token.startswith("hw1_")
    fails(lambda: client.WriteSchema(WriteSchemaRequest(schema="definition user {")),
          grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_SCHEMA_PARSE_ERROR")
    fails(lambda: client.WriteSchema(WriteSchemaRequest(schema="definition doc {\n relation viewer: nobody\n}")),
          grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_SCHEMA_TYPE_ERROR")
    # a schema that would orphan stored relationships: INVALID_ARGUMENT without a reason, as SpiceDB answers
    fails(lambda: client.WriteSchema(WriteSchemaRequest(schema="definition user {}")), grpc.StatusCode.INVALID_ARGUMENT)
    assert client.ReadSchema(ReadSchemaRequest()).schema_text == SCHEMA  # unchanged
    grown = SCHEMA + "\ndefinition folder {\n    relation viewer: user\n}\n"
    written = client.WriteSchema(WriteSchemaRequest(schema=grown)).written_at
    assert written.token.startswith("hw1_")
    assert client.ReadSchema(ReadSchemaRequest()).schema_text == grown
    write(client, "folder:f1#viewer@user:amy")


# ------------------------------------------------------------------ lineage through SpiceDB's API


def test_lineage_permissions_answer_check_permission(v1: Client) -> None:
    # `read = view & cleared`; report derives from clean, which derives from raw (confidential, pii)
    assert v1.CheckPermission(check("document:report", "read", "user:bob")).permissionship == HAS
    assert v1.CheckPermission(check("document:report", "view", "user:bob")).permissionship == HAS
    assert v1.CheckPermission(check("document:raw", "read", "user:bob")).permissionship == HAS
    assert v1.CheckPermission(check("document:report", "read", "user:ann")).permissionship == NO


def test_declassification_needs_actor_and_reason(fresh: tuple[HeadwaterServer, Client]) -> None:
    server, client = fresh
    declassify = "document:clean#scrubbed@sensitivity:pii"
    error = fails(lambda: write(client, declassify), grpc.StatusCode.INVALID_ARGUMENT)
    assert "'actor'" in error.details() and "'reason'" in error.details()
    error = fails(lambda: write(client, declassify, optional_transaction_metadata=struct({"actor": "user:stew"})),
                  grpc.StatusCode.INVALID_ARGUMENT)
    assert "missing: 'reason'" in error.details()
    # an actor without the declassification's `by` permission is refused as on headwater.v1
    fails(lambda: write(client, declassify, optional_transaction_metadata=struct(
        {"actor": "user:bob", "reason": "pii removed"})), grpc.StatusCode.PERMISSION_DENIED)
    token = write(client, declassify, optional_transaction_metadata=struct(
        {"actor": "user:stew", "reason": "pii removed by the scrubber"}))
    assert token.token.startswith("hw1_")
    with client_for(server) as hw:
        labels = hw.effective_labels("document:clean")
        assert [(d.value, d.actor) for c in labels.classifications for d in c.declassified] == [("pii", "user:stew")]


# ------------------------------------------------------------------ authentication and scopes


def test_scopes_apply_to_v1_methods(server: HeadwaterServer) -> None:
    reader, schemer = v1_client(server, "reader"), v1_client(server, "schemer")
    assert reader.CheckPermission(check("document:readme", "view", "user:bob")).permissionship == HAS
    assert reader.ReadSchema(ReadSchemaRequest()).schema_text == SCHEMA
    fails(lambda: write(reader, "document:s1#viewer@user:amy"), grpc.StatusCode.PERMISSION_DENIED)
    fails(lambda: reader.DeleteRelationships(DeleteRelationshipsRequest(
        relationship_filter=RelationshipFilter(resource_type="document"))), grpc.StatusCode.PERMISSION_DENIED)
    fails(lambda: reader.WriteSchema(WriteSchemaRequest(schema=SCHEMA)), grpc.StatusCode.PERMISSION_DENIED)
    fails(lambda: schemer.CheckPermission(check("document:readme", "view", "user:bob")),
          grpc.StatusCode.PERMISSION_DENIED)
    fails(lambda: list(schemer.LookupResources(LookupResourcesRequest(
        resource_object_type="document", permission="view", subject=subj("user:bob")))),
        grpc.StatusCode.PERMISSION_DENIED)
    stranger = Client(server.address, insecure_bearer_token_credentials("not-a-known-token-at-all"))
    fails(lambda: stranger.CheckPermission(check("document:readme", "view", "user:bob")),
          grpc.StatusCode.UNAUTHENTICATED)
    anonymous = Client(server.address, grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP))
    fails(lambda: anonymous.CheckPermission(check("document:readme", "view", "user:bob")),
          grpc.StatusCode.UNAUTHENTICATED)


def test_v1_calls_are_logged_with_the_token_name(v1: Client, access_log: Any) -> None:
    v1.CheckPermission(check("document:readme", "view", "user:bob"))
    records = [r for r in access_log.records if r.get("method", "").startswith("/authzed.api.v1.")]
    assert records and records[-1]["method"] == "/authzed.api.v1.PermissionsService/CheckPermission"
    assert records[-1]["status"] == "OK" and records[-1]["token"] == "admin"


def test_expand_permission_tree_gives_the_tree_down_to_its_subjects(v1: Client) -> None:
    answer = v1.ExpandPermissionTree(ExpandPermissionTreeRequest(resource=obj("document:readme"), permission="view"))
    root = answer.tree_root
    assert (root.expanded_object.object_type, root.expanded_object.object_id, root.expanded_relation) == (
        "document", "readme", "view")
    assert root.intermediate.operation == root.intermediate.OPERATION_EXCLUSION  # (viewer + edit) - banned

    def leaves(node) -> set[str]:
        if node.HasField("leaf"):
            return {f"{s.object.object_type}:{s.object.object_id}" for s in node.leaf.subjects}
        return set().union(*(leaves(child) for child in node.intermediate.children))
    assert {"user:ann", "user:bob", "user:mallory"} <= leaves(root)
    assert answer.expanded_at.token
    fails(lambda: v1.ExpandPermissionTree(ExpandPermissionTreeRequest(resource=obj("document:readme"),
                                                                      permission="nope")),
          grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION")


# ------------------------------------------------------------------ the async client


def test_async_client(fresh: tuple[HeadwaterServer, Client]) -> None:
    server, _ = fresh

    async def session() -> tuple[int, list[str], grpc.StatusCode, str | None]:
        client = AsyncClient(server.address, insecure_bearer_token_credentials(TOKENS["writer"][0]))
        written = await client.WriteRelationships(WriteRelationshipsRequest(updates=[
            RelationshipUpdate(operation=TOUCH, relationship=rel("document:a1#owner@user:amy"))]))
        answer = await client.CheckPermission(check("document:a1", "edit", "user:amy", consistency=Consistency(
            at_least_as_fresh=written.written_at)))
        found = [r.resource_object_id async for r in client.LookupResources(LookupResourcesRequest(
            resource_object_type="document", permission="edit", subject=subj("user:amy"),
            consistency=Consistency(at_least_as_fresh=written.written_at)))]
        try:
            await client.WriteSchema(WriteSchemaRequest(schema=SCHEMA))
        except grpc.aio.AioRpcError as exc:
            code, reason = exc.code(), reason_of(exc)
        return answer.permissionship, found, code, reason

    permissionship, found, code, reason = asyncio.run(session())
    assert permissionship == HAS
    assert found == ["a1"]
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, None)  # the writer token lacks the schema scope
