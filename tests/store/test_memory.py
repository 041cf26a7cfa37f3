"""MemoryStore runs the store contract."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from contract import FakeClock, StoreContract

from headwater.engine.store import Store
from headwater.engine.store.memory import MemoryStore


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def make_store(self) -> Callable[[FakeClock], Store]:
        return lambda clock: MemoryStore(clock=clock)
