"""The relationship values and the one parser/formatter of their text form."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.engine.errors import InvalidRelationshipError, InvalidRequestError
from headwater.engine.relationships import (
    CaveatRef,
    ObjectRef,
    Relationship,
    SubjectRef,
    format_expiration,
    format_relationship,
    parse_object,
    parse_relationship,
    parse_subject,
)

UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "document:doc1#viewer@group:eng#member",
            Relationship(ObjectRef("document", "doc1"), "viewer", SubjectRef("group", "eng", "member")),
        ),
        ("doc:1#viewer@user:*", Relationship(ObjectRef("doc", "1"), "viewer", SubjectRef("user", "*"))),
        (
            'doc:1#viewer@user:tom[only_on_tuesday:{"day":"tue"}]',
            Relationship(
                ObjectRef("doc", "1"), "viewer", SubjectRef("user", "tom"), CaveatRef("only_on_tuesday", '{"day":"tue"}')
            ),
        ),
        (
            "doc:1#viewer@user:tom[expiration:2323-12-01T00:00:00Z]",
            Relationship(
                ObjectRef("doc", "1"), "viewer", SubjectRef("user", "tom"), expiration=datetime(2323, 12, 1, tzinfo=UTC)
            ),
        ),
        (
            'doc:1#viewer@user:tom[cav:{"a":"]"}][expiration:2323-12-01T00:00:00.5Z]',
            Relationship(
                ObjectRef("doc", "1"),
                "viewer",
                SubjectRef("user", "tom"),
                CaveatRef("cav", '{"a":"]"}'),
                datetime(2323, 12, 1, 0, 0, 0, 500000, tzinfo=UTC),
            ),
        ),
        (
            "acme/doc:a/b|c-d=e+f_#viewer@acme/user:x",
            Relationship(ObjectRef("acme/doc", "a/b|c-d=e+f_"), "viewer", SubjectRef("acme/user", "x")),
        ),
        ("doc:1#viewer@user:tom[cav]", Relationship(ObjectRef("doc", "1"), "viewer", SubjectRef("user", "tom"), CaveatRef("cav"))),
    ],
)
def test_parse_reads_every_part_of_the_text_form(text: str, expected: Relationship) -> None:
    assert parse_relationship(text) == expected
    assert format_relationship(expected) == text
    assert str(expected) == text


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("doc:1#viewer@user:tom#...", "doc:1#viewer@user:tom"),
        ('doc:1#viewer@user:tom[cav:{ "b": 1, "a": [2, 3] }]', 'doc:1#viewer@user:tom[cav:{"a":[2,3],"b":1}]'),
        ("doc:1#viewer@user:tom[cav:{}]", "doc:1#viewer@user:tom[cav]"),
        ("doc:1#viewer@user:tom[expiration:2323-12-01T01:30:00+01:30]", "doc:1#viewer@user:tom[expiration:2323-12-01T00:00:00Z]"),
        ("doc:1#viewer@user:tom[expiration:2323-12-01t00:00:00.100000z]", "doc:1#viewer@user:tom[expiration:2323-12-01T00:00:00.1Z]"),
        ("doc:1#viewer@user:tom[expiration:2323-12-01T00:00:00Z][cav]", "doc:1#viewer@user:tom[cav][expiration:2323-12-01T00:00:00Z]"),
        ('doc:1#viewer@user:tom[expiration:{"at":1}]', 'doc:1#viewer@user:tom[expiration:{"at":1}]'),  # a caveat so named
    ],
)
def test_format_prints_canonical_text(text: str, canonical: str) -> None:
    parsed = parse_relationship(text)
    assert format_relationship(parsed) == canonical
    assert parse_relationship(canonical) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "doc:a b#viewer@user:x",
            "invalid object id 'a b' in 'doc:a b#viewer@user:x': ids may contain only letters, digits and /_|-=+",
        ),
        ("Doc:1#viewer@user:x", "invalid object type 'Doc' in 'Doc:1#viewer@user:x': type names are"),
        ("do:1#viewer@user:x", "invalid object type 'do'"),
        ("doc:1#Viewer@user:x", "invalid relation 'Viewer' in 'doc:1#Viewer@user:x': relation names are"),
        ("doc:1#viewer_@user:x", "invalid relation 'viewer_'"),
        ("doc:#viewer@user:x", "invalid object id '' in 'doc:#viewer@user:x': ids must not be empty"),
        ("doc:" + "a" * 1025 + "#viewer@user:x", "ids are at most 1024 characters"),
        ("doc:1viewer@user:x", "missing '#relation' after the resource 'doc:1viewer'"),
        ("doc:1#viewer", "missing '@' between the relation and the subject"),
        ("doc1#viewer@user:x", "invalid object 'doc1' in 'doc1#viewer@user:x': missing ':'"),
        ("doc:1#viewer@userx", "invalid subject 'userx' in 'doc:1#viewer@userx': missing ':'"),
        ("doc:1#viewer@user:a@b", "invalid subject id 'a@b'"),
        ("doc:1#viewer@user:*#member", "a wildcard subject cannot have a subject relation"),
        ("doc:1#viewer@group:eng#Member", "invalid subject relation 'Member'"),
        ("doc:1#viewer@user:x[cav:[1]]", "invalid caveat context '[1]' in 'doc:1#viewer@user:x[cav:[1]]': must be a JSON object"),
        ("doc:1#viewer@user:x[cav:{nope}]", "not valid JSON"),
        ('doc:1#viewer@user:x[cav:{"a":NaN}]', "NaN is not allowed"),
        ('doc:1#viewer@user:x[cav:{"a":1}', "expected ']' after the caveat context"),
        ("doc:1#viewer@user:x[cav", "'[' without a closing ']'"),
        ("doc:1#viewer@user:x[-cav]", "invalid caveat name '-cav'"),
        ("doc:1#viewer@user:x[" + "c" * 129 + "]", "caveat names are 1 to 128 characters"),
        ("doc:1#viewer@user:x[cav][cav]", "more than one caveat"),
        ("doc:1#viewer@user:x[cav]x", "unexpected 'x' after the subject"),
        ("doc:1#viewer@user:x[expiration:2323-12-01]", "invalid expiration '2323-12-01'"),
        ("doc:1#viewer@user:x[expiration:2323-13-01T00:00:00Z]", "month must be in 1..12"),
        ("doc:1#viewer@user:x[expiration:2323-12-01T00:00:00.1234567891Z]", "at most 9 fractional digits"),
        (
            "doc:1#viewer@user:x[expiration:2323-12-01T00:00:00Z][expiration:2323-12-01T00:00:00Z]",
            "more than one expiration",
        ),
    ],
)
def test_every_parse_error_quotes_the_input_and_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidRelationshipError) as info:
        parse_relationship(text)
    assert message in str(info.value)
    assert isinstance(info.value, InvalidRequestError)


@pytest.mark.parametrize("fraction", ["1234567", "12345678", "123456789"])
def test_nanosecond_expirations_as_spicedb_writes_them_are_truncated_to_microseconds(fraction: str) -> None:
    rel = parse_relationship(f"doc:1#viewer@user:x[expiration:2323-12-01T00:00:00.{fraction}Z]")
    assert rel.expiration is not None and rel.expiration.microsecond == 123456
    assert str(rel) == "doc:1#viewer@user:x[expiration:2323-12-01T00:00:00.123456Z]"


def test_parse_refuses_non_strings() -> None:
    with pytest.raises(InvalidRelationshipError):
        parse_relationship(42)  # type: ignore[arg-type]


def test_parse_object_and_subject() -> None:
    assert parse_object("document:doc1") == ObjectRef("document", "doc1")
    assert parse_subject("group:eng#member") == SubjectRef("group", "eng", "member")
    assert parse_subject("group:eng#...") == SubjectRef("group", "eng")
    assert parse_subject("user:*") == SubjectRef("user", "*")
    with pytest.raises(InvalidRelationshipError, match="invalid object id '\\*'"):
        parse_object("user:*")
    with pytest.raises(InvalidRelationshipError, match="missing ':'"):
        parse_object("document")
    with pytest.raises(InvalidRelationshipError, match="wildcard"):
        parse_subject("user:*#member")


def test_values_validate_their_fields_when_built() -> None:
    with pytest.raises(InvalidRelationshipError, match="invalid object type 'd'"):
        ObjectRef("d", "1")
    with pytest.raises(InvalidRelationshipError, match="invalid object id"):
        ObjectRef("doc", "a b")
    with pytest.raises(InvalidRelationshipError, match="must be a string"):
        ObjectRef("doc", 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidRelationshipError, match="wildcard"):
        SubjectRef("user", "*", "member")
    with pytest.raises(InvalidRelationshipError, match="invalid relation"):
        Relationship(ObjectRef("doc", "1"), "v", SubjectRef("user", "tom"))
    with pytest.raises(InvalidRelationshipError, match="must be an ObjectRef"):
        Relationship("doc:1", "viewer", SubjectRef("user", "tom"))  # type: ignore[arg-type]
    with pytest.raises(InvalidRelationshipError, match="timezone-aware"):
        Relationship(ObjectRef("doc", "1"), "viewer", SubjectRef("user", "tom"), expiration=datetime(2030, 1, 1))
    with pytest.raises(InvalidRelationshipError, match="JSON object"):
        CaveatRef("cav", "[1]")


def test_subject_relation_dots_mean_none() -> None:
    assert SubjectRef("user", "tom", "...") == SubjectRef("user", "tom")
    assert SubjectRef("user", "tom", "...").relation is None
    assert str(SubjectRef("group", "eng", "member")) == "group:eng#member"


def test_wildcards() -> None:
    assert SubjectRef("user", "*").is_wildcard
    assert not SubjectRef("user", "tom").is_wildcard
    assert str(SubjectRef("user", "*")) == "user:*"


def test_subjects_order_with_no_relation_first() -> None:
    subjects = [
        SubjectRef("user", "tom"),
        SubjectRef("group", "eng", "member"),
        SubjectRef("group", "eng2"),
        SubjectRef("group", "eng"),
        SubjectRef("group", "eng", "admin"),
    ]
    assert [str(s) for s in sorted(subjects)] == [
        "group:eng",
        "group:eng#admin",
        "group:eng#member",
        "group:eng2",
        "user:tom",
    ]
    assert SubjectRef("group", "eng") <= SubjectRef("group", "eng")
    assert SubjectRef("user", "a") > SubjectRef("group", "z", "member")


def test_object_refs_order_by_type_then_id() -> None:
    assert sorted([ObjectRef("doc", "2"), ObjectRef("doc", "10"), ObjectRef("abc", "9")]) == [
        ObjectRef("abc", "9"),
        ObjectRef("doc", "10"),
        ObjectRef("doc", "2"),
    ]
    assert str(ObjectRef("document", "doc1")) == "document:doc1"


def test_key_ignores_caveat_and_expiration() -> None:
    plain = parse_relationship("doc:1#viewer@user:tom")
    caveated = parse_relationship("doc:1#viewer@user:tom[cav][expiration:2323-12-01T00:00:00Z]")
    assert plain != caveated
    assert plain.key == caveated.key == (ObjectRef("doc", "1"), "viewer", SubjectRef("user", "tom"))
    assert hash(plain.key) == hash(caveated.key)


def test_caveat_context_is_canonical_and_hashable() -> None:
    first = CaveatRef("cav", '{"b": 1, "a": {"y": 2, "x": 1}}')
    second = CaveatRef("cav", '{"a":{"x":1,"y":2},"b":1}')
    assert first == second and hash(first) == hash(second)
    assert first.context == '{"a":{"x":1,"y":2},"b":1}'
    assert first.context_dict() == {"a": {"x": 1, "y": 2}, "b": 1}
    assert CaveatRef("cav").context_dict() == {}


def test_expiration_is_kept_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    rel = Relationship(
        ObjectRef("doc", "1"), "viewer", SubjectRef("user", "tom"), expiration=datetime(2030, 1, 1, 2, 0, tzinfo=plus_two)
    )
    assert rel.expiration == datetime(2030, 1, 1, 0, 0, tzinfo=UTC)
    assert rel.expiration is not None and rel.expiration.tzinfo == UTC


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2323, 12, 1, tzinfo=UTC), "2323-12-01T00:00:00Z"),
        (datetime(2323, 12, 1, 0, 0, 0, 120000, tzinfo=UTC), "2323-12-01T00:00:00.12Z"),
        (datetime(2323, 12, 1, 0, 0, 0, 1, tzinfo=UTC), "2323-12-01T00:00:00.000001Z"),
        (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "0999-01-02T03:04:05Z"),
    ],
)
def test_format_expiration(moment: datetime, text: str) -> None:
    assert format_expiration(moment) == text


# --- property: parse(format(r)) == r ----------------------------------------------------------

_NAME = st.from_regex(r"[a-z][a-z0-9_]{1,10}[a-z0-9]", fullmatch=True)
_TYPE = st.builds(lambda ns, name: f"{ns}/{name}" if ns else name, st.none() | _NAME, _NAME)
_ID = st.from_regex(r"[a-zA-Z0-9/_|\-=+]{1,20}", fullmatch=True)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
_CAVEAT = st.builds(
    lambda name, ctx: CaveatRef(name, json.dumps(ctx)),
    _TYPE,
    st.dictionaries(st.text(max_size=5), _JSON, max_size=3),
)
_EXPIRATION = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
_SUBJECT = st.one_of(
    st.builds(SubjectRef, _TYPE, _ID, st.none() | _NAME),
    st.builds(lambda t: SubjectRef(t, "*"), _TYPE),
)
_RELATIONSHIP = st.builds(
    Relationship,
    st.builds(ObjectRef, _TYPE, _ID),
    _NAME,
    _SUBJECT,
    st.none() | _CAVEAT,
    st.none() | _EXPIRATION,
)


@given(_RELATIONSHIP)
def test_parse_of_format_is_the_identity(relationship: Relationship) -> None:
    text = format_relationship(relationship)
    assert parse_relationship(text) == relationship
    assert format_relationship(parse_relationship(text)) == text
