"""Headwater's evaluation engine: relationships, checks and the stores under them.

Example::

    >>> from headwater.engine import Engine
    >>> from headwater.engine.store.memory import MemoryStore
    >>> engine = Engine(MemoryStore())
    >>> _ = engine.write_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n}")
    >>> _ = engine.touch("doc:1#viewer@user:ann")
    >>> engine.check("doc:1", "viewer", "user:ann").allowed
    True
"""

from .api import (
    BulkCheckItem,
    BulkCheckResult,
    CheckResult,
    ClassificationLabel,
    Declassification,
    DeleteResult,
    EffectiveLabels,
    Engine,
    LabelValue,
    LineageItem,
    LineagePage,
    LookupResourcesPage,
    LookupResult,
    LookupSubjectsPage,
    Permissionship,
    ReplayResult,
    SchemaWriteResult,
    SubjectResult,
    WriteResult,
)
from .audit import AuditLog
from .config import Config
from .consistency import Consistency
from .errors import (
    AlreadyExistsError,
    CaveatEvaluationError,
    DeclassificationRefusedError,
    EngineError,
    ImportFailedError,
    InvalidRelationshipError,
    InvalidRequestError,
    LimitExceededError,
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
from .relationships import ObjectRef, Relationship, SubjectRef, parse_relationship
from .explain import Explanation
from .store import Operation, Precondition, RelationshipFilter, Update
from .streams import ImportProgress, ImportResult, ReadPage, RelationshipExport, WatchEvent

__all__ = [
    "AlreadyExistsError",
    "AuditLog",
    "BulkCheckItem",
    "BulkCheckResult",
    "CaveatEvaluationError",
    "CheckResult",
    "ClassificationLabel",
    "Config",
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
    "LineageItem",
    "LineagePage",
    "LookupResourcesPage",
    "LookupResult",
    "LookupSubjectsPage",
    "MaxDepthExceededError",
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
    "SchemaWriteResult",
    "StoreError",
    "StoreUnavailableError",
    "SubjectRef",
    "SubjectResult",
    "UnknownPermissionError",
    "Update",
    "WatchEvent",
    "WriteConflictError",
    "WriteResult",
    "parse_relationship",
]
