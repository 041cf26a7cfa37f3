"""Every RPC of SpiceDB's API through the official ``authzed`` client, sync and async, against ``headwater serve``
and ``headwater serve-testing``, each with the errors a client branches on.

The scenarios are written the way a client test suite for ``spicedb serve-testing`` is
written: each test starts from an empty store (a server of its own for ``serve``, a fresh
random bearer token for ``serve-testing``), writes its schema with WriteSchema, and uses
only the v1 API and plain SpiceDB schema language, so nothing here depends on Headwater.
A scenario is one ``async def`` run with either client: calls are awaited only when the
client returns an awaitable, and streams are read whether they are sync or async
iterables. The parametrization is RPC × client (``SyncClient``, ``AsyncClient``, and ``Client``
made outside and inside an event loop, where it picks sync or async itself) × server
(``serve``, ``serve-testing``, and with ``HEADWATER_V1_SUITE_ADDRESS`` set, any other
server at that address, such as a real ``spicedb serve-testing``).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any, TypeVar

import grpc
import pytest
from authzed.api.v1 import (
    AsyncClient,
    BulkCheckPermissionRequest,
    BulkCheckPermissionRequestItem,
    BulkExportRelationshipsRequest,
    BulkImportRelationshipsRequest,
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
    SyncClient,
    WatchRequest,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
    ZedToken,
)
from authzed.api.v1.permission_service_pb2 import (
    LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION,
    LOOKUP_PERMISSIONSHIP_HAS_PERMISSION,
    ExportBulkRelationshipsRequest,
    ImportBulkRelationshipsRequest,
)
from authzed.api.v1.experimental_service_pb2 import ExperimentalReflectSchemaRequest
from authzed.api.v1.schema_service_pb2 import (
    ComputablePermissionsRequest,
    DependentRelationsRequest,
    DiffSchemaRequest,
    ReflectionSchemaFilter,
    ReflectSchemaRequest,
)
from authzed.api.v1.watch_service_pb2 import WATCH_KIND_INCLUDE_CHECKPOINTS, WATCH_KIND_INCLUDE_RELATIONSHIP_UPDATES
from google.protobuf.struct_pb2 import Struct
from grpcutil import insecure_bearer_token_credentials
from headwater.engine.config import Config
from headwater.engine.service.server import HeadwaterServer
from headwater.engine.service.testing import TestingServer

from .conftest import TOKENS
from .test_authzed_api import reason_of

T = TypeVar("T")

HAS = CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION
NO = CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION
CONDITIONAL = CheckPermissionResponse.PERMISSIONSHIP_CONDITIONAL_PERMISSION
TOUCH, CREATE, DELETE = (RelationshipUpdate.OPERATION_TOUCH, RelationshipUpdate.OPERATION_CREATE,
                         RelationshipUpdate.OPERATION_DELETE)
FULL = Consistency(fully_consistent=True)

SCHEMA = """
caveat likes_harry_potter(likes bool) {
    likes == true
}

definition user {}

definition team {
    relation member: user | team#member
}

