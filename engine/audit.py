"""The audit trail: a tamper-evident, hash-chained log of decisions and changes, in its own SQLite file.

An :class:`AuditLog` keeps one SQLite file (WAL mode, default ``<database>.audit``
beside the store's file; a temporary file for a ``MemoryStore`` engine). It is
separate from the relationship store, so pruning, exports and verification never
contend with relationship writes. Record kinds (:class:`RecordKind`):

- ``decision``: one check or bulk-check item: time, caller, resource, permission,
  subject, the SHA-256 of the canonical request context, the result, the missing
  context, the revision and its token, the schema digest, optionally the
  explanation's summary lines, and the evaluation latency in µs;
- ``lookup``: one LookupResources / LookupSubjects call, with the number of results;
- ``relationships``: one write, delete or import batch: actor, reason, revision,
  the count and SHA-256 of the changes, and the changes themselves for batches of
  at most :data:`LISTED_CHANGES`;
- ``schema``: one schema write: actor, version, digest and a unified diff of the
  canonical texts;
- ``declassification``: a relationship change on a ``declassify`` relation (one
  per such relationship, besides its batch's ``relationships`` record);
- ``checkpoint``: what :meth:`AuditLog.prune` leaves in place of the pruned prefix.

**The chain.** Record *n*'s ``body`` is the canonical JSON (sorted keys, no
spaces) of its content, including its ``id`` *n*; its ``hash`` is
``sha256(prev_hash + "\\n" + body)`` where ``prev_hash`` is record *n-1*'s hash
(64 zeros for record 1). A one-row ``head`` table holds the number of records
appended so far and the last hash, updated in the same transaction as every
batch, so removing records from the tail is caught too. :meth:`AuditLog.verify`
walks the chain and names the first record that was altered, inserted, removed
or reordered, or where the tail was truncated.

**Recording is off the hot path.** A check puts a small tuple on a bounded queue
and returns; one background thread writes the queue in batches (one transaction
each), at the latest :data:`FLUSH_INTERVAL` seconds after a record was queued,
at once when a batch fills or someone waits, and on :meth:`AuditLog.close`.
With ``durable=True`` the check waits until its record is committed (and
fsynced). See ``docs/audit.md`` for what a crash can lose.

Example::

    >>> log = AuditLog.temporary()
    >>> ticket = log.record_decision(time=datetime(2025, 1, 1, tzinfo=UTC), caller=None,
    ...     resource="doc:1", permission="view", subject="user:ann", context=None,
    ...     result="HAS_PERMISSION", missing_context=(), revision=3, token="hw1_x",
    ...     schema_digest="d", explanation=None, latency_us=12)
    >>> log.flush()
    >>> [(r.id, r.kind.value, r.subject, r.result) for r in log.query().records]
    [(1, 'decision', 'user:ann', 'HAS_PERMISSION')]
    >>> log.verify().ok
    True
    >>> log.close()
"""

from __future__ import annotations

import atexit
import base64
import difflib
import enum
import hashlib
import hmac
import json
import logging
import random
import shutil
import sqlite3
import tempfile
import threading
import time as _time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from .config import Config
from .errors import InvalidRequestError, NotFoundError, StoreError, StoreUnavailableError

__all__ = [
    "FLUSH_INTERVAL",
    "GENESIS",
    "LISTED_CHANGES",
    "AuditLog",
    "AuditPage",
    "AuditRecord",
    "RecordKind",
    "VerifyResult",
    "audit_path_for",
    "canonical_json",
    "changes_digest",
    "context_digest",
    "record_hash",
    "schema_diff",
]

_log = logging.getLogger("headwater.audit")

#: The longest a queued record waits before the background writer commits it (seconds).
FLUSH_INTERVAL = 0.1
#: The hash record 1 links to.
GENESIS = "0" * 64
#: A change batch with more relationships than this is recorded as a count and a SHA-256 only.
LISTED_CHANGES = 1000
_BATCH = 1000  # a queue this long wakes the writer before the flush interval is up
_QUEUE_WAIT = 30.0  # seconds a producer waits for room in a full queue before giving up
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


class RecordKind(enum.Enum):
    """What a record is about."""

    DECISION = "decision"
    LOOKUP = "lookup"
    RELATIONSHIPS = "relationships"
    SCHEMA = "schema"
    DECLASSIFICATION = "declassification"
    CHECKPOINT = "checkpoint"


# --- canonical forms ---------------------------------------------------------------------------


def canonical_json(value: Any) -> str:
    """The one JSON text of ``value`` that hashes: sorted keys, no spaces, UTF-8 kept as is.

    Example::

        >>> canonical_json({"b": 1, "a": [True, None]})
        '{"a":[true,null],"b":1}'
    """
    return _ENCODER.encode(value)


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record_hash(prev_hash: str, body: str) -> str:
    """A record's chain hash: ``sha256(prev_hash + "\\n" + body)`` in hex.

    Example::

        >>> record_hash(GENESIS, '{"id":1}')[:12]
        'cca6fe2b6ac2'
    """
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def context_digest(context: Mapping[str, Any] | None) -> str | None:
    """The SHA-256 of a request context's canonical JSON; None for no (or an empty) context.

    Example::

        >>> context_digest(None) is None, len(context_digest({"ip": "10.0.0.1"}))
        (True, 64)
    """
    if not context:
        return None
    return hashlib.sha256(canonical_json(dict(context)).encode()).hexdigest()


