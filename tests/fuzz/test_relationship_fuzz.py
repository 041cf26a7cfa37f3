"""Fuzzing the relationship text form: ``parse_relationship``, ``parse_object``, ``parse_subject``, caveat contexts.

Properties:

* on any input (random and mutated strings, and values that are not strings) the
  parsers either return a value or raise ``InvalidRequestError`` (in practice its
  subclass ``InvalidRelationshipError``), never anything else;
* whatever parses prints (``str``) to text that parses to an equal value, and that
  text is canonical (printing the value parsed from it gives it back);
* a relationship built from random valid parts, written in a non-canonical way
  (spaces in the JSON, ``#...``, time offsets, fractional seconds), parses to exactly
  those parts;
* a relationship that parses can be written to a SQLite store and read back equal, or
  is refused with ``InvalidRequestError``.

Mutations start from the relationships of SpiceDB's conformance files (``seeds.py``) and
from generated ones, and splice in the characters that matter to the grammar
(``:#@[]{}"``), JSON that ``json`` accepts but a store cannot hold (``1e999``, deep
nesting, lone surrogates), huge ids and odd unicode.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from headwater.engine import Engine, RelationshipFilter
from headwater.engine.errors import InvalidRequestError
from headwater.engine.relationships import (
    CaveatRef,
    ObjectRef,
    Relationship,
    SubjectRef,
    parse_object,
    parse_relationship,
    parse_subject,
)

from . import seeds
from .conftest import fuzz_settings, no_hang
from .known_defects import tolerating_known_defects

TYPES = st.from_regex(r"(?:[a-z][a-z0-9_]{1,8}[a-z0-9]/)?[a-z][a-z0-9_]{1,10}[a-z0-9]", fullmatch=True)
RELATIONS = st.from_regex(r"[a-z][a-z0-9_]{1,10}[a-z0-9]", fullmatch=True)
IDS = st.from_regex(r"[a-zA-Z0-9/_|\-=+]{1,20}", fullmatch=True) | st.sampled_from(["a" * 1024, "x" * 1025, "_"])
CAVEAT_NAMES = st.from_regex(r"[a-zA-Z0-9_][a-zA-Z0-9/_|\-]{0,12}", fullmatch=True) | st.just("expiration")
JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
CONTEXTS = st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4)
OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
MOMENTS = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=OFFSETS)

#: Fragments that matter to the text form or to JSON, spliced in by the mutations.
FRAGMENTS = [":", "#", "@", "[", "]", "{", "}", '"', ",", "*", "...", "#...", "/", "|", "-", "=", "+", "_", " ",
             "\\", "\x00", "\n", "é", "\u202e", "\U0001f600", "\udcff", "ǅ", "٣", "[expiration:", "]", "[c:{",
             "expiration", "2323-12-01T00:00:00Z", "9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00Z",
             "2024-02-30T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T00:00:00.1234567Z",
             '{"a":1e999}', '{"a":NaN}', '{"a":-Infinity}', '{"a":' + "[" * 3000 + "]" * 3000 + "}",
             '{"a":"\\ud800"}', '{"\\udfff":1}', '{"a":"\\u0000"}', '{"a":' + "9" * 5000 + "}", '{"a":1,"a":2}',
             "x" * 1025, "y" * 100_000]


@st.composite
def relationship_parts(draw: st.DrawFn) -> tuple[Relationship, str]:
    """A relationship built from valid parts, and a (possibly non-canonical) text that spells it."""
    rtype, rid, relation, stype = draw(TYPES), draw(IDS.filter(lambda i: len(i) <= 1024)), draw(RELATIONS), draw(TYPES)
    wildcard = draw(st.booleans()) and draw(st.booleans())
    sid = "*" if wildcard else draw(IDS.filter(lambda i: len(i) <= 1024))
    srel = None if wildcard else draw(st.none() | RELATIONS)
    text = f"{rtype}:{rid}#{relation}@{stype}:{sid}"
    if srel is not None:
        text += f"#{srel}"
    elif not wildcard and draw(st.booleans()):
        text += "#..."
    caveat = None
    if draw(st.booleans()):
        name, context = draw(CAVEAT_NAMES), draw(CONTEXTS)
        caveat = CaveatRef(name, json.dumps(context))
        spacing = draw(st.sampled_from([None, 0, 2]))
        text += f"[{name}]" if not context and draw(st.booleans()) else f"[{name}:{json.dumps(context, indent=spacing)}]"
    expiration = None
    if draw(st.booleans()):
        moment = draw(MOMENTS)
        try:
            expiration = moment.astimezone(UTC)
        except OverflowError:
            moment = moment.replace(tzinfo=UTC)
            expiration = moment
        offset = moment.utcoffset() or timedelta(0)
        sign = "-" if offset < timedelta(0) else "+"
        minutes = abs(int(offset.total_seconds())) // 60
        zone = draw(st.sampled_from(["Z", "z"])) if not minutes and draw(st.booleans()) else (
            f"{sign}{minutes // 60:02d}:{minutes % 60:02d}")
        fraction = f".{moment.microsecond:06d}" if moment.microsecond else draw(st.sampled_from(["", ".0", ".000000"]))
        text += f"[expiration:{moment.year:04d}-{moment:%m-%dT%H:%M:%S}{fraction}{zone}]"
    rel = Relationship(ObjectRef(rtype, rid), relation, SubjectRef(stype, sid, srel), caveat, expiration)
    return rel, text


def _round_trips(value: object, parse) -> None:
    printed = str(value)
    again = parse(printed)
    assert again == value, f"{printed!r} parses to {again!r}, not {value!r}"
    assert str(again) == printed, f"{printed!r} is not canonical: it prints as {str(again)!r}"


def _parse_or_refuse(parse, text: object) -> object | None:
    """Parse ``text``; None if refused with an InvalidRequestError (anything else fails the test)."""
    with no_hang(), tolerating_known_defects():
        try:
            value = parse(text)
        except InvalidRequestError as exc:
            assert str(exc)
            return None
    _round_trips(value, parse)
    return value


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    text = draw(base)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 8)))
        op = draw(st.sampled_from(["insert", "replace", "delete", "duplicate", "swap", "truncate"]))
        piece = draw(st.sampled_from(FRAGMENTS) | st.text(max_size=3))
        if op == "insert":
            text = text[:i] + piece + text[i:]
        elif op == "replace":
            text = text[:i] + piece + text[j:]
        elif op == "delete":
            text = text[:i] + text[j:]
        elif op == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif op == "swap":
            k = draw(st.integers(0, len(text)))
            a, b = sorted((i, k))
            text = text[:a] + text[b:b + 1] + text[a + 1:b] + text[a:a + 1] + text[b + 1:]
        else:
            text = text[:i]
    return text


VALID_TEXTS = relationship_parts().map(lambda pair: pair[1]) | st.sampled_from(seeds.relationships())
NOT_STRINGS = st.none() | st.integers() | st.binary(max_size=8) | st.lists(st.text(max_size=3), max_size=2) | st.just(
    ObjectRef("doc", "1"))


@fuzz_settings(150)
@given(relationship_parts())
def test_valid_parts_parse_to_themselves(pair: tuple[Relationship, str]) -> None:
    rel, text = pair
    parsed = _parse_or_refuse(parse_relationship, text)
    assert parsed == rel, f"{text!r} parsed to {parsed!r}"


@fuzz_settings(250)
@given(mutated(VALID_TEXTS))
@example("doc:1#viewer@user:tom[cav:{\"a\":" + "[" * 3000 + "]" * 3000 + "}]")
@example('doc:1#viewer@user:tom[cav:{"a":1e999}]')
def test_mutated_relationships(text: str) -> None:
    _parse_or_refuse(parse_relationship, text)


@fuzz_settings(60)
@given(st.text(max_size=200) | st.text(alphabet=st.sampled_from("ab1:#@[]{}\"*._/|-=+ "), max_size=80))
def test_random_relationship_text(text: str) -> None:
    _parse_or_refuse(parse_relationship, text)


@fuzz_settings(80)
@given(mutated(st.tuples(TYPES, IDS).map(":".join) | st.sampled_from(["user:*", "doc:1", "a/b/c:x"])))
def test_objects(text: str) -> None:
    _parse_or_refuse(parse_object, text)


@fuzz_settings(80)
@given(mutated(st.tuples(TYPES, IDS, st.sampled_from(["", "#...", "#member"])).map(
    lambda t: f"{t[0]}:{t[1]}{t[2]}") | st.sampled_from(["user:*", "group:eng#member", "user:*#member"])))
def test_subjects(text: str) -> None:
    _parse_or_refuse(parse_subject, text)


@fuzz_settings(40)
@given(NOT_STRINGS)
def test_values_that_are_not_strings(value: object) -> None:
    for parse in (parse_relationship, parse_object, parse_subject):
        assert _parse_or_refuse(parse, value) is None


@fuzz_settings(80)
@given(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=60), CONTEXTS.map(json.dumps),
                 mutated(CONTEXTS.map(json.dumps))))
def test_caveat_contexts(context: str) -> None:
    """A caveat context is canonical JSON of an object, or InvalidRequestError."""
    with no_hang(), tolerating_known_defects():
        try:
            ref = CaveatRef("cav", context)
        except InvalidRequestError:
            return
    assert CaveatRef("cav", ref.context) == ref
    assert json.loads(ref.context) == ref.context_dict()


# --- through a store ---------------------------------------------------------------------------

STORE_SCHEMA = """use expiration

