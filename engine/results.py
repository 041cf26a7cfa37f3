"""The values the engine answers with: results of checks, lookups, lineage questions, writes and listings.

They live apart from the facade so that adapters (the gRPC service, the CLI, the
client) and the query modules import them without importing the engine.

Example::

    >>> from headwater.engine.consistency import encode_token
    >>> CheckResult(Permissionship.HAS_PERMISSION, encode_token(3)).allowed
    True
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..dsl import schema as dsl_schema
from .consistency import decode_token
from .errors import EngineError
from .relationships import ObjectRef, Relationship, SubjectRef
from .store import Operation

if TYPE_CHECKING:
    from .audit import AuditRecord
    from .explain import Explanation

__all__ = [
    "Alert",
    "BulkCheckItem",
    "BulkCheckResult",
    "ChangeImpact",
    "CheckResult",
    "ClassificationLabel",
    "Declassification",
    "DeleteResult",
    "DeriveResult",
    "EffectiveLabels",
    "ImpactedDecision",
    "ImportProgress",
    "ImportResult",
    "LabelValue",
    "LineageItem",
    "LineagePage",
    "MigrationReport",
    "LookupResourcesPage",
    "LookupResult",
    "LookupSubjectsPage",
    "Permissionship",
    "ReadPage",
    "ReplayResult",
    "SchemaRead",
    "SchemaVersion",
    "SchemaWriteReport",
    "SchemaWriteResult",
    "SubjectResult",
    "WatchEvent",
    "WriteResult",
]


class Permissionship(enum.Enum):
    """The three answers to a check."""

    HAS_PERMISSION = "HAS_PERMISSION"
    NO_PERMISSION = "NO_PERMISSION"
    CONDITIONAL_PERMISSION = "CONDITIONAL_PERMISSION"  # a caveat needs context that was not given


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The answer to one check, with the revision token it was computed at."""

    permissionship: Permissionship
    token: str
    missing_context: tuple[str, ...] = ()  # for CONDITIONAL_PERMISSION: the caveat parameters to supply
    explanation: Explanation | None = field(default=None, compare=False, repr=False)  # check(..., explain=True)

    @property
    def allowed(self) -> bool:
        """True only for HAS_PERMISSION (a conditional answer is not a grant)."""
        return self.permissionship is Permissionship.HAS_PERMISSION

    @property
    def revision(self) -> int:
        return decode_token(self.token)


@dataclass(frozen=True, slots=True)
class BulkCheckItem:
    """One check of a bulk check."""

    resource: ObjectRef | str
    permission: str
    subject: SubjectRef | str
    context: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class BulkCheckResult:
    """A bulk-check item's answer, or the error that item alone raised."""

    item: BulkCheckItem
    result: CheckResult | None = None
    error: EngineError | None = None


@dataclass(frozen=True, slots=True)
class LookupResult:
    """One resource found by LookupResources."""

    resource_id: str
    permissionship: Permissionship
    missing_context: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LookupResourcesPage:
    """A page of LookupResources: ``cursor`` is None when the answer is complete."""

    results: list[LookupResult]
    cursor: str | None
    token: str


@dataclass(frozen=True, slots=True)
class SubjectResult:
    """One subject found by LookupSubjects; for ``type:*``, ``excluded`` lists the subjects it does not cover."""

    subject: SubjectRef
    permissionship: Permissionship
    missing_context: tuple[str, ...] = ()
    excluded: tuple[SubjectRef, ...] = ()


@dataclass(frozen=True, slots=True)
class LookupSubjectsPage:
    """A page of LookupSubjects: ``cursor`` is None when the answer is complete."""

    results: list[SubjectResult]
    cursor: str | None
    token: str


@dataclass(frozen=True, slots=True)
class LabelValue:
    """One value of an effective label, with the lineage paths that bring it ("" = the object's own label)."""

    value: str
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Declassification:
    """A value declassified on an object: who did it, why, and at which revision (None once the history is
    garbage-collected)."""

    value: str
    actor: str | None
    reason: str | None
    token: str | None


@dataclass(frozen=True, slots=True)
class ClassificationLabel:
    """An object's effective label in one classification."""

    classification: str
    level: str | None
    categories: tuple[str, ...]
    values: tuple[LabelValue, ...]
    declassified: tuple[Declassification, ...]


@dataclass(frozen=True, slots=True)
class EffectiveLabels:
    """The effective labels of one object, at one revision."""

    object: ObjectRef
    classifications: tuple[ClassificationLabel, ...]
    token: str


@dataclass(frozen=True, slots=True)
class DeriveResult:
    """A recorded derivation (:meth:`Engine.derive`): the revision (``token``) it is read at, whether this call
    wrote it, the object's effective labels with provenance, and one decision per check asked, all at that
    revision."""

    token: str
    written: bool
    labels: EffectiveLabels
    decisions: tuple[CheckResult, ...]


@dataclass(frozen=True, slots=True)
class LineageItem:
    """One object reached by an ancestors/descendants walk, with its distance and one shortest path."""

    object: ObjectRef
    depth: int
    path: str


@dataclass(frozen=True, slots=True)
class LineagePage:
    """A page of ancestors or descendants: ``cursor`` is None when complete."""

    items: list[LineageItem]
    cursor: str | None
    token: str


@dataclass(frozen=True, slots=True)
class WriteResult:
    """A committed write: its revision, as a token."""

    token: str

    @property
    def revision(self) -> int:
        return decode_token(self.token)


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """A committed delete-by-filter."""

    token: str
    deleted: int
    partial: bool  # True when a limit stopped it before every match was deleted