def changes_digest(changes: Sequence[tuple[str, str]]) -> str:
    """The SHA-256 of a batch's changes, as the lines ``"<operation> <relationship>\\n"`` in batch order.

    Example::

        >>> changes_digest([("touch", "doc:1#viewer@user:ann")]) == hashlib.sha256(
        ...     b"touch doc:1#viewer@user:ann\\n").hexdigest()
        True
    """
    h = hashlib.sha256()
    for operation, relationship in changes:
        h.update(f"{operation} {relationship}\n".encode())
    return h.hexdigest()


def schema_diff(old: str | None, new: str) -> str:
    """A unified diff from ``old`` to ``new`` (canonical schema texts; ``old`` None for the first schema).

    Example::

        >>> print(schema_diff("definition user {}\\n", "definition user {}\\ndefinition doc {}\\n"), end="")
        --- schema (before)
        +++ schema (after)
        @@ -1 +1,2 @@
         definition user {}
        +definition doc {}
    """
    return "".join(difflib.unified_diff((old or "").splitlines(True), new.splitlines(True),
                                        "schema (before)", "schema (after)"))


def audit_path_for(database: str | Path) -> Path:
    """Where a store's audit log lives by default: ``<database>.audit`` beside it.

    Example::

        >>> audit_path_for("/var/lib/headwater/h.db").name
        'h.db.audit'
    """
    return Path(f"{database}.audit")


def _iso(moment: datetime) -> str:
    """``2025-01-31T12:00:00.000000Z``: fixed width, so these strings sort like the times they name."""
    offset = moment.utcoffset()
    if offset is None:
        raise InvalidRequestError(f"invalid time {moment!r}: must be timezone-aware")
    if offset:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"  # drop "+00:00"


def _parse_iso(text: str) -> datetime:
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


# --- values ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored record: its place in the chain, its hashes and its content (``body``, as stored).

    The common fields are attributes; every field of the body is also readable with
    ``record["field"]`` or ``record.get("field")``.
    """

    id: int
    kind: RecordKind
    time: datetime
    body: Mapping[str, Any]
    hash: str
    prev_hash: str

    def __getitem__(self, name: str) -> Any:
        return self.body[name]

    def get(self, name: str, default: Any = None) -> Any:
        """A body field, or ``default`` when the record has none."""
        return self.body.get(name, default)

    @property
    def caller(self) -> str | None:
        return self.body.get("caller")

    @property
    def resource(self) -> str | None:
        return self.body.get("resource")

    @property
    def permission(self) -> str | None:
        return self.body.get("permission")

    @property
    def subject(self) -> str | None:
        return self.body.get("subject")

    @property
    def result(self) -> str | None:
        return self.body.get("result")

    @property
    def revision(self) -> int | None:
        return self.body.get("revision")

    def to_json(self) -> str:
        """The record as one JSON Lines line (no newline): the body's fields plus ``hash`` and ``prev_hash``.

        To re-check an exported line: drop ``hash`` and ``prev_hash``, take the canonical JSON of
        the rest, and compare ``record_hash(prev_hash, that)`` with ``hash``.
        """
        return canonical_json({**self.body, "hash": self.hash, "prev_hash": self.prev_hash})

    def describe(self) -> str:
        """One line for a person: id, time, kind and the fields that matter for the kind."""
        b = self.body
        when = b.get("time", "")
        head = f"#{self.id} {when} {self.kind.value}"
        if self.kind is RecordKind.DECISION:
            who = f" caller={b['caller']}" if b.get("caller") else ""
            return (f"{head} {b['resource']}#{b['permission']}@{b['subject']} -> {b['result']} "
                    f"at revision {b['revision']} ({b['latency_us']}µs){who}")
        if self.kind is RecordKind.LOOKUP:
            target = b.get("resource") or b.get("resource_type")
            subject = b.get("subject") or b.get("subject_type")
            return (f"{head} {b['lookup']} {target}#{b['permission']}@{subject} -> {b['count']} results "
                    f"at revision {b['revision']}")
        if self.kind is RecordKind.RELATIONSHIPS:
            actor = f" by {b['actor']}" if b.get("actor") else ""
            reason = f" ({b['reason']})" if b.get("reason") else ""
            return f"{head} {b['operation']} {b['count']} relationships at revision {b['revision']}{actor}{reason}"
        if self.kind is RecordKind.SCHEMA:
            actor = f" by {b['actor']}" if b.get("actor") else ""
            return f"{head} version {b['version']} ({b['digest'][:12]}) at revision {b['revision']}{actor}"
        if self.kind is RecordKind.DECLASSIFICATION:
            return (f"{head} {b['operation']} {b['relationship']} at revision {b['revision']} by {b.get('actor')} "
                    f"({b.get('reason')})")
        return f"{head} {b['pruned']} records pruned through #{b['through']} ({b['signed']})"


@dataclass(frozen=True, slots=True)
class AuditPage:
    """A page of records; ``cursor`` continues the same query, None once there is nothing more."""

    records: list[AuditRecord]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What :meth:`AuditLog.verify` found: ``ok``, or the first bad record (``record_id``) and what is wrong."""

    ok: bool
    records: int  # records walked
    count: int  # the head: records appended so far (the last record's id)
    head_hash: str
    record_id: int | None = None
    problem: str | None = None
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.ok:
            text = f"ok: {self.records} records verified, head #{self.count} {self.head_hash[:16]}"
        else:
            text = f"record {self.record_id}: {self.problem}"
        return "\n".join([text, *(f"note: {n}" for n in self.notes)])


