"""StoreContract: the behaviour every store backend must show, one test per rule.

A backend's test module subclasses ``StoreContract`` and overrides the
``make_store`` fixture (a function from a ``FakeClock`` to a new, empty store)::

    class TestMemoryStore(StoreContract):
        @pytest.fixture
        def make_store(self):
            return lambda clock: MemoryStore(clock=clock)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone

import pytest

from headwater.engine.errors import (
    AlreadyExistsError,
    InvalidRequestError,
    LimitExceededError,
    PreconditionFailedError,
    RevisionUnavailableError,
    StoreError,
)
from headwater.engine.relationships import ObjectRef, Relationship, SubjectRef, parse_relationship
from headwater.engine.store import (
    Change,
    Operation,
    Precondition,
    Reader,
    RelationshipFilter,
    Store,
    StoredSchema,
    Update,
    edge_relationship,
)

START = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def rel(text: str) -> Relationship:
    return parse_relationship(text)


def create(text: str) -> Update:
    return Update(Operation.CREATE, rel(text))


def touch(text: str) -> Update:
    return Update(Operation.TOUCH, rel(text))


def delete(text: str) -> Update:
    return Update(Operation.DELETE, rel(text))


def texts(rels: Sequence[Relationship] | Iterator[Relationship]) -> list[str]:
    return [str(r) for r in rels]


def assert_edges_agree(reader: Reader, doc: ObjectRef, relations: list[str],
                       subjects: list[tuple[str, str, str | None]]) -> None:
    """The evaluator's reads (edges) stand for exactly what the relationship reads return, in order."""
    def as_text(edges: Sequence[tuple]) -> list[str]:  # type: ignore[type-arg]
        return [str(edge_relationship(doc.type, doc.id, e)) for e in edges]

    for relation in relations:
        assert as_text(reader.edges(doc.type, doc.id, relation)) == texts(reader.subjects(doc, relation))
        assert as_text(reader.edge_sets(doc.type, doc.id, relation)) == texts(reader.subject_sets(doc, relation))
        for st, sid, srel in subjects:
            assert as_text(reader.edge_lookup(doc.type, doc.id, relation, st, sid, srel or "")) == texts(
                reader.lookup(doc, relation, st, sid, srel))


def read_all(store: Store, revision: int | None = None, *, now: datetime | None = None) -> list[str]:
    with store.snapshot(revision, now=now) as reader:
        return texts(reader.read(RelationshipFilter()))


def changes_text(changes: list[Change]) -> list[tuple[int, str, str]]:
    return [(c.revision, c.operation.value, str(c.relationship)) for c in changes]


DOC1 = ObjectRef("doc", "1")
EVERYTHING = RelationshipFilter()

# A small data set for filter, ordering and pagination tests, written in scrambled order.
DATASET = [
    "doc:readme#viewer@user:tom",
    "doc:1#viewer@group:eng#member",
    "doc:1#viewer@user:*",
    "doc:1#editor@user:ann",
    "doc:1#viewer@group:eng",
    "doc:10#viewer@user:tom",
    "doc:2#viewer@group:eng#owner",
    "folder:root#viewer@user:tom",
    "doc:1#viewer@user:tom",
    "doc:re#owner@user:tom",
    "doc:1#viewer@group:eng2#member",
]
SORTED_DATASET = [
    "doc:1#editor@user:ann",
    "doc:1#viewer@group:eng",
    "doc:1#viewer@group:eng#member",
    "doc:1#viewer@group:eng2#member",
    "doc:1#viewer@user:*",
    "doc:1#viewer@user:tom",
    "doc:10#viewer@user:tom",
    "doc:2#viewer@group:eng#owner",
    "doc:re#owner@user:tom",
    "doc:readme#viewer@user:tom",
    "folder:root#viewer@user:tom",
]

FILTER_CASES = [
    (RelationshipFilter(resource_type="folder"), ["folder:root#viewer@user:tom"]),
    (RelationshipFilter(resource_type="doc", resource_id="1", relation="editor"), ["doc:1#editor@user:ann"]),
    (
        RelationshipFilter(resource_id_prefix="1"),
        [r for r in SORTED_DATASET if r.startswith(("doc:1#", "doc:10#"))],
    ),
    (
        RelationshipFilter(resource_type="doc", resource_id_prefix="re"),
        ["doc:re#owner@user:tom", "doc:readme#viewer@user:tom"],
    ),
    (RelationshipFilter(resource_id_prefix="readme"), ["doc:readme#viewer@user:tom"]),
    (RelationshipFilter(resource_id_prefix="x"), []),
    (RelationshipFilter(relation="owner"), ["doc:re#owner@user:tom"]),
    (
        RelationshipFilter(subject_type="group"),
        [
            "doc:1#viewer@group:eng",
            "doc:1#viewer@group:eng#member",
            "doc:1#viewer@group:eng2#member",
            "doc:2#viewer@group:eng#owner",
        ],
    ),
    (
        RelationshipFilter(subject_type="group", subject_id="eng"),
        ["doc:1#viewer@group:eng", "doc:1#viewer@group:eng#member", "doc:2#viewer@group:eng#owner"],
    ),
    (
        RelationshipFilter(subject_relation="member"),
        ["doc:1#viewer@group:eng#member", "doc:1#viewer@group:eng2#member"],
    ),
    (
        RelationshipFilter(subject_type="group", subject_relation="..."),
        ["doc:1#viewer@group:eng"],
    ),
    (RelationshipFilter(subject_id="*"), ["doc:1#viewer@user:*"]),
    (RelationshipFilter(resource_type="nothing"), []),
    (RelationshipFilter(), SORTED_DATASET),
]


