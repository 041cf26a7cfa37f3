"""The audit trail: a tamper-evident, hash-chained log of decisions and changes, in its own SQLite file or in the
store's PostgreSQL database.

An :class:`AuditLog` keeps one SQLite file (WAL mode, default ``<database>.audit``
beside the store's file; a temporary file for a ``MemoryStore`` engine), separate
from the relationship store, so pruning, exports and verification never contend
with relationship writes. Over a PostgreSQL store it keeps the ``audit_*`` tables
of the same database instead, one chain that every server over it appends to
(``pg_storage.py``). Record kinds (:class:`RecordKind`):

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
- ``checkpoint``: what :meth:`AuditLog.prune` leaves in place of the pruned prefix;
- ``acknowledgement``: an operator accepting a broken trail (``headwater audit acknowledge``): who,
  why, the previous log's id, the store revision and what was found.

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

**It stays on.** Every write to a lasting store while audited names the log and its
head in the revision's metadata (``binding.py``), so the store says that it is
audited and by which log; an engine opening it keeps that log whatever its config
says, and refuses a log that is missing, another one, or behind the store until an
operator acknowledges the break (``trail.py``). **Anchors** (``anchors.py``) write the
head down outside the host; ``verify`` proves the log still holds each one.

**Where it lives.** One module per concern:

- ``records.py``: record kinds, the values read back (:class:`AuditRecord`, :class:`AuditPage`,
  :class:`VerifyResult`) and the canonical forms that are hashed;
- ``chain.py``: linking records, verifying the chain and diagnosing a break, signing checkpoints and the head;
- ``writer.py``: the bounded queue and the background writer thread, tickets, flush and wait;
- ``sql_storage.py``: what is done with the log's tables (appends, verification, pruning, the store and
  anchor checks, queries and cursors), written once for both databases;
- ``storage.py``: the SQLite file (tables and migrations, connections), through the engine's one SQLite
  helper, ``engine/sqlitedb.py``; ``pg_storage.py``: the tables in a PostgreSQL database (created by
  ``headwater migrate``), through ``engine/pgdb.py``;
- ``log.py``: :class:`AuditLog`, the facade: the recording policy and the ``record_*`` methods;
- ``binding.py``: what an audited write stamps on its store revision; ``trail.py``: the log an engine over a
  lasting store must keep, and acknowledging a break; ``anchors.py``: heads kept outside the host.

Example::

    >>> from datetime import UTC, datetime
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

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports as _lazy_exports

if TYPE_CHECKING:  # what type checkers see; at run time each name's module is imported on first use
    from .anchors import Anchor
    from .binding import AuditBinding
    from .log import AuditLog, audit_location_for
    from .records import (
        GENESIS,
        LISTED_CHANGES,
        AuditPage,
        AuditRecord,
        RecordKind,
        VerifyResult,
        canonical_json,
        changes_digest,
        context_digest,
        record_hash,
        schema_diff,
    )
    from .storage import audit_path_for
    from .trail import acknowledge, open_store_log
    from .writer import FLUSH_INTERVAL

__getattr__, __dir__ = _lazy_exports(__name__, {
    "anchors": ("Anchor",),
    "binding": ("AuditBinding",),
    "log": ("AuditLog", "audit_location_for"),
    "records": ("GENESIS", "LISTED_CHANGES", "AuditPage", "AuditRecord", "RecordKind", "VerifyResult",
                "canonical_json", "changes_digest", "context_digest", "record_hash", "schema_diff"),
    "storage": ("audit_path_for",),
    "trail": ("acknowledge", "open_store_log"),
    "writer": ("FLUSH_INTERVAL",),
})

__all__ = [
    "FLUSH_INTERVAL",
    "GENESIS",
    "LISTED_CHANGES",
    "Anchor",
    "AuditBinding",
    "AuditLog",
    "AuditPage",
    "AuditRecord",
    "RecordKind",
    "VerifyResult",
    "acknowledge",
    "audit_location_for",
    "audit_path_for",
    "canonical_json",
    "changes_digest",
    "context_digest",
    "open_store_log",
    "record_hash",
    "schema_diff",
]
