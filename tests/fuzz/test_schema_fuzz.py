"""Fuzzing the schema language: random, mutated, deeply nested and huge schema texts.

Properties, for every text:

* ``parse_schema``, ``compile_schema`` and ``lint_schema`` either succeed or raise the
  ``DslError`` family, never anything else (no ``RecursionError``, ``VisitError``,
  ``IndexError``...), and every error in ``errors`` has a line and column inside the text
  and renders;
* lint warnings are located inside the text too;
* a text that parses formats (``format_schema``) to canonical text that parses to the
  same syntax tree and formats to itself; a text that compiles formats to text that
  compiles to the same digest.

Inputs start from every real schema of the repository and of SpiceDB's conformance
files (``seeds.py``) and are mutated token by token (delete, duplicate, swap,
insert, huge identifiers, unicode and NULs, nesting spliced in), or are built to be
deep (parentheses, alternating operators, arrow chains, nested caveat types, CEL
nesting) or big (thousands of definitions, identifiers of 100,000 characters, text
over the size limit).
"""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.errors import UnsatisfiedAssumption

from headwater.dsl import DslError, compile_schema, format_schema, lint_schema, parse_schema

from . import seeds
from .conftest import fuzz_settings, no_hang

_TOKEN = re.compile(r"\s+|/\*.*?\*/|//[^\n]*|\"(?:[^\"\\\n]|\\.)*\"|\w+|->|\.\.\.|\S", re.DOTALL)

KEYWORDS = ["definition", "relation", "permission", "caveat", "use", "expiration", "with", "and", "nil", "self",
            "classification", "levels", "categories", "cleared", "lineage", "declassify", "by", "upstream", "all",
            "any", "int", "string", "list", "map", "timestamp", "duration", "ipaddress", "any"]
PUNCTUATION = ["->", ".all(", ".any(", "(", ")", "{", "}", "#", "...", ":*", ":", "|", "+", "&", "-", "=", ";", "<",
               ">", ",", ".", "/", "*", "/*", "*/", "//", "/**", '"', "'", "\\", "`", "@", "[", "]", "!"]
ODD_TEXT = ["\x00", "\r", "\r\n", "\t", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029", "\ufeff", "\u200b",
            "\u202e", "é", "e\u0301", "ǅ", "ﬁ", "Ⅸ", "٣", "𝔡", "\U0001f600", "\udcff", "\ud800", "\uffff"]
NAMES = ["user", "doc", "document", "group", "member", "viewer", "view", "owner", "parent", "abc", "a", "x", "_x",
         "org/user", "a/b/c", "x" * 64, "x" * 65]
OPERATORS = ["+", "-", "&", "->", "|", "#", ":", ".", "=", "<", ">", ",", "&&", "||", "!", "==", "in"]
_NAME = re.compile(r"[A-Za-z_]\w*")
VOCABULARY = KEYWORDS + PUNCTUATION + ODD_TEXT + NAMES + [" ", "\n"]


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _located(error: DslError, text: str) -> None:
    """Every problem is a DslError whose line and column fall inside the text, and it renders."""
    assert error.errors, error
    lines = _lines(text)
    for e in error.errors:
        assert isinstance(e, DslError), (type(e), e)
        where = f"{type(e).__name__} at {e.line}:{e.column}: {e.message[:200]!r}"
        assert 1 <= e.line <= len(lines), where
        assert 1 <= e.column <= len(lines[e.line - 1]) + 1, where
        assert e.render(), where
        assert str(e)


def _same_tree(a: object, b: object) -> bool:
    """``a == b``; a long run of ``+`` is a deep binary tree that dataclass equality cannot recurse through,
    and then the canonical texts are compared instead."""
    try:
        return a == b
    except RecursionError:
        return format_schema(a) == format_schema(b)  # type: ignore[arg-type]


