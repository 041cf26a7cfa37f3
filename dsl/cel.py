"""Compile and evaluate SpiceDB caveat expressions (CEL).

This is the only module of the project that imports the CEL library
(``cel-expr-python``, Google's Python binding of cel-cpp; see
``docs/decisions/cel.md``).  It reproduces what SpiceDB does with cel-go:

* ``compile_caveat`` type-checks an expression against the declared parameter
  types (``uint`` is declared to CEL as ``int``, ``map<T>`` as
  ``map(string, T)``, ``ipaddress`` as the object type ``IPAddress`` with the
  member ``in_cidr(string) -> bool``; maps also get SpiceDB's
  ``isSubtreeOf(map) -> bool``; optional syntax such as ``m[?k]`` is enabled)
  and requires a ``bool`` result.
* ``CompiledCaveat.evaluate`` converts JSON-like context values the way
  SpiceDB converts ``google.protobuf.Struct`` values, then evaluates; missing
  parameters make the result conditional unless the expression is decided
  without them.

Example::

    >>> c = compile_caveat("ip_allowlist", {"user_ip": CelType("ipaddress"),
    ...                                     "cidrs": CelType("list", (CelType("string"),))},
    ...                    "cidrs.exists(c, user_ip.in_cidr(c))")
    >>> c.evaluate({"user_ip": "10.0.0.7", "cidrs": ["10.0.0.0/8"]})
    CaveatResult(value=True, missing=())
    >>> c.evaluate({"cidrs": ["10.0.0.0/8"]})
    CaveatResult(value=None, missing=('user_ip',))
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import ipaddress as _ip
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Final

from cel_expr_python import cel as _cel
from cel_expr_python.ext import ext_optional as _ext_optional
from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    message_factory,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)

__all__ = [
    "KNOWN_TYPES",
    "CaveatContextError",
    "CaveatEvaluationError",
    "CaveatResult",
    "CelError",
    "CelType",
    "CompiledCaveat",
    "compile_caveat",
    "referenced_names",
]

# --------------------------------------------------------------------------- types


@dataclass(frozen=True, slots=True)
class CelType:
    """A caveat parameter type such as ``int`` or ``list<map<string>>``."""

    name: str
    args: tuple[CelType, ...] = ()

    def __str__(self) -> str:
        """Render the type as written in a schema, e.g. ``list<int>``."""
        if not self.args:
            return self.name
        return f"{self.name}<{', '.join(str(a) for a in self.args)}>"


KNOWN_TYPES: Final[Mapping[str, int]] = MappingProxyType({
    "any": 0,
    "bool": 0,
    "bytes": 0,
    "double": 0,
    "duration": 0,
    "int": 0,
    "ipaddress": 0,
    "list": 1,
    "map": 1,
    "string": 0,
    "timestamp": 0,
    "uint": 0,
})
"""Caveat parameter type names mapped to the number of generic arguments each takes."""

# --------------------------------------------------------------------------- errors


class CelError(Exception):
    """A compile-time problem in a caveat expression, positioned relative to the expression text."""

    message: str
    line: int
    column: int

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message, line, column)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        """``line:column: message`` (1-based, relative to the expression)."""
        return f"{self.line}:{self.column}: {self.message}"


class CaveatContextError(Exception):
    """A context value that does not fit the declared type of its caveat parameter."""

    caveat: str
    parameter: str
    expected: CelType
    message: str

    def __init__(self, caveat: str, parameter: str, expected: CelType, detail: str) -> None:
        message = (f"invalid value for parameter `{parameter}` of caveat `{caveat}`: "
                   f"expected {expected}: {detail}")
        super().__init__(message)
        self.caveat = caveat
        self.parameter = parameter
        self.expected = expected
        self.message = message


class CaveatEvaluationError(Exception):
    """A runtime error (division by zero, overflow, bad CIDR...) while evaluating a fully-bound caveat."""

    caveat: str
    message: str

    def __init__(self, caveat: str, detail: str) -> None:
        message = f"error evaluating caveat `{caveat}`: {detail}"
        super().__init__(message)
        self.caveat = caveat
        self.message = message


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class CaveatResult:
    """The outcome of a caveat evaluation: true, false, or conditional (``value is None``)."""

    value: bool | None
    missing: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.value is not None and self.missing:
            raise ValueError("a decided CaveatResult cannot list missing parameters")


_TRUE: Final = CaveatResult(True, ())
_FALSE: Final = CaveatResult(False, ())

# --------------------------------------------------------------------------- CEL environment

_IPADDRESS_MESSAGE: Final = "IPAddress"  # the CEL type name SpiceDB uses for `ipaddress`


def _make_pool() -> descriptor_pool.DescriptorPool:
    """A private descriptor pool: the well-known types plus the ``IPAddress`` message."""
    pool = descriptor_pool.DescriptorPool()
    for module in (any_pb2, duration_pb2, empty_pb2, field_mask_pb2, struct_pb2, timestamp_pb2, wrappers_pb2):
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    fdp = descriptor_pb2.FileDescriptorProto(name="headwater/dsl/cel_ipaddress.proto", syntax="proto3")
    msg = fdp.message_type.add(name=_IPADDRESS_MESSAGE)
    msg.field.add(name="address", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool.Add(fdp)
    return pool


_POOL: Final = _make_pool()
_IPAddressMessage: Final = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(_IPADDRESS_MESSAGE))
_IP_CEL_TYPE: Final = _cel.Type(_IPADDRESS_MESSAGE)
_CIDR_BITS: Final = re.compile(r"0|[1-9][0-9]{0,2}")


def _in_cidr(ip: object, cidr: str) -> bool:
    """``ipaddress.in_cidr(string)``: Go ``netip.ParsePrefix(cidr).Contains(ip)``."""
    addr_text, slash, bits = cidr.rpartition("/")
    if not slash or "%" in addr_text or not _CIDR_BITS.fullmatch(bits):
        raise ValueError(f"invalid CIDR string: `{cidr}`")
    try:
        network_addr = _ip.ip_address(addr_text)
        network = _ip.ip_network(f"{network_addr}/{bits}", strict=False)
    except ValueError:
        raise ValueError(f"invalid CIDR string: `{cidr}`") from None
    address = _ip.ip_address(ip.address)  # type: ignore[attr-defined]
    if getattr(address, "scope_id", None):
        return False  # netip: an address with a zone is in no prefix
    return address.version == network.version and address in network


def _is_subtree_of(small: object, big: object) -> bool:
    """``map.isSubtreeOf(map)``: every key of ``small`` is in ``big`` with an equal (or sub-tree) value."""
    if not isinstance(small, Mapping) or not isinstance(big, Mapping):
        return False
    for key, value in small.items():
        if key not in big:
            return False
        other = big[key]
        if isinstance(value, Mapping):
            if not _is_subtree_of(value, other):
                return False
        elif type(value) is bool or type(other) is bool:
            if value is not other:
                return False
        elif value != other:
            return False
    return True


_T = _cel.Type
_FUNCTIONS: Final = (
    _cel.FunctionDecl("in_cidr", [
        _cel.Overload("ipaddress_in_cidr_string", return_type=_T.BOOL, parameters=[_IP_CEL_TYPE, _T.STRING],
                      is_member=True, impl=_in_cidr),
    ]),
    _cel.FunctionDecl("isSubtreeOf", [
        _cel.Overload("map_is_subtree_of_map", return_type=_T.BOOL,
                      parameters=[_T.Map(_T.STRING, _T.DYN), _T.Map(_T.STRING, _T.DYN)],
                      is_member=True, impl=_is_subtree_of),
    ]),
)
_EXTENSIONS: Final = (_ext_optional.ExtOptional(),)


def _new_env(variables: Mapping[str, object]) -> object:
    return _cel.NewEnv(_POOL, variables=dict(variables), functions=list(_FUNCTIONS),
                       extensions=list(_EXTENSIONS))


_PARSE_ENV: Final = _new_env({})
_SCALAR_CEL_TYPES: Final[Mapping[str, object]] = MappingProxyType({
    "any": _T.DYN,
    "bool": _T.BOOL,
    "bytes": _T.BYTES,
    "double": _T.DOUBLE,
    "duration": _T.DURATION,
    "int": _T.INT,
    "ipaddress": _IP_CEL_TYPE,
    "string": _T.STRING,
    "timestamp": _T.TIMESTAMP,
    "uint": _T.INT,  # as in SpiceDB: a uint parameter is an int to CEL
})


def _check_type(t: CelType) -> None:
    arity = KNOWN_TYPES.get(t.name)
    if arity is None:
        raise ValueError(f"unknown caveat parameter type `{t.name}`")
    if len(t.args) != arity:
        raise ValueError(f"type `{t.name}` takes {arity} type argument(s), found {len(t.args)}")
    for a in t.args:
        _check_type(a)


def _cel_type(t: CelType) -> object:
    if t.name == "list":
        return _T.List(_cel_type(t.args[0]))
    if t.name == "map":
        return _T.Map(_T.STRING, _cel_type(t.args[0]))
    return _SCALAR_CEL_TYPES[t.name]


# --------------------------------------------------------------------------- compile errors

_ERROR_LINE: Final = re.compile(r"ERROR: [^\n]*?:(-?\d+):(-?\d+): ([^\n]*)")
_STATUS_SUFFIX: Final = re.compile(r"\s*\[[A-Z_]+\]\s*$")
_STATUS_PREFIX: Final = re.compile(r"^[A-Z_]+: ")


def _cel_error_from(exc: Exception) -> CelError:
    """Turn a cel-cpp compile status (``ERROR: <input>:L:C: msg`` + snippet) into a ``CelError``."""
    text = str(exc)
    match = _ERROR_LINE.search(text)
    if match is None:
        return CelError(_STATUS_SUFFIX.sub("", _STATUS_PREFIX.sub("", text)).strip() or "invalid expression")
    line, column, message = int(match.group(1)), int(match.group(2)), match.group(3)
    return CelError(_STATUS_SUFFIX.sub("", message).strip(), max(line, 1), max(column, 1))


def _position(expression: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a code-point offset in ``expression``."""
    offset = max(0, min(offset, len(expression)))
    line = expression.count("\n", 0, offset) + 1
    return line, offset - (expression.rfind("\n", 0, offset) + 1) + 1


