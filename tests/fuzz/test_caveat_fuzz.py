"""Fuzzing CEL caveats: random expressions compiled in a schema, evaluated by checks with random contexts.

The schema is ``caveat c(x int, s string, l list<int>, m map<string>, t timestamp,
d duration) { <expression> }`` (only the parameters the expression names are declared:
an unused parameter is a schema error), with ``doc:1#viewer@user:a[c]`` and
``doc:2#viewer@user:a[c:{stored context}]``. Properties:

* compiling either succeeds or raises the ``DslError`` family, located inside the text;
* ``Engine.check`` with any JSON-like context either answers or raises
  ``InvalidRequestError`` (``CaveatEvaluationError`` for a caveat that cannot be
  evaluated), never another exception, and never hangs (``no_hang``);
* a bulk check of the same item gives the same answer or the same kind of error,
  and so do LookupResources and Expand (answer or ``InvalidRequestError``);
* a stored context is either accepted or refused as ``InvalidRequestError``.

Expressions come from a typed generator (integers near the 64-bit limits, division by
zero, indexes out of range, missing map keys, regular expressions that do not compile,
timestamps and durations past their ranges, comprehensions nested to exhaust CEL's
iteration budget) and from token-level mutations of what it generates.
"""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from headwater.dsl import DslError, compile_schema
from headwater.engine import BulkCheckItem, Engine, Permissionship
from headwater.engine.errors import InvalidRequestError
from headwater.engine.store.memory import MemoryStore

from .conftest import fuzz_settings, no_hang
from .known_defects import tolerating_known_defects
from .test_schema_fuzz import _located

PARAMETERS = {"x": "int", "s": "string", "l": "list<int>", "m": "map<string>", "t": "timestamp", "d": "duration"}

INT_LITERALS = ["0", "1", "-1", "7", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
                "0x7fffffffffffffff", "1u", "2.5", "1e308"]
STRING_LITERALS = ['""', '"a"', '"k"', "'ab'", '"\\u00e9"', '"\\x00"', '"\\ud800"', '"("', '"[a-"', '"(a*)*b"',
                   '"\\\\"', 'r"\\d+"', '"""x"""', 'b"a"', '"' + "a" * 5000 + '"']
TIMESTAMPS = ['"2020-01-01T00:00:00Z"', '"9999-12-31T23:59:59Z"', '"0001-01-01T00:00:00Z"', '"10000-01-01T00:00:00Z"',
              '"2020-13-01T00:00:00Z"', '"not a time"', '"2020-01-01T00:00:00+25:00"']
DURATIONS = ['"1s"', '"-1h"', '"1.5m"', '"315576000000s"', '"315576000001s"', '"1d"', '"xx"', '"0"', '"1h1m1s1ms1us1ns"']


