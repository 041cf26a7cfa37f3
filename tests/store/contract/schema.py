"""The store contract, schema versions and the schema in force at each revision."""

from __future__ import annotations

import pytest
from headwater.engine.errors import InvalidRequestError, RevisionUnavailableError
from headwater.engine.store import Reader, Store, StoredSchema

from .support import (
    EVERYTHING,
    ContractBase,
    touch,
)


class SchemaContract(ContractBase):
    """Schema versions and the schema in force at each revision."""

    # --- schemas -----------------------------------------------------------------------------

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
            store.write_schema("definition user {}", "d1", validate=refuse)
        assert seen == [(1, 1)]
        assert store.head() == 1
        assert store.read_schema() is None
        store.write_schema("definition user {}", "d1", validate=lambda reader: None)
        assert store.read_schema() == StoredSchema("definition user {}", "d1", 1, 2)
