"""Schema text → syntax tree (``dsl/ast.py``). The only module that uses lark.

The grammar lives in ``grammar.lark``. A small post-lexer reproduces SpiceDB's
statement rule (a newline ends a statement when it follows a name, a keyword,
``)``, ``}`` or ``*``) and collects comments so that the tree keeps them
(``dsl/comments.py`` attaches each to its element), and ``headwater fmt`` loses nothing.
The AST is built as lark's LALR parser reduces each rule, with no parse tree in
between and no recursion, and the schema's limits (``dsl/limits.py``) are checked
on it before anything else walks it.

Example::

    >>> from headwater.dsl import parse_schema
    >>> doc = parse_schema('''
    ... definition user {}
    ... definition document {
    ...     relation viewer: user
    ...     permission view = viewer
    ... }''')
    >>> [d.name for d in doc.definitions]
    ['user', 'document']
"""

from __future__ import annotations

import bisect

import contextlib
import gc
import os
import stat
import textwrap
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from lark import Lark, Token
from lark import __version__ as lark_version
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from . import ast
from .ast import Span
from .comments import attach_comments, normalize_comment
from .errors import DslSyntaxError
from .limits import SchemaLimits, check_size, check_tree

__all__ = ["parse_schema"]

# Tokens after which a newline ends the statement (SpiceDB's "synthetic semicolon").
# ("..." too: SpiceDB does not end a statement after `group#...`, which only ever produces a confusing
# error at the next line; accepting it is a strict superset of SpiceDB's language.)
_STATEMENT_ENDERS = {"NAME", "ARROW_FUNCTION", "RBRACE", "RPAR", "STAR", "CEL_TEXT", "ELLIPSIS", "IMPORT_PATH"}
# Words SpiceDB always reserves, mapped to their terminal names in the grammar (filled in below).
_RESERVED: dict[str, str] = {}


_LOCAL = threading.local()  # per thread: the text and the comment list of the parse in progress


class _Statements:
    """Post-lexer: newlines → statement ends (or nothing); comments → a side list."""

    always_accept = ("_NL", "COMMENT", "RARROW")

    keywords: set[str] = set()

    @property
    def comments(self) -> list[Token]:
        return _LOCAL.comments

    def reset(self) -> None:
        _LOCAL.comments = []

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        last: Token | None = None
        for tok in stream:
            if tok.type == "COMMENT":
                _LOCAL.comments.append(tok)
                continue
            if tok.type == "_NL":
                if last is not None and (last.type in _STATEMENT_ENDERS or last.type in self.keywords):
                    last = Token.new_borrow_pos("_SEMI", "\n", tok)
                    yield last
                continue
            if tok.type == "NAME" and tok.value in _RESERVED:
                # SpiceDB's lexer makes these keywords everywhere, so `relation permission: user` or a
                # `permission` where a type is expected is an error at that word, as in SpiceDB.
                tok = Token.new_borrow_pos(_RESERVED[tok.value], tok.value, tok)
            last = tok
            yield tok
        if last is not None and (last.type in _STATEMENT_ENDERS or last.type in self.keywords):
            # End of input ends the statement too (SpiceDB accepts EOF as a terminator).
            yield Token("_SEMI", "", last.end_pos, last.end_line, last.end_column, last.end_line,
                        last.end_column, last.end_pos)


def _table_cache() -> str | bool:
    """Where lark keeps the parser's LALR tables between runs (building them is most of ``import headwater``):
    a file in this user's own cache directory, or no cache (False) when there is none we can trust.

    Not lark's ``cache=True``: that is a pickle at a predictable name in the shared temp directory, which
    another local user could plant. Here the directory must belong to this user and be writable by no one
    else; lark checks the file against the grammar and options and rebuilds it when they differ.
    ``HEADWATER_PARSER_CACHE=0`` turns the cache off.
    """
    if os.environ.get("HEADWATER_PARSER_CACHE", "1") == "0" or not hasattr(os, "getuid"):
        return False
    try:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "headwater"
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = base.stat()
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return False
        return str(base / f"lark-{lark_version}.tables")
    except (OSError, RuntimeError):  # no home directory, read-only file system, ...
        return False


