"""One test per row of the error → status-code table (engine/service/errors.py), through a real server."""

from __future__ import annotations

import inspect
import time

import grpc
import pytest

from headwater.dsl import errors as dsl_errors
from headwater.engine import errors as engine_errors
from headwater.engine.client import RemoteError
from headwater.engine.consistency import Consistency, encode_token
from headwater.engine.errors import (
    AlreadyExistsError,
    DeclassificationRefusedError,
    EngineError,
    InvalidRequestError,
    LimitExceededError,
    MaxDepthExceededError,
    NotFoundError,
    PreconditionFailedError,
    RevisionUnavailableError,
    SchemaConflictError,
    StoreUnavailableError,
    WriteConflictError,
)
from headwater.engine.service.errors import STATUS_TABLE, status_for
from headwater.engine.service.pb import core_pb2, permission_pb2, relationship_pb2
from headwater.engine import BulkCheckItem, RelationshipFilter
from headwater.engine.store import Precondition

from .conftest import SCHEMA, client_for, seed


def _code(exc: BaseException) -> str:
    return getattr(exc, "code")


def test_every_engine_and_dsl_error_has_a_row() -> None:
    """No error the engine raises on purpose falls through to INTERNAL."""
    classes = [c for _, c in inspect.getmembers(engine_errors, inspect.isclass) if issubclass(c, Exception)]
    classes += [c for _, c in inspect.getmembers(dsl_errors, inspect.isclass) if issubclass(c, dsl_errors.DslError)]
    rows = [cls for cls, _ in STATUS_TABLE]
    for cls in classes:
        if cls in (engine_errors.EngineError, engine_errors.StoreError):
            continue  # abstract bases: only their subclasses are raised
        if cls.__name__ == "ImportFailedError":
            continue  # answered with the code of its cause (test_import_failure_carries_the_cause_code_and_line)
        assert any(issubclass(cls, row) for row in rows), f"{cls.__name__} has no status code"


def test_dsl_error_is_invalid_argument_with_line_and_column(admin) -> None:
    with pytest.raises(dsl_errors.DslError) as e:
        admin.write_schema("definition user {}\ndefinition doc {\n  relation viewer: usr\n}\n")
    assert _code(e.value) == "INVALID_ARGUMENT"
    assert "line 3, column 20" in str(e.value) and "unknown definition `usr`" in str(e.value)
    with pytest.raises(dsl_errors.DslSyntaxError) as e:
        admin.write_schema("definition doc {\n  relation owner user\n}\n")
    assert "line 2, column 18" in str(e.value)


def _raw_check(client, resource: tuple[str, str], permission: str, subject: tuple[str, str], **fields):
    """A CheckRequest sent as is (the client's own parsing would refuse bad ids before sending)."""
    request = permission_pb2.CheckRequest(
        resource=core_pb2.ObjectReference(object_type=resource[0], object_id=resource[1]), permission=permission,
        subject=core_pb2.SubjectReference(object=core_pb2.ObjectReference(object_type=subject[0],
                                                                          object_id=subject[1])), **fields)
    return client._call(client._permissions.Check, request)


def test_invalid_request_is_invalid_argument(admin) -> None:
    with pytest.raises(InvalidRequestError) as e:
        _raw_check(admin, ("document", "a b"), "view", ("user", "ann"))
    assert _code(e.value) == "INVALID_ARGUMENT" and "invalid object id 'a b'" in str(e.value)
    with pytest.raises(InvalidRequestError) as e:
        admin.check("document:readme", "view", "user:*")
    assert "wildcard" in str(e.value)
    with pytest.raises(InvalidRequestError) as e:
        _raw_check(admin, ("document", "readme"), "view", ("user", "ann"),
                   consistency=core_pb2.Consistency(at_least_as_fresh="hw1_bogus"))
    assert "malformed consistency token" in str(e.value)
    with pytest.raises(InvalidRequestError) as e:
        _raw_check(admin, ("", ""), "view", ("user", "ann"))
    assert "missing resource" in str(e.value)


