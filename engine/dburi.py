"""PostgreSQL URIs as Headwater names and shows them: recognized without loading a driver, shown without a password.

Example::

    >>> is_postgres_uri("postgresql://ann@db/headwater"), is_postgres_uri("headwater.db")
    (True, False)
    >>> redact("postgresql://ann:s3cret@db/headwater")
    'postgresql://ann:***@db/headwater'
    >>> redact("postgresql://db/headwater?user=ann&password=s3cret")
    'postgresql://db/headwater?user=ann&password=***'
"""

from __future__ import annotations

import re

__all__ = ["URI_RE", "is_postgres_uri", "redact"]

URI_RE = re.compile(r"^(postgres(?:ql)?://)([^@/]*@)?(.*)$", re.DOTALL)
"""A PostgreSQL URI: its scheme, its user information (``user:password@``, if any) and the rest."""


def is_postgres_uri(db: str) -> bool:
    """Whether ``db`` names a PostgreSQL database (a ``postgresql://`` or ``postgres://`` URI)."""
    return db.startswith(("postgresql://", "postgres://"))


def redact(uri: str) -> str:
    """``uri`` with its password replaced by ``***`` (also one given as a ``password=`` parameter)."""
    match = URI_RE.match(uri)
    if match is None:
        return uri
    scheme, userinfo, rest = match.groups()
    if userinfo and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***@"
    rest = re.sub(r"(?i)(password=)[^&]*", r"\1***", rest)
    return f"{scheme}{userinfo or ''}{rest}"