_POSTLEX = _Statements()
_LARK: Lark  # built below, once the AST builder it calls is defined
_GC_LOCK = threading.Lock()
_gc_pausers = 0  # parses running with the collector paused
_gc_was_enabled = False


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a parse runs (process-wide; the last parse to finish
    turns it back on, if it was on).

    A parse allocates an object or more per character and creates no reference cycles, yet the collector
    would scan these objects again and again as they accumulate: half the parse time (docs/performance.md).
    """
    global _gc_pausers, _gc_was_enabled
    with _GC_LOCK:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def parse_schema(text: str, *, filename: str | None = None, limits: SchemaLimits | None = None) -> ast.Document:
    """Parse schema text into a :class:`~headwater.dsl.ast.Document`, within ``limits`` (default: ``SchemaLimits()``).

    Raises :class:`DslSyntaxError` (with line, column and the offending line) when the
    text does not follow the grammar, and :class:`SchemaLimitError` when it is over a
    limit (its size is checked before parsing; definitions, members and nesting right
    after, before anything could recurse over the tree). No other exception escapes
    for any input string.
    """
    if not isinstance(text, str):
        raise TypeError("schema text must be a str")
    limits = limits if limits is not None else SchemaLimits()
    too_large = check_size(text, limits)
    if too_large is not None:
        raise too_large.with_source(text, filename)
    with _collector_paused():
        _POSTLEX.reset()
        _LOCAL.text = text
        _LOCAL.bodies = []  # (start, end) offsets of the caveat bodies, whose comments belong to the CEL text
        try:
            doc = _LARK.parse(text)
        except UnexpectedInput as exc:
            raise _syntax_error(exc, text, filename) from None
        finally:
            _LOCAL.text = ""
        bodies, _LOCAL.bodies = _LOCAL.bodies, []
        comments = [ast.Comment(normalize_comment(str(c)), _token_span(c)) for c in _POSTLEX.comments
                    if not _inside(c.start_pos, bodies)]
    errors = check_tree(doc, limits)
    if errors:
        for e in errors:
            e.with_source(text, filename)
        errors[0].errors = tuple(errors)
        raise errors[0]
    return attach_comments(doc, comments)


# ---------------------------------------------------------------- syntax errors

_FRIENDLY = {
    "NAME": "a name",
    "_SEMI": "`;` or a new line",
    "$END": "the end of the file",
    "CEL_TEXT": "a CEL expression",
    "ARROW_FUNCTION": "`any` or `all`",
    "ELLIPSIS": "`...`",
    "IMPORT_PATH": "a quoted file path",
}


def _terminal_text(name: str) -> str:
    if name in _FRIENDLY:
        return _FRIENDLY[name]
    try:
        term = _LARK.get_terminal(name)
    except KeyError:
        return name
    if term.pattern.type == "str":
        return f"`{term.pattern.value}`"
    return name.lower()


def _found_text(tok: Token) -> str:
    if tok.type == "$END":
        return "end of file"
    if tok.type == "_SEMI":
        return "`;`" if tok.value == ";" else "end of line"
    if tok.type == "NAME":
        return f"name `{tok}`"
    if tok.type in _RESERVED.values():
        return f"keyword `{tok}`"
    return f"`{tok}`"


def _syntax_error(exc: UnexpectedInput, text: str, filename: str | None) -> DslSyntaxError:
    line = getattr(exc, "line", 0) or 0
    column = getattr(exc, "column", 0) or 0
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        pos = tok.start_pos or 0
        if tok.type == "SLASH" and text.startswith("/*", pos):
            span = Span(pos, pos + 2, line, column, line, column + 2)
            return DslSyntaxError("unterminated comment: `/*` has no closing `*/`", span, text, filename)
        if tok.type == "CEL_TEXT":
            span = Span(pos, pos + 1, line, column, line, column + 1)
            return DslSyntaxError(f"unexpected character {tok[0]!r}", span, text, filename)
        if tok.type == "$END":
            unclosed = _unclosed_brace(text)
            if unclosed is not None:
                return DslSyntaxError("`{` is never closed: the file ends before its `}`", unclosed, text, filename)
            line, column = _end_position(text)
        names = set(exc.accepts) - {"COMMENT", "_NL"} if exc.accepts else set(exc.expected) - {*_POSTLEX.always_accept}
        names -= {"IMPORT", "PARTIAL"}  # composable schemas' keywords, each behind a `use` flag, go unlisted
        if "RBRACE" in names:  # `...name` (composable schemas) is not listed among a definition's members
            names.discard("ELLIPSIS")
        expected = sorted({_terminal_text(t) for t in names})
        if len(expected) > 6:
            expected = expected[:6] + ["..."]
        message = f"unexpected {_found_text(tok)}; expected {_join_or(expected)}"
        if tok.type in {"VBAR", "PLUS", "MINUS", "AMPERSAND"} and not text[:pos].rsplit("\n", 1)[-1].strip():
            message += ("; a line break ends the statement, so put the operator at the end of the previous "
                        "line instead")
        width = len(tok) if tok.type not in {"$END", "_SEMI"} else 1
        span = Span(tok.start_pos or 0, (tok.start_pos or 0) + width, line, column, line, column + width)
        return DslSyntaxError(message, span, text, filename)
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if 0 <= exc.pos_in_stream < len(text) else ""
        if char in "\"'":
            message = "unterminated string"
        elif text.startswith("/*", exc.pos_in_stream):
            message = "unterminated comment: `/*` has no closing `*/`"
        else:
            message = f"unexpected character {char!r}"
            allowed = sorted({_terminal_text(t) for t in exc.allowed if t not in {"COMMENT", "_NL"}})
            if allowed:
                message += f"; expected {_join_or(allowed[:6])}"
        span = Span(exc.pos_in_stream, exc.pos_in_stream + 1, line, column, line, column + 1)
        return DslSyntaxError(message, span, text, filename)
    if isinstance(exc, UnexpectedEOF):
        line, column = _end_position(text)
        return DslSyntaxError("unexpected end of file", Span(len(text), len(text), line, column, line, column),
                              text, filename)
    return DslSyntaxError(str(exc), ast.NO_SPAN, text, filename)


def _join_or(items: Sequence[str]) -> str:
    if not items:
        return "nothing"
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " or " + items[-1]


def _end_position(text: str) -> tuple[int, int]:
    """Line and column just after the last non-blank character (so the error shows that line)."""
    lines = text.rstrip().split("\n")
    return len(lines), len(lines[-1]) + 1


def _unclosed_brace(text: str) -> Span | None:
    """The span of the innermost `{` that is never closed, if the text's braces are unbalanced."""
    stack: list[Token] = []
    try:
        for tok in _LARK.lex(text, dont_ignore=True):
            if tok.type == "LBRACE":
                stack.append(tok)
            elif tok.type == "RBRACE" and stack:
                stack.pop()
    except UnexpectedInput:
        return None
    return _token_span(stack[-1]) if stack else None


