"""Syntax tree → compiled schema, with every semantic check SpiceDB makes.

The schema must stay within its limits (``dsl/limits.py``), checked before any
step. Each problem becomes a :class:`~headwater.dsl.errors.SchemaError` with the span of
the offending text. All problems are collected; the first (by position) is raised
and carries the others in ``errors``. Warnings (legal but suspicious schemas) are
returned by :func:`lint_schema`. The steps, one module each:

* ``names``: ``use`` flags, naming rules, reserved words, duplicate names;
* ``members``: definitions, relations and their allowed types, classifications, caveats;
* ``expressions``: permission expressions, ``cleared`` and ``upstream``;
* ``graph``: wildcards, arrows, type annotations and permission cycles across the schema;
* ``warnings``: SpiceDB's lint warnings, each named (``// spicedb-ignore-warning: <name>`` turns one off).

They share one ``Compilation`` (``context``).

Example::

    >>> from headwater.dsl import compile_schema
    >>> s = compile_schema("definition user {}\\ndefinition doc {\\n relation owner: user\\n}")
    >>> sorted(s.definitions)
    ['doc', 'user']
"""

from __future__ import annotations

import hashlib

from .. import ast, schema
from ..format import format_schema
from ..limits import SchemaLimits, check_tree
from ..parser import parse_schema
from . import context, graph, members, names, warnings
from .context import LintWarning

__all__ = ["LintWarning", "compile_schema", "lint_schema"]


def compile_schema(source: str | ast.Document, *, filename: str | None = None,
                   limits: SchemaLimits | None = None) -> schema.Schema:
    """Parse (if given text) and compile a schema within ``limits`` (default: ``SchemaLimits()``), raising
    :class:`DslError` on any problem."""
    compiled, _ = _compile(source, filename, limits)
    return compiled


def lint_schema(source: str | ast.Document, *, filename: str | None = None, limits: SchemaLimits | None = None
                ) -> tuple[schema.Schema, list[LintWarning]]:
    """Compile a schema and also return its warnings; raises :class:`DslError` like :func:`compile_schema`."""
    return _compile(source, filename, limits)


def _compile(source: str | ast.Document, filename: str | None, limits: SchemaLimits | None
             ) -> tuple[schema.Schema, list[LintWarning]]:
    limits = limits if limits is not None else SchemaLimits()
    if isinstance(source, str):
        text, doc = source, parse_schema(source, filename=filename, limits=limits)  # the parser checks the limits
        c = context.Compilation(doc)
    else:
        text, c = "", context.Compilation(source)
        c.errors.extend(check_tree(source, limits))  # a tree built by hand: checked before anything recurses
    result = _run(c) if not c.errors else None
    if c.errors:
        errors = sorted(c.errors, key=lambda e: (e.span.line, e.span.column))
        for e in errors:
            e.with_source(text, filename)
        first = errors[0]
        first.errors = tuple(errors)
        raise first
    assert result is not None
    return result, sorted(c.warnings, key=lambda w: (w.span.line, w.span.column))


def _run(c: context.Compilation) -> schema.Schema | None:
    """Every step in order; None when a step found a problem (``c.errors`` says which)."""
    names.read_flags(c)
    names.collect_names(c)
    caveats = {cav.name: members.compile_caveat_declaration(c, cav) for cav in c.caveats.values()}
    classifications: dict[str, schema.Classification] = {}
    definitions: dict[str, schema.Definition] = {}
    for cls in c.classes.values():
        classifications[cls.name], definitions[cls.name] = members.compile_classification(c, cls)
    definitions.update({d.name: members.compile_definition(c, d) for d in c.defs.values()})
    if c.errors:
        return None
    flags = frozenset(c.flags)
    compiled = schema.Schema(definitions, caveats, flags, classifications=classifications)
    graph.check_graph(c, compiled)
    if c.errors:
        return None
    warnings.check_warnings(c, compiled)
    canonical = format_schema(c.doc)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return schema.Schema(definitions, caveats, flags, canonical, digest, classifications)
