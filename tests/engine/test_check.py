"""Check semantics through the public Engine API (MemoryStore): caveats, expiration, cycles, depth, bulk."""

from __future__ import annotations

from datetime import timedelta

import pytest

from headwater.engine import (
    BulkCheckItem,
    CaveatEvaluationError,
    Config,
    Engine,
    InvalidRequestError,
    MaxDepthExceededError,
    Permissionship,
    UnknownPermissionError,
)
from headwater.engine.store.memory import MemoryStore

HAS, NO, COND = (Permissionship.HAS_PERMISSION, Permissionship.NO_PERMISSION,
                 Permissionship.CONDITIONAL_PERMISSION)

SCHEMA = """
use expiration

caveat on_network(ip ipaddress, cidr string) {
    ip.in_cidr(cidr)
}

caveat min_level(level int, required int) {
    level >= required
}

definition user {}

definition group {
    relation member: user | group#member | user with expiration
}

definition folder {
    relation parent: folder
    relation viewer: user | group#member | user:*
    relation banned: user | group#member
    permission view = viewer + parent->view - banned
}

definition document {
    relation folder: folder
    relation owner: user
    relation reader: user with on_network | user with min_level | user with expiration
    relation approver: group
    permission read = reader + owner + folder->view
    permission approve = approver.all(member)
    permission owner_and_reader = owner & reader
}
"""


@pytest.fixture
def engine(clock) -> Engine:
    e = Engine(MemoryStore(clock=clock), clock=clock)
    e.write_schema(SCHEMA)
    return e


def perm(engine: Engine, resource: str, permission: str, subject: str, **kw) -> Permissionship:
    return engine.check(resource, permission, subject, **kw).permissionship


def test_direct_union_arrow_exclusion(engine: Engine) -> None:
    engine.touch("folder:root#viewer@group:eng#member", "group:eng#member@user:ann", "group:eng#member@user:bob",
                 "folder:sub#parent@folder:root", "folder:sub#banned@user:bob", "document:d#folder@folder:sub",
                 "document:d#owner@user:cat")
    assert perm(engine, "document:d", "read", "user:ann") is HAS  # via folder->view->parent->view->group
    assert perm(engine, "document:d", "read", "user:bob") is NO  # banned on sub
    assert perm(engine, "folder:root", "view", "user:bob") is HAS  # not banned on root
    assert perm(engine, "document:d", "read", "user:cat") is HAS
    assert perm(engine, "document:d", "read", "user:dan") is NO


def test_wildcard_grants_every_user_but_not_subject_sets(engine: Engine) -> None:
    engine.touch("folder:pub#viewer@user:*")
    assert perm(engine, "folder:pub", "view", "user:anyone") is HAS
    assert perm(engine, "folder:pub", "view", "group:eng#member") is NO


def test_wildcard_subject_check_is_refused(engine: Engine) -> None:
    with pytest.raises(InvalidRequestError, match="wildcard"):
        engine.check("folder:pub", "view", "user:*")


def test_subject_set_is_a_member_of_itself(engine: Engine) -> None:
    assert perm(engine, "group:eng", "member", "group:eng#member") is HAS
    assert perm(engine, "group:eng", "member", "group:ops#member") is NO


def test_caveats_three_results_and_missing_parameters(engine: Engine) -> None:
    engine.touch('document:d#reader@user:ann[on_network:{"cidr":"10.0.0.0/8"}]',
                 'document:d#reader@user:bob[min_level:{"required":3}]')
    assert perm(engine, "document:d", "read", "user:ann", context={"ip": "10.1.2.3"}) is HAS
    assert perm(engine, "document:d", "read", "user:ann", context={"ip": "192.168.0.1"}) is NO
    result = engine.check("document:d", "read", "user:ann")
    assert result.permissionship is COND and result.missing_context == ("ip",)
    # context stored on the relationship wins over the request's
    assert perm(engine, "document:d", "read", "user:bob", context={"level": 3, "required": 99}) is HAS
    assert perm(engine, "document:d", "read", "user:bob", context={"level": 2}) is NO


def test_conditional_in_intersection_and_union(engine: Engine) -> None:
    engine.touch("document:d#owner@user:ann", 'document:d#reader@user:ann[min_level:{"required":3}]')
    assert perm(engine, "document:d", "owner_and_reader", "user:ann") is COND
    assert perm(engine, "document:d", "read", "user:ann") is HAS  # owner grants regardless of the caveat
    assert perm(engine, "document:d", "owner_and_reader", "user:ann", context={"level": 1}) is NO


