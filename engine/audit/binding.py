"""The tie between a store and its audit log: what every audited write stamps on its revision.

A write made while a file store is audited carries, in its revision's metadata
(the store keeps a string dict per revision), the identity of the audit log it is
recorded in and how far that log's chain had come when the write began:

- ``audit_log``: the log's id, a random value created with the log and kept in it;
- ``audit_count`` and ``audit_hash``: the log's head then (records appended, last hash);
  the write's own record follows later in the chain, at a higher id, with the revision;
- ``audit_signed``: ``"1"`` when the log signs its head (an HMAC key), else ``"0"``.

So the store itself says that it is audited and which log continues it: on open,
the metadata of the head revision (:meth:`AuditBinding.from_metadata`) is checked
against the log (:meth:`~.log.AuditLog.continues`). The store contract stays as it
was: metadata is an ordinary part of every revision.

Example::

    >>> binding = AuditBinding.from_metadata(7, {"actor": "user:ann", **binding_metadata("f00d", 12, "ab" * 32, True)})
    >>> binding.log_id, binding.count, binding.signed, binding.revision
    ('f00d', 12, True, 7)
    >>> AuditBinding.from_metadata(7, {"actor": "user:ann"}) is None  # written without an audit log
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import AuditTrailBrokenError

__all__ = ["ACKNOWLEDGED_KEY", "AuditBinding", "binding_metadata"]

_LOG, _COUNT, _HASH, _SIGNED = "audit_log", "audit_count", "audit_hash", "audit_signed"
#: The metadata key of a revision written by ``headwater audit acknowledge``: the log id it acknowledges the loss of.
ACKNOWLEDGED_KEY = "audit_acknowledged"


def binding_metadata(log_id: str, count: int, last_hash: str, signed: bool) -> dict[str, str]:
    """The metadata an audited write carries (see the module docstring)."""
    return {_LOG: log_id, _COUNT: str(count), _HASH: last_hash, _SIGNED: "1" if signed else "0"}


@dataclass(frozen=True, slots=True)
class AuditBinding:
    """What a store revision says about its audit log: written at ``revision`` while the log ``log_id`` had
    ``count`` records, the last hashing to ``hash``; ``signed`` when that log had a key."""

    revision: int
    log_id: str
    count: int
    hash: str
    signed: bool

    @classmethod
    def from_metadata(cls, revision: int, metadata: Mapping[str, str]) -> AuditBinding | None:
        """The binding in a revision's metadata; None when the revision was written without an audit log.

        Malformed audit metadata is an :class:`~headwater.engine.errors.AuditTrailBrokenError`.
        """
        log_id = metadata.get(_LOG)
        if log_id is None:
            return None
        count = metadata.get(_COUNT, "")
        if not log_id or not count.isdigit() or len(metadata.get(_HASH, "")) != 64:
            raise AuditTrailBrokenError(f"the store's revision {revision} carries malformed audit metadata "
                                        f"({ {k: v for k, v in metadata.items() if k.startswith('audit_')} })")
        return cls(revision, log_id, int(count), metadata[_HASH], metadata.get(_SIGNED) == "1")

    def describe(self) -> str:
        """``revision 7 of the store was written with audit log f00d… at record #12``."""
        return (f"the store's revision {self.revision} was written with audit log {self.log_id} "
                f"when it had {self.count} records")