definition post {
    relation writer: user
    relation reader: user | user:* | team#member
    relation caveated_reader: user with likes_harry_potter
    relation banned: user

    permission write = writer
    permission view = (reader + writer) - banned
    permission view_as_fan = caveated_reader + writer
}
"""

# ------------------------------------------------------------------ servers and clients


@dataclass(frozen=True)
class Target:
    """Where a scenario runs: a server address and the bearer token of an empty store there."""

    address: str
    token: str


@pytest.fixture(scope="module")
def testing_server() -> Iterator[TestingServer]:
    server = TestingServer(Config.of(address="127.0.0.1:0", grace_seconds=1)).start()
    yield server
    server.stop()


#: Set to the address of a real ``spicedb serve-testing`` (e.g. ``localhost:50051``) to run the same scenarios
#: against it as a third server, unchanged: the suite is a SpiceDB client suite, not a Headwater one.
EXTERNAL = os.environ.get("HEADWATER_V1_SUITE_ADDRESS")


@pytest.fixture(params=["serve", "serve-testing", *(["external"] if EXTERNAL else [])])
def target(request: pytest.FixtureRequest, make_server: Callable[..., HeadwaterServer]) -> Target:
    if request.param == "external":
        assert EXTERNAL is not None
        return Target(EXTERNAL, str(uuid.uuid4()))
    if request.param == "serve":
        server = make_server()  # its own SQLite store, the test tokens
        return Target(server.address, TOKENS["admin"][0])
    server = request.getfixturevalue("testing_server")
    return Target(server.address, str(uuid.uuid4()))  # a new token: a new, empty store


CLIENTS = {  # how a client is made: outside an event loop, or inside one
    "sync": (SyncClient, False), "async": (AsyncClient, True),
    "Client-sync": (Client, False), "Client-async": (Client, True),  # the client that picks by the running loop
}


@pytest.fixture(params=list(CLIENTS))
def run(request: pytest.FixtureRequest, target: Target) -> Callable[[Callable[[Any, Target], Awaitable[None]]], None]:
    """Run a scenario with a client of the kind the test is parametrized with, connected to ``target``."""
    kind, in_loop = CLIENTS[request.param]

    def make() -> Any:
        return kind(target.address, insecure_bearer_token_credentials(target.token))

    def runner(scenario: Callable[[Any, Target], Awaitable[None]]) -> None:
        client = None if in_loop else make()

        async def main() -> None:
            await scenario(client if client is not None else make(), target)

        asyncio.run(main())

    return runner


async def call(result: T | Awaitable[T]) -> T:
    """The answer of a unary call, from either client."""
    return await result if isawaitable(result) else result  # type: ignore[return-value]


async def collect(stream: Iterable[T] | AsyncIterable[T], n: int | None = None) -> list[T]:
    """The messages of a server stream (the first ``n``), from either client; the stream is cancelled after."""
    out: list[T] = []
    if isinstance(stream, AsyncIterable):
        async for item in stream:
            out.append(item)
            if n is not None and len(out) == n:
                stream.cancel()  # type: ignore[attr-defined]
                break
    else:
        for item in stream:
            out.append(item)
            if n is not None and len(out) == n:
                stream.cancel()  # type: ignore[attr-defined]
                break
    return out


async def fails(make_call: Callable[[], Any], code: grpc.StatusCode, reason: str | None = None,
                stream: bool = False) -> grpc.RpcError:
    """The call fails with ``code`` (and SpiceDB's ErrorInfo ``reason``, when given)."""
    try:
        result = make_call()
        await (collect(result) if stream else call(result))
    except grpc.RpcError as exc:
        assert exc.code() == code, (exc.code(), exc.details())
        if reason is not None:
            assert reason_of(exc) == reason, (reason_of(exc), exc.details())
        return exc
    raise AssertionError(f"the call did not fail with {code}")


# ------------------------------------------------------------------ messages


def obj(text: str) -> ObjectReference:
    type_, _, id_ = text.partition(":")
    return ObjectReference(object_type=type_, object_id=id_)


def subj(text: str) -> SubjectReference:
    ref, _, relation = text.partition("#")
    return SubjectReference(object=obj(ref), optional_relation=relation)


def rel(text: str, caveat: str | None = None) -> Relationship:
    left, _, subject = text.partition("@")
    resource, _, relation = left.partition("#")
    msg = Relationship(resource=obj(resource), relation=relation, subject=subj(subject))
    if caveat is not None:
        msg.optional_caveat.CopyFrom(ContextualizedCaveat(caveat_name=caveat))
    return msg


def text_of(r: Relationship) -> str:
    subject = f"{r.subject.object.object_type}:{r.subject.object.object_id}"
    subject += f"#{r.subject.optional_relation}" if r.subject.optional_relation else ""
    return f"{r.resource.object_type}:{r.resource.object_id}#{r.relation}@{subject}"


def update(text: str, operation: int = TOUCH, caveat: str | None = None) -> RelationshipUpdate:
    return RelationshipUpdate(operation=operation, relationship=rel(text, caveat))


def check(resource: str, permission: str, subject: str, **kwargs: Any) -> CheckPermissionRequest:
    return CheckPermissionRequest(resource=obj(resource), permission=permission, subject=subj(subject),
                                  consistency=FULL, **kwargs)


def context(**values: Any) -> Struct:
    s = Struct()
    s.update(values)
    return s


POSTS = [
    "post:one#writer@user:emilia",
    "post:two#writer@user:emilia",
    "post:one#reader@user:beatrice",
    "post:two#reader@team:eng#member",
    "team:eng#member@user:carl",
    "post:public#reader@user:*",
    "post:public#banned@user:mallory",
]


async def seed(client: Any) -> ZedToken:
    """The schema and the posts; the token of the write."""
    await call(client.WriteSchema(WriteSchemaRequest(schema=SCHEMA)))
    updates = [update(t) for t in POSTS] + [update("post:one#caveated_reader@user:beatrice", CREATE,
                                                  "likes_harry_potter")]
    written = await call(client.WriteRelationships(WriteRelationshipsRequest(updates=updates)))
    return written.written_at


# ------------------------------------------------------------------ SchemaService


async def _schema(client: Any, target: Target) -> None:
    await fails(lambda: client.ReadSchema(ReadSchemaRequest()), grpc.StatusCode.NOT_FOUND)  # an empty store
    written = await call(client.WriteSchema(WriteSchemaRequest(schema=SCHEMA)))
    assert written.written_at.token
    read = await call(client.ReadSchema(ReadSchemaRequest()))
    assert "definition post" in read.schema_text and "caveat likes_harry_potter" in read.schema_text
    error = await fails(lambda: client.WriteSchema(WriteSchemaRequest(schema="definition post {\n  relation x: nope\n}")),
                        grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_SCHEMA_TYPE_ERROR")
    assert "nope" in error.details()
    await fails(lambda: client.WriteSchema(WriteSchemaRequest(schema="definition {")),
                grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_SCHEMA_PARSE_ERROR")
    assert (await call(client.ReadSchema(ReadSchemaRequest()))).schema_text == read.schema_text  # nothing changed


async def _reflection(client: Any, target: Target) -> None:
    await call(client.WriteSchema(WriteSchemaRequest(schema=SCHEMA)))
    reflected = await call(client.ReflectSchema(ReflectSchemaRequest(consistency=FULL)))
    assert [d.name for d in reflected.definitions] == ["post", "team", "user"]
    assert [c.name for c in reflected.caveats] == ["likes_harry_potter"]
    post = reflected.definitions[0]
    assert [r.name for r in post.relations] == ["writer", "reader", "caveated_reader", "banned"]
    assert [p.name for p in post.permissions] == ["write", "view", "view_as_fan"]
    reader = [(t.subject_definition_name, t.is_public_wildcard, t.optional_relation_name)
              for t in post.relations[1].subject_types]
    assert reader == [("user", False, ""), ("user", True, ""), ("team", False, "member")]
    filtered = await call(client.ReflectSchema(ReflectSchemaRequest(optional_filters=[
        ReflectionSchemaFilter(optional_definition_name_filter="te")])))
    assert [d.name for d in filtered.definitions] == ["team"]
    computable = await call(client.ComputablePermissions(ComputablePermissionsRequest(
        consistency=FULL, definition_name="post", relation_name="writer")))
    assert {(p.definition_name, p.relation_name) for p in computable.permissions} >= {
        ("post", "write"), ("post", "view"), ("post", "view_as_fan")}
    dependent = await call(client.DependentRelations(DependentRelationsRequest(
        consistency=FULL, definition_name="post", permission_name="view")))
    assert {(r.definition_name, r.relation_name) for r in dependent.relations} >= {
        ("post", "reader"), ("post", "writer"), ("post", "banned")}
    diff = await call(client.DiffSchema(DiffSchemaRequest(consistency=FULL, comparison_schema=SCHEMA.replace(
        "    relation banned: user\n", "").replace(") - banned", ")"))))
    assert any(d.HasField("relation_removed") or d.HasField("relation_added") for d in diff.diffs)
    assert any(d.HasField("permission_expr_changed") for d in diff.diffs)
    await fails(lambda: client.DependentRelations(DependentRelationsRequest(
        consistency=FULL, definition_name="post", permission_name="writer")), grpc.StatusCode.INVALID_ARGUMENT)
    await fails(lambda: client.ComputablePermissions(ComputablePermissionsRequest(
        consistency=FULL, definition_name="nope", relation_name="writer")),
        grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_DEFINITION")
    await fails(lambda: client.DiffSchema(DiffSchemaRequest(comparison_schema="definition {")),
                grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_SCHEMA_PARSE_ERROR")
    experimental = await call(client.ExperimentalReflectSchema(ExperimentalReflectSchemaRequest(consistency=FULL)))
    assert [d.name for d in experimental.definitions] == ["post", "team", "user"]


# ------------------------------------------------------------------ PermissionsService


async def _write_relationships(client: Any, target: Target) -> None:
    await seed(client)
    await call(client.WriteRelationships(WriteRelationshipsRequest(updates=[update("post:three#writer@user:ann")])))
    await fails(lambda: client.WriteRelationships(WriteRelationshipsRequest(
        updates=[update("post:three#writer@user:ann", CREATE)])),
        grpc.StatusCode.ALREADY_EXISTS, "ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP")
    must_not = Precondition(operation=Precondition.OPERATION_MUST_NOT_MATCH,
                            filter=RelationshipFilter(resource_type="post", optional_resource_id="three"))
    await fails(lambda: client.WriteRelationships(WriteRelationshipsRequest(
        updates=[update("post:three#reader@user:bob")], optional_preconditions=[must_not])),
        grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_WRITE_OR_DELETE_PRECONDITION_FAILURE")
    await fails(lambda: client.WriteRelationships(WriteRelationshipsRequest(updates=[update("post:three#view@user:bob")])),
                grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_CANNOT_UPDATE_PERMISSION")
    await fails(lambda: client.WriteRelationships(WriteRelationshipsRequest(updates=[update("nope:1#viewer@user:bob")])),
                grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_DEFINITION")
    must = Precondition(operation=Precondition.OPERATION_MUST_MATCH,
                        filter=RelationshipFilter(resource_type="post", optional_resource_id="three"))
    await call(client.WriteRelationships(WriteRelationshipsRequest(
        updates=[update("post:three#writer@user:ann", DELETE), update("post:three#reader@user:bob")],
        optional_preconditions=[must])))
    read = await collect(client.ReadRelationships(ReadRelationshipsRequest(
        consistency=FULL, relationship_filter=RelationshipFilter(resource_type="post", optional_resource_id="three"))))
    assert [text_of(r.relationship) for r in read] == ["post:three#reader@user:bob"]


async def _check_permission(client: Any, target: Target) -> None:
    await seed(client)
    assert (await call(client.CheckPermission(check("post:one", "view", "user:emilia")))).permissionship == HAS
    assert (await call(client.CheckPermission(check("post:one", "write", "user:beatrice")))).permissionship == NO
    assert (await call(client.CheckPermission(check("post:two", "view", "user:carl")))).permissionship == HAS
    assert (await call(client.CheckPermission(check("post:public", "view", "user:zed")))).permissionship == HAS
    assert (await call(client.CheckPermission(check("post:public", "view", "user:mallory")))).permissionship == NO
    fan = await call(client.CheckPermission(check("post:one", "view_as_fan", "user:beatrice")))
    assert fan.permissionship == CONDITIONAL and list(fan.partial_caveat_info.missing_required_context) == ["likes"]
    liked = await call(client.CheckPermission(check("post:one", "view_as_fan", "user:beatrice",
                                                    context=context(likes=True))))
    assert liked.permissionship == HAS and liked.checked_at.token
    disliked = await call(client.CheckPermission(check("post:one", "view_as_fan", "user:beatrice",
                                                       context=context(likes=False))))
    assert disliked.permissionship == NO
    await fails(lambda: client.CheckPermission(check("post:one", "nope", "user:emilia")),
                grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION")
    await fails(lambda: client.CheckPermission(check("nope:one", "view", "user:emilia")),
                grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_DEFINITION")
    await fails(lambda: client.CheckPermission(check("post:one", "view_as_fan", "user:beatrice",
                                                     context=context(likes="very"))),
                grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_CAVEAT_PARAMETER_TYPE_ERROR")


async def _check_bulk_permissions(client: Any, target: Target) -> None:
    await seed(client)
    items = [CheckBulkPermissionsRequestItem(resource=obj(r), permission=p, subject=subj(s))
             for r, p, s in [("post:one", "view", "user:emilia"), ("post:one", "write", "user:beatrice"),
                             ("post:one", "nope", "user:emilia"), ("post:one", "view_as_fan", "user:beatrice")]]
    answer = await call(client.CheckBulkPermissions(CheckBulkPermissionsRequest(consistency=FULL, items=items)))
    assert [p.request.permission for p in answer.pairs] == ["view", "write", "nope", "view_as_fan"]
    assert answer.pairs[0].item.permissionship == HAS and answer.pairs[1].item.permissionship == NO
    assert answer.pairs[2].HasField("error") and "nope" in answer.pairs[2].error.message
    assert answer.pairs[3].item.permissionship == CONDITIONAL
    await fails(lambda: client.CheckBulkPermissions(CheckBulkPermissionsRequest(consistency=FULL, items=items * 1000)),
                grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_TOO_MANY_CHECKS_IN_REQUEST")


async def _expand_permission_tree(client: Any, target: Target) -> None:
    await seed(client)
    tree = await call(client.ExpandPermissionTree(ExpandPermissionTreeRequest(
        consistency=FULL, resource=obj("post:one"), permission="write")))
    leaf = tree.tree_root
    assert leaf.expanded_object.object_id == "one" and leaf.expanded_relation == "write"
    found = str(tree.tree_root)
    assert "emilia" in found and tree.expanded_at.token
    await fails(lambda: client.ExpandPermissionTree(ExpandPermissionTreeRequest(
        consistency=FULL, resource=obj("post:one"), permission="nope")),
        grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION")


async def _lookup_resources(client: Any, target: Target) -> None:
    await seed(client)
    found = await collect(client.LookupResources(LookupResourcesRequest(
        consistency=FULL, resource_object_type="post", permission="write", subject=subj("user:emilia"))))
    assert sorted(r.resource_object_id for r in found) == ["one", "two"]
    assert {r.permissionship for r in found} == {LOOKUP_PERMISSIONSHIP_HAS_PERMISSION}
    # one result per page, resumed from each page's cursor
    seen: list[str] = []
    cursor: Cursor | None = None
    while True:
        request = LookupResourcesRequest(consistency=FULL, resource_object_type="post", permission="view",
                                         subject=subj("user:emilia"), optional_limit=1)
        if cursor is not None:
            request.optional_cursor.CopyFrom(cursor)
        page = await collect(client.LookupResources(request))
        seen += [r.resource_object_id for r in page]
        if len(page) < 1:
            break
        cursor = page[-1].after_result_cursor
    assert sorted(seen) == ["one", "public", "two"]  # public: the wildcard reader
    fan = await collect(client.LookupResources(LookupResourcesRequest(
        consistency=FULL, resource_object_type="post", permission="view_as_fan", subject=subj("user:beatrice"))))
    assert [(r.resource_object_id, r.permissionship) for r in fan] == [("one", LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION)]
    assert list(fan[0].partial_caveat_info.missing_required_context) == ["likes"]
    await fails(lambda: client.LookupResources(LookupResourcesRequest(
        consistency=FULL, resource_object_type="post", permission="nope", subject=subj("user:emilia"))),
        grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION", stream=True)


async def _lookup_subjects(client: Any, target: Target) -> None:
    await seed(client)
    found = await collect(client.LookupSubjects(LookupSubjectsRequest(
        consistency=FULL, resource=obj("post:two"), permission="view", subject_object_type="user")))
    assert sorted(r.subject.subject_object_id for r in found) == ["carl", "emilia"]
    public = await collect(client.LookupSubjects(LookupSubjectsRequest(
        consistency=FULL, resource=obj("post:public"), permission="view", subject_object_type="user")))
    assert [(r.subject.subject_object_id, [e.subject_object_id for e in r.excluded_subjects]) for r in public] == \
        [("*", ["mallory"])]
    teams = await collect(client.LookupSubjects(LookupSubjectsRequest(
        consistency=FULL, resource=obj("post:two"), permission="view", subject_object_type="team",
        optional_subject_relation="member")))
    assert [r.subject.subject_object_id for r in teams] == ["eng"]
    await fails(lambda: client.LookupSubjects(LookupSubjectsRequest(
        consistency=FULL, resource=obj("post:two"), permission="nope", subject_object_type="user")),
        grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION", stream=True)


async def _read_relationships(client: Any, target: Target) -> None:
    await seed(client)
    found = await collect(client.ReadRelationships(ReadRelationshipsRequest(
        consistency=FULL, relationship_filter=RelationshipFilter(resource_type="post", optional_relation="writer"))))
    assert sorted(text_of(r.relationship) for r in found) == ["post:one#writer@user:emilia",
                                                              "post:two#writer@user:emilia"]
    by_subject = await collect(client.ReadRelationships(ReadRelationshipsRequest(
        consistency=FULL, relationship_filter=RelationshipFilter(
            resource_type="post", optional_subject_filter=SubjectFilter(subject_type="team")))))
    assert [text_of(r.relationship) for r in by_subject] == ["post:two#reader@team:eng#member"]
    caveated = await collect(client.ReadRelationships(ReadRelationshipsRequest(
        consistency=FULL, relationship_filter=RelationshipFilter(resource_type="post",
                                                                 optional_relation="caveated_reader"))))
    assert caveated[0].relationship.optional_caveat.caveat_name == "likes_harry_potter"
    first = await collect(client.ReadRelationships(ReadRelationshipsRequest(
        consistency=FULL, relationship_filter=RelationshipFilter(resource_type="post"), optional_limit=2)))
    rest = await collect(client.ReadRelationships(ReadRelationshipsRequest(
        consistency=FULL, relationship_filter=RelationshipFilter(resource_type="post"),
        optional_cursor=first[-1].after_result_cursor)))
    assert len(first) == 2 and len(first) + len(rest) == 7
    await fails(lambda: client.ReadRelationships(ReadRelationshipsRequest(
        consistency=FULL, relationship_filter=RelationshipFilter(resource_type="nope"))),
        grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_DEFINITION", stream=True)
    await fails(lambda: client.ReadRelationships(ReadRelationshipsRequest(
        consistency=FULL, relationship_filter=RelationshipFilter(resource_type="post"),
        optional_cursor=Cursor(token="garbage"))),
        grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_INVALID_CURSOR", stream=True)


async def _delete_relationships(client: Any, target: Target) -> None:
    await seed(client)
    everything = RelationshipFilter(resource_type="post")
    await fails(lambda: client.DeleteRelationships(DeleteRelationshipsRequest(relationship_filter=everything,
                                                                              optional_limit=2)),
                grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_TOO_MANY_RELATIONSHIPS_FOR_TRANSACTIONAL_DELETE")
    partial = await call(client.DeleteRelationships(DeleteRelationshipsRequest(
        relationship_filter=everything, optional_limit=2, optional_allow_partial_deletions=True)))
    assert partial.deletion_progress == DeleteRelationshipsResponse.DELETION_PROGRESS_PARTIAL
    assert partial.relationships_deleted_count == 2
    done = await call(client.DeleteRelationships(DeleteRelationshipsRequest(relationship_filter=everything)))
    assert done.deletion_progress == DeleteRelationshipsResponse.DELETION_PROGRESS_COMPLETE
    assert done.relationships_deleted_count == 5
    await fails(lambda: client.DeleteRelationships(DeleteRelationshipsRequest(relationship_filter=RelationshipFilter())),
                grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_INVALID_FILTER")
    left = await collect(client.ReadRelationships(ReadRelationshipsRequest(
        consistency=FULL, relationship_filter=RelationshipFilter(resource_type="team"))))
    assert [text_of(r.relationship) for r in left] == ["team:eng#member@user:carl"]


async def _import_and_export_bulk(client: Any, target: Target) -> None:
    await seed(client)
    exported = await collect(client.ExportBulkRelationships(ExportBulkRelationshipsRequest(consistency=FULL)))
    relationships = [r for page in exported for r in page.relationships]
    assert len(relationships) == len(POSTS) + 1
    # into another empty store (a new token for serve-testing, a definition of ours for serve)
    moved = []
    for r in relationships:  # the posts again under new ids, caveats and all
        if r.resource.object_type == "post":
            copy = Relationship()
            copy.CopyFrom(r)
            copy.resource.object_id = "copy_" + r.resource.object_id
            moved.append(copy)
    imported = await call(client.ImportBulkRelationships(
        iter([ImportBulkRelationshipsRequest(relationships=moved[:3]),
              ImportBulkRelationshipsRequest(relationships=moved[3:])])))
    assert imported.num_loaded == len(moved)
    copies = await collect(client.ExportBulkRelationships(ExportBulkRelationshipsRequest(
        consistency=FULL, optional_relationship_filter=RelationshipFilter(resource_type="post",
                                                                          optional_resource_id_prefix="copy_"),
        optional_limit=2)))
    assert all(len(page.relationships) <= 2 for page in copies)
    assert sorted(text_of(r) for page in copies for r in page.relationships) == sorted(text_of(r) for r in moved)
    again = [rel("post:fresh#writer@user:ann"), moved[0]]  # the second exists: nothing of this import is kept
    await fails(lambda: client.ImportBulkRelationships(iter([ImportBulkRelationshipsRequest(relationships=again)])),
                grpc.StatusCode.ALREADY_EXISTS)
    fresh = await collect(client.ReadRelationships(ReadRelationshipsRequest(
        consistency=FULL, relationship_filter=RelationshipFilter(resource_type="post", optional_resource_id="fresh"))))
    assert fresh == []
    await fails(lambda: client.ExportBulkRelationships(ExportBulkRelationshipsRequest(
        consistency=FULL, optional_cursor=Cursor(token="garbage"))),
        grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_INVALID_CURSOR", stream=True)


# ------------------------------------------------------------------ ExperimentalService


async def _experimental_bulk_calls(client: Any, target: Target) -> None:
    await seed(client)
    answer = await call(client.BulkCheckPermission(BulkCheckPermissionRequest(consistency=FULL, items=[
        BulkCheckPermissionRequestItem(resource=obj("post:one"), permission="view", subject=subj("user:emilia")),
        BulkCheckPermissionRequestItem(resource=obj("post:one"), permission="write", subject=subj("user:carl")),
        BulkCheckPermissionRequestItem(resource=obj("post:one"), permission="nope", subject=subj("user:carl"))])))
    assert [p.item.permissionship for p in answer.pairs[:2]] == [HAS, NO] and answer.pairs[2].HasField("error")
    exported = await collect(client.BulkExportRelationships(BulkExportRelationshipsRequest(consistency=FULL)))
    assert sum(len(page.relationships) for page in exported) == len(POSTS) + 1
    loaded = await call(client.BulkImportRelationships(iter([BulkImportRelationshipsRequest(
        relationships=[rel("post:x1#writer@user:ann"), rel("post:x2#writer@user:ann")])])))
    assert loaded.num_loaded == 2
    await fails(lambda: client.BulkImportRelationships(iter([BulkImportRelationshipsRequest(
        relationships=[rel("post:x1#writer@user:ann")])])), grpc.StatusCode.ALREADY_EXISTS)


# ------------------------------------------------------------------ WatchService


async def _watch(client: Any, target: Target) -> None:
    start = await seed(client)
    await call(client.WriteRelationships(WriteRelationshipsRequest(updates=[update("team:ops#member@user:dan")])))
    await call(client.WriteRelationships(WriteRelationshipsRequest(updates=[update("post:w#writer@user:dan")])))
    await call(client.WriteRelationships(WriteRelationshipsRequest(updates=[update("post:w#writer@user:dan",
                                                                                   DELETE)])))
    seen = await collect(client.Watch(WatchRequest(optional_start_cursor=start, optional_object_types=["post"]),
                                      timeout=10), n=2)
    assert [[(u.operation, text_of(u.relationship)) for u in r.updates] for r in seen] == \
        [[(TOUCH, "post:w#writer@user:dan")], [(DELETE, "post:w#writer@user:dan")]]
    filtered = await collect(client.Watch(WatchRequest(
        optional_start_cursor=start, optional_update_kinds=[WATCH_KIND_INCLUDE_RELATIONSHIP_UPDATES,
                                                            WATCH_KIND_INCLUDE_CHECKPOINTS],
        optional_relationship_filters=[RelationshipFilter(resource_type="team")]), timeout=10), n=2)
    assert [text_of(u.relationship) for u in filtered[0].updates] == ["team:ops#member@user:dan"]
    assert filtered[1].is_checkpoint and filtered[1].changes_through.token == seen[-1].changes_through.token
    await fails(lambda: client.Watch(WatchRequest(optional_start_cursor=ZedToken(token="garbage")), timeout=10),
                grpc.StatusCode.INVALID_ARGUMENT, stream=True)


# ------------------------------------------------------------------ the matrix

SCENARIOS = {
    "ReadSchema+WriteSchema": _schema,
    "ReflectSchema+ComputablePermissions+DependentRelations+DiffSchema": _reflection,
    "WriteRelationships": _write_relationships,
    "CheckPermission": _check_permission,
    "CheckBulkPermissions": _check_bulk_permissions,
    "ExpandPermissionTree": _expand_permission_tree,
    "LookupResources": _lookup_resources,
    "LookupSubjects": _lookup_subjects,
    "ReadRelationships": _read_relationships,
    "DeleteRelationships": _delete_relationships,
    "ImportBulkRelationships+ExportBulkRelationships": _import_and_export_bulk,
    "Experimental.BulkCheck+BulkImport+BulkExport": _experimental_bulk_calls,
    "Watch": _watch,
}


@pytest.mark.parametrize("rpc", list(SCENARIOS))
def test_rpc(rpc: str, run: Callable[[Callable[[Any, Target], Awaitable[None]]], None]) -> None:
    run(SCENARIOS[rpc])
