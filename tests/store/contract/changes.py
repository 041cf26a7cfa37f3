"""The store contract, the change log (Watch)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from headwater.engine.errors import RevisionUnavailableError
from headwater.engine.store import RelationshipFilter, Store

from .support import (
    START,
    ContractBase,
    changes_text,
    create,
    delete,
    touch,
)


class ChangesContract(ContractBase):
    """The change log (Watch)."""

    # --- changes -----------------------------------------------------------------------------

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
