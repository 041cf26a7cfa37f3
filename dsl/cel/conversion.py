"""Converting JSON-like caveat context values to the declared parameter types, as SpiceDB does.

SpiceDB receives context as a ``google.protobuf.Struct``, so every JSON number is
a double; it accepts numeric strings for numbers, Go duration strings
(``"1h30m"``) for durations, RFC 3339 strings for timestamps and address strings
for ``ipaddress``. ``converter_for`` builds the converter of one declared type;
a value that does not fit raises ``ConversionError`` with the detail.

Example::

    >>> converter_for(CelType("list", (CelType("uint"),)))([1, "2", 3.0])
    [1, 2, 3]
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import ipaddress as _ip
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Final

from google.protobuf import duration_pb2, timestamp_pb2

from ..errors import DslError
from .environment import CelType, IPAddressMessage

__all__ = ["ConversionError", "Converter", "converter_for"]


class ConversionError(DslError):
    """A context value that cannot become the declared type (message = detail)."""


Converter = Callable[[object], object]
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
        raise ConversionError(f"a {wanted} value is required, but found {_describe(value)}")
    if isinstance(value, str):
        if _INF_STRING.fullmatch(value):
            return Decimal("-Infinity" if value.startswith("-") else "Infinity")
        if not _NUMERIC_STRING.fullmatch(value):
            raise ConversionError(f"a {wanted} value is required, but found invalid string value `{value}`")
        try:
            return Decimal(value)
        except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
            raise ConversionError(f"a {wanted} value is required, but found invalid string value `{value}`")
    return Decimal(value)  # exact for int and float (also inf / nan)


def _integral(value: object, wanted: str, low: int) -> int:
    if type(value) is int:
        number = value
    else:
        dec = _decimal_from(value, wanted)
        if not dec.is_finite() or dec != dec.to_integral_value() or dec.adjusted() > 20:
            if dec.is_finite() and dec == dec.to_integral_value():
                raise ConversionError(f"{value} is out of range for a {wanted}")
            raise ConversionError(f"a {wanted} value is required, but found numeric value `{value}`")
        number = int(dec)
    if number < low:
        raise ConversionError(f"a {wanted} value is required, but found negative value `{number}`")
    if number > _INT64_MAX or number < _INT64_MIN:
        raise ConversionError(f"{number} is out of range for a {wanted} (64-bit signed)")
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
    raise ConversionError(f"a bool value is required, but found {_describe(value)}")


def _to_string(value: object) -> str:
    if isinstance(value, str):
        return value
    raise ConversionError(f"a string value is required, but found {_describe(value)}")


def _to_bytes(value: object) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if not isinstance(value, str):
        raise ConversionError(f"bytes requires a base64 string, found {_describe(value)}")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ConversionError(f"bytes requires a base64 encoded string, found `{value}`") from None


# Go's time.ParseDuration, unit by unit.
_DURATION_UNITS: Final[Mapping[str, int]] = MappingProxyType({
    "ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000,
    "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
})
_NANOS: Final = 1_000_000_000


def _parse_go_duration(text: str) -> int:
    """Nanoseconds for a Go duration string ("1h30m", "1.5h", "-10s", "0"); mirrors time.ParseDuration."""
    invalid = ConversionError(f"could not parse duration string `{text}`")
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
            raise ConversionError(f"could not parse duration string `{text}`: "
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
    raise ConversionError(f"a duration string is required, found {_describe(value)}")


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
            raise ConversionError("a timestamp needs a time zone; found a naive datetime")
        return _timestamp_message(value.replace(microsecond=0), value.microsecond * 1_000)
    if not isinstance(value, str):
        raise ConversionError(f"a RFC 3339 timestamp string is required, found {_describe(value)}")
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise ConversionError(f"could not parse RFC 3339 timestamp string `{value}`")
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
        raise ConversionError(f"could not parse RFC 3339 timestamp string `{value}`: {exc}") from None
    nanos = int((fraction or "0")[:9].ljust(9, "0"))
    return _timestamp_message(moment, nanos)


def _to_ipaddress(value: object) -> object:
    if isinstance(value, (_ip.IPv4Address, _ip.IPv6Address)):
        return IPAddressMessage(address=str(value))
    if not isinstance(value, str):
        raise ConversionError(f"ipaddress requires an ipaddress string, found {_describe(value)}")
    try:
        return IPAddressMessage(address=str(_ip.ip_address(value)))
    except ValueError:
        raise ConversionError(f"could not parse ip address string `{value}`") from None


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
            raise ConversionError(f"number {value} is too large for a double") from None
    if isinstance(value, (str, float)):  # subclasses such as enum.StrEnum
        return str(value) if isinstance(value, str) else float(value)
    if isinstance(value, (list, tuple)):
        return [_to_any(v) for v in value]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ConversionError(f"map keys must be strings, found {_describe(k)}")
            out[k] = _to_any(v)
        return out
    raise ConversionError(f"a JSON value is required, found {_describe(value)}")


def _list_converter(item: Converter) -> Converter:
    def convert(value: object) -> list[object]:
        if not isinstance(value, (list, tuple)):
            raise ConversionError(f"list requires a list, found {_describe(value)}")
        out = []
        for index, element in enumerate(value):
            try:
                out.append(item(element))
            except ConversionError as exc:
                raise ConversionError(f"found an invalid value for item at index {index}: {exc}") from None
        return out
    return convert


def _map_converter(item: Converter) -> Converter:
    def convert(value: object) -> dict[str, object]:
        if not isinstance(value, Mapping):
            raise ConversionError(f"map requires a map, found {_describe(value)}")
        out = {}
        for key, element in value.items():
            if not isinstance(key, str):
                raise ConversionError(f"map keys must be strings, found {_describe(key)}")
            try:
                out[key] = item(element)
            except ConversionError as exc:
                raise ConversionError(f"found an invalid value for key `{key}`: {exc}") from None
        return out
    return convert


_SCALAR_CONVERTERS: Final[Mapping[str, Converter]] = MappingProxyType({
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


def converter_for(t: CelType) -> Converter:
    """The function that converts a context value to parameter type ``t`` (or raises ``ConversionError``)."""
    if t.name == "list":
        return _list_converter(converter_for(t.args[0]))
    if t.name == "map":
        return _map_converter(converter_for(t.args[0]))
    return _SCALAR_CONVERTERS[t.name]

