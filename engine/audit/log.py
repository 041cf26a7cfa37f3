"""The :class:`AuditLog` facade: the recording policy, the ``record_*`` methods, queries, verification and pruning.

It ties the parts together: :mod:`.records` (what is stored), :mod:`.chain` (the
hash chain's rules), :mod:`.writer` (the queue and the background writer) and
the storage: :mod:`.storage` (a SQLite file) or :mod:`.pg_storage` (the tables of
a PostgreSQL database), both :mod:`.sql_storage`. See the package docstring for
the whole story.
"""

from __future__ import annotations

import atexit
import logging
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from time import monotonic as _monotonic
from time import sleep as _sleep
from typing import Any, TextIO

from ..config import Config
from ..dburi import is_postgres_uri, redact
from ..errors import InvalidRequestError, NotFoundError, StoreError, StoreUnavailableError
from .anchors import Anchor
from .binding import AuditBinding, binding_metadata
from .chain import Chain
from .records import (
    LISTED_CHANGES,
    AuditPage,
    AuditRecord,
    RecordKind,
    VerifyResult,
    changes_digest,
    context_digest,
    iso_time,
    schema_diff,
)
from .sql_storage import AuditStorage
from .storage import SqliteAuditStorage, audit_path_for
from .writer import FLUSH_INTERVAL, RecordWriter

__all__ = ["CONTINUITY_WAIT", "AuditLog", "audit_location_for", "located"]

_log = logging.getLogger("headwater.audit")

#: Seconds a log whose store's last change has no record yet is given before that counts as a break: the
#: record follows the store's commit within milliseconds when another process is writing right now.
CONTINUITY_WAIT = 2.0


def audit_location_for(database: str | Path) -> str | Path:
    """Where a store's audit log lives by default: ``<database>.audit`` beside a SQLite file, in the database
    itself for a PostgreSQL URI.

    Example::

        >>> audit_location_for("/var/lib/headwater/h.db").name, audit_location_for("postgresql://db/h")
        ('h.db.audit', 'postgresql://db/h')
    """
    return str(database) if is_postgres_uri(str(database)) else audit_path_for(database)


def located(location: str | Path) -> str:
    """Where the log at ``location`` is, for messages: ``at <file>``, or ``in <URI without its password>``.

    Example::

        >>> located("postgresql://ann:s3cret@db/h"), located("/var/h.db.audit")
        ('in postgresql://ann:***@db/h', 'at /var/h.db.audit')
    """
    return f"in {redact(location)}" if isinstance(location, str) and is_postgres_uri(location) else f"at {location}"


