"""Every RPC of headwater.v1 through a real server on 127.0.0.1, compared with the in-process Engine."""

from __future__ import annotations

import threading
import time

import pytest

from headwater.engine import BulkCheckItem, Consistency, Engine, RelationshipFilter, WriteResult
from headwater.engine.membership import found_subjects
from headwater.engine.errors import AlreadyExistsError, InvalidRequestError
from headwater.engine.service.auth import METHOD_SCOPES
from headwater.engine.service.handlers import service_names
from headwater.engine.store import Operation, Precondition, Update
from headwater.engine.store.memory import MemoryStore
from headwater.engine.relationships import parse_relationship

from .conftest import RELATIONSHIPS, SCHEMA, client_for, seed


@pytest.fixture(scope="module")
def local() -> Engine:
    """The same data in an in-process engine: the answers over gRPC must be the same."""
    engine = Engine(MemoryStore())
    engine.write_schema(SCHEMA)
    engine.touch(*RELATIONSHIPS)
    return engine


def test_every_rpc_has_a_scope_and_a_servicer_method() -> None:
    from headwater.engine.service.handlers import SERVICES
    from headwater.engine.service.servicer import Servicer

    full = set()
    for module, name, rename in SERVICES:
        service = module.DESCRIPTOR.services_by_name[name]
        for m in service.methods:
            full.add(f"/{service.full_name}/{m.name}")
            assert callable(getattr(Servicer, rename.get(m.name, m.name)))
    assert full == set(METHOD_SCOPES)
    assert service_names() == ["headwater.v1.PermissionService", "headwater.v1.RelationshipService",
                               "headwater.v1.SchemaService", "headwater.v1.LineageService",
                               "headwater.v1.AuditService", "headwater.v1.GovernanceService"]


@pytest.mark.parametrize("resource, permission, subject, context", [
    ("document:readme", "view", "user:ann", None),
    ("document:readme", "view", "user:bob", None),
    ("document:readme", "view", "user:cat", None),
    ("document:readme", "view", "user:mallory", None),
    ("document:readme", "view", "group:eng#member", None),
    ("document:public", "view", "user:zed", None),
    ("document:tuesday", "view", "user:dan", None),
    ("document:tuesday", "view", "user:dan", {"day": "tue"}),
    ("document:tuesday", "view", "user:dan", {"day": "wed"}),
    ("document:raw", "read", "user:bob", None),
    ("document:report", "read", "user:bob", None),
])
def test_check_matches_the_engine(admin, local, resource, permission, subject, context) -> None:
    remote = admin.check(resource, permission, subject, context=context)
    here = local.check(resource, permission, subject, context=context)
    assert (remote.permissionship, remote.missing_context) == (here.permissionship, here.missing_context)
    assert remote.token.startswith("hw1_")


def test_check_with_explanation(admin, local) -> None:
    remote = admin.check("document:report", "read", "user:bob", explain=True)
    here = local.check("document:report", "read", "user:bob", explain=True)
    assert remote.explanation is not None and here.explanation is not None
    assert remote.explanation.summary == here.explanation.summary
    assert remote.explanation.tree.render() == here.explanation.tree.render()
    assert admin.check("document:readme", "view", "user:ann").explanation is None


def test_consistency_options(admin) -> None:
    token = admin.touch("document:fresh#viewer@user:eve").token
    for consistency in (Consistency.at_least_as_fresh(token), Consistency.at_exact_snapshot(token),
                        Consistency.fully_consistent(), Consistency.minimize_latency(), None):
        r = admin.check("document:fresh", "view", "user:eve", consistency=consistency)
        assert r.allowed and r.revision >= WriteResult(token).revision
    before = admin.remove("document:fresh#viewer@user:eve").token
    assert admin.check("document:fresh", "view", "user:eve", consistency=Consistency.at_exact_snapshot(token)).allowed
    fresh = Consistency.at_least_as_fresh(before)
    assert not admin.check("document:fresh", "view", "user:eve", consistency=fresh).allowed


def test_check_bulk_keeps_item_errors_with_their_item(admin, local) -> None:
    items = [BulkCheckItem("document:readme", "view", "user:bob"),
             BulkCheckItem("document:readme", "nonexistent", "user:bob"),
             BulkCheckItem("document:tuesday", "view", "user:dan"),
             BulkCheckItem("document:readme", "view", "user:mallory")]
    remote = admin.check_bulk(items)
    here = local.check_bulk(items)
    assert [r.item for r in remote] == items
    assert [r.result.permissionship if r.result else None for r in remote] == \
           [r.result.permissionship if r.result else None for r in here]
    assert isinstance(remote[1].error, InvalidRequestError) and remote[1].error.code == "INVALID_ARGUMENT"
    assert str(remote[1].error) == str(here[1].error)
    assert remote[2].result.missing_context == ("day",)


