"""Members: definitions, their relations and allowed types (with traits), classifications and caveats.

Headwater's own members are checked here too: a relation whose types are
classifications is a label relation, ``lineage`` names plain upstream objects,
and ``declassify`` names a classification and the permission it needs.
Permission expressions are compiled by ``expressions``.

Example::

    >>> from headwater.dsl import parse_schema
    >>> from headwater.dsl.compiler.names import collect_names
    >>> c = Compilation(parse_schema("definition user {}\\ndefinition doc {\\n relation owner: user\\n}"))
    >>> collect_names(c)
    >>> [str(t) for t in compile_definition(c, c.defs["doc"]).relations["owner"].allowed]
    ['user']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import ast, schema
from ..ast import Span
from ..errors import (
    CaveatError,
    CelError,
    DslSyntaxError,
    DuplicateAllowedTypeError,
    DuplicateNameError,
    SchemaError,
    TypeAnnotationError,
    UnknownCaveatError,
    UnknownRelationError,
    UnknownTypeError,
    UseFlagError,
)
from .context import Compilation
from .expressions import compile_expression
from .names import validate_classification_names, validate_member_names, validate_parameter_name

if TYPE_CHECKING:
    from ..cel import CelType

__all__ = ["compile_caveat_declaration", "compile_classification", "compile_definition"]


# ------------------------------------------------------------ definitions


def compile_definition(c: Compilation, d: ast.Definition) -> schema.Definition:
    """The compiled definition: relations (ordinary, label, lineage, declassify) first, then permissions."""
    relations: dict[str, schema.Relation] = {}
    permissions: dict[str, schema.Permission] = {}
    names = validate_member_names(c, d)
    for m in d.members:
        if m.name in relations or m.name in permissions:
            continue
        if isinstance(m, ast.Relation):
            relations[m.name] = _relation(c, d, m)
        elif isinstance(m, ast.Lineage):
            relations[m.name] = _lineage(c, d, m)
        elif isinstance(m, ast.Declassify):
            relations[m.name] = _declassify(c, d, m, names)
    for m in d.members:
        if isinstance(m, ast.Permission) and m.name not in relations and m.name not in permissions:
            annotation = None
            if m.annotation is not None:
                annotation = _allowed(c, d.name, m.name, m.annotation, annotation=m)
            expr = compile_expression(c, d, m, m.expr, relations, names)
            permissions[m.name] = schema.Permission(m.name, expr, annotation, m.doc)
    return schema.Definition(d.name, relations, permissions, d.doc)


def _is_plain(a: ast.AllowedType) -> bool:
    """Whether ``a`` names objects only: no ``#relation``, wildcard, caveat or expiration."""
    return a.relation is None and not a.wildcard and not a.with_names


def _relation(c: Compilation, d: ast.Definition, m: ast.Relation) -> schema.Relation:
    """An ordinary relation, or (Headwater) a label relation when its types are classifications."""
    labels = [a for a in m.allowed if a.type_name in c.classes]
    if not labels:
        return schema.Relation(m.name, _allowed(c, d.name, m.name, m.allowed), m.doc)
    where = f"relation `{m.name}` in `{d.name}`"
    out: list[schema.SubjectType] = []
    for a in m.allowed:
        if a.type_name not in c.classes:
            c.error(SchemaError, f"a label relation holds classification values only; `{a.type_name}` is "
                    f"not a classification ({where})", a.span)
        elif not _is_plain(a):
            c.error(SchemaError, f"a label relation takes plain classification values: no `#relation`, "
                    f"wildcard, caveat or expiration ({where})", a.span)
        elif schema.SubjectType(a.type_name) in out:
            c.error(DuplicateAllowedTypeError, f"duplicate allowed type `{a.type_name}` on {where}", a.span)
        else:
            out.append(schema.SubjectType(a.type_name))
    return schema.Relation(m.name, tuple(out), m.doc, schema.RelationKind.LABEL)


def _lineage(c: Compilation, d: ast.Definition, m: ast.Lineage) -> schema.Relation:
    """Headwater: a lineage relation names plain upstream objects only."""
    where = f"lineage `{m.name}` in `{d.name}`"
    for a in m.allowed:
        if a.type_name in c.classes:
            c.error(SchemaError, f"a lineage relation names upstream objects, not classification values "
                    f"(`{a.type_name}`; {where}); label objects with `relation label: {a.type_name}`", a.span)
        elif not _is_plain(a):
            c.error(SchemaError, f"a lineage relation names plain objects: no `#relation` (subject set), "
                    f"wildcard, caveat or expiration ({where})", a.span)
    plain = tuple(a for a in m.allowed if a.type_name not in c.classes and _is_plain(a))
    return schema.Relation(m.name, _allowed(c, d.name, m.name, plain), m.doc, schema.RelationKind.LINEAGE)


