"""LineageService.Derive through the clients (blocking and asyncio) against a real server: a derivation recorded in
one write and answered at its revision, a repeat that writes nothing, a cycle refused whole with the code a cyclic
Write gets, a bad lineage relation INVALID_ARGUMENT, the `write` scope required, the write and the decisions
audited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from headwater.client import AsyncClient, Client, DeriveResult, RemoteError, calls
from headwater.client.retry import SAFE_UNARY_METHODS
from headwater.engine import Consistency, RelationshipFilter
from headwater.engine.consistency import decode_token
from headwater.engine.errors import InvalidRequestError, LimitExceededError, LineageCycleError
from headwater.engine.service.server import HeadwaterServer

from .conftest import TOKENS, client_for, seed


@pytest.fixture(scope="module")
def server(make_server: Callable[..., HeadwaterServer]) -> HeadwaterServer:
    """A seeded, audited server for this module (its tests derive distinct objects)."""
    s = make_server(audit=True)
    with client_for(s) as c:
        seed(c)
    return s


def _head(client: Client) -> str:
    return client.read_relationships(RelationshipFilter("document"), limit=1).token


def _values(result: DeriveResult) -> dict[str, tuple[str, ...]]:
    return {v.value: v.paths for c in result.labels.classifications for v in c.values}


def test_a_derivation_is_answered_at_the_revision_it_wrote(server: HeadwaterServer) -> None:
    with client_for(server, "writer") as c:
        before = _head(c)
        result = c.derive("document:d1", {"derived_from": ["document:raw"]},
                          relationships=["document:d1#viewer@user:bob", "document:d1#viewer@user:dan[on_tuesday]"],
                          checks=[("read", "user:bob"), ("read", "user:ann"), ("view", "user:dan")],
                          context={"day": "tue"}, actor="user:pipeline", reason="inference 42")
        assert isinstance(result, DeriveResult) and result.written and result.token != before
        assert _values(result) == {"confidential": ("document:d1 -derived_from-> document:raw",),
                                   "pii": ("document:d1 -derived_from-> document:raw",)}
        assert result.labels.token == result.token and str(result.labels.object) == "document:d1"
        assert [(d.permissionship.name, d.token) for d in result.decisions] == [
            ("HAS_PERMISSION", result.token), ("NO_PERMISSION", result.token), ("HAS_PERMISSION", result.token)]
        at = Consistency.at_exact_snapshot(result.token)
        assert c.effective_labels("document:d1", consistency=at) == result.labels  # the same answer as asked alone
        stored = c.read_relationships(RelationshipFilter("document", "d1"), consistency=at).relationships
        assert sorted(map(str, stored)) == ["document:d1#derived_from@document:raw", "document:d1#viewer@user:bob",
                                            "document:d1#viewer@user:dan[on_tuesday]"]
        # without the caveat's context, the same check is conditional
        again = c.derive("document:d1", {"derived_from": ["document:raw"]}, checks=[("view", "user:dan")])
        assert again.decisions[0].permissionship.name == "CONDITIONAL_PERMISSION"
        assert again.decisions[0].missing_context == ("day",)


def test_the_same_derivation_again_writes_nothing(server: HeadwaterServer) -> None:
    with client_for(server, "writer") as c:
        derivation: dict[str, Any] = dict(obj="document:d2", lineage={"derived_from": ["document:clean"]},
                                          relationships=["document:d2#owner@user:ann"])
        first = c.derive(**derivation)
        again = c.derive(**derivation, checks=[("edit", "user:ann")])
        assert first.written and not again.written
        assert again.token == first.token == _head(c)  # nothing written since
        assert again.labels.classifications == first.labels.classifications
        assert [d.permissionship.name for d in again.decisions] == ["HAS_PERMISSION"]
        more = c.derive("document:d2", {"derived_from": ["document:clean", "document:raw"]})
        assert more.written and more.token != first.token


def test_a_cycle_is_refused_whole_with_the_code_of_a_cyclic_write(server: HeadwaterServer) -> None:
    with client_for(server, "writer") as c:
        c.derive("document:c2", {"derived_from": ["document:c1"]})
        head = _head(c)
        with pytest.raises(LineageCycleError) as refused:
            c.derive("document:c1", {"derived_from": ["document:c2"]}, relationships=["document:c1#owner@user:ann"],
                     checks=[("edit", "user:ann")])
        assert refused.value.code == "INVALID_ARGUMENT"
        assert "document:c1 -derived_from-> document:c2 -derived_from-> document:c1" in str(refused.value)
        assert _head(c) == head  # nothing written, not even the owner
        assert c.read_relationships(RelationshipFilter("document", "c1")).relationships == []
        with pytest.raises(LineageCycleError) as written:
            c.touch("document:c1#derived_from@document:c2")
        assert written.value.code == refused.value.code


@pytest.mark.parametrize("lineage, relationships, message", [
    ({"viewer": ["document:raw"]}, (), "`viewer` is not a lineage relation of `document`"),
    ({}, (), "needs its lineage"),
    ({"derived_from": []}, (), "names no object"),
    ({"derived_from": ["document:raw"]}, ["document:other#viewer@user:bob"], "are the derived object's"),
])
def test_a_bad_derivation_is_invalid_argument(server: HeadwaterServer, lineage: dict, relationships: tuple,
                                              message: str) -> None:
    with client_for(server, "writer") as c:
        head = _head(c)
        with pytest.raises(InvalidRequestError, match=message) as refused:
            c.derive("document:bad", lineage, relationships=relationships)
        assert refused.value.code == "INVALID_ARGUMENT" and _head(c) == head


def test_too_many_checks_are_refused(server: HeadwaterServer) -> None:
    with client_for(server, "writer") as c, pytest.raises(LimitExceededError, match="max_bulk_check_items"):
        c.derive("document:many", {"derived_from": ["document:raw"]}, checks=[("read", "user:bob")] * 21)
    with client_for(server, "writer") as c:
        assert c.read_relationships(RelationshipFilter("document", "many")).relationships == []


@pytest.mark.parametrize("who", ["reader", "schemer", "auditor"])
def test_derive_needs_the_write_scope(server: HeadwaterServer, who: str) -> None:
    assert "write" not in TOKENS[who][1]
    with client_for(server, who) as c, pytest.raises(RemoteError) as refused:
        c.derive("document:denied", {"derived_from": ["document:raw"]})
    assert refused.value.code == "PERMISSION_DENIED" and "lacks the write scope" in str(refused.value)
    with client_for(server, "writer") as c:
        assert c.read_relationships(RelationshipFilter("document", "denied")).relationships == []


def _records(client: Client, **filters: Any) -> list[Any]:
    deadline = time.monotonic() + 10
    while True:  # the server records in the background
        records = client.audit_query(**filters).records
        if records or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


def test_the_write_and_the_decisions_are_audited(server: HeadwaterServer) -> None:
    with client_for(server, "writer") as c:
        result = c.derive("document:d3", {"derived_from": ["document:raw"]},
                          relationships=["document:d3#owner@user:ann"], checks=[("read", "user:bob")],
                          actor="user:audited", reason="inference 43")
    with client_for(server, "admin") as admin:
        writes = _records(admin, kind="relationships", actor="user:audited")
        assert [(r.get("reason"), r.get("count"), r.revision) for r in writes] == [
            ("inference 43", 2, decode_token(result.token))]
        decisions = _records(admin, kind="decision", resource="document:d3")
        assert [(r.permission, r.caller) for r in decisions] == [("read", "writer")]


def test_the_async_client_derives_too(server: HeadwaterServer) -> None:
    async def main() -> tuple[DeriveResult, DeriveResult]:
        async with AsyncClient(server.address, token=TOKENS["writer"][0], timeout=10.0) as c:
            first = await c.derive("document:a1", {"derived_from": ["document:raw"]},
                                   relationships=["document:a1#viewer@user:bob"], checks=[("read", "user:bob")])
            return first, await c.derive("document:a1", {"derived_from": ["document:raw"]},
                                         relationships=["document:a1#viewer@user:bob"])

    first, again = asyncio.run(main())
    assert first.written and not again.written and again.token == first.token
    assert _values(first)["pii"] == ("document:a1 -derived_from-> document:raw",)
    assert [d.permissionship.name for d in first.decisions] == ["HAS_PERMISSION"]


def test_derive_is_retried_by_the_clients_loop_only() -> None:
    assert calls.derive("document:x", {"derived_from": ["document:raw"]}).safe
    assert ("headwater.v1.LineageService", "Derive") not in SAFE_UNARY_METHODS
