"""The store contract, revisions: numbering, time, metadata, snapshots at old revisions, a closed store."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from headwater.engine.errors import InvalidRequestError, RevisionUnavailableError, StoreError
from headwater.engine.relationships import SubjectRef
from headwater.engine.store import RelationshipFilter, Store

from .support import (
    DOC1,
    EVERYTHING,
    START,
    ContractBase,
    FakeClock,
    delete,
    found,
    read_all,
    resources,
    texts,
    touch,
)


class RevisionsContract(ContractBase):
    """Revisions: numbering, time, metadata, snapshots at old revisions, a closed store."""

    # --- revisions ---------------------------------------------------------------------------

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

    # --- snapshots (MVCC) --------------------------------------------------------------------

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
            assert texts(reader.relationships("doc", "1", "viewer")) == ["doc:1#viewer@user:ann"]
            assert texts(found(reader, DOC1, "viewer", "user", "tom", None)) == []
            assert texts(resources(reader, "doc", "viewer", SubjectRef("user", "ann"))) == ["doc:1#viewer@user:ann"]
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
            assert texts(reader.relationships("doc", "1", "viewer")) == ["doc:1#viewer@user:tom"]
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
            list(reader.relationships("doc", "1", "viewer"))

    def test_snapshot_now_must_be_timezone_aware(self, store: Store) -> None:
        with pytest.raises(InvalidRequestError):
            with store.snapshot(now=datetime(2024, 1, 1)):
                pass

    # --- lifecycle ---------------------------------------------------------------------------

    def test_a_closed_store_refuses_to_work(self, make_store: Callable[[FakeClock], Store]) -> None:
        with make_store(FakeClock()) as store:
            store.write([touch("doc:1#viewer@user:tom")])
        with pytest.raises(StoreError):
            store.head()
        with pytest.raises(StoreError):
            store.write([touch("doc:1#viewer@user:ann")])
