"""Bearer-token authentication and scopes.

The server reads its tokens from a TOML file; each has a name (what the logs show),
scopes, and either the token itself or its SHA-256::

    [[tokens]]
    name = "inference-gateway"
    scopes = ["check"]
    token = "hw_live_2f0c..."          # or: sha256 = "<hex digest of the token>"

    [[tokens]]
    name = "policy-ci"
    scopes = ["check", "write", "schema", "audit"]
    sha256 = "9b74c9897bac770ffc029102a200c5de..."

Scopes: ``check`` (the read APIs: checks, lookups, expand, reading relationships and
the schema, lineage), ``write`` (writing, deleting and importing relationships, recording a derivation),
``schema`` (writing the schema), ``audit`` (the change history and the audit trail:
Watch, schema History, and every AuditService RPC). A client sends ``authorization: Bearer <token>``. No token or an unknown
one is UNAUTHENTICATED; a known token without the method's scope is
PERMISSION_DENIED. The presented token is hashed and compared with every known
digest using :func:`hmac.compare_digest` (no early exit), and is never logged or
put in an error message.

Example::

    >>> tokens = TokenSet([TokenEntry.from_secret("ci", "s3cret-s3cret-s3cret", frozenset({"check"}))])
    >>> tokens.authorize("/headwater.v1.PermissionService/Check", [("authorization", "Bearer s3cret-s3cret-s3cret")])
    'ci'
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..config import read_toml
from ..errors import TokenFileError
from .errors import PermissionDeniedError, UnauthenticatedError

__all__ = ["METHOD_SCOPES", "SCOPES", "TokenEntry", "TokenFileError", "TokenSet", "load_token_file", "require_scope"]

SCOPES = frozenset({"check", "write", "schema", "audit"})

_P, _R, _S, _L, _A = ("/headwater.v1.PermissionService/", "/headwater.v1.RelationshipService/",
                      "/headwater.v1.SchemaService/", "/headwater.v1.LineageService/", "/headwater.v1.AuditService/")

#: The scope each RPC needs (full gRPC method name -> scope). Health and reflection need none.
METHOD_SCOPES: Mapping[str, str] = {
    _P + "Check": "check", _P + "CheckBulk": "check", _P + "Expand": "check",
    _P + "LookupResources": "check", _P + "LookupSubjects": "check",
    _R + "Write": "write", _R + "Delete": "write", _R + "Import": "write",
    _R + "Read": "check", _R + "Export": "check", _R + "Watch": "audit",
    _S + "Write": "schema", _S + "Read": "check", _S + "History": "audit",
    _L + "EffectiveLabels": "check", _L + "Ancestors": "check", _L + "Descendants": "check",
    _L + "Derive": "write",  # a write first; its labels and decisions are about the object it writes
    _A + "Query": "audit", _A + "Export": "audit", _A + "Verify": "audit", _A + "Replay": "audit",
    "/headwater.v1.GovernanceService/Monitor": "audit", "/headwater.v1.GovernanceService/Impact": "audit",
}

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class TokenEntry:
    """One configured token: a name, its scopes and the SHA-256 digest of the secret."""

    name: str
    scopes: frozenset[str]
    digest: bytes

    @classmethod
    def from_secret(cls, name: str, secret: str, scopes: frozenset[str]) -> TokenEntry:
        return cls(name, scopes, hashlib.sha256(secret.encode()).digest())


class TokenSet:
    """The tokens a server accepts; :meth:`authorize` decides each call, :meth:`replace` swaps them all at once
    (``headwater serve`` on SIGHUP: a call sees either the old set or the new one, never a mix)."""

    def __init__(self, entries: Iterable[TokenEntry]) -> None:
        self.entries = tuple(entries)
        if not self.entries:
            raise TokenFileError("no tokens configured")

    def replace(self, other: TokenSet) -> None:
        """Accept ``other``'s tokens instead of these from now on (one attribute assignment: atomic)."""
        self.entries = other.entries

    def identify(self, metadata: Iterable[tuple[str, str | bytes]]) -> TokenEntry:
        """The entry whose token the call presents; UnauthenticatedError otherwise."""
        header = None
        for key, value in metadata:
            if key.lower() == "authorization":
                header = value.decode("latin-1") if isinstance(value, bytes) else value
                break
        if header is None:
            raise UnauthenticatedError("missing bearer token: send the metadata 'authorization: Bearer <token>'")
        scheme, _, secret = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise UnauthenticatedError("malformed authorization metadata: expected 'Bearer <token>'")
        presented = hashlib.sha256(secret.strip().encode("utf-8", "surrogateescape")).digest()
        found = None
        for entry in self.entries:  # read once: a concurrent replace() is seen whole or not at all. Compare with
            # every entry: the time taken does not depend on which matched
            if hmac.compare_digest(presented, entry.digest):
                found = entry
        if found is None:
            raise UnauthenticatedError("invalid bearer token")
        return found

    def authorize(self, method: str, metadata: Iterable[tuple[str, str | bytes]]) -> str:
        """The token's name if it may call ``method``; UnauthenticatedError or PermissionDeniedError if not."""
        entry = self.identify(metadata)
        require_scope(entry, method)
        return entry.name


