"""Fuzzing every RPC of a real server: random bytes, random messages built from the descriptors, mutated requests.

One server runs in-process for the module (SQLite in a temporary folder, audited, no
tokens, small limits), seeded with a schema that has a caveat, a classification and
lineage. Every method of every service in ``SERVICES`` (read from the generated
descriptors, so a new RPC is fuzzed without a change here) gets three batches:

* **random bytes** as the request;
* **random messages**: every field drawn from its descriptor (strings from the seeded
  names, revision tokens and hostile text; integers at their limits; unknown enum
  values; Structs of any JSON; Timestamps out of range; repeated fields; oneofs);
* **mutated valid requests**: the encoding of a valid request (hand-written below, or
  a random message) with bits flipped, truncated, bytes inserted, a field repeated or
  the whole message concatenated to itself (protobuf merges it).

The client-streaming Import gets streams of such messages; server streams are read up
to a bound; Watch and Monitor (which may follow the audit log) run until a short deadline.
Properties:

* no status is INTERNAL, UNKNOWN, UNIMPLEMENTED or DATA_LOSS, and every error has details;
* no call other than Watch and Monitor runs into its deadline (a hang);
* a revision is only ever added by a write RPC that answered OK (the store's head is
  read before and after each call), and the head never moves back (an Import that
  fails keeps its earlier batches by design; the streams here fit in one batch);
* after each batch the server is SERVING on the health service and answers known
  checks correctly at the seed's snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory, struct_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import given, reject
from hypothesis import strategies as st

from headwater.engine import Consistency
from headwater.engine.client import Client
from headwater.engine.config import Config
from headwater.engine.consistency import decode_token, encode_token
from headwater.engine.service.handlers import SERVICES
from headwater.engine.service.pb import (
    audit_pb2,
    core_pb2,
    governance_pb2,
    lineage_pb2,
    permission_pb2,
    relationship_pb2,
    schema_pb2,
)
from headwater.engine.service.server import HeadwaterServer

from .conftest import fuzz_settings, no_hang
from .known_defects import known_rpc_defect

SCHEMA = """use expiration

caveat on_tuesday(day string) {
    day == "tue"
}

classification sensitivity {
    levels public < internal < confidential
    categories pii
    cleared: user
}

definition user {}

definition group {
    relation member: user | group#member
}