class AuditLog:
    """An append-only, hash-chained audit log in one SQLite file or a PostgreSQL database; see the package
    docstring.

    :param path: the SQLite file (``-wal``/``-shm`` files appear beside it), or a ``postgresql://`` URI: the
      log is then the ``audit_*`` tables of that database (``headwater migrate`` creates them), shared by every
      server over it.
    :param decisions: which decisions :meth:`wants_decision` selects: ``"all"``, ``"denials"``
      (NO_PERMISSION and CONDITIONAL_PERMISSION), ``"sample:<rate>"`` with 0 <= rate <= 1, or ``"off"``.
    :param explain: which recorded decisions carry an explanation: ``"off"``, ``"denials"`` or ``"all"``.
    :param durable: :meth:`wait` blocks until a record is committed, and commits fsync (SQLite
      ``synchronous=FULL``); otherwise commits survive a process crash but not a power loss (``NORMAL``).
      PostgreSQL commits as the server's ``synchronous_commit`` says.
    :param key: signs checkpoints and the head with HMAC-SHA256 (else they carry a plain SHA-256).
    :param queue_size: records queued or being written at most; a producer waits for room beyond it.
    :param create: create the file, or start the log in the database, if there is none (else NotFoundError).
    :param clock: the time of checkpoints.
    :param busy_timeout: SQLite: seconds to wait for another writer.
    :param pool_timeout: PostgreSQL: seconds to wait for a connection.
    :param statement_timeout: PostgreSQL: seconds one statement may run.
    """

    def __init__(self, path: str | Path, *, decisions: str = "all", explain: str = "off", durable: bool = False,
                 key: str | bytes | None = None, queue_size: int = 10_000, create: bool = True,
                 flush_interval: float = FLUSH_INTERVAL, clock: Callable[[], datetime] | None = None,
                 busy_timeout: float = 5.0, pool_timeout: float = 5.0, statement_timeout: float = 30.0) -> None:
        self._mode, self._rate = _parse_decisions(decisions)
        if explain not in ("off", "denials", "all"):
            raise InvalidRequestError(f"invalid audit explain policy {explain!r}: use off, denials or all")
        self._explain = explain
        if not isinstance(queue_size, int) or queue_size < 1:
            raise InvalidRequestError(f"invalid audit queue size {queue_size!r}: must be a positive integer")
        self.durable = durable
        self._clock = clock or (lambda: datetime.now(UTC))
        self._rng = random.Random()
        self._temporary_dir: Path | None = None
        chain = Chain(key.encode() if isinstance(key, str) else key)
        self._storage: AuditStorage
        if isinstance(path, str) and is_postgres_uri(path):
            from .pg_storage import PostgresAuditStorage  # loads the PostgreSQL driver only when it is used

            #: The log's SQLite file; None for a log in a PostgreSQL database.
            self.path: Path | None = None
            self._storage = PostgresAuditStorage(path, chain=chain, create=create, pool_timeout=pool_timeout,
                                                 statement_timeout=statement_timeout)
        else:
            self.path = Path(path)
            self._storage = SqliteAuditStorage(self.path, chain=chain, durable=durable, busy_timeout=busy_timeout,
                                               create=create)
        self._writer = RecordWriter(self._storage.place, connect=self._storage.connect,
                                    append=self._storage.append, queue_size=queue_size, interval=flush_interval)
        atexit.register(self._close_at_exit)

    @classmethod
    def temporary(cls, **kwargs: Any) -> AuditLog:
        """A log in a fresh temporary directory, removed on :meth:`close` (for in-memory engines)."""
        folder = Path(tempfile.mkdtemp(prefix="headwater-audit-"))
        log = cls(folder / "audit.db", **kwargs)
        log._temporary_dir = folder
        return log

    @classmethod
    def from_config(cls, config: Config, database: str | Path | None, *, create: bool = True) -> AuditLog:
        """The log a :class:`~headwater.engine.config.Config` asks for: at its audit ``path`` (a SQLite file),
        else beside the store's ``database`` file or in its PostgreSQL database (:func:`audit_location_for`),
        else (no database: a MemoryStore) a temporary file."""
        settings = config.audit
        options: dict[str, Any] = {
            "decisions": settings.decisions, "explain": settings.explain, "durable": settings.durable,
            "key": settings.resolved_key(), "queue_size": settings.queue_size, "create": create}
        if settings.path:
            return cls(Path(settings.path), **options)
        if database is None:
            return cls.temporary(**options)
        storage = config.storage
        return cls(audit_location_for(database), pool_timeout=storage.pool_timeout.total_seconds(),
                   statement_timeout=storage.statement_timeout.total_seconds(), **options)

    @property
    def place(self) -> str:
        """``the audit log at <file or URI without its password>``, for messages."""
        return self._storage.place

    @property
    def log_id(self) -> str:
        """The log's identity: a random id created with the log and kept in it."""
        return self._storage.log_id

    @property
    def signed(self) -> bool:
        """Whether this log signs its head (it was opened with a key)."""
        return self._storage.keyed

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
        return self._writer.submit(RecordKind.DECISION, time, {
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
        return self._writer.submit(RecordKind.LOOKUP, time, {
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
        return self._writer.submit(RecordKind.RELATIONSHIPS, time, fields)

    def record_declassification(self, *, time: datetime, actor: str | None, reason: str | None, revision: int,
                                token: str, operation: str, relationship: str, resource: str, subject: str,
                                relation: str) -> int:
        """Queue a declassification record (a change on a ``declassify`` relation)."""
        classification, _, value = subject.partition(":")
        return self._writer.submit(RecordKind.DECLASSIFICATION, time, {
            "actor": actor, "reason": reason, "revision": revision, "token": token, "operation": operation,
            "relationship": relationship, "resource": resource, "subject": subject, "relation": relation,
            "classification": classification, "value": value})

    def record_schema(self, *, time: datetime, actor: str | None, revision: int, token: str, version: int,
                      digest: str, previous_digest: str | None, old_text: str | None, new_text: str) -> int:
        """Queue a schema-change record with the unified diff of the canonical texts."""
        return self._writer.submit(RecordKind.SCHEMA, time, {
            "actor": actor, "revision": revision, "token": token, "version": version, "digest": digest,
            "previous_digest": previous_digest, "diff": schema_diff(old_text, new_text)})

    def wait(self, ticket: int) -> None:
        """Return once the record with ``ticket`` is committed, if the log is durable; else at once."""
        if self.durable:
            self._writer.wait_for(ticket)

    def flush(self) -> None:
        """Write everything queued so far and wait until it is committed."""
        self._writer.flush()

    @property
    def pending(self) -> int:
        """Records queued or being written, not yet committed."""
        return self._writer.pending

    def stats(self) -> dict[str, Any]:
        """The writer's queue and counters (:meth:`.writer.RecordWriter.stats`), for the metrics."""
        return self._writer.stats()

    # --- verification and retention ------------------------------------------------------

    def head(self) -> tuple[int, str]:
        """(records appended so far, the last record's hash): write it down elsewhere to anchor the log."""
        return self._storage.head()

    def verify(self, *, binding: AuditBinding | None = None, anchors: Sequence[Anchor] = ()) -> VerifyResult:
        """Walk the whole chain and report the first problem (see the package docstring).

        A signed log verified without its key fails (a re-hashed forgery would pass otherwise). With
        ``binding`` (what the store's head revision recorded), the log must also continue the store:
        be the same log, hold the record the store saw last, and record the store's last change.
        Each of ``anchors`` must still be in the log: the record at its sequence hashes to its hash.
        """
        result = self._storage.verify()
        if not result.ok:
            return result

        def failed(problem: str) -> VerifyResult:
            return VerifyResult(False, result.records, result.count, result.head_hash, None, problem, result.notes)

        notes = list(result.notes)
        if binding is not None:
            if binding.signed and not self.signed:
                return failed(f"{binding.describe()}, a signed log; give its key (HEADWATER_AUDIT_KEY) to verify it")
            problem = self.continues(binding)
            if problem is not None:
                return failed(problem)
        for anchor in anchors:
            if anchor.signed is not None and not self._chain_checks(anchor):
                return failed(f"{anchor.describe()} is signed, and its signature does not match: it was forged, "
                              "or the key is another one" if self.signed else
                              f"{anchor.describe()} is signed, but no key was given to check it (HEADWATER_AUDIT_KEY)")
            problem, note = self._storage.check_anchor(anchor)
            if problem is not None:
                return failed(problem)
            if note is not None:
                notes.append(note)
        return VerifyResult(True, result.records, result.count, result.head_hash, notes=tuple(notes))

    @classmethod
    def verify_file(cls, path: str | Path, *, key: str | bytes | None = None, binding: AuditBinding | None = None,
                    anchors: Sequence[Anchor] = ()) -> VerifyResult:
        """:meth:`verify` the log at ``path`` (a file or a PostgreSQL URI), where a log that cannot be read is a
        failed result too (no log: NotFoundError, unless ``binding`` says the store was written with a log)."""
        try:
            log = cls(path, create=False, key=key)
        except NotFoundError:
            if binding is None:
                raise NotFoundError(f"no audit log {located(path)} (start one with: headwater audit init --db "
                                    "DATABASE)") from None
            return VerifyResult(False, 0, 0, "", None,
                                f"{binding.describe()}, but there is no audit log {located(path)}")
        except StoreUnavailableError:
            raise
        except StoreError as exc:
            shown = redact(path) if isinstance(path, str) else path
            return VerifyResult(False, 0, 0, "", None, f"{shown} is not a readable audit log ({exc})")
        with log:
            return log.verify(binding=binding, anchors=anchors)

    def _chain_checks(self, anchor: Anchor) -> bool:
        return self._storage.chain_checks(anchor.fields())

    # --- the store and anchors (binding.py, anchors.py) -------------------------------------------

    def revision_metadata(self) -> dict[str, str]:
        """What a store revision written now records about this log (binding.py): its id and its head."""
        count, last = self._storage.head()
        return binding_metadata(self.log_id, count, last, self.signed)

    def continues(self, binding: AuditBinding, *, wait: float = CONTINUITY_WAIT) -> str | None:
        """None when this log continues what the store recorded in ``binding``, else what is wrong.

        A change whose record is missing may be another process's write whose record is on its way:
        that is checked again for up to ``wait`` seconds before it counts.
        """
        self.flush()
        deadline = _monotonic() + wait
        while True:
            problem, retry = self._storage.continuity(binding)
            if problem is None or not retry or _monotonic() >= deadline:
                return problem
            _sleep(0.05)

    def key_problem(self, binding: AuditBinding | None = None) -> str | None:
        """Why this log may not be written with the key it was opened with (None: it may): a signed head and
        no key (records would go unsigned), a head another key signed, or a store that was written with a
        signed log whose head now carries no signature."""
        count, last, mac = self._storage.signed_head()
        if mac and not self.signed:
            return (f"{self.place} is signed (its head carries an HMAC): give its key "
                    "(HEADWATER_AUDIT_KEY for the command line, --audit-key-file for headwater serve); without it "
                    "records would be written unsigned")
        if mac and mac != self._storage.head_mac(count, last):
            return f"the audit key given does not sign the head of {self.place}: it is another key"
        if binding is not None and binding.signed and not self.signed:
            return (f"{binding.describe()}, a signed log: give its key (HEADWATER_AUDIT_KEY for the command line, "
                    "--audit-key-file for headwater serve)")
        return None

    def anchor(self) -> Anchor:
        """The current head as an :class:`~.anchors.Anchor` (signed with the log's key), for safekeeping
        outside the host; what this process has queued is written first."""
        self.flush()
        count, last = self._storage.head()
        anchor = Anchor(self.log_id, count, last, iso_time(self._clock()),
                        "hmac-sha256" if self.signed else None)
        signature = self._storage.chain_sign(anchor.fields())
        return Anchor(anchor.log, count, last, anchor.time, anchor.signed, signature)

    def record_acknowledgement(self, *, time: datetime, actor: str, reason: str, revision: int, token: str,
                               binding: AuditBinding, problem: str) -> int:
        """Queue the record of ``headwater audit acknowledge``: who accepted which break of the trail, and why.

        ``revision`` is the store revision the acknowledgement wrote; ``binding`` what the store had recorded
        (the previous log, its record count and hash, the revision); ``problem`` what was found.
        """
        return self._writer.submit(RecordKind.ACKNOWLEDGEMENT, time, {
            "actor": actor, "reason": reason, "revision": revision, "token": token, "log": self.log_id,
            "previous_log": binding.log_id, "previous_revision": binding.revision,
            "previous_count": binding.count, "previous_hash": binding.hash, "problem": problem})

    def prune(self, before: datetime) -> AuditRecord | None:
        """Delete the records older than ``before`` (the longest such prefix) and leave a checkpoint.

        The prefix is verified first (a log that does not verify is not pruned: StoreError);
        the checkpoint takes the id and hash of the last pruned record, so the records after
        it still verify, and records that ``records 1..n were verified and pruned, and the chain
        through n hashed to H``, signed (HMAC-SHA256 with the log's key, else a plain SHA-256).
        Returns the checkpoint, or None when nothing is old enough.
        """
        return self._storage.prune(iso_time(before), self._clock)

    # --- queries -----------------------------------------------------------------------

    def get(self, record_id: int) -> AuditRecord:
        """The record with this id; NotFoundError if there is none (never written, or pruned)."""
        self.flush()
        return self._storage.get(record_id)

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
        query = self._storage.plan(
            kind=kind, subject=subject, resource=resource, permission=permission, result=result, caller=caller,
            actor=actor, since=since, until=until, revision=revision, min_revision=min_revision,
            max_revision=max_revision, limit=limit, cursor=cursor, newest_first=newest_first)
        self.flush()
        return self._storage.page(query)

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
        if not self._writer.stop():
            return
        self._storage.close()
        atexit.unregister(self._close_at_exit)
        if self._temporary_dir is not None:
            shutil.rmtree(self._temporary_dir, ignore_errors=True)

    def _close_at_exit(self) -> None:
        try:
            self.close()
        except Exception:
            _log.exception("closing %s", self.place)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
