"""GovernanceService.Impact through the clients (blocking and asyncio) against a real audited server: the recorded
decisions a proposed schema or relationship change would change, the same answer the engine gives over the same
database, nothing written or recorded, a refused proposal reported, the window and the limit, bad requests
INVALID_ARGUMENT before anything is evaluated, and the `audit` scope required."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from headwater.client import AsyncClient, ChangeImpact
from headwater.client.retry import SAFE_UNARY_METHODS
from headwater.engine import Engine, RelationshipFilter
from headwater.client import RemoteError
from headwater.dsl import DslError
from headwater.engine.errors import InvalidRequestError, LimitExceededError
from headwater.engine.governance.impact import parse_changes
from headwater.engine.service.server import HeadwaterServer

from .conftest import LIMITS, SCHEMA, TOKENS, client_for, seed

#: The seeded schema with `view` no longer subtracting `banned`: opens mallory's recorded denial.
NO_BANS = SCHEMA.replace("permission view = (viewer + edit) - banned", "permission view = viewer + edit")


@pytest.fixture(scope="module")
def server(make_server: Callable[..., HeadwaterServer]) -> Iterator[HeadwaterServer]:
    """A seeded, audited server with four recorded decisions (its tests only read)."""
    s = make_server(audit=True)
    with client_for(s, "admin") as c:
        seed(c)
        c.touch("document:readme#viewer@user:mallory")  # a viewer, and banned
        for subject in ("user:bob", "user:cat", "user:mallory"):
            c.check("document:readme", "view", subject)
        c.check("document:report", "read", "user:bob")
    s.engine.flush_audit()
    yield s


def _head_and_records(server: HeadwaterServer) -> tuple[str, int]:
    server.engine.flush_audit()
    with client_for(server, "admin") as c:
        head = c.read_relationships(RelationshipFilter("document"), limit=1).token
        return head, len(c.audit_query(limit=1000).records)


def test_a_schema_proposal_lists_the_decisions_it_changes(server: HeadwaterServer) -> None:
    with client_for(server, "auditor") as c:
        before = _head_and_records(server)
        impact = c.impact(schema=NO_BANS)
        assert isinstance(impact, ChangeImpact)
        assert (impact.decisions, impact.checks, impact.skipped, impact.refused) == (4, 4, 0, ())
        assert [(x.change, x.resource, x.permission, x.subject, x.before, x.after) for x in impact.changes] == [
            ("opened", "document:readme", "view", "user:mallory", "NO_PERMISSION", "HAS_PERMISSION")]
        assert impact.changes[0].explanation and len(impact.changes[0].records) == 1
        assert _head_and_records(server) == before  # nothing written, nothing recorded


def test_a_relationship_proposal_and_the_engine_agree(server: HeadwaterServer) -> None:
    proposal = parse_changes("-sensitivity:pii#cleared@user:bob\n-group:eng#member@user:cat")
    with client_for(server, "auditor") as c:
        remote = c.impact(updates=proposal)
    with Engine.open(server.config.storage.db) as engine:  # the same database, asked in-process
        local = engine.impact(updates=proposal)
    assert remote == local
    assert {(x.resource, x.subject, x.change) for x in remote.changes} == {
        ("document:readme", "user:cat", "closed"), ("document:report", "user:bob", "closed")}
    assert (remote.opened, remote.closed) == (0, 2)


def test_the_async_client_asks_too_and_a_baseline_compares_two_schemas(server: HeadwaterServer) -> None:
    async def ask() -> ChangeImpact:
        async with AsyncClient(server.address, token=TOKENS["auditor"][0], timeout=10.0) as c:
            return await c.impact(schema=SCHEMA, baseline=NO_BANS)

    impact = asyncio.run(ask())
    assert [(x.subject, x.change) for x in impact.changes] == [("user:mallory", "closed")]


def test_a_proposal_a_write_would_refuse_is_reported_not_evaluated(server: HeadwaterServer) -> None:
    with client_for(server, "auditor") as c:
        impact = c.impact(updates=parse_changes("document:raw#derived_from@document:report"))  # a lineage cycle
        assert impact.refused and "cyclic" in impact.refused[0] and impact.changes == () and impact.checks == 0
        orphaning = SCHEMA.replace("    relation banned: user\n", "").replace(" - banned", "")
        assert any("banned" in reason for reason in c.impact(schema=orphaning).refused)


def test_the_window_and_the_limit(server: HeadwaterServer) -> None:
    with client_for(server, "auditor") as c:
        future = datetime.now(UTC) + timedelta(days=1)
        assert c.impact(schema=NO_BANS, since=future).decisions == 0
        assert c.impact(schema=NO_BANS, until=future).decisions == 4
        newest = c.impact(schema=NO_BANS, limit=1)  # the newest record only: bob's read of the report
        assert (newest.decisions, newest.changes) == (1, ())


def test_bad_requests_are_refused_and_the_audit_scope_is_needed(server: HeadwaterServer) -> None:
    with client_for(server, "auditor") as c:
        with pytest.raises(InvalidRequestError, match="nothing proposed"):
            c.impact()
        with pytest.raises(DslError, match="line 1, column 12"):
            c.impact(schema="definition {")
        too_many = parse_changes("\n".join(f"document:x{i}#viewer@user:u{i}"
                                           for i in range(LIMITS["max_updates_per_write"] + 1)))
        with pytest.raises(LimitExceededError, match="max_updates_per_write"):
            c.impact(updates=too_many)
    for who in ("reader", "writer"):
        with client_for(server, who) as c, pytest.raises(RemoteError) as refused:
            c.impact(schema=NO_BANS)
        assert refused.value.code == "PERMISSION_DENIED" and "lacks the audit scope" in str(refused.value)


def test_impact_is_retried_as_a_read() -> None:
    assert ("headwater.v1.GovernanceService", "Impact") in SAFE_UNARY_METHODS
