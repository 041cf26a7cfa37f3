"""More of SpiceDB's API (authzed.api.v1) through the official `authzed` client: the bulk import and export of
PermissionsService, and ExperimentalService's BulkImportRelationships, BulkExportRelationships and
BulkCheckPermission (the calls the official Python client's own tests make)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator

import grpc
import pytest
from authzed.api.v1 import (
    AsyncClient,
    BulkCheckPermissionRequest,
    BulkCheckPermissionRequestItem,
    BulkExportRelationshipsRequest,
    BulkImportRelationshipsRequest,
    CheckPermissionResponse,
    Client,
    Consistency,
    Cursor,
    ReadSchemaRequest,
    RelationshipFilter,
    SubjectFilter,
    WatchRequest,
    WriteSchemaRequest,
    ZedToken,
)
from authzed.api.v1.watch_service_pb2 import (
    WATCH_KIND_INCLUDE_CHECKPOINTS,
    WATCH_KIND_INCLUDE_RELATIONSHIP_UPDATES,
    WATCH_KIND_INCLUDE_SCHEMA_UPDATES,
)
from authzed.api.v1.permission_service_pb2 import ExportBulkRelationshipsRequest, ImportBulkRelationshipsRequest
from grpcutil import insecure_bearer_token_credentials
from headwater.engine.service.server import HeadwaterServer

from .conftest import RELATIONSHIPS, TOKENS, client_for, seed
from .test_authzed_api import DELETE, TOUCH, fails, fresh, obj, rel, subj, text_of, v1_client, write

__all__ = ["fresh"]  # the fixture, shared with test_authzed_api

HAS = CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION
NO = CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION
FULL = Consistency(fully_consistent=True)


def export_all(call: Callable[..., Iterator[object]], request: object) -> list[str]:
    return [text_of(r) for page in call(request) for r in page.relationships]  # type: ignore[attr-defined]


def test_import_bulk_loads_all_and_export_returns_them(fresh: tuple[HeadwaterServer, Client]) -> None:
    _, v1 = fresh
    new = ["document:a#viewer@user:ann", "document:b#viewer@user:bob", "document:c#owner@user:cat"]
    batches = iter([ImportBulkRelationshipsRequest(relationships=[rel(new[0]), rel(new[1])]),
                    ImportBulkRelationshipsRequest(relationships=[rel(new[2])])])
    assert v1.ImportBulkRelationships(batches).num_loaded == 3
    exported = export_all(v1.ExportBulkRelationships, ExportBulkRelationshipsRequest(consistency=FULL))
    assert set(new) <= set(exported)
    assert len(exported) == len(set(exported))
    docs = export_all(v1.ExportBulkRelationships, ExportBulkRelationshipsRequest(
        consistency=FULL, optional_relationship_filter=RelationshipFilter(resource_type="document",
                                                                          optional_relation="owner")))
    assert sorted(docs) == ["document:c#owner@user:cat", "document:readme#owner@user:ann"]


def test_import_bulk_is_all_or_nothing(fresh: tuple[HeadwaterServer, Client]) -> None:
    _, v1 = fresh
    before = export_all(v1.ExportBulkRelationships, ExportBulkRelationshipsRequest(consistency=FULL))
    with pytest.raises(grpc.RpcError) as info:  # a relationship that exists: the whole import is refused
        v1.ImportBulkRelationships(iter([ImportBulkRelationshipsRequest(
            relationships=[rel("document:z#viewer@user:zed"), rel(RELATIONSHIPS[0])])]))
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS, info.value.details()
    fails(lambda: v1.ImportBulkRelationships(iter([ImportBulkRelationshipsRequest(
        relationships=[rel("document:z#viewer@user:zed"), rel("nosuch:1#viewer@user:ann")])])),
        grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_DEFINITION")
    after = export_all(v1.ExportBulkRelationships, ExportBulkRelationshipsRequest(consistency=FULL))
    assert after == before


def test_an_import_larger_than_a_write_is_still_all_or_nothing(fresh: tuple[HeadwaterServer, Client]) -> None:
    """As SpiceDB's import is one transaction: 120 relationships (the tests' max_updates_per_write is 50), the
    last of which exists, write nothing; without it, all 120 land in one revision."""
    server, v1 = fresh
    assert server.config.limits.max_updates_per_write == 50
    new = [rel(f"document:bulk{i}#viewer@user:u{i}") for i in range(119)]
    before = export_all(v1.ExportBulkRelationships, ExportBulkRelationshipsRequest(consistency=FULL))
    fails(lambda: v1.ImportBulkRelationships(iter([ImportBulkRelationshipsRequest(relationships=new[:60]),
                                                   ImportBulkRelationshipsRequest(relationships=new[60:]
                                                                                  + [rel(RELATIONSHIPS[0])])])),
          grpc.StatusCode.ALREADY_EXISTS, "ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP")
    assert export_all(v1.ExportBulkRelationships, ExportBulkRelationshipsRequest(consistency=FULL)) == before
    new.append(rel("document:bulk119#viewer@user:u119"))
    head = server.engine.revision_token()
    assert v1.ImportBulkRelationships(iter([ImportBulkRelationshipsRequest(relationships=new)])).num_loaded == 120
    changes = server.engine.watch(head)
    assert len(changes) == 120 and len({e.token for e in changes}) == 1  # one revision


def test_an_import_larger_than_its_batch_commits_in_batches(make_server: Callable[..., HeadwaterServer]) -> None:
    """Beyond max_import_batch (here 100) an import commits in batches of that size (a transaction held open while
    a client streams without end would hold the store's write lock without end): a failure keeps the batches
    before it, and says so."""
    server = make_server(max_import_batch=100)
    with client_for(server) as c:
        seed(c)
    v1 = v1_client(server)
    new = [rel(f"document:big{i}#viewer@user:u{i}") for i in range(149)] + [rel(RELATIONSHIPS[0])]
    error = fails(lambda: v1.ImportBulkRelationships(iter([ImportBulkRelationshipsRequest(relationships=new)])),
                  grpc.StatusCode.ALREADY_EXISTS, "ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP")
    assert "batch 1 stays committed (100 relationships" in error.details()
    kept = export_all(v1.ExportBulkRelationships, ExportBulkRelationshipsRequest(
        consistency=FULL, optional_relationship_filter=RelationshipFilter(resource_type="document",
                                                                          optional_resource_id_prefix="big")))
    assert len(kept) == 100


def test_export_bulk_pages_with_limit_and_cursor(server: HeadwaterServer) -> None:
    v1 = v1_client(server)
    everything = export_all(v1.ExportBulkRelationships, ExportBulkRelationshipsRequest(consistency=FULL))
    assert len(everything) == len(RELATIONSHIPS)
    pages = list(v1.ExportBulkRelationships(ExportBulkRelationshipsRequest(consistency=FULL, optional_limit=2)))
    assert all(len(p.relationships) <= 2 for p in pages) and len(pages) >= len(RELATIONSHIPS) // 2
    assert [text_of(r) for p in pages for r in p.relationships] == everything
    resumed = export_all(v1.ExportBulkRelationships, ExportBulkRelationshipsRequest(
        consistency=FULL, optional_limit=2, optional_cursor=pages[0].after_result_cursor))
    assert resumed == everything[2:]
    assert export_all(v1.ExportBulkRelationships, ExportBulkRelationshipsRequest(
        consistency=FULL, optional_cursor=pages[-1].after_result_cursor)) == []
    fails(lambda: list(v1.ExportBulkRelationships(ExportBulkRelationshipsRequest(
        optional_cursor=Cursor(token="garbage")))), grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_INVALID_CURSOR")
    fails(lambda: list(v1.ExportBulkRelationships(ExportBulkRelationshipsRequest(optional_limit=10**6))),
          grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_EXCEEDS_MAXIMUM_ALLOWABLE_LIMIT")


def test_bulk_scopes(server: HeadwaterServer) -> None:
    reader = v1_client(server, "reader")
    fails(lambda: reader.ImportBulkRelationships(iter([ImportBulkRelationshipsRequest(
        relationships=[rel("document:q#viewer@user:ann")])])), grpc.StatusCode.PERMISSION_DENIED)
    assert export_all(reader.ExportBulkRelationships, ExportBulkRelationshipsRequest(consistency=FULL))
    schemer = v1_client(server, "schemer")
    fails(lambda: list(schemer.ExportBulkRelationships(ExportBulkRelationshipsRequest())),
          grpc.StatusCode.PERMISSION_DENIED)


def test_experimental_bulk_calls(fresh: tuple[HeadwaterServer, Client]) -> None:
    _, v1 = fresh
    loaded = v1.BulkImportRelationships(iter([BulkImportRelationshipsRequest(
        relationships=[rel("document:x#viewer@user:ann"), rel("document:y#viewer@user:bob")])]))
    assert loaded.num_loaded == 2
    exported = export_all(v1.BulkExportRelationships, BulkExportRelationshipsRequest(
        consistency=FULL, optional_relationship_filter=RelationshipFilter(resource_type="document",
                                                                          optional_resource_id="x")))
    assert exported == ["document:x#viewer@user:ann"]
    answer = v1.BulkCheckPermission(BulkCheckPermissionRequest(consistency=FULL, items=[
        BulkCheckPermissionRequestItem(resource=obj("document:x"), permission="view", subject=subj("user:ann")),
        BulkCheckPermissionRequestItem(resource=obj("document:x"), permission="view", subject=subj("user:bob")),
        BulkCheckPermissionRequestItem(resource=obj("document:x"), permission="nosuch", subject=subj("user:bob")),
    ]))
    assert answer.checked_at.token.startswith("hw1_")
    assert [p.item.permissionship for p in answer.pairs[:2]] == [HAS, NO]
    assert answer.pairs[2].HasField("error") and answer.pairs[2].error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]


def test_async_client_bulk(fresh: tuple[HeadwaterServer, Client]) -> None:
    server, _ = fresh

    async def run() -> tuple[int, list[str]]:
        client = AsyncClient(server.address, insecure_bearer_token_credentials(TOKENS["admin"][0]))

        async def requests():  # type: ignore[no-untyped-def]
            yield ImportBulkRelationshipsRequest(relationships=[rel("document:async#viewer@user:ann")])

        loaded = (await client.ImportBulkRelationships(requests())).num_loaded
        exported = [text_of(r) async for page in client.ExportBulkRelationships(ExportBulkRelationshipsRequest(
            consistency=FULL, optional_relationship_filter=RelationshipFilter(
                resource_type="document", optional_resource_id="async"))) for r in page.relationships]
        return loaded, exported

    assert asyncio.run(run()) == (1, ["document:async#viewer@user:ann"])


# ------------------------------------------------------------------ WatchService


def watch_request(start: object | None = None, types: list[str] | None = None) -> WatchRequest:
    request = WatchRequest(optional_object_types=types or [])
    if start is not None:
        request.optional_start_cursor.CopyFrom(start)  # type: ignore[arg-type]
    return request


def test_watch_from_a_zedtoken_with_object_types(fresh: tuple[HeadwaterServer, Client]) -> None:
    _, v1 = fresh
    start = write(v1, "document:w1#viewer@user:ann")
    write(v1, "group:eng#member@user:dan")
    write(v1, "document:w1#viewer@user:bob")
    write(v1, "document:w1#viewer@user:ann", operation=DELETE)
    stream = v1.Watch(watch_request(start, ["document"]), timeout=10)
    seen: list[tuple[int, str]] = []
    tokens: list[str] = []
    for response in stream:
        tokens.append(response.changes_through.token)
        seen += [(u.operation, text_of(u.relationship)) for u in response.updates]
        if len(seen) == 2:
            break
    stream.cancel()
    assert seen == [(TOUCH, "document:w1#viewer@user:bob"), (DELETE, "document:w1#viewer@user:ann")]
    assert all(t.startswith("hw1_") for t in tokens) and len(set(tokens)) == 2
    resumed = v1.Watch(watch_request(ZedToken(token=tokens[0]), ["document"]), timeout=10)
    first = next(resumed)
    resumed.cancel()
    assert [text_of(u.relationship) for u in first.updates] == ["document:w1#viewer@user:ann"]


def test_watch_errors_and_scope(server: HeadwaterServer) -> None:
    v1 = v1_client(server)
    fails(lambda: next(v1.Watch(watch_request(ZedToken(token="garbage")), timeout=5)),
          grpc.StatusCode.INVALID_ARGUMENT)
    fails(lambda: next(v1_client(server, "reader").Watch(watch_request(), timeout=5)),
          grpc.StatusCode.PERMISSION_DENIED)
    both = WatchRequest(optional_object_types=["document"],
                        optional_relationship_filters=[RelationshipFilter(resource_type="document")])
    error = fails(lambda: next(v1.Watch(both, timeout=5)), grpc.StatusCode.INVALID_ARGUMENT)
    assert "cannot specify both object types and relationship filters" in error.details()
    unknown = WatchRequest(optional_relationship_filters=[RelationshipFilter(resource_type="nope")])
    fails(lambda: next(v1.Watch(unknown, timeout=5)), grpc.StatusCode.FAILED_PRECONDITION,
          "ERROR_REASON_UNKNOWN_DEFINITION")
    fails(lambda: next(v1.Watch(WatchRequest(optional_update_kinds=[9]), timeout=5)),
          grpc.StatusCode.INVALID_ARGUMENT)


def test_watch_relationship_filters_keep_what_matches_any(fresh: tuple[HeadwaterServer, Client]) -> None:
    _, v1 = fresh
    start = write(v1, "document:f0#viewer@user:ann")
    write(v1, "document:f1#viewer@user:bob", "document:g1#viewer@user:bob", "group:eng#member@user:dan")
    write(v1, "document:f2#viewer@user:cat")
    write(v1, "group:ops#member@user:eve")
    request = WatchRequest(optional_start_cursor=start, optional_relationship_filters=[
        RelationshipFilter(resource_type="document", optional_resource_id_prefix="f"),
        RelationshipFilter(resource_type="group", optional_subject_filter=SubjectFilter(
            subject_type="user", optional_subject_id="eve"))])
    stream = v1.Watch(request, timeout=10)
    seen: list[list[str]] = []
    for response in stream:
        seen.append([text_of(u.relationship) for u in response.updates])
        if len(seen) == 3:
            break
    stream.cancel()
    assert seen == [["document:f1#viewer@user:bob"], ["document:f2#viewer@user:cat"], ["group:ops#member@user:eve"]]


def test_watch_schema_updates_and_checkpoints_in_revision_order(fresh: tuple[HeadwaterServer, Client]) -> None:
    _, v1 = fresh
    start = write(v1, "document:s0#viewer@user:ann")
    write(v1, "document:s1#viewer@user:bob")
    schema = v1.ReadSchema(ReadSchemaRequest()).schema_text
    written = v1.WriteSchema(WriteSchemaRequest(schema=schema + "\ndefinition extra {}\n")).written_at
    after = write(v1, "document:s2#viewer@user:cat")
    request = WatchRequest(optional_start_cursor=start, optional_update_kinds=[
        WATCH_KIND_INCLUDE_RELATIONSHIP_UPDATES, WATCH_KIND_INCLUDE_SCHEMA_UPDATES, WATCH_KIND_INCLUDE_CHECKPOINTS])
    stream = v1.Watch(request, timeout=10)
    seen: list[tuple[str, str]] = []
    for response in stream:
        kind = ("checkpoint" if response.is_checkpoint else "schema" if response.schema_updated
                else ",".join(text_of(u.relationship) for u in response.updates))
        seen.append((kind, response.changes_through.token))
        if response.is_checkpoint:
            break
    stream.cancel()
    assert seen == [("document:s1#viewer@user:bob", seen[0][1]), ("schema", written.token),
                    ("document:s2#viewer@user:cat", after.token), ("checkpoint", after.token)]
    # only checkpoints: an idle stream still hears from the server (a heartbeat), at the head revision
    idle = v1.Watch(WatchRequest(optional_start_cursor=after, optional_update_kinds=[WATCH_KIND_INCLUDE_CHECKPOINTS]),
                    timeout=10)
    first = next(idle)
    idle.cancel()
    assert first.is_checkpoint and not first.updates and first.changes_through.token == after.token


def test_watch_ends_unavailable_when_the_server_drains(make_server: Callable[..., HeadwaterServer]) -> None:
    server = make_server()
    with client_for(server) as c:
        seed(c)
    v1 = v1_client(server)
    start = write(v1, "document:d1#viewer@user:ann")
    write(v1, "document:d1#viewer@user:bob")
    outcome: list[object] = []
    got_first = threading.Event()

    def watch() -> None:
        try:
            for _ in v1.Watch(watch_request(start), timeout=20):
                got_first.set()
        except grpc.RpcError as exc:
            outcome.append(exc.code())
        got_first.set()

    t = threading.Thread(target=watch)
    t.start()
    assert got_first.wait(10)
    server.stop(grace=2)
    t.join(10)
    assert outcome == [grpc.StatusCode.UNAVAILABLE]


def test_watch_async(fresh: tuple[HeadwaterServer, Client]) -> None:
    server, v1 = fresh
    start = write(v1, "document:aw#viewer@user:ann")
    write(v1, "document:aw#viewer@user:bob")

    async def run() -> list[str]:
        client = AsyncClient(server.address, insecure_bearer_token_credentials(TOKENS["admin"][0]))
        async for response in client.Watch(watch_request(start), timeout=10):
            return [text_of(u.relationship) for u in response.updates]
        return []

    assert asyncio.run(run()) == ["document:aw#viewer@user:bob"]


# ------------------------------------------------------------------ ExpandPermissionTree's conversion


def test_expand_tree_to_v1_union_intersection_exclusion_and_leaves() -> None:
    """The conversion ExpandPermissionTree will answer with (the RPC stays UNIMPLEMENTED until
    test_authzed_api's test_rpcs_not_served_yet_are_unimplemented is updated)."""
    from authzed.api.v1 import AlgebraicSubjectSet
    from headwater.engine import Engine
    from headwater.engine.service.authzed.convert import expand_tree_to_v1
    from headwater.engine.store.memory import MemoryStore

    engine = Engine(MemoryStore())
    engine.write_schema("definition user {}\ndefinition group {\n relation member: user\n}\n"
                        "definition doc {\n relation viewer: user | group#member\n relation banned: user\n"
                        " relation cleared: user\n permission view = (viewer - banned) & cleared\n}")
    engine.touch("doc:1#viewer@user:ann", "doc:1#viewer@group:eng#member", "doc:1#banned@user:bob",
                 "doc:1#cleared@user:ann", "group:eng#member@user:cat")
    tree, _ = engine.expand("doc:1", "view")
    v1 = expand_tree_to_v1(tree)
    assert (v1.expanded_object.object_type, v1.expanded_object.object_id, v1.expanded_relation) == ("doc", "1", "view")

    def shape(t: object) -> object:
        if t.HasField("leaf"):  # type: ignore[attr-defined]
            return sorted(f"{s.object.object_type}:{s.object.object_id}" + (f"#{s.optional_relation}"
                          if s.optional_relation else "") for s in t.leaf.subjects)  # type: ignore[attr-defined]
        return (t.intermediate.operation, [shape(c) for c in t.intermediate.children])  # type: ignore[attr-defined]

    flat = str(shape(v1))
    assert "user:ann" in flat and "user:bob" in flat and "group:eng#member" in flat
    ops = set()

    def walk(t: object) -> None:
        if t.HasField("intermediate"):  # type: ignore[attr-defined]
            ops.add(t.intermediate.operation)  # type: ignore[attr-defined]
            for c in t.intermediate.children:  # type: ignore[attr-defined]
                walk(c)

    walk(v1)
    assert {AlgebraicSubjectSet.OPERATION_INTERSECTION, AlgebraicSubjectSet.OPERATION_EXCLUSION} <= ops
