"""The CEL environment SpiceDB's caveats see: parameter types, the ``ipaddress`` type, extra functions.

``CelType`` is a declared caveat parameter type; ``declared_type`` maps it to the
type CEL checks against (``uint`` is declared to CEL as ``int``, ``map<T>`` as
``map(string, T)``, ``ipaddress`` as the object type ``IPAddress`` with the member
``in_cidr(string) -> bool``). Every environment also has SpiceDB's
``map.isSubtreeOf(map) -> bool`` and optional syntax such as ``m[?k]``.
``cel_error_from`` reads the library's compile status into a ``CelError``.

Example::

    >>> str(CelType("list", (CelType("int"),)))
    'list<int>'
    >>> KNOWN_TYPES["map"]
    1
"""

from __future__ import annotations

import ipaddress as _ip
import re
from collections.abc import Mapping
from dataclasses import dataclass
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

from ..errors import CelError

__all__ = [
    "CelType",
    "IPADDRESS_MESSAGE",
    "IPAddressMessage",
    "KNOWN_TYPES",
    "PARSE_ENV",
    "cel_error_from",
    "validate_type",
    "declared_type",
    "new_env",
    "strip_status_code",
]

# --------------------------------------------------------------------------- parameter types


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

# --------------------------------------------------------------------------- the environment

IPADDRESS_MESSAGE: Final = "IPAddress"  # the CEL type name SpiceDB uses for `ipaddress`


def _make_pool() -> descriptor_pool.DescriptorPool:
    """A private descriptor pool: the well-known types plus the ``IPAddress`` message."""
    pool = descriptor_pool.DescriptorPool()
    for module in (any_pb2, duration_pb2, empty_pb2, field_mask_pb2, struct_pb2, timestamp_pb2, wrappers_pb2):
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    fdp = descriptor_pb2.FileDescriptorProto(name="headwater/dsl/cel_ipaddress.proto", syntax="proto3")
    msg = fdp.message_type.add(name=IPADDRESS_MESSAGE)
    msg.field.add(name="address", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool.Add(fdp)
    return pool


_POOL: Final = _make_pool()
IPAddressMessage: Final = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(IPADDRESS_MESSAGE))
_IP_CEL_TYPE: Final = _cel.Type(IPADDRESS_MESSAGE)
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


def new_env(variables: Mapping[str, object]) -> object:
    """A CEL environment declaring ``variables`` (name to CEL type), SpiceDB's functions and optional syntax."""
    return _cel.NewEnv(_POOL, variables=dict(variables), functions=list(_FUNCTIONS),
                       extensions=list(_EXTENSIONS))


PARSE_ENV: Final = new_env({})
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


def validate_type(t: CelType) -> None:
    """Raise ``ValueError`` unless ``t`` names a known type with the right number of type arguments."""
    arity = KNOWN_TYPES.get(t.name)
    if arity is None:
        raise ValueError(f"unknown caveat parameter type `{t.name}`")
    if len(t.args) != arity:
        raise ValueError(f"type `{t.name}` takes {arity} type argument(s), found {len(t.args)}")
    for a in t.args:
        validate_type(a)


def declared_type(t: CelType) -> object:
    """The CEL type a parameter of type ``t`` is declared as (``uint`` is an ``int`` to CEL, as in SpiceDB)."""
    if t.name == "list":
        return _T.List(declared_type(t.args[0]))
    if t.name == "map":
        return _T.Map(_T.STRING, declared_type(t.args[0]))
    return _SCALAR_CEL_TYPES[t.name]


# --------------------------------------------------------------------------- the library's status messages

_ERROR_LINE: Final = re.compile(r"ERROR: [^\n]*?:(-?\d+):(-?\d+): ([^\n]*)")
_STATUS_SUFFIX: Final = re.compile(r"\s*\[[A-Z_]+\]\s*$")
_STATUS_PREFIX: Final = re.compile(r"^[A-Z_]+: ")


def cel_error_from(exc: Exception) -> CelError:
    """Turn a cel-cpp compile status (``ERROR: <input>:L:C: msg`` + snippet) into a ``CelError``."""
    text = str(exc)
    match = _ERROR_LINE.search(text)
    if match is None:
        return CelError(_STATUS_SUFFIX.sub("", _STATUS_PREFIX.sub("", text)).strip() or "invalid expression")
    line, column, message = int(match.group(1)), int(match.group(2)), match.group(3)
    if not (0 < line < 2**31 and 0 <= column < 2**31):
        # No position: cel-cpp prints -1 as 4294967295 (e.g. "Exceeded max recursion depth"); the start, then.
        line, column = 1, 1
    return CelError(_STATUS_SUFFIX.sub("", message).strip(), line, max(column, 1))



def strip_status_code(text: str) -> str:
    """A library status message without its leading status code (``INVALID_ARGUMENT: ``)."""
    return _STATUS_PREFIX.sub("", text)
