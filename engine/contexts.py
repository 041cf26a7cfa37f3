"""Caveat contexts: what a context may hold, and its canonical JSON text.

A caveat context travels on a relationship (``[caveat:{...}]``, kept as canonical
JSON so equal contexts hash equal) and with a check, a lookup, an expand or a
replay. Either way it must be something a caveat can read and the store can keep:
JSON objects and lists at most :data:`MAX_CONTEXT_NESTING` levels deep, string
keys, valid Unicode text and finite numbers. Anything else is refused with an
error naming what is wrong (never a ``RecursionError`` or a ``UnicodeEncodeError``
from deeper down: the fuzzers in ``tests/fuzz`` hold it so).

Example::

    >>> canonical_context({"b": 1, "a": [True]})
    '{"a":[true],"b":1}'
    >>> context_problem({"x": [[[[1]]]]}) is None, context_problem({1: 2})
    (True, 'its key 1 is not a string')
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .errors import InvalidRelationshipError, InvalidRequestError

__all__ = ["MAX_CONTEXT_NESTING", "canonical_context", "context_problem", "loads_context", "reject_constant",
           "validate_context"]


def reject_constant(name: str) -> None:
    """``parse_constant`` for ``json``: NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not allowed in JSON")


#: How deeply a caveat context (on a relationship or sent with a check) may nest lists and objects. gRPC's
#: ``Struct`` stops at 100 levels; a caveat's parameters are at most a few levels deep.
MAX_CONTEXT_NESTING = 32


def context_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a caveat context (None if it can): nested too deeply, a key that is not a
    string, or text that is not valid Unicode (a lone surrogate, which cannot be stored or sent). Iterative,
    so any depth of input is safe."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "it holds text that is not valid Unicode (a lone surrogate)"
        elif isinstance(item, (dict, list, tuple)):
            if depth >= MAX_CONTEXT_NESTING:
                return f"it nests lists and objects more than {MAX_CONTEXT_NESTING} levels deep"
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        return f"its key {key!r} is not a string"
                    stack.append((key, depth + 1))
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
    return None


def validate_context(context: Mapping[str, Any] | None, what: str = "check context") -> None:
    """Refuse a context sent with a check, a lookup, an expand or a replay that no caveat could read
    (:func:`context_problem`), with an InvalidRequestError naming ``what``."""
    problem = context_problem(context) if context else None
    if problem is not None:
        raise InvalidRequestError(f"invalid {what}: {problem}")


def loads_context(text: str, decode: Any, where: str) -> Any:
    """``decode(text)`` (a JSON decoder call), every failure an InvalidRelationshipError naming ``where``."""
    try:
        return decode(text)
    except RecursionError:
        raise InvalidRelationshipError(f"invalid caveat context in {where}: nested too deeply") from None
    except ValueError as exc:
        raise InvalidRelationshipError(f"invalid caveat context in {where}: not valid JSON ({exc.args[0]})") from None


def canonical_context(value: dict[str, Any], where: str = "the relationship") -> str:
    problem = context_problem(value)
    if problem is not None:
        raise InvalidRelationshipError(f"invalid caveat context in {where}: {problem}")
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as exc:  # a number out of range (1e999 reads as inf), NaN
        raise InvalidRelationshipError(f"invalid caveat context in {where}: {exc}") from None