def exercise(text: str) -> None:
    """The properties of the module docstring, for one text."""
    with no_hang():
        try:
            doc = parse_schema(text)
        except DslError as exc:
            _located(exc, text)
            doc = None
        try:
            compiled, warnings = lint_schema(text)
        except DslError as exc:
            _located(exc, text)
            compiled, warnings = None, []
        for warning in warnings:
            assert 1 <= warning.span.line <= len(_lines(text)) and warning.span.column >= 1, str(warning)
        try:
            alone = compile_schema(text)
        except DslError as exc:
            _located(exc, text)
            alone = None
        assert (alone is None) == (compiled is None), "compile_schema and lint_schema disagree"
        if doc is None:
            assert compiled is None, "a text that does not parse compiled"
            return
        canonical = format_schema(doc)
        again = parse_schema(canonical)
        assert _same_tree(again, doc), f"format_schema does not round-trip:\n{canonical}"
        assert format_schema(again) == canonical, "format_schema is not idempotent"
        if compiled is not None:
            assert alone is not None and alone.digest == compiled.digest
            again = compile_schema(canonical)
            assert again.digest == compiled.digest, f"the canonical text compiles to another schema:\n{canonical}"


# --- strategies ------------------------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text) or [text]


@st.composite
def huge_identifiers(draw: st.DrawFn) -> str:
    return draw(st.sampled_from("axz_9/")) * draw(st.integers(65, 100_000))


@st.composite
def mutated_schemas(draw: st.DrawFn) -> str:
    """A real schema, mutated token by token."""
    tokens = _tokens(draw(st.sampled_from(seeds.schemas())))
    for _ in range(draw(st.integers(1, 6))):
        if not tokens:
            tokens = [""]
        i = draw(st.integers(0, len(tokens) - 1))
        op = draw(st.sampled_from(["rename", "operator", "delete", "duplicate", "swap", "insert", "replace", "huge",
                                   "odd", "nest", "truncate", "repeat"]))
        if op == "rename":  # keeps the syntax: another name of the same text (a reference it may not resolve)
            names = [t for t in tokens if _NAME.fullmatch(t)]
            if names and _NAME.fullmatch(tokens[i]):
                tokens[i] = draw(st.sampled_from(names))
        elif op == "operator":
            if tokens[i] in OPERATORS:
                tokens[i] = draw(st.sampled_from(OPERATORS))
        elif op == "delete":
            del tokens[i:i + draw(st.integers(1, 3))]
        elif op == "duplicate":
            tokens.insert(i, tokens[i])
        elif op == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == "insert":
            tokens.insert(i, draw(st.sampled_from(VOCABULARY)))
        elif op == "replace":
            tokens[i] = draw(st.sampled_from(VOCABULARY))
        elif op == "huge":
            tokens[i] = draw(huge_identifiers())
        elif op == "odd":
            tokens.insert(i, draw(st.sampled_from(ODD_TEXT) | st.text(min_size=1, max_size=3)))
        elif op == "nest":
            tokens[i] = draw(nested_expressions(names=st.just(tokens[i]) | st.sampled_from(NAMES)))
        elif op == "truncate":
            del tokens[i:]
        else:
            tokens[i:i + 1] = [tokens[i]] * draw(st.integers(2, 200))
    return "".join(tokens)


@st.composite
def nested_expressions(draw: st.DrawFn, names: st.SearchStrategy[str] | None = None) -> str:
    """A permission expression nested ``depth`` levels in one of several shapes."""
    names = names if names is not None else st.sampled_from(NAMES)
    depth = draw(st.integers(1, 3000))
    a, b = draw(names), draw(names)
    shape = draw(st.sampled_from(["parens", "alternating", "right", "chain", "exclusions", "arrows", "functions",
                                  "unbalanced"]))
    if shape == "parens":
        return "(" * depth + a + ")" * depth
    if shape == "alternating":  # a + (b - (a + (b - ...)))
        ops = draw(st.lists(st.sampled_from(["+", "-", "&"]), min_size=1, max_size=3))
        return "".join(f"{a} {ops[k % len(ops)]} (" for k in range(depth)) + b + ")" * depth
    if shape == "right":
        return f"{a} + ({b} - " * depth + a + "))" * depth
    if shape == "chain":
        return " + ".join([a, b] * depth)
    if shape == "exclusions":
        return " - ".join([a] * depth)
    if shape == "arrows":
        return "->".join([a] * depth)
    if shape == "functions":
        return f"{a}.all(" * min(depth, 50) + b + ")" * min(depth, 50)
    return "(" * depth + a + ")" * draw(st.integers(0, depth + 1))


