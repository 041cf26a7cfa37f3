"""The playground's relationship rows: a relationship (caveat and expiration included) and, for a
declassification, who declassified it and why.

The page edits rows as columns (resource, relation, subject, caveat, context,
expiration, actor, reason); the API takes either those columns or the text form
(``{"text": "doc:1#viewer@user:ann"}``) and answers with both. Example::

    >>> row = row_from_json({"resource": "doc:1", "relation": "viewer", "subject": "user:ann",
    ...                      "expiration": "2030-01-01T00:00:00Z"})
    >>> row.text
    'doc:1#viewer@user:ann[expiration:2030-01-01T00:00:00Z]'
    >>> row_json(row)["expiration"]
    '2030-01-01T00:00:00Z'
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..api import Engine
from ..errors import EngineError
from ..relationships import Relationship, format_expiration, parse_relationship
from ..store import Operation, Update
from ..store.memory import MemoryStore

__all__ = ["Row", "load_rows", "new_engine", "row_errors", "row_from_json", "row_json"]

_FIELDS = ("resource", "relation", "subject", "caveat", "context", "expiration", "actor", "reason")


@dataclass(frozen=True, slots=True)
class Row:
    """One relationship of a workspace in canonical text, with the actor and reason of a declassification."""

    text: str
    actor: str = ""
    reason: str = ""

    @property
    def relationship(self) -> Relationship:
        return parse_relationship(self.text)


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"`{name}` must be a string")
    return value.strip()


def row_from_json(value: Any) -> Row:
    """A row from the API's JSON (columns, or ``text``); raises ValueError or EngineError naming the problem."""
    if not isinstance(value, dict):
        raise ValueError("a row must be a JSON object")
    unknown = sorted(set(value) - set(_FIELDS) - {"text"})
    if unknown:
        raise ValueError(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    actor, reason = _text(value.get("actor"), "actor"), _text(value.get("reason"), "reason")
    if "text" in value:
        text = _text(value["text"], "text")
    else:
        resource, relation, subject = (_text(value.get(k), k) for k in ("resource", "relation", "subject"))
        for name, part in (("resource", resource), ("relation", relation), ("subject", subject)):
            if not part:
                raise ValueError(f"the {name} is missing")
        text = f"{resource}#{relation}@{subject}"
        caveat, expiration = _text(value.get("caveat"), "caveat"), _text(value.get("expiration"), "expiration")
        context = value.get("context")
        if isinstance(context, dict):
            context = json.dumps(context)
        context = _text(context, "context")
        if context and not caveat:
            raise ValueError("a context needs a caveat name")
        if caveat:
            text += f"[{caveat}:{context}]" if context and context != "{}" else f"[{caveat}]"
        if expiration:
            text += f"[expiration:{expiration}]"
    if not text:
        raise ValueError("the relationship is missing")
    if bool(actor) != bool(reason):
        raise ValueError("a declassification needs both an actor and a reason (or neither)")
    return Row(str(parse_relationship(text)), actor, reason)


def row_json(row: Row) -> dict[str, Any]:
    """The row as the API's columns, plus its ``text``."""
    rel = row.relationship
    return {"text": row.text, "resource": str(rel.resource), "relation": rel.relation, "subject": str(rel.subject),
            "caveat": rel.caveat.name if rel.caveat else "",
            "context": rel.caveat.context if rel.caveat and rel.caveat.context != "{}" else "",
            "expiration": format_expiration(rel.expiration) if rel.expiration else "",
            "actor": row.actor, "reason": row.reason}


def new_engine(schema: str) -> Engine:
    """A fresh in-memory engine holding ``schema`` (none when it is blank); raises DslError for a bad one."""
    engine = Engine(MemoryStore())
    if schema.strip():
        engine.write_schema(schema)
    return engine


def load_rows(engine: Engine, rows: Sequence[Row]) -> None:
    """Write ``rows`` into ``engine`` as a validation file loads them (trusted: a declassification's actor need
    not hold its permission); a declassification with an actor is written in its own batch, under its actor and
    reason, so that the lineage view can say who declassified what and why. Raises the first EngineError."""
    plain = [Update(Operation.TOUCH, r.relationship) for r in rows if not r.actor]
    if plain:
        engine.write(plain, trusted=True)
    for r in rows:
        if r.actor:
            engine.write([Update(Operation.TOUCH, r.relationship)], actor=r.actor, reason=r.reason, trusted=True)


def row_errors(schema: str, rows: Sequence[Row]) -> list[str | None]:
    """Each row's error against ``schema`` (None: fine), in order; a row is judged with the rows before it
    that were fine (so a lineage cycle is blamed on the row that closes it)."""
    engine = new_engine(schema)
    try:
        load_rows(engine, rows)
        return [None] * len(rows)
    except EngineError:
        pass
    engine = new_engine(schema)
    out: list[str | None] = []
    for row in rows:
        try:
            load_rows(engine, [row])
            out.append(None)
        except EngineError as exc:
            out.append(str(exc))
    return out
