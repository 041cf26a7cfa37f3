"""SpiceDB's steel-thread expectations through SpiceDB's own API (``authzed.api.v1``), as SpiceDB runs them.

SpiceDB's steel-thread harness loads a data file into a fresh server and runs its
operations over gRPC. Here the same operations (the case tables of
``test_steelthread.py``, which runs them through the Engine) go through the official
``authzed`` client to ``headwater serve-testing``: each data file is loaded into a store of
its own (a bearer token of its own) with WriteSchema and WriteRelationships, and each
operation is the v1 call SpiceDB's harness makes: LookupResources with
``optional_limit`` resumed from the last result's ``after_result_cursor``, LookupSubjects,
CheckBulkPermissions with caveat context, ImportBulkRelationships then
ExportBulkRelationships (limit, filters), ReadRelationships in pages, WriteSchema in
sequence. The answers must be the results files', formatted as SpiceDB's harness formats
them (see ``test_steelthread.py``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from authzed.api.v1 import (
    CheckBulkPermissionsRequest,
    CheckBulkPermissionsRequestItem,
    Client,
    Consistency,
    LookupResourcesRequest,
    LookupSubjectsRequest,
    ObjectReference,
    ReadRelationshipsRequest,
    RelationshipFilter,
    RelationshipUpdate,
    SubjectFilter,
    SubjectReference,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
)
from authzed.api.v1.permission_service_pb2 import (
    LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION,
    ExportBulkRelationshipsRequest,
    ImportBulkRelationshipsRequest,
)
from google.protobuf import struct_pb2
from grpcutil import insecure_bearer_token_credentials
from headwater.engine import parse_relationship
from headwater.engine.config import Config
from headwater.engine.service.authzed.convert import relationship_from_v1, relationship_to_v1
from headwater.engine.service.testing import TestingServer
from headwater.engine.validationfile import load_validation_file

from .test_steelthread import (
    BULK_CHECKS,
    IMPORT_EXPORT,
    LOOKUP_RESOURCES,
    LOOKUP_SUBJECTS,
    READ_RELATIONSHIPS,
    TESTDATA,
    WRITE_SCHEMA_CASES,
    WRITE_SCHEMA_SEQUENCES,
    BulkChecks,
    ImportExport,
    LookupResources,
    LookupSubjects,
    ReadRelationships,
    _case_id,
    _expected,
    _maybe_xfail,
    _slug,
)

pytestmark = pytest.mark.conformance

FULL = Consistency(fully_consistent=True)
BATCH = 1000  # the server's default max_updates_per_write
FRED = SubjectReference(object=ObjectReference(object_type="user", object_id="fred"))


@pytest.fixture(scope="module")
def server() -> Iterator[TestingServer]:
    srv = TestingServer(Config.of(address="127.0.0.1:0", grace_seconds=1)).start()
    yield srv
    srv.stop()


def _client(server: TestingServer) -> Client:
    """A client of a new, empty store."""
    return Client(server.address, insecure_bearer_token_credentials(str(uuid.uuid4())))


def _object(text: str) -> ObjectReference:
    type_, _, id_ = text.partition(":")
    return ObjectReference(object_type=type_, object_id=id_)


def _subject(ref: Any) -> SubjectReference:
    return SubjectReference(object=ObjectReference(object_type=ref.type, object_id=ref.id),
                            optional_relation=ref.relation or "")


def _load(server: TestingServer, datafile: str) -> Client:
    """A client of a store of its own holding ``datafile`` (schema, then relationships), written through v1."""
    client = _client(server)
    (loaded,) = load_validation_file(TESTDATA / datafile, root=TESTDATA)
    assert loaded.schema_text is not None
    client.WriteSchema(WriteSchemaRequest(schema=loaded.schema_text))
    rels = [rel for rel, _ in loaded.relationships]
    for start in range(0, len(rels), BATCH):
        client.WriteRelationships(WriteRelationshipsRequest(updates=[
            RelationshipUpdate(operation=RelationshipUpdate.OPERATION_TOUCH, relationship=relationship_to_v1(r))
            for r in rels[start:start + BATCH]]))
    return client


_LOADED: dict[str, Client] = {}


def _shared(server: TestingServer, datafile: str) -> Client:
    """A loaded store reused by the read-only operations on ``datafile``."""
    if datafile not in _LOADED:
        _LOADED[datafile] = _load(server, datafile)
    return _LOADED[datafile]


def _filter(spec: dict[str, str]) -> RelationshipFilter:
    f = RelationshipFilter(resource_type=spec.get("resource_type", ""),
                           optional_resource_id=spec.get("resource_id", ""),
                           optional_resource_id_prefix=spec.get("resource_id_prefix", ""))
    if "subject_type" in spec:
        f.optional_subject_filter.CopyFrom(SubjectFilter(subject_type=spec["subject_type"],
                                                         optional_subject_id=spec.get("subject_id", "")))
    return f


def _text(r: Any) -> str:
    """A v1 relationship as the results files print it (caveat context and expiration included). A Struct holds
    every number as a double; SpiceDB's harness prints a whole one without a fraction (43, not 43.0)."""
    return _WHOLE.sub(r"\1", str(relationship_from_v1(r)))


