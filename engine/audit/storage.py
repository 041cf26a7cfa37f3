"""The audit log's SQLite file: its tables and migrations, its connections and transactions.

The file holds three tables (the migrations below): ``records``, the chain
(``body`` is the canonical JSON of a record's content; the columns after
``hash`` are computed from it, only to be indexed), ``head``, one row with the
number of records appended so far, the last hash and, with a key, their HMAC,
and ``identity``, the log's random id. The layout version is kept in
``audit_migrations``. Connections, transactions and driver errors go through
:class:`~headwater.engine.sqlitedb.SqliteFile`; what is done with the tables
(appends, verification, pruning, queries) is :class:`~.sql_storage.AuditStorage`,
shared with the PostgreSQL log (:mod:`.pg_storage`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, StoreError
from ..sqlitedb import Connection, DriverError, Migration, SqliteFile, transaction
from .chain import Chain, Row
from .records import GENESIS, iso_time
from .sql_storage import AuditStorage

__all__ = ["SqliteAuditStorage", "audit_path_for"]

_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "records and head", (
        # The chain. Columns after `hash` are computed from `body` (never stored apart from it),
        # so there is no second copy of a field to tamper with; they exist for the indexes.
        """
        CREATE TABLE records (
            id         INTEGER PRIMARY KEY,   -- the record's place in the chain: 1, 2, 3...
            body       TEXT NOT NULL,         -- canonical JSON of the content (includes "id")
            prev_hash  TEXT NOT NULL,         -- the hash this record links to ('' for a checkpoint)
            hash       TEXT NOT NULL,         -- sha256(prev_hash || "\\n" || body)
            kind       TEXT GENERATED ALWAYS AS (json_extract(body, '$.kind')) VIRTUAL,
            time       TEXT GENERATED ALWAYS AS (json_extract(body, '$.time')) VIRTUAL,
            caller     TEXT GENERATED ALWAYS AS (json_extract(body, '$.caller')) VIRTUAL,
            actor      TEXT GENERATED ALWAYS AS (json_extract(body, '$.actor')) VIRTUAL,
            resource   TEXT GENERATED ALWAYS AS (json_extract(body, '$.resource')) VIRTUAL,
            permission TEXT GENERATED ALWAYS AS (json_extract(body, '$.permission')) VIRTUAL,
            subject    TEXT GENERATED ALWAYS AS (json_extract(body, '$.subject')) VIRTUAL,
            result     TEXT GENERATED ALWAYS AS (json_extract(body, '$.result')) VIRTUAL,
            revision   INTEGER GENERATED ALWAYS AS (json_extract(body, '$.revision')) VIRTUAL
        )
        """,
        "CREATE INDEX records_by_time ON records (time)",
        "CREATE INDEX records_by_subject ON records (subject)",
        "CREATE INDEX records_by_resource ON records (resource)",
        "CREATE INDEX records_by_revision ON records (revision)",
        # Records appended so far (= the last id) and the last hash; `mac` is HMAC(key, "count:hash")
        # when the log has a key, else ''.
        """
        CREATE TABLE head (
            one   INTEGER PRIMARY KEY CHECK (one = 1),
            count INTEGER NOT NULL,
            hash  TEXT NOT NULL,
            mac   TEXT NOT NULL
        )
        """,
        f"INSERT INTO head (one, count, hash, mac) VALUES (1, 0, '{GENESIS}', '')",
    )),
    Migration(2, "identity", (
        # The log's identity: a random id created with the log. Every audited write names it in its store
        # revision's metadata (binding.py), so a log deleted, replaced or swapped is told from its own.
        """
        CREATE TABLE identity (
            one     INTEGER PRIMARY KEY CHECK (one = 1),
            log_id  TEXT NOT NULL,
            created TEXT NOT NULL
        )
        """,
        "INSERT INTO identity (one, log_id, created) "
        "VALUES (1, lower(hex(randomblob(16))), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
    )),
)
def audit_path_for(database: str | Path) -> Path:
    """Where a store's audit log lives by default: ``<database>.audit`` beside it.

    Example::

        >>> audit_path_for("/var/lib/headwater/h.db").name
        'h.db.audit'
    """
    return Path(f"{database}.audit")


class SqliteAuditStorage(AuditStorage):
    """The audit log's SQLite file, created or upgraded on open (thread-safe: one connection per thread).

    :param path: the SQLite file.
    :param chain: the chain's rules (with the log's key).
    :param durable: commits fsync (``synchronous=FULL``); else ``NORMAL``.
    :param busy_timeout: seconds to wait for another writer.
    :param create: create the file if it does not exist (else NotFoundError).
    """

    DRIVER_ERROR = DriverError

    def __init__(self, path: Path, *, chain: Chain, durable: bool, busy_timeout: float, create: bool = True) -> None:
        super().__init__(chain=chain, shown=str(path))
        if not create and not path.exists():
            raise NotFoundError(f"no audit log at {path}")
        # The audit log's messages predate the shared helper: no retry advice, no conflict or corruption wording.
        self._file = SqliteFile(path, name="the audit log", synchronous="FULL" if durable else "NORMAL",
                                busy_timeout=busy_timeout, busy_advice="", conflicts=False, corruption=False)
        try:
            self._file.migrate(_MIGRATIONS, table="audit_migrations", stamp=lambda: iso_time(datetime.now(UTC)),
                               foreign="it is a database of something else (tables {tables})",
                               newer="it was written by a newer Headwater (layout version {applied}; this "
                                     "version knows up to {latest})")
            with self._file.connection() as db, self._file.translated("read the audit log's identity"):
                row = db.execute("SELECT log_id FROM identity WHERE one = 1").fetchone()
            if row is None or not isinstance(row[0], str) or not row[0]:
                raise StoreError(f"cannot open {self._file.place}: its identity (table identity) is missing or "
                                 "corrupt; the file was tampered with")
            self.log_id = row[0]
        except BaseException:
            self._file.close()
            raise

    @contextmanager
    def _reading(self, action: str) -> Iterator[Connection]:
        with self._file.connection() as db, self._file.translated(action), transaction(db, "BEGIN"):
            yield db

    @contextmanager
    def _writing(self, action: str) -> Iterator[Connection]:
        with self._file.connection() as db, self._file.translated(action), transaction(db, "BEGIN IMMEDIATE"):
            yield db

    def _insert(self, conn: Connection, rows: Sequence[Row]) -> None:
        conn.executemany("INSERT INTO records (id, body, prev_hash, hash) VALUES (?, ?, ?, ?)", rows)

    @contextmanager
    def _stream(self, conn: Connection, sql: str, params: Sequence[Any]) -> Iterator[Iterable[Row]]:
        yield conn.execute(sql, params)

    def connect(self) -> None:
        """Open this thread's connection now (the writer thread's, before its first batch)."""
        with self._file.connection():
            pass

    def close(self) -> None:
        """Close every connection (idempotent); reads afterwards raise StoreError."""
        self._file.close()