def require_scope(entry: TokenEntry, method: str) -> None:
    """PermissionDeniedError unless ``entry`` has the scope ``method`` needs (an unknown method needs one no
    token has)."""
    scope = METHOD_SCOPES.get(method)
    if scope is None or scope not in entry.scopes:
        raise PermissionDeniedError(f"token {entry.name!r} lacks the {scope or 'required'!s} scope needed "
                                    f"for {method}")


def load_token_file(path: str | Path) -> TokenSet:
    """Read a token file (see the module docstring); TokenFileError names the problem and the entry."""
    data = read_toml(path, "token file", TokenFileError)
    unknown = set(data) - {"tokens"}
    if unknown:
        raise TokenFileError(f"token file {path}: unknown keys {sorted(unknown)}; expected [[tokens]] entries")
    raw = data.get("tokens")
    if not isinstance(raw, list) or not raw:
        raise TokenFileError(f"token file {path} has no [[tokens]] entries")
    entries: list[TokenEntry] = []
    names: set[str] = set()
    for n, item in enumerate(raw, start=1):
        where = f"token file {path}, entry {n}"
        if not isinstance(item, dict):
            raise TokenFileError(f"{where}: must be a table")
        extra = set(item) - {"name", "scopes", "token", "sha256"}
        if extra:
            raise TokenFileError(f"{where}: unknown keys {sorted(extra)}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise TokenFileError(f"{where}: needs a name")
        if name in names:
            raise TokenFileError(f"{where}: the name {name!r} is used twice")
        names.add(name)
        scopes = item.get("scopes")
        if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
            raise TokenFileError(f"{where} ({name}): scopes must be a non-empty list of {sorted(SCOPES)}")
        bad = set(scopes) - SCOPES
        if bad:
            raise TokenFileError(f"{where} ({name}): unknown scopes {sorted(bad)}; known: {sorted(SCOPES)}")
        secret, digest = item.get("token"), item.get("sha256")
        if (secret is None) == (digest is None):
            raise TokenFileError(f"{where} ({name}): give exactly one of token or sha256")
        if secret is not None:
            if not isinstance(secret, str) or len(secret) < 16 or secret != secret.strip():
                raise TokenFileError(f"{where} ({name}): a token must be a string of at least 16 characters "
                                     "without surrounding spaces")
            entries.append(TokenEntry.from_secret(name, secret, frozenset(scopes)))
        else:
            if not isinstance(digest, str) or _HEX64.fullmatch(digest.lower()) is None:
                raise TokenFileError(f"{where} ({name}): sha256 must be 64 hex digits")
            entries.append(TokenEntry(name, frozenset(scopes), bytes.fromhex(digest)))
    return TokenSet(entries)
