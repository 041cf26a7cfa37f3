"""Thousands of malformed and hostile requests get well-formed errors (never INTERNAL), and the data stays as it was.

Requests are built at the byte level, so they can be what no well-behaved client
sends: random bytes, truncated and bit-flipped messages, invalid UTF-8 inside
strings (also inside a caveat context), nesting past protobuf's limit, huge
strings, unknown enum values and definitions, bad ids. ``HEADWATER_FUZZ_COUNT``
(default 3000) and ``HEADWATER_FUZZ_SEED`` (default 6) control the run.
"""

from __future__ import annotations

import os
import random
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory, struct_pb2
from google.protobuf.descriptor import FieldDescriptor

from headwater.engine.service.handlers import SERVICES

from .conftest import TOKENS, client_for, seed

COUNT = int(os.environ.get("HEADWATER_FUZZ_COUNT", "3000"))
SEED = int(os.environ.get("HEADWATER_FUZZ_SEED", "6"))
ALLOWED = {"OK", "INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION", "OUT_OF_RANGE",
           "RESOURCE_EXHAUSTED", "PERMISSION_DENIED", "UNAUTHENTICATED"}
MARKER = "\u00a7MARK\u00a7"  # replaced by invalid UTF-8 of the same byte length after serialization
BAD_UTF8 = [b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", b"\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0",
            b"\xed\xa0\x80\xed\xbf\xbf\x80\x80"]

HOSTILE = ["", " ", "a b", "*", "...", "#", "@", ":", "document", "user", "view", "viewer", "readme", "ann",
           "document:readme", "user:ann#member", "group:eng#member", "hw1_", "hw1_zzzz", "hwc1_abc", "DROP TABLE x;",
           "../../etc/passwd", "\x00", "\x00\x01\x02", "\u202e", "\U0001f600" * 10, "no_such_type", "nope",
           "x" * 65, "a" * 1025, "b" * 5000, "y" * 200_000, "user:*", "sensitivity", "pii", "scrubbed",
           "%s%s%n", "${jndi:ldap://x}", "\\", "\"", "[", "]", "{}", "definition x {}", "definition {",
           MARKER, "doc" + MARKER]


def _methods() -> list[tuple[str, Any, bool, bool]]:
    out = []
    for module, name, _ in SERVICES:
        service = module.DESCRIPTOR.services_by_name[name]
        for m in service.methods:
            out.append((f"/{service.full_name}/{m.name}", message_factory.GetMessageClass(m.input_type),
                        m.client_streaming, m.server_streaming))
    return out


METHODS = _methods()


def _struct(rng: random.Random, depth: int) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    for _ in range(rng.randint(0, 3)):
        key = rng.choice(HOSTILE)[:50]
        kind = rng.randint(0, 6)
        if kind == 0 and depth > 0:
            s.fields[key].struct_value.CopyFrom(_struct(rng, depth - 1))
        elif kind == 1:
            s.fields[key].number_value = rng.choice([0, -1, 1e308, -1e308, float("nan"), float("inf"), 2**63, 0.5])
        elif kind == 2:
            s.fields[key].bool_value = rng.random() < 0.5
        elif kind == 3:
            s.fields[key].null_value = 0
        elif kind == 4 and depth > 0:
            s.fields[key].list_value.values.add().string_value = rng.choice(HOSTILE)
        else:
            s.fields[key].string_value = rng.choice(HOSTILE)
    return s


def _deep_struct(levels: int) -> struct_pb2.Struct:
    inner = struct_pb2.Struct()
    for _ in range(levels):
        outer = struct_pb2.Struct()
        outer.fields["a"].struct_value.CopyFrom(inner)
        inner = outer
    return inner


def _fill(msg: Any, rng: random.Random, depth: int) -> None:
    """Set some fields of ``msg`` to hostile values (nested messages to a small depth)."""
    for field in msg.DESCRIPTOR.fields:
        if rng.random() < 0.3:
            continue
        repeated = field.is_repeated if hasattr(field, "is_repeated") else field.label == FieldDescriptor.LABEL_REPEATED
        count = rng.randint(0, 3) if repeated else 1
        for _ in range(count):
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if depth <= 0:
                    continue
                target = getattr(msg, field.name).add() if repeated else getattr(msg, field.name)
                if field.message_type.full_name == "google.protobuf.Struct":
                    roll = rng.random()
                    target.CopyFrom(_deep_struct(rng.choice([40, 60])) if roll < 0.1 else _struct(rng, 3))
                elif field.message_type.full_name == "google.protobuf.Timestamp":
                    target.seconds = rng.choice([0, -1, 2**40, -(2**40), 253402300800, 1700000000])
                    target.nanos = rng.choice([0, 999_999_999, 5])
                else:
                    _fill(target, rng, depth - 1)
                    if not repeated and not target.ListFields():
                        msg.ClearField(field.name)
            elif field.type == FieldDescriptor.TYPE_STRING:
                value = rng.choice(HOSTILE)
                getattr(msg, field.name).append(value) if repeated else setattr(msg, field.name, value)
            elif field.type == FieldDescriptor.TYPE_BOOL:
                if not repeated:
                    setattr(msg, field.name, rng.random() < 0.5)
            elif field.type == FieldDescriptor.TYPE_ENUM:
                value = rng.choice([0, 1, 2, 3, 4, 99, -1])
                getattr(msg, field.name).append(value) if repeated else setattr(msg, field.name, value)
            elif field.type in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_UINT64):
                if not repeated:
                    setattr(msg, field.name, rng.choice([0, 1, 2, 100, 101, 10_000, 2**32 - 1]))
            elif field.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64):
                if not repeated:
                    setattr(msg, field.name, rng.choice([0, -1, 1, 2**31 - 1, -(2**31)]))


