"""Headwater's evaluation engine: relationships, checks and the stores under them.

Example::

    >>> from headwater.engine import Engine, MemoryStore
    >>> engine = Engine(MemoryStore())
    >>> _ = engine.write_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n}")
    >>> _ = engine.touch("doc:1#viewer@user:ann")
    >>> engine.check("doc:1", "viewer", "user:ann").allowed
    True
"""

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