# --------------------------------------------------------------------------- AST (protobuf wire format)
#
# cel-expr-python exposes the parsed / checked AST only as a serialized
# ``google.protobuf.Any`` holding ``cel.expr.ParsedExpr`` / ``cel.expr.CheckedExpr``.
# The few fields needed here are decoded straight from the wire format.


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            yield number, buf[pos:pos + size]
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:  # pragma: no cover - groups never occur in cel.expr messages
            raise ValueError(f"unsupported protobuf wire type {wire}")


@dataclass(slots=True)
class _Expr:
    """The parts of a ``cel.expr.Expr`` node this module looks at."""

    id: int = 0
    kind: str = "const"   # const | ident | select | call | list | struct | comprehension
    name: str = ""         # ident name, selected field, function name, struct message name
    children: list[_Expr] | None = None   # operand / target+args / elements / entry keys+values
    iter_vars: tuple[str, ...] = ()
    accu_var: str = ""
    iter_range: _Expr | None = None
    accu_init: _Expr | None = None
    loop_condition: _Expr | None = None
    loop_step: _Expr | None = None
    result: _Expr | None = None


def _decode_expr(buf: bytes) -> _Expr:
    node = _Expr()
    for number, value in _fields(buf):
        if number == 2:
            node.id = value  # type: ignore[assignment]
        elif number == 4:  # ident_expr
            node.kind = "ident"
            for n, v in _fields(value):  # type: ignore[arg-type]
                if n == 1:
                    node.name = bytes(v).decode()  # type: ignore[arg-type]
        elif number == 5:  # select_expr
            node.kind, node.children = "select", []
            for n, v in _fields(value):  # type: ignore[arg-type]
                if n == 1:
                    node.children.append(_decode_expr(v))  # type: ignore[arg-type]
                elif n == 2:
                    node.name = bytes(v).decode()  # type: ignore[arg-type]
        elif number == 6:  # call_expr
            node.kind, node.children = "call", []
            for n, v in _fields(value):  # type: ignore[arg-type]
                if n in (1, 3):  # target, args
                    node.children.append(_decode_expr(v))  # type: ignore[arg-type]
                elif n == 2:
                    node.name = bytes(v).decode()  # type: ignore[arg-type]
        elif number == 7:  # list_expr
            node.kind = "list"
            node.children = [_decode_expr(v) for n, v in _fields(value) if n == 1]  # type: ignore[arg-type]
        elif number == 8:  # struct_expr
            node.kind, node.children = "struct", []
            for n, v in _fields(value):  # type: ignore[arg-type]
                if n == 1:
                    node.name = bytes(v).decode()  # type: ignore[arg-type]
                elif n == 2:  # entries
                    for en, ev in _fields(v):  # type: ignore[arg-type]
                        if en in (3, 4):  # map_key, value
                            node.children.append(_decode_expr(ev))  # type: ignore[arg-type]
        elif number == 9:  # comprehension_expr
            node.kind = "comprehension"
            iter_vars: list[str] = []
            for n, v in _fields(value):  # type: ignore[arg-type]
                if n in (1, 8):
                    iter_vars.append(bytes(v).decode())  # type: ignore[arg-type]
                elif n == 3:
                    node.accu_var = bytes(v).decode()  # type: ignore[arg-type]
                elif n == 2:
                    node.iter_range = _decode_expr(v)  # type: ignore[arg-type]
                elif n == 4:
                    node.accu_init = _decode_expr(v)  # type: ignore[arg-type]
                elif n == 5:
                    node.loop_condition = _decode_expr(v)  # type: ignore[arg-type]
                elif n == 6:
                    node.loop_step = _decode_expr(v)  # type: ignore[arg-type]
                elif n == 7:
                    node.result = _decode_expr(v)  # type: ignore[arg-type]
            node.iter_vars = tuple(iter_vars)
    return node


