"""SpiceDB's schema reflection for ``authzed.api.v1``: ReflectSchema, DiffSchema, ComputablePermissions and
DependentRelations, computed from Headwater's compiled schema and the schema text's comments.

What a client sees is SpiceDB's answer for the same schema:

- definitions and caveats sorted by name; within a definition, relations and permissions
  each in the order written; caveat parameters sorted by name;
- ``comment``: every comment written before the element, delimiters included
  (``// x``, ``/** x */``), joined with newlines;
- a subject type is a terminal subject (``user``, ``user with expiration``), a subject
  relation (``group#member``) or a public wildcard (``user:*``), with its caveat's name;
- filters match by name prefix; a definition or caveat is kept when any filter matches;
- ComputablePermissions: every relation and permission, in any definition, whose result can
  change when a relationship with the given subject type (``definition#relation``, or the
  object itself when the relation is empty) changes, transitively, through subject
  relations, arrows and rewrites; DependentRelations: every relation and permission that the
  given permission reads, transitively (an arrow's left relation included). Both are sorted
  by (definition, name) and leave out the starting relation.

Headwater's additions are reflected as what they are to a SpiceDB client: a ``lineage``,
``declassify`` or label relation is a relation with its subject types; a classification is
the definition its values are objects of, with its ``cleared`` relation; ``cleared`` reads
the definition's label, declassify and lineage relations (and those of its upstream types)
and the classification's ``cleared`` relation; ``upstream(p)`` is an arrow over each
lineage relation.

Example::

    >>> from headwater.dsl import compile_schema
    >>> text = "definition user {}\\n// a document\\ndefinition doc {\\n relation viewer: user\\n" \\
    ...        " permission view = viewer\\n}"
    >>> definitions, caveats = reflect(compile_schema(text), text, [])
    >>> [(d.name, d.comment, [r.name for r in d.relations]) for d in definitions]
    [('doc', '// a document', ['viewer']), ('user', '', [])]
    >>> [f"{r.definition_name}#{r.relation_name}" for r in computable(compile_schema(text), "user", "", "")]
    ['doc#view', 'doc#viewer']
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import grpc
from authzed.api.v1 import schema_service_pb2 as _S

from ....dsl import SchemaLimits, ast, compile_schema, parse_schema
from ....dsl import schema as m
from ....dsl.errors import DslError
from ...api import Engine
from ...consistency import Consistency, encode_token
from ...errors import NotFoundError
from .errors import V1Error

__all__ = ["Snapshot", "computable", "dependent", "diff", "reflect", "snapshot", "validate_filters"]

_ELLIPSIS = "..."
_Ref = tuple[str, str]  # (definition, relation or permission)


# ------------------------------------------------------------------ the schema at a snapshot


@dataclass(frozen=True)
class Snapshot:
    """The compiled schema (None before any is written), its text, the snapshot's token and the engine's schema
    limits (which a DiffSchema's comparison schema must keep, as a written one)."""

    schema: m.Schema | None
    text: str
    token: str
    limits: SchemaLimits | None = None


def snapshot(engine: Engine, consistency: Consistency | None) -> Snapshot:
    """The schema in force at the snapshot ``consistency`` selects, its text and the snapshot's token."""
    given = engine.config.limits
    limits = SchemaLimits(given.max_schema_bytes, given.max_schema_definitions, given.max_definition_members,
                          given.max_expression_nesting)
    try:
        read = engine.read_schema(consistency)
    except NotFoundError:  # nothing was ever written: the store is at its first revision
        return Snapshot(None, "", encode_token(0), limits)
    return Snapshot(engine.schema(Consistency.at_exact_snapshot(read.token)), read.text, read.token, limits)


def _require_definition(schema: m.Schema | None, name: str) -> m.Definition:
    definition = schema.definitions.get(name) if schema is not None else None
    if definition is None:
        raise V1Error(grpc.StatusCode.FAILED_PRECONDITION, f"object definition `{name}` not found",
                      "ERROR_REASON_UNKNOWN_DEFINITION", {"definition_name": name})
    return definition


def _unknown_member(definition: str, name: str) -> V1Error:
    return V1Error(grpc.StatusCode.FAILED_PRECONDITION,
                   f"relation/permission `{name}` not found under definition `{definition}`",
                   "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION",
                   {"definition_name": definition, "relation_or_permission_name": name})


# ------------------------------------------------------------------ comments


@dataclass(frozen=True)
class _Comments:
    """The comments written before each element: by definition, (definition, member) and caveat."""

    definitions: dict[str, str]
    members: dict[_Ref, str]
    caveats: dict[str, str]

    def of_definition(self, name: str) -> str:
        return self.definitions.get(name, "")

    def of_member(self, definition: str, name: str) -> str:
        return self.members.get((definition, name), "")

    def of_caveat(self, name: str) -> str:
        return self.caveats.get(name, "")


def _joined(comments: Iterable[ast.Comment]) -> str:
    return "\n".join(c.text for c in comments)


@functools.lru_cache(maxsize=16)
def _comments(text: str) -> _Comments:
    """The comments of a schema text (parsed once per text; a text that does not parse has none)."""
    try:
        doc = parse_schema(text) if text else ast.Document()
    except DslError:
        return _Comments({}, {}, {})
    partials = {item.name: item for item in doc.items if isinstance(item, ast.Partial)}

    def members(owner: ast.Definition | ast.Partial, seen: frozenset[str]) -> Iterator[tuple[str, str]]:
        for member in owner.members:
            if isinstance(member, ast.PartialReference):
                partial = partials.get(member.name)
                if partial is not None and member.name not in seen:
                    yield from members(partial, seen | {member.name})
            else:
                yield member.name, _joined(member.comments)

    definitions: dict[str, str] = {}
    by_member: dict[_Ref, str] = {}
    caveats: dict[str, str] = {}
    for item in doc.items:
        if isinstance(item, ast.Definition):
            definitions[item.name] = _joined(item.comments)
            for name, comment in members(item, frozenset()):
                by_member[(item.name, name)] = comment
        elif isinstance(item, ast.Classification):
            definitions[item.name] = _joined(item.comments)
        elif isinstance(item, ast.Caveat):
            caveats[item.name] = _joined(item.comments)
    return _Comments(definitions, by_member, caveats)


# ------------------------------------------------------------------ schema model -> v1 messages


def _type_ref(t: m.SubjectType) -> _S.ReflectionTypeReference:
    """A subject type as SpiceDB reflects it (an expiration trait is not shown, as in SpiceDB)."""
    ref = _S.ReflectionTypeReference(subject_definition_name=t.type, optional_caveat_name=t.caveat or "")
    if t.relation is not None and t.relation != _ELLIPSIS:
        ref.optional_relation_name = t.relation
    elif t.wildcard:
        ref.is_public_wildcard = True
    else:
        ref.is_terminal_subject = True
    return ref


def _relation(definition: str, r: m.Relation, comments: _Comments) -> _S.ReflectionRelation:
    return _S.ReflectionRelation(name=r.name, comment=comments.of_member(definition, r.name),
                                 parent_definition_name=definition, subject_types=[_type_ref(t) for t in r.allowed])


def _permission(definition: str, p: m.Permission, comments: _Comments) -> _S.ReflectionPermission:
    return _S.ReflectionPermission(name=p.name, comment=comments.of_member(definition, p.name),
                                   parent_definition_name=definition)


def _parameter(caveat: str, name: str, type_: object) -> _S.ReflectionCaveatParameter:
    return _S.ReflectionCaveatParameter(name=name, type=str(type_), parent_caveat_name=caveat)


def _caveat(c: m.Caveat, comments: _Comments) -> _S.ReflectionCaveat:
    return _S.ReflectionCaveat(name=c.name, comment=comments.of_caveat(c.name), expression=c.expression,
                               parameters=[_parameter(c.name, n, c.parameters[n]) for n in sorted(c.parameters)])


def _definition(d: m.Definition, comments: _Comments, filters: _Filters | None = None) -> _S.ReflectionDefinition:
    keep_relation = filters.has_relation if filters is not None else (lambda _d, _n: True)
    keep_permission = filters.has_permission if filters is not None else (lambda _d, _n: True)
    return _S.ReflectionDefinition(
        name=d.name, comment=comments.of_definition(d.name),
        relations=[_relation(d.name, r, comments) for r in d.relations.values() if keep_relation(d.name, r.name)],
        permissions=[_permission(d.name, p, comments) for p in d.permissions.values()
                     if keep_permission(d.name, p.name)])


# ------------------------------------------------------------------ ReflectSchema


class _Filters:
    """ReflectSchema's ``optional_filters``: name prefixes, any filter matching keeps an element."""

    def __init__(self, filters: Sequence[_S.ReflectionSchemaFilter]) -> None:
        self.filters = list(filters)

    def _any(self, field: str) -> bool:
        return not self.filters or any(getattr(f, field) for f in self.filters)

    def has_definitions(self) -> bool:
        return self._any("optional_definition_name_filter")

    def has_caveats(self) -> bool:
        return self._any("optional_caveat_name_filter")

    def _match(self, field: str, name: str, definition: str | None = None) -> bool:
        relevant = [f for f in self.filters if getattr(f, field)]
        if not relevant:
            return True
        return any(name.startswith(getattr(f, field)) and
                   (definition is None or definition.startswith(f.optional_definition_name_filter))
                   for f in relevant)

    def has_definition(self, name: str) -> bool:
        return self._match("optional_definition_name_filter", name)

    def has_caveat(self, name: str) -> bool:
        return self._match("optional_caveat_name_filter", name)

    def has_relation(self, definition: str, name: str) -> bool:
        return self._match("optional_relation_name_filter", name, definition)

    def has_permission(self, definition: str, name: str) -> bool:
        return self._match("optional_permission_name_filter", name, definition)


def validate_filters(filters: Sequence[_S.ReflectionSchemaFilter]) -> None:
    """INVALID_ARGUMENT (ERROR_REASON_INVALID_FILTER) for a filter SpiceDB refuses."""
    for f in filters:
        problem = None
        if f.optional_definition_name_filter and f.optional_caveat_name_filter:
            problem = "cannot filter by both definition and caveat name"
        elif f.optional_relation_name_filter and not f.optional_definition_name_filter:
            problem = "relation name match requires definition name match"
        elif f.optional_relation_name_filter and f.optional_permission_name_filter:
            problem = "cannot filter by both relation and permission name"
        elif f.optional_permission_name_filter and not f.optional_definition_name_filter:
            problem = "permission name match requires definition name match"
        if problem is not None:
            raise V1Error(grpc.StatusCode.INVALID_ARGUMENT,
                          f"the relationship filter provided is not valid: {problem}",
                          "ERROR_REASON_INVALID_FILTER", {"filter": str(f).strip()})


def reflect(schema: m.Schema | None, text: str, filters: Sequence[_S.ReflectionSchemaFilter]
            ) -> tuple[list[_S.ReflectionDefinition], list[_S.ReflectionCaveat]]:
    """ReflectSchema's definitions and caveats (sorted by name) for ``schema`` written as ``text``."""
    validate_filters(filters)
    if schema is None:
        return [], []
    comments, chosen = _comments(text), _Filters(filters)
    definitions = [_definition(schema.definitions[n], comments, chosen) for n in sorted(schema.definitions)
                   if chosen.has_definitions() and chosen.has_definition(n)]
    caveats = [_caveat(schema.caveats[n], comments) for n in sorted(schema.caveats)
               if chosen.has_caveats() and chosen.has_caveat(n)]
    return definitions, caveats


# ------------------------------------------------------------------ DiffSchema


def _diff(**field: object) -> _S.ReflectionSchemaDiff:
    return _S.ReflectionSchemaDiff(**field)  # type: ignore[arg-type]


def _definition_diffs(name: str, old: m.Definition, new: m.Definition, old_c: _Comments,
                      new_c: _Comments) -> Iterator[_S.ReflectionSchemaDiff]:
    """The changes of one definition in SpiceDB's order: comment, relations and permissions removed and added,
    permissions changed, relations changed."""
    if old_c.of_definition(name) != new_c.of_definition(name):
        yield _diff(definition_doc_comment_changed=_definition(new, new_c))
    for r in sorted(set(old.relations) - set(new.relations)):
        yield _diff(relation_removed=_relation(name, old.relations[r], old_c))
    for r in sorted(set(new.relations) - set(old.relations)):
        yield _diff(relation_added=_relation(name, new.relations[r], new_c))
    for p in sorted(set(old.permissions) - set(new.permissions)):
        yield _diff(permission_removed=_permission(name, old.permissions[p], old_c))
    for p in sorted(set(new.permissions) - set(old.permissions)):
        yield _diff(permission_added=_permission(name, new.permissions[p], new_c))
    for p in sorted(set(old.permissions) & set(new.permissions)):
        if old.permissions[p].expr != new.permissions[p].expr:
            yield _diff(permission_expr_changed=_permission(name, new.permissions[p], new_c))
        if old_c.of_member(name, p) != new_c.of_member(name, p):
            yield _diff(permission_doc_comment_changed=_permission(name, new.permissions[p], new_c))
    for r in sorted(set(old.relations) & set(new.relations)):
        relation = _relation(name, new.relations[r], new_c)
        if old_c.of_member(name, r) != new_c.of_member(name, r):
            yield _diff(relation_doc_comment_changed=relation)
        old_types = {str(t): t for t in old.relations[r].allowed}
        new_types = {str(t): t for t in new.relations[r].allowed}
        for t in sorted(set(old_types) - set(new_types)):
            yield _diff(relation_subject_type_removed=_S.ReflectionRelationSubjectTypeChange(
                relation=relation, changed_subject_type=_type_ref(old_types[t])))
        for t in sorted(set(new_types) - set(old_types)):
            yield _diff(relation_subject_type_added=_S.ReflectionRelationSubjectTypeChange(
                relation=relation, changed_subject_type=_type_ref(new_types[t])))


def _caveat_diffs(old: m.Caveat, new: m.Caveat, old_c: _Comments,
                  new_c: _Comments) -> Iterator[_S.ReflectionSchemaDiff]:
    """The changes of one caveat in SpiceDB's order: comment, parameters removed, added, retyped, expression."""
    name = new.name
    if old_c.of_caveat(name) != new_c.of_caveat(name):
        yield _diff(caveat_doc_comment_changed=_caveat(new, new_c))
    for p in sorted(set(old.parameters) - set(new.parameters)):
        yield _diff(caveat_parameter_removed=_parameter(name, p, old.parameters[p]))
    for p in sorted(set(new.parameters) - set(old.parameters)):
        yield _diff(caveat_parameter_added=_parameter(name, p, new.parameters[p]))
    for p in sorted(set(old.parameters) & set(new.parameters)):
        if str(old.parameters[p]) != str(new.parameters[p]):
            yield _diff(caveat_parameter_type_changed=_S.ReflectionCaveatParameterTypeChange(
                parameter=_parameter(name, p, new.parameters[p]), previous_type=str(old.parameters[p])))
    if old.expression != new.expression:
        yield _diff(caveat_expr_changed=_caveat(new, new_c))


def diff(existing: m.Schema | None, existing_text: str, comparison_text: str,
         limits: SchemaLimits | None = None) -> list[_S.ReflectionSchemaDiff]:
    """DiffSchema's changes from the schema in force to ``comparison_text`` (a schema error is raised as the
    DslError it is). Order: definitions added, removed; caveats added, removed (each sorted by name); then the
    changes of each changed definition, then of each changed caveat, by name."""
    new = compile_schema(comparison_text, limits=limits)
    old_defs = dict(existing.definitions) if existing is not None else {}
    old_cavs = dict(existing.caveats) if existing is not None else {}
    old_c, new_c = _comments(existing_text), _comments(comparison_text)
    out = [_diff(definition_added=_definition(new.definitions[n], new_c))
           for n in sorted(set(new.definitions) - set(old_defs))]
    out += [_diff(definition_removed=_definition(old_defs[n], old_c)) for n in sorted(set(old_defs) - set(new.definitions))]
    out += [_diff(caveat_added=_caveat(new.caveats[n], new_c)) for n in sorted(set(new.caveats) - set(old_cavs))]
    out += [_diff(caveat_removed=_caveat(old_cavs[n], old_c)) for n in sorted(set(old_cavs) - set(new.caveats))]
    for n in sorted(set(old_defs) & set(new.definitions)):
        out += _definition_diffs(n, old_defs[n], new.definitions[n], old_c, new_c)
    for n in sorted(set(old_cavs) & set(new.caveats)):
        out += _caveat_diffs(old_cavs[n], new.caveats[n], old_c, new_c)
    return out


# ------------------------------------------------------------------ the reachability of relations


@dataclass(frozen=True)
class _Reads:
    """What one relation or permission reads directly: the subject relations its result is made of (``...``:
    the object itself), the types whose wildcard it holds, and relations it reads only to walk them (an arrow's
    left side)."""

    subjects: frozenset[_Ref]
    wildcards: frozenset[str]
    walked: frozenset[_Ref]


def _lineage_closure(schema: m.Schema, start: str) -> list[str]:
    """``start`` and every type reachable from it over lineage relations."""
    seen, todo = [start], [start]
    while todo:
        for r in schema.lineage_relations(todo.pop()):
            for t in r.allowed:
                if t.type not in seen:
                    seen.append(t.type)
                    todo.append(t.type)
    return seen


def _label_sources(schema: m.Schema, definition: str, classification: str | None) -> Iterator[_Ref]:
    """What ``cleared`` reads: label, declassify and lineage relations of the object's type and its upstream
    types, and each classification's ``cleared`` relation."""
    names = [classification] if classification is not None else list(schema.classifications)
    for type_ in _lineage_closure(schema, definition):
        d = schema.definitions.get(type_)
        for r in d.relations.values() if d is not None else ():
            if r.kind is m.RelationKind.LINEAGE or (
                    r.kind is m.RelationKind.LABEL and any(t.type in names for t in r.allowed)) or (
                    r.kind is m.RelationKind.DECLASSIFY and r.classification in names):
                yield type_, r.name
    for name in names:
        if schema.member(name, "cleared") is not None:
            yield name, "cleared"


def _reads(schema: m.Schema, definition: str, name: str) -> _Reads:
    member = schema.member(definition, name)
    subjects: set[_Ref] = set()
    wildcards: set[str] = set()
    walked: set[_Ref] = set()
    if isinstance(member, m.Relation):
        for t in member.allowed:
            if t.wildcard:
                wildcards.add(t.type)
            else:
                subjects.add((t.type, t.relation or _ELLIPSIS))
        return _Reads(frozenset(subjects), frozenset(wildcards), frozenset())

    def arrow(relation: str, target: str) -> None:
        walked.add((definition, relation))
        left = schema.member(definition, relation)
        for t in left.allowed if isinstance(left, m.Relation) else ():
            if schema.member(t.type, target) is not None:
                subjects.add((t.type, target))

    def walk(e: m.Expr) -> None:
        if isinstance(e, m.Computed):
            subjects.add((definition, e.name))
        elif isinstance(e, m.Arrow):
            arrow(e.relation, e.target)
        elif isinstance(e, (m.Union, m.Intersection)):
            for child in e.children:
                walk(child)
        elif isinstance(e, m.Exclusion):
            walk(e.base)
            walk(e.subtracted)
        elif isinstance(e, m.Self):
            subjects.add((definition, _ELLIPSIS))
        elif isinstance(e, m.Cleared):
            subjects.update(_label_sources(schema, definition, e.classification))
        elif isinstance(e, m.Upstream):
            for r in schema.lineage_relations(definition):
                arrow(r.name, e.permission)

    if isinstance(member, m.Permission):
        walk(member.expr)
    return _Reads(frozenset(subjects), frozenset(wildcards), frozenset(walked))


def _reference(schema: m.Schema, ref: _Ref) -> _S.ReflectionRelationReference:
    definition, name = ref
    is_permission = isinstance(schema.member(definition, name), m.Permission)
    return _S.ReflectionRelationReference(definition_name=definition, relation_name=name, is_permission=is_permission)


def dependent(schema: m.Schema | None, definition: str, permission: str) -> list[_S.ReflectionRelationReference]:
    """DependentRelations: the relations and permissions ``definition#permission`` reads, transitively."""
    d = _require_definition(schema, definition)
    assert schema is not None
    member = d.member(permission)
    if member is None:
        raise _unknown_member(definition, permission)
    if not isinstance(member, m.Permission):
        raise V1Error(grpc.StatusCode.INVALID_ARGUMENT, f"the relation `{permission}` is not a permission",
                      "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION", {"relationName": permission})
    start = (definition, permission)
    seen, todo = {start}, [start]
    while todo:
        reads = _reads(schema, *todo.pop())
        seen.update(reads.walked)
        for ref in sorted(reads.subjects):
            if ref[1] != _ELLIPSIS and ref not in seen and schema.member(*ref) is not None:
                seen.add(ref)
                todo.append(ref)
    return [_reference(schema, ref) for ref in sorted(seen - {start})]


def computable(schema: m.Schema | None, definition: str, relation: str,
               definition_prefix: str) -> list[_S.ReflectionRelationReference]:
    """ComputablePermissions: the relations and permissions whose result a relationship with subject
    ``definition#relation`` (the object itself when ``relation`` is empty) can change, transitively."""
    d = _require_definition(schema, definition)
    assert schema is not None
    if relation and d.member(relation) is None:
        raise _unknown_member(definition, relation)
    by_subject: dict[_Ref, list[_Ref]] = {}  # who reads each subject relation
    by_wildcard: dict[str, list[_Ref]] = {}  # who holds each type's wildcard
    for x in schema.definitions.values():
        for name in (*x.relations, *x.permissions):
            reads = _reads(schema, x.name, name)
            for subject in reads.subjects:
                by_subject.setdefault(subject, []).append((x.name, name))
            for type_ in reads.wildcards:
                by_wildcard.setdefault(type_, []).append((x.name, name))
    found: set[_Ref] = set()
    todo = [(definition, relation or _ELLIPSIS)]
    while todo:
        subject = todo.pop()
        for ref in (*by_subject.get(subject, ()), *by_wildcard.get(subject[0], ())):
            if ref != subject and ref not in found:
                found.add(ref)
                todo.append(ref)
    found.discard((definition, relation))
    return [_reference(schema, ref) for ref in sorted(found) if ref[0].startswith(definition_prefix)]