_WHOLE = re.compile(r"(?<=[:\[,])(-?\d+)\.0(?=[,}\]])")


# --------------------------------------------------------------------------- the operations


@pytest.mark.parametrize("case", LOOKUP_RESOURCES, ids=_case_id)
def test_lookup_resources(server: TestingServer, case: LookupResources) -> None:
    _maybe_xfail(case.results_file)
    client = _shared(server, case.datafile)
    pages: list[list[str]] = []
    cursor = None
    while True:
        request = LookupResourcesRequest(consistency=FULL, resource_object_type="document",
                                         permission=case.permission, subject=FRED, optional_limit=case.page_size or 0)
        if cursor is not None:
            request.optional_cursor.CopyFrom(cursor)
        found = list(client.LookupResources(request))
        pages.append([r.resource_object_id + (" (conditional)" if r.permissionship ==
                                              LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION else "") for r in found])
        if case.page_size is None or len(found) < case.page_size:
            break
        cursor = found[-1].after_result_cursor
    flat = [r for page in pages for r in page]
    assert len(flat) == len(set(flat)), "a resource appears twice across the pages"
    expected = _expected(case.results_file)
    if case.page_size is None:
        assert sorted(flat) == expected
        return
    assert set(flat) == {r for page in expected for r in page}
    if len(pages) > 1 and not pages[-1]:
        pages.pop()
    assert all(len(page) == case.page_size for page in pages[:-1]), [len(p) for p in pages]


@pytest.mark.parametrize("case", LOOKUP_SUBJECTS, ids=_case_id)
def test_lookup_subjects(server: TestingServer, case: LookupSubjects) -> None:
    _maybe_xfail(case.results_file)
    client = _shared(server, case.datafile)
    formatted = []
    for r in client.LookupSubjects(LookupSubjectsRequest(consistency=FULL, resource=_object(case.resource),
                                                         permission=case.permission,
                                                         subject_object_type=case.subject_type)):
        text = r.subject.subject_object_id
        if r.excluded_subjects:
            text += " - [" + ", ".join(sorted(s.subject_object_id for s in r.excluded_subjects)) + "]"
        if r.subject.permissionship == LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION:
            text += " (conditional)"
        formatted.append(text)
    assert len(formatted) == len(set(formatted)), "duplicate subject found"
    assert sorted(formatted) == _expected(case.results_file)