def _expr(draw: st.DrawFn, kind: str, depth: int, ints: tuple[str, ...] = ("x",)) -> str:
    """A CEL expression, mostly of type ``kind`` (int, string, bool, list, timestamp, duration)."""
    leaf = depth <= 0 or draw(st.integers(0, 3)) == 0
    if kind == "int":
        if leaf:
            return draw(st.sampled_from([*ints, *INT_LITERALS, "size(l)", "size(s)", "size(m)"]))
        return draw(st.sampled_from([
            lambda: f"{_expr(draw, 'int', depth - 1, ints)} {draw(st.sampled_from('+-*/%'))} "
                    f"{_expr(draw, 'int', depth - 1, ints)}",
            lambda: f"-({_expr(draw, 'int', depth - 1, ints)})",
            lambda: f"l[{_expr(draw, 'int', depth - 1, ints)}]",
            lambda: f"int({_expr(draw, 'string', depth - 1, ints)})",
            lambda: f"int({_expr(draw, 'timestamp', depth - 1, ints)})",
            lambda: f"{_expr(draw, 'timestamp', depth - 1, ints)}.get{draw(st.sampled_from(['FullYear', 'Month', 'Hours', 'DayOfWeek']))}()",
            lambda: f"{_expr(draw, 'duration', depth - 1, ints)}.get{draw(st.sampled_from(['Hours', 'Seconds', 'Milliseconds']))}()",
            lambda: f"({_expr(draw, 'bool', depth - 1, ints)} ? {_expr(draw, 'int', depth - 1, ints)} : "
                    f"{_expr(draw, 'int', depth - 1, ints)})",
            lambda: f"size({_expr(draw, 'list', depth - 1, ints)})",
        ]))()
    if kind == "string":
        if leaf:
            return draw(st.sampled_from(["s", *STRING_LITERALS, 'm["k"]']))
        return draw(st.sampled_from([
            lambda: f"{_expr(draw, 'string', depth - 1, ints)} + {_expr(draw, 'string', depth - 1, ints)}",
            lambda: f"m[{_expr(draw, 'string', depth - 1, ints)}]",
            lambda: f"string({_expr(draw, draw(st.sampled_from(['int', 'timestamp', 'duration'])), depth - 1, ints)})",
        ]))()
    if kind == "list":
        if leaf:
            return draw(st.sampled_from(["l", "[]", "[1, 2, 3]", "[x]"]))
        var = draw(st.sampled_from(["i", "j", "k"]))
        return draw(st.sampled_from([
            lambda: f"{_expr(draw, 'list', depth - 1, ints)} + {_expr(draw, 'list', depth - 1, ints)}",
            lambda: f"{_expr(draw, 'list', depth - 1, ints)}.map({var}, "
                    f"{_expr(draw, 'int', depth - 1, (*ints, var))})",
            lambda: f"{_expr(draw, 'list', depth - 1, ints)}.filter({var}, "
                    f"{_expr(draw, 'bool', depth - 1, (*ints, var))})",
            lambda: f"[{_expr(draw, 'int', depth - 1, ints)}, {_expr(draw, 'int', depth - 1, ints)}]",
        ]))()
    if kind == "timestamp":
        if leaf:
            return draw(st.sampled_from(["t", *(f"timestamp({v})" for v in TIMESTAMPS)]))
        return draw(st.sampled_from([
            lambda: f"{_expr(draw, 'timestamp', depth - 1, ints)} {draw(st.sampled_from('+-'))} "
                    f"{_expr(draw, 'duration', depth - 1, ints)}",
            lambda: f"timestamp({_expr(draw, 'string', depth - 1, ints)})",
            lambda: f"timestamp({_expr(draw, 'int', depth - 1, ints)})",
        ]))()
    if kind == "duration":
        if leaf:
            return draw(st.sampled_from(["d", *(f"duration({v})" for v in DURATIONS)]))
        return draw(st.sampled_from([
            lambda: f"{_expr(draw, 'duration', depth - 1, ints)} {draw(st.sampled_from('+-'))} "
                    f"{_expr(draw, 'duration', depth - 1, ints)}",
            lambda: f"{_expr(draw, 'timestamp', depth - 1, ints)} - {_expr(draw, 'timestamp', depth - 1, ints)}",
            lambda: f"duration({_expr(draw, 'string', depth - 1, ints)})",
        ]))()
    # bool
    if leaf:
        return draw(st.sampled_from(["true", "false", "x > 1", "s == 'a'", "1 in l", "'k' in m", "has(m.k)",
                                     "t < timestamp('2030-01-01T00:00:00Z')", "d > duration('1s')"]))
    var = draw(st.sampled_from(["i", "j", "k"]))
    macro = draw(st.sampled_from(["all", "exists", "exists_one"]))
    comparable = draw(st.sampled_from(["int", "string", "timestamp", "duration", "list"]))
    return draw(st.sampled_from([
        lambda: f"{_expr(draw, 'bool', depth - 1, ints)} {draw(st.sampled_from(['&&', '||']))} "
                f"{_expr(draw, 'bool', depth - 1, ints)}",
        lambda: f"!({_expr(draw, 'bool', depth - 1, ints)})",
        lambda: f"{_expr(draw, comparable, depth - 1, ints)} {draw(st.sampled_from(['==', '!=', '<', '<=', '>']))} "
                f"{_expr(draw, comparable, depth - 1, ints)}",
        lambda: f"{_expr(draw, 'string', depth - 1, ints)}."
                f"{draw(st.sampled_from(['startsWith', 'endsWith', 'contains', 'matches']))}"
                f"({_expr(draw, 'string', depth - 1, ints)})",
        lambda: f"{_expr(draw, 'int', depth - 1, ints)} in {_expr(draw, 'list', depth - 1, ints)}",
        lambda: f"{_expr(draw, 'string', depth - 1, ints)} in m",
        lambda: f"{_expr(draw, 'list', depth - 1, ints)}.{macro}({var}, "
                f"{_expr(draw, 'bool', depth - 1, (*ints, var))})",
        lambda: f"m.{macro}({var}, {var} == {_expr(draw, 'string', depth - 1, ints)})",
        lambda: f"({_expr(draw, 'bool', depth - 1, ints)} ? {_expr(draw, 'bool', depth - 1, ints)} : "
                f"{_expr(draw, 'bool', depth - 1, ints)})",
    ]))()