definition document {
    relation owner: user
    relation viewer: user | user:* | group#member | user with on_tuesday | user with expiration
    relation banned: user
    relation label: sensitivity
    relation steward: user
    declassify scrubbed: sensitivity by steward
    lineage derived_from: document
    permission edit = owner
    permission view = (viewer + edit) - banned
    permission read = view & cleared
}
"""

SEED = [
    "document:readme#owner@user:ann",
    "document:readme#viewer@user:bob",
    "document:readme#viewer@group:eng#member",
    "document:readme#banned@user:mallory",
    "group:eng#member@user:cat",
    "document:public#viewer@user:*",
    "document:tuesday#viewer@user:dan[on_tuesday]",
    "document:raw#label@sensitivity:confidential",
    "document:raw#viewer@user:bob",
    "document:clean#derived_from@document:raw",
    "document:clean#steward@user:stew",
    "document:clean#viewer@user:bob",
    "document:clean#viewer@user:cat",
    "sensitivity:confidential#cleared@user:bob",
]

#: (resource, permission, subject, expected permissionship name) at the seed's revision.
KNOWN_CHECKS = [
    ("document:readme", "view", "user:bob", "HAS_PERMISSION"),
    ("document:readme", "view", "user:cat", "HAS_PERMISSION"),
    ("document:readme", "view", "user:mallory", "NO_PERMISSION"),
    ("document:tuesday", "view", "user:dan", "CONDITIONAL_PERMISSION"),
    ("document:clean", "read", "user:bob", "HAS_PERMISSION"),
    ("document:clean", "read", "user:cat", "NO_PERMISSION"),  # cat may view, but is not cleared
]

WRITE_METHODS = {"/headwater.v1.RelationshipService/Write", "/headwater.v1.RelationshipService/Delete",
                 "/headwater.v1.RelationshipService/Import", "/headwater.v1.SchemaService/Write",
                 "/headwater.v1.LineageService/Derive"}
FORBIDDEN = {"INTERNAL", "UNKNOWN", "UNIMPLEMENTED", "DATA_LOSS"}
LIMITS = {"max_updates_per_write": 50, "max_bulk_check_items": 20, "max_caveat_context_bytes": 512,
          "max_page_size": 100, "max_message_bytes": 1024 * 1024, "max_depth": 20, "watch_poll_seconds": 0.05,
          "grace_seconds": 2.0}
CALL_TIMEOUT = 20.0  # seconds; only Watch may run into its deadline
WATCH_TIMEOUT = 0.1
FOLLOWING = ("/Watch", "/Monitor")  # streams that may stay open until their deadline
MAX_STREAM_MESSAGES = 50


@dataclass(frozen=True)
class Method:
    path: str
    request: Any  # the request message class
    client_streaming: bool
    server_streaming: bool

    @property
    def descriptor(self) -> Descriptor:
        return self.request.DESCRIPTOR


def _methods() -> list[Method]:
    out = []
    for module, name, _ in SERVICES:
        service = module.DESCRIPTOR.services_by_name[name]
        for m in service.methods:
            out.append(Method(f"/{service.full_name}/{m.name}", message_factory.GetMessageClass(m.input_type),
                              m.client_streaming, m.server_streaming))
    return out


METHODS = _methods()


# --- the server ------------------------------------------------------------------------------


class Target:
    """The server under test, a raw channel to it, and the checks that it is still well."""

    def __init__(self, server: HeadwaterServer, seed_token: str) -> None:
        self.server = server
        self.seed_token = seed_token
        self.channel = grpc.insecure_channel(server.address, options=[("grpc.max_send_message_length", 8 << 20),
                                                                      ("grpc.max_receive_message_length", 8 << 20)])
        self.calls: dict[str, int] = {}

    def head(self) -> int:
        assert self.server.engine is not None
        return decode_token(self.server.engine.revision_token())

    def call(self, method: Method, payloads: list[bytes]) -> str:
        """Send one call; the status name. Fails the test on a forbidden status, a hang or a stray revision."""
        before = self.head()
        timeout = WATCH_TIMEOUT if method.path.endswith(FOLLOWING) else CALL_TIMEOUT
        code, details = "OK", ""
        with no_hang(CALL_TIMEOUT + 30):
            try:
                if method.client_streaming:
                    self.channel.stream_unary(method.path)(iter(payloads), timeout=timeout)
                elif method.server_streaming:
                    call = self.channel.unary_stream(method.path)(payloads[0], timeout=timeout)
                    for i, _ in enumerate(call):
                        if i >= MAX_STREAM_MESSAGES:
                            call.cancel()
                            break
                else:
                    self.channel.unary_unary(method.path)(payloads[0], timeout=timeout)
            except grpc.RpcError as err:
                code, details = err.code().name, err.details() or ""
        if code == "CANCELLED" or (code == "DEADLINE_EXCEEDED" and method.path.endswith(FOLLOWING)):
            code = "OK"  # we stopped reading a long stream, or a watch ran to its deadline
        after = self.head()
        self.calls[code] = self.calls.get(code, 0) + 1
        where = f"{method.path} answered {code} ({details[:300]!r})"
        if code == "INTERNAL" and known_rpc_defect(method.path, payloads, method.request.FromString):
            reject()  # reported, with its regression test (known_defects.py)
        assert code not in FORBIDDEN, where
        assert code != "DEADLINE_EXCEEDED", f"{where}: the call hung past {timeout} s"
        assert code == "OK" or details, f"{where}: an error without details"
        assert after >= before, f"{where}: the head revision moved back from {before} to {after}"
        if after > before:
            assert method.path in WRITE_METHODS and code == "OK", (
                f"{where}, and the store went from revision {before} to {after}")
        return code

    def assert_healthy(self) -> None:
        with Client(self.server.address, timeout=10.0) as client:
            assert client.health() == "SERVING"
            at_seed = Consistency.at_exact_snapshot(self.seed_token)
            for resource, permission, subject, expected in KNOWN_CHECKS:
                result = client.check(resource, permission, subject, consistency=at_seed)
                assert result.permissionship.name == expected, (resource, permission, subject, result)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("fuzz-rpc") / "hw.db"
    server = HeadwaterServer(Config.of(address="127.0.0.1:0", db=str(db), insecure_no_auth=True, audit=True,
                                       **LIMITS)).start()
    try:
        with Client(server.address, timeout=10.0) as client:
            client.write_schema(SCHEMA, actor="user:admin")
            token = client.touch(*SEED, actor="user:admin", reason="seed").token
            client.check("document:readme", "view", "user:bob")  # a decision in the audit log, to replay
        t = Target(server, token)
        t.assert_healthy()
        yield t
        t.channel.close()
    finally:
        server.stop(grace=0)


# --- valid requests --------------------------------------------------------------------------


def _obj(text: str) -> core_pb2.ObjectReference:
    type_, _, id_ = text.partition(":")
    return core_pb2.ObjectReference(object_type=type_, object_id=id_)


def _subj(text: str) -> core_pb2.SubjectReference:
    obj, _, relation = text.partition("#")
    return core_pb2.SubjectReference(object=_obj(obj), optional_relation=relation)


def _rel(resource: str, relation: str, subject: str, caveat: str = "", context: dict | None = None
         ) -> core_pb2.Relationship:
    rel = core_pb2.Relationship(resource=_obj(resource), relation=relation, subject=_subj(subject))
    if caveat:
        rel.optional_caveat.caveat_name = caveat
        rel.optional_caveat.context.update(context or {})
    return rel


def _context(**values: Any) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(values)
    return s


def _valid_requests() -> dict[str, list[list[Any]]]:
    """Valid requests for each method (a list of messages: one for unary requests, several for Import)."""
    p, r, s, lin, a = permission_pb2, relationship_pb2, schema_pb2, lineage_pb2, audit_pb2
    fresh = core_pb2.Consistency(fully_consistent=True)
    readme_filter = core_pb2.RelationshipFilter(resource_type="document", optional_resource_id="readme")
    touch = r.RelationshipUpdate(operation=r.RelationshipUpdate.OPERATION_TOUCH,
                                 relationship=_rel("document:fuzz", "viewer", "user:dan", "on_tuesday",
                                                   {"day": "mon"}))
    filt = a.AuditFilter(kind=a.AUDIT_RECORD_KIND_DECISION)
    requests: dict[str, list[Any]] = {
        "PermissionService/Check": [
            p.CheckRequest(resource=_obj("document:readme"), permission="view", subject=_subj("user:bob")),
            p.CheckRequest(resource=_obj("document:tuesday"), permission="view", subject=_subj("user:dan"),
                           context=_context(day="tue"), consistency=fresh, explain=True)],
        "PermissionService/CheckBulk": [p.CheckBulkRequest(items=[
            p.CheckBulkRequestItem(resource=_obj("document:readme"), permission="view", subject=_subj("user:cat")),
            p.CheckBulkRequestItem(resource=_obj("document:clean"), permission="read", subject=_subj("user:bob"),
                                   context=_context(day="tue"))])],
        "PermissionService/Expand": [p.ExpandRequest(resource=_obj("document:readme"), permission="view")],
        "PermissionService/LookupResources": [p.LookupResourcesRequest(
            resource_object_type="document", permission="view", subject=_subj("user:bob"), optional_limit=2)],
        "PermissionService/LookupSubjects": [p.LookupSubjectsRequest(
            resource=_obj("document:readme"), permission="view", subject_object_type="user", optional_limit=3)],
        "RelationshipService/Write": [r.WriteRequest(updates=[touch], actor="user:fuzz", reason="fuzz")],
        "RelationshipService/Delete": [r.DeleteRequest(
            filter=core_pb2.RelationshipFilter(resource_type="document", optional_resource_id="fuzz"),
            optional_limit=5, optional_allow_partial_deletions=True)],
        "RelationshipService/Read": [r.ReadRequest(filter=readme_filter, optional_limit=2)],
        "RelationshipService/Import": [r.ImportRequest(
            relationships=[_rel(f"document:imp{i}", "viewer", "user:bob")], actor="user:fuzz") for i in range(3)],
        "RelationshipService/Export": [r.ExportRequest(filter=readme_filter, optional_batch_size=2)],
        "RelationshipService/Watch": [r.WatchRequest(optional_resource_types=["document"])],
        "SchemaService/Write": [s.WriteSchemaRequest(schema=SCHEMA, dry_run=True, actor="user:fuzz")],
        "SchemaService/Read": [s.ReadSchemaRequest(consistency=fresh)],
        "SchemaService/History": [s.SchemaHistoryRequest(include_text=True)],
        "LineageService/EffectiveLabels": [lin.EffectiveLabelsRequest(object=_obj("document:clean"))],
        "LineageService/Ancestors": [lin.LineageWalkRequest(object=_obj("document:clean"), optional_max_depth=3)],
        "LineageService/Descendants": [lin.LineageWalkRequest(object=_obj("document:raw"), optional_limit=2)],
        "LineageService/Derive": [lin.DeriveRequest(
            object=_obj("document:fuzzd"),
            lineage=[lin.DeriveLineage(relation="derived_from", sources=[_obj("document:raw")])],
            relationships=[_rel("document:fuzzd", "viewer", "user:dan", "on_tuesday", {"day": "mon"})],
            checks=[lin.DeriveCheck(permission="view", subject=_subj("user:dan"))], context=_context(day="tue"),
            actor="user:fuzz", reason="fuzz")],
        "GovernanceService/Monitor": [governance_pb2.MonitorRequest(rules_toml="[monitor]\nmin_denials = 3\n")],
        "GovernanceService/Impact": [governance_pb2.ImpactRequest(
            schema=SCHEMA, limit=5, updates=[r.RelationshipUpdate(operation=r.RelationshipUpdate.OPERATION_DELETE,
                                                                  relationship=_rel("document:readme", "viewer",
                                                                                    "user:bob"))])],
        "AuditService/Query": [a.AuditQueryRequest(filter=filt, newest_first=True, optional_limit=3)],
        "AuditService/Export": [a.AuditExportRequest(filter=filt, optional_batch_size=2)],
        "AuditService/Verify": [a.AuditVerifyRequest()],
        "AuditService/Replay": [a.AuditReplayRequest(resource="document:readme", permission="view",
                                                     subject="user:bob", context_json="{}")],
    }
    out: dict[str, list[list[Any]]] = {}
    for key, messages in requests.items():
        path = "/headwater.v1." + key
        streaming = next(m for m in METHODS if m.path == path).client_streaming
        out[path] = [messages] if streaming else [[m] for m in messages]
    return out


VALID = _valid_requests()


def test_every_method_has_valid_requests_that_succeed(target: Target) -> None:
    """The hand-written requests cover every RPC and are valid: mutations start from real requests."""
    assert set(VALID) == {m.path for m in METHODS}, "a new RPC needs a valid request in VALID"
    for method in METHODS:
        for messages in VALID[method.path]:
            code = target.call(method, [m.SerializeToString() for m in messages])
            assert code in ("OK", "ALREADY_EXISTS"), (method.path, code)
    target.assert_healthy()


# --- random messages from the descriptors ------------------------------------------------------

NAMES = ["document", "readme", "view", "viewer", "read", "edit", "owner", "banned", "user", "bob", "ann", "cat",
         "mallory", "dan", "group", "eng", "member", "sensitivity", "confidential", "pii", "public", "raw", "clean",
         "derived_from", "label", "steward", "scrubbed", "on_tuesday", "day", "tue", "fuzz", "user:bob",
         "document:readme", "group:eng#member", "user:*", "*", "...", "expiration"]
HOSTILE = ["", " ", "a b", "#", "@", ":", "\x00", "\u202e", "\U0001f600" * 20, "x" * 65, "a" * 1025, "b" * 70_000,
           "DROP TABLE relationships;", "../../etc/passwd", "%s%n", "{}", '{"day": "tue"}', "{", "[]", "null",
           "nope", "hw1_", "hw1_zzzzzzzz", "hwc1_abc", "definition x {}", "definition {", SCHEMA,
           SCHEMA.replace("permission read = view & cleared", ""), SCHEMA + "\ndefinition extra {}\n",
           '{"day": ' + "[" * 5000 + "]" * 5000 + "}", '{"day": 1e999}', '{"day": "\\ud800"}', '{"day": NaN}',
           '{"\\udfff": 1}']
TOKENS = [encode_token(0), encode_token(1), encode_token(2), encode_token(10**12), encode_token(2**63)]
STRINGS = st.sampled_from(NAMES) | st.sampled_from(HOSTILE) | st.sampled_from(TOKENS) | st.text(max_size=20)
JSON = st.recursive(st.none() | st.booleans() | st.floats() | st.text(max_size=10) | st.sampled_from(NAMES),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(STRINGS, inner, max_size=3),
                    max_leaves=8)
INT_LIMITS = {FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1), FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
              FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1), FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1)}


def _repeated(field: FieldDescriptor) -> bool:
    if hasattr(field, "is_repeated"):
        return bool(field.is_repeated)
    return field.label == FieldDescriptor.LABEL_REPEATED


def _scalar(draw: st.DrawFn, field: FieldDescriptor) -> Any:
    if field.type == FieldDescriptor.TYPE_STRING:
        return draw(STRINGS)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return draw(st.booleans())
    if field.type == FieldDescriptor.TYPE_ENUM:
        return draw(st.sampled_from([v.number for v in field.enum_type.values]) | st.sampled_from([99, -1, 2**31 - 1]))
    if field.type in INT_LIMITS:
        low, high = INT_LIMITS[field.type]
        return draw(st.sampled_from([0, 1, 2, 3, 5, 100, 101, 10_000, low, high]) | st.integers(low, high))
    if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return draw(st.floats(width=32 if field.type == FieldDescriptor.TYPE_FLOAT else 64))
    if field.type == FieldDescriptor.TYPE_BYTES:
        return draw(st.binary(max_size=20))
    raise AssertionError(f"no strategy for field {field.full_name} of type {field.type}")


def _fill(draw: st.DrawFn, msg: Any, depth: int) -> None:
    """Set a random subset of ``msg``'s fields (at most one field of each oneof)."""
    oneofs_done: set[str] = set()
    for field in msg.DESCRIPTOR.fields:
        if not draw(st.booleans()):
            continue
        if field.containing_oneof is not None:
            if field.containing_oneof.name in oneofs_done:
                continue
            oneofs_done.add(field.containing_oneof.name)
        count = draw(st.integers(0, 3)) if _repeated(field) else 1
        for _ in range(count):
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if field.message_type.GetOptions().map_entry:
                    continue
                if depth <= 0:
                    break
                target = getattr(msg, field.name).add() if _repeated(field) else getattr(msg, field.name)
                full_name = field.message_type.full_name
                if full_name == "google.protobuf.Struct":
                    target.update(draw(st.dictionaries(STRINGS, JSON, max_size=4)))
                elif full_name == "google.protobuf.Timestamp":
                    target.seconds = draw(st.sampled_from([0, -1, 1_700_000_000, 253402300799, 253402300800,
                                                           -62135596800, -62135596801, 2**62]))
                    target.nanos = draw(st.sampled_from([0, 1, 999_999_999, 1_000_000_000, -1]))
                else:
                    _fill(draw, target, depth - 1)
                    if not _repeated(field):
                        target.SetInParent()
            elif _repeated(field):
                getattr(msg, field.name).append(_scalar(draw, field))
            else:
                setattr(msg, field.name, _scalar(draw, field))