def test_expand_matches_the_engine(admin, local) -> None:
    remote, token = admin.expand("document:readme", "view")
    here, _ = local.expand("document:readme", "view")
    assert remote == here
    assert [f.validation_string() for f in found_subjects(remote)] == \
           [f.validation_string() for f in found_subjects(here)]
    assert token.startswith("hw1_")


def test_lookup_resources_streams_every_result_and_pages(admin, local) -> None:
    remote = admin.lookup_resources("document", "view", "user:bob")
    here = local.lookup_resources("document", "view", "user:bob")
    assert remote.results == here.results and remote.cursor is None
    first = admin.lookup_resources("document", "view", "user:bob", limit=1)
    assert len(first.results) == 1 and first.cursor
    rest = admin.lookup_resources("document", "view", "user:bob", cursor=first.cursor)
    assert first.results + rest.results == here.results
    nothing = admin.lookup_resources("document", "edit", "user:nobody")
    assert nothing.results == [] and nothing.token.startswith("hw1_")


def test_lookup_subjects_matches_the_engine(admin, local) -> None:
    for resource in ("document:readme", "document:public", "document:tuesday"):
        remote = admin.lookup_subjects(resource, "view", "user")
        here = local.lookup_subjects(resource, "view", "user")
        assert remote.results == here.results
    assert admin.lookup_subjects("document:readme", "view", "group", "member").results == \
           local.lookup_subjects("document:readme", "view", "group", "member").results


def test_write_with_preconditions_actor_and_reason(admin) -> None:
    must = Precondition(RelationshipFilter(resource_type="document", resource_id="readme", relation="owner"), True)
    must_not = Precondition(RelationshipFilter(resource_type="document", resource_id="pre"), False)
    rel = parse_relationship("document:pre#viewer@user:eve")
    w = admin.write([Update(Operation.TOUCH, rel)], [must, must_not], actor="user:ann", reason="test")
    assert admin.check("document:pre", "view", "user:eve", consistency=Consistency.at_least_as_fresh(w.token)).allowed
    with pytest.raises(AlreadyExistsError):
        admin.create("document:pre#viewer@user:eve")
    admin.remove("document:pre#viewer@user:eve")


def test_delete_by_filter_with_limit(admin) -> None:
    admin.touch(*(f"document:del{i}#viewer@user:eve" for i in range(5)))
    f = RelationshipFilter(resource_type="document", resource_id_prefix="del")
    partial = admin.delete(f, limit=2, allow_partial=True, actor="user:ann", reason="cleanup")
    assert (partial.deleted, partial.partial) == (2, True)
    rest = admin.delete(f)
    assert (rest.deleted, rest.partial) == (3, False)
    assert admin.read(f)[0] == []


def test_read_streams_with_cursor(admin, local) -> None:
    f = RelationshipFilter(resource_type="document", resource_id="readme")
    everything = admin.read_relationships(f)
    assert [str(r) for r in everything.relationships] == [str(r) for r in local.read(f)[0]]
    page = admin.read_relationships(f, limit=2)
    assert len(page.relationships) == 2 and page.cursor
    rest = admin.read_relationships(f, cursor=page.cursor)
    assert page.relationships + rest.relationships == everything.relationships
    empty = admin.read_relationships(RelationshipFilter(resource_type="document", resource_id="none"))
    assert empty.relationships == [] and empty.token.startswith("hw1_")


def test_read_streams_more_than_one_server_page(make_server) -> None:
    server = make_server(max_page_size=7)
    with client_for(server) as c:
        c.write_schema(SCHEMA)
        c.touch(*(f"document:p{i:02d}#viewer@user:eve" for i in range(30)))
        assert len(c.read_relationships().relationships) == 30
        assert len(c.lookup_resources("document", "view", "user:eve").results) == 30
        assert len(c.read_relationships(limit=10).relationships) == 10
        assert len(c.export_relationships().relationships) == 30


def test_import_and_export(make_server) -> None:
    server = make_server()
    with client_for(server) as c:
        c.write_schema(SCHEMA)
        rels = [f"document:imp{i:03d}#viewer@user:u{i}" for i in range(120)]
        result = c.import_relationships(rels, chunk_size=25, actor="user:ann", reason="bulk load")
        assert (result.count, result.batches) == (120, 3)  # max_updates_per_write is 50
        export = c.export_relationships(batch_size=40)
        assert sorted(str(r) for r in export) == sorted(rels) and export.token == result.token
        with pytest.raises(AlreadyExistsError) as e:
            c.import_relationships(["document:new#viewer@user:x", rels[5]])
        assert "line 2" in str(e.value) and e.value.code == "ALREADY_EXISTS"
        empty = c.export_relationships(RelationshipFilter(resource_type="group"))
        assert empty.relationships == [] and empty.token.startswith("hw1_")