@dataclass(slots=True)
class _Ast:
    expr: _Expr
    positions: dict[int, int]          # expr id -> code-point offset
    message_types: dict[int, str]      # expr id -> message type name (checked ASTs only)


def _decode_ast(serialized: bytes) -> _Ast:
    payload = b""
    for number, value in _fields(serialized):  # google.protobuf.Any
        if number == 2:
            payload = bytes(value)  # type: ignore[arg-type]
    expr, positions, message_types = _Expr(), {}, {}
    # ParsedExpr: expr=2, source_info=3.  CheckedExpr: type_map=3, expr=4, source_info=5.
    checked = False
    fields = list(_fields(payload))
    if any(n == 4 for n, _ in fields):
        checked = True
    for number, value in fields:
        if number == (4 if checked else 2):
            expr = _decode_expr(value)  # type: ignore[arg-type]
        elif number == (5 if checked else 3):
            for n, v in _fields(value):  # type: ignore[arg-type]
                if n == 4:  # positions: map<int64, int32>
                    key = pos = 0
                    for en, ev in _fields(v):  # type: ignore[arg-type]
                        if en == 1:
                            key = ev  # type: ignore[assignment]
                        elif en == 2:
                            pos = ev  # type: ignore[assignment]
                    positions[key] = pos
        elif checked and number == 3:  # type_map: map<int64, Type>
            key, name = 0, ""
            for en, ev in _fields(value):  # type: ignore[arg-type]
                if en == 1:
                    key = ev  # type: ignore[assignment]
                elif en == 2:
                    for tn, tv in _fields(ev):  # type: ignore[arg-type]
                        if tn == 9:  # message_type
                            name = bytes(tv).decode()  # type: ignore[arg-type]
            if name:
                message_types[key] = name
    return _Ast(expr, positions, message_types)


