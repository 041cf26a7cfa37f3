"""No input makes the schema compiler fail with anything but DslError, or take long (hypothesis).

Every error carries a line and a column (issue 14: deep nesting once failed with a bare
RecursionError, no position). Deep, long and huge inputs, garbled or not and under random
limits, are fuzzed like the rest. Hypothesis' per-example deadline (1 s) enforces "no
input takes longer than a second"; it is a guard against pathological (super-linear)
inputs, not a speed benchmark.
"""

from __future__ import annotations

import random

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater.dsl import DslError, SchemaLimits, compile_schema, format_schema

from tests.conformance import CONFORMANCE

from .schema_strategies import documents

FUZZ = settings(max_examples=400, deadline=1000, suppress_health_check=[HealthCheck.too_slow])

_SEED_SCHEMAS = [
    "use expiration\ncaveat c(a int, b list<string>) {\n  a > 1 && b.all(x, x != '}')\n}\n"
    "definition user {}\ndefinition group {\n  relation member: user | group#member | user with c\n}\n"
    "definition doc {\n  relation parent: doc\n  relation viewer: user:* | group#member with expiration\n"
    "  permission view = (viewer - parent->view) & parent.all(view) + nil\n}\n",
]


def _conformance_schemas() -> list[str]:
    out = []
    for path in sorted(CONFORMANCE.glob("testconfigs/*.yaml"))[:20]:
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("schema"), str):
            out.append(data["schema"])
    return out


SEEDS = _SEED_SCHEMAS + _conformance_schemas()
TOKENS = ["definition", "relation", "permission", "caveat", "use", "self", "nil", "with", "and", "expiration",
          "->", ".all(", ".any(", "(", ")", "{", "}", "#", "...", ":*", ":", "|", "+", "&", "-", "=", ";", "\n",
          "/*", "*/", "//", "/**", '"', "'", "<", ">", ",", "user", "doc", "x", "\t", "\r", "\x00", "é", "∀"]


def _compile_or_dsl_error(text: str, limits: SchemaLimits | None = None) -> None:
    try:
        compile_schema(text, limits=limits)
    except DslError as exc:
        assert exc.errors and all(isinstance(e, DslError) for e in exc.errors)
        for e in exc.errors:
            assert e.line >= 1 and e.column >= 1, f"no position: {e.message}"
        assert exc.render()  # rendering never fails either


@FUZZ
@given(st.text(max_size=400))
def test_random_text(text: str) -> None:
    _compile_or_dsl_error(text)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join))
def test_random_token_soup(text: str) -> None:
    _compile_or_dsl_error(text)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS) | documents().map(format_schema))
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        j = draw(st.integers(i, min(len(text), i + 12)))
        op = draw(st.sampled_from(["delete", "insert", "replace", "duplicate"]))
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "insert":
            text = text[:i] + draw(st.sampled_from(TOKENS) | st.text(max_size=3)) + text[i:]
        elif op == "replace":
            text = text[:i] + draw(st.sampled_from(TOKENS)) + text[j:]
        else:
            text = text[:j] + text[i:j] + text[j:]
    return text


@FUZZ
@given(mutated())
def test_mutated_valid_schemas(text: str) -> None:
    _compile_or_dsl_error(text)


def test_deep_nesting_is_a_clean_error_or_compiles() -> None:
    deep = "definition doc {\n relation viewer: doc\n permission view = " + "(" * 5000 + "viewer" + ")" * 5000 + "\n}"
    _compile_or_dsl_error(deep)
    chain = "definition doc {\n relation viewer: doc\n permission view = " + " + (viewer" * 3000 + ")" * 3000 + "\n}"
    _compile_or_dsl_error(chain)


@st.composite
def deep_or_huge(draw: st.DrawFn) -> tuple[str, SchemaLimits | None]:
    """A schema that is deep (nested operators, arrow chains, caveat types), long (flat runs) or huge (many
    definitions or members), perhaps garbled at a random place, perhaps under small random limits."""
    rnd = random.Random(draw(st.integers(0, 2**32)))
    n = draw(st.integers(1, 3_000))
    kind = draw(st.sampled_from(["nested", "flat", "arrows", "types", "definitions", "members"]))
    head = "definition user {}\ndefinition doc {\n    relation aaa: doc | user\n    relation bbb: doc\n"
    if kind == "nested":
        expr = "aaa"
        for _ in range(n):
            op = rnd.choice("+-&")
            expr = f"bbb {op} ({expr})" if rnd.random() < 0.5 else f"({expr}) {op} aaa->bbb"
        text = head + f"    permission ppp = {expr}\n}}\n"
    elif kind == "flat":
        text = head + "    permission ppp = " + f" {rnd.choice('+-&')} ".join(["aaa", "bbb"] * n) + "\n}\n"
    elif kind == "arrows":
        text = head + "    permission ppp = aaa" + "".join(rnd.choice(["->bbb", ".any(aaa)", ".all(bbb)"])
                                                       for _ in range(n)) + "\n}\n"
    elif kind == "types":
        text = "caveat cav(x " + "".join(rnd.choice(["list<", "map<"]) for _ in range(n)) + "int" + ">" * n + \
               ") {\n  x == x\n}\n"
    elif kind == "definitions":
        text = "".join(f"/** {i} */\ndefinition d{i:05d} {{}}\n" for i in range(n * 2))
    else:
        text = head + "".join(f"    relation r{i:05d}: user // {i}\n" for i in range(n)) + "}\n"
    if draw(st.booleans()):  # garble: cut, or insert a token, at a random place
        i = draw(st.integers(0, len(text)))
        text = text[:i] if draw(st.booleans()) else text[:i] + draw(st.sampled_from(TOKENS)) + text[i:]
    limits = None
    if draw(st.booleans()):
        limits = SchemaLimits(max_schema_bytes=draw(st.integers(1, 2 * len(text) + 1)),
                              max_schema_definitions=draw(st.integers(1, 50)),
                              max_definition_members=draw(st.integers(1, 50)),
                              max_expression_nesting=draw(st.integers(1, 100)))
    return text, limits


@settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(deep_or_huge())
def test_deep_long_and_huge_schemas_are_a_located_error_or_compile(case: tuple[str, SchemaLimits | None]) -> None:
    _compile_or_dsl_error(*case)
