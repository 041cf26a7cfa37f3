"""Headwater's evaluation engine: relationships, checks and the stores under them.

Example::

    >>> from headwater.engine import Engine, MemoryStore
    >>> engine = Engine(MemoryStore())
    >>> _ = engine.write_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n}")
    >>> _ = engine.touch("doc:1#viewer@user:ann")
    >>> engine.check("doc:1", "viewer", "user:ann").allowed
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:  # what type checkers see; at run time each name's module is imported on first use
    from .api import Engine
    from .audit import AuditLog
    from .config import Config, load_config
    from .consistency import Consistency
    from .errors import (
        AlreadyExistsError,
        CaveatEvaluationError,
        ConfigError,
        DeclassificationRefusedError,
        EngineError,
        ImportFailedError,
        InvalidRelationshipError,
        InvalidRequestError,
        LimitExceededError,
        LineageCycleError,
        MaxDepthExceededError,
        NotFoundError,
        PreconditionFailedError,
        RevisionUnavailableError,
        SchemaConflictError,
        StoreError,
        StoreUnavailableError,
        UnknownPermissionError,
        WriteConflictError,
    )
    from .explain import Explanation
    from .relationships import ObjectRef, Relationship, SubjectRef, parse_relationship
    from .results import (
        BulkCheckItem,
        BulkCheckResult,
        CheckResult,
        ClassificationLabel,
        Declassification,
        DeleteResult,
        DeriveResult,
        EffectiveLabels,
        ImportProgress,
        ImportResult,
        LabelValue,
        LineageItem,
        LineagePage,
        LookupResourcesPage,
        LookupResult,
        LookupSubjectsPage,
        Permissionship,
        ReadPage,
        ReplayResult,
        SchemaRead,
        SchemaVersion,
        SchemaWriteReport,
        SchemaWriteResult,
        SubjectResult,
        WatchEvent,
        WriteResult,
    )
    from .store import Operation, Precondition, RelationshipFilter, Store, Update
    from .store.memory import MemoryStore
    from .store.sqlite import SqliteStore
    from .streams import RelationshipExport

__getattr__, __dir__ = _lazy_exports(__name__, {
    "api": ("Engine",),
    "audit": ("AuditLog",),
    "config": ("Config", "load_config"),
    "consistency": ("Consistency",),
    "errors": ("AlreadyExistsError", "CaveatEvaluationError", "ConfigError", "DeclassificationRefusedError",
               "EngineError", "ImportFailedError", "InvalidRelationshipError", "InvalidRequestError",
               "LimitExceededError", "LineageCycleError", "MaxDepthExceededError", "NotFoundError",
               "PreconditionFailedError", "RevisionUnavailableError", "SchemaConflictError", "StoreError",
               "StoreUnavailableError", "UnknownPermissionError", "WriteConflictError"),
    "explain": ("Explanation",),
    "relationships": ("ObjectRef", "Relationship", "SubjectRef", "parse_relationship"),
    "results": ("BulkCheckItem", "BulkCheckResult", "CheckResult", "ClassificationLabel", "Declassification",
                "DeleteResult", "DeriveResult", "EffectiveLabels", "ImportProgress", "ImportResult", "LabelValue",
                "LineageItem", "LineagePage", "LookupResourcesPage", "LookupResult", "LookupSubjectsPage",
                "Permissionship", "ReadPage", "ReplayResult", "SchemaRead", "SchemaVersion", "SchemaWriteReport",
                "SchemaWriteResult", "SubjectResult", "WatchEvent", "WriteResult"),
    "store": ("Operation", "Precondition", "RelationshipFilter", "Store", "Update"),
    "store.memory": ("MemoryStore",),
    "store.sqlite": ("SqliteStore",),
    "streams": ("RelationshipExport",),
})

__all__ = [
    "AlreadyExistsError",
    "AuditLog",
    "BulkCheckItem",
    "BulkCheckResult",
    "CaveatEvaluationError",
    "CheckResult",
    "ClassificationLabel",
    "Config",
    "ConfigError",
    "Consistency",
    "Declassification",
    "DeclassificationRefusedError",
    "DeleteResult",
    "DeriveResult",
    "EffectiveLabels",
    "Engine",
    "EngineError",
    "Explanation",
    "ImportFailedError",
    "ImportProgress",
    "ImportResult",
    "InvalidRelationshipError",
    "InvalidRequestError",
    "LabelValue",
    "LimitExceededError",
    "LineageCycleError",
    "LineageItem",
    "LineagePage",
    "LookupResourcesPage",
    "LookupResult",
    "LookupSubjectsPage",
    "MaxDepthExceededError",
    "MemoryStore",
    "NotFoundError",
    "ObjectRef",
    "Operation",
    "Permissionship",
    "Precondition",
    "PreconditionFailedError",
    "ReadPage",
    "Relationship",
    "RelationshipExport",
    "RelationshipFilter",
    "ReplayResult",
    "RevisionUnavailableError",
    "SchemaConflictError",
    "SchemaRead",
    "SchemaVersion",
    "SchemaWriteReport",
    "SchemaWriteResult",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "SubjectRef",
    "SubjectResult",
    "UnknownPermissionError",
    "Update",
    "WatchEvent",
    "WriteConflictError",
    "WriteResult",
    "load_config",
    "parse_relationship",
]