def _raw_nested(levels: int) -> bytes:
    """A Struct nested deeper than protobuf parses (Struct.fields[key] -> Value.struct_value -> Struct ...)."""
    def ld(field: int, payload: bytes) -> bytes:
        length, out = len(payload), b""
        while True:
            byte = length & 0x7F
            length >>= 7
            out += bytes([byte | (0x80 if length else 0)])
            if not length:
                break
        return bytes([(field << 3) | 2]) + out + payload

    inner = b""
    for _ in range(levels):
        value = ld(5, inner)                       # Value.struct_value = 5
        entry = ld(1, b"a") + ld(2, value)         # map entry: key = 1, value = 2
        inner = ld(1, entry)                       # Struct.fields = 1
    return inner


def _payload(rng: random.Random, cls: Any, method: str) -> bytes:
    roll = rng.random()
    if roll < 0.12:
        return rng.randbytes(rng.randint(0, 300))
    msg = cls()
    _fill(msg, rng, 4)
    data = msg.SerializeToString()
    if roll < 0.25 and data:  # truncate or flip bits
        data = bytearray(data)
        if rng.random() < 0.5:
            del data[rng.randrange(len(data)):]
        else:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    if roll < 0.32:  # a context nested past protobuf's recursion limit, in the field that holds a Struct
        for field in cls.DESCRIPTOR.fields:
            if field.message_type is not None and field.message_type.full_name == "google.protobuf.Struct":
                return data + bytes([(field.number << 3) | 2]) + _varint(len(_raw_nested(150))) + _raw_nested(150)
    marker = MARKER.encode()
    while marker in data:  # invalid UTF-8 in whatever string held the marker (a caveat context too)
        data = data.replace(marker, rng.choice(BAD_UTF8), 1)
    return data


def _varint(n: int) -> bytes:
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def _state(client) -> tuple[list[str], str]:
    return sorted(str(r) for r in client.export_relationships()), client.read_schema()[0]


def test_hostile_requests_get_only_well_formed_errors(make_server) -> None:
    server = make_server(audit=True)  # audited, so that the AuditService RPCs are fuzzed too
    with client_for(server) as c:
        seed(c)
        before = _state(c)
    rng = random.Random(SEED)
    codes: dict[str, int] = {}
    failures: list[str] = []
    channel = grpc.insecure_channel(server.address, options=[("grpc.max_send_message_length", 8 * 1024 * 1024)])
    who = [TOKENS["admin"][0]] * 8 + [TOKENS["reader"][0], "junk-token-junk-token"]
    for n in range(COUNT):
        method, cls, client_streaming, server_streaming = METHODS[n % len(METHODS)]
        metadata = (("authorization", f"Bearer {rng.choice(who)}"),)
        following = method.endswith(("/Watch", "/Monitor"))  # streams that may stay open until their deadline
        timeout = 0.05 if following else 10
        try:
            if client_streaming:
                call = channel.stream_unary(method)
                call(iter([_payload(rng, cls, method) for _ in range(rng.randint(1, 3))]), metadata=metadata,
                     timeout=timeout)
            elif server_streaming:
                for i, _ in enumerate(channel.unary_stream(method)(_payload(rng, cls, method), metadata=metadata,
                                                                  timeout=timeout)):
                    if i > 50:
                        break
            else:
                channel.unary_unary(method)(_payload(rng, cls, method), metadata=metadata, timeout=timeout)
            code = "OK"
        except grpc.RpcError as err:
            code = err.code().name
            details = err.details() or ""
            if code == "DEADLINE_EXCEEDED" and following:
                code = "OK"  # a valid watch (or a monitor that follows the audit log) runs until its deadline
            elif code not in ALLOWED or not details or "internal error" in details:
                failures.append(f"{method}: {code}: {details[:200]}")
        codes[code] = codes.get(code, 0) + 1
    # Messages over the size limit are refused before decoding.
    huge = b"\x1a" + _varint(2 * 1024 * 1024) + b"p" * (2 * 1024 * 1024)  # a 2 MiB permission name
    with pytest.raises(grpc.RpcError) as err:
        channel.unary_unary("/headwater.v1.PermissionService/Check")(
            huge, metadata=(("authorization", f"Bearer {who[0]}"),), timeout=10)
    assert err.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    channel.close()
    assert not failures, f"{len(failures)} bad answers, e.g.:\n" + "\n".join(failures[:20])
    assert codes.get("INVALID_ARGUMENT", 0) > COUNT // 3, codes
    with client_for(server) as c:
        assert _state(c) == before, "hostile requests changed the stored data"
        assert c.check("document:readme", "view", "user:bob").allowed  # and the server still answers