@st.composite
def expressions(draw: st.DrawFn) -> str:
    return _expr(draw, "bool", draw(st.integers(0, 5)))


_STRING_LITERAL = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'")
_CEL_TOKEN = re.compile(r"\s+|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|\w+|&&|\|\||==|!=|<=|>=|\S")


@st.composite
def mutated_expressions(draw: st.DrawFn) -> str:
    tokens = _CEL_TOKEN.findall(draw(expressions())) or [""]
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(tokens) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert"]))
        if op == "delete" and len(tokens) > 1:
            del tokens[i]
        elif op == "duplicate":
            tokens.insert(i, tokens[i])
        elif op == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        else:
            tokens.insert(i, draw(st.sampled_from(["(", ")", "[", "]", "{", "}", ".", ",", "?", ":", "!", "-", "x",
                                                   "s", "l", "m", "t", "d", "size", "has", "in", "null", "dyn(",
                                                   "\x00", "é", "}", "\n", "/*", "//", '"'])))
    return " ".join(tokens)


JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.floats(allow_nan=False)
                | st.text(max_size=8))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)
TYPED_VALUES = {
    "x": st.integers(-(2**63), 2**63 - 1) | st.sampled_from([2**63, -(2**63) - 1, 2.0, 1.5, "1", True]),
    "s": st.text(max_size=20) | st.sampled_from(["a", "ab", "k", "\x00", "\ud800"]),
    "l": st.lists(st.integers(-(2**63), 2**63 - 1), max_size=120) | st.just(list(range(200))),
    "m": st.dictionaries(st.sampled_from(["k", "a", "", "\x00"]) | st.text(max_size=3), st.text(max_size=4),
                         max_size=3),
    "t": st.sampled_from(["2020-01-01T00:00:00Z", "2021-06-01T12:30:00.123456789+02:00", "0001-01-01T00:00:00Z",
                          "9999-12-31T23:59:59.999999999Z", "10000-01-01T00:00:00Z", "2020-02-30T00:00:00Z",
                          "yesterday", ""]) | st.integers(),
    "d": st.sampled_from(["1s", "-1.5h", "0s", "315576000000s", "315576000001s", "1d", "9999999999999999h",
                          "1h2m3s4ms5us6ns", ".5s", "", "s"]) | st.integers(),
}


@st.composite
def contexts(draw: st.DrawFn, deep: bool = True) -> dict:
    """Some parameters, each well typed, mistyped or any JSON value; sometimes an unknown key or a deep value."""
    out = {}
    every = draw(st.booleans())  # half of the contexts bind every parameter, so that most checks decide
    for name in sorted(PARAMETERS) if every else draw(st.lists(st.sampled_from(sorted(PARAMETERS)), unique=True)):
        out[name] = draw(TYPED_VALUES[name] if draw(st.integers(0, 5 if every else 3)) else JSON_VALUES)
    if draw(st.integers(0, 5)) == 0:
        out[draw(st.text(max_size=5))] = draw(JSON_VALUES)
    if deep and out and draw(st.integers(0, 9)) == 0:  # one value nested deeply (as JSON can be; gRPC stops at 100 levels)
        name = draw(st.sampled_from(sorted(out)))
        for _ in range(draw(st.sampled_from([2, 100, 1000, 3000]) | st.integers(1, 3000))):
            out[name] = {"k": out[name]} if draw(st.booleans()) else [out[name]]
    return out


