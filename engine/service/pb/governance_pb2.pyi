import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from . import relationship_pb2 as _relationship_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MonitorRequest(_message.Message):
    __slots__ = ("since", "until", "follow", "rules_toml")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    RULES_TOML_FIELD_NUMBER: _ClassVar[int]
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    follow: bool
    rules_toml: str
    def __init__(self, since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., follow: _Optional[bool] = ..., rules_toml: _Optional[str] = ...) -> None: ...

class MonitorResponse(_message.Message):
    __slots__ = ("rule", "time", "subject", "value", "summary", "record_id", "evidence")
    RULE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    rule: str
    time: _timestamp_pb2.Timestamp
    subject: str
    value: str
    summary: str
    record_id: int
    evidence: _struct_pb2.Struct
    def __init__(self, rule: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., subject: _Optional[str] = ..., value: _Optional[str] = ..., summary: _Optional[str] = ..., record_id: _Optional[int] = ..., evidence: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ImpactRequest(_message.Message):
    __slots__ = ("schema", "updates", "baseline_schema", "since", "until", "limit")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    schema: str
    updates: _containers.RepeatedCompositeFieldContainer[_relationship_pb2.RelationshipUpdate]
    baseline_schema: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    limit: int
    def __init__(self, schema: _Optional[str] = ..., updates: _Optional[_Iterable[_Union[_relationship_pb2.RelationshipUpdate, _Mapping]]] = ..., baseline_schema: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ...) -> None: ...

class ImpactedDecision(_message.Message):
    __slots__ = ("resource", "permission", "subject", "before", "after", "explanation", "records", "before_missing", "after_missing")
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    BEFORE_MISSING_FIELD_NUMBER: _ClassVar[int]
    AFTER_MISSING_FIELD_NUMBER: _ClassVar[int]
    resource: str
    permission: str
    subject: str
    before: str
    after: str
    explanation: _containers.RepeatedScalarFieldContainer[str]
    records: _containers.RepeatedScalarFieldContainer[int]
    before_missing: _containers.RepeatedScalarFieldContainer[str]
    after_missing: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, resource: _Optional[str] = ..., permission: _Optional[str] = ..., subject: _Optional[str] = ..., before: _Optional[str] = ..., after: _Optional[str] = ..., explanation: _Optional[_Iterable[str]] = ..., records: _Optional[_Iterable[int]] = ..., before_missing: _Optional[_Iterable[str]] = ..., after_missing: _Optional[_Iterable[str]] = ...) -> None: ...

class ImpactResponse(_message.Message):
    __slots__ = ("token", "decisions", "checks", "skipped", "changes", "refused")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    token: str
    decisions: int
    checks: int
    skipped: int
    changes: _containers.RepeatedCompositeFieldContainer[ImpactedDecision]
    refused: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, token: _Optional[str] = ..., decisions: _Optional[int] = ..., checks: _Optional[int] = ..., skipped: _Optional[int] = ..., changes: _Optional[_Iterable[_Union[ImpactedDecision, _Mapping]]] = ..., refused: _Optional[_Iterable[str]] = ...) -> None: ...
