"""Consistency options and the opaque revision tokens every answer carries.

A token names the store revision an answer was computed at. Clients pass it
back to ask for answers at least as fresh (``at_least_as_fresh``) or at exactly
that snapshot (``at_exact_snapshot``). Tokens are opaque: ``hw1_`` followed by
the base32 of the revision and a checksum, so a mistyped token is refused rather
than silently read as another revision.

Example::

    >>> t = encode_token(42)
    >>> decode_token(t)
    42
"""

from __future__ import annotations

import base64
import enum
import functools
import hashlib
import json
from dataclasses import dataclass

from .errors import InvalidRequestError

__all__ = ["Consistency", "ConsistencyMode", "decode_cursor", "decode_token", "encode_cursor", "encode_token"]

_PREFIX = "hw1_"


@functools.lru_cache(maxsize=4096)
@functools.lru_cache(maxsize=4096)  # every answer carries one; the same few revisions are asked about
def encode_token(revision: int) -> str:
    """The opaque token for ``revision``."""
    body = str(revision).encode()
    check = hashlib.sha256(b"headwater-token:" + body).digest()[:4]
    return _PREFIX + base64.b32encode(body + b"." + check).decode().rstrip("=").lower()


def decode_token(token: str) -> int:
    """The revision named by ``token``; InvalidRequestError if it is not one of ours."""
    if not isinstance(token, str) or not token.startswith(_PREFIX) or len(token) > 64:
        raise InvalidRequestError(f"malformed consistency token {token!r}")
    raw = token[len(_PREFIX):].upper()
    try:
        data = base64.b32decode(raw + "=" * (-len(raw) % 8))
        body, check = data[:-5], data[-4:]
        if data[-5:-4] != b"." or hashlib.sha256(b"headwater-token:" + body).digest()[:4] != check:
            raise ValueError("checksum")
        revision = int(body.decode())
    except ValueError as exc:
        raise InvalidRequestError(f"malformed consistency token {token!r}") from exc
    if revision < 0:
        raise InvalidRequestError(f"malformed consistency token {token!r}")
    return revision


class ConsistencyMode(enum.Enum):
    """How fresh a read must be (the SpiceDB options)."""

    MINIMIZE_LATENCY = "minimize_latency"
    AT_LEAST_AS_FRESH = "at_least_as_fresh"
    AT_EXACT_SNAPSHOT = "at_exact_snapshot"
    FULLY_CONSISTENT = "fully_consistent"


@dataclass(frozen=True, slots=True)
class Consistency:
    """A consistency requirement; build one with the class methods."""

    mode: ConsistencyMode = ConsistencyMode.MINIMIZE_LATENCY
    token: str | None = None

    @classmethod
    def minimize_latency(cls) -> Consistency:
        """Any recent snapshot (Headwater reads the newest; caches make that cheap)."""
        return cls(ConsistencyMode.MINIMIZE_LATENCY)

    @classmethod
    def fully_consistent(cls) -> Consistency:
        """The newest snapshot."""
        return cls(ConsistencyMode.FULLY_CONSISTENT)

    @classmethod
    def at_least_as_fresh(cls, token: str) -> Consistency:
        """A snapshot no older than the one ``token`` names."""
        decode_token(token)
        return cls(ConsistencyMode.AT_LEAST_AS_FRESH, token)

    @classmethod
    def at_exact_snapshot(cls, token: str) -> Consistency:
        """Exactly the snapshot ``token`` names (an error once it is garbage-collected)."""
        decode_token(token)
        return cls(ConsistencyMode.AT_EXACT_SNAPSHOT, token)


_CURSOR_PREFIX = "hwc1_"


def encode_cursor(revision: int, after: str, query: str) -> str:
    """An opaque continuation cursor: the revision of the listing, the last item, and which query it belongs to."""
    body = json.dumps([revision, after, hashlib.sha256(query.encode()).hexdigest()[:16]],
                      separators=(",", ":")).encode()
    check = hashlib.sha256(b"headwater-cursor:" + body).digest()[:4]
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(body + check).decode().rstrip("=")


def decode_cursor(cursor: str, query: str) -> tuple[int, str]:
    """(revision, after) from a cursor of ``query``; InvalidRequestError if it is malformed or for another query."""
    if not isinstance(cursor, str) or not cursor.startswith(_CURSOR_PREFIX) or len(cursor) > 4096:
        raise InvalidRequestError("malformed cursor")
    raw = cursor[len(_CURSOR_PREFIX):]
    try:
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        body, check = data[:-4], data[-4:]
        if hashlib.sha256(b"headwater-cursor:" + body).digest()[:4] != check:
            raise ValueError("checksum")
        revision, after, fingerprint = json.loads(body)
        if not isinstance(revision, int) or not isinstance(after, str):
            raise ValueError("shape")
    except (ValueError, TypeError) as exc:
        raise InvalidRequestError("malformed cursor") from exc
    if fingerprint != hashlib.sha256(query.encode()).hexdigest()[:16]:
        raise InvalidRequestError("this cursor belongs to a different query; pass the same parameters as the "
                                  "call that returned it")
    return revision, after
