from google.protobuf import struct_pb2 as _struct_pb2
from . import core_pb2 as _core_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CheckRequest(_message.Message):
    __slots__ = ("consistency", "resource", "permission", "subject", "context", "explain")
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    consistency: _core_pb2.Consistency
    resource: _core_pb2.ObjectReference
    permission: str
    subject: _core_pb2.SubjectReference
    context: _struct_pb2.Struct
    explain: bool
    def __init__(self, consistency: _Optional[_Union[_core_pb2.Consistency, _Mapping]] = ..., resource: _Optional[_Union[_core_pb2.ObjectReference, _Mapping]] = ..., permission: _Optional[str] = ..., subject: _Optional[_Union[_core_pb2.SubjectReference, _Mapping]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., explain: _Optional[bool] = ...) -> None: ...

class ExplainStep(_message.Message):
    __slots__ = ("depth", "label", "kind", "outcome", "note")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[ExplainStep.Outcome]
        OUTCOME_TRUE: _ClassVar[ExplainStep.Outcome]
        OUTCOME_FALSE: _ClassVar[ExplainStep.Outcome]
        OUTCOME_CONDITIONAL: _ClassVar[ExplainStep.Outcome]
    OUTCOME_UNSPECIFIED: ExplainStep.Outcome
    OUTCOME_TRUE: ExplainStep.Outcome
    OUTCOME_FALSE: ExplainStep.Outcome
    OUTCOME_CONDITIONAL: ExplainStep.Outcome
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    depth: int
    label: str
    kind: str
    outcome: ExplainStep.Outcome
    note: str
    def __init__(self, depth: _Optional[int] = ..., label: _Optional[str] = ..., kind: _Optional[str] = ..., outcome: _Optional[_Union[ExplainStep.Outcome, str]] = ..., note: _Optional[str] = ...) -> None: ...

class Explanation(_message.Message):
    __slots__ = ("summary", "steps")
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    summary: _containers.RepeatedScalarFieldContainer[str]
    steps: _containers.RepeatedCompositeFieldContainer[ExplainStep]
    def __init__(self, summary: _Optional[_Iterable[str]] = ..., steps: _Optional[_Iterable[_Union[ExplainStep, _Mapping]]] = ...) -> None: ...

class CheckResponse(_message.Message):
    __slots__ = ("permissionship", "missing_context", "revision_token", "explanation")
    PERMISSIONSHIP_FIELD_NUMBER: _ClassVar[int]
    MISSING_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    permissionship: _core_pb2.Permissionship
    missing_context: _containers.RepeatedScalarFieldContainer[str]
    revision_token: str
    explanation: Explanation
    def __init__(self, permissionship: _Optional[_Union[_core_pb2.Permissionship, str]] = ..., missing_context: _Optional[_Iterable[str]] = ..., revision_token: _Optional[str] = ..., explanation: _Optional[_Union[Explanation, _Mapping]] = ...) -> None: ...

class CheckBulkRequestItem(_message.Message):
    __slots__ = ("resource", "permission", "subject", "context")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    resource: _core_pb2.ObjectReference
    permission: str
    subject: _core_pb2.SubjectReference
    context: _struct_pb2.Struct
    def __init__(self, resource: _Optional[_Union[_core_pb2.ObjectReference, _Mapping]] = ..., permission: _Optional[str] = ..., subject: _Optional[_Union[_core_pb2.SubjectReference, _Mapping]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CheckBulkRequest(_message.Message):
    __slots__ = ("consistency", "items")
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    consistency: _core_pb2.Consistency
    items: _containers.RepeatedCompositeFieldContainer[CheckBulkRequestItem]
    def __init__(self, consistency: _Optional[_Union[_core_pb2.Consistency, _Mapping]] = ..., items: _Optional[_Iterable[_Union[CheckBulkRequestItem, _Mapping]]] = ...) -> None: ...

class CheckBulkResponsePair(_message.Message):
    __slots__ = ("request", "item", "error")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request: CheckBulkRequestItem
    item: CheckBulkResponseItem
    error: _core_pb2.ItemError
    def __init__(self, request: _Optional[_Union[CheckBulkRequestItem, _Mapping]] = ..., item: _Optional[_Union[CheckBulkResponseItem, _Mapping]] = ..., error: _Optional[_Union[_core_pb2.ItemError, _Mapping]] = ...) -> None: ...

class CheckBulkResponseItem(_message.Message):
    __slots__ = ("permissionship", "missing_context")
    PERMISSIONSHIP_FIELD_NUMBER: _ClassVar[int]
    MISSING_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    permissionship: _core_pb2.Permissionship
    missing_context: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, permissionship: _Optional[_Union[_core_pb2.Permissionship, str]] = ..., missing_context: _Optional[_Iterable[str]] = ...) -> None: ...

class CheckBulkResponse(_message.Message):
    __slots__ = ("pairs", "revision_token")
    PAIRS_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    pairs: _containers.RepeatedCompositeFieldContainer[CheckBulkResponsePair]
    revision_token: str
    def __init__(self, pairs: _Optional[_Iterable[_Union[CheckBulkResponsePair, _Mapping]]] = ..., revision_token: _Optional[str] = ...) -> None: ...

class ExpandRequest(_message.Message):
    __slots__ = ("consistency", "resource", "permission", "context")
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    consistency: _core_pb2.Consistency
    resource: _core_pb2.ObjectReference
    permission: str
    context: _struct_pb2.Struct
    def __init__(self, consistency: _Optional[_Union[_core_pb2.Consistency, _Mapping]] = ..., resource: _Optional[_Union[_core_pb2.ObjectReference, _Mapping]] = ..., permission: _Optional[str] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ExpandedSubject(_message.Message):
    __slots__ = ("subject", "relationship", "caveated")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIP_FIELD_NUMBER: _ClassVar[int]
    CAVEATED_FIELD_NUMBER: _ClassVar[int]
    subject: _core_pb2.SubjectReference
    relationship: _core_pb2.Relationship
    caveated: bool
    def __init__(self, subject: _Optional[_Union[_core_pb2.SubjectReference, _Mapping]] = ..., relationship: _Optional[_Union[_core_pb2.Relationship, _Mapping]] = ..., caveated: _Optional[bool] = ...) -> None: ...

class ExpandNode(_message.Message):
    __slots__ = ("depth", "resource", "name", "operation", "subjects", "caveated")
    class Operation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OPERATION_LEAF: _ClassVar[ExpandNode.Operation]
        OPERATION_UNION: _ClassVar[ExpandNode.Operation]
        OPERATION_INTERSECTION: _ClassVar[ExpandNode.Operation]
        OPERATION_EXCLUSION: _ClassVar[ExpandNode.Operation]
    OPERATION_LEAF: ExpandNode.Operation
    OPERATION_UNION: ExpandNode.Operation
    OPERATION_INTERSECTION: ExpandNode.Operation
    OPERATION_EXCLUSION: ExpandNode.Operation
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    CAVEATED_FIELD_NUMBER: _ClassVar[int]
    depth: int
    resource: _core_pb2.ObjectReference
    name: str
    operation: ExpandNode.Operation
    subjects: _containers.RepeatedCompositeFieldContainer[ExpandedSubject]
    caveated: bool
    def __init__(self, depth: _Optional[int] = ..., resource: _Optional[_Union[_core_pb2.ObjectReference, _Mapping]] = ..., name: _Optional[str] = ..., operation: _Optional[_Union[ExpandNode.Operation, str]] = ..., subjects: _Optional[_Iterable[_Union[ExpandedSubject, _Mapping]]] = ..., caveated: _Optional[bool] = ...) -> None: ...

class ExpandResponse(_message.Message):
    __slots__ = ("nodes", "revision_token")
    NODES_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[ExpandNode]
    revision_token: str
    def __init__(self, nodes: _Optional[_Iterable[_Union[ExpandNode, _Mapping]]] = ..., revision_token: _Optional[str] = ...) -> None: ...

class LookupResourcesRequest(_message.Message):
    __slots__ = ("consistency", "resource_object_type", "permission", "subject", "context", "optional_limit", "optional_cursor")
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_LIMIT_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_CURSOR_FIELD_NUMBER: _ClassVar[int]
    consistency: _core_pb2.Consistency
    resource_object_type: str
    permission: str
    subject: _core_pb2.SubjectReference
    context: _struct_pb2.Struct
    optional_limit: int
    optional_cursor: str
    def __init__(self, consistency: _Optional[_Union[_core_pb2.Consistency, _Mapping]] = ..., resource_object_type: _Optional[str] = ..., permission: _Optional[str] = ..., subject: _Optional[_Union[_core_pb2.SubjectReference, _Mapping]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., optional_limit: _Optional[int] = ..., optional_cursor: _Optional[str] = ...) -> None: ...

class LookupResourcesResponse(_message.Message):
    __slots__ = ("resource_object_id", "permissionship", "missing_context", "revision_token", "after_result_cursor")
    RESOURCE_OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONSHIP_FIELD_NUMBER: _ClassVar[int]
    MISSING_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    AFTER_RESULT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    resource_object_id: str
    permissionship: _core_pb2.Permissionship
    missing_context: _containers.RepeatedScalarFieldContainer[str]
    revision_token: str
    after_result_cursor: str
    def __init__(self, resource_object_id: _Optional[str] = ..., permissionship: _Optional[_Union[_core_pb2.Permissionship, str]] = ..., missing_context: _Optional[_Iterable[str]] = ..., revision_token: _Optional[str] = ..., after_result_cursor: _Optional[str] = ...) -> None: ...

class LookupSubjectsRequest(_message.Message):
    __slots__ = ("consistency", "resource", "permission", "subject_object_type", "optional_subject_relation", "context", "optional_limit", "optional_cursor")
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_OBJECT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_SUBJECT_RELATION_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_LIMIT_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_CURSOR_FIELD_NUMBER: _ClassVar[int]
    consistency: _core_pb2.Consistency
    resource: _core_pb2.ObjectReference
    permission: str
    subject_object_type: str
    optional_subject_relation: str
    context: _struct_pb2.Struct
    optional_limit: int
    optional_cursor: str
    def __init__(self, consistency: _Optional[_Union[_core_pb2.Consistency, _Mapping]] = ..., resource: _Optional[_Union[_core_pb2.ObjectReference, _Mapping]] = ..., permission: _Optional[str] = ..., subject_object_type: _Optional[str] = ..., optional_subject_relation: _Optional[str] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., optional_limit: _Optional[int] = ..., optional_cursor: _Optional[str] = ...) -> None: ...

class LookupSubjectsResponse(_message.Message):
    __slots__ = ("subject", "permissionship", "missing_context", "excluded_subjects", "revision_token", "after_result_cursor")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONSHIP_FIELD_NUMBER: _ClassVar[int]
    MISSING_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    AFTER_RESULT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    subject: _core_pb2.SubjectReference
    permissionship: _core_pb2.Permissionship
    missing_context: _containers.RepeatedScalarFieldContainer[str]
    excluded_subjects: _containers.RepeatedCompositeFieldContainer[_core_pb2.SubjectReference]
    revision_token: str
    after_result_cursor: str
    def __init__(self, subject: _Optional[_Union[_core_pb2.SubjectReference, _Mapping]] = ..., permissionship: _Optional[_Union[_core_pb2.Permissionship, str]] = ..., missing_context: _Optional[_Iterable[str]] = ..., excluded_subjects: _Optional[_Iterable[_Union[_core_pb2.SubjectReference, _Mapping]]] = ..., revision_token: _Optional[str] = ..., after_result_cursor: _Optional[str] = ...) -> None: ...
