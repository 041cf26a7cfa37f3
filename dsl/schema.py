"""The compiled schema: the resolved, checked model that the engine evaluates.

Produced by :func:`headwater.dsl.compile_schema`. Names are resolved (every
reference points at something that exists), expressions are normalised (``+``
and ``&`` chains flattened, ``r.any(p)`` is ``r->p``), and lookups are dicts.
This is the only part of ``dsl`` that the engine reads.

Example::

    >>> from headwater.dsl import compile_schema
    >>> schema = compile_schema('''
    ... definition user {}
    ... definition folder {
    ...     relation reader: user
    ... }
    ... definition document {
    ...     relation parent: folder
    ...     permission read = parent.any(reader)
    ... }''')
    >>> schema.definitions["document"].permissions["read"].expr
    Arrow(relation='parent', target='reader', mode=<ArrowMode.ANY: 'any'>)
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from .cel import CelType, CompiledCaveat


# ---------------------------------------------------------------- subject types


@dataclass(frozen=True, slots=True)
class SubjectType:
    """One allowed subject type of a relation: ``user``, ``user:*``, ``group#member``, with traits."""

    type: str
    relation: str | None = None  # None: the object itself (written `user` or `user#...`)
    wildcard: bool = False
    caveat: str | None = None
    expiration: bool = False

    def __str__(self) -> str:
        text = self.type
        if self.wildcard:
            text += ":*"
        elif self.relation is not None:
            text += f"#{self.relation}"
        traits = [t for t in (self.caveat, "expiration" if self.expiration else None) if t]
        if traits:
            text += " with " + " and ".join(traits)
        return text


# ---------------------------------------------------------------- expressions


class ArrowMode(enum.Enum):
    """``ANY``: some subject of the relation has the target (``->``, ``.any``); ``ALL``: every one does."""

    ANY = "any"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class Computed:
    """A relation or permission of the same resource."""

    name: str


@dataclass(frozen=True, slots=True)
class Arrow:
    """Walk ``relation`` to its subjects and evaluate ``target`` on each (``relation->target``)."""

    relation: str
    target: str
    mode: ArrowMode = ArrowMode.ANY


@dataclass(frozen=True, slots=True)
class Union:
    """Any child grants."""

    children: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Intersection:
    """Every child grants."""

    children: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Exclusion:
    """``base`` grants and ``subtracted`` does not."""

    base: Expr
    subtracted: Expr


@dataclass(frozen=True, slots=True)
class Nil:
    """Grants nothing."""


@dataclass(frozen=True, slots=True)
class Self:
    """The resource itself is the subject (``use self``)."""


@dataclass(frozen=True, slots=True)
class Cleared:
    """Headwater: the subject is cleared for the resource's effective label (in one classification, or all)."""

    classification: str | None = None


@dataclass(frozen=True, slots=True)
class Upstream:
    """Headwater: the subject has ``permission`` on every upstream object whose type defines it."""

    permission: str


Expr: TypeAlias = "Computed | Arrow | Union | Intersection | Exclusion | Nil | Self | Cleared | Upstream"


class RelationKind(enum.Enum):
    """What a relation's relationships mean."""

    RELATION = "relation"  # ordinary: subjects that relate to the object
    LINEAGE = "lineage"  # Headwater: upstream objects this one was derived from
    LABEL = "label"  # Headwater: the object's own classification values
    DECLASSIFY = "declassify"  # Headwater: classification values declassified on the object


# ---------------------------------------------------------------- members and definitions


@dataclass(frozen=True, slots=True)
class Relation:
    """A relation: which subjects relationships may name."""

    name: str
    allowed: tuple[SubjectType, ...]
    doc: str | None = field(default=None, compare=False)
    kind: RelationKind = RelationKind.RELATION
    classification: str | None = None  # DECLASSIFY: the classification whose values it holds
    declassify_by: str | None = None  # DECLASSIFY: the permission a writer needs on the object
    # Derived from ``allowed`` once, for the checker's hot path:
    wildcard_types: frozenset[str] = field(init=False, compare=False, repr=False)  # types allowed as `type:*`
    has_subject_sets: bool = field(init=False, compare=False, repr=False)  # some `type#relation` is allowed

    def __post_init__(self) -> None:
        object.__setattr__(self, "wildcard_types", frozenset(t.type for t in self.allowed if t.wildcard))
        object.__setattr__(self, "has_subject_sets", any(t.relation is not None for t in self.allowed))

    @property
    def allows_wildcard(self) -> bool:
        return bool(self.wildcard_types)


