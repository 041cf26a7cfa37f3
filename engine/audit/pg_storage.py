"""The audit log in a PostgreSQL database: the store's own database, one chain shared by every server.

The tables are ``audit_records``, ``audit_head`` and ``audit_identity``, created
by ``headwater migrate`` with the store's (migration 2 of
``engine/store/pg_migrations.py``; an audit log refuses a database that lacks
it, naming the command). They are SQLite's tables with PostgreSQL types, and
what is done with them is the shared :class:`~.sql_storage.AuditStorage`; this
module gives the connections (a small pool of its own through
:class:`~headwater.engine.pgdb.Database`) and the transactions:

- **an append** is one transaction that first reads the head row ``FOR UPDATE``:
  an append by another server waits for it to commit, then reads the head it
  left, so every server numbers its records after the last one and links them
  to its hash, and the chain stays one total order (see docs/audit.md,
  "Several servers, one chain"); pruning holds the head the same way;
- **a read** (verify, continuity, anchors, queries) is one ``REPEATABLE READ
  READ ONLY`` transaction: one snapshot, whatever the other servers append
  meanwhile; verify streams the chain through a server-side cursor.

The log exists once it has an identity: the first audited engine over the
database (or ``headwater audit init --db URI``) writes it and the head, under a
table lock, so two servers starting at once make one log. Commits are durable as
the server's ``synchronous_commit`` says (on by default); ``audit_durable`` only
decides whether a check waits for its record.

Example (needs a migrated database; ``headwater migrate --db URI``)::

    >>> import os
    >>> from .chain import Chain
    >>> uri = os.environ.get("HEADWATER_DOCTEST_PG")
    >>> if uri:
    ...     storage = PostgresAuditStorage(uri, chain=Chain(None))
    ...     isinstance(storage.head()[0], int)
    ...     storage.close()
    ... else:
    ...     True
    True
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from ..dburi import redact
from ..errors import NotFoundError, StoreError
from ..pgdb import Connection, Database, DriverError
from ..store import pg_migrations
from .chain import Chain, Row
from .records import GENESIS, iso_time
from .sql_storage import AuditStorage

__all__ = ["POOL_SIZE", "PostgresAuditStorage"]

#: Connections the audit log keeps open at most: its writer's, and those of queries and verifications.
POOL_SIZE = 4
_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


class PostgresAuditStorage(AuditStorage):
    """The audit log's tables in the PostgreSQL database at ``uri`` (thread-safe: a pool of connections).

    :param uri: a ``postgresql://`` URI (the store's database), migrated by ``headwater migrate``.
    :param chain: the chain's rules (with the log's key).
    :param create: start the log (its identity and head) if the database has none (else NotFoundError).
    :param pool_timeout: seconds a call waits for a connection before ``StoreUnavailableError``.
    :param statement_timeout: seconds one statement may run before the database cancels it.
    """

    RECORDS, HEAD, IDENTITY = "audit_records", "audit_head", "audit_identity"
    MARK = "%s"
    LOCK_HEAD = " FOR UPDATE"
    DRIVER_ERROR = DriverError

    def __init__(self, uri: str, *, chain: Chain, create: bool = True, pool_timeout: float = 5.0,
                 statement_timeout: float = 30.0) -> None:
        super().__init__(chain=chain, shown=redact(uri))
        self._db = Database(uri, name="the audit log", pool_size=POOL_SIZE, pool_timeout=pool_timeout,
                            statement_timeout=statement_timeout)
        try:
            self._db.open()
            self._db.require_current(pg_migrations.MIGRATIONS, table=pg_migrations.MIGRATIONS_TABLE)
            self.log_id = self._identity(create)
        except BaseException:
            self._db.close()
            raise

    def _identity(self, create: bool) -> str:
        """The log's id; a new log (identity and head) when there is none and ``create``."""
        with self._db.transaction("open the audit log") as conn:
            row = conn.execute("SELECT log_id FROM audit_identity WHERE one = 1").fetchone()
            if row is None and create:
                conn.execute("LOCK TABLE audit_identity IN SHARE ROW EXCLUSIVE MODE")  # one server starts it
                row = conn.execute("SELECT log_id FROM audit_identity WHERE one = 1").fetchone()
            if row is not None:
                if not isinstance(row[0], str) or not row[0]:
                    raise StoreError(f"cannot open {self.place}: its identity (table audit_identity) is corrupt; "
                                     "the log was tampered with")
                return row[0]
            used = conn.execute("SELECT EXISTS (SELECT FROM audit_records) OR EXISTS (SELECT FROM audit_head)"
                                ).fetchone()
            if used and used[0]:
                raise StoreError(f"cannot open {self.place}: its identity (table audit_identity) is missing, but "
                                 "its records or head are not: the log was tampered with")
            if not create:
                raise NotFoundError(f"no audit log in {self.shown}")
            log_id = secrets.token_hex(16)
            conn.execute("INSERT INTO audit_head (one, count, hash, mac) VALUES (1, 0, %s, '')", [GENESIS])
            conn.execute("INSERT INTO audit_identity (one, log_id, created) VALUES (1, %s, %s)",
                         [log_id, iso_time(datetime.now(UTC))])
            return log_id

    @contextmanager
    def _reading(self, action: str) -> Iterator[Connection]:
        with self._db.transaction(action, _SNAPSHOT) as conn:
            yield conn

    @contextmanager
    def _writing(self, action: str) -> Iterator[Connection]:
        with self._db.transaction(action) as conn:
            yield conn

    def _insert(self, conn: Connection, rows: Sequence[Row]) -> None:
        """One statement for the whole batch, its rows as arrays."""
        conn.execute("INSERT INTO audit_records (id, body, prev_hash, hash) "
                     "SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[])",
                     [list(column) for column in zip(*rows, strict=True)])

    @contextmanager
    def _stream(self, conn: Connection, sql: str, params: Sequence[Any]) -> Iterator[Iterable[Row]]:
        with conn.cursor(name="headwater_audit_walk") as cursor:
            cursor.itersize = 2000
            cursor.execute(sql, params)  # type: ignore[arg-type]  # our own SQL
            yield cursor  # type: ignore[misc]

    def connect(self) -> None:
        """Nothing to do: the pool lends the writer a connection per batch."""

    def close(self) -> None:
        """Close the pool (idempotent); reads afterwards raise StoreError."""
        self._db.close()
