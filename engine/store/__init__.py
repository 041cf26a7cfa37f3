"""Relationship stores: the contract (:mod:`.contract`), the wrapper every backend runs behind
(:mod:`.validating`), and the backends ``memory.MemoryStore`` and ``sqlite.SqliteStore``.

Example::

    >>> from headwater.engine.relationships import parse_relationship
    >>> from headwater.engine.store.memory import MemoryStore
    >>> with MemoryStore() as store:
    ...     store.write([Update(Operation.CREATE, parse_relationship("doc:1#viewer@user:tom"))])
    1
"""

from . import contract
from .contract import *  # noqa: F403 - the contract's names are the package's
from .validating import Store as Store  # (re-exported)

__all__ = sorted([*contract.__all__, "Store"])
