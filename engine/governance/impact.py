"""Change impact: the decisions recorded in the audit log, asked again under a proposed schema or data.

Before a policy change is merged, its author wants to know whose access it changes.
:class:`ImpactQuery` reads the decisions the audit log recorded in a window (by time,
newest first, at most ``limit`` records), groups them into distinct checks (resource,
permission, subject), and answers each twice at the current head revision, in one
snapshot:

- **before**: under the schema in force and the stored data (or under a ``baseline``
  schema text, to compare two schema files over the stored data);
- **after**: under the proposed schema (compiled as a schema write would compile it),
  over the stored data with the proposed relationship updates laid over it
  (:class:`~..store.overlay.BatchView`: nothing is written).

Every check whose answer differs is listed with the explanation of its new answer and
the ids of the decision records that asked it; counts say how many were opened
(now HAS_PERMISSION), closed (no longer HAS_PERMISSION) or otherwise changed. A
proposal a write would refuse (a schema change that orphans stored relationships, a
relationship the schema does not allow, a lineage cycle) is reported in ``refused``
and nothing is evaluated.

What it never does: write to the store, record into the audit log (the answers are
evaluated directly, not through :meth:`~..Engine.check`), or put a what-if answer in a
shared cache (the proposed side is evaluated with private caches, since its answers
are not the data of the revision number they are computed at). Decisions that were
asked with a caveat context are skipped and counted (``skipped``): the log keeps only
the context's hash, so they cannot be asked again as they were.

Example::

    >>> from headwater.engine import Config, Engine
    >>> from headwater.engine.store.memory import MemoryStore
    >>> engine = Engine(MemoryStore(), config=Config.of(audit=True))
    >>> _ = engine.write_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n"
    ...                         " relation banned: user\\n permission view = viewer - banned\\n}")
    >>> _ = engine.touch("doc:1#viewer@user:ann", "doc:1#banned@user:ann", "doc:1#viewer@user:bob")
    >>> [engine.check("doc:1", "view", s).allowed for s in ("user:ann", "user:bob")]
    [False, True]
    >>> impact = engine.impact(schema="definition user {}\\ndefinition doc {\\n relation viewer: user\\n"
    ...                               " relation banned: user\\n permission view = viewer\\n}")
    >>> [(c.subject, c.before, c.after, c.change) for c in impact.changes]
    [('user:ann', 'NO_PERMISSION', 'HAS_PERMISSION', 'opened')]
    >>> impact.checks, impact.opened, impact.closed
    (2, 1, 0)
    >>> engine.impact(updates=parse_changes("-doc:1#viewer@user:bob")).changes[0].change
    'closed'
    >>> engine.close()
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ...dsl import SchemaLimits, compile_schema
from ...dsl import schema as dsl_schema
from ..audit import AuditLog, RecordKind
from ..consistency import encode_token
from ..context import Context
from ..errors import EngineError, InvalidRequestError
from ..evaluator import Resolve
from ..lineage import describe_cycle, find_lineage_cycle
from ..queries.check import CheckQuery
from ..relationships import parse_relationship
from ..results import ERROR, BulkCheckItem, ChangeImpact, CheckResult, ImpactedDecision
from ..store import Operation, Reader, Update
from ..store.overlay import BatchView
from ..validation import schema_change_problems, validate_relationship

__all__ = ["ChangeImpact", "ImpactQuery", "ImpactedDecision", "parse_changes"]

_PAGE = 1000  # decision records read per audit query


def parse_changes(text: str) -> list[Update]:
    """Relationship updates from text, one per line: ``+REL`` (or ``REL`` alone) touches ``REL``, ``-REL``
    deletes it; blank lines and ``//`` comments are skipped. A line that is not a relationship is an
    InvalidRequestError naming its number.

    Example::

        >>> [(u.operation.value, str(u.relationship)) for u in parse_changes("// grant\\n+doc:1#viewer@user:ann\\n"
        ...                                                                 "- doc:2#viewer@user:bob\\n")]
        [('touch', 'doc:1#viewer@user:ann'), ('delete', 'doc:2#viewer@user:bob')]
    """
    updates = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        operation = Operation.DELETE if line.startswith("-") else Operation.TOUCH
        body = line[1:].strip() if line[0] in "+-" else line
        try:
            updates.append(Update(operation, parse_relationship(body)))
        except EngineError as exc:
            raise InvalidRequestError(f"line {number}: {exc}") from None
    return updates


@dataclass(frozen=True, slots=True)
class _Side:
    """One side of the comparison: a schema and the data it is asked over."""

    schema: dsl_schema.Schema
    reader: Reader
    private: bool  # evaluate without the shared caches (a what-if: not the data or schema of the revision)


class ImpactQuery:
    """Change impact over one engine's :class:`~..context.Context` (see the module docstring)."""

    def __init__(self, ctx: Context, checks: CheckQuery) -> None:
        self.ctx = ctx
        self.checks = checks

    def impact(self, audit: AuditLog, *, schema: str | None = None, updates: Iterable[Update] = (),
               baseline: str | None = None, since: datetime | None = None, until: datetime | None = None,
               limit: int | None = None) -> ChangeImpact:
        """See :meth:`~headwater.engine.Engine.impact`."""
        batch = list(updates)
        if schema is None and not batch:
            raise InvalidRequestError("nothing proposed: give a schema, relationship updates, or both")
        if limit is not None and limit < 1:
            raise InvalidRequestError(f"limit must be at least 1, not {limit}")
        limits = SchemaLimits.unlimited() if schema is None else self._limits()
        proposed = compile_schema(schema, limits=limits) if schema is not None else None
        base = compile_schema(baseline, limits=SchemaLimits.unlimited()) if baseline is not None else None
        asked, read, skipped = _recorded_checks(audit, since, until, limit)
        now = self.ctx.clock()
        with self.ctx.snapshot(None, now=now) as (reader, stored):
            token = encode_token(reader.revision)
            view = BatchView(reader, batch, now) if batch else reader
            after = _Side(proposed or stored, view, True)
            refused = self._refusals(stored, proposed, after.schema, reader, view, batch)
            if refused:
                return ChangeImpact(token, read, 0, skipped, (), tuple(refused))
            before = _Side(base or stored, reader, base is not None)
            changes = []
            resolve = self.checks.request_chain()
            for (resource, permission, subject), ids in asked.items():
                item = BulkCheckItem(resource, permission, subject)
                old, new = self._answer(before, item, resolve), self._answer(after, item, resolve)
                if (old.permissionship, old.missing_context) != (new.permissionship, new.missing_context):
                    changes.append(ImpactedDecision(
                        resource, permission, subject, old.permissionship, new.permissionship,
                        self._explanation(after, item, new), tuple(sorted(ids)), old.missing_context,
                        new.missing_context))
        changes.sort(key=lambda c: (c.resource, c.permission, c.subject))
        return ChangeImpact(token, read, len(asked), skipped, tuple(changes))

    def _limits(self) -> SchemaLimits:
        limits = self.ctx.config.limits
        return SchemaLimits(limits.max_schema_bytes, limits.max_schema_definitions, limits.max_definition_members,
                            limits.max_expression_nesting)

    def _refusals(self, stored: dsl_schema.Schema, proposed: dsl_schema.Schema | None, schema: dsl_schema.Schema,
                  reader: Reader, view: Reader, batch: Sequence[Update]) -> list[str]:
        """Why writing the proposal (the updates, then the schema) would be refused; [] when it would not."""
        problems = []
        for u in batch:
            if u.operation is not Operation.DELETE:
                try:
                    validate_relationship(schema, u.relationship,
                                          max_context_bytes=self.ctx.config.limits.max_caveat_context_bytes)
                except EngineError as exc:
                    problems.append(f"{u.relationship}: {exc}")
        if batch and not problems:
            cycle = find_lineage_cycle(schema, reader, batch)
            if cycle is not None:
                problems.append(f"the updates would make the lineage graph cyclic: {describe_cycle(cycle)}")
        if proposed is not None:
            problems += schema_change_problems(stored, proposed, view)
        return problems

    def _answer(self, side: _Side, item: BulkCheckItem, resolve: Resolve) -> _Answer:
        """The answer to ``item`` on one side; an error is an answer too (ERROR, with its message)."""
        try:
            if side.private:
                result = self.checks.decide_privately(side.schema, side.reader, item)
            else:
                result = self.checks.decide(side.schema, side.reader, item, resolve)
        except EngineError as exc:
            return _Answer(ERROR, (), str(exc))
        return _Answer(result.permissionship.value, result.missing_context, None)

    def _explanation(self, side: _Side, item: BulkCheckItem, answer: _Answer) -> tuple[str, ...]:
        """The summary of the new answer's explanation (a traced evaluation, privately), or its error."""
        if answer.error is not None:
            return (answer.error,)
        result: CheckResult = self.checks.explained(side.schema, side.reader, item, private=side.private)
        return result.explanation.summary if result.explanation is not None else ()


@dataclass(frozen=True, slots=True)
class _Answer:
    permissionship: str
    missing_context: tuple[str, ...]
    error: str | None


def _recorded_checks(audit: AuditLog, since: datetime | None, until: datetime | None,
                     limit: int | None) -> tuple[dict[tuple[str, str, str], list[int]], int, int]:
    """The distinct checks (resource, permission, subject) of the decision records in the window, newest
    first (at most ``limit`` records), each with its record ids; how many records were read, and how many of
    them were skipped for carrying a caveat context."""
    asked: dict[tuple[str, str, str], list[int]] = {}
    read = skipped = 0
    cursor = None
    while limit is None or read < limit:
        page = audit.query(kind=RecordKind.DECISION, since=since, until=until, newest_first=True, cursor=cursor,
                           limit=_PAGE if limit is None else min(_PAGE, limit - read))
        for record in page.records:
            read += 1
            if record["context_sha256"] is not None:
                skipped += 1
                continue
            key = (str(record["resource"]), str(record["permission"]), str(record["subject"]))
            asked.setdefault(key, []).append(record.id)
        cursor = page.cursor
        if cursor is None or not page.records:
            break
    return asked, read, skipped
