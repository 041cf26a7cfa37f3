from google.protobuf import struct_pb2 as _struct_pb2
from . import core_pb2 as _core_pb2
from . import permission_pb2 as _permission_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeriveLineage(_message.Message):
    __slots__ = ("relation", "sources")
    RELATION_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    relation: str
    sources: _containers.RepeatedCompositeFieldContainer[_core_pb2.ObjectReference]
    def __init__(self, relation: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[_core_pb2.ObjectReference, _Mapping]]] = ...) -> None: ...

class DeriveCheck(_message.Message):
    __slots__ = ("permission", "subject")
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    permission: str
    subject: _core_pb2.SubjectReference
    def __init__(self, permission: _Optional[str] = ..., subject: _Optional[_Union[_core_pb2.SubjectReference, _Mapping]] = ...) -> None: ...

class DeriveRequest(_message.Message):
    __slots__ = ("object", "lineage", "relationships", "checks", "context", "actor", "reason")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIPS_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    object: _core_pb2.ObjectReference
    lineage: _containers.RepeatedCompositeFieldContainer[DeriveLineage]
    relationships: _containers.RepeatedCompositeFieldContainer[_core_pb2.Relationship]
    checks: _containers.RepeatedCompositeFieldContainer[DeriveCheck]
    context: _struct_pb2.Struct
    actor: str
    reason: str
    def __init__(self, object: _Optional[_Union[_core_pb2.ObjectReference, _Mapping]] = ..., lineage: _Optional[_Iterable[_Union[DeriveLineage, _Mapping]]] = ..., relationships: _Optional[_Iterable[_Union[_core_pb2.Relationship, _Mapping]]] = ..., checks: _Optional[_Iterable[_Union[DeriveCheck, _Mapping]]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class DeriveResponse(_message.Message):
    __slots__ = ("revision_token", "written", "object", "classifications", "decisions")
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    revision_token: str
    written: bool
    object: _core_pb2.ObjectReference
    classifications: _containers.RepeatedCompositeFieldContainer[ClassificationLabel]
    decisions: _containers.RepeatedCompositeFieldContainer[_permission_pb2.CheckResponse]
    def __init__(self, revision_token: _Optional[str] = ..., written: _Optional[bool] = ..., object: _Optional[_Union[_core_pb2.ObjectReference, _Mapping]] = ..., classifications: _Optional[_Iterable[_Union[ClassificationLabel, _Mapping]]] = ..., decisions: _Optional[_Iterable[_Union[_permission_pb2.CheckResponse, _Mapping]]] = ...) -> None: ...

class EffectiveLabelsRequest(_message.Message):
    __slots__ = ("consistency", "object")
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    consistency: _core_pb2.Consistency
    object: _core_pb2.ObjectReference
    def __init__(self, consistency: _Optional[_Union[_core_pb2.Consistency, _Mapping]] = ..., object: _Optional[_Union[_core_pb2.ObjectReference, _Mapping]] = ...) -> None: ...

class LabelValue(_message.Message):
    __slots__ = ("value", "paths")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PATHS_FIELD_NUMBER: _ClassVar[int]
    value: str
    paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, value: _Optional[str] = ..., paths: _Optional[_Iterable[str]] = ...) -> None: ...

class Declassification(_message.Message):
    __slots__ = ("value", "actor", "reason", "revision_token")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    value: str
    actor: str
    reason: str
    revision_token: str
    def __init__(self, value: _Optional[str] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., revision_token: _Optional[str] = ...) -> None: ...

class ClassificationLabel(_message.Message):
    __slots__ = ("classification", "level", "categories", "values", "declassified")
    CLASSIFICATION_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    DECLASSIFIED_FIELD_NUMBER: _ClassVar[int]
    classification: str
    level: str
    categories: _containers.RepeatedScalarFieldContainer[str]
    values: _containers.RepeatedCompositeFieldContainer[LabelValue]
    declassified: _containers.RepeatedCompositeFieldContainer[Declassification]
    def __init__(self, classification: _Optional[str] = ..., level: _Optional[str] = ..., categories: _Optional[_Iterable[str]] = ..., values: _Optional[_Iterable[_Union[LabelValue, _Mapping]]] = ..., declassified: _Optional[_Iterable[_Union[Declassification, _Mapping]]] = ...) -> None: ...

class EffectiveLabelsResponse(_message.Message):
    __slots__ = ("object", "classifications", "revision_token")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    CLASSIFICATIONS_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    object: _core_pb2.ObjectReference
    classifications: _containers.RepeatedCompositeFieldContainer[ClassificationLabel]
    revision_token: str
    def __init__(self, object: _Optional[_Union[_core_pb2.ObjectReference, _Mapping]] = ..., classifications: _Optional[_Iterable[_Union[ClassificationLabel, _Mapping]]] = ..., revision_token: _Optional[str] = ...) -> None: ...

class LineageWalkRequest(_message.Message):
    __slots__ = ("consistency", "object", "optional_max_depth", "optional_limit", "optional_cursor")
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_MAX_DEPTH_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_LIMIT_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_CURSOR_FIELD_NUMBER: _ClassVar[int]
    consistency: _core_pb2.Consistency
    object: _core_pb2.ObjectReference
    optional_max_depth: int
    optional_limit: int
    optional_cursor: str
    def __init__(self, consistency: _Optional[_Union[_core_pb2.Consistency, _Mapping]] = ..., object: _Optional[_Union[_core_pb2.ObjectReference, _Mapping]] = ..., optional_max_depth: _Optional[int] = ..., optional_limit: _Optional[int] = ..., optional_cursor: _Optional[str] = ...) -> None: ...

class LineageItem(_message.Message):
    __slots__ = ("object", "depth", "path")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    object: _core_pb2.ObjectReference
    depth: int
    path: str
    def __init__(self, object: _Optional[_Union[_core_pb2.ObjectReference, _Mapping]] = ..., depth: _Optional[int] = ..., path: _Optional[str] = ...) -> None: ...

class LineageWalkResponse(_message.Message):
    __slots__ = ("items", "next_cursor", "revision_token")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[LineageItem]
    next_cursor: str
    revision_token: str
    def __init__(self, items: _Optional[_Iterable[_Union[LineageItem, _Mapping]]] = ..., next_cursor: _Optional[str] = ..., revision_token: _Optional[str] = ...) -> None: ...
