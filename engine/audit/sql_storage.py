"""What the audit log does with its tables, written once for SQLite and PostgreSQL: appends, reads, checks, queries.

Both backends keep the same three tables (SQLite's ``records``, ``head`` and
``identity`` in the log's own file, :mod:`.storage`; PostgreSQL's
``audit_records``, ``audit_head`` and ``audit_identity`` beside the store's
tables, :mod:`.pg_storage`), with the same columns: ``records(id, body,
prev_hash, hash)`` plus the query columns computed from ``body``, a one-row
head (records appended, last hash, HMAC) and a one-row identity. So every
statement is written here once, with ``{records}``/``{head}``/``{identity}``
for the table names and ``?`` for a parameter; a subclass gives what differs:
the table names and placeholder, how a read transaction (one snapshot) and a
write transaction (holding the head, so appends form one chain) are opened,
how rows are inserted in bulk and how a long walk streams its rows.

**Appends form one chain whatever writes them.** An append reads the head
inside its write transaction, and that transaction excludes every other
append until it commits (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the head row
read ``FOR UPDATE``), so records are numbered after the head's count and
linked to its hash by exactly one writer at a time: threads, processes and
servers appending to one log form one total order, and :meth:`verify` works
unchanged.

Example::

    >>> query = AuditStorage.plan(kind="decision", subject="user:ann", limit=10)
    >>> query.where, query.params
    ('kind = ? AND subject = ?', ('decision', 'user:ann'))
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from ..errors import InvalidRequestError, NotFoundError, StoreError, StoreUnavailableError
from .anchors import Anchor
from .binding import AuditBinding
from .chain import Chain, Row
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

__all__ = ["CHANGE_KINDS", "AuditStorage", "RecordQuery"]

#: The kinds of record that stand for a change of the store (they carry its ``revision``).
CHANGE_KINDS = "('relationships', 'schema', 'acknowledgement')"
_RECORD_COLUMNS = "SELECT id, body, prev_hash, hash FROM {records}"
_HEAD = "SELECT count, hash, mac FROM {head} WHERE one = 1"


@dataclass(frozen=True, slots=True)
class RecordQuery:
    """One page's query, checked and built before anything is read (:meth:`AuditStorage.plan`)."""

    where: str  # with ``?`` placeholders, translated by the storage that runs it
    params: tuple[Any, ...]
    newest_first: bool
    limit: int
    query_id: str  # ties a cursor to the filters that made it


