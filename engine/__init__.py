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
    DeleteResult,
    Engine,
    LookupResourcesPage,
    LookupResult,
    LookupSubjectsPage,
    Permissionship,
    SchemaWriteResult,
    SubjectResult,
    WriteResult,
)
from .config import Config
from .consistency import Consistency
from .errors import (
    AlreadyExistsError,
    CaveatEvaluationError,
    EngineError,
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
from .store import Operation, Precondition, RelationshipFilter, Update

__all__ = [
    "AlreadyExistsError",
    "BulkCheckItem",
    "BulkCheckResult",
    "CaveatEvaluationError",
    "CheckResult",
    "Config",
    "Consistency",
    "DeleteResult",
    "Engine",
    "EngineError",
    "InvalidRelationshipError",
    "InvalidRequestError",
    "LimitExceededError",
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
    "Relationship",
    "RelationshipFilter",
    "RevisionUnavailableError",
    "SchemaConflictError",
    "SchemaWriteResult",
    "StoreError",
    "StoreUnavailableError",
    "SubjectRef",
    "SubjectResult",
    "UnknownPermissionError",
    "Update",
    "WriteConflictError",
    "WriteResult",
    "parse_relationship",
]
