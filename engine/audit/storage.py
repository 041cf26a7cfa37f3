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

from ..errors import InvalidRequestError, NotFoundError, StoreError, StoreUnavailableError
from ..sqlitedb import Connection, DriverError, Migration, SqliteFile, transaction
from .anchors import Anchor
from .binding import AuditBinding
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
#: The kinds of record that stand for a change of the store (they carry its ``revision``).
_CHANGE_KINDS = "('relationships', 'schema', 'acknowledgement')"
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
            with self._file.connection() as db, self._file.translated("read the audit log's identity"):
                row = db.execute("SELECT log_id FROM identity WHERE one = 1").fetchone()
            if row is None or not isinstance(row[0], str) or not row[0]:
                raise StoreError(f"cannot open {self._file.place}: its identity (table identity) is missing or "
                                 "corrupt; the file was tampered with")
            #: The log's id (see binding.py); never changes.
            self.log_id: str = row[0]
        except BaseException:
            self._file.close()
            raise

    @property
    def place(self) -> str:
        """``the audit log at <path>``, for messages."""
        return self._file.place

    @property
    def keyed(self) -> bool:
        """Whether appends sign the head (the log was opened with a key)."""
        return self._chain.keyed

    def chain_sign(self, fields: dict[str, Any]) -> str | None:
        """The chain's HMAC of ``fields`` (None without a key)."""
        return self._chain.sign(fields)

    def chain_checks(self, fields: dict[str, Any]) -> bool:
        """Whether ``fields["signature"]`` is the chain's HMAC of the rest."""
        return self._chain.checks(fields)

    def head_mac(self, count: int, last: str) -> str:
        """The head's HMAC under the key ('' without one)."""
        return self._chain.head_mac(count, last)

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
            count, last, _ = self._head(db)
            rows, count, last = self._chain.link(count, last, batch)
            db.executemany(_INSERT, rows)
            db.execute("UPDATE head SET count = ?, hash = ?, mac = ? WHERE one = 1",
                       (count, last, self._chain.head_mac(count, last)))

    def head(self) -> tuple[int, str]:
        """(records appended so far, the last record's hash); StoreError when the head is missing or corrupt."""
        with self._file.connection() as db, self._file.translated("read the audit head"):
            count, last, _ = self._head(db)
            return count, last

    def signed_head(self) -> tuple[int, str, str]:
        """(records appended so far, the last record's hash, their HMAC or '' when unsigned)."""
        with self._file.connection() as db, self._file.translated("read the audit head"):
            return self._head(db)

    def _head(self, db: Connection) -> tuple[int, str, str]:
        problem, head = _read_head(db)
        if head is None:
            raise StoreError(f"{self._file.place} cannot be used: {problem}; run `headwater audit verify`")
        return head

    def verify(self) -> VerifyResult:
        """Walk the whole chain in one read transaction; a log that cannot be read is a failed result too."""
        try:
            with self._file.connection() as db, self._file.translated("verify the audit log"), \
                    transaction(db, "BEGIN"):
                return self._walk(db, None)
        except StoreUnavailableError:
            raise
        except StoreError as exc:  # a missing table, a truncated or corrupted file
            return VerifyResult(False, 0, 0, "", None, f"the log cannot be read ({exc})")

    def _walk(self, db: Connection, through: int | None) -> VerifyResult:
        problem, head = _read_head(db)
        if head is None:
            return VerifyResult(False, 0, 0, "", None, problem)
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
                raise StoreError(f"refusing to prune {self._file.place}: it does not verify ({check})")
            pruned_now = db.execute("SELECT count(*) FROM records WHERE id <= ? AND kind != 'checkpoint'",
                                    [through]).fetchone()[0]
            fields = self._chain.checkpoint(through=through, prefix_hash=row[1], before=cutoff, time=clock(),
                                            pruned_now=pruned_now)
            db.execute("DELETE FROM records WHERE id <= ?", [through])
            db.execute(_INSERT, [through, canonical_json(fields), "", row[1]])
            return AuditRecord(through, RecordKind.CHECKPOINT, parse_iso_time(fields["time"]), fields, row[1], "")

    # --- the store and anchors ------------------------------------------------------------

    def continuity(self, binding: AuditBinding) -> tuple[str | None, bool]:
        """Whether this log continues what the store recorded in ``binding``: (the problem, or None when it
        does; True when the problem may be a write whose record is still on its way, so waiting may end it)."""
        with self._file.connection() as db, self._file.translated("check the audit log against its store"), \
                transaction(db, "BEGIN"):
            if binding.log_id != self.log_id:
                return ((f"{binding.describe()}, but {self._file.place} is another log ({self.log_id}): the log "
                         "was replaced"), False)
            problem, head = _read_head(db)
            if head is None:
                return problem, False
            count = head[0]
            if count < binding.count:
                return ((f"{binding.describe()}, but the log now ends at record #{count}: it was rolled back to an "
                         "older copy or truncated"), False)
            pruned = _pruned_through(db)
            if binding.count > pruned:
                row = db.execute("SELECT hash FROM records WHERE id = ?", [binding.count]).fetchone()
                if row is None:
                    return f"{binding.describe()}, but record #{binding.count} is no longer in the log", False
                if row[0] != binding.hash:
                    return ((f"{binding.describe()}, but record #{binding.count} no longer hashes to what the store "
                             f"recorded ({binding.hash[:16]}): the log was rewritten or replaced"), False)
            found = db.execute(f"SELECT id FROM records WHERE id > ? AND revision = ? AND kind IN {_CHANGE_KINDS} "
                               "LIMIT 1", [binding.count, binding.revision]).fetchone()
            if found is None and pruned <= binding.count:
                last = db.execute(f"SELECT id, revision FROM records WHERE kind IN {_CHANGE_KINDS} "
                                  "ORDER BY id DESC LIMIT 1").fetchone()
                newest = (f"its last change record is #{last[0]}, of revision {last[1]}" if last is not None
                          else "it records no change at all")
                return ((f"the log has no record of the store's revision {binding.revision} ({newest}): the log "
                         "was rolled back to an older copy, records were removed, or a crash came between the "
                         "write and its record"), True)
            return None, False

    def check_anchor(self, anchor: Anchor) -> tuple[str | None, str | None]:
        """Whether the log still holds ``anchor``'s head: (the problem, or None; a note when it cannot tell)."""
        with self._file.connection() as db, self._file.translated("check an anchor"), transaction(db, "BEGIN"):
            name = anchor.describe()
            if anchor.log != self.log_id:
                return f"{name} is of another audit log ({anchor.log}; this log is {self.log_id})", None
            problem, head = _read_head(db)
            if head is None:
                return problem, None
            if anchor.sequence > head[0]:
                return ((f"{name}: the log now ends at record #{head[0]}, but it had reached #{anchor.sequence} "
                         "then: it was rolled back to an older copy"), None)
            if anchor.sequence == 0:
                return (None if anchor.hash == GENESIS else f"{name}: an empty log's anchor with a hash"), None
            row = db.execute("SELECT hash FROM records WHERE id = ?", [anchor.sequence]).fetchone()
            if row is None:
                if anchor.sequence < _pruned_through(db):
                    return None, f"{name} falls in the pruned prefix: its record is gone, not checked"
                return f"{name}: record #{anchor.sequence} is no longer in the log", None
            if row[0] != anchor.hash:
                return ((f"{name}: record #{anchor.sequence} no longer hashes to the anchored {anchor.hash[:16]}: "
                         "the log was rewritten, or replaced by another copy"), None)
            return None, None

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