caveat only_if(s string, n int, l list<string>) {
    s == "a" || n > 1 || "a" in l
}
definition user {}
definition document {
    relation viewer: user | user with only_if | user with expiration | user with only_if and expiration
}
"""


@pytest.fixture(scope="module")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory):
    engine = Engine.open(tmp_path_factory.mktemp("fuzz-relationships") / "store.db")
    engine.write_schema(STORE_SCHEMA)
    yield engine
    engine.close()


ODD_STRINGS = st.text(alphabet=st.sampled_from(["a", "\x00", "\ud800", "\udfff", "é", "\U0001f600"])
                      | st.characters(exclude_categories=()), max_size=6)  # lone surrogates and NULs included
STORE_CONTEXTS = st.fixed_dictionaries({}, optional={"s": ODD_STRINGS, "n": st.integers(-(2**64), 2**64),
                                                     "l": st.lists(ODD_STRINGS, max_size=3)})


@fuzz_settings(40)
@given(IDS, IDS, STORE_CONTEXTS, st.booleans())
@example("doc1", "tom", {"s": "\x00"}, False)
@example("doc2", "tom", {"s": "\ud800"}, False)
def test_parsed_relationships_write_and_read_back(sqlite_engine: Engine, resource_id: str, subject_id: str,
                                                  context: dict, expiring: bool) -> None:
    """What parses can be written to SQLite and read back equal, or is refused as an invalid request."""
    suffix = f"[only_if:{json.dumps(context)}]" if context or not expiring else ""
    suffix += "[expiration:2323-12-01T00:00:00Z]" if expiring else ""
    rel = _parse_or_refuse(parse_relationship, f"document:{resource_id}#viewer@user:{subject_id}{suffix}")
    if rel is None:
        return
    try:
        with tolerating_known_defects():
            sqlite_engine.touch(rel)
    except InvalidRequestError:
        return
    found, _ = sqlite_engine.read(RelationshipFilter("document", resource_id=resource_id, subject_id=subject_id))
    assert found == [rel]
