"""Schema versions: write one (refused if it would orphan stored relationships), plan one, read and list them.

A schema write compiles the text, checks inside the write transaction that no
stored relationship would be orphaned (a relation, or an allowed subject type,
removed while relationships use it), and stores a new version at a new
revision; the audit log records it with the diff of the canonical texts. A plan
(dry run) says what a write would do, with the unified diff from the stored text.

Example::

    >>> from headwater.engine import Engine
    >>> from headwater.engine.store.memory import MemoryStore
    >>> engine = Engine(MemoryStore())
    >>> engine.write_schema("definition user {}").version
    1
    >>> report = engine.plan_schema("definition user {}\\ndefinition doc {}")
    >>> report.accepted, report.version
    (True, 2)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

from ...dsl import SchemaLimits, compile_schema, format_schema, parse_schema
from ...dsl import schema as dsl_schema
from ..consistency import Consistency, encode_token
from ..context import Context
from ..errors import RevisionUnavailableError, SchemaConflictError
from ..results import SchemaRead, SchemaVersion, SchemaWriteReport, SchemaWriteResult
from ..store import Reader, Revision, StoredSchema
from ..validation import schema_change_problems
from ..writes import revision_metadata

__all__ = ["SchemaQuery"]


class SchemaQuery:
    """Schema writes, plans and reads over one engine's :class:`~..context.Context`."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def _refusals(self, new: dsl_schema.Schema) -> Callable[[Reader], None]:
        """The check, run inside a write's transaction, that refuses ``new`` if it would orphan stored data."""
        def refuse(reader: Reader) -> None:
            stored = reader.schema()
            old = self.ctx.compiled(stored) if stored is not None else None
            problems = schema_change_problems(old, new, reader)
            if problems:
                raise SchemaConflictError("schema change refused: " + "; ".join(problems), problems)
        return refuse

    def _limits(self) -> SchemaLimits:
        """The schema limits of the engine's settings: a schema written must stay within them."""
        limits = self.ctx.config.limits
        return SchemaLimits(limits.max_schema_bytes, limits.max_schema_definitions, limits.max_definition_members,
                            limits.max_expression_nesting)

    def write_schema(self, text: str, *, actor: str | None = None, dry_run: bool = False) -> SchemaWriteResult:
        """See :meth:`~headwater.engine.Engine.write_schema`."""
        new = compile_schema(text, limits=self._limits())
        refuse = self._refusals(new)
        store = self.ctx.store
        if dry_run:
            with store.snapshot() as reader:
                refuse(reader)
                stored = reader.schema()
            return SchemaWriteResult(encode_token(reader.revision), (stored.version if stored else 0) + 1,
                                     new.digest, new)
        revision = store.write_schema(text, new.digest, validate=refuse, metadata=revision_metadata(self.ctx, actor))
        self.ctx.note_head(revision)
        self.ctx.remember_compiled(new)
        stored = store.read_schema(revision)
        assert stored is not None
        if self.ctx.audit is not None:
            self._record(revision, stored, actor)
        return SchemaWriteResult(encode_token(revision), stored.version, new.digest, new)

    def plan_schema(self, text: str, *, actor: str | None = None) -> SchemaWriteReport:
        """See :meth:`~headwater.engine.Engine.plan_schema`."""
        new = compile_schema(text, limits=self._limits())
        with self.ctx.store.snapshot() as reader:
            stored = reader.schema()
            token, version = encode_token(reader.revision), (stored.version if stored else 0) + 1
            diff = _diff(stored.text if stored is not None else "", text)
            try:
                self._refusals(new)(reader)
            except SchemaConflictError as exc:
                return SchemaWriteReport(token, version, new.digest, True, False, tuple(exc.problems or [str(exc)]),
                                         diff)
        return SchemaWriteReport(token, version, new.digest, True, True, (), diff)

    def read_schema(self, consistency: Consistency | None = None) -> SchemaRead:
        """See :meth:`~headwater.engine.Engine.read_schema`."""
        with self.ctx.snapshot(consistency) as (reader, _):
            stored = self.ctx.schema_in_force(reader)
            return SchemaRead(stored.text, stored.digest, stored.version, encode_token(reader.revision))

    def schema_history(self, *, include_text: bool = False) -> list[SchemaVersion]:
        """See :meth:`~headwater.engine.Engine.schema_history`."""
        store = self.ctx.store
        return [SchemaVersion(stored.version, stored.digest, encode_token(stored.revision),
                              store.revision_metadata(stored.revision).get("actor"),
                              stored.text if include_text else None)
                for stored in store.schema_history()]

    def _record(self, revision: Revision, stored: StoredSchema, actor: str | None) -> None:
        """Record a schema write with the diff of the canonical texts; returns once it is committed."""
        audit = self.ctx.audit
        assert audit is not None
        try:
            previous = self.ctx.store.read_schema(revision - 1)
        except RevisionUnavailableError:
            previous = None
        stored_limits = SchemaLimits.unlimited()  # stored schemas were within the limits when written
        old = format_schema(parse_schema(previous.text, limits=stored_limits)) if previous is not None else None
        audit.record_schema(time=self.ctx.clock(), actor=actor, revision=revision, token=encode_token(revision),
                            version=stored.version, digest=stored.digest,
                            previous_digest=previous.digest if previous is not None else None, old_text=old,
                            new_text=format_schema(parse_schema(stored.text, limits=stored_limits)))
        audit.flush()


def _diff(old: str, new: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "stored schema", "new schema"))
