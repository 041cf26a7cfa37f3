"""Every assertion of SpiceDB's validation files, through SpiceDB's own API (authzed.api.v1).

For each conformance file (tests/conformance/data/spicedb), an in-process server is started on 127.0.0.1, and the official `authzed`
client (``authzed.api.v1.Client``, insecure credentials) writes the file's schema
(WriteSchema) and relationships (WriteRelationships, TOUCH, in batches, with the
caveats and expirations the file gives). Every assertion (assertTrue / assertCaveated
/ assertFalse, with its caveat context) is then a CheckPermission call at
``fully_consistent``, and its permissionship must be the one the file expects and the
one the Engine gives in-process.

The files are parsed by ``engine/validationfile.py`` and the assertions' text by its
``_run_assertion``, as tests/service/test_conformance_grpc.py does for headwater.v1;
every file must load in-process (tests/engine/test_conformance.py holds the same).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from authzed.api.v1 import (
    CheckPermissionRequest,
    CheckPermissionResponse,
    Client,
    Consistency,
    ContextualizedCaveat,
    ObjectReference,
    Relationship,
    RelationshipUpdate,
    SubjectReference,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
)
from google.protobuf import struct_pb2, timestamp_pb2
from grpcutil import insecure_bearer_token_credentials
from headwater.engine import Engine, Permissionship
from headwater.engine.config import Config
from headwater.engine.service.server import HeadwaterServer
from headwater.engine.store.memory import MemoryStore
from headwater.engine.validationfile import (
    AssertionOutcome,
    _load_into,
    _run_assertion,
    load_validation_file,
)

from tests.conformance import CONFORMANCE
from tests.service.test_conformance_grpc import FILES as SERVICE_FILES

pytestmark = pytest.mark.conformance

BATCH = 1000  # the server's default max_updates_per_write

_PERMISSIONSHIPS = {
    CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION: Permissionship.HAS_PERMISSION,
    CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION: Permissionship.NO_PERMISSION,
    CheckPermissionResponse.PERMISSIONSHIP_CONDITIONAL_PERMISSION: Permissionship.CONDITIONAL_PERMISSION,
}


FILES = list(SERVICE_FILES)  # the files the headwater.v1 conformance test runs
RAN: dict[str, int] = {}


def _object(ref: Any) -> ObjectReference:
    return ObjectReference(object_type=ref.type, object_id=ref.id)


def _subject(ref: Any) -> SubjectReference:
    return SubjectReference(object=ObjectReference(object_type=ref.type, object_id=ref.id),
                            optional_relation=ref.relation or "")


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def _relationship(rel: Any) -> Relationship:
    """The v1 message of an engine Relationship parsed from the file: caveat (name, context) and expiration."""
    msg = Relationship(resource=_object(rel.resource), relation=rel.relation, subject=_subject(rel.subject))
    if rel.caveat is not None:
        msg.optional_caveat.CopyFrom(ContextualizedCaveat(caveat_name=rel.caveat.name,
                                                          context=_struct(rel.caveat.context_dict())))
    if rel.expiration is not None:
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(rel.expiration)
        msg.optional_expires_at.CopyFrom(stamp)
    return msg


@dataclass(frozen=True)
class _Answer:
    permissionship: Permissionship
    missing_context: tuple[str, ...]


class _V1Checker:
    """What ``_run_assertion`` calls as ``engine.check``, answered by CheckPermission through the authzed client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def check(self, resource: Any, permission: str, subject: Any, *, context: dict[str, Any] | None = None) -> _Answer:
        request = CheckPermissionRequest(resource=_object(resource), permission=permission, subject=_subject(subject),
                                         consistency=Consistency(fully_consistent=True))
        if context is not None:
            request.context.CopyFrom(_struct(context))
        try:
            response = self.client.CheckPermission(request)
        except grpc.RpcError as exc:
            raise ValueError(f"{exc.code().name}: {exc.details()}") from None
        missing = tuple(response.partial_caveat_info.missing_required_context)
        return _Answer(_PERMISSIONSHIPS[response.permissionship], missing)


def _summary(outcomes: list[AssertionOutcome]) -> list[tuple[Any, ...]]:
    return [(a.kind, a.text, a.expected, a.actual, sorted(a.missing_context), a.error is not None) for a in outcomes]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(CONFORMANCE).as_posix())
def test_assertions_through_authzed_api(path: Path) -> None:
    engine = Engine(MemoryStore())
    loaded = load_validation_file(path, root=CONFORMANCE)
    for doc in loaded:
        _load_into(engine, doc)
    assertions = [a for doc in loaded for a in doc.assertions]
    local = [_run_assertion(engine, kind, text, line) for kind, text, line in assertions]

    server = HeadwaterServer(Config.of(address="127.0.0.1:0", db=":memory:", insecure_no_auth=True)).start()
    try:
        client = Client(server.address, insecure_bearer_token_credentials("conformance"))
        for doc in loaded:
            if doc.schema_text is not None:
                client.WriteSchema(WriteSchemaRequest(schema=doc.schema_text))
            rels = [rel for rel, _ in doc.relationships]
            for i in range(0, len(rels), BATCH):
                client.WriteRelationships(WriteRelationshipsRequest(updates=[
                    RelationshipUpdate(operation=RelationshipUpdate.OPERATION_TOUCH, relationship=_relationship(r))
                    for r in rels[i:i + BATCH]]))
        checker = _V1Checker(client)
        remote = [_run_assertion(checker, kind, text, line) for kind, text, line in assertions]  # type: ignore[arg-type]
    finally:
        server.stop(grace=0)

    failures = [a.as_dict() for a in remote if not a.passed]
    assert not failures, json.dumps(failures, indent=1)
    assert _summary(remote) == _summary(local)
    RAN[path.name] = len(remote)


def test_assertion_count() -> None:
    """A guard against silently running nothing: the files hold well over 200 assertions, all run through v1."""
    total = sum(len(doc.assertions) for p in FILES for doc in load_validation_file(p, root=CONFORMANCE))
    assert total >= 230
    if len(RAN) == len(FILES):  # the whole module ran (not a selection of files)
        assert sum(RAN.values()) == total
