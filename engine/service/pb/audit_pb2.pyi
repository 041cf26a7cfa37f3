import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import core_pb2 as _core_pb2
from . import permission_pb2 as _permission_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditRecordKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_RECORD_KIND_UNSPECIFIED: _ClassVar[AuditRecordKind]
    AUDIT_RECORD_KIND_DECISION: _ClassVar[AuditRecordKind]
    AUDIT_RECORD_KIND_LOOKUP: _ClassVar[AuditRecordKind]
    AUDIT_RECORD_KIND_RELATIONSHIPS: _ClassVar[AuditRecordKind]
    AUDIT_RECORD_KIND_SCHEMA: _ClassVar[AuditRecordKind]
    AUDIT_RECORD_KIND_DECLASSIFICATION: _ClassVar[AuditRecordKind]
    AUDIT_RECORD_KIND_CHECKPOINT: _ClassVar[AuditRecordKind]
    AUDIT_RECORD_KIND_ACKNOWLEDGEMENT: _ClassVar[AuditRecordKind]
AUDIT_RECORD_KIND_UNSPECIFIED: AuditRecordKind
AUDIT_RECORD_KIND_DECISION: AuditRecordKind
AUDIT_RECORD_KIND_LOOKUP: AuditRecordKind
AUDIT_RECORD_KIND_RELATIONSHIPS: AuditRecordKind
AUDIT_RECORD_KIND_SCHEMA: AuditRecordKind
AUDIT_RECORD_KIND_DECLASSIFICATION: AuditRecordKind
AUDIT_RECORD_KIND_CHECKPOINT: AuditRecordKind
AUDIT_RECORD_KIND_ACKNOWLEDGEMENT: AuditRecordKind

class AuditFilter(_message.Message):
    __slots__ = ("kind", "subject", "resource", "permission", "result", "caller", "actor", "since", "until", "revision", "min_revision", "max_revision")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    MIN_REVISION_FIELD_NUMBER: _ClassVar[int]
    MAX_REVISION_FIELD_NUMBER: _ClassVar[int]
    kind: AuditRecordKind
    subject: str
    resource: str
    permission: str
    result: _core_pb2.Permissionship
    caller: str
    actor: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    revision: int
    min_revision: int
    max_revision: int
    def __init__(self, kind: _Optional[_Union[AuditRecordKind, str]] = ..., subject: _Optional[str] = ..., resource: _Optional[str] = ..., permission: _Optional[str] = ..., result: _Optional[_Union[_core_pb2.Permissionship, str]] = ..., caller: _Optional[str] = ..., actor: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revision: _Optional[int] = ..., min_revision: _Optional[int] = ..., max_revision: _Optional[int] = ...) -> None: ...