@st.composite
def deep_schemas(draw: st.DrawFn) -> str:
    """A schema whose one expression, caveat type, CEL body, block or comment is nested deeply."""
    depth = draw(st.integers(1, 3000))
    kind = draw(st.sampled_from(["permission", "caveat_type", "cel", "cel_list", "cel_not", "blocks", "comments",
                                 "allowed_types"]))
    head = "definition user {}\n"
    if kind == "permission":
        expr = draw(nested_expressions(names=st.sampled_from(["viewer", "parent", "owner", "nil", "self"])))
        return head + ("definition doc {\n    relation viewer: user\n    relation owner: user\n"
                       f"    relation parent: doc\n    permission view = {expr}\n}}\n")
    if kind == "caveat_type":
        type_ = "list<" * depth + "int" + ">" * depth
        return head + f"caveat c(x {type_}) {{\n    size(x) > 0\n}}\n"
    if kind == "cel":
        return head + "caveat c(x int) {\n    " + "(" * depth + "x > 1" + ")" * depth + "\n}\n"
    if kind == "cel_list":
        return head + "caveat c(x int) {\n    x in " + "[" * depth + "1" + "]" * depth + "\n}\n"
    if kind == "cel_not":
        return head + "caveat c(x bool) {\n    " + "!" * depth + "x\n}\n"
    if kind == "blocks":
        return "definition a {\n" * depth + "}\n" * draw(st.integers(0, depth))
    if kind == "comments":
        return "/*" * depth + " x " + "*/" * depth + "\n" + head
    return head + "definition doc {\n    relation viewer: " + " | ".join(["user"] * depth) + "\n}\n"


@st.composite
def big_schemas(draw: st.DrawFn) -> str:
    """Many definitions, many members, long names, or text just over the size limit."""
    kind = draw(st.sampled_from(["definitions", "members", "identifier", "oversize", "long_line"]))
    count = draw(st.integers(1, 2000))
    if kind == "definitions":
        return "definition user {}\n" + "".join(
            f"definition d{i:05d} {{\n    relation viewer: user\n    permission view = viewer\n}}\n"
            for i in range(count))
    if kind == "members":
        body = "".join(f"    relation r{i:05d}: user\n" for i in range(count))
        return "definition user {}\ndefinition doc {\n" + body + "    permission view = " + " + ".join(
            f"r{i:05d}" for i in range(count)) + "\n}\n"
    if kind == "identifier":
        return f"definition {draw(huge_identifiers())} {{}}\n"
    if kind == "oversize":
        return "definition user {}\n" + "// " + "x" * (1024 * 1024) + "\n"
    return "definition user {}" + " " * draw(st.integers(0, 200_000)) + "x\n"


RANDOM_TEXT = st.text(alphabet=st.sampled_from(list("definitonrelaspmvw{}()#:*|+&-=<>./\\\"' \n_xyz0123@[]!"))
                      | st.characters(), max_size=300)
TOKEN_SOUP = st.lists(st.sampled_from(VOCABULARY), max_size=80).map(" ".join)


# --- tests -----------------------------------------------------------------------------------


@fuzz_settings(60)
@given(RANDOM_TEXT)
@example("")
@example("\x00")
@example("definition user {}\x00")
def test_random_text(text: str) -> None:
    exercise(text)


@fuzz_settings(60)
@given(TOKEN_SOUP)
def test_token_soup(text: str) -> None:
    exercise(text)


@fuzz_settings(150)
@given(mutated_schemas())
def test_mutated_real_schemas(text: str) -> None:
    exercise(text)


@fuzz_settings(40, deadline=None)  # no_hang() guards against a hang; a slow example is not a failure here
@given(deep_schemas())
def test_deep_nesting(text: str) -> None:
    exercise(text)


@fuzz_settings(12, deadline=None)
@given(big_schemas())
def test_huge_inputs(text: str) -> None:
    exercise(text)


def test_every_seed_schema() -> None:
    """The seeds themselves (valid ones round-trip; broken ones are located errors)."""
    for text in seeds.schemas():
        try:
            exercise(text)
        except UnsatisfiedAssumption:  # a known defect (known_defects.py)
            continue