def _declassify(c: Compilation, d: ast.Definition, m: ast.Declassify, names: set[str]) -> schema.Relation:
    """Headwater: ``declassify r: C by p``."""
    if m.classification not in c.classes:
        c.error(UnknownTypeError, f"unknown classification `{m.classification}` (declassify `{m.name}` in "
                f"`{d.name}`)", m.classification_span)
    if m.by not in names:
        c.error(UnknownRelationError, f"`{d.name}` has no relation or permission `{m.by}` (the permission "
                f"needed to declassify through `{m.name}`)", m.by_span)
    return schema.Relation(m.name, (schema.SubjectType(m.classification),), m.doc,
                           schema.RelationKind.DECLASSIFY, m.classification, m.by)


# ------------------------------------------------------------ allowed types


def _allowed(c: Compilation, d_name: str, member: str, allowed: tuple[ast.AllowedType, ...],
             annotation: ast.Permission | None = None) -> tuple[schema.SubjectType, ...]:
    """The subject types of a relation (or of the type annotation of permission ``annotation``), each resolved
    and checked."""
    out: list[schema.SubjectType] = []
    where = f"{'permission' if annotation is not None else 'relation'} `{member}` in `{d_name}`"
    for a in allowed:
        if a.type_name in c.classes:
            c.error(SchemaError, f"classification values (`{a.type_name}`) can only be the subjects of a "
                    f"label relation such as `relation label: {a.type_name}` ({where})", a.span)
            continue
        if a.type_name not in c.defs and annotation is not None and "typechecking" not in c.flags:
            c.warn(f"unknown definition `{a.type_name}` in the type annotation of {where} (not checked without "
                   "`use typechecking`)", a.span, name="annotation-references-unknown-definition", member=annotation)
            continue
        if a.type_name not in c.defs:
            if a.type_name in c.caveats:
                message = (f"`{a.type_name}` is a caveat, not a definition (allowed type of {where}); to "
                           f"caveat a subject type write it as `user with {a.type_name}`")
            else:
                message = f"unknown definition `{a.type_name}` (allowed type of {where})"
            c.error(UnknownTypeError, message, a.span)
            continue
        relation = a.relation if a.relation not in (None, "...") else None
        if relation is not None and not c.has_member(a.type_name, relation):
            c.error(UnknownRelationError, f"`{a.type_name}` has no relation or permission `{relation}` "
                    f"(allowed type `{a.type_name}#{relation}` of {where})",
                    a.relation_span if a.relation_span.line else a.span)
            continue
        caveat, expiration = _traits(c, where, a)
        if annotation is not None and (caveat or expiration):
            c.error(TypeAnnotationError, f"a permission's type annotation cannot use `with` ({where})",
                    a.with_spans[0] if a.with_spans else a.span)
        st = schema.SubjectType(a.type_name, relation, a.wildcard, caveat, expiration)
        if st in out:
            c.error(DuplicateAllowedTypeError, f"duplicate allowed type `{st}` on {where}", a.span)
            continue
        out.append(st)
    return tuple(out)


def _traits(c: Compilation, where: str, a: ast.AllowedType) -> tuple[str | None, bool]:
    """The caveat (or None) and whether expiration applies, from ``with ...`` on an allowed type."""
    names, spans = a.with_names, a.with_spans or (a.span,) * len(a.with_names)
    if not names:
        return None, False
    expiration_on = "expiration" in c.flags
    if len(names) == 1 and names[0] == "expiration" and expiration_on:
        return None, True
    caveat: str | None = names[0]
    if caveat not in c.caveats:
        if caveat == "expiration" and len(names) == 1:
            c.error(UseFlagError, f"`with expiration` needs `use expiration` at the top of the schema "
                    f"({where}; without the flag, `expiration` would name a caveat, and there is none)", spans[0])
        else:
            c.error(UnknownCaveatError, f"unknown caveat `{caveat}` on {where}", spans[0])
        caveat = None
    if len(names) == 2:
        if names[1] != "expiration":
            c.errors.append(DslSyntaxError(f"unexpected name `{names[1]}` after `and`; only `expiration` "
                                           f"can follow `with {names[0]} and` ({where})", spans[1]))
        elif not expiration_on:
            c.error(UseFlagError, f"`with ... and expiration` needs `use expiration` at the top of the "
                    f"schema ({where})", spans[1])
        else:
            return caveat, True
    return caveat, False


# ------------------------------------------------------------ classifications (Headwater)