def _inside(offset: int, ranges: list[tuple[int, int]]) -> bool:
    """Whether ``offset`` lies in one of ``ranges`` (sorted, disjoint ``(start, end)`` pairs)."""
    k = bisect.bisect_right(ranges, (offset, float("inf"))) - 1
    return k >= 0 and ranges[k][0] <= offset < ranges[k][1]


def _token_span(tok: Token) -> Span:
    return Span(tok.start_pos or 0, tok.end_pos or 0, tok.line or 0, tok.column or 0,
                tok.end_line or 0, tok.end_column or 0)


# ---------------------------------------------------------------- AST built while parsing


class _Part:
    """An intermediate result (a type path, a list of allowed types, a caveat body...) with its span."""

    __slots__ = ("span", "value")

    def __init__(self, value: Any, span: Span) -> None:
        self.value = value
        self.span = span


def _span(children: list[Any]) -> Span:
    """From the first to the last child with a position: what lark's ``propagate_positions`` gives a rule
    (every token is kept, so keywords, parentheses and ``;`` count as they do there). A child is a token, an
    AST node or a ``_Part`` (both with a ``span``), or None for a missing optional part."""
    first = last = None
    for first in children:
        if first is not None:
            break
    for last in reversed(children):
        if last is not None:
            break
    if first is None or last is None:
        return ast.NO_SPAN
    if isinstance(first, Token):
        start, line, column = first.start_pos, first.line, first.column
    else:
        start, line, column = first.span.start, first.span.line, first.span.column
    if isinstance(last, Token):
        return Span(start, last.end_pos, line, column, last.end_line, last.end_column)
    end = last.span
    return Span(start, end.end, line, column, end.end_line, end.end_column)


