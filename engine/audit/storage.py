"""The audit log's SQLite file: its tables and migrations, appends, verification and pruning reads, queries and cursors.

The file holds two tables (migration 1 below): ``records``, the chain (``body``
is the canonical JSON of a record's content; the columns after ``hash`` are
computed from it, only to be indexed), and ``head``, one row with the number of
records appended so far, the last hash and, with a key, their HMAC. The layout
version is kept in ``audit_migrations``. Connections, transactions and driver
errors go through :class:`~headwater.engine.sqlitedb.SqliteFile`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import InvalidRequestError, NotFoundError, StoreError
from ..sqlitedb import Connection, Migration, SqliteFile, transaction
from .chain import Chain
from .records import (
    GENESIS,
    AuditPage,
    AuditRecord,
    Pending,
    RecordKind,
    VerifyResult,
    canonical_json,
    iso_time,
    parse_iso_time,
)

__all__ = ["AuditStorage", "RecordQuery", "audit_path_for"]

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
)
_RECORD_COLUMNS = "SELECT id, body, prev_hash, hash FROM records"
_INSERT = "INSERT INTO records (id, body, prev_hash, hash) VALUES (?, ?, ?, ?)"


def audit_path_for(database: str | Path) -> Path:
    """Where a store's audit log lives by default: ``<database>.audit`` beside it.

    Example::

        >>> audit_path_for("/var/lib/headwater/h.db").name
        'h.db.audit'
    """
    return Path(f"{database}.audit")


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """One page's query, checked and built before anything is read (:meth:`AuditStorage.plan`)."""

    where: str
    params: tuple[Any, ...]
    newest_first: bool
    limit: int
    query_id: str  # ties a cursor to the filters that made it


