"""Checks that keep stored data consistent with the schema.

- :func:`validate_relationship`: a relationship being written must fit the schema
  (its resource type and relation exist, the relation is not a permission, the
  subject matches one allowed type exactly, including caveat and expiration, and
  any stored caveat context fits the caveat's parameters). Messages follow
  SpiceDB's, with a hint where one helps.
- :func:`schema_change_problems`: a new schema must not orphan stored
  relationships (a relation or an allowed subject type removed while
  relationships still use it).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

from ..dsl import schema as s
from ..dsl.cel import CaveatContextError
from .errors import InvalidRelationshipError, LimitExceededError
from .relationships import Relationship
from .store import Reader, RelationshipFilter, Row

__all__ = ["schema_change_problems", "subject_type_of", "validate_relationship"]


def subject_type_of(rel: Relationship) -> s.SubjectType:
    """The allowed-type shape a relationship needs: ``user``, ``user:*``, ``group#member``, with traits."""
    return _subject_type_of_row(Row.of(rel))


def validate_relationship(schema: s.Schema, rel: Relationship, *, max_context_bytes: int = 4096) -> None:
    """Raise :class:`InvalidRelationshipError` unless ``rel`` fits ``schema``."""
    definition = schema.definitions.get(rel.resource.type)
    if definition is None:
        raise InvalidRelationshipError(f"{rel}: object definition `{rel.resource.type}` not found")
    relation = definition.relations.get(rel.relation)
    if relation is None:
        if rel.relation in definition.permissions:
            raise InvalidRelationshipError(
                f"{rel}: `{rel.resource.type}#{rel.relation}` is a permission; relationships can only be written to "
                "relations")
        raise InvalidRelationshipError(
            f"{rel}: relation `{rel.relation}` not found under definition `{rel.resource.type}`")
    if rel.subject.type not in schema.definitions:
        raise InvalidRelationshipError(f"{rel}: object definition `{rel.subject.type}` not found")
    if rel.subject.relation is not None and schema.member(rel.subject.type, rel.subject.relation) is None:
        raise InvalidRelationshipError(
            f"{rel}: relation/permission `{rel.subject.relation}` not found under definition `{rel.subject.type}`")
    if rel.resource.type in schema.classifications:
        c = schema.classifications[rel.resource.type]
        if rel.resource.id not in c.values:
            raise InvalidRelationshipError(f"{rel}: `{rel.resource.id}` is not a value of classification "
                                           f"`{c.name}` (values: {', '.join(c.values)})")
    if rel.subject.type in schema.classifications:
        c = schema.classifications[rel.subject.type]
        if rel.subject.id not in c.values:
            raise InvalidRelationshipError(f"{rel}: `{rel.subject.id}` is not a value of classification "
                                           f"`{c.name}` (values: {', '.join(c.values)})")
    wanted = subject_type_of(rel)
    if wanted not in relation.allowed:
        raise InvalidRelationshipError(f"{rel}: {_not_allowed(relation, rel.resource.type, wanted)}")
    if rel.caveat is not None:
        if len(rel.caveat.context.encode()) > max_context_bytes:
            raise LimitExceededError(
                f"{rel}: caveat context is {len(rel.caveat.context.encode())} bytes; the limit is {max_context_bytes}")
        caveat = schema.caveats.get(rel.caveat.name)
        if caveat is None or caveat.program is None:
            raise InvalidRelationshipError(f"{rel}: caveat `{rel.caveat.name}` not found")
        try:
            caveat.program.validate_context(json.loads(rel.caveat.context))
        except CaveatContextError as exc:
            raise InvalidRelationshipError(f"{rel}: {exc.message}") from None


def _not_allowed(relation: s.Relation, resource_type: str, wanted: s.SubjectType) -> str:
    base = f"subjects of type `{wanted}` are not allowed on relation `{resource_type}#{relation.name}`"
    same = [t for t in relation.allowed if (t.type, t.relation, t.wildcard) == (wanted.type, wanted.relation,
                                                                                wanted.wildcard)]
    if same:
        return base + "; allowed: " + ", ".join(f"`{t}`" for t in same)
    same_type = [t for t in relation.allowed if t.type == wanted.type]
    if same_type:
        return base + "; did you mean " + " or ".join(f"`{t}`" for t in same_type) + "?"
    return base + "; allowed: " + ", ".join(f"`{t}`" for t in relation.allowed)


def schema_change_problems(old: s.Schema | None, new: s.Schema, reader: Reader) -> list[str]:
    """Why ``new`` cannot replace ``old`` with the relationships ``reader`` sees; empty if it can."""
    if old is None:
        return []
    problems: list[str] = []
    for type_name, definition in old.definitions.items():
        new_def = new.definitions.get(type_name)
        for rel_name, relation in definition.relations.items():
            new_rel = new_def.relations.get(rel_name) if new_def is not None else None
            if new_rel is not None and set(relation.allowed) <= set(new_rel.allowed):
                continue
            base = RelationshipFilter(resource_type=type_name, relation=rel_name)
            if new_rel is None:
                n = reader.count(base)
                if n:
                    what = "definition" if new_def is None else "relation"
                    problems.append(
                        f"cannot remove {what} `{type_name if new_def is None else type_name + '#' + rel_name}`: "
                        f"{n} relationship{'s' if n != 1 else ''} still use{'s' if n == 1 else ''} "
                        f"`{type_name}#{rel_name}`")
                continue
            removed = set(relation.allowed) - set(new_rel.allowed)
            counts = Counter(t for t in map(_subject_type_of_row, _all(reader, base)) if t in removed)
            for st, n in sorted(counts.items(), key=lambda kv: str(kv[0])):
                problems.append(
                    f"cannot remove allowed type `{st}` from relation `{type_name}#{rel_name}`: "
                    f"{n} relationship{'s' if n != 1 else ''} still use{'s' if n == 1 else ''} it")
    return problems


def _subject_type_of_row(row: Row) -> s.SubjectType:
    """:func:`subject_type_of` for a stored row."""
    return s.SubjectType(row.subject_type, row.subject_relation or None, row.subject_id == "*", row.caveat_name,
                         row.expires_at_us is not None)


def _all(reader: Reader, f: RelationshipFilter, page: int = 1000) -> Iterator[Row]:
    after = None
    while True:
        batch = reader.read(f, after=after, limit=page)
        yield from batch
        if len(batch) < page:
            return
        after = batch[-1].key
