"""What the audit log stores: record kinds, the values read back, and the canonical forms that are hashed.

A record's content is its ``body``: the canonical JSON (:func:`canonical_json`)
of its fields, including ``id``, ``kind`` and ``time`` (:func:`iso_time`). Its
chain hash is :func:`record_hash` of the previous record's hash and the body.
Request contexts and change batches are kept as digests
(:func:`context_digest`, :func:`changes_digest`), schema changes as a diff
(:func:`schema_diff`).
"""

from __future__ import annotations

import difflib
import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import InvalidRequestError

__all__ = [
    "GENESIS",
    "LISTED_CHANGES",
    "AuditPage",
    "AuditRecord",
    "Pending",
    "RecordKind",
    "VerifyResult",
    "canonical_json",
    "changes_digest",
    "context_digest",
    "iso_time",
    "parse_iso_time",
    "record_hash",
    "schema_diff",
]

#: The hash record 1 links to.
GENESIS = "0" * 64
#: A change batch with more relationships than this is recorded as a count and a SHA-256 only.
LISTED_CHANGES = 1000
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class RecordKind(enum.Enum):
    """What a record is about."""

    DECISION = "decision"
    LOOKUP = "lookup"
    RELATIONSHIPS = "relationships"
    SCHEMA = "schema"
    DECLASSIFICATION = "declassification"
    CHECKPOINT = "checkpoint"
    ACKNOWLEDGEMENT = "acknowledgement"


#: A record queued and not yet written: its kind, its time and its fields (``id``, ``kind`` and ``time`` are
#: added when it is appended to the chain).
Pending = tuple[RecordKind, datetime, dict[str, Any]]


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


def iso_time(moment: datetime) -> str:
    """``2025-01-31T12:00:00.000000Z``: fixed width, so these strings sort like the times they name.

    Example::

        >>> from datetime import timedelta, timezone
        >>> iso_time(datetime(2025, 1, 31, 13, tzinfo=timezone(timedelta(hours=1))))
        '2025-01-31T12:00:00.000000Z'
    """
    offset = moment.utcoffset()
    if offset is None:
        raise InvalidRequestError(f"invalid time {moment!r}: must be timezone-aware")
    if offset:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"  # drop "+00:00"


def parse_iso_time(text: str) -> datetime:
    """The time :func:`iso_time` wrote."""
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
        if self.kind is RecordKind.ACKNOWLEDGEMENT:
            return (f"{head} of a broken audit trail at revision {b['revision']} by {b.get('actor')} "
                    f"({b.get('reason')}): {b.get('problem')}")
        return f"{head} {b['pruned']} records pruned through #{b['through']} ({b['signed']})"


@dataclass(frozen=True, slots=True)
class AuditPage:
    """A page of records; ``cursor`` continues the same query, None once there is nothing more."""

    records: list[AuditRecord]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What :meth:`AuditLog.verify` found: ``ok``, or the first problem: a bad record (``record_id``) and what is
    wrong with it, or (``record_id`` None) what is wrong with the log as a whole (its head, its key, its store,
    an anchor)."""

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
        elif self.record_id is None:
            text = f"failed: {self.problem}"
        else:
            text = f"record {self.record_id}: {self.problem}"
        return "\n".join([text, *(f"note: {n}" for n in self.notes)])