@pytest.mark.parametrize("what", ["updates", "bulk", "page", "context"])
def test_limits_are_resource_exhausted_naming_the_limit(admin, what: str) -> None:
    with pytest.raises(LimitExceededError) as e:
        if what == "updates":
            admin.touch(*(f"document:l{i}#viewer@user:eve" for i in range(51)))
        elif what == "bulk":
            admin.check_bulk([BulkCheckItem("document:readme", "view", "user:ann")] * 21)
        elif what == "page":
            admin.ancestors("document:report", limit=101)
        else:
            admin.check("document:readme", "view", "user:ann", context={"day": "x" * 600})
    assert _code(e.value) == "RESOURCE_EXHAUSTED"
    assert {"updates": "max_updates_per_write", "bulk": "max_bulk_check_items", "page": "max_page_size",
            "context": "the limit is 512"}[what] in str(e.value)


def test_message_over_the_size_limit_is_resource_exhausted(admin) -> None:
    with pytest.raises(LimitExceededError) as e:
        admin.check("document:readme", "view", "user:ann", context={"blob": "x" * (1024 * 1024 + 10)})
    assert _code(e.value) == "RESOURCE_EXHAUSTED"


def test_not_found_before_any_schema(make_server) -> None:
    with client_for(make_server()) as c, pytest.raises(NotFoundError) as e:
        c.check("document:readme", "view", "user:ann")
    assert _code(e.value) == "NOT_FOUND" and "no schema" in str(e.value)


def test_already_exists(admin) -> None:
    with pytest.raises(AlreadyExistsError) as e:
        admin.create("document:readme#owner@user:ann")
    assert _code(e.value) == "ALREADY_EXISTS"


def test_failed_precondition(admin) -> None:
    pre = Precondition(RelationshipFilter(resource_type="document", resource_id="nope"), must_match=True)
    with pytest.raises(PreconditionFailedError) as e:
        admin.write([], [pre])
    assert _code(e.value) == "FAILED_PRECONDITION" and "nope" in str(e.value)


def test_schema_conflict_is_failed_precondition(make_server) -> None:
    with client_for(make_server()) as c:
        seed(c)
        with pytest.raises(SchemaConflictError) as e:
            c.write_schema(SCHEMA.replace("    relation banned: user\n", "").replace(" - banned", ""))
    assert _code(e.value) == "FAILED_PRECONDITION" and "banned" in str(e.value)


def test_max_depth_exceeded_is_failed_precondition(make_server) -> None:
    with client_for(make_server()) as c:
        seed(c)
        c.touch(*(f"group:g{i}#member@group:g{i + 1}#member" for i in range(30)), "group:g30#member@user:deep")
        c.touch("document:deep#viewer@group:g0#member")
        with pytest.raises(MaxDepthExceededError) as e:
            c.check("document:deep", "view", "user:deep")
    assert _code(e.value) == "FAILED_PRECONDITION"


def test_future_revision_is_out_of_range(admin) -> None:
    with pytest.raises(RevisionUnavailableError) as e:
        admin.check("document:readme", "view", "user:ann",
                    consistency=Consistency.at_least_as_fresh(encode_token(10**6)))
    assert _code(e.value) == "OUT_OF_RANGE"
    with pytest.raises(RevisionUnavailableError):
        admin.watch(encode_token(10**6), timeout=0.5)


def test_declassification_without_actor_is_permission_denied(admin) -> None:
    with pytest.raises(DeclassificationRefusedError) as e:
        admin.touch("document:clean#scrubbed@sensitivity:pii")
    assert _code(e.value) == "PERMISSION_DENIED" and "actor and a reason" in str(e.value)


@pytest.mark.parametrize("error, code, cls", [
    (WriteConflictError("a concurrent write got in the way"), "ABORTED", WriteConflictError),
    (StoreUnavailableError("database is locked; retry later"), "UNAVAILABLE", StoreUnavailableError),
])
def test_store_errors(server, admin, monkeypatch, error, code, cls) -> None:
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(server.servicer.engine, "write", fail)
    with pytest.raises(cls) as e:
        admin.touch("document:x#viewer@user:eve")
    assert _code(e.value) == code and str(e.value) == str(error)


