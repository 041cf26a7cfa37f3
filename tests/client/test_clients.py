"""headwater.client against a real server: the asyncio client in every method family, the same answers as the
blocking one, per-call deadlines, which calls are safe to retry, and the docstring examples."""

from __future__ import annotations

import asyncio
import doctest
import importlib
import json
import threading
import time
from pathlib import Path

import pytest

from headwater.client import (
    AlreadyExistsError,
    AsyncClient,
    BulkCheckItem,
    Client,
    NO_RETRY,
    EngineError,
    NotFoundError,
    Relationship,
    RetryPolicy,
)
from headwater.client import calls
from headwater.client.retry import ADMISSION_MARKER, SAFE_UNARY_METHODS
from headwater.engine.budget import Budget
from headwater.engine.errors import LimitExceededError
from headwater.engine.service.admission import HeavyCalls
from headwater.engine.service.server import HeadwaterServer
from headwater.engine.store import Operation, Precondition, RelationshipFilter, Update

from tests.service.conftest import RELATIONSHIPS, SCHEMA

from .conftest import free_port, start_server

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def test_the_async_client_answers_every_method_family(server: HeadwaterServer) -> None:
    async def main() -> None:
        async with AsyncClient(server.address, timeout=10.0) as c:
            await c.wait_ready(5.0)
            assert await c.health() == "SERVING"
            # checks, lookups, expand
            assert (await c.check("document:readme", "view", "user:bob")).allowed
            assert not (await c.check("document:readme", "view", "user:mallory")).allowed
            bulk = await c.check_bulk([BulkCheckItem("document:readme", "view", "user:cat"),
                                       BulkCheckItem("document:readme", "nope", "user:cat")])
            assert bulk[0].result is not None and bulk[0].result.allowed and bulk[1].error is not None
            page = await c.lookup_resources("document", "view", "user:bob")
            assert {"readme", "raw", "report"} <= {r.resource_id for r in page.results} and page.token
            subjects = await c.lookup_subjects("document:readme", "view", "user")
            assert "bob" in {s.subject.id for s in subjects.results}
            tree, token = await c.expand("document:readme", "view")
            assert tree is not None and token
            # relationships: writes, reads, export, import, delete, watch
            written = await c.touch("document:async#viewer@user:zed", actor="user:admin")
            await c.create("document:async#viewer@user:yan")
            with pytest.raises(AlreadyExistsError):
                await c.create("document:async#viewer@user:yan")
            rels, _ = await c.read(RelationshipFilter("document", "async"))
            assert {str(r) for r in rels} == {"document:async#viewer@user:yan", "document:async#viewer@user:zed"}
            first = await c.read_relationships(RelationshipFilter("document", "async"), limit=1)
            assert len(first.relationships) == 1 and first.cursor
            events = await c.watch(written.token, timeout=0.5)
            assert [str(e.relationship) for e in events] == ["document:async#viewer@user:yan"]
            imported = await c.import_relationships(f"document:imp#viewer@user:u{i}" for i in range(7))
            assert imported.count == 7
            exported = await c.export_relationships(RelationshipFilter("document", "imp"))
            assert len(exported.relationships) == 7
            await c.remove("document:async#viewer@user:zed")
            deleted = await c.delete(RelationshipFilter("document", "imp"))
            assert deleted.deleted == 7
            # schema
            text, digest, _ = await c.read_schema()
            report = await c.write_schema(text, dry_run=True)
            assert report.accepted and report.dry_run
            assert [v.version for v in await c.schema_history()]
            assert "document" in (await c.schema()).definitions
            # lineage
            labels = await c.effective_labels("document:report")
            assert labels.classifications
            assert [i.object for i in (await c.ancestors("document:report")).items]
            assert (await c.descendants("document:raw")).items
            # audit
            records = (await c.audit_query(kind="relationships")).records
            assert records
            lines = [json.loads(line) async for line in c.audit_export(kind="schema")]
            assert lines and all(line["kind"] == "schema" for line in lines)
            assert (await c.audit_verify()).ok
            decision = (await c.audit_query(kind="decision", limit=1)).records
            if decision:
                assert (await c.audit_replay(decision[0].id)).available in (True, False)
            # errors keep their engine class
            with pytest.raises(NotFoundError):
                await c.audit_replay(10**9)

    run(main())


def test_async_follow_is_an_async_iterator(server: HeadwaterServer) -> None:
    async def main() -> list[str]:
        async with AsyncClient(server.address, timeout=10.0) as c:
            start = (await c.touch("document:f#viewer@user:a")).token
            await c.touch("document:f#viewer@user:b")
            return [str(e.relationship) async for e in c.follow(start, timeout=0.5)]

    assert run(main()) == ["document:f#viewer@user:b"]


def test_sync_and_async_clients_give_the_same_answers(server: HeadwaterServer) -> None:
    with Client(server.address, timeout=10.0) as sync:
        expected = (sync.check("document:readme", "view", "user:cat"),
                    sync.lookup_resources("document", "view", "user:bob").results,
                    sync.effective_labels("document:report"), sync.read_schema())

    async def main():  # type: ignore[no-untyped-def]
        async with AsyncClient(server.address, timeout=10.0) as c:
            return (await c.check("document:readme", "view", "user:cat"),
                    (await c.lookup_resources("document", "view", "user:bob")).results,
                    await c.effective_labels("document:report"), await c.read_schema())

    got = run(main())
    assert got[0].permissionship == expected[0].permissionship
    assert got[1:] == expected[1:]