@st.composite
def messages(draw: st.DrawFn, method: Method) -> bytes:
    msg = method.request()
    _fill(draw, msg, 4)
    return msg.SerializeToString()


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with bits flipped, cut, bytes inserted, a range repeated, or the message doubled."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "repeat", "double", "delete"]))
        i = draw(st.integers(0, len(out)))
        if op == "flip" and out:
            i = min(i, len(out) - 1)
            out[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            del out[i:]
        elif op == "insert":
            out[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "repeat":
            j = draw(st.integers(i, min(len(out), i + 40)))
            out[j:j] = out[i:j] * draw(st.integers(1, 3))
        elif op == "double":
            out = out + bytes(out)
        elif op == "delete":
            j = draw(st.integers(i, min(len(out), i + 8)))
            del out[i:j]
    return bytes(out)


@st.composite
def mutated_requests(draw: st.DrawFn, method: Method) -> list[bytes]:
    valid = draw(st.sampled_from(VALID[method.path]) | messages(method).map(lambda b: [method.request.FromString(b)]))
    encoded = [m.SerializeToString() for m in valid]
    i = draw(st.integers(0, len(encoded) - 1))
    encoded[i] = draw(mutated(encoded[i]))
    return encoded


def _payloads(method: Method, one: st.SearchStrategy[bytes]) -> st.SearchStrategy[list[bytes]]:
    if method.client_streaming:
        return st.lists(one, max_size=3)  # an empty stream too
    return one.map(lambda b: [b])


IDS = [m.path.removeprefix("/headwater.v1.") for m in METHODS]


@pytest.mark.parametrize("method", METHODS, ids=IDS)
def test_random_bytes(target: Target, method: Method) -> None:
    @fuzz_settings(6)
    @given(_payloads(method, st.binary(max_size=300) | st.binary(min_size=1, max_size=20).map(lambda b: b * 40)))
    def run(payloads: list[bytes]) -> None:
        target.call(method, payloads)

    run()
    target.assert_healthy()


@pytest.mark.parametrize("method", METHODS, ids=IDS)
def test_random_messages(target: Target, method: Method) -> None:
    @fuzz_settings(12)
    @given(_payloads(method, messages(method)))
    def run(payloads: list[bytes]) -> None:
        target.call(method, payloads)

    run()
    target.assert_healthy()


@pytest.mark.parametrize("method", METHODS, ids=IDS)
def test_mutated_valid_requests(target: Target, method: Method) -> None:
    @fuzz_settings(10)
    @given(mutated_requests(method))
    def run(payloads: list[bytes]) -> None:
        target.call(method, payloads)

    run()
    target.assert_healthy()


def test_interleaved_calls_keep_the_server_consistent(target: Target) -> None:
    """Calls to every method in a random order, as concurrent clients would send them one after the other."""
    @fuzz_settings(30)
    @given(st.lists(st.sampled_from(METHODS), min_size=1, max_size=8), st.data())
    def run(sequence: list[Method], data: st.DataObject) -> None:
        for method in sequence:
            strategy = mutated_requests(method) if data.draw(st.booleans()) else _payloads(method, messages(method))
            target.call(method, data.draw(strategy))

    run()
    target.assert_healthy()
    assert target.calls.get("OK", 0) > 0 and target.calls.get("INVALID_ARGUMENT", 0) > 0, target.calls