def test_bad_check_context_is_an_error_not_a_denial(engine: Engine) -> None:
    engine.touch('document:d#reader@user:ann[min_level:{"required":3}]')
    with pytest.raises(CaveatEvaluationError, match="level"):
        engine.check("document:d", "read", "user:ann", context={"level": "high"})


def test_expired_relationships_are_invisible_and_not_served_from_cache(engine: Engine, clock) -> None:
    soon = (clock.now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    engine.touch(f"group:eng#member@user:ann[expiration:{soon}]", "folder:f#viewer@group:eng#member")
    assert perm(engine, "folder:f", "view", "user:ann") is HAS
    assert perm(engine, "folder:f", "view", "user:ann") is HAS  # now cached
    clock.now += timedelta(hours=2)
    assert perm(engine, "folder:f", "view", "user:ann") is NO


def test_expiry_of_an_exclusion_turns_a_denial_into_a_grant(engine: Engine, clock) -> None:
    soon = (clock.now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    engine.touch("folder:f#viewer@user:ann", f"group:bad#member@user:ann[expiration:{soon}]",
                 "folder:f#banned@group:bad#member")
    assert perm(engine, "folder:f", "view", "user:ann") is NO
    clock.now += timedelta(minutes=10)
    assert perm(engine, "folder:f", "view", "user:ann") is HAS


def test_data_cycles_terminate(engine: Engine) -> None:
    engine.touch("group:a#member@group:b#member", "group:b#member@group:c#member", "group:c#member@group:a#member",
                 "group:c#member@user:ann", "folder:x#parent@folder:y", "folder:y#parent@folder:x")
    assert perm(engine, "group:a", "member", "user:ann") is HAS
    assert perm(engine, "group:a", "member", "user:bob") is NO
    assert perm(engine, "folder:x", "view", "user:ann") is NO
    engine.touch("folder:y#viewer@user:ann")
    assert perm(engine, "folder:x", "view", "user:ann") is HAS
    # same answers again, now partly from the cache
    assert perm(engine, "group:b", "member", "user:bob") is NO
    assert perm(engine, "group:b", "member", "user:ann") is HAS


def test_cycle_through_an_exclusion_is_a_clear_error() -> None:
    engine = Engine(MemoryStore())
    engine.write_schema("definition user {}\ndefinition node {\n relation next: node\n relation mark: user\n"
                        " permission okay = mark - next->okay\n}")
    engine.touch("node:a#next@node:b", "node:b#next@node:a", "node:a#mark@user:u", "node:b#mark@user:u")
    with pytest.raises(MaxDepthExceededError, match=r"exclusion.*node:a#okay -> .*node:b#okay"):
        engine.check("node:a", "okay", "user:u")


def test_depth_limit_names_the_path() -> None:
    engine = Engine(MemoryStore(), config=Config.of(max_depth=50))
    engine.write_schema("definition user {}\ndefinition group {\n relation member: user | group#member\n}")
    engine.touch(*[f"group:g{i}#member@group:g{i + 1}#member" for i in range(60)], "group:g60#member@user:ann")
    with pytest.raises(MaxDepthExceededError) as e:
        engine.check("group:g0", "member", "user:ann")
    assert "maximum depth exceeded" in str(e.value) and "group:g0#member -> group:g1#member" in str(e.value)
    deeper = Engine(engine.store, config=Config.of(max_depth=100))
    assert deeper.check("group:g0", "member", "user:ann").allowed


def test_all_arrow(engine: Engine) -> None:
    engine.touch("document:d#approver@group:a", "document:d#approver@group:b", "group:a#member@user:ann")
    assert perm(engine, "document:d", "approve", "user:ann") is NO
    engine.touch("group:b#member@user:ann")
    assert perm(engine, "document:d", "approve", "user:ann") is HAS
    assert perm(engine, "document:e", "approve", "user:ann") is NO  # no approvers at all


def test_unknown_permission_and_types_are_errors(engine: Engine) -> None:
    with pytest.raises(UnknownPermissionError, match="`nope` not found under definition `document`"):
        engine.check("document:d", "nope", "user:ann")
    with pytest.raises(UnknownPermissionError, match="object definition `doc` not found"):
        engine.check("doc:d", "read", "user:ann")
    with pytest.raises(InvalidRequestError, match="`robot` not found"):
        engine.check("document:d", "read", "robot:r2")


def test_bulk_check_answers_each_item_and_keeps_errors_per_item(engine: Engine) -> None:
    engine.touch("folder:f#viewer@group:eng#member", "group:eng#member@user:ann")
    items = [BulkCheckItem("folder:f", "view", f"user:{u}") for u in ("ann", "bob")]
    items.append(BulkCheckItem("folder:f", "nope", "user:ann"))
    items.append(BulkCheckItem("folder:f", "view", "user:not valid"))
    results = engine.check_bulk(items)
    assert [r.result.permissionship if r.result else None for r in results] == [HAS, NO, None, None]
    assert isinstance(results[2].error, UnknownPermissionError)
    assert isinstance(results[3].error, InvalidRequestError)
    assert len({r.result.token for r in results if r.result}) == 1  # one revision for the whole call


def test_bulk_check_shares_sub_problems() -> None:
    """Without the shared cache, a bulk check still evaluates a shared sub-problem once."""
    store = MemoryStore()
    engine = Engine(store, config=Config.of(cache_size=0))
    engine.write_schema("definition user {}\ndefinition group {\n relation member: user | group#member\n}\n"
                        "definition doc {\n relation viewer: group#member\n permission view = viewer\n}")
    engine.touch("group:big#member@group:inner#member", "group:inner#member@user:ann",
                 *[f"doc:d{i}#viewer@group:big#member" for i in range(50)])
    calls = {"subjects": 0}
    original = store.snapshot

    def counting_snapshot(*a, **kw):
        cm = original(*a, **kw)

        class Wrap:
            def __enter__(self):
                reader = cm.__enter__()
                for name in ("relationships", "subject_sets"):
                    def counted(*sa, _real=getattr(reader, name), **skw):
                        calls["subjects"] += 1
                        return _real(*sa, **skw)

                    setattr(reader, name, counted)
                return reader

            def __exit__(self, *exc):
                return cm.__exit__(*exc)

        return Wrap()

    store.snapshot = counting_snapshot  # type: ignore[method-assign]
    results = engine.check_bulk([BulkCheckItem(f"doc:d{i}", "view", "user:ann") for i in range(50)])
    assert all(r.result and r.result.allowed for r in results)
    # 50 reads of doc viewers + 1 of group:big + 1 of group:inner, not 50 of each
    assert 50 <= calls["subjects"] <= 52


def test_cache_counts_hits(engine: Engine) -> None:
    engine.touch("folder:f#viewer@user:ann")
    engine.check("folder:f", "view", "user:ann")
    before = engine.cache_stats()["hits"]
    engine.check("folder:f", "view", "user:ann")
    assert engine.cache_stats()["hits"] > before


def test_compiled_program_is_shared_per_schema_digest() -> None:
    from headwater.dsl import compile_schema
    from headwater.engine.evaluator import program

    text = "definition user {}\ndefinition doc {\n relation viewer: user\n permission view = viewer\n}"
    a, b = compile_schema(text), compile_schema(text)
    assert a is not b and a.digest == b.digest
    assert program(a) is program(b)
    other = compile_schema(text.replace("permission view = viewer", "permission view = viewer + nil"))
    assert program(other) is not program(a)
    assert set(program(other).members) == {("doc", "viewer"), ("doc", "view")}


def test_a_check_deeper_than_the_stack_is_a_clear_error_not_a_crash() -> None:
    """A max_depth far above SpiceDB's 50 lets a long chain nest deeper than Python's stack: the check (and
    its explanation) raises MaxDepthExceededError naming the limit, and the engine keeps answering."""
    engine = Engine(MemoryStore(), config=Config.of(max_depth=5000))
    engine.write_schema("definition user {}\ndefinition group {\n relation member: user | group#member\n}")
    chain = [f"group:g{i}#member@group:g{i + 1}#member" for i in range(1500)] + ["group:g1500#member@user:u"]
    for start in range(0, len(chain), 500):
        engine.touch(*chain[start:start + 500])
    with pytest.raises(MaxDepthExceededError, match="recursion limit .* max_depth 5000"):
        engine.check("group:g0", "member", "user:u")
    with pytest.raises(MaxDepthExceededError, match="lower max_depth"):
        engine.check("group:g0", "member", "user:u", explain=True)
    with pytest.raises(MaxDepthExceededError, match="lower max_depth"):
        engine.expand("group:g0", "member")
    with pytest.raises(MaxDepthExceededError, match="lower max_depth"):
        engine.lookup_resources("group", "member", "user:u")
    assert engine.check("group:g1490", "member", "user:u").allowed
