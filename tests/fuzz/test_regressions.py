"""Every defect the fuzzers found, as the smallest input that shows it (docs/fuzzing.md).

A defect not fixed yet is marked ``xfail(strict=True, reason="... (reported)")`` and
listed in ``known_defects.py``; once it is fixed, remove both the marker and the entry.
"""

from __future__ import annotations

import grpc
import pytest

from headwater.dsl import DslError, compile_schema, format_schema, parse_schema
from headwater.engine import Engine
from headwater.engine.client import Client
from headwater.engine.config import Config
from headwater.engine.errors import InvalidRequestError
from headwater.engine.relationships import CaveatRef, parse_relationship
from headwater.engine.service.pb import audit_pb2, audit_pb2_grpc
from headwater.engine.service.server import HeadwaterServer
from headwater.engine.store.memory import MemoryStore

CAVEAT_SCHEMA = """caveat only_if(s string) {
    s == "a"
}

definition user {}

definition document {
    relation viewer: user with only_if
}
"""


def test_format_keeps_a_comment_inside_a_caveat_body_once() -> None:
    text = "caveat c(x int) {\n    x > 1 // why\n}\n"
    once = format_schema(parse_schema(text))
    assert once.count("why") == 1, once
    assert "x > 1 // why" in once, once
    assert format_schema(parse_schema(once)) == once


def _error(text: str) -> DslError:
    with pytest.raises(DslError) as info:
        compile_schema(text)
    return info.value


def test_cel_errors_in_a_multiline_caveat_point_at_the_offending_text() -> None:
    undeclared = _error("caveat c(x int) {\n    x > 1 &&\n    y\n}\n")
    assert (undeclared.line, undeclared.column) == (3, 5), undeclared.render()  # at `y`
    nested = _error("caveat c(x int) {\n\n  // hi\n      x > 1 &&\n        (x < 3 || zz)\n}\n")
    assert (nested.line, nested.column) == (5, 19), nested.render()  # at `zz`
    first_line = _error("caveat c(x int) {x > 1 &&\n   q}\n")
    assert (first_line.line, first_line.column) == (2, 4), first_line.render()  # at `q`
    text = "caveat c(x int) {// x > 1\n}\n"
    empty = _error(text)
    line = text.split("\n")[empty.line - 1]
    assert 1 <= empty.column <= len(line) + 1, empty.render()


def test_deeply_nested_caveat_context_is_an_invalid_relationship() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(InvalidRequestError):
        parse_relationship(f'doc:1#viewer@user:tom[cav:{{"a":{deep}}}]')
    with pytest.raises(InvalidRequestError):
        CaveatRef("cav", f'{{"a":{deep}}}')


def test_deeply_nested_check_context_is_an_invalid_request() -> None:
    engine = Engine(MemoryStore())
    engine.write_schema(CAVEAT_SCHEMA)
    engine.touch("document:doc1#viewer@user:tom[only_if]")
    deep: object = "a"
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(InvalidRequestError):
        engine.check("document:doc1", "viewer", "user:tom", context={"s": deep})


def test_out_of_range_number_in_caveat_context_is_an_invalid_relationship() -> None:
    with pytest.raises(InvalidRequestError):
        parse_relationship('doc:1#viewer@user:tom[cav:{"a":1e999}]')
    with pytest.raises(InvalidRequestError):
        CaveatRef("cav", '{"a":-1e999}')


def test_lone_surrogate_in_caveat_context_is_refused_before_the_store() -> None:
    engine = Engine(MemoryStore())
    engine.write_schema(CAVEAT_SCHEMA)
    with pytest.raises(InvalidRequestError):
        engine.touch(parse_relationship('document:doc1#viewer@user:tom[only_if:{"s":"\\ud800"}]'))


@pytest.fixture(scope="module")
def audited_server(tmp_path_factory: pytest.TempPathFactory):
    """A server with an audit log holding one decision (on document:doc1 view... user:tom)."""
    db = tmp_path_factory.mktemp("fuzz-regressions") / "hw.db"
    server = HeadwaterServer(Config.of(address="127.0.0.1:0", db=str(db), insecure_no_auth=True, audit=True)).start()
    with Client(server.address, timeout=10.0) as client:
        client.write_schema(CAVEAT_SCHEMA)
        client.touch("document:doc1#viewer@user:tom[only_if]")
        client.check("document:doc1", "viewer", "user:tom")
    yield server
    server.stop(grace=0)


def test_replay_with_unreadable_context_json_is_invalid_argument(audited_server: HeadwaterServer) -> None:
    codes = []
    with grpc.insecure_channel(audited_server.address) as channel:
        replay = audit_pb2_grpc.AuditServiceStub(channel).Replay
        for context_json in ('{"s": ' + "[" * 100_000 + "]" * 100_000 + "}", '{"s": "\\ud800"}'):
            request = audit_pb2.AuditReplayRequest(resource="document:doc1", permission="viewer", subject="user:tom",
                                                   context_json=context_json)
            try:
                replay(request, timeout=10)
                codes.append("OK")
            except grpc.RpcError as err:
                codes.append(err.code().name)
    assert codes == ["INVALID_ARGUMENT", "INVALID_ARGUMENT"], codes
