"""Engine writes, schema versions, consistency tokens and limits, on both stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from headwater.dsl import DslError
from headwater.engine import (
    AlreadyExistsError,
    Config,
    Consistency,
    Engine,
    InvalidRelationshipError,
    InvalidRequestError,
    LimitExceededError,
    NotFoundError,
    Operation,
    Precondition,
    PreconditionFailedError,
    RelationshipFilter,
    RevisionUnavailableError,
    SchemaConflictError,
    Update,
    parse_relationship,
)
from headwater.engine.consistency import decode_token, encode_token
from headwater.engine.store.memory import MemoryStore

SCHEMA = """
caveat min_level(level int) {
    level >= 3
}

definition user {}

definition group {
    relation member: user | group#member
}

definition document {
    relation owner: user
    relation viewer: user | user:* | group#member | user with min_level
    permission view = viewer + owner
}
"""


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    if request.param == "memory":
        e = Engine(MemoryStore())
    else:
        e = Engine.open(tmp_path / "hw.db")
    e.write_schema(SCHEMA)
    yield e
    e.close()


def test_no_schema_yet() -> None:
    engine = Engine(MemoryStore())
    with pytest.raises(NotFoundError, match="no schema"):
        engine.check("document:d", "view", "user:ann")
    with pytest.raises(NotFoundError, match="no schema"):
        engine.touch("document:d#viewer@user:ann")


def test_write_validation_messages(engine: Engine) -> None:
    cases = {
        "doc:d#viewer@user:ann": "object definition `doc` not found",
        "document:d#view@user:ann": "is a permission",
        "document:d#nope@user:ann": "relation `nope` not found under definition `document`",
        "document:d#viewer@robot:r": "object definition `robot` not found",
        "document:d#owner@user:*": "`user:*` are not allowed on relation `document#owner`",
        "document:d#viewer@group:eng": "`group` are not allowed on relation `document#viewer`; did you mean",
        "document:d#viewer@group:eng#nope": "`nope` not found under definition `group`",
        'document:d#viewer@user:ann[min_level:{"level":"high"}]': "parameter `level`",
        'document:d#viewer@user:ann[min_level:{"other":1}]': "has no parameter `other`",
        "document:d#viewer@user:ann[nope]": "`user with nope` are not allowed",
    }
    for text, fragment in cases.items():
        with pytest.raises(InvalidRelationshipError) as e:
            engine.touch(text)
        assert fragment in str(e.value), (text, str(e.value))


def test_a_bad_update_changes_nothing(engine: Engine) -> None:
    before = engine.store.head()
    with pytest.raises(InvalidRelationshipError):
        engine.touch("document:d#viewer@user:ann", "document:d#viewer@robot:r")
    assert engine.store.head() == before
    assert not engine.check("document:d", "view", "user:ann").allowed


def test_create_touch_delete_and_preconditions(engine: Engine) -> None:
    engine.create("document:d#viewer@user:ann")
    with pytest.raises(AlreadyExistsError):
        engine.create("document:d#viewer@user:ann")
    engine.touch("document:d#viewer@user:ann")  # idempotent
    must = Precondition(RelationshipFilter(resource_type="document", resource_id="d", relation="owner"), True)
    with pytest.raises(PreconditionFailedError):
        engine.write([Update(Operation.TOUCH, parse_relationship("document:d#viewer@user:bob"))], [must])
    assert not engine.check("document:d", "view", "user:bob").allowed
    engine.remove("document:d#viewer@user:ann")
    assert not engine.check("document:d", "view", "user:ann").allowed


def test_delete_by_filter_with_limit(engine: Engine) -> None:
    engine.touch(*[f"document:d#viewer@user:u{i}" for i in range(10)])
    f = RelationshipFilter(resource_type="document", relation="viewer")
    with pytest.raises(LimitExceededError):
        engine.delete(f, limit=3)
    assert len(engine.read(f)[0]) == 10
    result = engine.delete(f, limit=3, allow_partial=True)
    assert (result.deleted, result.partial) == (3, True)
    assert engine.delete(f).deleted == 7


def test_limits(engine: Engine) -> None:
    small = Engine(engine.store, config=Config.of(max_updates_per_write=2, max_caveat_context_bytes=40))
    with pytest.raises(LimitExceededError, match="3 updates in one write; the limit is 2"):
        small.touch("document:d#viewer@user:a", "document:d#viewer@user:b", "document:d#viewer@user:c")
    with pytest.raises(LimitExceededError, match="caveat context"):
        small.touch('document:d#viewer@user:a[min_level:{"level":1' + "0" * 60 + "}]")
    with pytest.raises(LimitExceededError, match="check context"):
        small.check("document:d", "view", "user:a", context={"level": 1, "pad": "x" * 60})


def test_consistency_tokens_and_snapshots(engine: Engine) -> None:
    first = engine.touch("document:d#viewer@user:ann")
    engine.remove("document:d#viewer@user:ann")
    assert not engine.check("document:d", "view", "user:ann").allowed
    old = engine.check("document:d", "view", "user:ann", consistency=Consistency.at_exact_snapshot(first.token))
    assert old.allowed and old.token == first.token
    fresh = engine.check("document:d", "view", "user:ann", consistency=Consistency.at_least_as_fresh(first.token))
    assert not fresh.allowed and fresh.revision > first.revision
    full = engine.check("document:d", "view", "user:ann", consistency=Consistency.fully_consistent())
    assert full.revision == engine.store.head()
    with pytest.raises(RevisionUnavailableError):
        engine.check("document:d", "view", "user:ann",
                     consistency=Consistency.at_least_as_fresh(encode_token(engine.store.head() + 5)))


def test_malformed_tokens_are_refused() -> None:
    for bad in ["", "123", "hw1_", "hw1_zzzz", encode_token(7)[:-1] + "a", "x" * 100]:
        with pytest.raises(InvalidRequestError, match="malformed consistency token"):
            decode_token(bad)
    assert decode_token(encode_token(123456)) == 123456


def test_collected_revision_is_a_clear_error() -> None:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    store = MemoryStore(clock=lambda: now[0])
    engine = Engine(store, clock=lambda: now[0])
    engine.write_schema(SCHEMA)
    first = engine.touch("document:d#viewer@user:ann")
    engine.touch("document:d#viewer@user:bob")  # a newer revision, also older than the window
    now[0] += timedelta(days=2)
    engine.remove("document:d#viewer@user:ann")
    store.gc(timedelta(hours=24), now=now[0])
    with pytest.raises(RevisionUnavailableError):
        engine.check("document:d", "view", "user:ann", consistency=Consistency.at_exact_snapshot(first.token))


def test_schema_versions_and_orphan_refusal(engine: Engine) -> None:
    engine.touch("document:d#viewer@user:ann", "document:d#viewer@user:*", "document:e#owner@user:bob")
    removed_relation = SCHEMA.replace("    relation owner: user\n", "").replace(" + owner", "")
    with pytest.raises(SchemaConflictError) as e:
        engine.write_schema(removed_relation)
    assert "cannot remove relation `document#owner`: 1 relationship still uses `document#owner`" in str(e.value)
    no_wildcard = SCHEMA.replace(" | user:*", "")
    with pytest.raises(SchemaConflictError, match=r"allowed type `user:\*` from relation `document#viewer`: 1 "):
        engine.write_schema(no_wildcard)
    # nothing stored by the refused writes; the schema in force is unchanged
    assert engine.store.read_schema().version == 1
    engine.remove("document:d#viewer@user:*")
    result = engine.write_schema(no_wildcard)
    assert result.version == 2 and len(result.digest) == 64
    history = engine.store.schema_history()
    assert [h.version for h in history] == [1, 2]


def test_schema_dry_run_stores_nothing(engine: Engine) -> None:
    result = engine.write_schema(SCHEMA + "\ndefinition extra {}\n", dry_run=True)
    assert result.version == 2
    assert engine.store.read_schema().version == 1
    with pytest.raises(DslError):
        engine.write_schema("definition broken {")


def test_sqlite_engine_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    with Engine.open(path) as e:
        e.write_schema(SCHEMA)
        token = e.touch("document:d#viewer@group:eng#member", "group:eng#member@user:ann").token
    with Engine.open(path) as e:
        result = e.check("document:d", "view", "user:ann")
        assert result.allowed and result.revision >= decode_token(token)


def test_writes_collect_garbage_every_interval() -> None:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    clock = lambda: now[0]  # noqa: E731
    store = MemoryStore(clock=clock)
    engine = Engine(store, clock=clock, config=Config.of(gc_window=timedelta(hours=1),
                                                      gc_interval=timedelta(minutes=10)))
    engine.write_schema(SCHEMA)
    first = engine.touch("document:d#viewer@user:ann")
    engine.remove("document:d#viewer@user:ann")
    now[0] += timedelta(hours=2)
    engine.touch("document:d#viewer@user:bob")  # more than 10 minutes since the first write: collects
    with pytest.raises(RevisionUnavailableError):
        engine.check("document:d", "view", "user:ann", consistency=Consistency.at_exact_snapshot(first.token))
    assert engine.gc() == 0  # nothing left to collect
