"""Names and flags: SpiceDB's naming rules, reserved words, ``use`` flags and duplicate names.

Example::

    >>> from headwater.dsl import parse_schema
    >>> c = Compilation(parse_schema("use typechecking\\ndefinition user {}"))
    >>> read_flags(c); collect_names(c)
    >>> sorted(c.flags), sorted(c.defs)
    (['typechecking'], ['user'])
"""

from __future__ import annotations

import re
from typing import Final

from .. import ast
from ..caveat_names import CAVEAT_NAME_RULE, caveat_name_problem
from ..errors import DuplicateNameError, InvalidNameError, UseFlagError
from .context import Compilation

__all__ = [
    "CAVEAT_NAME_RULE",
    "KNOWN_FLAGS",
    "caveat_name_problem",
    "validate_classification_names",
    "validate_member_names",
    "validate_parameter_name",
    "collect_names",
    "read_flags",
    "reserved_words",
]

# `import` and `partial` (composable schemas) are consumed by dsl/composable.py before the compiler runs.
KNOWN_FLAGS: Final = ("expiration", "import", "partial", "self", "typechecking")
# SpiceDB's reserved words; `expiration` and `self` become reserved under their `use` flag.
_KEYWORDS: Final = frozenset({"definition", "caveat", "relation", "permission", "nil", "with"})

_SEGMENT: Final = r"[a-z][a-z0-9_]{1,62}[a-z0-9]"
_TYPE_NAME: Final = re.compile(rf"^({_SEGMENT}/)*{_SEGMENT}$")
_RELATION_NAME: Final = re.compile(rf"^{_SEGMENT}$")
# Caveat names: one rule for schemas and relationships, in dsl/caveat_names.py (pure, so relationships stay light).
_PARAMETER_NAME: Final = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_VALUE_ID: Final = re.compile(r"^[a-zA-Z0-9/_|\-=+]{1,1024}$")


def _kind_of(item: object) -> str:
    if isinstance(item, ast.Definition):
        return "definition"
    if isinstance(item, ast.Classification):
        return "classification"
    return "caveat"


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


def read_flags(c: Compilation) -> None:
    """Record the document's ``use`` flags, refusing unknown and misplaced ones."""
    seen_definition = False
    for item in c.doc.items:
        if not isinstance(item, ast.UseFlag):
            seen_definition = True
            continue
        if item.name not in KNOWN_FLAGS:
            c.error(UseFlagError, f"unknown use flag `{item.name}`; known flags are: "
                    + ", ".join(KNOWN_FLAGS), item.name_span)
        else:
            if seen_definition:
                c.error(UseFlagError, f"`use {item.name}` must come before any definition or caveat", item.span)
            c.flags.add(item.name)  # even when misplaced, so the rest compiles without follow-on errors


def reserved_words(c: Compilation) -> frozenset[str]:
    """The words no definition, caveat or member may be named: keywords, and the names of flags in use."""
    return _KEYWORDS | {f for f in ("expiration", "self") if f in c.flags}


def collect_names(c: Compilation) -> None:
    """Index definitions, classifications and caveats by name, refusing duplicates and invalid names."""
    for item in c.doc.items:
        if isinstance(item, ast.UseFlag):
            continue
        if isinstance(item, (ast.ImportStatement, ast.Partial)):
            c.error(UseFlagError, "imports and partials are flattened before compiling: use "
                    "headwater.dsl.compile_schema", item.span)
            continue
        kind = _kind_of(item)
        first = c.defs.get(item.name) or c.caveats.get(item.name) or c.classes.get(item.name)
        if first is not None:
            first_kind = _kind_of(first)
            c.error(DuplicateNameError, f"the name `{item.name}` is already used by the {first_kind} at "
                    f"line {first.name_span.line}", item.name_span)
            continue
        if item.name in reserved_words(c):
            c.error(InvalidNameError, f"`{item.name}` is a reserved word and cannot name a {kind}", item.name_span)
        if isinstance(item, (ast.Definition, ast.Classification)):
            problem = _type_name_problem(item.name)
            if problem:
                c.error(InvalidNameError, f"invalid {kind} name `{item.name}`: {problem}", item.name_span)
            if isinstance(item, ast.Definition):
                c.defs[item.name] = item
            else:
                c.classes[item.name] = item
        else:
            problem = caveat_name_problem(item.name)
            if problem:
                c.error(InvalidNameError, f"invalid caveat name `{item.name}`: {problem}", item.name_span)
            c.caveats[item.name] = item


def validate_member_names(c: Compilation, d: ast.Definition) -> set[str]:
    """The names of ``d``'s members, refusing duplicates, reserved words and invalid names."""
    names: set[str] = set()
    reserved = reserved_words(c)
    for m in d.members:
        if m.name in names:
            c.error(DuplicateNameError, f"duplicate relation or permission `{m.name}` in definition "
                    f"`{d.name}`", m.name_span)
            continue
        names.add(m.name)
        if m.name in reserved:
            c.error(InvalidNameError, f"`{m.name}` is a reserved word and cannot name a "
                    f"{'permission' if isinstance(m, ast.Permission) else 'relation'}", m.name_span)
        elif not _RELATION_NAME.match(m.name):
            c.error(InvalidNameError, f"invalid name `{m.name}`: {_name_problem(m.name)}", m.name_span)
    return names


def validate_parameter_name(c: Compilation, caveat: ast.Caveat, p: ast.CaveatParameter) -> bool:
    """Whether ``p`` is a CEL identifier; refuses it otherwise."""
    if _PARAMETER_NAME.match(p.name):
        return True
    c.error(InvalidNameError, f"invalid parameter name `{p.name}` in caveat `{caveat.name}`: parameters "
            "are CEL identifiers (a letter or _, then letters, digits or _)", p.span)
    return False


def validate_classification_names(c: Compilation, cls: ast.Classification) -> None:
    """Refuse a statement written twice in a classification, and duplicate or invalid values."""
    seen: dict[str, ast.Span] = {}
    for kind, span in cls.statements:
        if kind in seen:
            c.error(DuplicateNameError, f"`{kind}` appears twice in classification `{cls.name}` (first at line "
                    f"{seen[kind].line})", span)
        seen.setdefault(kind, span)
    values: set[str] = set()
    for value, span in zip(cls.levels + cls.categories, cls.value_spans):
        if value in values:
            c.error(DuplicateNameError, f"value `{value}` appears twice in classification `{cls.name}`", span)
        elif not _VALUE_ID.match(value):
            c.error(InvalidNameError, f"invalid value `{value}` in classification `{cls.name}`: values are "
                    "object ids (letters, digits and /_|-=+)", span)
        values.add(value)
