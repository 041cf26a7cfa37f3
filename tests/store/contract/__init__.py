"""StoreContract: the behaviour every store backend must show, one test per rule, split by topic.

A backend's test module subclasses ``StoreContract`` and overrides the
``make_store`` fixture (a function from a ``FakeClock`` to a new, empty store)::

    class TestMemoryStore(StoreContract):
        @pytest.fixture
        def make_store(self):
            return lambda clock: MemoryStore(clock=clock)

Topics: :mod:`.revisions`, :mod:`.writes`, :mod:`.reads`, :mod:`.schema`,
:mod:`.gc`, :mod:`.changes` (SpiceDB's ``pkg/datastore/test`` is split the same way).
"""

from .changes import ChangesContract
from .gc import GcContract
from .reads import ReadsContract
from .revisions import RevisionsContract
from .schema import SchemaContract
from .support import START, FakeClock, read_all, touch
from .writes import WritesContract

__all__ = ["START", "FakeClock", "StoreContract", "read_all", "touch"]


class StoreContract(RevisionsContract, WritesContract, ReadsContract, SchemaContract, GcContract, ChangesContract):
    """Every topic of the contract: what a backend's test class subclasses."""