# Identifiers that name CEL's built-in types; `type(x) == int` does not read a variable `int`.
_BUILTIN_TYPE_IDENTS: Final = frozenset({
    "bool", "bytes", "double", "dyn", "int", "list", "map", "null_type", "string", "type", "uint",
    "optional_type",
})


def _free_idents(node: _Expr | None, bound: frozenset[str], out: set[str]) -> None:
    """Collect identifiers read by ``node`` that are not bound by an enclosing comprehension."""
    while node is not None:
        kind = node.kind
        if kind == "ident":
            if node.name not in bound:
                out.add(node.name)
            return
        if kind == "comprehension":
            _free_idents(node.iter_range, bound, out)
            _free_idents(node.accu_init, bound, out)
            inner = bound | set(node.iter_vars) | {node.accu_var}
            _free_idents(node.loop_condition, inner, out)
            _free_idents(node.loop_step, inner, out)
            _free_idents(node.result, bound | {node.accu_var}, out)
            return
        children = node.children
        if not children:
            return
        for child in children[1:]:
            _free_idents(child, bound, out)
        node = children[0]


def _check_ipaddress_use(ast: _Ast, expression: str) -> None:
    """Reject what SpiceDB's opaque ``IPAddress`` does not have: fields and literal construction."""
    types = ast.message_types
    if not any(name == _IPADDRESS_MESSAGE for name in types.values()):
        return
    stack = [ast.expr]
    while stack:
        node = stack.pop()
        if node.kind == "select" and node.children and types.get(node.children[0].id) == _IPADDRESS_MESSAGE:
            line, column = _position(expression, ast.positions.get(node.id, 0))
            raise CelError(f"type '{_IPADDRESS_MESSAGE}' does not support field selection", line, column)
        if node.kind == "struct" and types.get(node.id) == _IPADDRESS_MESSAGE:
            line, column = _position(expression, ast.positions.get(node.id, 0))
            raise CelError(f"undeclared reference to '{node.name}'", line, column)
        stack.extend(c for c in (node.children or ()) if c is not None)
        stack.extend(c for c in (node.iter_range, node.accu_init, node.loop_condition, node.loop_step,
                                 node.result) if c is not None)


