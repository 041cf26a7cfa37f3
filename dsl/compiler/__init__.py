"""Syntax tree → compiled schema, with every semantic check SpiceDB makes.

Each problem becomes a :class:`~headwater.dsl.errors.SchemaError` with the span of
the offending text. All problems are collected; the first (by position) is raised
and carries the others in ``errors``. Warnings (legal but suspicious schemas) are
returned by :func:`lint_schema`.

Example::

    >>> from headwater.dsl import compile_schema
    >>> s = compile_schema("definition user {}\\ndefinition doc {\\n relation owner: user\\n}")
    >>> sorted(s.definitions)
    ['doc', 'user']
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from .. import ast, schema
from ..ast import Span
from ..errors import (
    CaveatError,
    DslError,
    DslSyntaxError,
    DuplicateAllowedTypeError,
    DuplicateNameError,
    InvalidArrowError,
    InvalidNameError,
    PermissionCycleError,
    SchemaError,
    TypeAnnotationError,
    UnknownCaveatError,
    UnknownRelationError,
    UnknownTypeError,
    UseFlagError,
    WildcardError,
)
from ..format import format_schema
from ..parser import parse_schema

__all__ = ["LintWarning", "compile_schema", "lint_schema"]

KNOWN_FLAGS = ("expiration", "self", "typechecking")
_UNSUPPORTED_FLAGS = ("import", "partial")
# SpiceDB's reserved words; `expiration` and `self` become reserved under their `use` flag.
_KEYWORDS = frozenset({"definition", "caveat", "relation", "permission", "nil", "with"})

_SEGMENT = r"[a-z][a-z0-9_]{1,62}[a-z0-9]"
_TYPE_NAME = re.compile(rf"^({_SEGMENT}/)*{_SEGMENT}$")
_RELATION_NAME = re.compile(rf"^{_SEGMENT}$")
_CAVEAT_NAME = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9_/]{0,127}$")
_PARAMETER_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _kind_of(item: object) -> str:
    if isinstance(item, ast.Definition):
        return "definition"
    if isinstance(item, ast.Classification):
        return "classification"
    return "caveat"


_VALUE_ID = re.compile(r"^[a-zA-Z0-9/_|\-=+]{1,1024}$")


def _name_problem(name: str) -> str:
    """Why ``name`` breaks SpiceDB's rule (3 to 64 of a-z, 0-9, _; starts with a letter; no trailing _)."""
    rule = "names are 3 to 64 characters of a-z, 0-9 and _, starting with a letter and not ending with _"
    if len(name) < 3:
        return f"it has {len(name)} character{'s' if len(name) != 1 else ''}; {rule}"
    if len(name) > 64:
        return f"it has {len(name)} characters, more than 64"
    if not name[0].isascii() or not name[0].islower():
        return f"it must start with a lower-case letter a-z; {rule}"
    if name.endswith("_"):
        return f"it must not end with _; {rule}"
    return f"it contains characters other than a-z, 0-9 and _; {rule}"


def _type_name_problem(name: str) -> str | None:
    """Why a definition name breaks the rule (naming the bad part of a prefixed name), or None."""
    if _TYPE_NAME.match(name):
        return None
    parts = name.split("/")
    for part in parts:
        if not _RELATION_NAME.match(part):
            where = f"the part `{part}`: " if len(parts) > 1 else ""
            return where + _name_problem(part)
    return "invalid"


@dataclass(frozen=True, slots=True)
class LintWarning:
    """A legal but suspicious construct (``headwater lint`` prints these)."""

    message: str
    span: Span

    def __str__(self) -> str:
        return f"{self.span.line}:{self.span.column}: warning: {self.message}"


def compile_schema(source: str | ast.Document, *, filename: str | None = None) -> schema.Schema:
    """Parse (if given text) and compile a schema, raising :class:`DslError` on any problem."""
    compiled, _ = _compile(source, filename)
    return compiled


def lint_schema(source: str | ast.Document, *, filename: str | None = None
                ) -> tuple[schema.Schema, list[LintWarning]]:
    """Compile a schema and also return its warnings; raises :class:`DslError` like :func:`compile_schema`."""
    return _compile(source, filename)