def schema_for(expression: str) -> str:
    """The schema around ``expression``, declaring the parameters it names (``x`` when it names none: a caveat
    has at least one parameter, and an unused one is an error)."""
    code = _STRING_LITERAL.sub('""', expression)
    used = [name for name in PARAMETERS if re.search(rf"\b{name}\b", code)]
    if not used:
        used, expression = ["x"], f"({expression}) && x == x"
    params = ", ".join(f"{name} {PARAMETERS[name]}" for name in used)
    return (f"caveat c({params}) {{\n    {expression}\n}}\n\ndefinition user {{}}\n\n"
            "definition doc {\n    relation viewer: user with c\n    permission view = viewer\n}\n")


def _answer(call) -> tuple[str, object]:
    """("ok", result) or ("refused", error class name) for an InvalidRequestError; anything else fails."""
    with no_hang(), tolerating_known_defects():
        try:
            return "ok", call()
        except InvalidRequestError as exc:
            assert str(exc)
            return "refused", type(exc).__name__


def exercise(expression: str, stored: dict, asked: dict) -> None:
    text = schema_for(expression)
    with no_hang():
        try:
            compile_schema(text)
        except DslError as exc:
            _located(exc, text)
            return
    engine = Engine(MemoryStore())
    engine.write_schema(text)
    engine.touch("doc:1#viewer@user:a[c]")
    stored_kind, _ = _answer(lambda: engine.touch(f"doc:2#viewer@user:a[c:{json.dumps(stored)}]"))
    for resource in ("doc:1", "doc:2") if stored_kind == "ok" else ("doc:1",):
        kind, single = _answer(lambda r=resource: engine.check(r, "view", "user:a", context=asked))
        _, bulk = _answer(lambda r=resource: engine.check_bulk([BulkCheckItem(r, "view", "user:a", asked)]))
        if kind == "ok":
            (item,) = bulk
            assert item.error is None and item.result is not None, item
            assert item.result.permissionship == single.permissionship
            assert item.result.missing_context == single.missing_context
            assert single.permissionship in Permissionship
        else:
            assert bulk == single or (bulk[0].error is not None and type(bulk[0].error).__name__ == single), (
                f"check refused with {single}, bulk check answered {bulk}")
    _answer(lambda: engine.lookup_resources("doc", "view", "user:a", context=asked))
    _answer(lambda: engine.lookup_subjects("doc:1", "view", "user", context=asked))
    _answer(lambda: engine.expand("doc:2", "view", context=asked))


@fuzz_settings(60)
@given(expressions(), contexts(deep=False), contexts())
def test_generated_caveats(expression: str, stored: dict, asked: dict) -> None:
    exercise(expression, stored, asked)


@fuzz_settings(10)
@given(expressions(), st.sampled_from(sorted(PARAMETERS)), st.sampled_from([1000, 3000]) | st.integers(1, 3000),
       st.booleans())
def test_deep_contexts(expression: str, name: str, depth: int, maps: bool) -> None:
    """One context value nested ``depth`` levels (JSON can be; gRPC's Struct stops at 100)."""
    value: object = "a"
    for _ in range(depth):
        value = {"k": value} if maps else [value]
    exercise(expression, {}, {name: value})


@fuzz_settings(40)
@given(mutated_expressions(), contexts())
def test_mutated_caveats(expression: str, asked: dict) -> None:
    exercise(expression, {}, asked)


@fuzz_settings(20)
@given(st.text(max_size=40), contexts())
def test_random_caveat_text(expression: str, asked: dict) -> None:
    exercise(expression, {}, asked)


def test_comprehensions_stop_at_the_iteration_budget() -> None:
    """Nested comprehensions over the largest list a context may hold end quickly: true, false or refused."""
    nested = "l.all(i, l.all(j, l.all(k, i + j + k > -1)))"
    exercise(nested, {}, {"l": list(range(300))})
    exercise("l.map(i, l.map(j, l.map(k, k))).size() > 0", {}, {"l": list(range(300))})