def _nodes(children: list[Any]) -> list[Any]:
    """The children that are not tokens (nor placeholders of missing optional parts)."""
    return [c for c in children if c is not None and not isinstance(c, Token)]


def _names(children: list[Any]) -> list[Token]:
    return [c for c in children if isinstance(c, Token) and c.type == "NAME"]


class _ToAst:
    """Builds AST nodes as the parser reduces each rule (lark's tree-less LALR mode: no parse tree is built, and
    nothing recurses, so a schema of any depth is safe); no checks beyond the grammar (those live in the
    compiler).

    Each method is named after a rule and takes the rule's children: every token (the parser keeps them all,
    for positions) and the values of its sub-rules, with the children of ``_``-rules spliced in. (A plain class:
    a lark ``Transformer``'s ``__default__`` would be one more call for every ``_``-rule reduced.)
    """

    # top level
    def start(self, children: list[Any]) -> ast.Document:
        return ast.Document(tuple(_nodes(children)))

    def use_flag(self, children: list[Any]) -> ast.UseFlag:
        name = _names(children)[0]
        return ast.UseFlag(str(name), span=_span(children), name_span=_token_span(name))

    def definition(self, children: list[Any]) -> ast.Definition:
        path, *members = _nodes(children)
        return ast.Definition(path.value, tuple(members), span=_span(children), name_span=path.span)

    def import_statement(self, children: list[Any]) -> ast.ImportStatement:
        path = children[-1]
        return ast.ImportStatement(str(path)[1:-1], span=_span(children), path_span=_token_span(path))

    def partial(self, children: list[Any]) -> ast.Partial:
        path, *members = _nodes(children)
        return ast.Partial(path.value, tuple(members), span=_span(children), name_span=path.span)

    def partial_reference(self, children: list[Any]) -> ast.PartialReference:
        name = children[-1]
        return ast.PartialReference(str(name), span=_span(children), name_span=_token_span(name))

    def relation(self, children: list[Any]) -> ast.Relation:
        name, allowed = _names(children)[0], _nodes(children)[0]
        return ast.Relation(str(name), allowed.value, span=_span(children), name_span=_token_span(name))

    def permission(self, children: list[Any]) -> ast.Permission:
        name = _names(children)[0]
        *annotation, expr = _nodes(children)
        return ast.Permission(str(name), expr, annotation[0].value if annotation else None, span=_span(children),
                              name_span=_token_span(name))

    def lineage(self, children: list[Any]) -> ast.Lineage:
        name, allowed = _names(children)[0], _nodes(children)[0]
        return ast.Lineage(str(name), allowed.value, span=_span(children), name_span=_token_span(name))

    def declassify(self, children: list[Any]) -> ast.Declassify:
        name, classification, by = _names(children)
        return ast.Declassify(str(name), str(classification), str(by), span=_span(children),
                              name_span=_token_span(name), classification_span=_token_span(classification),
                              by_span=_token_span(by))

    def classification(self, children: list[Any]) -> ast.Classification:
        name = _names(children)[0]
        levels: tuple[str, ...] = ()
        categories: tuple[str, ...] = ()
        cleared = None
        cleared_span = ast.NO_SPAN
        spans: list[Span] = []
        statements: list[tuple[str, Span]] = []
        for item in _nodes(children):
            kind, values = item.value
            statements.append((kind, item.span))
            if kind == "levels":
                levels = tuple(str(v) for v in values)
                spans = [_token_span(v) for v in values] + spans
            elif kind == "categories":
                categories = tuple(str(v) for v in values)
                spans = spans + [_token_span(v) for v in values]
            else:
                cleared, cleared_span = values, item.span
        return ast.Classification(str(name), levels, categories, cleared, span=_span(children),
                                  name_span=_token_span(name), value_spans=tuple(spans), cleared_span=cleared_span,
                                  statements=tuple(statements))

    def levels(self, children: list[Any]) -> _Part:
        return _Part(("levels", _names(children)), _span(children))

    def categories(self, children: list[Any]) -> _Part:
        return _Part(("categories", _names(children)), _span(children))

    def cleared_relation(self, children: list[Any]) -> _Part:
        return _Part(("cleared", _nodes(children)[0].value), _span(children))

    def call(self, children: list[Any]) -> ast.Call:
        function, argument = _names(children)
        return ast.Call(str(function), str(argument), span=_span(children), argument_span=_token_span(argument))

    def allowed_types(self, children: list[Any]) -> _Part:
        return _Part(tuple(_nodes(children)), _span(children))

    def allowed_type(self, children: list[Any]) -> ast.AllowedType:
        path, *rest = _nodes(children)
        relation, relation_span, wildcard = None, ast.NO_SPAN, False
        names: tuple[str, ...] = ()
        spans: tuple[Span, ...] = ()
        for part in rest:
            kind, value = part.value
            if kind == "relation":
                relation, relation_span = str(value), _token_span(value)
            elif kind == "wildcard":
                wildcard = True
            else:
                names, spans = value
        return ast.AllowedType(path.value, relation, wildcard, names, span=_span(children),
                               relation_span=relation_span, with_spans=spans)

    def subject_relation(self, children: list[Any]) -> _Part:
        return _Part(("relation", children[-1]), _span(children))

    def wildcard(self, children: list[Any]) -> _Part:
        return _Part(("wildcard", None), _span(children))

    def with_clause(self, children: list[Any]) -> _Part:
        path = _nodes(children)[0]
        trait = next((c for c in children[2:] if isinstance(c, Token) and c.type == "NAME"), None)
        if trait is None:
            value = (path.value,), (path.span,)
        else:
            value = (path.value, str(trait)), (path.span, _token_span(trait))
        return _Part(("with", value), _span(children))

    def type_path(self, children: list[Any]) -> _Part:
        return _Part("/".join(str(n) for n in _names(children)), _span(children))

    # expressions
    def exclusion(self, children: list[Any]) -> ast.Exclusion:
        left, right = _nodes(children)
        return ast.Exclusion(left, right, span=_span(children))

    def intersection(self, children: list[Any]) -> ast.Intersection:
        left, right = _nodes(children)
        return ast.Intersection(left, right, span=_span(children))

    def union(self, children: list[Any]) -> ast.Union:
        left, right = _nodes(children)
        return ast.Union(left, right, span=_span(children))

    def nil(self, children: list[Any]) -> ast.Nil:
        return ast.Nil(span=_span(children))

    def self_ref(self, children: list[Any]) -> ast.SelfRef:
        return ast.SelfRef(span=_span(children))

    def relation_ref(self, children: list[Any]) -> ast.RelationRef:
        return ast.RelationRef(str(children[0]), span=_token_span(children[0]))

    def arrow(self, children: list[Any]) -> ast.Arrow:
        left = children[0]
        target = children[2] if children[1].type == "RARROW" else children[4]
        function = ast.ArrowFunction.ARROW if children[1].type == "RARROW" else ast.ArrowFunction(str(children[2]))
        return ast.Arrow(left, str(target), function, span=_span(children), target_span=_token_span(target))

    # caveats
    def caveat(self, children: list[Any]) -> ast.Caveat:
        path, *params, body = _nodes(children)
        expression, expression_span, origins = body.value
        return ast.Caveat(path.value, tuple(params), expression, span=_span(children), name_span=path.span,
                          expression_span=expression_span, expression_origins=origins)

    def caveat_parameter(self, children: list[Any]) -> ast.CaveatParameter:
        return ast.CaveatParameter(str(children[0]), children[1], span=_span(children))

    def caveat_type(self, children: list[Any]) -> ast.CaveatType:
        args = children[1].value if len(children) > 1 else ()
        return ast.CaveatType(str(children[0]), args, span=_span(children))

    def caveat_type_args(self, children: list[Any]) -> _Part:
        return _Part(tuple(_nodes(children)), _span(children))

    def caveat_body(self, children: list[Any]) -> _Part:
        lbrace, rbrace = children[0], children[-1]
        raw = _LOCAL.text[lbrace.end_pos:rbrace.start_pos]
        inner = [t for t in children[1:-1] if t.type in {"CEL_TEXT", "LBRACE", "RBRACE"}]
        first = inner[0] if inner else rbrace
        _LOCAL.bodies.append((lbrace.end_pos, rbrace.start_pos))  # its comments stay in the expression
        expression = normalize_cel(raw)
        origins = _cel_origins(raw, expression, lbrace.end_line, lbrace.end_column)
        return _Part((expression, _token_span(first), origins), _span(children))