def _compile(source: str | ast.Document, filename: str | None) -> tuple[schema.Schema, list[LintWarning]]:
    text = source if isinstance(source, str) else ""
    doc = parse_schema(source, filename=filename) if isinstance(source, str) else source
    compiler = _Compiler(doc)
    try:
        result = compiler.run()
    except RecursionError:
        compiler.errors.append(SchemaError("schema nested too deeply to compile", ast.NO_SPAN))
        result = None
    if compiler.errors:
        errors = sorted(compiler.errors, key=lambda e: (e.span.line, e.span.column))
        for e in errors:
            e.with_source(text, filename)
        first = errors[0]
        first.errors = tuple(errors)
        raise first
    assert result is not None
    return result, compiler.warnings


class _Compiler:
    def __init__(self, doc: ast.Document) -> None:
        self.doc = doc
        self.errors: list[DslError] = []
        self.warnings: list[LintWarning] = []
        self.flags: set[str] = set()
        self.defs: dict[str, ast.Definition] = {}
        self.caveats: dict[str, ast.Caveat] = {}
        self.classes: dict[str, ast.Classification] = {}

    def error(self, cls: type[SchemaError], message: str, span: Span) -> None:
        self.errors.append(cls(message, span))

    # ------------------------------------------------------------ driver

    def run(self) -> schema.Schema | None:
        self._flags()
        self._names()
        caveats = {c.name: self._caveat(c) for c in self.caveats.values()}
        classifications: dict[str, schema.Classification] = {}
        definitions: dict[str, schema.Definition] = {}
        for c in self.classes.values():
            classifications[c.name], definitions[c.name] = self._classification(c)
        definitions.update({d.name: self._definition(d) for d in self.defs.values()})
        if self.errors:
            return None
        compiled = schema.Schema(definitions, caveats, frozenset(self.flags), classifications=classifications)
        self._check_graph(compiled)
        if self.errors:
            return None
        canonical = format_schema(self.doc)
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        return schema.Schema(definitions, caveats, frozenset(self.flags), canonical, digest, classifications)

    def _flags(self) -> None:
        seen_definition = False
        for item in self.doc.items:
            if not isinstance(item, ast.UseFlag):
                seen_definition = True
                continue
            if item.name in _UNSUPPORTED_FLAGS:
                self.error(UseFlagError, f"`use {item.name}` (composable schemas) is not supported by Headwater; "
                           "compose the schema into one file first", item.name_span)
            elif item.name not in KNOWN_FLAGS:
                self.error(UseFlagError, f"unknown use flag `{item.name}`; known flags are: "
                           + ", ".join(KNOWN_FLAGS), item.name_span)
            else:
                if seen_definition:
                    self.error(UseFlagError, f"`use {item.name}` must come before any definition or caveat",
                               item.span)
                self.flags.add(item.name)  # even when misplaced, so the rest compiles without follow-on errors

    def _reserved(self) -> frozenset[str]:
        return _KEYWORDS | {f for f in ("expiration", "self") if f in self.flags}

    def _names(self) -> None:
        for item in self.doc.items:
            if isinstance(item, ast.UseFlag):
                continue
            kind = _kind_of(item)
            first = self.defs.get(item.name) or self.caveats.get(item.name) or self.classes.get(item.name)
            if first is not None:
                first_kind = _kind_of(first)
                self.error(DuplicateNameError, f"the name `{item.name}` is already used by the {first_kind} at "
                           f"line {first.name_span.line}", item.name_span)
                continue
            if item.name in self._reserved():
                self.error(InvalidNameError, f"`{item.name}` is a reserved word and cannot name a {kind}",
                           item.name_span)
            if isinstance(item, (ast.Definition, ast.Classification)):
                problem = _type_name_problem(item.name)
                if problem:
                    self.error(InvalidNameError, f"invalid {kind} name `{item.name}`: {problem}", item.name_span)
                if isinstance(item, ast.Definition):
                    self.defs[item.name] = item
                else:
                    self.classes[item.name] = item
            else:
                if not _CAVEAT_NAME.match(item.name):
                    self.error(InvalidNameError, f"invalid caveat name `{item.name}`", item.name_span)
                self.caveats[item.name] = item

    # ------------------------------------------------------------ caveats

    def _caveat(self, c: ast.Caveat) -> schema.Caveat:
        from .. import cel  # imported here: the CEL library loads only when a schema has caveats

        params: dict[str, cel.CelType] = {}
        for p in c.parameters:
            if p.name in params:
                self.error(DuplicateNameError, f"duplicate parameter `{p.name}` in caveat `{c.name}`", p.span)
                continue
            t = self._cel_type(c, p, p.type)
            if not _PARAMETER_NAME.match(p.name):
                self.error(InvalidNameError, f"invalid parameter name `{p.name}` in caveat `{c.name}`: parameters "
                           "are CEL identifiers (a letter or _, then letters, digits or _)", p.span)
            elif t is not None:
                params[p.name] = t
        program = None
        try:
            used = cel.referenced_names(c.expression, (p.name for p in c.parameters))
        except cel.CelError as exc:
            self.error(CaveatError, f"invalid expression in caveat `{c.name}`: {exc.message}",
                       self._cel_span(c, exc.line, exc.column))
            return schema.Caveat(c.name, params, c.expression, c.doc)
        for p in c.parameters:
            if p.name not in used:
                self.error(CaveatError, f"parameter `{p.name}` of caveat `{c.name}` is never used", p.span)
        if len(params) == len(c.parameters):
            try:
                program = cel.compile_caveat(c.name, params, c.expression)
            except ValueError as exc:  # a parameter the CEL layer refuses; reported precisely above if ours
                self.error(CaveatError, f"invalid caveat `{c.name}`: {exc}", c.name_span)
            except cel.CelError as exc:
                self.error(CaveatError, f"invalid expression in caveat `{c.name}`: {exc.message}",
                           self._cel_span(c, exc.line, exc.column))
        return schema.Caveat(c.name, params, c.expression, c.doc, program)

    def _cel_type(self, c: ast.Caveat, p: ast.CaveatParameter, t: ast.CaveatType):  # -> cel.CelType | None
        from .. import cel

        arity = cel.KNOWN_TYPES.get(t.name)
        if arity is None:
            self.error(CaveatError, f"unknown type `{t.name}` for parameter `{p.name}` of caveat `{c.name}`; "
                       "known types: " + ", ".join(sorted(cel.KNOWN_TYPES)), t.span)
            return None
        if len(t.args) != arity:
            hint = "; map keys are always strings, so write `map<V>`" if t.name == "map" and len(t.args) == 2 else ""
            self.error(CaveatError, f"type `{t.name}` takes {arity} type argument{'s' if arity != 1 else ''}, "
                       f"found {len(t.args)} (parameter `{p.name}` of caveat `{c.name}`){hint}", t.span)
            return None
        args = []
        for a in t.args:
            sub = self._cel_type(c, p, a)
            if sub is None:
                return None
            args.append(sub)
        return cel.CelType(t.name, tuple(args))

    def _cel_span(self, c: ast.Caveat, line: int, column: int) -> Span:
        """Map a position inside the (dedented) CEL text back to the schema text, approximately."""
        start = c.expression_span
        if not start.line:
            return c.span
        if line <= 1:
            col = start.column + max(column - 1, 0)
            return Span(start.start, start.start + 1, start.line, col, start.line, col + 1)
        return Span(start.start, start.start + 1, start.line + line - 1, max(column, 1), start.line + line - 1,
                    max(column, 1) + 1)

    # ------------------------------------------------------------ classifications (Headwater)

    def _classification(self, c: ast.Classification) -> tuple[schema.Classification, schema.Definition]:
        seen: dict[str, Span] = {}
        for kind, span in c.statements:
            if kind in seen:
                self.error(DuplicateNameError, f"`{kind}` appears twice in classification `{c.name}` (first at line "
                           f"{seen[kind].line})", span)
            seen.setdefault(kind, span)
        values: set[str] = set()
        for value, span in zip(c.levels + c.categories, c.value_spans):
            if value in values:
                self.error(DuplicateNameError, f"value `{value}` appears twice in classification `{c.name}`", span)
            elif not _VALUE_ID.match(value):
                self.error(InvalidNameError, f"invalid value `{value}` in classification `{c.name}`: values are "
                           "object ids (letters, digits and /_|-=+)", span)
            values.add(value)
        if not c.levels and not c.categories:
            self.error(SchemaError, f"classification `{c.name}` has neither `levels` nor `categories`", c.name_span)
        allowed: tuple[schema.SubjectType, ...] = ()
        if c.cleared is None:
            self.error(SchemaError, f"classification `{c.name}` needs `cleared: <subject types>` to say who can be "
                       "cleared for its values", c.name_span)
        else:
            allowed = self._allowed(c.name, "cleared", c.cleared)
        model = schema.Classification(c.name, c.levels, c.categories, c.doc)
        cleared = schema.Relation("cleared", allowed, f"who is cleared for a value of `{c.name}`")
        return model, schema.Definition(c.name, {"cleared": cleared}, {}, c.doc)

    # ------------------------------------------------------------ definitions

    def _definition(self, d: ast.Definition) -> schema.Definition:
        relations: dict[str, schema.Relation] = {}
        permissions: dict[str, schema.Permission] = {}
        names: set[str] = set()
        reserved = self._reserved()
        for m in d.members:
            if m.name in names:
                self.error(DuplicateNameError, f"duplicate relation or permission `{m.name}` in definition "
                           f"`{d.name}`", m.name_span)
                continue
            names.add(m.name)
            if m.name in reserved:
                self.error(InvalidNameError, f"`{m.name}` is a reserved word and cannot name a "
                           f"{'permission' if isinstance(m, ast.Permission) else 'relation'}", m.name_span)
            elif not _RELATION_NAME.match(m.name):
                self.error(InvalidNameError, f"invalid name `{m.name}`: {_name_problem(m.name)}", m.name_span)
        for m in d.members:
            if m.name in relations or m.name in permissions:
                continue
            if isinstance(m, ast.Relation):
                relations[m.name] = self._relation(d, m)
            elif isinstance(m, ast.Lineage):
                relations[m.name] = self._lineage(d, m)
            elif isinstance(m, ast.Declassify):
                relations[m.name] = self._declassify(d, m, names)
        for m in d.members:
            if isinstance(m, ast.Permission) and m.name not in relations and m.name not in permissions:
                annotation = None
                if m.annotation is not None:
                    annotation = self._allowed(d.name, m.name, m.annotation, annotation=True)
                expr = self._expr(d, m, m.expr, relations, names)
                permissions[m.name] = schema.Permission(m.name, expr, annotation, m.doc)
        return schema.Definition(d.name, relations, permissions, d.doc)

    def _relation(self, d: ast.Definition, m: ast.Relation) -> schema.Relation:
        """An ordinary relation, or (Headwater) a label relation when its types are classifications."""
        labels = [a for a in m.allowed if a.type_name in self.classes]
        if not labels:
            return schema.Relation(m.name, self._allowed(d.name, m.name, m.allowed), m.doc)
        where = f"relation `{m.name}` in `{d.name}`"
        out: list[schema.SubjectType] = []
        for a in m.allowed:
            if a.type_name not in self.classes:
                self.error(SchemaError, f"a label relation holds classification values only; `{a.type_name}` is "
                           f"not a classification ({where})", a.span)
            elif a.relation is not None or a.wildcard or a.with_names:
                self.error(SchemaError, f"a label relation takes plain classification values: no `#relation`, "
                           f"wildcard, caveat or expiration ({where})", a.span)
            elif schema.SubjectType(a.type_name) in out:
                self.error(DuplicateAllowedTypeError, f"duplicate allowed type `{a.type_name}` on {where}", a.span)
            else:
                out.append(schema.SubjectType(a.type_name))
        return schema.Relation(m.name, tuple(out), m.doc, schema.RelationKind.LABEL)

    def _lineage(self, d: ast.Definition, m: ast.Lineage) -> schema.Relation:
        """Headwater: a lineage relation names plain upstream objects only."""
        where = f"lineage `{m.name}` in `{d.name}`"
        for a in m.allowed:
            if a.type_name in self.classes:
                self.error(SchemaError, f"a lineage relation names upstream objects, not classification values "
                           f"(`{a.type_name}`; {where}); label objects with `relation label: {a.type_name}`", a.span)
            elif a.relation is not None or a.wildcard or a.with_names:
                self.error(SchemaError, f"a lineage relation names plain objects: no `#relation` (subject set), "
                           f"wildcard, caveat or expiration ({where})", a.span)
        plain = tuple(a for a in m.allowed if a.type_name not in self.classes and a.relation is None
                      and not a.wildcard and not a.with_names)
        return schema.Relation(m.name, self._allowed(d.name, m.name, plain), m.doc, schema.RelationKind.LINEAGE)

    def _declassify(self, d: ast.Definition, m: ast.Declassify, names: set[str]) -> schema.Relation:
        """Headwater: ``declassify r: C by p``."""
        if m.classification not in self.classes:
            self.error(UnknownTypeError, f"unknown classification `{m.classification}` (declassify `{m.name}` in "
                       f"`{d.name}`)", m.classification_span)
        if m.by not in names:
            self.error(UnknownRelationError, f"`{d.name}` has no relation or permission `{m.by}` (the permission "
                       f"needed to declassify through `{m.name}`)", m.by_span)
        return schema.Relation(m.name, (schema.SubjectType(m.classification),), m.doc,
                               schema.RelationKind.DECLASSIFY, m.classification, m.by)

    def _allowed(self, d_name: str, member: str, allowed: tuple[ast.AllowedType, ...],
                 annotation: bool = False) -> tuple[schema.SubjectType, ...]:
        out: list[schema.SubjectType] = []
        where = f"{'permission' if annotation else 'relation'} `{member}` in `{d_name}`"
        for a in allowed:
            if a.type_name in self.classes:
                self.error(SchemaError, f"classification values (`{a.type_name}`) can only be the subjects of a "
                           f"label relation such as `relation label: {a.type_name}` ({where})", a.span)
                continue
            target = self.defs.get(a.type_name)
            if target is None and annotation and "typechecking" not in self.flags:
                self.warnings.append(LintWarning(f"unknown definition `{a.type_name}` in the type annotation of "
                                                 f"{where} (not checked without `use typechecking`)", a.span))
                continue
            if target is None:
                if a.type_name in self.caveats:
                    message = (f"`{a.type_name}` is a caveat, not a definition (allowed type of {where}); to "
                               f"caveat a subject type write it as `user with {a.type_name}`")
                else:
                    message = f"unknown definition `{a.type_name}` (allowed type of {where})"
                self.error(UnknownTypeError, message, a.span)
                continue
            relation = a.relation if a.relation not in (None, "...") else None
            if relation is not None and not any(m.name == relation for m in target.members):
                self.error(UnknownRelationError, f"`{a.type_name}` has no relation or permission `{relation}` "
                           f"(allowed type `{a.type_name}#{relation}` of {where})",
                           a.relation_span if a.relation_span.line else a.span)
                continue
            caveat, expiration = self._traits(where, a)
            if annotation and (caveat or expiration):
                self.error(TypeAnnotationError, f"a permission's type annotation cannot use `with` ({where})",
                           a.with_spans[0] if a.with_spans else a.span)
            st = schema.SubjectType(a.type_name, relation, a.wildcard, caveat, expiration)
            if st in out:
                self.error(DuplicateAllowedTypeError, f"duplicate allowed type `{st}` on {where}", a.span)
                continue
            out.append(st)
        return tuple(out)

    def _traits(self, where: str, a: ast.AllowedType) -> tuple[str | None, bool]:
        names, spans = a.with_names, a.with_spans or (a.span,) * len(a.with_names)
        if not names:
            return None, False
        expiration_on = "expiration" in self.flags
        if len(names) == 1 and names[0] == "expiration" and expiration_on:
            return None, True
        caveat = names[0]
        if caveat not in self.caveats:
            if caveat == "expiration" and len(names) == 1:
                self.error(UseFlagError, f"`with expiration` needs `use expiration` at the top of the schema "
                           f"({where}; without the flag, `expiration` would name a caveat, and there is none)",
                           spans[0])
            else:
                self.error(UnknownCaveatError, f"unknown caveat `{caveat}` on {where}", spans[0])
            caveat = None
        if len(names) == 2:
            if names[1] != "expiration":
                self.errors.append(DslSyntaxError(f"unexpected name `{names[1]}` after `and`; only `expiration` "
                                                  f"can follow `with {names[0]} and` ({where})", spans[1]))
            elif not expiration_on:
                self.error(UseFlagError, f"`with ... and expiration` needs `use expiration` at the top of the "
                           f"schema ({where})", spans[1])
            else:
                return caveat, True
        return caveat, False

    def _expr(self, d: ast.Definition, p: ast.Permission, e: ast.Expr, relations: dict[str, schema.Relation],
              names: set[str]) -> schema.Expr:
        where = f"permission `{p.name}` in `{d.name}`"
        if isinstance(e, ast.Nil):
            return schema.Nil()
        if isinstance(e, ast.SelfRef):
            if "self" in self.flags:
                return schema.Self()
            e = ast.RelationRef("self", e.span)
        if isinstance(e, ast.Call):
            return self._call(d, where, e, names)
        if isinstance(e, ast.RelationRef):
            if e.name == "cleared" and e.name not in names and self.classes:
                return self._call(d, where, ast.Call("cleared", "", e.span), names)
            if e.name not in names:
                hint = "; to mean the resource itself, add `use self` at the top" if e.name == "self" else ""
                self.error(UnknownRelationError, f"`{d.name}` has no relation or permission `{e.name}` "
                           f"(used in {where}){hint}", e.span)
            return schema.Computed(e.name)
        if isinstance(e, ast.Arrow):
            left = e.left
            if not isinstance(left, ast.RelationRef):
                self.error(InvalidArrowError, f"chained arrows are not supported (in {where}); introduce a "
                           "permission for the inner arrow", e.span)
                return schema.Nil()
            if left.name not in names:
                self.error(UnknownRelationError, f"`{d.name}` has no relation `{left.name}` (left side of an "
                           f"arrow in {where})", left.span)
            elif left.name not in relations:
                self.error(InvalidArrowError, f"the left side of an arrow must be a relation, but `{left.name}` "
                           f"is a permission (in {where})", left.span)
            mode = schema.ArrowMode.ALL if e.function is ast.ArrowFunction.ALL else schema.ArrowMode.ANY
            return schema.Arrow(left.name, e.target, mode)
        if isinstance(e, ast.Union):
            return schema.Union(self._flatten(d, p, e, ast.Union, relations, names))
        if isinstance(e, ast.Intersection):
            return schema.Intersection(self._flatten(d, p, e, ast.Intersection, relations, names))
        if isinstance(e, ast.Exclusion):
            return schema.Exclusion(self._expr(d, p, e.left, relations, names),
                                    self._expr(d, p, e.right, relations, names))
        raise AssertionError(f"unknown expression node {e!r}")

    def _call(self, d: ast.Definition, where: str, e: ast.Call, names: set[str]) -> schema.Expr:
        """Headwater's ``cleared``, ``cleared(C)`` and ``upstream(p)``."""
        if e.function == "cleared":
            reachable = self._label_classes(d.name)
            if e.argument:
                if e.argument not in self.classes:
                    self.error(UnknownTypeError, f"unknown classification `{e.argument}` in `cleared(...)` ({where})",
                               e.argument_span)
                elif e.argument not in reachable:
                    self.error(SchemaError, f"`cleared({e.argument})` can never matter in `{d.name}`: no "
                               f"`{e.argument}` label can reach it (no relation of that classification on "
                               f"`{d.name}` or on anything upstream of it through lineage) ({where})", e.span)
                return schema.Cleared(e.argument)
            if not reachable:
                self.error(SchemaError, f"`cleared` can never matter in `{d.name}`: no label can reach it (no label "
                           f"relation on `{d.name}` or on anything upstream of it through lineage) ({where})", e.span)
            return schema.Cleared(None)
        if e.function == "upstream":
            upstream = self._upstream_types(d.name)
            if not any(self._has_member(t, e.argument) for t in upstream):
                found = ", ".join(f"`{t}`" for t in sorted(upstream)) or "none"
                self.error(UnknownRelationError, f"`upstream({e.argument})`: no definition upstream of `{d.name}` "
                           f"through lineage has a relation or permission `{e.argument}` (upstream types: {found}) "
                           f"({where})", e.argument_span)
            return schema.Upstream(e.argument)
        self.error(SchemaError, f"unknown function `{e.function}(...)`; Headwater has `cleared(classification)` and "
                   f"`upstream(permission)` ({where})", e.span)
        return schema.Nil()

    def _has_member(self, type_name: str, name: str) -> bool:
        d = self.defs.get(type_name)
        return d is not None and any(m.name == name for m in d.members)

    def _upstream_types(self, type_name: str) -> set[str]:
        """Types reachable from ``type_name`` through one or more lineage relations."""
        out: set[str] = set()
        stack = [type_name]
        while stack:
            d = self.defs.get(stack.pop())
            for m in d.members if d is not None else ():
                if isinstance(m, ast.Lineage):
                    for a in m.allowed:
                        if a.type_name not in out:
                            out.add(a.type_name)
                            stack.append(a.type_name)
        return out

    def _label_classes(self, type_name: str) -> set[str]:
        """Classifications whose labels can reach objects of ``type_name`` (own labels or upstream)."""
        out: set[str] = set()
        for t in {type_name} | self._upstream_types(type_name):
            d = self.defs.get(t)
            for m in d.members if d is not None else ():
                if isinstance(m, ast.Relation):
                    out |= {a.type_name for a in m.allowed if a.type_name in self.classes}
        return out

    def _flatten(self, d, p, e, cls, relations, names) -> tuple[schema.Expr, ...]:
        out: list[schema.Expr] = []
        stack = [e]
        while stack:
            node = stack.pop()
            if isinstance(node, cls):
                stack.append(node.right)
                stack.append(node.left)
            else:
                out.append(self._expr(d, p, node, relations, names))
        return tuple(out)

    # ------------------------------------------------------------ whole-schema checks

    def _check_graph(self, s: schema.Schema) -> None:
        wildcard = _WildcardReach(s)
        for d_ast in self.defs.values():
            d = s.definitions[d_ast.name]
            for m in d_ast.members:
                if isinstance(m, ast.Relation):
                    rel = d.relations.get(m.name)
                    if rel is None:
                        continue
                    for a, st in zip((a for a in m.allowed), rel.allowed):
                        # As SpiceDB: only subject sets of *other* definitions are checked (recursive groups
                        # with a public wildcard, `group#member` inside `group`, are legal).
                        if (st.relation is not None and st.type != d.name
                                and wildcard.relation_holds(st.type, st.relation)):
                            self.error(WildcardError, f"`{st.type}#{st.relation}` can hold a wildcard, so it "
                                       f"cannot be an allowed type (relation `{m.name}` in `{d.name}`); allow the "
                                       "wildcard on this relation directly instead", a.span)
                elif isinstance(m, ast.Permission):
                    perm = d.permissions.get(m.name)
                    if perm is None:
                        continue
                    for arrow, span in _arrows(perm.expr, m.expr):
                        left = d.relations.get(arrow.relation)
                        if left is not None and not any(s.member(t.type, arrow.target) for t in left.allowed):
                            self.warnings.append(LintWarning(
                                f"the arrow `{arrow.relation}->{arrow.target}` can never grant: no subject type of "
                                f"`{arrow.relation}` ({', '.join(str(t) for t in left.allowed)}) has a relation or "
                                f"permission `{arrow.target}`", span))
                        if arrow.relation in d.relations and wildcard.relation_holds(d.name, arrow.relation):
                            self.error(InvalidArrowError, f"the arrow `{arrow.relation}->{arrow.target}` walks "
                                       f"relation `{arrow.relation}`, which can hold a wildcard; arrows cannot "
                                       f"walk wildcards (permission `{m.name}` in `{d.name}`)", span)
                    if perm.annotation is not None and "typechecking" in self.flags:
                        reach = _terminal_types(s, d.name, m.name, set())
                        allowed = {t.type for t in perm.annotation}
                        extra = sorted(reach - allowed)
                        if extra:
                            self.error(TypeAnnotationError, f"permission `{m.name}` in `{d.name}` is annotated "
                                       f"`{' | '.join(str(t) for t in perm.annotation)}` but can also grant "
                                       f"subjects of type {', '.join(f'`{x}`' for x in extra)}", m.name_span)
            self._cycles(d, d_ast)

    def _cycles(self, d: schema.Definition, d_ast: ast.Definition) -> None:
        spans = {m.name: m.name_span for m in d_ast.members}
        # Pure aliases (`permission a = b`) that loop: SpiceDB refuses these.
        reported: set[str] = set()
        for name, perm in d.permissions.items():
            chain = [name]
            expr = perm.expr
            while isinstance(expr, schema.Computed) and expr.name in d.permissions:
                if expr.name in chain:
                    cycle = chain[chain.index(expr.name):]
                    if not reported & set(cycle):
                        first = min(cycle, key=lambda n: (spans[n].line, spans[n].column))
                        self.error(PermissionCycleError, f"permissions in `{d.name}` are aliases of each other in "
                                   f"a cycle: {' -> '.join(cycle + [cycle[0]])}", spans[first])
                        reported.update(cycle)
                    break
                chain.append(expr.name)
                expr = d.permissions[expr.name].expr
        # Other same-object cycles (`a = b + x`, `b = a`) are legal in SpiceDB but can never grant through
        # the cycle: warn.
        graph = {name: set(_computed_names(p.expr)) & set(d.permissions) for name, p in d.permissions.items()}
        for name in graph:
            if name in reported:
                continue
            if _reaches(graph, name, name):
                self.warnings.append(LintWarning(f"permission `{name}` in `{d.name}` depends on itself through "
                                              "its own object; that path can never grant", spans[name]))


