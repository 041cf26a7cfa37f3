"""One way to name a store everywhere: ``--db`` of every command, ``Engine.open``, the TOML ``db`` key, ``HEADWATER_DB``.

- ``:memory:`` — a throw-away :class:`~.memory.MemoryStore`;
- ``postgresql://…`` (or ``postgres://…``) — a :class:`~.postgres.PostgresStore`
  (libpq's URI; the ``PG*`` environment variables and the password file fill in
  what it leaves out; the database must be migrated: ``headwater migrate``);
- anything else — the path of a :class:`~.sqlite.SqliteStore` file (created on first use).

A database is shown only as :func:`describe` names it: a URI without its password.

Example::

    >>> kind_of(":memory:"), kind_of("postgresql://ann@db/headwater"), kind_of("headwater.db")
    ('memory', 'postgresql', 'sqlite')
    >>> describe("postgresql://ann:s3cret@db/headwater")
    'postgresql://ann:***@db/headwater'
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..dburi import is_postgres_uri, redact

if TYPE_CHECKING:
    from .validating import Store

__all__ = ["describe", "is_file", "kind_of", "open_store"]

MEMORY = ":memory:"


def kind_of(db: str | Path) -> str:
    """``memory``, ``postgresql`` or ``sqlite``: the kind of store ``db`` names."""
    text = str(db)
    if text == MEMORY:
        return "memory"
    return "postgresql" if is_postgres_uri(text) else "sqlite"


def is_file(db: str | Path) -> bool:
    """Whether ``db`` names a SQLite file (a path relative to a config file is resolved only then)."""
    return kind_of(db) == "sqlite"


def describe(db: str | Path) -> str:
    """``db`` as messages and logs show it: a PostgreSQL URI without its password, a path as it is."""
    return redact(str(db)) if kind_of(db) == "postgresql" else str(db)


def open_store(db: str | Path, *, clock: Callable[[], datetime] | None = None, pool_size: int = 20,
               pool_timeout: float = 5.0, statement_timeout: float = 30.0) -> Store:
    """The store ``db`` names (see the module docstring); the pool settings apply to PostgreSQL only."""
    kind = kind_of(db)
    extra = {} if clock is None else {"clock": clock}
    if kind == "memory":
        from .memory import MemoryStore

        return MemoryStore(**extra)
    if kind == "postgresql":
        from .postgres import PostgresStore

        return PostgresStore(str(db), pool_size=pool_size, pool_timeout=pool_timeout,
                             statement_timeout=statement_timeout, **extra)
    from .sqlite import SqliteStore

    return SqliteStore(db, **extra)