def test_unexpected_error_is_internal_with_a_generic_message(server, admin, monkeypatch, caplog) -> None:
    def boom(*args, **kwargs):
        raise RuntimeError("secret detail /etc/passwd")

    monkeypatch.setattr(server.servicer.engine, "check", boom)
    with caplog.at_level("ERROR", logger="headwater.service"), pytest.raises(RemoteError) as e:
        admin.check("document:readme", "view", "user:ann")
    assert e.value.code == "INTERNAL" and "secret" not in str(e.value) and "internal error (ref" in str(e.value)
    ref = str(e.value).split("ref ")[1].split(")")[0]
    (record,) = [r for r in caplog.records if ref in r.getMessage()]
    assert record.exc_info and "secret detail" in str(record.exc_info[1])


def test_deadline_exceeded_and_work_stops(server, monkeypatch) -> None:
    def slow(*args, **kwargs):
        time.sleep(0.5)
        raise AssertionError("unreachable")

    monkeypatch.setattr(server.servicer.engine, "check", slow)
    with client_for(server, timeout=0.1) as c, pytest.raises(EngineError) as e:  # DeadlineExceededError
        c.check("document:readme", "view", "user:ann")
    assert e.value.code == "DEADLINE_EXCEEDED"


def test_long_stream_stops_at_its_deadline(server, monkeypatch) -> None:
    from headwater.engine.streams import ReadPage

    calls = []
    real = server.servicer.engine.read_relationships

    def endless(*args, **kwargs):  # every page says there is more: only the deadline ends the stream
        calls.append(time.monotonic())
        time.sleep(0.05)
        page = real(RelationshipFilter(), limit=1)
        return ReadPage(page.relationships, "more", page.token)

    monkeypatch.setattr(server.servicer.engine, "read_relationships", endless)
    with client_for(server, timeout=0.3) as c, pytest.raises(EngineError) as e:  # DeadlineExceededError
        c.read_relationships()
    assert e.value.code == "DEADLINE_EXCEEDED"
    n = len(calls)
    time.sleep(0.3)
    assert len(calls) <= n + 1, "the server kept working after the deadline"  # +1: the server's clock may lag
    assert 2 <= n <= 8


def test_import_failure_carries_the_cause_code_and_line(admin) -> None:
    with pytest.raises(InvalidRequestError) as e:
        admin.import_relationships(["document:i1#viewer@user:eve", "document:i2#nosuch@user:eve"])
    assert _code(e.value) == "INVALID_ARGUMENT" and "line 2" in str(e.value)


def test_status_for_is_the_one_table() -> None:
    assert status_for(SchemaConflictError("x", ["p"])).code is grpc.StatusCode.FAILED_PRECONDITION
    assert status_for(LimitExceededError("x")).code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_for(KeyError("x")).code is grpc.StatusCode.INTERNAL
    long = status_for(InvalidRequestError("y" * 100_000))
    assert len(long.message) < 2100


def test_unknown_enum_values_are_invalid_argument(server) -> None:
    with client_for(server) as c:
        request = relationship_pb2.WriteRequest(updates=[relationship_pb2.RelationshipUpdate(operation=7)])
        with pytest.raises(InvalidRequestError):
            c._call(c._relationships.Write, request)
        pre = core_pb2.Precondition(operation=9)
        with pytest.raises(InvalidRequestError):
            c._call(c._relationships.Write, relationship_pb2.WriteRequest(optional_preconditions=[pre]))


def test_import_of_a_malformed_relationship_names_its_position(server) -> None:
    good = core_pb2.Relationship(resource=core_pb2.ObjectReference(object_type="document", object_id="ok"),
                                 relation="viewer",
                                 subject=core_pb2.SubjectReference(object=core_pb2.ObjectReference(
                                     object_type="user", object_id="eve")))
    bad = core_pb2.Relationship()
    bad.CopyFrom(good)
    bad.resource.object_id = "a b"
    messages = [relationship_pb2.ImportRequest(relationships=[good]),
                relationship_pb2.ImportRequest(relationships=[bad])]
    with client_for(server) as c, pytest.raises(InvalidRequestError) as e:
        c._call(c._relationships.Import, iter(messages))
    assert "relationship 2 of the import" in str(e.value) and "'a b'" in str(e.value)
    with client_for(server) as c:
        assert c.read(RelationshipFilter(resource_type="document", resource_id="ok"))[0] == []
