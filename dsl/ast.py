"""The syntax tree of a schema document: what was written, in order, with positions.

The parser (``dsl/parser.py``) builds these nodes; the compiler (``dsl/compiler.py``)
checks them and produces the resolved model in ``dsl/schema.py``; the formatter
(``dsl/format.py``) prints them back as canonical text. Every node is a frozen
dataclass; its ``span`` is excluded from equality, so two trees parsed from
differently laid out text compare equal when they say the same thing.

Example::

    >>> from headwater.dsl import parse_schema
    >>> doc = parse_schema("definition user {}")
    >>> doc.items[0].name
    'user'
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class Span:
    """A region of the source text: 0-based offsets, 1-based line and column."""

    start: int
    end: int
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


NO_SPAN = Span(0, 0, 0, 0, 0, 0)


def _span() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Comment:
    """A comment as written, delimiters included (``// x``, ``/* x */``, ``/** x */``)."""

    text: str
    span: Span = _span()

    @property
    def is_doc(self) -> bool:
        """True for a ``/** ... */`` documentation comment."""
        return self.text.startswith("/**") and self.text != "/**/"


def doc_text(comments: tuple[Comment, ...]) -> str | None:
    """The text of the last doc comment in ``comments``, without delimiters or leading stars."""
    docs = [c for c in comments if c.is_doc]
    if not docs:
        return None
    body = docs[-1].text[3:-2]
    lines = [line.strip() for line in body.splitlines()]
    lines = [line[1:].strip() if line.startswith("*") else line for line in lines]
    return "\n".join(lines).strip()


class _Documented:
    """A node that doc comments can document: ``doc`` is the text of its last ``/** ... */`` comment."""

    __slots__ = ()
    comments: tuple[Comment, ...]

    @property
    def doc(self) -> str | None:
        """The text of the last doc comment written before the node, or None."""
        return doc_text(self.comments)


# ---------------------------------------------------------------- type references


@dataclass(frozen=True, slots=True)
class AllowedType:
    """One alternative of a relation's type list: ``user``, ``user:*``, ``group#member``,
    ``group#...``, optionally ``with caveat``, ``with expiration`` or ``with caveat and expiration``.

    ``with_names`` holds the names after ``with`` as written (``("cav",)``,
    ``("expiration",)``, ``("cav", "expiration")``): whether ``expiration`` is the
    expiration trait or a caveat of that name depends on ``use expiration``, which
    the compiler knows.
    """

    type_name: str
    relation: str | None = None  # "member", "..." or None
    wildcard: bool = False
    with_names: tuple[str, ...] = ()
    span: Span = _span()
    relation_span: Span = _span()  # of the name after `#`
    with_spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)


# ---------------------------------------------------------------- expressions


class ArrowFunction(enum.Enum):
    """How an arrow walks the left relation: ``->`` and ``.any()`` need one subject, ``.all()`` every one."""

    ARROW = "->"
    ANY = "any"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class RelationRef:
    """A relation or permission named in an expression."""

    name: str
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Nil:
    """``nil``: the empty set."""

    span: Span = _span()


@dataclass(frozen=True, slots=True)
class SelfRef:
    """``self``: the resource itself (under ``use self``; otherwise a relation named ``self``)."""

    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Arrow:
    """``left->target``, ``left.any(target)`` or ``left.all(target)``."""

    left: Expr  # a RelationRef; a nested Arrow is parsed so the compiler can refuse it precisely
    target: str
    function: ArrowFunction = ArrowFunction.ARROW
    span: Span = _span()
    target_span: Span = _span()


@dataclass(frozen=True, slots=True)
class Union:
    """``left + right``."""

    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Intersection:
    """``left & right``."""

    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Exclusion:
    """``left - right``."""

    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Call:
    """Headwater: ``cleared(classification)`` or ``upstream(permission)``."""

    function: str
    argument: str
    span: Span = _span()
    argument_span: Span = _span()


Expr: TypeAlias = "RelationRef | Nil | SelfRef | Arrow | Union | Intersection | Exclusion | Call"


# ---------------------------------------------------------------- members


@dataclass(frozen=True, slots=True)
class Relation(_Documented):
    """``relation name: type | type ...``."""

    name: str
    allowed: tuple[AllowedType, ...]
    comments: tuple[Comment, ...] = ()
    trailing_comment: Comment | None = None
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class Permission(_Documented):
    """``permission name = expression`` or ``permission name: types = expression``."""

    name: str
    expr: Expr
    annotation: tuple[AllowedType, ...] | None = None
    comments: tuple[Comment, ...] = ()
    trailing_comment: Comment | None = None
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class Lineage(_Documented):
    """Headwater: ``lineage name: types``, a relation to upstream objects."""

    name: str
    allowed: tuple[AllowedType, ...]
    comments: tuple[Comment, ...] = ()
    trailing_comment: Comment | None = None
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class Declassify(_Documented):
    """Headwater: ``declassify name: classification by permission``."""

    name: str
    classification: str
    by: str
    comments: tuple[Comment, ...] = ()
    trailing_comment: Comment | None = None
    span: Span = _span()
    name_span: Span = _span()
    classification_span: Span = _span()
    by_span: Span = _span()