def _read_head(db: Connection) -> tuple[str, tuple[int, str, str] | None]:
    """The head row (count, hash, mac), or why it cannot be used (missing, corrupt)."""
    try:
        row = db.execute("SELECT count, hash, mac FROM head WHERE one = 1").fetchone()
    except DriverError as exc:
        return f"the head cannot be read ({exc})", None
    if row is None:
        return ("the head is missing (table head has no row): the log's length and last hash cannot be checked; "
                "it was deleted or the file was tampered with"), None
    count, last, mac = row
    if (not isinstance(count, int) or isinstance(count, bool) or count < 0 or not isinstance(last, str)
            or len(last) != 64 or not isinstance(mac, str)):
        return f"the head is corrupt (count {count!r}, hash {last!r})", None
    return "", (count, last, mac)


def _pruned_through(db: Connection) -> int:
    """The last record id a checkpoint stands for (0 when nothing was pruned)."""
    row = db.execute("SELECT body FROM records ORDER BY id LIMIT 1").fetchone()
    if row is None:
        return 0
    try:
        body = json.loads(row[0])
    except (ValueError, TypeError):
        return 0
    through = body.get("through") if isinstance(body, dict) and body.get("kind") == "checkpoint" else 0
    return through if isinstance(through, int) else 0


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