class StoreContract:
    """Behaviour tests shared by every backend; subclasses provide ``make_store``."""

    @pytest.fixture
    def make_store(self) -> Callable[[FakeClock], Store]:
        raise NotImplementedError("a backend's test class overrides the make_store fixture")

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def store(self, make_store: Callable[[FakeClock], Store], clock: FakeClock) -> Iterator[Store]:
        store = make_store(clock)
        yield store
        store.close()

    @pytest.fixture
    def loaded(self, store: Store) -> Store:
        store.write([touch(text) for text in DATASET])
        return store

    # --- revisions ----------------------------------------------------------------------

    def test_empty_store_is_at_revision_zero(self, store: Store) -> None:
        assert store.head() == 0
        with store.snapshot() as reader:
            assert reader.revision == 0
            assert reader.read(EVERYTHING) == []
            assert reader.count(EVERYTHING) == 0

    def test_each_write_gets_the_next_revision(self, store: Store) -> None:
        assert store.write([touch("doc:1#viewer@user:a1a")]) == 1
        assert store.write([touch("doc:1#viewer@user:b2b")]) == 2
        assert store.delete(RelationshipFilter(resource_type="doc")) == (3, 2, False)
        assert store.write_schema("definition user {}", "d1") == 4
        assert store.head() == 4

    def test_an_empty_write_still_gets_a_revision(self, store: Store) -> None:
        assert store.write([]) == 1
        assert store.head() == 1

    def test_revision_time_comes_from_the_clock_and_never_decreases(self, store: Store, clock: FakeClock) -> None:
        assert store.revision_time(0) == START
        clock.advance(seconds=10)
        store.write([touch("doc:1#viewer@user:tom")])
        assert store.revision_time(1) == START + timedelta(seconds=10)
        clock.advance(seconds=-5)  # the wall clock stepped back
        store.write([touch("doc:1#viewer@user:ann")])
        assert store.revision_time(2) == START + timedelta(seconds=10)
        assert store.revision_time(2).tzinfo is not None

    def test_revision_time_of_a_future_revision_is_unavailable(self, store: Store) -> None:
        with pytest.raises(RevisionUnavailableError):
            store.revision_time(1)

    def test_metadata_is_stored_with_its_revision(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom")], metadata={"actor": "ann", "reason": "onboarding"})
        store.delete(RelationshipFilter(resource_type="doc"), metadata={"actor": "bob"})
        store.write_schema("definition user {}", "d1", metadata={"actor": "cid"})
        store.write([touch("doc:1#viewer@user:tom")])
        assert store.revision_metadata(0) == {}
        assert store.revision_metadata(1) == {"actor": "ann", "reason": "onboarding"}
        assert store.revision_metadata(2) == {"actor": "bob"}
        assert store.revision_metadata(3) == {"actor": "cid"}
        assert store.revision_metadata(4) == {}

    def test_metadata_must_map_strings_to_strings(self, store: Store) -> None:
        with pytest.raises(InvalidRequestError):
            store.write([touch("doc:1#viewer@user:tom")], metadata={"attempt": 3})  # type: ignore[dict-item]
        assert store.head() == 0

    # --- snapshots (MVCC) ---------------------------------------------------------------

    def test_snapshots_at_old_revisions_see_the_state_at_that_revision(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom"), touch("doc:1#viewer@user:ann")])  # 1
        store.write([delete("doc:1#viewer@user:tom")])  # 2
        store.write([touch("doc:1#viewer@user:ann[cav:{\"x\":1}]")])  # 3
        store.write([touch("doc:1#viewer@user:tom")])  # 4
        assert read_all(store, 0) == []
        assert read_all(store, 1) == ["doc:1#viewer@user:ann", "doc:1#viewer@user:tom"]
        assert read_all(store, 2) == ["doc:1#viewer@user:ann"]
        assert read_all(store, 3) == ['doc:1#viewer@user:ann[cav:{"x":1}]']
        assert read_all(store, 4) == ['doc:1#viewer@user:ann[cav:{"x":1}]', "doc:1#viewer@user:tom"]
        assert read_all(store) == read_all(store, 4)
        with store.snapshot(2) as reader:
            assert reader.revision == 2
            assert texts(reader.subjects(DOC1, "viewer")) == ["doc:1#viewer@user:ann"]
            assert texts(reader.lookup(DOC1, "viewer", "user", "tom", None)) == []
            assert texts(reader.resources("doc", "viewer", SubjectRef("user", "ann"))) == ["doc:1#viewer@user:ann"]
            assert reader.count(EVERYTHING) == 1

    def test_snapshot_defaults_to_head(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom")])
        store.write([touch("doc:1#viewer@user:ann")])
        with store.snapshot() as reader:
            assert reader.revision == 2

    def test_an_open_snapshot_does_not_see_later_writes(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom")])
        with store.snapshot() as reader:
            store.write([touch("doc:1#viewer@user:ann"), delete("doc:1#viewer@user:tom")])
            assert reader.revision == 1
            assert texts(reader.read(EVERYTHING)) == ["doc:1#viewer@user:tom"]
            assert texts(reader.subjects(DOC1, "viewer")) == ["doc:1#viewer@user:tom"]
        assert read_all(store) == ["doc:1#viewer@user:ann"]

    def test_a_revision_newer_than_head_is_unavailable_and_the_error_names_the_range(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom")])
        with pytest.raises(RevisionUnavailableError) as info:
            with store.snapshot(5):
                pass
        assert (info.value.revision, info.value.oldest, info.value.head) == (5, 0, 1)
        assert "5" in str(info.value) and "0 (oldest)" in str(info.value) and "1 (head)" in str(info.value)

    def test_a_negative_revision_is_unavailable(self, store: Store) -> None:
        with pytest.raises(RevisionUnavailableError):
            with store.snapshot(-1):
                pass

    def test_a_reader_cannot_be_used_after_its_snapshot_closes(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom")])
        with store.snapshot() as reader:
            pass
        with pytest.raises(StoreError):
            reader.read(EVERYTHING)
        with pytest.raises(StoreError):
            list(reader.subjects(DOC1, "viewer"))

    def test_snapshot_now_must_be_timezone_aware(self, store: Store) -> None:
        with pytest.raises(InvalidRequestError):
            with store.snapshot(now=datetime(2024, 1, 1)):
                pass

    # --- expiration ---------------------------------------------------------------------

    def test_expired_relationships_are_invisible_to_every_reader_method(self, store: Store) -> None:
        expiry = datetime(2030, 1, 1, tzinfo=timezone.utc)
        store.write([touch("doc:1#viewer@user:tom[expiration:2030-01-01T00:00:00Z]")])

        def visible(now: datetime) -> list[object]:
            with store.snapshot(now=now) as reader:
                return [
                    texts(reader.subjects(DOC1, "viewer")),
                    texts(reader.lookup(DOC1, "viewer", "user", "tom", None)),
                    texts(reader.resources("doc", "viewer", SubjectRef("user", "tom"))),
                    texts(reader.read(EVERYTHING)),
                    reader.count(EVERYTHING),
                ]

        seen = ["doc:1#viewer@user:tom[expiration:2030-01-01T00:00:00Z]"]
        assert visible(expiry - timedelta(microseconds=1)) == [seen, seen, seen, seen, 1]
        assert visible(expiry) == [[], [], [], [], 0]
        assert visible(expiry + timedelta(days=1)) == [[], [], [], [], 0]

    def test_snapshot_now_defaults_to_the_store_clock(self, store: Store, clock: FakeClock) -> None:
        store.write([touch("doc:1#viewer@user:tom[expiration:2024-06-01T12:00:30Z]")])
        assert len(read_all(store)) == 1
        clock.advance(seconds=30)
        assert read_all(store) == []

    def test_an_old_revision_read_with_an_earlier_now_sees_the_expired_relationship(
        self, store: Store, clock: FakeClock
    ) -> None:
        store.write([touch("doc:1#viewer@user:tom[expiration:2024-06-01T12:00:30Z]")])
        clock.advance(minutes=1)
        store.write([touch("doc:2#viewer@user:tom")])
        assert read_all(store, 1) == []
        assert read_all(store, 1, now=START) == ["doc:1#viewer@user:tom[expiration:2024-06-01T12:00:30Z]"]

    def test_create_replaces_an_expired_relationship(self, store: Store, clock: FakeClock) -> None:
        store.write([touch("doc:1#viewer@user:tom[expiration:2024-06-01T12:00:30Z]")])
        clock.advance(minutes=1)
        store.write([create("doc:1#viewer@user:tom[cav]")])
        assert read_all(store) == ["doc:1#viewer@user:tom[cav]"]
        assert read_all(store, now=START) == ["doc:1#viewer@user:tom[cav]"]  # the old row is gone, not hidden

    def test_create_of_a_not_yet_expired_relationship_fails(self, store: Store, clock: FakeClock) -> None:
        store.write([touch("doc:1#viewer@user:tom[expiration:2024-06-01T12:00:30Z]")])
        clock.advance(seconds=29)
        with pytest.raises(AlreadyExistsError):
            store.write([create("doc:1#viewer@user:tom")])

    def test_delete_leaves_expired_relationships_alone(self, store: Store, clock: FakeClock) -> None:
        store.write([touch("doc:1#viewer@user:tom[expiration:2024-06-01T12:00:30Z]"), touch("doc:1#viewer@user:ann")])
        clock.advance(minutes=1)
        revision = store.write([delete("doc:1#viewer@user:tom")])
        assert changes_text(store.changes(revision - 1)) == []
        assert store.delete(RelationshipFilter(resource_type="doc")) == (3, 1, False)

    def test_preconditions_ignore_expired_relationships(self, store: Store, clock: FakeClock) -> None:
        store.write([touch("doc:1#viewer@user:tom[expiration:2024-06-01T12:00:30Z]")])
        clock.advance(minutes=1)
        tom = RelationshipFilter(resource_type="doc", subject_id="tom")
        with pytest.raises(PreconditionFailedError):
            store.write([touch("doc:2#viewer@user:ann")], [Precondition(tom, must_match=True)])
        store.write([touch("doc:2#viewer@user:ann")], [Precondition(tom, must_match=False)])

    # --- CREATE / TOUCH / DELETE ---------------------------------------------------------

    def test_create_inserts_a_new_relationship(self, store: Store) -> None:
        store.write([create("doc:1#viewer@user:tom")])
        assert read_all(store) == ["doc:1#viewer@user:tom"]

    def test_create_of_an_existing_relationship_fails_and_changes_nothing(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom")])
        with pytest.raises(AlreadyExistsError) as info:
            store.write([touch("doc:1#viewer@user:ann"), create("doc:1#viewer@user:tom[cav]")])
        assert "doc:1#viewer@user:tom" in str(info.value)
        assert store.head() == 1
        assert read_all(store) == ["doc:1#viewer@user:tom"]

    def test_create_after_delete_succeeds(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom")])
        store.write([delete("doc:1#viewer@user:tom")])
        store.write([create("doc:1#viewer@user:tom")])
        assert read_all(store) == ["doc:1#viewer@user:tom"]

    def test_touch_inserts_or_replaces_caveat_and_expiration(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom")])
        store.write([touch('doc:1#viewer@user:tom[cav:{"a":1}]')])
        store.write([touch("doc:1#viewer@user:tom[expiration:2323-12-01T00:00:00Z]")])
        assert read_all(store, 1) == ["doc:1#viewer@user:tom"]
        assert read_all(store, 2) == ['doc:1#viewer@user:tom[cav:{"a":1}]']
        assert read_all(store, 3) == ["doc:1#viewer@user:tom[expiration:2323-12-01T00:00:00Z]"]
        with store.snapshot() as reader:
            assert reader.count(EVERYTHING) == 1

    def test_touch_of_an_identical_relationship_is_recorded(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom")])
        revision = store.write([touch("doc:1#viewer@user:tom")])
        assert revision == 2
        assert changes_text(store.changes(1)) == [(2, "touch", "doc:1#viewer@user:tom")]
        assert read_all(store) == ["doc:1#viewer@user:tom"]

    def test_delete_removes_a_relationship_and_ignores_an_absent_one(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom"), touch("doc:1#viewer@user:ann")])
        store.write([delete("doc:1#viewer@user:tom"), delete("doc:9#viewer@user:nobody")])
        assert read_all(store) == ["doc:1#viewer@user:ann"]

    def test_delete_matches_the_key_whatever_the_caveat(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom[cav]")])
        store.write([delete("doc:1#viewer@user:tom")])
        assert read_all(store) == []

    @pytest.mark.parametrize(
        "second",
        [touch("doc:1#viewer@user:tom"), delete("doc:1#viewer@user:tom"), create("doc:1#viewer@user:tom[cav]")],
    )
    def test_two_updates_of_one_relationship_in_a_batch_are_invalid(self, store: Store, second: Update) -> None:
        with pytest.raises(InvalidRequestError):
            store.write([touch("doc:1#viewer@user:tom"), second])
        assert store.head() == 0

    def test_updates_must_be_update_values(self, store: Store) -> None:
        with pytest.raises(InvalidRequestError):
            store.write([rel("doc:1#viewer@user:tom")])  # type: ignore[list-item]
        assert store.head() == 0

    # --- preconditions ------------------------------------------------------------------

    def test_a_must_match_precondition_that_holds_lets_the_write_through(self, store: Store) -> None:
        store.write([touch("doc:1#owner@user:tom")])
        owner = RelationshipFilter(resource_type="doc", resource_id="1", relation="owner")
        store.write([touch("doc:1#viewer@user:ann")], [Precondition(owner, must_match=True)])
        assert store.head() == 2

    def test_a_failing_precondition_names_itself_and_changes_nothing(self, store: Store) -> None:
        store.write([touch("doc:1#owner@user:tom")])
        holds = Precondition(RelationshipFilter(resource_type="doc", relation="owner"), must_match=True)
        fails = Precondition(RelationshipFilter(resource_type="doc", relation="owner", subject_id="ann"), must_match=True)
        with pytest.raises(PreconditionFailedError) as info:
            store.write([touch("doc:1#viewer@user:ann")], [holds, fails])
        assert info.value.precondition == fails
        assert "subject_id='ann'" in str(info.value)
        assert store.head() == 1
        assert read_all(store) == ["doc:1#owner@user:tom"]

    def test_a_must_not_match_precondition(self, store: Store) -> None:
        store.write([touch("doc:1#owner@user:tom")])
        owners = Precondition(RelationshipFilter(relation="owner"), must_match=False)
        with pytest.raises(PreconditionFailedError):
            store.write([touch("doc:1#viewer@user:ann")], [owners])
        store.write([delete("doc:1#owner@user:tom")])
        store.write([touch("doc:1#viewer@user:ann")], [owners])
        assert store.head() == 3

    def test_preconditions_are_checked_at_the_base_revision_not_after_the_updates(self, store: Store) -> None:
        tom = RelationshipFilter(subject_id="tom")
        store.write([touch("doc:1#viewer@user:tom")], [Precondition(tom, must_match=False)])
        with pytest.raises(PreconditionFailedError):
            store.write([touch("doc:2#viewer@user:tom")], [Precondition(tom, must_match=False)])
        store.write([delete("doc:1#viewer@user:tom")], [Precondition(tom, must_match=True)])
        assert read_all(store) == []

    # --- validate hook ------------------------------------------------------------------

    def test_validate_sees_the_pre_write_state_and_the_updates(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom")])
        seen: list[object] = []

        def validate(reader: Reader, updates: Sequence[Update]) -> None:
            seen.append((reader.revision, texts(reader.read(EVERYTHING)), [str(u.relationship) for u in updates]))

        store.write([touch("doc:1#viewer@user:ann")], validate=validate)
        assert seen == [(1, ["doc:1#viewer@user:tom"], ["doc:1#viewer@user:ann"])]

    def test_validate_raising_aborts_the_write(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom")])
        refusal = InvalidRequestError("relation viewer does not allow user:ann")

        def validate(reader: Reader, updates: Sequence[Update]) -> None:
            raise refusal

        with pytest.raises(InvalidRequestError) as info:
            store.write([touch("doc:1#viewer@user:ann"), delete("doc:1#viewer@user:tom")], validate=validate)
        assert info.value is refusal
        assert store.head() == 1
        assert read_all(store) == ["doc:1#viewer@user:tom"]
        assert store.write([touch("doc:2#viewer@user:ann")]) == 2  # the store still works

    # --- delete(filter) -----------------------------------------------------------------

    def test_delete_removes_matching_relationships(self, loaded: Store) -> None:
        revision, deleted, partial = loaded.delete(RelationshipFilter(resource_type="doc", resource_id="1"))
        assert (revision, deleted, partial) == (2, 6, False)
        assert read_all(loaded) == [r for r in SORTED_DATASET if not r.startswith("doc:1#")]
        assert read_all(loaded, 1) == SORTED_DATASET

    def test_delete_over_the_limit_raises_and_deletes_nothing(self, loaded: Store) -> None:
        with pytest.raises(LimitExceededError) as info:
            loaded.delete(RelationshipFilter(resource_type="doc", resource_id="1"), limit=5)
        assert info.value.limit == 5
        assert loaded.head() == 1
        assert read_all(loaded) == SORTED_DATASET

    def test_delete_at_the_limit_deletes_everything(self, loaded: Store) -> None:
        assert loaded.delete(RelationshipFilter(resource_type="doc", resource_id="1"), limit=6) == (2, 6, False)

    def test_partial_delete_removes_the_first_matches_in_sort_order(self, loaded: Store) -> None:
        result = loaded.delete(RelationshipFilter(resource_type="doc", resource_id="1"), limit=4, allow_partial=True)
        assert result == (2, 4, True)
        assert read_all(loaded) == [r for r in SORTED_DATASET if r not in SORTED_DATASET[:4]]

    def test_delete_with_nothing_matching_still_commits_a_revision(self, loaded: Store) -> None:
        assert loaded.delete(RelationshipFilter(resource_type="nothing")) == (2, 0, False)

    @pytest.mark.parametrize("filter", [RelationshipFilter(), RelationshipFilter(resource_id_prefix="")])
    def test_delete_refuses_a_filter_that_matches_everything(self, loaded: Store, filter: RelationshipFilter) -> None:
        with pytest.raises(InvalidRequestError):
            loaded.delete(filter)
        assert loaded.head() == 1
        assert read_all(loaded) == SORTED_DATASET

    @pytest.mark.parametrize("limit", [0, -1])
    def test_delete_refuses_a_limit_below_one(self, loaded: Store, limit: int) -> None:
        with pytest.raises(InvalidRequestError):
            loaded.delete(RelationshipFilter(resource_type="doc"), limit=limit)

    def test_delete_checks_preconditions(self, loaded: Store) -> None:
        absent = Precondition(RelationshipFilter(resource_type="nothing"), must_match=True)
        with pytest.raises(PreconditionFailedError):
            loaded.delete(RelationshipFilter(resource_type="doc"), preconditions=[absent])
        assert read_all(loaded) == SORTED_DATASET
        present = Precondition(RelationshipFilter(resource_type="folder"), must_match=True)
        assert loaded.delete(RelationshipFilter(resource_type="folder"), preconditions=[present]) == (2, 1, False)

    # --- filters, order, pagination -----------------------------------------------------

    @pytest.mark.parametrize(("filter", "expected"), FILTER_CASES, ids=[str(f) for f, _ in FILTER_CASES])
    def test_read_and_count_apply_each_filter_field(
        self, loaded: Store, filter: RelationshipFilter, expected: list[str]
    ) -> None:
        with loaded.snapshot() as reader:
            assert texts(reader.read(filter)) == expected
            assert reader.count(filter) == len(expected)
        assert [r for r in SORTED_DATASET if filter.matches(rel(r))] == expected

    def test_read_orders_by_key_with_no_subject_relation_first(self, loaded: Store) -> None:
        assert read_all(loaded) == SORTED_DATASET

    def test_read_paginates_with_after(self, loaded: Store) -> None:
        pages: list[list[str]] = []
        after = None
        with loaded.snapshot() as reader:
            while True:
                page = reader.read(EVERYTHING, after=after, limit=3)
                if not page:
                    break
                pages.append(texts(page))
                after = page[-1].key
        assert [len(p) for p in pages] == [3, 3, 3, 2]
        assert sum(pages, []) == SORTED_DATASET

    def test_after_need_not_be_a_stored_key(self, loaded: Store) -> None:
        after = (ObjectRef("doc", "1"), "viewer", SubjectRef("group", "eng", "manager"))
        with loaded.snapshot() as reader:
            assert texts(reader.read(EVERYTHING, after=after, limit=2)) == [
                "doc:1#viewer@group:eng#member",
                "doc:1#viewer@group:eng2#member",
            ]
            after_none = (ObjectRef("doc", "1"), "viewer", SubjectRef("group", "eng"))
            assert texts(reader.read(EVERYTHING, after=after_none, limit=1)) == ["doc:1#viewer@group:eng#member"]

    def test_read_combines_filter_after_and_limit(self, loaded: Store) -> None:
        with loaded.snapshot() as reader:
            first = reader.read(RelationshipFilter(subject_id="tom"), limit=2)
            rest = reader.read(RelationshipFilter(subject_id="tom"), after=first[-1].key)
        assert texts(first) == ["doc:1#viewer@user:tom", "doc:10#viewer@user:tom"]
        assert texts(rest) == ["doc:re#owner@user:tom", "doc:readme#viewer@user:tom", "folder:root#viewer@user:tom"]

    def test_read_refuses_a_bad_limit_or_after(self, loaded: Store) -> None:
        with loaded.snapshot() as reader:
            with pytest.raises(InvalidRequestError):
                reader.read(EVERYTHING, limit=0)
            with pytest.raises(InvalidRequestError):
                reader.read(EVERYTHING, after=("doc:1", "viewer", "user:tom"))  # type: ignore[arg-type]

    def test_read_and_count_refuse_a_filter_that_is_not_a_relationship_filter(self, loaded: Store) -> None:
        with loaded.snapshot() as reader:
            with pytest.raises(InvalidRequestError):
                reader.read({"resource_type": "doc"})  # type: ignore[arg-type]
            with pytest.raises(InvalidRequestError):
                reader.count(None)  # type: ignore[arg-type]

    def test_filter_refuses_id_and_prefix_together(self) -> None:
        with pytest.raises(InvalidRequestError):
            RelationshipFilter(resource_id="1", resource_id_prefix="1")

    def test_filter_refuses_a_prefix_with_characters_ids_cannot_have(self) -> None:
        with pytest.raises(InvalidRequestError):
            RelationshipFilter(resource_id_prefix="a%")

    def test_subjects_returns_every_kind_of_subject_sorted(self, loaded: Store) -> None:
        with loaded.snapshot() as reader:
            assert texts(reader.subjects(DOC1, "viewer")) == [
                "doc:1#viewer@group:eng",
                "doc:1#viewer@group:eng#member",
                "doc:1#viewer@group:eng2#member",
                "doc:1#viewer@user:*",
                "doc:1#viewer@user:tom",
            ]
            assert texts(reader.subjects(DOC1, "editor")) == ["doc:1#editor@user:ann"]
            assert texts(reader.subjects(ObjectRef("doc", "nothing"), "viewer")) == []

    def test_subject_sets_returns_only_subject_sets_sorted(self, loaded: Store) -> None:
        with loaded.snapshot() as reader:
            assert texts(reader.subject_sets(DOC1, "viewer")) == [
                "doc:1#viewer@group:eng#member",
                "doc:1#viewer@group:eng2#member",
            ]
            assert texts(reader.subject_sets(DOC1, "editor")) == []
            assert texts(reader.subject_sets(ObjectRef("doc", "nothing"), "viewer")) == []

    @pytest.mark.parametrize("size", [3, 58, 59, 300])  # 58 + 6 = 64 relationships: the SQLite store's OBJECT_ROWS
    def test_reads_agree_for_objects_of_any_size(self, store: Store, clock: FakeClock, size: int) -> None:
        """Small and large objects (a backend may read a small object whole) give the same answers, at the
        head and at an older revision, with deleted and expired relationships hidden, asked in any order."""
        users = [f"doc:big#viewer@user:u{i:03d}" for i in range(size)]
        sets = [f"doc:big#viewer@group:g{i}#member" for i in range(3)]
        soon = (clock.now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        first = store.write([touch(t) for t in users + sets + ["doc:big#owner@user:ann", "doc:big#viewer@user:*",
                                                              f"doc:big#viewer@user:late[expiration:{soon}]"]])
        second = store.write([delete(users[0]), delete(sets[1]), touch("doc:big#viewer@group:g9#member")])
        clock.advance(minutes=10)  # user:late expires
        for revision, want_users, want_sets in (
            (first, users, sets),
            (second, users[1:], [sets[0], sets[2], "doc:big#viewer@group:g9#member"]),
        ):
            doc = ObjectRef("doc", "big")
            with store.snapshot(revision) as reader:
                for _ in range(2):  # the second round answers from whatever the first one read
                    assert texts(reader.subject_sets(doc, "viewer")) == want_sets
                    assert texts(reader.subjects(doc, "viewer")) == sorted(
                        want_sets + want_users + ["doc:big#viewer@user:*"], key=lambda t: rel(t).subject)
                    assert texts(reader.subjects(doc, "owner")) == ["doc:big#owner@user:ann"]
                    assert texts(reader.lookup(doc, "viewer", "user", "u001", None)) == ["doc:big#viewer@user:u001"]
                    assert texts(reader.lookup(doc, "viewer", "user", "u000", None)) == (
                        ["doc:big#viewer@user:u000"] if revision == first else [])
                    assert texts(reader.lookup(doc, "viewer", "user", "late", None)) == []
                    assert texts(reader.lookup(doc, "viewer", "group", "g0", "member")) == [sets[0]]
                    assert texts(reader.lookup(doc, "viewer", "group", "g0", None)) == []
                    assert texts(reader.lookup(doc, "owner", "user", "u001", None)) == []
                    assert_edges_agree(reader, doc, ["viewer", "owner", "editor"],
                                       [("user", "u001", None), ("user", "u000", None), ("user", "late", None),
                                        ("user", "*", None), ("group", "g0", "member"), ("group", "g0", None)])

    def test_edges_are_the_relationships_as_rows(self, loaded: Store) -> None:
        """edges()/edge_sets()/edge_lookup() (the evaluator's reads) answer what subjects()/subject_sets()/
        lookup() answer, in the same order, with caveats and expirations carried."""
        with loaded.snapshot() as reader:
            assert list(reader.edges("doc", "1", "editor")) == [("editor", "user", "ann", "", None, None, None)]
            assert list(reader.edge_sets("doc", "1", "viewer")) == [
                ("viewer", "group", "eng", "member", None, None, None),
                ("viewer", "group", "eng2", "member", None, None, None)]
            assert list(reader.edge_lookup("doc", "1", "viewer", "user", "tom", "")) == [
                ("viewer", "user", "tom", "", None, None, None)]
            assert list(reader.edge_lookup("doc", "1", "viewer", "group", "eng", "")) != list(
                reader.edge_lookup("doc", "1", "viewer", "group", "eng", "member"))
            for doc in (DOC1, ObjectRef("doc", "readme"), ObjectRef("doc", "nothing")):
                assert_edges_agree(reader, doc, ["viewer", "editor", "owner"],
                                   [("user", "tom", None), ("user", "*", None), ("group", "eng", "member")])

    def test_edges_carry_caveats_and_expiration(self, store: Store, clock: FakeClock) -> None:
        later = (clock.now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        texts_in = ['doc:c#viewer@user:tom[level_ok:{"need":2}]', f"doc:c#viewer@user:ann[expiration:{later}]"]
        store.write([touch(t) for t in texts_in])
        with store.snapshot() as reader:
            found = sorted(str(edge_relationship("doc", "c", e)) for e in reader.edges("doc", "c", "viewer"))
            assert found == sorted(str(rel(t)) for t in texts_in)
            (ann,) = reader.edge_lookup("doc", "c", "viewer", "user", "ann", "")
            assert ann[6] == (rel(texts_in[1]).expiration - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(
                microseconds=1)
            (tom,) = reader.edge_lookup("doc", "c", "viewer", "user", "tom", "")
            assert tom[4:6] == ("level_ok", '{"need":2}')

    def test_edge_lookup_sees_the_version_of_its_revision(self, store: Store) -> None:
        """A relationship replaced, deleted and written again: each revision sees its own version."""
        first = store.write([touch('doc:v#viewer@user:tom[level_ok:{"need":1}]')])
        second = store.write([touch('doc:v#viewer@user:tom[level_ok:{"need":2}]')])
        third = store.write([delete("doc:v#viewer@user:tom")])
        fourth = store.write([touch("doc:v#viewer@user:tom")])
        want = {first: [("level_ok", '{"need":1}')], second: [("level_ok", '{"need":2}')], third: [],
                fourth: [(None, None)]}
        for revision, expected in want.items():
            with store.snapshot(revision) as reader:
                got = [e[4:6] for e in reader.edge_lookup("doc", "v", "viewer", "user", "tom", "")]
                assert got == expected, revision
                assert [e[4:6] for e in reader.edges("doc", "v", "viewer")] == expected

    def test_lookup_matches_exactly_one_subject(self, loaded: Store) -> None:
        with loaded.snapshot() as reader:
            assert texts(reader.lookup(DOC1, "viewer", "user", "tom", None)) == ["doc:1#viewer@user:tom"]
            assert texts(reader.lookup(DOC1, "viewer", "group", "eng", None)) == ["doc:1#viewer@group:eng"]
            assert texts(reader.lookup(DOC1, "viewer", "group", "eng", "member")) == ["doc:1#viewer@group:eng#member"]
            assert texts(reader.lookup(DOC1, "viewer", "group", "eng", "owner")) == []
            assert texts(reader.lookup(DOC1, "viewer", "user", "ann", None)) == []  # only user:* holds
            assert texts(reader.lookup(DOC1, "viewer", "user", "*", None)) == ["doc:1#viewer@user:*"]
            assert texts(reader.lookup(DOC1, "editor", "user", "tom", None)) == []

    def test_resources_finds_relationships_by_their_exact_subject(self, loaded: Store) -> None:
        with loaded.snapshot() as reader:
            assert texts(reader.resources("doc", "viewer", SubjectRef("user", "tom"))) == [
                "doc:1#viewer@user:tom",
                "doc:10#viewer@user:tom",
                "doc:readme#viewer@user:tom",
            ]
            assert texts(reader.resources("doc", "viewer", SubjectRef("group", "eng", "member"))) == [
                "doc:1#viewer@group:eng#member"
            ]
            assert texts(reader.resources("doc", "viewer", SubjectRef("group", "eng"))) == ["doc:1#viewer@group:eng"]
            assert texts(reader.resources("folder", "viewer", SubjectRef("user", "tom"))) == [
                "folder:root#viewer@user:tom"
            ]
            assert texts(reader.resources("doc", "viewer", SubjectRef("user", "*"))) == ["doc:1#viewer@user:*"]

    def test_values_read_back_equal_the_values_written(self, store: Store) -> None:
        written = rel('acme/doc:a/b|c-d=e+f_#viewer@acme/user:x#member[acme/cav:{"k":[1,"é"]}][expiration:2323-12-01T00:00:00.25Z]')
        store.write([Update(Operation.TOUCH, written)])
        with store.snapshot() as reader:
            (found,) = reader.read(EVERYTHING)
        assert found == written
        assert found.expiration == datetime(2323, 12, 1, 0, 0, 0, 250000, tzinfo=timezone.utc)

    # --- schemas ------------------------------------------------------------------------

    def test_schema_is_none_before_the_first_write(self, store: Store) -> None:
        assert store.read_schema() is None
        assert store.schema_history() == []

    def test_schema_versions_and_the_schema_in_force_at_each_revision(self, store: Store) -> None:
        assert store.write_schema("definition user {}", "d1") == 1
        store.write([touch("doc:1#viewer@user:tom")])
        assert store.write_schema("definition user {}\ndefinition doc {}", "d2") == 3
        first = StoredSchema("definition user {}", "d1", 1, 1)
        second = StoredSchema("definition user {}\ndefinition doc {}", "d2", 2, 3)
        assert store.read_schema() == second
        assert store.read_schema(0) is None
        assert store.read_schema(1) == first
        assert store.read_schema(2) == first
        assert store.read_schema(3) == second
        assert store.schema_history() == [first, second]

    def test_schema_of_a_future_revision_is_unavailable(self, store: Store) -> None:
        with pytest.raises(RevisionUnavailableError):
            store.read_schema(1)

    def test_schema_check_sees_the_pre_write_state_and_can_refuse(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom")])
        seen: list[object] = []

        def refuse(reader: Reader) -> None:
            seen.append((reader.revision, reader.count(EVERYTHING)))
            raise InvalidRequestError("relation doc#viewer is still in use")

        with pytest.raises(InvalidRequestError, match="still in use"):
            store.write_schema("definition user {}", "d1", check=refuse)
        assert seen == [(1, 1)]
        assert store.head() == 1
        assert store.read_schema() is None
        store.write_schema("definition user {}", "d1", check=lambda reader: None)
        assert store.read_schema() == StoredSchema("definition user {}", "d1", 1, 2)

    # --- gc -----------------------------------------------------------------------------

    def test_gc_removes_deleted_rows_older_than_the_window(self, store: Store, clock: FakeClock) -> None:
        store.write([touch("doc:1#viewer@user:tom"), touch("doc:1#viewer@user:ann")])  # 1 at +0h
        clock.advance(hours=1)
        store.write([delete("doc:1#viewer@user:tom")])  # 2 at +1h
        clock.advance(hours=1)
        store.write([touch('doc:1#viewer@user:ann[cav:{"v":2}]')])  # 3 at +2h
        clock.advance(hours=1)
        store.write([touch("doc:2#viewer@user:bob")])  # 4 at +3h

        # Revision 2 is the newest older than now - window (+3h30 - 1h30 = +2h): rows deleted at <= 2 go.
        assert store.gc(timedelta(hours=1, minutes=30), now=START + timedelta(hours=3, minutes=30)) == 1
        for old in (0, 1):
            with pytest.raises(RevisionUnavailableError) as info:
                with store.snapshot(old):
                    pass
            assert (info.value.oldest, info.value.head) == (2, 4)
        assert read_all(store, 2) == ["doc:1#viewer@user:ann"]
        assert read_all(store, 3) == ['doc:1#viewer@user:ann[cav:{"v":2}]']
        assert read_all(store) == ['doc:1#viewer@user:ann[cav:{"v":2}]', "doc:2#viewer@user:bob"]
        for revision, ann in ((2, (None, None)), (3, ("cav", '{"v":2}'))):  # the evaluator's reads after gc
            with store.snapshot(revision) as reader:
                assert [e[4:6] for e in reader.edge_lookup("doc", "1", "viewer", "user", "ann", "")] == [ann]
                assert list(reader.edge_lookup("doc", "1", "viewer", "user", "tom", "")) == []
                assert [e[2] for e in reader.edges("doc", "1", "viewer")] == ["ann"]
                assert texts(reader.resources("doc", "viewer", SubjectRef("user", "tom"))) == []
                assert [r.resource.id for r in reader.resources("doc", "viewer", SubjectRef("user", "ann"))] == ["1"]
        with store.snapshot() as reader:
            assert texts(reader.resources("doc", "viewer", SubjectRef("user", "bob"))) == ["doc:2#viewer@user:bob"]
        with pytest.raises(RevisionUnavailableError):
            store.revision_time(1)
        assert store.revision_time(2) == START + timedelta(hours=1)

    def test_gc_defaults_to_a_day_and_the_store_clock(self, store: Store, clock: FakeClock) -> None:
        store.write([touch("doc:1#viewer@user:tom")])
        store.write([delete("doc:1#viewer@user:tom")])
        clock.advance(hours=23)
        assert store.gc() == 0
        clock.advance(hours=2)
        assert store.gc() == 1
        with pytest.raises(RevisionUnavailableError):
            with store.snapshot(1):
                pass

    def test_gc_never_collects_the_head(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom"), touch("doc:1#viewer@user:ann")])
        store.write([delete("doc:1#viewer@user:tom")])
        assert store.gc(timedelta(0), now=START + timedelta(days=365)) == 1
        assert store.head() == 2
        assert read_all(store) == ["doc:1#viewer@user:ann"]
        assert read_all(store, 2) == ["doc:1#viewer@user:ann"]
        with pytest.raises(RevisionUnavailableError):
            with store.snapshot(1):
                pass
        assert store.write([touch("doc:1#viewer@user:tom")]) == 3

    def test_gc_with_nothing_old_enough_keeps_everything(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom")])
        store.write([delete("doc:1#viewer@user:tom")])
        assert store.gc(timedelta(hours=1), now=START + timedelta(minutes=59)) == 0
        assert read_all(store, 1) == ["doc:1#viewer@user:tom"]
        assert read_all(store, 0) == []

    def test_gc_refuses_a_negative_window(self, store: Store) -> None:
        with pytest.raises(InvalidRequestError):
            store.gc(timedelta(seconds=-1))

    def test_gc_keeps_schema_history(self, store: Store, clock: FakeClock) -> None:
        store.write_schema("definition user {}", "d1")
        clock.advance(hours=1)
        store.write_schema("definition doc {}", "d2")
        store.gc(timedelta(0), now=clock.now + timedelta(hours=1))
        assert [s.version for s in store.schema_history()] == [1, 2]
        assert store.read_schema() == StoredSchema("definition doc {}", "d2", 2, 2)

    # --- changes ------------------------------------------------------------------------

    def test_changes_report_touches_and_deletes_by_revision_then_key(self, store: Store) -> None:
        store.write([touch("doc:2#viewer@user:tom"), create("doc:1#viewer@user:tom")])  # 1
        store.write([delete("doc:2#viewer@user:tom"), touch("doc:1#viewer@user:tom[cav]")])  # 2
        store.write_schema("definition user {}", "d1")  # 3: no relationship changes
        store.delete(RelationshipFilter(resource_type="doc"))  # 4
        assert changes_text(store.changes(0)) == [
            (1, "touch", "doc:1#viewer@user:tom"),
            (1, "touch", "doc:2#viewer@user:tom"),
            (2, "touch", "doc:1#viewer@user:tom[cav]"),  # a replacement is one TOUCH, not DELETE + TOUCH
            (2, "delete", "doc:2#viewer@user:tom"),
            (4, "delete", "doc:1#viewer@user:tom[cav]"),
        ]
        assert changes_text(store.changes(2)) == [(4, "delete", "doc:1#viewer@user:tom[cav]")]
        assert store.changes(4) == []

    def test_changes_after_a_future_revision_are_unavailable(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom")])
        with pytest.raises(RevisionUnavailableError):
            store.changes(2)

    def test_changes_before_the_gc_horizon_are_unavailable(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:tom")])
        store.write([delete("doc:1#viewer@user:tom")])
        store.write([touch("doc:1#viewer@user:ann")])
        store.gc(timedelta(0), now=START + timedelta(seconds=1))
        with pytest.raises(RevisionUnavailableError):
            store.changes(2)
        assert changes_text(store.changes(3)) == []

    def test_changes_with_a_limit_return_whole_revisions(self, store: Store) -> None:
        store.write([touch("doc:1#viewer@user:aaa"), touch("doc:1#viewer@user:bbb")])  # 1: two changes
        store.write([touch("doc:1#viewer@user:ccc"), touch("doc:1#viewer@user:ddd")])  # 2: two changes
        store.write([touch("doc:1#viewer@user:eee")])  # 3: one change
        assert [c.revision for c in store.changes(0, limit=3)] == [1, 1]
        assert [c.revision for c in store.changes(0, limit=4)] == [1, 1, 2, 2]
        assert [c.revision for c in store.changes(0, limit=5)] == [1, 1, 2, 2, 3]
        assert [c.revision for c in store.changes(2, limit=1)] == [3]

    def test_changes_return_a_first_revision_larger_than_the_limit_whole(self, store: Store) -> None:
        store.write([touch(f"doc:1#viewer@user:u{i:03d}") for i in range(5)])
        store.write([touch("doc:1#viewer@user:zzz")])
        assert [c.revision for c in store.changes(0, limit=2)] == [1] * 5
        assert [c.revision for c in store.changes(1, limit=2)] == [2]

    # --- lifecycle ----------------------------------------------------------------------

    def test_a_closed_store_refuses_to_work(self, make_store: Callable[[FakeClock], Store]) -> None:
        with make_store(FakeClock()) as store:
            store.write([touch("doc:1#viewer@user:tom")])
        with pytest.raises(StoreError):
            store.head()
        with pytest.raises(StoreError):
            store.write([touch("doc:1#viewer@user:ann")])