@dataclass(frozen=True, slots=True)
class PartialReference(_Documented):
    """``...name`` in a definition or partial: the members of partial ``name`` spliced in (composable schemas)."""

    name: str
    comments: tuple[Comment, ...] = ()
    trailing_comment: Comment | None = None
    span: Span = _span()
    name_span: Span = _span()


Member: TypeAlias = "Relation | Permission | Lineage | Declassify | PartialReference"


# ---------------------------------------------------------------- top level


@dataclass(frozen=True, slots=True)
class UseFlag:
    """``use expiration``, ``use self``, ``use typechecking``."""

    name: str
    comments: tuple[Comment, ...] = ()
    trailing_comment: Comment | None = None
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class Definition(_Documented):
    """``definition name { members }``."""

    name: str
    members: tuple[Member, ...] = ()
    comments: tuple[Comment, ...] = ()
    trailing_comment: Comment | None = None
    inner_comments: tuple[Comment, ...] = ()  # after the last member, before "}"
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True, slots=True)
class CaveatType:
    """A caveat parameter type: ``int``, ``list<string>``, ``map<any>``."""

    name: str
    args: tuple[CaveatType, ...] = ()
    span: Span = _span()

    def __str__(self) -> str:
        if not self.args:
            return self.name
        return f"{self.name}<{', '.join(str(a) for a in self.args)}>"


@dataclass(frozen=True, slots=True)
class CaveatParameter:
    """``name type`` in a caveat's parameter list."""

    name: str
    type: CaveatType
    span: Span = _span()


@dataclass(frozen=True, slots=True)
class Caveat(_Documented):
    """``caveat name(params) { CEL expression }``; ``expression`` is the CEL text, dedented."""

    name: str
    parameters: tuple[CaveatParameter, ...]
    expression: str
    comments: tuple[Comment, ...] = ()
    trailing_comment: Comment | None = None
    span: Span = _span()
    name_span: Span = _span()
    expression_span: Span = _span()  # where the CEL text starts (first token) in the source
    #: for each line of ``expression``, the source (line, column) of its first character
    expression_origins: tuple[tuple[int, int], ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Classification(_Documented):
    """Headwater: a sensitivity lattice, ``classification name { levels ...; categories ...; cleared: ... }``."""

    name: str
    levels: tuple[str, ...] = ()  # low to high
    categories: tuple[str, ...] = ()
    cleared: tuple[AllowedType, ...] | None = None
    comments: tuple[Comment, ...] = ()
    trailing_comment: Comment | None = None
    inner_comments: tuple[Comment, ...] = ()
    span: Span = _span()
    name_span: Span = _span()
    value_spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)  # levels then categories
    cleared_span: Span = _span()
    # Each statement in order as written ("levels", "categories", "cleared"), for errors on repeats.
    statements: tuple[tuple[str, Span], ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class ImportStatement:
    """``import "path.zed"`` (composable schemas): the top-level items of another file, relative to this one."""

    path: str  # as written, without the quotes
    comments: tuple[Comment, ...] = ()
    trailing_comment: Comment | None = None
    span: Span = _span()
    path_span: Span = _span()


@dataclass(frozen=True, slots=True)
class Partial(_Documented):
    """``partial name { members }`` (composable schemas): members that ``...name`` splices into a definition."""

    name: str
    members: tuple[Member, ...] = ()
    comments: tuple[Comment, ...] = ()
    trailing_comment: Comment | None = None
    inner_comments: tuple[Comment, ...] = ()  # after the last member, before "}"
    span: Span = _span()
    name_span: Span = _span()


TopLevel: TypeAlias = "UseFlag | Definition | Caveat | Classification | ImportStatement | Partial"


@dataclass(frozen=True, slots=True)
class Document:
    """A whole schema file: its top-level items in order."""

    items: tuple[TopLevel, ...] = ()
    trailing_comments: tuple[Comment, ...] = ()  # after the last item

    @property
    def definitions(self) -> tuple[Definition, ...]:
        return tuple(i for i in self.items if isinstance(i, Definition))

    @property
    def caveats(self) -> tuple[Caveat, ...]:
        return tuple(i for i in self.items if isinstance(i, Caveat))

    @property
    def use_flags(self) -> tuple[UseFlag, ...]:
        return tuple(i for i in self.items if isinstance(i, UseFlag))

    @property
    def classifications(self) -> tuple[Classification, ...]:
        return tuple(i for i in self.items if isinstance(i, Classification))
