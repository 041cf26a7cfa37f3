"""The store contract, garbage collection of old revisions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from headwater.engine.errors import InvalidRequestError, RevisionUnavailableError
from headwater.engine.relationships import SubjectRef
from headwater.engine.store import Store, StoredSchema

from .support import (
    DOC1,
    START,
    ContractBase,
    FakeClock,
    changes_text,
    delete,
    found,
    read_all,
    resources,
    texts,
    touch,
)


class GcContract(ContractBase):
    """Garbage collection of old revisions."""

    # --- gc ----------------------------------------------------------------------------------

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
                assert [(r.caveat_name, r.caveat_context) for r in found(reader, DOC1, "viewer", "user", "ann", None)
                        ] == [ann]
                assert found(reader, DOC1, "viewer", "user", "tom", None) == []
                assert [r.subject_id for r in reader.relationships("doc", "1", "viewer")] == ["ann"]
                assert texts(resources(reader, "doc", "viewer", SubjectRef("user", "tom"))) == []
                assert [r.resource_id for r in resources(reader, "doc", "viewer", SubjectRef("user", "ann"))] == ["1"]
        with store.snapshot() as reader:
            assert texts(resources(reader, "doc", "viewer", SubjectRef("user", "bob"))) == ["doc:2#viewer@user:bob"]
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

    # --- expired relationships ---------------------------------------------------------------

    def test_gc_removes_relationships_expired_before_the_oldest_kept_revision(self, store: Store,
                                                                             clock: FakeClock) -> None:
        tom, ann = "doc:1#viewer@user:tom[expiration:2024-06-01T13:00:00Z]", \
            "doc:1#viewer@user:ann[expiration:2024-06-01T17:00:00Z]"
        store.write([touch(tom), touch(ann), touch("doc:1#viewer@user:bob")])  # 1 at +0h (tom expires +1h, ann +5h)
        clock.advance(hours=2)
        store.write([touch("doc:2#viewer@user:cat")])  # 2 at +2h
        clock.advance(hours=2)
        store.write([touch("doc:3#viewer@user:dan")])  # 3 at +4h
        at = {2: START + timedelta(hours=2), 3: START + timedelta(hours=4, minutes=30)}
        before = {revision: read_all(store, revision, now=moment) for revision, moment in at.items()}
        assert before[2] == [ann, "doc:1#viewer@user:bob", "doc:2#viewer@user:cat"]

        # The window keeps revision 2 (+2h): tom expired at +1h, before it, so no readable snapshot sees him.
        result = store.gc(timedelta(hours=1), now=START + timedelta(hours=4, minutes=30))
        assert (result, result.expired_removed) == (1, 1)
        assert {revision: read_all(store, revision, now=moment) for revision, moment in at.items()} == before
        with store.snapshot(2, now=START) as reader:  # even a reader going back in time no longer finds him
            assert found(reader, DOC1, "viewer", "user", "tom", None) == []
            assert found(reader, DOC1, "viewer", "user", "ann", None) != []

        # ann expired at +5h, after the oldest kept revision (+4h): a snapshot of it at +4h30 still sees her.
        clock.advance(hours=3)  # +7h
        result = store.gc(timedelta(hours=1))
        assert (result, result.expired_removed) == (0, 0)
        assert ann in read_all(store, 3, now=START + timedelta(hours=4, minutes=30))
        store.write([touch("doc:4#viewer@user:eve")])  # 4 at +7h
        clock.advance(hours=2)  # +9h: revision 4 is older than the window, and ann expired before it
        result = store.gc(timedelta(hours=1))
        assert (result, result.expired_removed) == (1, 1)
        assert read_all(store, 4, now=START + timedelta(hours=4)) == [
            "doc:1#viewer@user:bob", "doc:2#viewer@user:cat", "doc:3#viewer@user:dan", "doc:4#viewer@user:eve"]

        # A collected relationship can be written again, and the change log shows the new one only.
        assert store.write([touch("doc:1#viewer@user:tom")]) == 5
        assert read_all(store)[:2] == ["doc:1#viewer@user:bob", "doc:1#viewer@user:tom"]
        assert changes_text(store.changes(4)) == [(5, "touch", "doc:1#viewer@user:tom")]

    def test_gc_counts_an_expired_row_already_replaced_as_an_old_version(self, store: Store,
                                                                       clock: FakeClock) -> None:
        store.write([touch("doc:1#viewer@user:tom[expiration:2024-06-01T12:30:00Z]"),
                     touch("doc:1#viewer@user:ann[expiration:2024-06-01T12:30:00Z]")])  # 1
        clock.advance(hours=1)
        store.write([touch("doc:1#viewer@user:tom")])  # 2: replaces the expired version
        clock.advance(hours=2)
        result = store.gc(timedelta(hours=1))
        assert (result, result.expired_removed) == (2, 1)  # tom's old version (deleted) and ann (expired)
        assert read_all(store, 2, now=START + timedelta(hours=1)) == ["doc:1#viewer@user:tom"]

    def test_gc_keeps_relationships_that_never_expire_or_expire_later(self, store: Store, clock: FakeClock) -> None:
        store.write([touch("doc:1#viewer@user:tom[expiration:2030-01-01T00:00:00Z]"),
                     touch("doc:1#viewer@user:ann")])
        clock.advance(days=3)
        store.write([touch("doc:2#viewer@user:bob")])
        result = store.gc(timedelta(0), now=clock.now + timedelta(days=1))
        assert (result, result.expired_removed) == (0, 0)
        assert len(read_all(store)) == 3
