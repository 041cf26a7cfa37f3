"""The hash chain: linking records, verifying the chain and saying what broke it, signing checkpoints and the head.

Record *n*'s ``hash`` is ``sha256(prev_hash + "\\n" + body)`` where ``prev_hash``
is record *n-1*'s hash (:data:`~.records.GENESIS` for record 1). The head (the
number of records appended and the last hash) is kept apart and, with a key,
signed with HMAC-SHA256, so removing records from the tail is caught too. A
checkpoint stands in for a pruned prefix: it takes the id and hash of the last
pruned record and is signed (HMAC-SHA256 with the key, else a plain SHA-256).

This module reads and writes nothing: :class:`Chain` works on the rows the
storage hands it (``engine/audit/storage.py`` runs the SQL).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ..budget import current as current_budget
from .records import GENESIS, Pending, RecordKind, VerifyResult, canonical_json, iso_time, record_hash

__all__ = ["Chain", "Row"]

#: A stored record as the chain sees it: (id, body, prev_hash, hash).
Row = tuple[int, str, str, str]


class Chain:
    """The chain's rules, with the log's key (None: checkpoints carry a plain SHA-256 and the head no MAC).

    Example::

        >>> from datetime import UTC, datetime
        >>> chain = Chain(None)
        >>> rows, count, last = chain.link(0, GENESIS, [(RecordKind.DECISION, datetime(2025, 1, 1, tzinfo=UTC),
        ...                                            {"result": "HAS_PERMISSION"})])
        >>> chain.walk((count, last, ""), rows, find=lambda h: None).ok
        True
    """

    def __init__(self, key: bytes | None) -> None:
        self._key = key

    @property
    def scheme(self) -> str:
        """How checkpoints are signed: ``hmac-sha256`` with a key, else ``sha256``."""
        return "hmac-sha256" if self._key is not None else "sha256"

    def link(self, count: int, last: str, batch: Sequence[Pending]) -> tuple[list[Row], int, str]:
        """The rows that append ``batch`` after record ``count`` (whose hash is ``last``), and the new head.

        Each record's fields get ``id``, ``kind`` and ``time`` (in place).
        """
        rows = []
        sha256 = hashlib.sha256
        for kind, when, fields in batch:
            count += 1
            fields["id"], fields["kind"], fields["time"] = count, kind.value, iso_time(when)
            body = canonical_json(fields)
            h = sha256(f"{last}\n{body}".encode()).hexdigest()
            rows.append((count, body, last, h))
            last = h
        return rows, count, last

    def head_mac(self, count: int, last: str) -> str:
        """The head's HMAC of ``"count:hash"`` with the key; '' without one."""
        if self._key is None:
            return ""
        return hmac.new(self._key, f"{count}:{last}".encode(), hashlib.sha256).hexdigest()

    def sign(self, fields: Mapping[str, Any]) -> str | None:
        """The HMAC-SHA256 of ``fields`` (without their ``signature``) under the key; None without a key."""
        return None if self._key is None else _signature(self._key, fields)

    def checks(self, fields: Mapping[str, Any]) -> bool:
        """Whether ``fields["signature"]`` is :meth:`sign` of the rest (False without a key)."""
        return self._key is not None and hmac.compare_digest(str(fields.get("signature", "")),
                                                             _signature(self._key, fields))

    @property
    def keyed(self) -> bool:
        """Whether the chain has a key (signs the head, checkpoints and anchors)."""
        return self._key is not None

    def checkpoint(self, *, through: int, prefix_hash: str, before: str, time: datetime,
                   pruned_now: int) -> dict[str, Any]:
        """The signed fields of a checkpoint standing for records 1..``through`` (their last hash ``prefix_hash``)."""
        fields: dict[str, Any] = {
            "id": through, "kind": RecordKind.CHECKPOINT.value, "time": iso_time(time), "before": before,
            "through": through, "pruned": through, "pruned_now": pruned_now, "prefix_hash": prefix_hash,
            "signed": self.scheme}
        fields["signature"] = _signature(self._key, fields)
        return fields

    # --- verification ------------------------------------------------------------------

    def walk(self, head: tuple[int, str, str], rows: Iterable[Row], *, find: Callable[[str], int | None],
             through: int | None = None) -> VerifyResult:
        """Check ``rows`` (in id order) against each other and ``head`` (count, hash, mac); the first bad record.

        ``find`` gives the smallest id of a record with a given hash (None if none), to tell an
        insertion from a removal or reordering. With ``through``, the rows are a prefix: the tail is
        not compared with the head.
        """
        count, head_hash, mac = head
        notes: list[str] = []

        def bad(record_id: int, problem: str, walked: int) -> VerifyResult:
            return VerifyResult(False, walked, count, head_hash, record_id, problem, tuple(notes))

        if self._key is not None:
            if not hmac.compare_digest(mac, self.head_mac(count, head_hash)):
                return bad(count, "the head (record count and last hash) is not signed with this log's key: "
                                  "it was rewritten, or the key is wrong", 0)
        elif mac:
            # Without the key a signed log proves nothing: anyone can re-hash a forged chain.
            return VerifyResult(False, 0, count, head_hash, None, "the log is signed (its head carries an HMAC) "
                                "but no key was given, so a rewritten chain would pass: verify it with its key "
                                "(HEADWATER_AUDIT_KEY)")
        prev_id: int | None = None
        prev_hash = GENESIS
        walked = 0
        budget = current_budget(None)  # a long walk stops at the request's deadline or cancellation
        for row_id, body, row_prev, row_hash in rows:
            walked += 1
            if not walked & 1023:
                budget.checkpoint()
            try:
                content = json.loads(body)
            except (ValueError, TypeError):  # TypeError: a body that is not text (a number, a NULL)
                return bad(row_id, "altered: its content is not valid JSON", walked)
            if not isinstance(content, dict):
                return bad(row_id, "altered: its content is not a JSON object", walked)
            if content.get("kind") == RecordKind.CHECKPOINT.value:
                if prev_id is not None:
                    return bad(row_id, "inserted: a checkpoint may only start the log, and this one follows "
                                       f"record {prev_id}", walked)
                problem = self._validate_checkpoint(row_id, content, row_hash, notes)
                if problem is not None:
                    return bad(row_id, problem, walked)
                prev_id, prev_hash = row_id, row_hash
                continue
            if record_hash(row_prev, body) != row_hash:
                return bad(row_id, "altered: its content no longer matches its hash", walked)
            if row_prev != prev_hash:
                return bad(*_diagnose_link(find, row_id, row_prev, prev_id), walked)
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

    def _validate_checkpoint(self, row_id: int, content: dict[str, Any], row_hash: str, notes: list[str]) -> str | None:
        signed = {k: v for k, v in content.items() if k != "signature"}
        scheme = content.get("signed")
        if content.get("id") != row_id or content.get("through") != row_id:
            return f"altered: a checkpoint at #{row_id} that says it covers #{content.get('through')}"
        if content.get("prefix_hash") != row_hash:
            return "altered: the checkpoint's hash is not the pruned prefix's hash it records"
        if scheme == "hmac-sha256":
            if self._key is None:
                return ("HMAC-signed, but no key was given to check it: verify the log with its key "
                        "(HEADWATER_AUDIT_KEY)")
            expected = _signature(self._key, signed)
        elif scheme == "sha256":
            if self._key is not None:
                return "altered: the checkpoint carries a plain hash where this log's key should have signed it"
            expected = _signature(None, signed)
        else:
            return f"altered: unknown checkpoint signature scheme {scheme!r}"
        if not hmac.compare_digest(str(content.get("signature", "")), expected):
            return "altered: the checkpoint's signature does not match its content"
        return None