@dataclass(frozen=True, slots=True)
class SchemaWriteResult:
    """A stored schema version."""

    token: str
    version: int
    digest: str
    schema: dsl_schema.Schema = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """A recorded decision evaluated again at its recorded revision (see :meth:`Engine.replay`)."""

    record: AuditRecord
    available: bool  # False: the recorded revision has left the history window; nothing was evaluated
    same: bool | None  # the replayed answer equals the recorded one (None when not available)
    result: CheckResult | None  # the replayed answer, with its full explanation
    message: str


@dataclass(frozen=True, slots=True)
class ReadPage:
    """A page of ReadRelationships: ``cursor`` is None when the listing is complete."""

    relationships: list[Relationship]
    cursor: str | None
    token: str


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """Where an import stands after a committed batch (passed to the ``progress`` callback)."""

    batches: int  # batches committed so far
    relationships: int  # relationships committed so far
    seconds: float  # since the import started
    rate: float  # relationships per second so far
    token: str  # the revision of the last committed batch


@dataclass(frozen=True, slots=True)
class ImportResult:
    """A finished import: how many relationships in how many batches, the last revision, and how long."""

    count: int
    batches: int
    token: str  # the revision of the last batch (the head before the import if nothing was imported)
    seconds: float

    @property
    def rate(self) -> float:
        """Relationships per second."""
        return self.count / self.seconds if self.seconds > 0 else float(self.count)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One relationship change: at which revision (as a token), TOUCH or DELETE, and the relationship."""

    token: str
    operation: Operation
    relationship: Relationship

    @property
    def revision(self) -> int:
        return decode_token(self.token)


@dataclass(frozen=True, slots=True)
class SchemaWriteReport:
    """What a schema write did, or (``dry_run``) would do: accepted, or refused with the reasons, and the
    unified diff from the stored schema's text."""

    token: str
    version: int
    digest: str
    dry_run: bool
    accepted: bool
    refused: tuple[str, ...] = ()
    diff: str = ""


@dataclass(frozen=True, slots=True)
class SchemaRead:
    """The schema in force at a snapshot: its text, digest and version, and the snapshot's token."""

    text: str
    digest: str
    version: int
    token: str


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One stored schema version: its number, digest, the revision that wrote it (as a token), who wrote it,
    and its text (None when not asked for)."""

    version: int
    digest: str
    token: str
    actor: str | None
    text: str | None


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What ``Engine.migrate`` did (or, with ``dry_run``, would do) to a database's tables.

    ``steps`` are ``(version, name)`` of the migrations applied (or planned), oldest first; ``version`` is the table
    layout version the database has afterwards (with ``dry_run``: would have).
    """

    database: str
    kind: str  # "sqlite" or "postgresql"
    steps: tuple[tuple[int, str], ...]
    version: int
    dry_run: bool


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert of the monitoring rules (engine/governance/monitor.py): which rule fired, when (the time of the
    record that fired it), about whom and which classification value, a one-line summary, and the evidence (record
    ids, revision, the lineage path, counts)."""

    rule: str
    time: datetime
    subject: str | None
    value: str | None
    summary: str
    record_id: int
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "subject": self.subject, "value": self.value, "summary": self.summary, "record_id": self.record_id,
                "evidence": dict(self.evidence)}


#: The answer of a check that fails, in a change impact (e.g. its permission is gone from the proposed schema).
ERROR = "ERROR"
_HAS = Permissionship.HAS_PERMISSION.value


@dataclass(frozen=True, slots=True)
class ImpactedDecision:
    """One recorded check whose answer the proposal changes."""

    resource: str
    permission: str
    subject: str
    before: str  # HAS_PERMISSION, NO_PERMISSION, CONDITIONAL_PERMISSION, or ERROR
    after: str
    explanation: tuple[str, ...]  # the new answer's explanation (summary lines), or the error's message
    records: tuple[int, ...]  # the decision records that asked this check, oldest first
    before_missing: tuple[str, ...] = ()  # caveat parameters a conditional answer misses
    after_missing: tuple[str, ...] = ()

    @property
    def change(self) -> str:
        """``opened`` (now HAS_PERMISSION), ``closed`` (no longer), ``conditional`` (to or from a conditional
        answer, or other missing parameters) or ``error`` (the check now fails, or no longer does)."""
        if self.after == _HAS:
            return "opened"
        if self.before == _HAS:
            return "closed"
        return "error" if ERROR in (self.before, self.after) else "conditional"


@dataclass(frozen=True, slots=True)
class ChangeImpact:
    """What a proposal changes in the recorded decisions (:meth:`Engine.impact`, ``headwater impact``)."""

    token: str  # the revision both sides were evaluated at
    decisions: int  # decision records read in the window
    checks: int  # distinct checks asked again (records with a caveat context aside)
    skipped: int  # decision records asked with a caveat context: not asked again
    changes: tuple[ImpactedDecision, ...]  # sorted by resource, permission, subject
    refused: tuple[str, ...] = ()  # why a write of the proposal would be refused (then nothing was evaluated)

    def _count(self, change: str) -> int:
        return sum(1 for c in self.changes if c.change == change)

    @property
    def opened(self) -> int:
        return self._count("opened")

    @property
    def closed(self) -> int:
        return self._count("closed")

    @property
    def conditional(self) -> int:
        return self._count("conditional")

    @property
    def errors(self) -> int:
        return self._count("error")