class AuditStorage:
    """The audit log's tables (see the module docstring); a subclass opens them and gives the dialect.

    :param chain: the chain's rules (with the log's key).
    :param shown: the log as messages name it: its file, or its database's URI without a password.

    A subclass sets :attr:`log_id` once its tables are open, and implements :meth:`_reading`, :meth:`_writing`,
    :meth:`_insert`, :meth:`_stream`, :meth:`connect` and :meth:`close`.
    """

    #: Table names, the parameter placeholder and what follows the head's SELECT in a write transaction.
    RECORDS: ClassVar[str] = "records"
    HEAD: ClassVar[str] = "head"
    IDENTITY: ClassVar[str] = "identity"
    MARK: ClassVar[str] = "?"
    LOCK_HEAD: ClassVar[str] = ""
    #: What the driver raises (a missing table, read as a missing head).
    DRIVER_ERROR: ClassVar[type[Exception]] = Exception

    #: The log's id (see binding.py); never changes.
    log_id: str

    def __init__(self, *, chain: Chain, shown: str) -> None:
        self._chain = chain
        self.shown = shown
        #: ``the audit log at <shown>``, for messages.
        self.place = f"the audit log at {shown}"
        self._statements: dict[str, str] = {}

    # --- what a subclass gives ------------------------------------------------------------

    def _reading(self, action: str) -> AbstractContextManager[Any]:
        """A connection inside one read transaction (one snapshot); driver errors become engine errors."""
        raise NotImplementedError

    def _writing(self, action: str) -> AbstractContextManager[Any]:
        """A connection inside one write transaction, committed after the block; driver errors become engine
        errors. It excludes other appends once the head is read with :attr:`LOCK_HEAD`."""
        raise NotImplementedError

    def _insert(self, conn: Any, rows: Sequence[Row]) -> None:
        """Insert chain rows (id, body, prev_hash, hash), in bulk."""
        raise NotImplementedError

    def _stream(self, conn: Any, sql: str, params: Sequence[Any]) -> AbstractContextManager[Iterable[Row]]:
        """The rows of a long query, fetched as they are walked."""
        raise NotImplementedError

    def connect(self) -> None:
        """Open this thread's connection now (the writer thread's, before its first batch)."""
        raise NotImplementedError

    def close(self) -> None:
        """Close every connection (idempotent); reads afterwards raise StoreError."""
        raise NotImplementedError

    def _sql(self, neutral: str) -> str:
        """``neutral`` (``{records}``, ``?``) in this storage's dialect."""
        text = self._statements.get(neutral)
        if text is None:
            text = neutral.format(records=self.RECORDS, head=self.HEAD, identity=self.IDENTITY).replace("?", self.MARK)
            self._statements[neutral] = text
        return text

    def _one(self, conn: Any, neutral: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(self._sql(neutral), params).fetchone()

    # --- the chain's rules, with the log's key -----------------------------------------------

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

    # --- the chain ---------------------------------------------------------------------

    def append(self, batch: list[Pending]) -> None:
        """Append ``batch`` to the chain in one transaction that holds the head from its first read to its commit,
        so appends by several threads, processes or servers form one chain."""
        with self._writing("append audit records") as conn:
            problem, head = self._read_head(conn, lock=True)
            if head is None:
                raise StoreError(f"{self.place} cannot be used: {problem}; run `headwater audit verify`")
            rows, count, last = self._chain.link(head[0], head[1], batch)
            self._insert(conn, rows)
            conn.execute(self._sql("UPDATE {head} SET count = ?, hash = ?, mac = ? WHERE one = 1"),
                         (count, last, self._chain.head_mac(count, last)))

    def head(self) -> tuple[int, str]:
        """(records appended so far, the last record's hash); StoreError when the head is missing or corrupt."""
        count, last, _ = self.signed_head()
        return count, last

    def signed_head(self) -> tuple[int, str, str]:
        """(records appended so far, the last record's hash, their HMAC or '' when unsigned)."""
        with self._reading("read the audit head") as conn:
            problem, head = self._read_head(conn)
        if head is None:
            raise StoreError(f"{self.place} cannot be used: {problem}; run `headwater audit verify`")
        return head

    def _read_head(self, conn: Any, *, lock: bool = False) -> tuple[str, tuple[int, str, str] | None]:
        """The head row (count, hash, mac), or why it cannot be used (missing, corrupt); ``lock``: hold it until
        the write transaction ends."""
        try:
            row = self._one(conn, _HEAD + self.LOCK_HEAD if lock else _HEAD)
        except self.DRIVER_ERROR as exc:
            return f"the head cannot be read ({exc})", None
        if row is None:
            return (f"the head is missing (table {self.HEAD} has no row): the log's length and last hash cannot be "
                    "checked; it was deleted or the log was tampered with"), None
        count, last, mac = row
        if (not isinstance(count, int) or isinstance(count, bool) or count < 0 or not isinstance(last, str)
                or len(last) != 64 or not isinstance(mac, str)):
            return f"the head is corrupt (count {count!r}, hash {last!r})", None
        return "", (count, last, mac)

    def verify(self) -> VerifyResult:
        """Walk the whole chain in one read transaction; a log that cannot be read is a failed result too."""
        try:
            with self._reading("verify the audit log") as conn:
                return self._walk(conn, None)
        except StoreUnavailableError:
            raise
        except StoreError as exc:  # a missing table, a truncated or corrupted file
            return VerifyResult(False, 0, 0, "", None, f"the log cannot be read ({exc})")

    def _walk(self, conn: Any, through: int | None) -> VerifyResult:
        problem, head = self._read_head(conn)
        if head is None:
            return VerifyResult(False, 0, 0, "", None, problem)
        sql = _RECORD_COLUMNS
        if through is not None:
            sql += f" WHERE id <= {int(through)}"

        def find(record_hash: str) -> int | None:
            found = self._one(conn, "SELECT id FROM {records} WHERE hash = ? ORDER BY id LIMIT 1", [record_hash])
            return None if found is None else found[0]

        with self._stream(conn, self._sql(sql + " ORDER BY id"), ()) as rows:
            return self._chain.walk(head, rows, find=find, through=through)

    def prune(self, cutoff: str, clock: Callable[[], datetime]) -> AuditRecord | None:
        """Replace the records older than ``cutoff`` (the longest such prefix) with a checkpoint, once the prefix
        verifies (else StoreError); the checkpoint, or None when nothing is old enough."""
        with self._writing("prune the audit log") as conn:
            self._read_head(conn, lock=True)  # no append comes between the walk and the deletion
            first = self._one(conn, "SELECT min(id) FROM {records}")[0]
            if first is None:
                return None
            newer = self._one(conn, "SELECT min(id) FROM {records} WHERE time >= ? AND kind != 'checkpoint'",
                              [cutoff])[0]
            through = (newer - 1) if newer is not None else self._one(conn, "SELECT max(id) FROM {records}")[0]
            if through < first:
                return None
            row = self._one(conn, "SELECT body, hash FROM {records} WHERE id = ?", [through])
            if json.loads(row[0]).get("kind") == RecordKind.CHECKPOINT.value:
                return None  # only the checkpoint is old enough: nothing new to prune
            check = self._walk(conn, through)
            if not check.ok:
                raise StoreError(f"refusing to prune {self.place}: it does not verify ({check})")
            pruned_now = self._one(conn, "SELECT count(*) FROM {records} WHERE id <= ? AND kind != 'checkpoint'",
                                   [through])[0]
            fields = self._chain.checkpoint(through=through, prefix_hash=row[1], before=cutoff, time=clock(),
                                            pruned_now=pruned_now)
            conn.execute(self._sql("DELETE FROM {records} WHERE id <= ?"), [through])
            self._insert(conn, [(through, canonical_json(fields), "", row[1])])
            return AuditRecord(through, RecordKind.CHECKPOINT, parse_iso_time(fields["time"]), fields, row[1], "")

    # --- the store and anchors ------------------------------------------------------------

    def continuity(self, binding: AuditBinding) -> tuple[str | None, bool]:
        """Whether this log continues what the store recorded in ``binding``: (the problem, or None when it
        does; True when the problem may be a write whose record is still on its way, so waiting may end it)."""
        with self._reading("check the audit log against its store") as conn:
            if binding.log_id != self.log_id:
                return ((f"{binding.describe()}, but {self.place} is another log ({self.log_id}): the log "
                         "was replaced"), False)
            problem, head = self._read_head(conn)
            if head is None:
                return problem, False
            count = head[0]
            if count < binding.count:
                return ((f"{binding.describe()}, but the log now ends at record #{count}: it was rolled back to an "
                         "older copy or truncated"), False)
            pruned = self._pruned_through(conn)
            if binding.count > pruned:
                row = self._one(conn, "SELECT hash FROM {records} WHERE id = ?", [binding.count])
                if row is None:
                    return f"{binding.describe()}, but record #{binding.count} is no longer in the log", False
                if row[0] != binding.hash:
                    return ((f"{binding.describe()}, but record #{binding.count} no longer hashes to what the store "
                             f"recorded ({binding.hash[:16]}): the log was rewritten or replaced"), False)
            # The write's own record follows the head it saw, wherever other writers' records put it.
            found = self._one(conn, f"SELECT id FROM {{records}} WHERE id > ? AND revision = ? AND kind IN "
                                    f"{CHANGE_KINDS} LIMIT 1", [binding.count, binding.revision])
            if found is None and pruned <= binding.count:
                last = self._one(conn, f"SELECT id, revision FROM {{records}} WHERE kind IN {CHANGE_KINDS} "
                                       "ORDER BY id DESC LIMIT 1")
                newest = (f"its last change record is #{last[0]}, of revision {last[1]}" if last is not None
                          else "it records no change at all")
                return ((f"the log has no record of the store's revision {binding.revision} ({newest}): the log "
                         "was rolled back to an older copy, records were removed, or a crash came between the "
                         "write and its record"), True)
            return None, False

    def check_anchor(self, anchor: Anchor) -> tuple[str | None, str | None]:
        """Whether the log still holds ``anchor``'s head: (the problem, or None; a note when it cannot tell)."""
        with self._reading("check an anchor") as conn:
            name = anchor.describe()
            if anchor.log != self.log_id:
                return f"{name} is of another audit log ({anchor.log}; this log is {self.log_id})", None
            problem, head = self._read_head(conn)
            if head is None:
                return problem, None
            if anchor.sequence > head[0]:
                return ((f"{name}: the log now ends at record #{head[0]}, but it had reached #{anchor.sequence} "
                         "then: it was rolled back to an older copy"), None)
            if anchor.sequence == 0:
                return (None if anchor.hash == GENESIS else f"{name}: an empty log's anchor with a hash"), None
            row = self._one(conn, "SELECT hash FROM {records} WHERE id = ?", [anchor.sequence])
            if row is None:
                if anchor.sequence < self._pruned_through(conn):
                    return None, f"{name} falls in the pruned prefix: its record is gone, not checked"
                return f"{name}: record #{anchor.sequence} is no longer in the log", None
            if row[0] != anchor.hash:
                return ((f"{name}: record #{anchor.sequence} no longer hashes to the anchored {anchor.hash[:16]}: "
                         "the log was rewritten, or replaced by another copy"), None)
            return None, None

    def _pruned_through(self, conn: Any) -> int:
        """The last record id a checkpoint stands for (0 when nothing was pruned)."""
        row = self._one(conn, "SELECT body FROM {records} ORDER BY id LIMIT 1")
        if row is None:
            return 0
        try:
            body = json.loads(row[0])
        except (ValueError, TypeError):
            return 0
        through = body.get("through") if isinstance(body, dict) and body.get("kind") == "checkpoint" else 0
        return through if isinstance(through, int) else 0

    # --- queries -----------------------------------------------------------------------

    def get(self, record_id: int) -> AuditRecord:
        """The record with this id; NotFoundError if there is none."""
        with self._reading("read an audit record") as conn:
            row = self._one(conn, f"{_RECORD_COLUMNS} WHERE id = ?", [record_id])
        if row is None:
            raise NotFoundError(f"no audit record #{record_id} in {self.shown} (never written, or pruned)")
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
        with self._reading("query the audit log") as conn:
            rows = conn.execute(self._sql(f"{_RECORD_COLUMNS} WHERE {query.where} ORDER BY id {order} LIMIT ?"),
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