# --- the log -----------------------------------------------------------------------------------

_MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "records and head", (
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
_LATEST = _MIGRATIONS[-1][0]
_MIGRATIONS_TABLE = ("CREATE TABLE IF NOT EXISTS audit_migrations (version INTEGER PRIMARY KEY, "
                     "name TEXT NOT NULL, applied_at TEXT NOT NULL)")

_Pending = tuple[RecordKind, datetime, dict[str, Any]]


class AuditLog:
    """An append-only, hash-chained audit log in one SQLite file; see the module docstring.

    :param path: the SQLite file (``-wal``/``-shm`` files appear beside it).
    :param decisions: which decisions :meth:`wants_decision` selects: ``"all"``, ``"denials"``
      (NO_PERMISSION and CONDITIONAL_PERMISSION), ``"sample:<rate>"`` with 0 <= rate <= 1, or ``"off"``.
    :param explain: which recorded decisions carry an explanation: ``"off"``, ``"denials"`` or ``"all"``.
    :param durable: :meth:`wait` blocks until a record is committed, and commits fsync (SQLite
      ``synchronous=FULL``); otherwise commits survive a process crash but not a power loss (``NORMAL``).
    :param key: signs checkpoints and the head with HMAC-SHA256 (else they carry a plain SHA-256).
    :param queue_size: records queued or being written at most; a producer waits for room beyond it.
    :param create: create the file if it does not exist (else NotFoundError).
    :param clock: the time of checkpoints.
    """

    def __init__(self, path: str | Path, *, decisions: str = "all", explain: str = "off", durable: bool = False,
                 key: str | bytes | None = None, queue_size: int = 10_000, create: bool = True,
                 flush_interval: float = FLUSH_INTERVAL, clock: Callable[[], datetime] | None = None,
                 busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._mode, self._rate = _parse_decisions(decisions)
        if explain not in ("off", "denials", "all"):
            raise InvalidRequestError(f"invalid audit explain policy {explain!r}: use off, denials or all")
        self._explain = explain
        if not isinstance(queue_size, int) or queue_size < 1:
            raise InvalidRequestError(f"invalid audit queue size {queue_size!r}: must be a positive integer")
        self.durable = durable
        self._key = key.encode() if isinstance(key, str) else key
        self._queue_size = queue_size
        self._interval = flush_interval
        self._clock = clock or (lambda: datetime.now(UTC))
        self._busy_timeout = busy_timeout
        self._rng = random.Random()
        self._temporary_dir: Path | None = None
        # queue state, all under _cond
        self._cond = threading.Condition()
        self._pending: list[_Pending] = []
        self._oldest = 0.0  # monotonic time the oldest pending record was queued
        self._submitted = 0  # tickets handed out
        self._committed = 0  # tickets committed (in order: one writer, FIFO)
        self._urgent = False
        self._closing = False
        self._closed = False
        self._error: BaseException | None = None  # the writer's last failure (None once it succeeds again)
        self._failures = 0  # how many times the writer failed
        self._thread: threading.Thread | None = None
        # connections: one per thread (the writer thread has its own)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        if not create and not self.path.exists():
            raise NotFoundError(f"no audit log at {self.path}")
        try:
            with self._connection() as db:
                self._migrate(db)
        except BaseException:
            self._close_connections()
            raise
        atexit.register(self._close_at_exit)

    @classmethod
    def temporary(cls, **kwargs: Any) -> AuditLog:
        """A log in a fresh temporary directory, removed on :meth:`close` (for in-memory engines)."""
        folder = Path(tempfile.mkdtemp(prefix="headwater-audit-"))
        log = cls(folder / "audit.db", **kwargs)
        log._temporary_dir = folder
        return log

    @classmethod
    def from_config(cls, config: Config, database: str | Path | None) -> AuditLog:
        """The log a :class:`~headwater.engine.config.Config` asks for: at ``audit_path``, else beside the
        store's ``database`` file, else (no file: a MemoryStore) a temporary one."""
        options: dict[str, Any] = {
            "decisions": config.audit_decisions, "explain": config.audit_explain, "durable": config.audit_durable,
            "key": config.audit_key, "queue_size": config.audit_queue_size}
        if config.audit_path:
            return cls(config.audit_path, **options)
        if database is None:
            return cls.temporary(**options)
        return cls(audit_path_for(database), **options)

    # --- policy (the hot path) -----------------------------------------------------------

    def wants_decision(self, allowed: bool) -> bool:
        """Whether the policy records a decision (``allowed``: it was HAS_PERMISSION)."""
        mode = self._mode
        if mode == "all":
            return True
        if mode == "off":
            return False
        if mode == "denials":
            return not allowed
        return self._rng.random() < self._rate

    def wants_lookups(self) -> bool:
        """Whether the policy records a lookup call (under ``all`` and ``sample``, not ``denials``)."""
        mode = self._mode
        if mode == "all":
            return True
        if mode == "sample":
            return self._rng.random() < self._rate
        return False

    def wants_explanation(self, allowed: bool) -> bool:
        """Whether a recorded decision carries its explanation's summary."""
        return self._explain == "all" or (self._explain == "denials" and not allowed)

    # --- recording ---------------------------------------------------------------------

    def record_decision(self, *, time: datetime, caller: str | None, resource: str, permission: str, subject: str,
                        context: Mapping[str, Any] | None, result: str, missing_context: Sequence[str],
                        revision: int, token: str, schema_digest: str, explanation: Sequence[str] | None,
                        latency_us: int) -> int:
        """Queue a decision record; returns its ticket (for :meth:`wait`)."""
        return self._submit(RecordKind.DECISION, time, {
            "caller": caller, "resource": resource, "permission": permission, "subject": subject,
            "context_sha256": context_digest(context) if context else None, "result": result,
            "missing_context": list(missing_context), "revision": revision, "token": token,
            "schema_digest": schema_digest, "explanation": list(explanation) if explanation is not None else None,
            "latency_us": latency_us})

    def record_lookup(self, *, time: datetime, caller: str | None, lookup: str, permission: str,
                      context: Mapping[str, Any] | None, count: int, continued: bool, revision: int, token: str,
                      schema_digest: str, latency_us: int, resource: str | None = None,
                      resource_type: str | None = None, subject: str | None = None,
                      subject_type: str | None = None) -> int:
        """Queue a lookup record (``lookup``: "resources" or "subjects"; ``count``: results returned)."""
        return self._submit(RecordKind.LOOKUP, time, {
            "caller": caller, "lookup": lookup, "resource": resource, "resource_type": resource_type,
            "permission": permission, "subject": subject, "subject_type": subject_type,
            "context_sha256": context_digest(context) if context else None, "count": count, "continued": continued,
            "revision": revision, "token": token, "schema_digest": schema_digest, "latency_us": latency_us})

    def record_relationships(self, *, time: datetime, operation: str, actor: str | None, reason: str | None,
                             revision: int, token: str, changes: Sequence[tuple[str, str]],
                             filter: str | None = None, partial: bool | None = None,
                             count: int | None = None) -> int:
        """Queue a change-batch record; ``changes`` are (operation, relationship text) pairs.

        Batches of more than :data:`LISTED_CHANGES` keep only their count and digest.
        """
        listed = [list(c) for c in changes] if len(changes) <= LISTED_CHANGES else None
        fields: dict[str, Any] = {
            "actor": actor, "reason": reason, "operation": operation, "revision": revision, "token": token,
            "count": len(changes) if count is None else count, "changes_sha256": changes_digest(changes),
            "changes": listed}
        if filter is not None:
            fields["filter"] = filter
            fields["partial"] = bool(partial)
        return self._submit(RecordKind.RELATIONSHIPS, time, fields)

    def record_declassification(self, *, time: datetime, actor: str | None, reason: str | None, revision: int,
                                token: str, operation: str, relationship: str, resource: str, subject: str,
                                relation: str) -> int:
        """Queue a declassification record (a change on a ``declassify`` relation)."""
        classification, _, value = subject.partition(":")
        return self._submit(RecordKind.DECLASSIFICATION, time, {
            "actor": actor, "reason": reason, "revision": revision, "token": token, "operation": operation,
            "relationship": relationship, "resource": resource, "subject": subject, "relation": relation,
            "classification": classification, "value": value})

    def record_schema(self, *, time: datetime, actor: str | None, revision: int, token: str, version: int,
                      digest: str, previous_digest: str | None, old_text: str | None, new_text: str) -> int:
        """Queue a schema-change record with the unified diff of the canonical texts."""
        return self._submit(RecordKind.SCHEMA, time, {
            "actor": actor, "revision": revision, "token": token, "version": version, "digest": digest,
            "previous_digest": previous_digest, "diff": schema_diff(old_text, new_text)})

    def _submit(self, kind: RecordKind, when: datetime, fields: dict[str, Any], *, urgent: bool = False) -> int:
        with self._cond:
            if self._closing:
                raise StoreError(f"the audit log at {self.path} is closed")
            if self._submitted - self._committed >= self._queue_size:
                self._urgent = True
                self._cond.notify_all()
                deadline = _time.monotonic() + _QUEUE_WAIT
                while self._submitted - self._committed >= self._queue_size and not self._closing:
                    left = deadline - _time.monotonic()
                    if left <= 0:
                        raise StoreUnavailableError(
                            f"the audit log at {self.path} is not keeping up ({self._queue_size} records queued"
                            + (f"; last error: {self._error}" if self._error else "") + "); retry later")
                    self._cond.wait(left)
            if not self._pending:
                self._oldest = _time.monotonic()
            self._pending.append((kind, when, fields))
            self._submitted += 1
            ticket = self._submitted
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"headwater-audit-writer:{self.path.name}",
                                                daemon=True)
                self._thread.start()
            if urgent or len(self._pending) >= _BATCH:
                self._urgent = self._urgent or urgent
                self._cond.notify_all()
            return ticket

    def wait(self, ticket: int) -> None:
        """Return once the record with ``ticket`` is committed, if the log is durable; else at once."""
        if self.durable:
            self._wait_for(ticket)

    def flush(self) -> None:
        """Write everything queued so far and wait until it is committed."""
        with self._cond:
            target = self._submitted
        self._wait_for(target)

    def _wait_for(self, ticket: int) -> None:
        with self._cond:
            if self._committed >= ticket:
                return
            self._urgent = True
            self._cond.notify_all()
            failures = self._failures
            while self._committed < ticket:
                if self._failures != failures and self._error is not None:
                    raise StoreUnavailableError(f"the audit log at {self.path} cannot be written ({self._error}); "
                                                "the record stays queued and is written when it recovers")
                if self._thread is None or not self._thread.is_alive():
                    raise StoreError(f"the audit log at {self.path} is closed; record {ticket} was not written")
                self._cond.wait(0.5)

    # --- the writer thread -------------------------------------------------------------

    def _run(self) -> None:
        try:
            db = self._connect()
        except BaseException as exc:  # noqa: BLE001 - reported to waiters
            with self._cond:
                self._error = exc
                self._cond.notify_all()
            return
        try:
            while True:
                with self._cond:
                    while True:
                        if self._pending:
                            due = self._oldest + self._interval
                            now = _time.monotonic()
                            if self._urgent or self._closing or len(self._pending) >= _BATCH or now >= due:
                                break
                            self._cond.wait(due - now)
                        elif self._closing:
                            return
                        else:
                            self._cond.wait()
                    batch, self._pending = self._pending, []
                    self._urgent = False
                try:
                    self._append(db, batch)
                except Exception as exc:  # noqa: BLE001 - kept queued, retried, reported to waiters
                    _log.error("cannot write %d audit records to %s: %s", len(batch), self.path, exc)
                    with self._cond:
                        self._pending[:0] = batch
                        self._oldest = _time.monotonic()
                        self._error = exc
                        self._failures += 1
                        self._cond.notify_all()
                        if self._closing:
                            _log.error("audit log %s closed with %d records unwritten", self.path,
                                       len(self._pending))
                            return
                    _time.sleep(self._interval)
                    continue
                with self._cond:
                    self._committed += len(batch)
                    self._error = None
                    self._cond.notify_all()
        finally:
            try:
                db.close()
            except sqlite3.Error:
                pass

    def _append(self, db: sqlite3.Connection, batch: list[_Pending]) -> None:
        """Append ``batch`` to the chain in one transaction (reading the head inside it, so several
        processes appending to one file still form one chain)."""
        with self._translated("append audit records"), _transaction(db, "BEGIN IMMEDIATE"):
            count, last = db.execute("SELECT count, hash FROM head WHERE one = 1").fetchone()
            rows = []
            encode, sha256 = _ENCODER.encode, hashlib.sha256
            for kind, when, fields in batch:
                count += 1
                fields["id"], fields["kind"], fields["time"] = count, kind.value, _iso(when)
                body = encode(fields)
                h = sha256(f"{last}\n{body}".encode()).hexdigest()
                rows.append((count, body, last, h))
                last = h
            db.executemany("INSERT INTO records (id, body, prev_hash, hash) VALUES (?, ?, ?, ?)", rows)
            db.execute("UPDATE head SET count = ?, hash = ?, mac = ? WHERE one = 1",
                       (count, last, self._head_mac(count, last)))

    # --- verification ------------------------------------------------------------------

    def head(self) -> tuple[int, str]:
        """(records appended so far, the last record's hash): write it down elsewhere to anchor the log."""
        with self._connection() as db, self._translated("read the audit head"):
            count, last = db.execute("SELECT count, hash FROM head WHERE one = 1").fetchone()
            return count, last

    def verify(self) -> VerifyResult:
        """Walk the whole chain and report the first record that is wrong (see the module docstring)."""
        with self._connection() as db, self._translated("verify the audit log"), _transaction(db, "BEGIN"):
            return self._walk(db, None)

    def _walk(self, db: sqlite3.Connection, through: int | None) -> VerifyResult:
        count, head_hash, mac = db.execute("SELECT count, hash, mac FROM head WHERE one = 1").fetchone()
        notes: list[str] = []

        def bad(record_id: int, problem: str, walked: int) -> VerifyResult:
            return VerifyResult(False, walked, count, head_hash, record_id, problem, tuple(notes))

        if self._key is not None:
            if not hmac.compare_digest(mac, self._head_mac(count, head_hash)):
                return bad(count, "the head (record count and last hash) is not signed with this log's key: "
                                  "it was rewritten, or the key is wrong", 0)
        elif mac:
            notes.append("the head carries an HMAC; no key was given, so it was not checked")
        sql = "SELECT id, body, prev_hash, hash FROM records"
        if through is not None:
            sql += f" WHERE id <= {int(through)}"
        rows = db.execute(sql + " ORDER BY id")
        prev_id: int | None = None
        prev_hash = GENESIS
        walked = 0
        for row_id, body, row_prev, row_hash in rows:
            walked += 1
            try:
                content = json.loads(body)
            except ValueError:
                return bad(row_id, "altered: its content is not valid JSON", walked)
            if not isinstance(content, dict):
                return bad(row_id, "altered: its content is not a JSON object", walked)
            if content.get("kind") == RecordKind.CHECKPOINT.value:
                if prev_id is not None:
                    return bad(row_id, "inserted: a checkpoint may only start the log, and this one follows "
                                       f"record {prev_id}", walked)
                problem = self._check_checkpoint(row_id, content, row_hash, notes)
                if problem is not None:
                    return bad(row_id, problem, walked)
                prev_id, prev_hash = row_id, row_hash
                continue
            if record_hash(row_prev, body) != row_hash:
                return bad(row_id, "altered: its content no longer matches its hash", walked)
            if row_prev != prev_hash:
                return bad(*self._diagnose_link(db, row_id, row_prev, prev_id), walked)
            if content.get("id") != row_id:
                claimed = content.get("id")
                return bad(claimed if isinstance(claimed, int) else row_id,
                           f"renumbered: record #{claimed} sits at #{row_id} (records were moved)", walked)
            if prev_id is not None and row_id != prev_id + 1:
                return bad(prev_id + 1, f"removed: the log jumps from #{prev_id} to #{row_id}", walked)
            if prev_id is None and row_id != 1:
                return bad(1, f"removed: the log starts at #{row_id} with no checkpoint for the records "
                              "before it", walked)
            prev_id, prev_hash = row_id, row_hash
        if through is not None:
            return VerifyResult(True, walked, count, head_hash, notes=tuple(notes))
        last = prev_id or 0
        if last < count:
            return bad(last + 1, f"removed from the tail: the log ends at #{last} but its head says {count} "
                                 f"records were appended (records #{last + 1}..#{count} are gone)", walked)
        if last > count:
            return bad(count + 1, f"inserted at the tail: the head says {count} records were appended, "
                                  f"but the log goes on to #{last}", walked)
        if prev_hash != head_hash:
            return bad(last, "altered: the last record's hash does not match the head", walked)
        return VerifyResult(True, walked, count, head_hash, notes=tuple(notes))

    def _diagnose_link(self, db: sqlite3.Connection, row_id: int, row_prev: str,
                       prev_id: int | None) -> tuple[int, str]:
        """Why record ``row_id`` does not link to the record before it: which record to blame, and how."""
        found = db.execute("SELECT id FROM records WHERE hash = ? ORDER BY id LIMIT 1", [row_prev]).fetchone()
        if found is not None and prev_id is not None and found[0] < prev_id:
            first = found[0] + 1
            return first, (f"inserted: #{row_id} links to #{found[0]}, so the record(s) #{first}..#{prev_id} "
                           "between them were inserted")
        if found is not None and found[0] > row_id:
            return row_id, f"reordered: #{row_id} links to #{found[0]}, which comes after it"
        if prev_id is None:
            if row_prev == GENESIS:
                return row_id, "altered: it claims to be the first record"
            return row_id - 1, (f"removed: the log starts at #{row_id}; #{row_id - 1} and the records before it "
                                "are gone and no checkpoint stands for them")
        if row_id > prev_id + 1:
            return prev_id + 1, f"removed: #{row_id} links to a record that is no longer in the log"
        return prev_id, (f"altered: #{row_id} links to a different #{prev_id} than the one stored (its content "
                         "and hash were both rewritten)")

    def _check_checkpoint(self, row_id: int, content: dict[str, Any], row_hash: str, notes: list[str]) -> str | None:
        signed = {k: v for k, v in content.items() if k != "signature"}
        scheme = content.get("signed")
        if content.get("id") != row_id or content.get("through") != row_id:
            return f"altered: a checkpoint at #{row_id} that says it covers #{content.get('through')}"
        if content.get("prefix_hash") != row_hash:
            return "altered: the checkpoint's hash is not the pruned prefix's hash it records"
        if scheme == "hmac-sha256":
            if self._key is None:
                notes.append(f"checkpoint #{row_id} is HMAC-signed; no key was given, so it was not checked")
                return None
            expected = _sign(self._key, signed)[1]
        elif scheme == "sha256":
            if self._key is not None:
                return "altered: the checkpoint carries a plain hash where this log's key should have signed it"
            expected = _sign(None, signed)[1]
        else:
            return f"altered: unknown checkpoint signature scheme {scheme!r}"
        if not hmac.compare_digest(str(content.get("signature", "")), expected):
            return "altered: the checkpoint's signature does not match its content"
        return None

    def _head_mac(self, count: int, last: str) -> str:
        if self._key is None:
            return ""
        return hmac.new(self._key, f"{count}:{last}".encode(), hashlib.sha256).hexdigest()

    # --- retention ---------------------------------------------------------------------

    def prune(self, before: datetime) -> AuditRecord | None:
        """Delete the records older than ``before`` (the longest such prefix) and leave a checkpoint.

        The prefix is verified first (a log that does not verify is not pruned: StoreError);
        the checkpoint takes the id and hash of the last pruned record, so the records after
        it still verify, and records that ``records 1..n were verified and pruned, and the chain
        through n hashed to H``, signed (HMAC-SHA256 with the log's key, else a plain SHA-256).
        Returns the checkpoint, or None when nothing is old enough.
        """
        cutoff = _iso(before)
        with self._connection() as db, self._translated("prune the audit log"), \
                _transaction(db, "BEGIN IMMEDIATE"):
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
                raise StoreError(f"refusing to prune the audit log at {self.path}: it does not verify "
                                 f"(record {check.record_id}: {check.problem})")
            pruned_now = db.execute("SELECT count(*) FROM records WHERE id <= ? AND kind != 'checkpoint'",
                                    [through]).fetchone()[0]
            fields: dict[str, Any] = {
                "id": through, "kind": RecordKind.CHECKPOINT.value, "time": _iso(self._clock()), "before": cutoff,
                "through": through, "pruned": through, "pruned_now": pruned_now, "prefix_hash": row[1],
                "signed": "hmac-sha256" if self._key is not None else "sha256"}
            fields["signature"] = _sign(self._key, fields)[1]
            db.execute("DELETE FROM records WHERE id <= ?", [through])
            body = canonical_json(fields)
            db.execute("INSERT INTO records (id, body, prev_hash, hash) VALUES (?, ?, '', ?)", [through, body, row[1]])
            return AuditRecord(through, RecordKind.CHECKPOINT, _parse_iso(fields["time"]), fields, row[1], "")

    # --- queries -----------------------------------------------------------------------

    def get(self, record_id: int) -> AuditRecord:
        """The record with this id; NotFoundError if there is none (never written, or pruned)."""
        self.flush()
        with self._connection() as db, self._translated("read an audit record"):
            row = db.execute("SELECT id, body, prev_hash, hash FROM records WHERE id = ?", [record_id]).fetchone()
        if row is None:
            raise NotFoundError(f"no audit record #{record_id} in {self.path} (never written, or pruned)")
        return _record(row)

    def query(self, *, kind: RecordKind | str | None = None, subject: str | None = None, resource: str | None = None,
              permission: str | None = None, result: str | None = None, caller: str | None = None,
              actor: str | None = None, since: datetime | None = None, until: datetime | None = None,
              revision: int | None = None, min_revision: int | None = None, max_revision: int | None = None,
              limit: int = 100, cursor: str | None = None, newest_first: bool = False) -> AuditPage:
        """A page of records matching every filter given, in chain order (or newest first).

        ``since`` is inclusive and ``until`` exclusive; ``revision`` matches exactly,
        ``min_revision``/``max_revision`` inclusively. ``cursor`` continues a previous page of
        the same query (InvalidRequestError for another query's cursor). What this process has
        queued is written first, so a query sees every record recorded before it.
        """
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
                params.append(_iso(moment))
        query_id = hashlib.sha256(canonical_json([clauses, params, newest_first]).encode()).hexdigest()[:12]
        if cursor is not None:
            after = _decode_cursor(cursor, query_id)
            clauses.append("id < ?" if newest_first else "id > ?")
            params.append(after)
        where = " AND ".join(clauses) or "1 = 1"
        order = "DESC" if newest_first else "ASC"
        self.flush()
        with self._connection() as db, self._translated("query the audit log"):
            rows = db.execute(f"SELECT id, body, prev_hash, hash FROM records WHERE {where} ORDER BY id {order} "
                              "LIMIT ?", [*params, limit + 1]).fetchall()
        records = [_record(r) for r in rows[:limit]]
        next_cursor = _encode_cursor(records[-1].id, query_id) if len(rows) > limit else None
        return AuditPage(records, next_cursor)

    def iterate(self, *, page_size: int = 1000, **filters: Any) -> Iterator[AuditRecord]:
        """Every record matching ``filters`` (as for :meth:`query`), page by page."""
        cursor = None
        while True:
            page = self.query(limit=page_size, cursor=cursor, **filters)
            yield from page.records
            if page.cursor is None:
                return
            cursor = page.cursor

    def export(self, target: TextIO, **filters: Any) -> int:
        """Write the matching records to ``target`` as JSON Lines (see :meth:`AuditRecord.to_json`); returns how
        many."""
        n = 0
        for record in self.iterate(**filters):
            target.write(record.to_json() + "\n")
            n += 1
        return n

    # --- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Write everything queued, stop the writer and close every connection (idempotent)."""
        with self._cond:
            if self._closed:
                return
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._cond:
            self._closed = True
        self._close_connections()
        atexit.unregister(self._close_at_exit)
        if self._temporary_dir is not None:
            shutil.rmtree(self._temporary_dir, ignore_errors=True)

    def _close_at_exit(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: report, never raise
            _log.exception("closing the audit log at %s", self.path)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pending(self) -> int:
        """Records queued or being written, not yet committed."""
        with self._cond:
            return self._submitted - self._committed

    # --- connections -------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        with self._translated("open the audit log"):
            db = sqlite3.connect(str(self.path), timeout=self._busy_timeout, isolation_level=None,
                                 check_same_thread=False)
            try:
                mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"cannot open the audit log at {self.path}: WAL mode unavailable ({mode})")
                db.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
                db.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
            except BaseException:
                db.close()
                raise
        with self._connections_lock:
            self._connections.append(db)
        return db

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection (opened on demand)."""
        if self._closed:
            raise StoreError(f"the audit log at {self.path} is closed")
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        yield db

    def _close_connections(self) -> None:
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for db in connections:
            try:
                db.close()
            except sqlite3.Error:
                pass

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            primary = code & 0xFF if isinstance(code, int) else None
            if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in str(exc):
                raise StoreUnavailableError(f"cannot {action}: the audit log at {self.path} is busy ({exc})") from exc
            raise StoreError(f"cannot {action}: the audit log at {self.path} failed ({exc})") from exc

    def _migrate(self, db: sqlite3.Connection) -> None:
        with self._translated("open the audit log"), _transaction(db, "BEGIN IMMEDIATE"):
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "audit_migrations" not in tables:
                raise StoreError(f"cannot open the audit log at {self.path}: it is a database of something else "
                                 f"(tables {sorted(tables)})")
            db.execute(_MIGRATIONS_TABLE)
            applied = db.execute("SELECT coalesce(max(version), 0) FROM audit_migrations").fetchone()[0]
            if applied > _LATEST:
                raise StoreError(f"cannot open the audit log at {self.path}: it was written by a newer Headwater "
                                 f"(layout version {applied}; this version knows up to {_LATEST})")
            for version, name, statements in _MIGRATIONS:
                if version > applied:
                    for statement in statements:
                        db.execute(statement)
                    db.execute("INSERT INTO audit_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                               [version, name, _iso(datetime.now(UTC))])


# --- helpers -----------------------------------------------------------------------------------


def _parse_decisions(policy: str) -> tuple[str, float]:
    if policy in ("all", "denials", "off"):
        return policy, 1.0
    if isinstance(policy, str) and policy.startswith("sample:"):
        try:
            rate = float(policy[len("sample:"):])
        except ValueError:
            rate = -1.0
        if 0.0 <= rate <= 1.0:
            return "sample", rate
    raise InvalidRequestError(f"invalid audit decisions policy {policy!r}: use all, denials, off or sample:<rate> "
                              "with a rate between 0 and 1")


def _sign(key: bytes | None, fields: Mapping[str, Any]) -> tuple[str, str]:
    """(scheme, signature) of ``fields`` without their ``signature``."""
    text = canonical_json({k: v for k, v in fields.items() if k != "signature"}).encode()
    if key is None:
        return "sha256", hashlib.sha256(text).hexdigest()
    return "hmac-sha256", hmac.new(key, text, hashlib.sha256).hexdigest()


def _record(row: Sequence[Any]) -> AuditRecord:
    body = json.loads(row[1])
    try:
        kind = RecordKind(body.get("kind"))
    except ValueError:
        raise StoreError(f"audit record #{row[0]} has an unknown kind {body.get('kind')!r}") from None
    return AuditRecord(row[0], kind, _parse_iso(body["time"]), body, row[3], row[2])


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


@contextmanager
def _transaction(db: sqlite3.Connection, begin: str) -> Iterator[None]:
    db.execute(begin)
    try:
        yield
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    try:
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