_LARK = Lark.open(
    "grammar.lark",
    rel_to=__file__,
    parser="lalr",
    lexer="contextual",
    keep_all_tokens=True,  # every token, for the spans of the rules that start or end with a keyword or `)`
    maybe_placeholders=True,
    postlex=_POSTLEX,
    transformer=_ToAst(),  # tree-less: the AST is built as rules are reduced (twice as fast as a tree)
    cache=_table_cache(),
)
_Statements.keywords = {
    t.name for t in _LARK.terminals if t.pattern.type == "str" and t.pattern.value.isidentifier()
}
_RESERVED.update({
    t.pattern.value: t.name for t in _LARK.terminals
    if t.pattern.type == "str" and t.pattern.value in {"definition", "caveat", "relation", "permission", "nil", "with"}
})


def _cel_origins(raw: str, expression: str, line: int, column: int) -> tuple[tuple[int, int], ...]:
    """For each line of ``expression`` (``normalize_cel(raw)``), the source (line, column) of its first character.

    ``raw`` starts at ``line``:``column``. The first line starts at the body's first
    non-blank character; each later one is the raw line ``i`` lines below it, shifted by
    the indentation that normalizing removed (the difference in length, as only leading
    and trailing blank space is removed).
    """
    skipped = len(raw) - len(raw.lstrip())
    newlines = raw.count("\n", 0, skipped)
    first_line = line + newlines
    first_column = (column if not newlines else 1) + skipped - (raw.rfind("\n", 0, skipped) + 1 if newlines else 0)
    raw_lines = raw[skipped:].split("\n")
    origins = [(first_line, first_column)]
    for i, text in enumerate(expression.split("\n")[1:], start=1):
        source = raw_lines[i].rstrip() if i < len(raw_lines) else text
        origins.append((first_line + i, 1 + max(len(source) - len(text), 0)))
    return tuple(origins)


def normalize_cel(raw: str) -> str:
    """The CEL text between a caveat's braces, without surrounding blank space and common indentation.

    Canonical form used by the formatter and by model equality, so re-indenting a
    schema does not change its caveats.
    """
    lines = raw.split("\n")
    if lines and lines[0].strip():
        # The first line starts right after "{": align it with the rest before dedenting.
        rest = [ln for ln in lines[1:] if ln.strip()]
        indent = min((len(ln) - len(ln.lstrip()) for ln in rest), default=0)
        lines[0] = " " * indent + lines[0].strip()
    return textwrap.dedent("\n".join(ln.rstrip() for ln in lines)).strip("\n").strip()