@dataclass(frozen=True, slots=True)
class Permission:
    """A permission: computed from an expression over the definition's relations and permissions."""

    name: str
    expr: Expr
    annotation: tuple[SubjectType, ...] | None = None
    doc: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Definition:
    """An object type with its relations and permissions."""

    name: str
    relations: Mapping[str, Relation]
    permissions: Mapping[str, Permission]
    doc: str | None = field(default=None, compare=False)

    def member(self, name: str) -> Relation | Permission | None:
        """The relation or permission called ``name``, or None."""
        return self.relations.get(name) or self.permissions.get(name)


@dataclass(frozen=True)
class Caveat:
    """A named CEL condition with typed parameters."""

    name: str
    parameters: Mapping[str, CelType]
    expression: str
    doc: str | None = field(default=None, compare=False)
    program: CompiledCaveat | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Classification:
    """Headwater: a lattice of sensitivity values. Its values are objects ``name:value``; ``cleared`` is a
    relation on each (compiled as the definition of the same name)."""

    name: str
    levels: tuple[str, ...]  # low to high
    categories: tuple[str, ...]
    doc: str | None = field(default=None, compare=False)

    @property
    def values(self) -> tuple[str, ...]:
        return self.levels + self.categories

    def rank(self, level: str) -> int:
        """The position of ``level`` (0 = lowest)."""
        return self.levels.index(level)


@dataclass(frozen=True)
class Schema:
    """A compiled schema: definitions, caveats, classifications and the ``use`` flags in force."""

    definitions: Mapping[str, Definition]
    caveats: Mapping[str, Caveat]
    flags: frozenset[str] = frozenset()
    text: str = field(default="", compare=False, repr=False)  # canonical text (headwater fmt)
    digest: str = field(default="", compare=False)  # sha256 of ``text``
    classifications: Mapping[str, Classification] = field(default_factory=dict)

    @functools.cached_property
    def members(self) -> Mapping[tuple[str, str], Relation | Permission]:
        """Every relation and permission by ``(definition, name)``: one lookup for the checker's hot path."""
        return {(d.name, name): member for d in self.definitions.values()
                for name, member in (*d.relations.items(), *d.permissions.items())}

    @functools.cached_property
    def lineage_relation_names(self) -> tuple[str, ...]:
        """The names of every lineage relation of every definition, sorted (a store's lineage prefetch hint)."""
        return tuple(sorted({r.name for d in self.definitions.values() for r in d.relations.values()
                             if r.kind is RelationKind.LINEAGE}))

    @functools.cached_property
    def declassify_relations(self) -> frozenset[tuple[str, str]]:
        """Every ``declassify`` relation as ``(definition, name)``: what a write must authorize."""
        return frozenset((d.name, r.name) for d in self.definitions.values() for r in d.relations.values()
                         if r.kind is RelationKind.DECLASSIFY)

    def lineage_relations(self, type_: str) -> tuple[Relation, ...]:
        """The lineage relations of definition ``type_``."""
        d = self.definitions.get(type_)
        if d is None:
            return ()
        return tuple(r for r in d.relations.values() if r.kind is RelationKind.LINEAGE)

    def definition(self, name: str) -> Definition | None:
        """The definition called ``name``, or None."""
        return self.definitions.get(name)

    def member(self, type_: str, name: str) -> Relation | Permission | None:
        """The relation or permission ``name`` of definition ``type_``, or None."""
        d = self.definitions.get(type_)
        return d.member(name) if d is not None else None

    def describe(self) -> dict[str, Any]:
        """A small summary (counts), for logs and the CLI."""
        return {
            "definitions": len(self.definitions),
            "relations": sum(len(d.relations) for d in self.definitions.values()),
            "permissions": sum(len(d.permissions) for d in self.definitions.values()),
            "caveats": len(self.caveats),
            "classifications": len(self.classifications),
            "flags": sorted(self.flags),
        }
