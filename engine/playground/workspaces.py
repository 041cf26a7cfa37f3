"""Scratch workspaces: each browser session's own schema, relationships and assertions over its own in-memory
engine, bounded in count and size, forgotten after an idle time.

A workspace is named by an unguessable id (``secrets.token_urlsafe``, 192 bits), so
one session cannot reach another's. Its engine (``Engine(MemoryStore())``, as
``serve-testing`` gives each token) is built from the schema and rows when a check or
a lineage view first needs it, and built again after an edit; it never sees the
server's store. Creating a workspace beyond ``max_workspaces`` first forgets the
expired ones, then the least recently used one.

Example::

    >>> spaces = Workspaces(Limits(max_workspaces=2))
    >>> ws = spaces.create()
    >>> ws.set_schema("definition user {}\\ndefinition doc {\\n relation viewer: user\\n}")
    []
    >>> ws.set_rows([{"text": "doc:1#viewer@user:ann"}, {"text": "doc:1#viewer@robot:r2"}])[1]
    'doc:1#viewer@robot:r2: object definition `robot` not found'
    >>> spaces.get(ws.id) is ws, spaces.get("no-such-id")
    (True, None)
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ...dsl import DslError, lint_schema
from ..api import Engine
from ..errors import EngineError, InvalidRequestError, LimitExceededError
from .files import assertions_problem, export_yaml, import_yaml
from ..validationfile import run_validation_text
from .rows import Row, load_rows, new_engine, row_errors, row_from_json, row_json

__all__ = ["Limits", "Workspace", "Workspaces", "diagnostics"]


@dataclass(frozen=True, slots=True)
class Limits:
    """How much the playground keeps: workspaces, and per workspace, relationships and text sizes."""

    max_workspaces: int = 200
    max_relationships: int = 5000
    max_schema_bytes: int = 64 * 1024
    max_assertions_bytes: int = 64 * 1024
    idle_seconds: float = 30 * 60
    max_lineage_nodes: int = 500

    def as_json(self) -> dict[str, Any]:
        return {"max_workspaces": self.max_workspaces, "max_relationships": self.max_relationships,
                "max_schema_bytes": self.max_schema_bytes, "max_assertions_bytes": self.max_assertions_bytes,
                "idle_seconds": self.idle_seconds, "max_lineage_nodes": self.max_lineage_nodes}


def diagnostics(schema: str) -> list[dict[str, Any]]:
    """The errors and warnings of ``schema`` with their line and column (1-based; 0 when there is none)."""
    if not schema.strip():
        return []
    try:
        _, warnings = lint_schema(schema)
    except DslError as exc:
        return [_diagnostic("error", e.message, e.span) for e in exc.errors]
    return [_diagnostic("warning", w.message + (f" ({w.name})" if w.name else ""), w.span) for w in warnings]


def _diagnostic(severity: str, message: str, span: Any) -> dict[str, Any]:
    return {"severity": severity, "message": message, "line": span.line, "column": span.column,
            "end_line": span.end_line, "end_column": span.end_column}


class Workspace:
    """One session's schema, rows and assertion blocks, and the engine built from them (see the module)."""

    def __init__(self, id_: str, limits: Limits, clock: Callable[[], float]) -> None:
        self.id = id_
        self.limits = limits
        self._clock = clock
        self.used = clock()
        self.lock = threading.RLock()
        self.schema = ""
        self.rows: tuple[Row, ...] = ()
        self.assertions = ""
        self._engine: Engine | None = None

    def touch(self) -> None:
        self.used = self._clock()

    def set_schema(self, schema: str) -> list[dict[str, Any]]:
        """Keep ``schema`` (even with errors: it is the editor's text) and return its diagnostics."""
        if not isinstance(schema, str):
            raise InvalidRequestError("`schema` must be a string")
        size = len(schema.encode("utf-8"))
        if size > self.limits.max_schema_bytes:
            raise LimitExceededError(f"the schema is {size} bytes; the playground keeps at most "
                                     f"{self.limits.max_schema_bytes}")
        with self.lock:
            self.schema, self._engine = schema, None
        return diagnostics(schema)

    def set_rows(self, values: Sequence[Any]) -> list[str | None]:
        """Replace the rows with ``values`` (API JSON) if every one is good; else keep the old rows. Returns each
        row's error (None: fine), judged against the schema when it compiles (else the syntax only)."""
        if not isinstance(values, list):
            raise InvalidRequestError("`relationships` must be a list of rows")
        if len(values) > self.limits.max_relationships:
            raise LimitExceededError(f"{len(values)} relationships; the playground keeps at most "
                                     f"{self.limits.max_relationships} per workspace")
        rows: list[Row | None] = []
        errors: list[str | None] = []
        for value in values:
            try:
                rows.append(row_from_json(value))
                errors.append(None)
            except (ValueError, EngineError) as exc:
                rows.append(None)
                errors.append(str(exc))
        good = [r for r in rows if r is not None]
        seen: dict[Any, int] = {}
        for i, row in enumerate(rows):
            if row is not None:
                key = row.relationship.key
                if key in seen:
                    errors[i] = f"repeats row {seen[key] + 1}"
                seen.setdefault(key, i)
        with self.lock:
            try:
                checked = iter(row_errors(self.schema, good))
                errors = [e or (next(checked) if r is not None else None) for r, e in zip(rows, errors)]
            except DslError:
                pass  # the schema has errors (the editor shows them): rows are checked for their syntax only
            if not any(errors):
                self.rows, self._engine = tuple(good), None
        return errors

    def set_assertions(self, text: str) -> None:
        if not isinstance(text, str):
            raise InvalidRequestError("`assertions` must be a string")
        if len(text.encode("utf-8")) > self.limits.max_assertions_bytes:
            raise LimitExceededError(f"the assertions are over {self.limits.max_assertions_bytes} bytes")
        problem = assertions_problem(text)
        if problem:
            raise InvalidRequestError(f"assertions: {problem}")
        with self.lock:
            self.assertions = text

    def export(self) -> str:
        """The workspace as a validation file."""
        with self.lock:
            return export_yaml(self.schema, self.rows, self.assertions)

    def import_text(self, text: str) -> None:
        """Replace everything with a validation file's content (checked against the limits first)."""
        if len(text.encode("utf-8")) > self.limits.max_schema_bytes * 4 + self.limits.max_relationships * 256:
            raise LimitExceededError("the file is too large for the playground")
        imported = import_yaml(text)
        if len(imported.rows) > self.limits.max_relationships:
            raise LimitExceededError(f"{len(imported.rows)} relationships; the playground keeps at most "
                                     f"{self.limits.max_relationships} per workspace")
        with self.lock:
            self.set_schema(imported.schema)
            self.set_assertions(imported.assertions)
            self.rows, self._engine = tuple(imported.rows), None

    def state_json(self) -> dict[str, Any]:
        """What the page loads: the schema with its diagnostics, the rows, the assertion blocks, the limits."""
        with self.lock:
            return {"id": self.id, "schema": self.schema, "diagnostics": diagnostics(self.schema),
                    "relationships": [row_json(r) for r in self.rows], "assertions": self.assertions,
                    "limits": self.limits.as_json()}

    def run_assertions(self) -> dict[str, Any]:
        """Run the assertion blocks as ``headwater validate`` runs the exported file; lines are the assertion
        text's (a load error's line is the file's)."""
        text = self.export()
        offset = text[:text.rfind(self.assertions)].count("\n") if self.assertions.strip() else 0
        report = run_validation_text(text, path="workspace")
        load_error = None
        if report.load_error is not None:
            load_error = {"message": report.load_error.message, "line": report.load_error.line}
        return {"ok": report.ok, "load_error": load_error,
                "assertions": [dict(a.as_dict(), line=a.line - offset) for a in report.assertions],
                "validations": [dict(v.as_dict(), line=v.line - offset, message=v.message)
                                for v in report.validations]}

    def engine(self) -> Engine:
        """The engine holding the schema and rows (built on first use after an edit); raises DslError or
        EngineError when they do not load."""
        with self.lock:
            if self._engine is None:
                engine = new_engine(self.schema)
                load_rows(engine, self.rows)
                self._engine = engine
            return self._engine


class Workspaces:
    """Every scratch workspace of one server (thread-safe; see the module)."""

    def __init__(self, limits: Limits | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or Limits()
        self._clock = clock
        self._lock = threading.Lock()
        self._spaces: OrderedDict[str, Workspace] = OrderedDict()

    def __len__(self) -> int:
        return len(self._spaces)

    def create(self) -> Workspace:
        with self._lock:
            self._expire()
            while len(self._spaces) >= self.limits.max_workspaces:
                self._spaces.popitem(last=False)
            ws = Workspace(secrets.token_urlsafe(24), self.limits, self._clock)
            self._spaces[ws.id] = ws
            return ws

    def get(self, id_: str) -> Workspace | None:
        """The workspace ``id_`` (its idle time restarts), or None when unknown or expired."""
        with self._lock:
            self._expire()
            ws = self._spaces.get(id_)
            if ws is not None:
                ws.touch()
                self._spaces.move_to_end(id_)
            return ws

    def _expire(self) -> None:
        limit = self._clock() - self.limits.idle_seconds
        for id_ in [i for i, ws in self._spaces.items() if ws.used < limit]:
            del self._spaces[id_]