def _computed_names(e: schema.Expr) -> Iterator[str]:
    if isinstance(e, schema.Computed):
        yield e.name
    elif isinstance(e, (schema.Union, schema.Intersection)):
        for c in e.children:
            yield from _computed_names(c)
    elif isinstance(e, schema.Exclusion):
        yield from _computed_names(e.base)
        yield from _computed_names(e.subtracted)


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen: set[str] = set()
    stack = list(graph.get(start, ()))
    while stack:
        n = stack.pop()
        if n == goal:
            return True
        if n not in seen:
            seen.add(n)
            stack.extend(graph.get(n, ()))
    return False


def _arrows(e: schema.Expr, a: ast.Expr) -> Iterator[tuple[schema.Arrow, Span]]:
    """Each compiled arrow with the span of its source (matched by walking both trees)."""
    spans = {}
    stack: list[ast.Expr] = [a]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Arrow) and isinstance(node.left, ast.RelationRef):
            spans.setdefault((node.left.name, node.target), node.span)
        elif isinstance(node, (ast.Union, ast.Intersection, ast.Exclusion)):
            stack.extend((node.left, node.right))
    cstack: list[schema.Expr] = [e]
    while cstack:
        node = cstack.pop()
        if isinstance(node, schema.Arrow):
            yield node, spans.get((node.relation, node.target), ast.NO_SPAN)
        elif isinstance(node, (schema.Union, schema.Intersection)):
            cstack.extend(node.children)
        elif isinstance(node, schema.Exclusion):
            cstack.extend((node.base, node.subtracted))