def referenced_names(expression: str, declared: Iterable[str] = ()) -> frozenset[str]:
    """Top-level identifiers the expression reads (not macro loop variables, not field selections).

    Built-in type names used as values (``int`` in ``type(x) == int``) are not
    counted, unless ``declared`` (the caveat's parameters) declares one as a
    variable (a parameter named ``map`` is read by ``map > 1``).  Raises
    ``CelError`` on a syntax error.
    """
    try:
        parsed = _PARSE_ENV.compile(expression, disable_check=True)
    except Exception as exc:  # cel-expr-python reports every compile problem as RuntimeError
        raise _cel_error_from(exc) from None
    out: set[str] = set()
    _free_idents(_decode_ast(parsed.serialize()).expr, frozenset(), out)
    return frozenset(out - (_BUILTIN_TYPE_IDENTS - frozenset(declared)))


# --------------------------------------------------------------------------- context conversion


class _ConversionError(Exception):
    """A context value that cannot become the declared type (message = detail)."""


_Converter = Callable[[object], object]
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_NUMERIC_STRING: Final = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INF_STRING: Final = re.compile(r"[+-]?[Ii]nf")


def _describe(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} `{text if len(text) <= 60 else text[:57] + '...'}`"


def _decimal_from(value: object, wanted: str) -> Decimal:
    """A JSON number (or numeric string, as SpiceDB accepts) as an exact Decimal."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _ConversionError(f"a {wanted} value is required, but found {_describe(value)}")
    if isinstance(value, str):
        if _INF_STRING.fullmatch(value):
            return Decimal("-Infinity" if value.startswith("-") else "Infinity")
        if not _NUMERIC_STRING.fullmatch(value):
            raise _ConversionError(f"a {wanted} value is required, but found invalid string value `{value}`")
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
            raise _ConversionError(f"a {wanted} value is required, but found invalid string value `{value}`")
    return Decimal(value)  # exact for int and float (also inf / nan)


def _integral(value: object, wanted: str, low: int) -> int:
    if type(value) is int:
        number = value
    else:
        dec = _decimal_from(value, wanted)
        if not dec.is_finite() or dec != dec.to_integral_value() or dec.adjusted() > 20:
            if dec.is_finite() and dec == dec.to_integral_value():
                raise _ConversionError(f"{value} is out of range for a {wanted}")
            raise _ConversionError(f"a {wanted} value is required, but found numeric value `{value}`")
        number = int(dec)
    if number < low:
        raise _ConversionError(f"a {wanted} value is required, but found negative value `{number}`")
    if number > _INT64_MAX or number < _INT64_MIN:
        raise _ConversionError(f"{number} is out of range for a {wanted} (64-bit signed)")
    return number


def _to_int(value: object) -> int:
    if type(value) is int and _INT64_MIN <= value <= _INT64_MAX:
        return value
    return _integral(value, "int", _INT64_MIN)


def _to_uint(value: object) -> int:
    if type(value) is int and 0 <= value <= _INT64_MAX:
        return value
    return _integral(value, "uint", 0)


def _to_double(value: object) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            return math.copysign(math.inf, value)
    dec = _decimal_from(value, "double")
    try:
        return float(dec)
    except OverflowError:  # pragma: no cover - Decimal -> float saturates to inf
        return math.copysign(math.inf, dec)


def _to_bool(value: object) -> bool:
    if type(value) is bool:
        return value
    raise _ConversionError(f"a bool value is required, but found {_describe(value)}")


def _to_string(value: object) -> str:
    if isinstance(value, str):
        return value
    raise _ConversionError(f"a string value is required, but found {_describe(value)}")


def _to_bytes(value: object) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if not isinstance(value, str):
        raise _ConversionError(f"bytes requires a base64 string, found {_describe(value)}")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise _ConversionError(f"bytes requires a base64 encoded string, found `{value}`") from None


# Go's time.ParseDuration, unit by unit.
_DURATION_UNITS: Final[Mapping[str, int]] = MappingProxyType({
    "ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
    "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
})
_NANOS: Final = 1_000_000_000


def _parse_go_duration(text: str) -> int:
    """Nanoseconds for a Go duration string ("1h30m", "1.5h", "-10s", "0"); mirrors time.ParseDuration."""
    invalid = _ConversionError(f"could not parse duration string `{text}`")
    s = text
    negative = False
    if s[:1] in ("-", "+"):
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise invalid
    total = 0
    limit = 1 << 63
    while s:
        i = 0
        while i < len(s) and s[i].isascii() and s[i].isdigit():
            i += 1
        int_digits, s = s[:i], s[i:]
        whole = int(int_digits) if int_digits else 0
        if whole > limit:
            raise invalid
        frac, scale, frac_digits = 0, 1.0, False
        if s[:1] == ".":
            s = s[1:]
            i = 0
            overflow = False
            while i < len(s) and s[i].isascii() and s[i].isdigit():
                frac_digits = True
                if not overflow:
                    if frac > (limit - 1) // 10:
                        overflow = True
                    else:
                        frac = frac * 10 + int(s[i])
                        scale *= 10
                i += 1
            s = s[i:]
        if not int_digits and not frac_digits:
            raise invalid
        i = 0
        while i < len(s) and s[i] != "." and not (s[i].isascii() and s[i].isdigit()):
            i += 1
        unit_name, s = s[:i], s[i:]
        unit = _DURATION_UNITS.get(unit_name)
        if unit is None:
            raise _ConversionError(f"could not parse duration string `{text}`: "
                                   + (f"unknown unit `{unit_name}`" if unit_name else "missing unit"))
        if whole > limit // unit:
            raise invalid
        value = whole * unit
        if frac:
            value += int(float(frac) * (float(unit) / scale))
            if value > limit:
                raise invalid
        total += value
        if total > limit:
            raise invalid
    if negative:
        return -total
    if total > limit - 1:
        raise invalid
    return total


def _duration_message(nanos: int) -> duration_pb2.Duration:
    sign = -1 if nanos < 0 else 1
    seconds, rest = divmod(abs(nanos), _NANOS)
    return duration_pb2.Duration(seconds=sign * seconds, nanos=sign * rest)


def _to_duration(value: object) -> duration_pb2.Duration:
    if isinstance(value, str):
        return _duration_message(_parse_go_duration(value))
    if isinstance(value, _dt.timedelta):
        return _duration_message((value.days * 86_400 + value.seconds) * _NANOS + value.microseconds * 1_000)
    raise _ConversionError(f"a duration string is required, found {_describe(value)}")


_RFC3339: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:(Z)|([+-])([0-9]{2}):([0-9]{2}))")
_EPOCH: Final = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _timestamp_message(moment: _dt.datetime, nanos: int) -> timestamp_pb2.Timestamp:
    delta = moment - _EPOCH
    return timestamp_pb2.Timestamp(seconds=delta.days * 86_400 + delta.seconds, nanos=nanos)


def _to_timestamp(value: object) -> timestamp_pb2.Timestamp:
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _ConversionError("a timestamp needs a time zone; found a naive datetime")
        return _timestamp_message(value.replace(microsecond=0), value.microsecond * 1_000)
    if not isinstance(value, str):
        raise _ConversionError(f"a RFC 3339 timestamp string is required, found {_describe(value)}")
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise _ConversionError(f"could not parse RFC 3339 timestamp string `{value}`")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        if zulu:
            tz = _dt.timezone.utc
        else:
            offset = _dt.timedelta(hours=int(off_h), minutes=int(off_m))
            if int(off_m) > 59:
                raise ValueError("offset minutes out of range")
            tz = _dt.timezone(-offset if sign == "-" else offset)
        moment = _dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz)
    except ValueError as exc:
        raise _ConversionError(f"could not parse RFC 3339 timestamp string `{value}`: {exc}") from None
    nanos = int((fraction or "0")[:9].ljust(9, "0"))
    return _timestamp_message(moment, nanos)


def _to_ipaddress(value: object) -> object:
    if isinstance(value, (_ip.IPv4Address, _ip.IPv6Address)):
        return _IPAddressMessage(address=str(value))
    if not isinstance(value, str):
        raise _ConversionError(f"ipaddress requires an ipaddress string, found {_describe(value)}")
    try:
        return _IPAddressMessage(address=str(_ip.ip_address(value)))
    except ValueError:
        raise _ConversionError(f"could not parse ip address string `{value}`") from None


def _to_any(value: object) -> object:
    """``any``: JSON values as SpiceDB sees them (every JSON number is a double)."""
    if value is None or type(value) is str or type(value) is float:
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise _ConversionError(f"number {value} is too large for a double") from None
    if isinstance(value, (str, float)):  # subclasses such as enum.StrEnum
        return str(value) if isinstance(value, str) else float(value)
    if isinstance(value, (list, tuple)):
        return [_to_any(v) for v in value]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _ConversionError(f"map keys must be strings, found {_describe(k)}")
            out[k] = _to_any(v)
        return out
    raise _ConversionError(f"a JSON value is required, found {_describe(value)}")


def _list_converter(item: _Converter) -> _Converter:
    def convert(value: object) -> list[object]:
        if not isinstance(value, (list, tuple)):
            raise _ConversionError(f"list requires a list, found {_describe(value)}")
        out = []
        for index, element in enumerate(value):
            try:
                out.append(item(element))
            except _ConversionError as exc:
                raise _ConversionError(f"found an invalid value for item at index {index}: {exc}") from None
        return out
    return convert


def _map_converter(item: _Converter) -> _Converter:
    def convert(value: object) -> dict[str, object]:
        if not isinstance(value, Mapping):
            raise _ConversionError(f"map requires a map, found {_describe(value)}")
        out = {}
        for key, element in value.items():
            if not isinstance(key, str):
                raise _ConversionError(f"map keys must be strings, found {_describe(key)}")
            try:
                out[key] = item(element)
            except _ConversionError as exc:
                raise _ConversionError(f"found an invalid value for key `{key}`: {exc}") from None
        return out
    return convert


_SCALAR_CONVERTERS: Final[Mapping[str, _Converter]] = MappingProxyType({
    "any": _to_any,
    "bool": _to_bool,
    "bytes": _to_bytes,
    "double": _to_double,
    "duration": _to_duration,
    "int": _to_int,
    "ipaddress": _to_ipaddress,
    "string": _to_string,
    "timestamp": _to_timestamp,
    "uint": _to_uint,
})


def _converter(t: CelType) -> _Converter:
    if t.name == "list":
        return _list_converter(_converter(t.args[0]))
    if t.name == "map":
        return _map_converter(_converter(t.args[0]))
    return _SCALAR_CONVERTERS[t.name]


# --------------------------------------------------------------------------- compile / evaluate

_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MISSING: Final = object()


class CompiledCaveat:
    """A type-checked caveat expression, compiled once and evaluated many times.

    Attributes: ``name``, ``params`` (read-only mapping of parameter name to
    ``CelType``), ``expression`` (the source text) and ``referenced`` (the
    parameters the expression reads).  Build it with ``compile_caveat``.
    """

    __slots__ = ("name", "params", "expression", "referenced", "_program", "_converters", "_referenced_sorted")

    name: str
    params: Mapping[str, CelType]
    expression: str
    referenced: frozenset[str]

    def __init__(self, name: str, params: Mapping[str, CelType], expression: str, program: object,
                 referenced: frozenset[str]) -> None:
        self.name = name
        self.params = MappingProxyType(dict(params))
        self.expression = expression
        self.referenced = referenced
        self._program = program
        self._converters = tuple((p, t, _converter(t)) for p, t in self.params.items())
        self._referenced_sorted = tuple(sorted(referenced))

    def __repr__(self) -> str:
        params = ", ".join(f"{p} {t}" for p, t in self.params.items())
        return f"CompiledCaveat({self.name}({params}) {{ {self.expression.strip()} }})"

    def check_context(self, context: Mapping[str, object]) -> None:
        """Refuse context that names an unknown parameter or holds a value of the wrong type (as SpiceDB
        does when a relationship stores caveat context); raises ``CaveatContextError``."""
        for key in context:
            if key not in self.params:
                err = CaveatContextError(self.name, str(key), CelType("any"), "")
                err.message = f"caveat `{self.name}` has no parameter `{key}`"
                err.args = (err.message,)
                raise err
        for param, cel_type, convert in self._converters:
            if param in context:
                try:
                    convert(context[param])
                except _ConversionError as exc:
                    raise CaveatContextError(self.name, param, cel_type, str(exc)) from None

    def evaluate(self, context: Mapping[str, object]) -> CaveatResult:
        """Evaluate against JSON-like ``context``: true, false, or conditional with the missing parameters.

        Raises ``CaveatContextError`` when a value does not fit its parameter's
        type and ``CaveatEvaluationError`` on a runtime error with every
        referenced parameter present.
        """
        data: dict[str, object] = {}
        for param, cel_type, convert in self._converters:
            value = context.get(param, _MISSING)
            if value is _MISSING:
                continue
            try:
                data[param] = convert(value)
            except _ConversionError as exc:
                raise CaveatContextError(self.name, param, cel_type, str(exc)) from None
        try:
            result = self._program.eval(data=data)  # type: ignore[attr-defined]
        except Exception as exc:  # a value the CEL runtime refused to take in
            raise CaveatEvaluationError(self.name, str(exc)) from None
        value = result.value()
        if value is True:
            return _TRUE
        if value is False:
            return _FALSE
        missing = tuple(p for p in self._referenced_sorted if p not in data)
        if missing:
            # cel-go's partial evaluation turns absent parameters into "unknown", which
            # wins over errors in `&&`/`||`; here they surface as errors that `&&`/`||`
            # absorbed when the outcome did not depend on them.
            return CaveatResult(None, missing)
        raise CaveatEvaluationError(self.name, _STATUS_PREFIX.sub("", str(value)))


def compile_caveat(name: str, params: Mapping[str, CelType], expression: str) -> CompiledCaveat:
    """Parse and type-check ``expression`` against the declared parameters; the result must be bool.

    Raises ``CelError`` (line and column relative to ``expression``) on syntax
    errors, unknown identifiers and type errors, and ``ValueError`` for an
    unknown parameter type or an invalid parameter name.
    """
    variables = {}
    for param, cel_type in params.items():
        if not _IDENTIFIER.fullmatch(param):
            raise ValueError(f"invalid caveat parameter name `{param}`")
        _check_type(cel_type)
        variables[param] = _cel_type(cel_type)
    env = _new_env(variables)
    try:
        program = env.compile(expression)  # type: ignore[attr-defined]
    except Exception as exc:  # cel-expr-python reports every compile problem as RuntimeError
        raise _cel_error_from(exc) from None
    if program.return_type() != _T.BOOL:
        found = program.return_type().name().lower()
        raise CelError(f"caveat expression must result in a boolean value: found `{found}`", 1, 1)
    ast = _decode_ast(program.serialize())
    _check_ipaddress_use(ast, expression)
    used: set[str] = set()
    _free_idents(ast.expr, frozenset(), used)
    return CompiledCaveat(name, params, expression, program, frozenset(used & set(params)))