@pytest.mark.parametrize("case", BULK_CHECKS, ids=_case_id)
def test_bulk_checks(server: TestingServer, case: BulkChecks) -> None:
    _maybe_xfail(case.results_file)
    client = _shared(server, case.datafile)
    items = []
    for text in case.items:
        rel = parse_relationship(text)  # the caveat of the item's text is its context, as SpiceDB's harness reads it
        item = CheckBulkPermissionsRequestItem(resource=_object(f"{rel.resource.type}:{rel.resource.id}"),
                                               permission=rel.relation, subject=_subject(rel.subject))
        if rel.caveat is not None:
            context = struct_pb2.Struct()
            context.update(rel.caveat.context_dict())
            item.context.CopyFrom(context)
        items.append(item)
    answer = client.CheckBulkPermissions(CheckBulkPermissionsRequest(consistency=FULL, items=items))
    names = {1: "PERMISSIONSHIP_NO_PERMISSION", 2: "PERMISSIONSHIP_HAS_PERMISSION",
             3: "PERMISSIONSHIP_CONDITIONAL_PERMISSION"}
    got = [f"{text} -> " + (names[p.item.permissionship] if p.HasField("item") else p.error.message)
           for text, p in zip(case.items, answer.pairs)]
    assert got == _expected(case.results_file)


@pytest.mark.parametrize("case", IMPORT_EXPORT, ids=lambda c: _slug(c.test))
def test_import_export(server: TestingServer, case: ImportExport) -> None:
    _maybe_xfail(case.results_file)
    client = _load(server, case.datafile)
    lines = [line for line in (TESTDATA / case.rels_file).read_text(encoding="utf-8").splitlines() if line]
    rels = [relationship_to_v1(parse_relationship(line)) for line in lines]
    loaded = client.ImportBulkRelationships(iter([ImportBulkRelationshipsRequest(relationships=rels[i:i + 100])
                                                  for i in range(0, len(rels), 100)]))
    assert loaded.num_loaded == len(lines)
    request = ExportBulkRelationshipsRequest(consistency=FULL, optional_limit=case.optional_limit or 0)
    if case.filter:
        request.optional_relationship_filter.CopyFrom(_filter(case.filter))
    pages = [list(page.relationships) for page in client.ExportBulkRelationships(request)]
    if case.optional_limit:
        assert all(len(p) <= case.optional_limit for p in pages)
    assert [_text(r) for page in pages for r in page] == _expected(case.results_file)


@pytest.mark.parametrize("case", READ_RELATIONSHIPS, ids=_case_id)
def test_read_relationships_sorting(server: TestingServer, case: ReadRelationships) -> None:
    _maybe_xfail(case.results_file)
    client = _shared(server, case.datafile)
    pages: list[list[str]] = []
    cursor = None
    while True:
        request = ReadRelationshipsRequest(consistency=FULL, relationship_filter=_filter(case.filter),
                                           optional_limit=case.page_size)
        if cursor is not None:
            request.optional_cursor.CopyFrom(cursor)
        found = list(client.ReadRelationships(request))
        if found:
            pages.append(sorted(_text(r.relationship) for r in found))
        if len(found) < case.page_size:
            break
        cursor = found[-1].after_result_cursor
    assert pages == _expected(case.results_file)


@pytest.mark.parametrize("datafile, index, results_file", WRITE_SCHEMA_CASES,
                         ids=[r.removesuffix("-results.yaml") for _, _, r in WRITE_SCHEMA_CASES])
def test_write_schema(server: TestingServer, datafile: str, index: int, results_file: str) -> None:
    """The operations before ``index`` are replayed first: upstream they ran in order against one server."""
    _maybe_xfail(results_file)
    client = _load(server, datafile)
    sequence = WRITE_SCHEMA_SEQUENCES[datafile]
    for earlier in sequence[:index]:
        try:
            client.WriteSchema(WriteSchemaRequest(schema=earlier.schema))
        except grpc.RpcError:
            pass
    case = sequence[index]
    expected = _expected(results_file)
    try:
        client.WriteSchema(WriteSchemaRequest(schema=case.schema))
        ours = None
    except grpc.RpcError as exc:
        assert exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION), exc
        ours = exc.details()
    assert (ours is None) == ("error" not in expected), (case.name, expected, ours)
    for name in case.names:
        assert ours is not None and name in ours, (case.name, name, ours)


def test_relationship_text_round_trips() -> None:
    """The helper that prints v1 relationships as the results files do."""
    rel = parse_relationship("document:d#viewer@group:g#member")
    assert _text(relationship_to_v1(rel)) == "document:d#viewer@group:g#member"