class _WildcardReach:
    """Whether a relation can hold a wildcard subject, directly or through subject sets of relations."""

    def __init__(self, s: schema.Schema) -> None:
        self.s = s
        self.memo: dict[tuple[str, str], bool] = {}

    def relation_holds(self, type_: str, relation: str, visiting: frozenset[tuple[str, str]] = frozenset()) -> bool:
        key = (type_, relation)
        if key in self.memo:
            return self.memo[key]
        if key in visiting:
            return False
        d = self.s.definitions.get(type_)
        rel = d.relations.get(relation) if d else None
        if rel is None:
            return False  # permissions do not count (as in SpiceDB)
        result = rel.allows_wildcard or any(
            t.relation is not None and self.relation_holds(t.type, t.relation, visiting | {key}) for t in rel.allowed
        )
        self.memo[key] = result
        return result


def _terminal_types(s: schema.Schema, type_: str, name: str, visiting: set[tuple[str, str]]) -> set[str]:
    """Object types of the subjects that ``type_#name`` can grant (for ``use typechecking``)."""
    key = (type_, name)
    if key in visiting:
        return set()
    visiting.add(key)
    d = s.definitions.get(type_)
    out: set[str] = set()
    if d is None:
        return out
    rel = d.relations.get(name)
    if rel is not None:
        for t in rel.allowed:
            if t.relation is None or t.wildcard:
                out.add(t.type)
            else:
                out |= _terminal_types(s, t.type, t.relation, visiting)
        return out
    perm = d.permissions.get(name)
    if perm is None:
        return out

    def walk(e: schema.Expr) -> set[str]:
        if isinstance(e, schema.Computed):
            return _terminal_types(s, type_, e.name, visiting)
        if isinstance(e, schema.Self):
            return {type_}
        if isinstance(e, (schema.Union, schema.Intersection)):
            acc: set[str] = set()
            for c in e.children:
                acc |= walk(c)
            return acc
        if isinstance(e, schema.Exclusion):
            return walk(e.base)
        if isinstance(e, schema.Arrow):
            acc = set()
            left = d.relations.get(e.relation)
            for t in left.allowed if left else ():
                if s.member(t.type, e.target) is not None:
                    acc |= _terminal_types(s, t.type, e.target, visiting)
            return acc
        return set()

    return walk(perm.expr)