def test_watch_streams_changes_from_a_revision(admin) -> None:
    start = admin.touch("document:w#viewer@user:eve").token
    got = []

    def follow() -> None:
        for event in admin.follow(start, timeout=3.0):
            got.append(event)
            if len(got) == 2:
                return

    t = threading.Thread(target=follow)
    t.start()
    time.sleep(0.2)
    admin.touch("document:w#viewer@user:fay")
    admin.remove("document:w#viewer@user:eve")
    t.join(5)
    assert [(e.operation.name, str(e.relationship)) for e in got] == [
        ("TOUCH", "document:w#viewer@user:fay"), ("DELETE", "document:w#viewer@user:eve")]
    assert got[0].revision < got[1].revision
    events = admin.watch(start, timeout=1.0)
    assert [str(e.relationship) for e in events] == ["document:w#viewer@user:fay", "document:w#viewer@user:eve"]
    assert admin.watch(start, timeout=1.0) == events


def test_watch_filters_resource_types(admin) -> None:
    start = admin.touch("group:w#member@user:eve").token
    admin.touch("group:w#member@user:fay", "document:w2#viewer@user:fay")
    events = list(admin.follow(start, timeout=1.0, resource_types=["document"]))
    assert [str(e.relationship) for e in events] == ["document:w2#viewer@user:fay"]


def test_schema_write_dry_run_read_and_history(make_server) -> None:
    server = make_server()
    with client_for(server) as c:
        first = c.write_schema(SCHEMA, actor="user:ann")
        assert first.accepted and first.version == 1 and not first.dry_run
        c.touch(*RELATIONSHIPS)
        narrower = SCHEMA.replace("    relation banned: user\n", "").replace(" - banned", "")
        report = c.write_schema(narrower, dry_run=True)
        assert report.dry_run and not report.accepted
        assert any("banned" in r and "1 relationship" in r for r in report.refused)
        assert "-    relation banned: user" in report.diff
        ok = c.write_schema(SCHEMA + "\ndefinition extra {}\n", dry_run=True)
        assert ok.accepted and ok.version == 2 and "+definition extra {}" in ok.diff
        text, digest, token = c.read_schema()
        assert digest == first.digest and "definition document" in text and token.startswith("hw1_")
        assert sorted(c.schema().definitions) == ["document", "group", "sensitivity", "user"]
        second = c.write_schema(SCHEMA + "\ndefinition extra {}\n", actor="user:ann")
        old_text, _, _ = c.read_schema(Consistency.at_exact_snapshot(first.token))
        assert "extra" not in old_text and "extra" in c.read_schema()[0]
        history = c.schema_history(include_text=True)
        assert [(v.version, v.actor) for v in history] == [(1, "user:ann"), (2, "user:ann")]
        assert history[1].token == second.token and history[0].text == SCHEMA
        assert c.schema_history()[0].text is None


def test_lineage_effective_labels_ancestors_descendants(admin, local) -> None:
    for obj in ("document:raw", "document:report", "document:readme"):
        assert admin.effective_labels(obj).classifications == local.effective_labels(obj).classifications
    up = admin.ancestors("document:report")
    assert [(str(i.object), i.depth) for i in up.items] == [("document:clean", 1), ("document:raw", 2)]
    assert up.items == local.ancestors("document:report").items
    first = admin.ancestors("document:report", limit=1)
    assert len(first.items) == 1 and first.cursor
    assert admin.ancestors("document:report", limit=1, cursor=first.cursor).items == up.items[1:]
    assert admin.ancestors("document:report", max_depth=1).items == up.items[:1]
    down = admin.descendants("document:raw")
    assert down.items == local.descendants("document:raw").items and len(down.items) == 2


def test_declassification_with_actor_and_reason(make_server) -> None:
    server = make_server()
    with client_for(server) as c:
        seed(c)
        c.touch("document:clean#scrubbed@sensitivity:pii", actor="user:stew", reason="anonymized")
        labels = c.effective_labels("document:clean")
        (label,) = labels.classifications
        assert [d.actor for d in label.declassified] == ["user:stew"]
        assert [d.reason for d in label.declassified] == ["anonymized"]


def test_health_through_the_client(admin) -> None:
    assert admin.health() == "SERVING"
    assert admin.health("headwater.v1.PermissionService") == "SERVING"


def test_check_bulk_malformed_item_fails_alone(admin) -> None:
    from headwater.engine.service.pb import core_pb2, permission_pb2

    def item(object_id: str) -> permission_pb2.CheckBulkRequestItem:
        return permission_pb2.CheckBulkRequestItem(
            resource=core_pb2.ObjectReference(object_type="document", object_id=object_id), permission="view",
            subject=core_pb2.SubjectReference(object=core_pb2.ObjectReference(object_type="user", object_id="bob")))

    response = admin._call(admin._permissions.CheckBulk,
                           permission_pb2.CheckBulkRequest(items=[item("a b"), item("readme")]))
    assert response.pairs[0].error.code_name == "INVALID_ARGUMENT" and "'a b'" in response.pairs[0].error.message
    assert response.pairs[1].item.permissionship == core_pb2.PERMISSIONSHIP_HAS_PERMISSION
    assert response.revision_token.startswith("hw1_")