class AuditStorage:
    """The audit log's SQLite file, created or upgraded on open (thread-safe: one connection per thread).

    :param path: the SQLite file.
    :param chain: the chain's rules (with the log's key).
    :param durable: commits fsync (``synchronous=FULL``); else ``NORMAL``.
    :param busy_timeout: seconds to wait for another writer.
    """

    def __init__(self, path: Path, *, chain: Chain, durable: bool, busy_timeout: float) -> None:
        self._chain = chain
        # The audit log's messages predate the shared helper: no retry advice, no conflict or corruption wording.
        self._file = SqliteFile(path, name="the audit log", synchronous="FULL" if durable else "NORMAL",
                                busy_timeout=busy_timeout, busy_advice="", conflicts=False, corruption=False)
        try:
            self._file.migrate(_MIGRATIONS, table="audit_migrations", stamp=lambda: iso_time(datetime.now(UTC)),
                               foreign="it is a database of something else (tables {tables})",
                               newer="it was written by a newer Headwater (layout version {applied}; this "
                                     "version knows up to {latest})")
        except BaseException:
            self._file.close()
            raise

    def connect(self) -> None:
        """Open this thread's connection now (the writer thread's, before its first batch)."""
        with self._file.connection():
            pass

    def close(self) -> None:
        """Close every connection (idempotent); reads afterwards raise StoreError."""
        self._file.close()

    # --- the chain ---------------------------------------------------------------------

    def append(self, batch: list[Pending]) -> None:
        """Append ``batch`` to the chain in one transaction (reading the head inside it, so several
        processes appending to one file still form one chain)."""
        with self._file.connection() as db, self._file.translated("append audit records"), \
                transaction(db, "BEGIN IMMEDIATE"):
            count, last = db.execute("SELECT count, hash FROM head WHERE one = 1").fetchone()
            rows, count, last = self._chain.link(count, last, batch)
            db.executemany(_INSERT, rows)
            db.execute("UPDATE head SET count = ?, hash = ?, mac = ? WHERE one = 1",
                       (count, last, self._chain.head_mac(count, last)))

    def head(self) -> tuple[int, str]:
        """(records appended so far, the last record's hash)."""
        with self._file.connection() as db, self._file.translated("read the audit head"):
            count, last = db.execute("SELECT count, hash FROM head WHERE one = 1").fetchone()
            return count, last

    def verify(self) -> VerifyResult:
        """Walk the whole chain in one read transaction."""
        with self._file.connection() as db, self._file.translated("verify the audit log"), transaction(db, "BEGIN"):
            return self._walk(db, None)

    def _walk(self, db: Connection, through: int | None) -> VerifyResult:
        head = db.execute("SELECT count, hash, mac FROM head WHERE one = 1").fetchone()
        sql = _RECORD_COLUMNS
        if through is not None:
            sql += f" WHERE id <= {int(through)}"

        def find(record_hash: str) -> int | None:
            found = db.execute("SELECT id FROM records WHERE hash = ? ORDER BY id LIMIT 1", [record_hash]).fetchone()
            return None if found is None else found[0]

        return self._chain.walk(head, db.execute(sql + " ORDER BY id"), find=find, through=through)

    def prune(self, cutoff: str, clock: Callable[[], datetime]) -> AuditRecord | None:
        """Replace the records older than ``cutoff`` (the longest such prefix) with a checkpoint, once the prefix
        verifies (else StoreError); the checkpoint, or None when nothing is old enough."""
        with self._file.connection() as db, self._file.translated("prune the audit log"), \
                transaction(db, "BEGIN IMMEDIATE"):
            first = db.execute("SELECT min(id) FROM records").fetchone()[0]
            if first is None:
                return None
            newer = db.execute("SELECT min(id) FROM records WHERE time >= ? AND kind != 'checkpoint'",
                               [cutoff]).fetchone()[0]
            through = (newer - 1) if newer is not None else db.execute("SELECT max(id) FROM records").fetchone()[0]
            if through < first:
                return None
            row = db.execute("SELECT body, hash FROM records WHERE id = ?", [through]).fetchone()
            if json.loads(row[0]).get("kind") == RecordKind.CHECKPOINT.value:
                return None  # only the checkpoint is old enough: nothing new to prune
            check = self._walk(db, through)
            if not check.ok:
                raise StoreError(f"refusing to prune {self._file.place}: it does not verify "
                                 f"(record {check.record_id}: {check.problem})")
            pruned_now = db.execute("SELECT count(*) FROM records WHERE id <= ? AND kind != 'checkpoint'",
                                    [through]).fetchone()[0]
            fields = self._chain.checkpoint(through=through, prefix_hash=row[1], before=cutoff, time=clock(),
                                            pruned_now=pruned_now)
            db.execute("DELETE FROM records WHERE id <= ?", [through])
            db.execute(_INSERT, [through, canonical_json(fields), "", row[1]])
            return AuditRecord(through, RecordKind.CHECKPOINT, parse_iso_time(fields["time"]), fields, row[1], "")

    # --- queries -----------------------------------------------------------------------

    def get(self, record_id: int) -> AuditRecord:
        """The record with this id; NotFoundError if there is none."""
        with self._file.connection() as db, self._file.translated("read an audit record"):
            row = db.execute(f"{_RECORD_COLUMNS} WHERE id = ?", [record_id]).fetchone()
        if row is None:
            raise NotFoundError(f"no audit record #{record_id} in {self._file.path} (never written, or pruned)")
        return _record(row)

    @staticmethod
    def plan(*, kind: RecordKind | str | None = None, subject: str | None = None, resource: str | None = None,
             permission: str | None = None, result: str | None = None, caller: str | None = None,
             actor: str | None = None, since: datetime | None = None, until: datetime | None = None,
             revision: int | None = None, min_revision: int | None = None, max_revision: int | None = None,
             limit: int = 100, cursor: str | None = None, newest_first: bool = False) -> RecordQuery:
        """The query for a page of records matching every filter given (see :meth:`AuditLog.query`);
        InvalidRequestError for a bad limit, kind or cursor."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise InvalidRequestError(f"invalid limit {limit!r}: must be a positive integer")
        if isinstance(kind, str):
            try:
                kind = RecordKind(kind)
            except ValueError:
                raise InvalidRequestError(f"unknown record kind {kind!r}: use one of "
                                          f"{', '.join(k.value for k in RecordKind)}") from None
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (("kind", kind.value if kind else None), ("subject", subject),
                              ("resource", resource), ("permission", permission), ("result", result),
                              ("caller", caller), ("actor", actor), ("revision", revision)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        for op, value in ((">=", min_revision), ("<=", max_revision)):
            if value is not None:
                clauses.append(f"revision {op} ?")
                params.append(value)
        for op, moment in ((">=", since), ("<", until)):
            if moment is not None:
                clauses.append(f"time {op} ?")
                params.append(iso_time(moment))
        query_id = hashlib.sha256(canonical_json([clauses, params, newest_first]).encode()).hexdigest()[:12]
        if cursor is not None:
            clauses.append("id < ?" if newest_first else "id > ?")
            params.append(_decode_cursor(cursor, query_id))
        return RecordQuery(" AND ".join(clauses) or "1 = 1", tuple(params), newest_first, limit, query_id)

    def page(self, query: RecordQuery) -> AuditPage:
        """One page of ``query``'s records, and the cursor to the next one if there is more."""
        order = "DESC" if query.newest_first else "ASC"
        with self._file.connection() as db, self._file.translated("query the audit log"):
            rows = db.execute(f"{_RECORD_COLUMNS} WHERE {query.where} ORDER BY id {order} LIMIT ?",
                              [*query.params, query.limit + 1]).fetchall()
        records = [_record(r) for r in rows[:query.limit]]
        next_cursor = _encode_cursor(records[-1].id, query.query_id) if len(rows) > query.limit else None
        return AuditPage(records, next_cursor)


def _record(row: Sequence[Any]) -> AuditRecord:
    body = json.loads(row[1])
    try:
        kind = RecordKind(body.get("kind"))
    except ValueError:
        raise StoreError(f"audit record #{row[0]} has an unknown kind {body.get('kind')!r}") from None
    return AuditRecord(row[0], kind, parse_iso_time(body["time"]), body, row[3], row[2])


def _encode_cursor(after: int, query_id: str) -> str:
    return base64.urlsafe_b64encode(f"{after}:{query_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, query_id: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        after, qid = raw.split(":", 1)
        value = int(after)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequestError(f"malformed audit cursor {cursor!r}") from None
    if qid != query_id:
        raise InvalidRequestError("this audit cursor belongs to another query: repeat the same filters")
    return value
