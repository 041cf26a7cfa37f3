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
