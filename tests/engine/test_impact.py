"""Change impact (engine/governance/impact.py): exactly the recorded decisions whose answer a proposal changes,
and nothing written.

The property test builds random data, records a decision for every check, proposes a random schema change
and/or relationship changes, and compares the impact with the answers of a second engine that holds the
proposed schema and data: the impact must list exactly the checks whose answers differ, with both answers.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from headwater.dsl import DslError
from headwater.engine import Config, Engine, EngineError, InvalidRequestError, PreconditionFailedError
from headwater.engine.governance.impact import ERROR, parse_changes
from headwater.engine.relationships import parse_relationship
from headwater.engine.store import Operation, Update
from headwater.engine.store.memory import MemoryStore
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ai-lineage"
NOW = datetime(2030, 1, 1, tzinfo=UTC)

# --- the property: random schemas and data --------------------------------------------------------------

DOCS, USERS, GROUPS = ("d1", "d2", "d3"), ("u1", "u2", "u3"), ("g1", "g2")
LEAVES = ("owner", "viewer", "banned", "parent->owner", "parent->view")
POSSIBLE = sorted({f"doc:{d}#{r}@user:{u}" for d in DOCS for r in ("owner", "viewer", "banned") for u in USERS}
                  | {f"doc:{d}#viewer@group:{g}#member" for d in DOCS for g in GROUPS}
                  | {f"doc:{d}#parent@doc:{p}" for d in DOCS for p in DOCS if p != d}
                  | {f"group:{g}#member@user:{u}" for g in GROUPS for u in USERS}
                  | {"group:g1#member@group:g2#member", "group:g2#member@group:g1#member"})


def _expressions() -> st.SearchStrategy[str]:
    return st.recursive(st.sampled_from(LEAVES), lambda inner: st.builds(
        lambda a, op, b: f"({a} {op} {b})", inner, st.sampled_from("+&-"), inner), max_leaves=5)


def _schema(view: str, audit: str | None) -> str:
    extra = f"\n    permission audit = {audit}" if audit is not None else ""
    return ("definition user {}\ndefinition group {\n    relation member: user | group#member\n}\n"
            "definition doc {\n    relation parent: doc\n    relation owner: user\n"
            "    relation viewer: user | group#member\n    relation banned: user\n"
            f"    permission view = {view}{extra}\n}}\n")


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, str | None, list[str], list[Update]]:
    old = _schema(draw(_expressions()), draw(_expressions()))
    new = _schema(draw(_expressions()), draw(st.none() | _expressions())) if draw(st.booleans()) else None
    data = draw(st.lists(st.sampled_from(POSSIBLE), unique=True, max_size=14))
    changes = draw(st.dictionaries(st.sampled_from(POSSIBLE), st.sampled_from([Operation.TOUCH, Operation.DELETE]),
                                   max_size=4))
    if new is None and not changes:
        changes = {POSSIBLE[0]: Operation.TOUCH}
    return old, new, data, [Update(op, parse_relationship(r)) for r, op in sorted(changes.items())]


def _answers(engine: Engine) -> dict[tuple[str, str, str], str]:
    out = {}
    for d, permission, u in itertools.product(DOCS, ("view", "audit"), USERS):
        try:
            out[(f"doc:{d}", permission, f"user:{u}")] = engine.check(f"doc:{d}", permission, f"user:{u}") \
                .permissionship.value
        except EngineError:
            out[(f"doc:{d}", permission, f"user:{u}")] = ERROR
    return out


def _engine(schema: str, data: list[str], *, audit: bool = False) -> Engine:
    clock = lambda: NOW
    engine = Engine(MemoryStore(clock=clock), config=Config.of(audit=audit, audit_decisions="all"), clock=clock)
    engine.write_schema(schema)
    if data:
        engine.touch(*data)
    return engine


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_the_impact_lists_exactly_the_decisions_that_change(
        case: tuple[str, str | None, list[str], list[Update]]) -> None:
    old, new, data, updates = case
    engine = _engine(old, data, audit=True)
    proposed = _engine(new or old, data)
    try:
        before = _answers(engine)  # each check recorded as a decision
        if updates:
            proposed.write(updates)
        after = _answers(proposed)
        head, count = engine.store.head(), len(engine.audit_query(limit=1000).records)
        impact = engine.impact(schema=new, updates=updates)
        assert impact.refused == () and impact.checks == len(before) == impact.decisions
        expected = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        assert {(c.resource, c.permission, c.subject): (c.before, c.after) for c in impact.changes} == expected
        assert impact.opened == sum(1 for b, a in expected.values() if a == "HAS_PERMISSION")
        assert impact.closed == sum(1 for b, a in expected.values() if b == "HAS_PERMISSION")
        for change in impact.changes:
            assert len(change.records) == 1 and change.explanation
        # nothing written, nothing recorded; and the checks asked afterwards still give the stored answers
        assert engine.store.head() == head and len(engine.audit_query(limit=1000).records) == count
        assert _answers(engine) == before
    finally:
        engine.close()
        proposed.close()


# --- the walkthrough: opening restricted outputs to a team -----------------------------------------------


@pytest.fixture
def lineage_engine(tmp_path: Path) -> Engine:
    from tests.cli.conftest import example_relationships

    engine = Engine.open(str(tmp_path / "h.db"), config=Config.of(audit=True))
    engine.write_schema((EXAMPLE / "policy.zed").read_text(encoding="utf-8"))
    engine.touch(*example_relationships(), actor="user:stew", reason="seed")
    for output, user in itertools.product(("output:o1", "output:o2", "output:o3"),
                                          ("alice", "bob", "carol", "erin", "frank")):
        engine.check(output, "view", f"user:{user}", caller="analytics-api")
    yield engine
    engine.close()


def test_dropping_cleared_opens_restricted_outputs(lineage_engine: Engine) -> None:
    engine = lineage_engine
    policy = (EXAMPLE / "policy.zed").read_text(encoding="utf-8")
    head, count = engine.store.head(), len(engine.audit_query(limit=1000).records)
    impact = engine.impact(schema=policy.replace("permission view = requester & cleared",
                                                 "permission view = requester"))
    assert [(c.resource, c.subject, c.change) for c in impact.changes] == [
        ("output:o1", "user:bob", "opened"), ("output:o2", "user:frank", "opened")]
    assert (impact.decisions, impact.checks, impact.opened, impact.closed) == (15, 15, 2, 0)
    assert impact.changes[1].explanation == ("granted: output:o2#view for user:frank",
                                             "  by output:o2#requester@user:frank")
    assert engine.store.head() == head and len(engine.audit_query(limit=1000).records) == count


def test_clearing_a_team_opens_confidential_outputs(lineage_engine: Engine) -> None:
    engine = lineage_engine
    impact = engine.impact(updates=parse_changes("+sensitivity:restricted#cleared@team:analysts#member\n"
                                                 "+sensitivity:pii#cleared@user:frank\n"))
    assert [(c.resource, c.subject, c.before, c.after) for c in impact.changes] == [
        ("output:o2", "user:frank", "NO_PERMISSION", "HAS_PERMISSION")]
    closing = engine.impact(updates=parse_changes("-sensitivity:confidential#cleared@team:analysts#member"))
    assert [(c.resource, c.subject, c.change) for c in closing.changes] == [("output:o2", "user:alice", "closed")]
    assert closing.changes[0].explanation[0] == "denied: output:o2#view for user:alice"
    # the answers asked after the what-ifs are the stored ones (no what-if answer was cached)
    assert engine.check("output:o2", "view", "user:frank").permissionship.value == "NO_PERMISSION"
    assert engine.check("output:o2", "view", "user:alice").allowed


def test_a_refused_proposal_is_reported_not_evaluated(lineage_engine: Engine) -> None:
    policy = (EXAMPLE / "policy.zed").read_text(encoding="utf-8")
    narrower = policy.replace("    relation steward: user\n", "", 1).replace(
        "declassify scrubbed: sensitivity by steward", "relation scrubbed: sensitivity")
    impact = lineage_engine.impact(schema=narrower)
    assert impact.changes == () and impact.checks == 0
    assert impact.refused == ("cannot remove relation `dataset#steward`: 1 relationship still uses `dataset#steward`",)
    invalid = lineage_engine.impact(updates=parse_changes("output:o1#requester@team:x"))
    assert invalid.refused[0].startswith("output:o1#requester@team:x: ") and invalid.checks == 0
    cyclic = lineage_engine.impact(updates=parse_changes("+dataset:claims#derived_from@dataset:merged"))
    assert "cyclic" in cyclic.refused[0]


def test_removed_permission_is_an_error_change(lineage_engine: Engine) -> None:
    policy = (EXAMPLE / "policy.zed").read_text(encoding="utf-8")
    impact = lineage_engine.impact(schema=policy.replace("    permission view = requester & cleared\n", ""))
    assert {c.after for c in impact.changes} == {ERROR} and len(impact.changes) == 15
    assert impact.closed == 3 and impact.errors == 12  # o1 frank, o2 alice, o3 bob had it
    assert "not found" in impact.changes[0].explanation[0]


def test_window_limit_and_skipped_contexts() -> None:
    times = iter([NOW, NOW + timedelta(hours=1), NOW + timedelta(hours=2), NOW + timedelta(hours=3)])
    moment = [NOW]
    engine = Engine(MemoryStore(), config=Config.of(audit=True), clock=lambda: moment[0])
    try:
        engine.write_schema("use expiration\ncaveat small(n int) {\n  n < 3\n}\ndefinition user {}\n"
                            "definition doc {\n relation viewer: user | user with small\n permission view = viewer\n}")
        engine.touch("doc:1#viewer@user:ann", "doc:1#viewer@user:bob[small]")
        for subject in ("user:ann", "user:bob", "user:ann"):
            moment[0] = next(times)
            engine.check("doc:1", "view", subject)
        moment[0] = next(times)
        engine.check("doc:1", "view", "user:bob", context={"n": 1})
        remove_all = parse_changes("-doc:1#viewer@user:ann\n-doc:1#viewer@user:bob[small]")
        everything = engine.impact(updates=remove_all)
        assert (everything.decisions, everything.checks, everything.skipped) == (4, 2, 1)
        assert [(c.subject, c.change, c.records) for c in everything.changes] == [
            ("user:ann", "closed", (3, 5)), ("user:bob", "conditional", (4,))]
        assert everything.changes[1].before_missing == ("n",) and everything.changes[1].after_missing == ()
        window = engine.impact(updates=remove_all, since=NOW + timedelta(minutes=30), until=NOW + timedelta(hours=2))
        assert [c.records for c in window.changes] == [(4,)]
        newest = engine.impact(updates=remove_all, limit=2)
        assert (newest.decisions, newest.skipped, [c.records for c in newest.changes]) == (2, 1, [(5,)])
    finally:
        engine.close()


def test_bad_requests() -> None:
    engine = _engine("definition user {}", [], audit=True)
    try:
        with pytest.raises(InvalidRequestError, match="nothing proposed"):
            engine.impact()
        with pytest.raises(InvalidRequestError, match="limit"):
            engine.impact(schema="definition user {}", limit=0)
        with pytest.raises(DslError):
            engine.impact(schema="definition {")
        with pytest.raises(InvalidRequestError, match="line 2"):
            parse_changes("+doc:1#viewer@user:ann\nnot a relationship")
    finally:
        engine.close()
    unaudited = _engine("definition user {}", [])
    with pytest.raises(PreconditionFailedError, match="audit"):
        unaudited.impact(schema="definition user {}")
    unaudited.close()


def test_docstring_examples() -> None:
    import doctest

    from headwater.engine.governance import impact

    result = doctest.testmod(impact, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