def test_a_call_deadline_overrides_the_clients() -> None:
    """With wait_for_ready, a call to a server that is not there waits for its deadline: the call's, not the
    client's 60 s."""
    with Client(f"127.0.0.1:{free_port()}", timeout=60.0, wait_for_ready=True) as c:
        started = time.monotonic()
        with pytest.raises(EngineError) as caught:
            c.check("document:readme", "view", "user:bob", timeout=0.5)
        assert caught.value.code == "DEADLINE_EXCEEDED"  # type: ignore[attr-defined]
        assert time.monotonic() - started < 20


def test_the_old_import_paths_are_the_new_client() -> None:
    from headwater.engine.client import Client as EngineClient
    from headwater.engine.service.client import Client as ServiceClient

    assert EngineClient is Client and ServiceClient is Client


# --- which calls are safe to repeat -------------------------------------------------------------------------------


def _update(op: Operation) -> Update:
    return Update(op, calls.rel("document:a#viewer@user:b"))


def test_only_repeatable_writes_are_retried() -> None:
    assert calls.write([_update(Operation.TOUCH), _update(Operation.DELETE)]).safe
    assert not calls.write([_update(Operation.CREATE)]).safe
    assert not calls.write([_update(Operation.TOUCH), _update(Operation.CREATE)]).safe
    precondition = Precondition(RelationshipFilter("document"), must_match=True)
    assert not calls.write([_update(Operation.TOUCH)], [precondition]).safe
    assert calls.delete(RelationshipFilter("document")).safe
    assert not calls.delete(RelationshipFilter("document"), limit=10).safe
    assert calls.write_schema("definition user {}").safe and calls.check("document:a", "view", "user:b").safe
    assert {("headwater.v1.RelationshipService", "Write"), ("headwater.v1.RelationshipService", "Delete"),
            ("headwater.v1.RelationshipService", "Import")}.isdisjoint(SAFE_UNARY_METHODS)


def test_resource_exhausted_is_retried_only_for_the_admission_control() -> None:
    gate = HeavyCalls(1, waiting=0)
    gate.enter(Budget())
    with pytest.raises(LimitExceededError) as refused:
        gate.enter(Budget())
    gate.leave()
    policy = RetryPolicy()
    assert ADMISSION_MARKER in str(refused.value)
    assert policy.retryable("RESOURCE_EXHAUSTED", str(refused.value))
    assert not policy.retryable("RESOURCE_EXHAUSTED", "too many updates (max_updates_per_write)")
    assert not RetryPolicy(codes=frozenset({"UNAVAILABLE"})).retryable("RESOURCE_EXHAUSTED", str(refused.value))


def test_the_service_config_is_grpcs_retry_policy() -> None:
    config = json.loads(RetryPolicy(max_attempts=9, initial_backoff=0.2, max_backoff=3.0).service_config())
    [method_config] = config["methodConfig"]
    assert method_config["retryPolicy"] == {"maxAttempts": 3, "initialBackoff": "0.200s", "maxBackoff": "0.800s",
                                            "backoffMultiplier": 2.0, "retryableStatusCodes": ["UNAVAILABLE"]}
    assert {"service": "headwater.v1.PermissionService", "method": "Check"} in method_config["name"]
    assert json.loads(RetryPolicy(max_attempts=1).service_config()) == {"methodConfig": []}


@pytest.mark.parametrize("bad", [dict(max_attempts=0), dict(initial_backoff=0), dict(max_backoff=0.01),
                                 dict(multiplier=0.5), dict(jitter=2)])
def test_a_retry_policy_refuses_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**bad)  # type: ignore[arg-type]


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=1.0, multiplier=2.0, jitter=0.5)
    for retry in range(8):
        full = min(1.0, 0.1 * 2**retry)
        assert full / 2 <= policy.backoff(retry) <= full


def test_a_relationship_object_passes_through() -> None:
    relationship = calls.rel("document:a#viewer@user:b")
    assert isinstance(relationship, Relationship) and calls.rel(relationship) is relationship


@pytest.mark.parametrize("name", ["headwater._lazy", "headwater.client", "headwater.client.retry",
                                  "headwater.client.calls", "headwater.client.base", "headwater.dsl.caveat_names"])
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_a_heavy_call_refused_for_now_is_retried_until_a_turn_frees(tmp_path: Path) -> None:
    """A server with one heavy-call turn and no waiting: while the turn is taken, a lookup is refused at once
    (RESOURCE_EXHAUSTED, "retry later"); the client retries it and gets its answer once the turn is free."""
    server = start_server(tmp_path / "hw.db", heavy_calls=1, workers=3)
    try:
        with Client(server.address, timeout=20.0) as c:
            c.write_schema(SCHEMA)
            c.touch(*RELATIONSHIPS)
            gate = server.servicer.heavy_calls  # type: ignore[union-attr]
            gate.enter(Budget())  # the one turn, taken
            with Client(server.address, timeout=20.0, retry=NO_RETRY) as once, \
                    pytest.raises(LimitExceededError) as refused:
                once.lookup_resources("document", "view", "user:bob")
            assert refused.value.code == "RESOURCE_EXHAUSTED"  # type: ignore[attr-defined]
            threading.Timer(0.5, gate.leave).start()
            started = time.monotonic()
            page = c.lookup_resources("document", "view", "user:bob")
            assert "readme" in {r.resource_id for r in page.results}
            assert 0.2 < time.monotonic() - started < 15  # it waited for the turn, then got in
    finally:
        server.stop(grace=0)
