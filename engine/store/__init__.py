"""Relationship stores: the contract (:mod:`.contract`), the wrapper every backend runs behind
(:mod:`.validating`), and the backends ``memory.MemoryStore`` and ``sqlite.SqliteStore``.

Example::

    >>> from headwater.engine.relationships import parse_relationship
    >>> from headwater.engine.store.memory import MemoryStore
    >>> with MemoryStore() as store:
    ...     store.write([Update(Operation.CREATE, parse_relationship("doc:1#viewer@user:tom"))])
    1
"""

from .contract import (
    NO_SUBJECT_RELATION,
    Backend,
    Batch,
    Change,
    Changelog,
    Collector,
    Committer,
    Operation,
    Plan,
    Precondition,
    Reader,
    RelationshipFilter,
    Revision,
    RevisionInfo,
    Row,
    RowKey,
    SchemaValidator,
    Snapshots,
    StoredSchema,
    Update,
    Validator,
    checked_time,
    rows_from_tuples,
    unavailable,
    whole_revisions,
)
from .validating import Store

__all__ = [
    "NO_SUBJECT_RELATION",
    "Backend",
    "Batch",
    "Change",
    "Changelog",
    "Collector",
    "Committer",
    "Operation",
    "Plan",
    "Precondition",
    "Reader",
    "RelationshipFilter",
    "Revision",
    "RevisionInfo",
    "Row",
    "RowKey",
    "SchemaValidator",
    "Snapshots",
    "Store",
    "StoredSchema",
    "Update",
    "Validator",
    "checked_time",
    "rows_from_tuples",
    "unavailable",
    "whole_revisions",
]
