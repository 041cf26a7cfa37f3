from . import core_pb2 as _core_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WriteSchemaRequest(_message.Message):
    __slots__ = ("schema", "dry_run", "actor")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    schema: str
    dry_run: bool
    actor: str
    def __init__(self, schema: _Optional[str] = ..., dry_run: _Optional[bool] = ..., actor: _Optional[str] = ...) -> None: ...

class WriteSchemaResponse(_message.Message):
    __slots__ = ("revision_token", "version", "digest", "dry_run", "accepted", "refused", "diff")
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    DIFF_FIELD_NUMBER: _ClassVar[int]
    revision_token: str
    version: int
    digest: str
    dry_run: bool
    accepted: bool
    refused: _containers.RepeatedScalarFieldContainer[str]
    diff: str
    def __init__(self, revision_token: _Optional[str] = ..., version: _Optional[int] = ..., digest: _Optional[str] = ..., dry_run: _Optional[bool] = ..., accepted: _Optional[bool] = ..., refused: _Optional[_Iterable[str]] = ..., diff: _Optional[str] = ...) -> None: ...

class ReadSchemaRequest(_message.Message):
    __slots__ = ("consistency",)
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    consistency: _core_pb2.Consistency
    def __init__(self, consistency: _Optional[_Union[_core_pb2.Consistency, _Mapping]] = ...) -> None: ...

class ReadSchemaResponse(_message.Message):
    __slots__ = ("schema", "digest", "revision_token")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    schema: str
    digest: str
    revision_token: str
    def __init__(self, schema: _Optional[str] = ..., digest: _Optional[str] = ..., revision_token: _Optional[str] = ...) -> None: ...

class SchemaHistoryRequest(_message.Message):
    __slots__ = ("include_text",)
    INCLUDE_TEXT_FIELD_NUMBER: _ClassVar[int]
    include_text: bool
    def __init__(self, include_text: _Optional[bool] = ...) -> None: ...

class SchemaVersion(_message.Message):
    __slots__ = ("version", "digest", "revision_token", "actor", "schema")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    version: int
    digest: str
    revision_token: str
    actor: str
    schema: str
    def __init__(self, version: _Optional[int] = ..., digest: _Optional[str] = ..., revision_token: _Optional[str] = ..., actor: _Optional[str] = ..., schema: _Optional[str] = ...) -> None: ...

class SchemaHistoryResponse(_message.Message):
    __slots__ = ("versions", "revision_token")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    REVISION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[SchemaVersion]
    revision_token: str
    def __init__(self, versions: _Optional[_Iterable[_Union[SchemaVersion, _Mapping]]] = ..., revision_token: _Optional[str] = ...) -> None: ...