def _diagnose_link(find: Callable[[str], int | None], row_id: int, row_prev: str,
                   prev_id: int | None) -> tuple[int, str]:
    """Why record ``row_id`` does not link to the record before it: which record to blame, and how."""
    found = find(row_prev)
    if found is not None and prev_id is not None and found < prev_id:
        first = found + 1
        return first, (f"inserted: #{row_id} links to #{found}, so the record(s) #{first}..#{prev_id} "
                       "between them were inserted")
    if found is not None and found > row_id:
        return row_id, f"reordered: #{row_id} links to #{found}, which comes after it"
    if prev_id is None:
        if row_prev == GENESIS:
            return row_id, "altered: it claims to be the first record"
        return row_id - 1, (f"removed: the log starts at #{row_id}; #{row_id - 1} and the records before it "
                            "are gone and no checkpoint stands for them")
    if row_id > prev_id + 1:
        return prev_id + 1, f"removed: #{row_id} links to a record that is no longer in the log"
    return prev_id, (f"altered: #{row_id} links to a different #{prev_id} than the one stored (its content "
                     "and hash were both rewritten)")


def _signature(key: bytes | None, fields: Mapping[str, Any]) -> str:
    """The signature of ``fields`` without their ``signature``: HMAC-SHA256 with ``key``, else a SHA-256."""
    text = canonical_json({k: v for k, v in fields.items() if k != "signature"}).encode()
    if key is None:
        return hashlib.sha256(text).hexdigest()
    return hmac.new(key, text, hashlib.sha256).hexdigest()