def compile_classification(c: Compilation, cls: ast.Classification
                           ) -> tuple[schema.Classification, schema.Definition]:
    """The classification's lattice, and the definition its values are objects of (with relation ``cleared``)."""
    validate_classification_names(c, cls)
    if not cls.levels and not cls.categories:
        c.error(SchemaError, f"classification `{cls.name}` has neither `levels` nor `categories`", cls.name_span)
    allowed: tuple[schema.SubjectType, ...] = ()
    if cls.cleared is None:
        c.error(SchemaError, f"classification `{cls.name}` needs `cleared: <subject types>` to say who can be "
                "cleared for its values", cls.name_span)
    else:
        allowed = _allowed(c, cls.name, "cleared", cls.cleared)
    model = schema.Classification(cls.name, cls.levels, cls.categories, cls.doc)
    cleared = schema.Relation("cleared", allowed, f"who is cleared for a value of `{cls.name}`")
    return model, schema.Definition(cls.name, {"cleared": cleared}, {}, cls.doc)


# ------------------------------------------------------------ caveats


def compile_caveat_declaration(c: Compilation, cav: ast.Caveat) -> schema.Caveat:
    """The caveat with its parameters resolved and its CEL expression compiled (when every parameter is valid)."""
    from .. import cel  # imported here: the CEL library loads only when a schema has caveats

    params: dict[str, CelType] = {}
    for p in cav.parameters:
        if p.name in params:
            c.error(DuplicateNameError, f"duplicate parameter `{p.name}` in caveat `{cav.name}`", p.span)
            continue
        t = _parameter_type(c, cav, p, p.type)
        if validate_parameter_name(c, cav, p) and t is not None:
            params[p.name] = t
    program = None
    try:
        used = cel.referenced_names(cav.expression, (p.name for p in cav.parameters))
    except cel.CelError as exc:
        _expression_error(c, cav, exc)
        return schema.Caveat(cav.name, params, cav.expression, cav.doc)
    for p in cav.parameters:
        if p.name not in used:
            c.error(CaveatError, f"parameter `{p.name}` of caveat `{cav.name}` is never used", p.span)
    if len(params) == len(cav.parameters):
        try:
            program = cel.compile_caveat(cav.name, params, cav.expression)
        except ValueError as exc:  # a parameter the CEL layer refuses; reported precisely above if ours
            c.error(CaveatError, f"invalid caveat `{cav.name}`: {exc}", cav.name_span)
        except cel.CelError as exc:
            _expression_error(c, cav, exc)
    return schema.Caveat(cav.name, params, cav.expression, cav.doc, program)


def _parameter_type(c: Compilation, cav: ast.Caveat, p: ast.CaveatParameter, t: ast.CaveatType
                    ) -> CelType | None:
    """The CEL type of a parameter as written, or None (with the error recorded) if it is not one."""
    from .. import cel

    arity = cel.KNOWN_TYPES.get(t.name)
    if arity is None:
        c.error(CaveatError, f"unknown type `{t.name}` for parameter `{p.name}` of caveat `{cav.name}`; "
                "known types: " + ", ".join(sorted(cel.KNOWN_TYPES)), t.span)
        return None
    if len(t.args) != arity:
        hint = "; map keys are always strings, so write `map<V>`" if t.name == "map" and len(t.args) == 2 else ""
        c.error(CaveatError, f"type `{t.name}` takes {arity} type argument{'s' if arity != 1 else ''}, "
                f"found {len(t.args)} (parameter `{p.name}` of caveat `{cav.name}`){hint}", t.span)
        return None
    args = []
    for a in t.args:
        sub = _parameter_type(c, cav, p, a)
        if sub is None:
            return None
        args.append(sub)
    return cel.CelType(t.name, tuple(args))


def _expression_error(c: Compilation, cav: ast.Caveat, exc: CelError) -> None:
    """Report a CEL compile error at its place in the schema text."""
    c.error(CaveatError, f"invalid expression in caveat `{cav.name}`: {exc.message}",
            _expression_span(cav, exc.line, exc.column))


def _expression_span(cav: ast.Caveat, line: int, column: int) -> Span:
    """Map a position inside the (dedented) CEL text back to the schema text.

    A column past the end of its line (CEL reports an unexpected end there) is placed just after it.
    """
    lines = cav.expression.split("\n")
    if not cav.expression_origins or not 1 <= line <= len(cav.expression_origins):
        return cav.expression_span if cav.expression_span.line else cav.span
    origin_line, origin_column = cav.expression_origins[line - 1]
    col = origin_column + min(max(column, 1), len(lines[line - 1]) + 1) - 1
    offset = cav.expression_span.start
    return Span(offset, offset + 1, origin_line, col, origin_line, col + 1)
