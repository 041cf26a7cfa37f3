"""Decision replay: a recorded decision evaluated again, at its recorded revision and time, with its explanation.

The audit log keeps each decision's request, answer, revision and schema digest,
and only a hash of its context. A replay runs the one evaluator's traced program
at that snapshot (while the store keeps it) and says whether the answer is the
same, with notes when the schema or the context cannot be reproduced exactly.

Example::

    >>> from headwater.engine import Config, Engine
    >>> from headwater.engine.store.memory import MemoryStore
    >>> engine = Engine(MemoryStore(), config=Config.of(audit=True))
    >>> _ = engine.write_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n}")
    >>> _ = engine.touch("doc:1#viewer@user:ann")
    >>> _ = engine.check("doc:1", "viewer", "user:ann")
    >>> engine.replay(resource="doc:1", permission="viewer", subject="user:ann").same
    True
    >>> engine.close()
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .. import keys
from ..audit import AuditLog, AuditRecord, RecordKind, context_digest
from ..consistency import Consistency
from ..context import Context
from ..contexts import validate_context
from ..errors import InvalidRequestError, NotFoundError, RevisionUnavailableError
from ..relationships import ObjectRef, SubjectRef, parse_object, parse_subject
from ..results import CheckResult, ReplayResult
from .check import CheckQuery, permissionship_of

__all__ = ["ReplayQuery"]


class ReplayQuery:
    """Replays of recorded decisions over one engine's :class:`~..context.Context`."""

    def __init__(self, ctx: Context, checks: CheckQuery) -> None:
        self.ctx = ctx
        self.checks = checks

    def replay(self, audit: AuditLog, record_id: int | None = None, *, resource: ObjectRef | str | None = None,
               permission: str | None = None, subject: SubjectRef | str | None = None,
               before: datetime | None = None, context: Mapping[str, Any] | None = None) -> ReplayResult:
        """See :meth:`~headwater.engine.Engine.replay`."""
        validate_context(context, "replay context")
        record = self._record(audit, record_id, resource, permission, subject, before)
        notes = []
        if context is not None:
            context = _as_recorded(dict(context), record)
            if context_digest(context) != record["context_sha256"]:
                raise InvalidRequestError(f"the context given does not match audit record #{record.id}'s context "
                                          "hash")
        elif record["context_sha256"] is not None:
            notes.append("the request carried a context, which the log keeps only as a hash: replayed without it "
                         "(pass the context to replay it exactly)")
        rev = record.revision
        try:
            with self.ctx.snapshot(Consistency.at_exact_snapshot(record["token"]), now=record.time) as (reader, schema):
                context_dict = dict(context or {})
                outcome, explanation = self.checks.trace(
                    schema, reader, parse_object(record["resource"]), record["permission"],
                    parse_subject(record["subject"]), context_dict, keys.context_key(context_dict))
        except RevisionUnavailableError as exc:
            return ReplayResult(record, False, None, None, (
                f"record #{record.id} cannot be replayed: its revision {rev} is beyond the history window (the "
                f"store keeps revisions {exc.oldest} to {exc.head}); the log says {record.result} at "
                f"{record['time']}"))
        permissionship, missing = permissionship_of(outcome)
        result = CheckResult(permissionship, record["token"], missing, explanation)
        if schema.digest != record["schema_digest"]:
            notes.append(f"the schema at revision {rev} ({schema.digest[:12]}) is not the one recorded "
                         f"({str(record['schema_digest'])[:12]})")
        same = permissionship.value == record.result and list(missing) == list(record["missing_context"])
        verdict = (f"same answer: {permissionship.value}" if same else
                   f"different answer: the log says {record.result}, replaying gives {permissionship.value}")
        message = f"record #{record.id} replayed at revision {rev}: {verdict}" + "".join(f"; {n}" for n in notes)
        return ReplayResult(record, True, same, result, message)

    @staticmethod
    def _record(audit: AuditLog, record_id: int | None, resource: ObjectRef | str | None, permission: str | None,
                subject: SubjectRef | str | None, before: datetime | None) -> AuditRecord:
        """The decision to replay: by id, or the latest matching one (before ``before``)."""
        if record_id is not None:
            record = audit.get(record_id)
        else:
            found = audit.query(kind=RecordKind.DECISION, resource=str(resource) if resource else None,
                                permission=permission, subject=str(subject) if subject else None, until=before,
                                newest_first=True, limit=1).records
            if not found:
                raise NotFoundError(f"no recorded decision matches resource={resource} permission={permission} "
                                    f"subject={subject}" + (f" before {before.isoformat()}" if before else ""))
            record = found[0]
        if record.kind is not RecordKind.DECISION:
            raise InvalidRequestError(f"audit record #{record.id} is a {record.kind.value} record; only decisions "
                                      "can be replayed")
        return record


def _floats(value: Any) -> Any:
    """``value`` with every number a float, as a ``google.protobuf.Struct`` delivers it."""
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _as_recorded(context: dict[str, Any], record: AuditRecord) -> dict[str, Any]:
    """The context in the form whose hash the record holds: a check made through gRPC got its numbers as
    doubles (a Struct), so ``{"n": 3}`` was recorded as ``{"n": 3.0}``; either spelling replays it."""
    recorded = record.get("context_sha256")
    if recorded is not None and context_digest(context) != recorded and context_digest(_floats(context)) == recorded:
        return _floats(context)
    return context