class AuditRecord(_message.Message):
    __slots__ = ("id", "kind", "time", "caller", "actor", "resource", "permission", "subject", "result", "revision", "revision_token", "description", "json", "hash", "prev_hash")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    CALLER_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    id: int
    kind: AuditRecordKind
    time: _timestamp_pb2.Timestamp
    caller: str
    actor: str
    resource: str
    permission: str
    subject: str
    result: _core_pb2.Permissionship
    revision: int
    revision_token: str
    description: str
    json: str
    hash: str
    prev_hash: str
    def __init__(self, id: _Optional[int] = ..., kind: _Optional[_Union[AuditRecordKind, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., caller: _Optional[str] = ..., actor: _Optional[str] = ..., resource: _Optional[str] = ..., permission: _Optional[str] = ..., subject: _Optional[str] = ..., result: _Optional[_Union[_core_pb2.Permissionship, str]] = ..., revision: _Optional[int] = ..., revision_token: _Optional[str] = ..., description: _Optional[str] = ..., json: _Optional[str] = ..., hash: _Optional[str] = ..., prev_hash: _Optional[str] = ...) -> None: ...

class AuditQueryRequest(_message.Message):
    __slots__ = ("filter", "newest_first", "optional_limit", "optional_cursor")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    NEWEST_FIRST_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_LIMIT_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_CURSOR_FIELD_NUMBER: _ClassVar[int]
    filter: AuditFilter
    newest_first: bool
    optional_limit: int
    optional_cursor: str
    def __init__(self, filter: _Optional[_Union[AuditFilter, _Mapping]] = ..., newest_first: _Optional[bool] = ..., optional_limit: _Optional[int] = ..., optional_cursor: _Optional[str] = ...) -> None: ...

class AuditQueryResponse(_message.Message):
    __slots__ = ("record", "after_result_cursor")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    AFTER_RESULT_CURSOR_FIELD_NUMBER: _ClassVar[int]
    record: AuditRecord
    after_result_cursor: str
    def __init__(self, record: _Optional[_Union[AuditRecord, _Mapping]] = ..., after_result_cursor: _Optional[str] = ...) -> None: ...

class AuditExportRequest(_message.Message):
    __slots__ = ("filter", "optional_batch_size", "optional_cursor")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_CURSOR_FIELD_NUMBER: _ClassVar[int]
    filter: AuditFilter
    optional_batch_size: int
    optional_cursor: str
    def __init__(self, filter: _Optional[_Union[AuditFilter, _Mapping]] = ..., optional_batch_size: _Optional[int] = ..., optional_cursor: _Optional[str] = ...) -> None: ...

class AuditExportResponse(_message.Message):
    __slots__ = ("jsonl", "records", "after_cursor")
    JSONL_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    AFTER_CURSOR_FIELD_NUMBER: _ClassVar[int]
    jsonl: str
    records: int
    after_cursor: str
    def __init__(self, jsonl: _Optional[str] = ..., records: _Optional[int] = ..., after_cursor: _Optional[str] = ...) -> None: ...

class AuditVerifyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AuditVerifyResponse(_message.Message):
    __slots__ = ("ok", "records", "count", "head_hash", "record_id", "problem", "notes", "summary")
    OK_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    records: int
    count: int
    head_hash: str
    record_id: int
    problem: str
    notes: _containers.RepeatedScalarFieldContainer[str]
    summary: str
    def __init__(self, ok: _Optional[bool] = ..., records: _Optional[int] = ..., count: _Optional[int] = ..., head_hash: _Optional[str] = ..., record_id: _Optional[int] = ..., problem: _Optional[str] = ..., notes: _Optional[_Iterable[str]] = ..., summary: _Optional[str] = ...) -> None: ...

class AuditReplayRequest(_message.Message):
    __slots__ = ("record_id", "context_json", "resource", "permission", "subject", "before")
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_JSON_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    record_id: int
    context_json: str
    resource: str
    permission: str
    subject: str
    before: _timestamp_pb2.Timestamp
    def __init__(self, record_id: _Optional[int] = ..., context_json: _Optional[str] = ..., resource: _Optional[str] = ..., permission: _Optional[str] = ..., subject: _Optional[str] = ..., before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AuditReplayResponse(_message.Message):
    __slots__ = ("record", "available", "same", "recorded", "permissionship", "missing_context", "explanation", "message", "revision_token")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    SAME_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONSHIP_FIELD_NUMBER: _ClassVar[int]
    MISSING_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    record: AuditRecord
    available: bool
    same: bool
    recorded: _core_pb2.Permissionship
    permissionship: _core_pb2.Permissionship
    missing_context: _containers.RepeatedScalarFieldContainer[str]
    explanation: _permission_pb2.Explanation
    message: str
    revision_token: str
    def __init__(self, record: _Optional[_Union[AuditRecord, _Mapping]] = ..., available: _Optional[bool] = ..., same: _Optional[bool] = ..., recorded: _Optional[_Union[_core_pb2.Permissionship, str]] = ..., permissionship: _Optional[_Union[_core_pb2.Permissionship, str]] = ..., missing_context: _Optional[_Iterable[str]] = ..., explanation: _Optional[_Union[_permission_pb2.Explanation, _Mapping]] = ..., message: _Optional[str] = ..., revision_token: _Optional[str] = ...) -> None: ...
