"""The store contract, writes: CREATE / TOUCH / DELETE, preconditions, the validate hook, delete by filter."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from headwater.engine.errors import AlreadyExistsError, InvalidRequestError, LimitExceededError, PreconditionFailedError
from headwater.engine.store import Precondition, Reader, RelationshipFilter, Store, Update

from .support import (
    EVERYTHING,
    SORTED_DATASET,
    ContractBase,
    changes_text,
    create,
    delete,
    read_all,
    rel,
    texts,
    touch,
)


class WritesContract(ContractBase):
    """Writes: CREATE / TOUCH / DELETE, preconditions, the validate hook, delete by filter."""

    # --- CREATE / TOUCH / DELETE -------------------------------------------------------------

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

    # --- preconditions -----------------------------------------------------------------------

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

    # --- validate hook -----------------------------------------------------------------------

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

    # --- delete(filter) ----------------------------------------------------------------------

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
