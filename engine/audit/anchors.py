"""Anchors: the head of an audit log written down outside the host, to catch a rollback to an older copy later.

An :class:`Anchor` is one small JSON document: the log's id, the head's sequence
(the id of the last record appended) and hash, when it was taken, and, when the
log has a key, an HMAC-SHA256 over those fields. ``headwater audit anchor`` emits
one (stdout, a file, or an HTTP POST); ``headwater audit verify --anchor FILE``
proves the log still holds each anchored head: the record at that sequence still
hashes to the anchored hash, and the chain from it to the current head is intact.

Example::

    >>> anchor = Anchor("f00d", 12, "ab" * 32, "2030-01-01T00:00:00.000000Z")
    >>> Anchor.parse(anchor.to_json()) == anchor
    True
    >>> anchor.describe()
    'the anchor of 2030-01-01T00:00:00.000000Z (record #12)'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequestError
from .records import canonical_json

__all__ = ["ANCHOR_FORMAT", "Anchor"]

#: The ``format`` field of every anchor document.
ANCHOR_FORMAT = "headwater-audit-anchor/1"


@dataclass(frozen=True, slots=True)
class Anchor:
    """A log's head at one time: ``log`` id, ``sequence`` (the last record's id), its ``hash``, the ``time`` it
    was taken (``2030-01-01T00:00:00.000000Z``) and, from a keyed log, ``signed`` (``hmac-sha256``) and the
    ``signature`` over the other fields."""

    log: str
    sequence: int
    hash: str
    time: str
    signed: str | None = None
    signature: str | None = None

    def fields(self) -> dict[str, Any]:
        """The document's fields (the signature signs all the others)."""
        out: dict[str, Any] = {"format": ANCHOR_FORMAT, "log": self.log, "sequence": self.sequence,
                               "hash": self.hash, "time": self.time, "signed": self.signed}
        if self.signature is not None:
            out["signature"] = self.signature
        return out

    def to_json(self) -> str:
        """The anchor as one line of canonical JSON (no newline)."""
        return canonical_json(self.fields())

    @classmethod
    def parse(cls, text: str, source: str = "the anchor") -> Anchor:
        """The anchor in ``text`` (what :meth:`to_json` wrote); InvalidRequestError naming ``source`` otherwise."""
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise InvalidRequestError(f"{source} is not an audit anchor: not JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != ANCHOR_FORMAT:
            raise InvalidRequestError(f"{source} is not an audit anchor (no \"format\": \"{ANCHOR_FORMAT}\")")
        sequence, last, log, time = doc.get("sequence"), doc.get("hash"), doc.get("log"), doc.get("time")
        signed, signature = doc.get("signed"), doc.get("signature")
        if (not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0
                or not isinstance(last, str) or len(last) != 64 or not isinstance(log, str) or not log
                or not isinstance(time, str) or not isinstance(signed, str | None)
                or not isinstance(signature, str | None) or (signed is None) != (signature is None)):
            raise InvalidRequestError(f"{source} is a malformed audit anchor: it needs log, sequence (>= 0), a "
                                      "64-digit hash and time, and a signature exactly when signed")
        return cls(log, sequence, last, time, signed, signature)

    def describe(self) -> str:
        """``the anchor of <time> (record #<sequence>)``, for messages."""
        return f"the anchor of {self.time} (record #{self.sequence})"
