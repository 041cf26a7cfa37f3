from . import core_pb2 as _core_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImportExisting(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMPORT_EXISTING_ERROR: _ClassVar[ImportExisting]
    IMPORT_EXISTING_TOUCH: _ClassVar[ImportExisting]
    IMPORT_EXISTING_SKIP: _ClassVar[ImportExisting]
IMPORT_EXISTING_ERROR: ImportExisting
IMPORT_EXISTING_TOUCH: ImportExisting
IMPORT_EXISTING_SKIP: ImportExisting

class RelationshipUpdate(_message.Message):
    __slots__ = ("operation", "relationship")
    class Operation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OPERATION_UNSPECIFIED: _ClassVar[RelationshipUpdate.Operation]
        OPERATION_CREATE: _ClassVar[RelationshipUpdate.Operation]
        OPERATION_TOUCH: _ClassVar[RelationshipUpdate.Operation]
        OPERATION_DELETE: _ClassVar[RelationshipUpdate.Operation]
    OPERATION_UNSPECIFIED: RelationshipUpdate.Operation
    OPERATION_CREATE: RelationshipUpdate.Operation
    OPERATION_TOUCH: RelationshipUpdate.Operation
    OPERATION_DELETE: RelationshipUpdate.Operation
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIP_FIELD_NUMBER: _ClassVar[int]
    operation: RelationshipUpdate.Operation
    relationship: _core_pb2.Relationship
    def __init__(self, operation: _Optional[_Union[RelationshipUpdate.Operation, str]] = ..., relationship: _Optional[_Union[_core_pb2.Relationship, _Mapping]] = ...) -> None: ...

class WriteRequest(_message.Message):
    __slots__ = ("updates", "optional_preconditions", "actor", "reason")
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_PRECONDITIONS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    updates: _containers.RepeatedCompositeFieldContainer[RelationshipUpdate]
    optional_preconditions: _containers.RepeatedCompositeFieldContainer[_core_pb2.Precondition]
    actor: str
    reason: str
    def __init__(self, updates: _Optional[_Iterable[_Union[RelationshipUpdate, _Mapping]]] = ..., optional_preconditions: _Optional[_Iterable[_Union[_core_pb2.Precondition, _Mapping]]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class WriteResponse(_message.Message):
    __slots__ = ("revision_token",)
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    revision_token: str
    def __init__(self, revision_token: _Optional[str] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("filter", "optional_limit", "optional_allow_partial_deletions", "optional_preconditions", "actor", "reason")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_LIMIT_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_ALLOW_PARTIAL_DELETIONS_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_PRECONDITIONS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    filter: _core_pb2.RelationshipFilter
    optional_limit: int
    optional_allow_partial_deletions: bool
    optional_preconditions: _containers.RepeatedCompositeFieldContainer[_core_pb2.Precondition]
    actor: str
    reason: str
    def __init__(self, filter: _Optional[_Union[_core_pb2.RelationshipFilter, _Mapping]] = ..., optional_limit: _Optional[int] = ..., optional_allow_partial_deletions: _Optional[bool] = ..., optional_preconditions: _Optional[_Iterable[_Union[_core_pb2.Precondition, _Mapping]]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("revision_token", "deleted_count", "partial")
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    revision_token: str
    deleted_count: int
    partial: bool
    def __init__(self, revision_token: _Optional[str] = ..., deleted_count: _Optional[int] = ..., partial: _Optional[bool] = ...) -> None: ...

class ReadRequest(_message.Message):
    __slots__ = ("consistency", "filter", "optional_limit", "optional_cursor")
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_LIMIT_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_CURSOR_FIELD_NUMBER: _ClassVar[int]
    consistency: _core_pb2.Consistency
    filter: _core_pb2.RelationshipFilter
    optional_limit: int
    optional_cursor: str
    def __init__(self, consistency: _Optional[_Union[_core_pb2.Consistency, _Mapping]] = ..., filter: _Optional[_Union[_core_pb2.RelationshipFilter, _Mapping]] = ..., optional_limit: _Optional[int] = ..., optional_cursor: _Optional[str] = ...) -> None: ...

class ReadResponse(_message.Message):
    __slots__ = ("relationship", "revision_token", "after_result_cursor")
    RELATIONSHIP_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    AFTER_RESULT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    relationship: _core_pb2.Relationship
    revision_token: str
    after_result_cursor: str
    def __init__(self, relationship: _Optional[_Union[_core_pb2.Relationship, _Mapping]] = ..., revision_token: _Optional[str] = ..., after_result_cursor: _Optional[str] = ...) -> None: ...

class ImportRequest(_message.Message):
    __slots__ = ("relationships", "actor", "reason", "existing")
    RELATIONSHIPS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXISTING_FIELD_NUMBER: _ClassVar[int]
    relationships: _containers.RepeatedCompositeFieldContainer[_core_pb2.Relationship]
    actor: str
    reason: str
    existing: ImportExisting
    def __init__(self, relationships: _Optional[_Iterable[_Union[_core_pb2.Relationship, _Mapping]]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., existing: _Optional[_Union[ImportExisting, str]] = ...) -> None: ...

class ImportResponse(_message.Message):
    __slots__ = ("loaded_count", "batches", "revision_token")
    LOADED_COUNT_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    loaded_count: int
    batches: int
    revision_token: str
    def __init__(self, loaded_count: _Optional[int] = ..., batches: _Optional[int] = ..., revision_token: _Optional[str] = ...) -> None: ...

class ExportRequest(_message.Message):
    __slots__ = ("consistency", "filter", "optional_batch_size")
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    consistency: _core_pb2.Consistency
    filter: _core_pb2.RelationshipFilter
    optional_batch_size: int
    def __init__(self, consistency: _Optional[_Union[_core_pb2.Consistency, _Mapping]] = ..., filter: _Optional[_Union[_core_pb2.RelationshipFilter, _Mapping]] = ..., optional_batch_size: _Optional[int] = ...) -> None: ...

class ExportResponse(_message.Message):
    __slots__ = ("relationships", "revision_token")
    RELATIONSHIPS_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    relationships: _containers.RepeatedCompositeFieldContainer[_core_pb2.Relationship]
    revision_token: str
    def __init__(self, relationships: _Optional[_Iterable[_Union[_core_pb2.Relationship, _Mapping]]] = ..., revision_token: _Optional[str] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("optional_start_revision_token", "optional_resource_types")
    OPTIONAL_START_REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_RESOURCE_TYPES_FIELD_NUMBER: _ClassVar[int]
    optional_start_revision_token: str
    optional_resource_types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, optional_start_revision_token: _Optional[str] = ..., optional_resource_types: _Optional[_Iterable[str]] = ...) -> None: ...

class RelationshipChange(_message.Message):
    __slots__ = ("operation", "relationship", "revision_token")
    class Operation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OPERATION_UNSPECIFIED: _ClassVar[RelationshipChange.Operation]
        OPERATION_TOUCH: _ClassVar[RelationshipChange.Operation]
        OPERATION_DELETE: _ClassVar[RelationshipChange.Operation]
    OPERATION_UNSPECIFIED: RelationshipChange.Operation
    OPERATION_TOUCH: RelationshipChange.Operation
    OPERATION_DELETE: RelationshipChange.Operation
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIP_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    operation: RelationshipChange.Operation
    relationship: _core_pb2.Relationship
    revision_token: str
    def __init__(self, operation: _Optional[_Union[RelationshipChange.Operation, str]] = ..., relationship: _Optional[_Union[_core_pb2.Relationship, _Mapping]] = ..., revision_token: _Optional[str] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("changes", "revision_token")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[RelationshipChange]
    revision_token: str
    def __init__(self, changes: _Optional[_Iterable[_Union[RelationshipChange, _Mapping]]] = ..., revision_token: _Optional[str] = ...) -> None: ...
