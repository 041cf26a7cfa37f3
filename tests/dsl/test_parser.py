"""Parser: grammar coverage, SpiceDB's statement rule, precedence, spans and comments."""

from __future__ import annotations

import pytest

from headwater.dsl import DslSyntaxError, parse_schema
from headwater.dsl import ast
from headwater.dsl.ast import ArrowFunction as F

from tests.conformance import CONFORMANCE


def perm_expr(text: str) -> ast.Expr:
    doc = parse_schema(f"definition doc {{\n permission p = {text}\n}}")
    member = doc.definitions[0].members[0]
    assert isinstance(member, ast.Permission)
    return member.expr


R = ast.RelationRef


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a + b & c", ast.Intersection(ast.Union(R("a"), R("b")), R("c"))),
        ("a & b + c", ast.Intersection(R("a"), ast.Union(R("b"), R("c")))),
        ("a - b + c", ast.Exclusion(R("a"), ast.Union(R("b"), R("c")))),
        ("a - b & c", ast.Exclusion(R("a"), ast.Intersection(R("b"), R("c")))),
        ("a - b - c", ast.Exclusion(ast.Exclusion(R("a"), R("b")), R("c"))),
        ("a + b + c", ast.Union(ast.Union(R("a"), R("b")), R("c"))),
        ("a + (b + c)", ast.Union(R("a"), ast.Union(R("b"), R("c")))),
        ("(a - b) + c", ast.Union(ast.Exclusion(R("a"), R("b")), R("c"))),
        ("a->b + c", ast.Union(ast.Arrow(R("a"), "b"), R("c"))),
        ("a.any(b)", ast.Arrow(R("a"), "b", F.ANY)),
        ("a.all(b) & c", ast.Intersection(ast.Arrow(R("a"), "b", F.ALL), R("c"))),
        ("a->b->c", ast.Arrow(ast.Arrow(R("a"), "b"), "c")),
        ("nil", ast.Nil()),
        ("self + a", ast.Union(ast.SelfRef(), R("a"))),
        ("((a))", R("a")),
    ],
)
def test_expression_precedence_matches_spicedb(text: str, expected: ast.Expr) -> None:
    assert perm_expr(text) == expected


def test_operator_at_line_end_continues_the_statement() -> None:
    assert perm_expr("a +\n   b") == ast.Union(R("a"), R("b"))


def test_operator_at_line_start_is_an_error_as_in_spicedb() -> None:
    with pytest.raises(DslSyntaxError) as e:
        parse_schema("definition doc {\n permission p = a\n   + b\n}")
    assert (e.value.line, e.value.column) == (3, 4)


def test_statement_must_end_before_closing_brace_on_one_line() -> None:
    with pytest.raises(DslSyntaxError) as e:
        parse_schema("definition user {}\ndefinition doc { relation viewer: user }")
    assert (e.value.line, e.value.column) == (2, 40)


def test_semicolons_and_empty_statements() -> None:
    doc = parse_schema("definition user {};definition doc { relation viewer: user; ; permission view = viewer; }")
    assert [m.name for m in doc.definitions[1].members] == ["viewer", "view"]


def test_allowed_type_forms() -> None:
    doc = parse_schema(
        "use expiration\n"
        "definition doc {\n"
        " relation r: user | user:* | group#member | group#... | user with cav | user with expiration"
        " | user with cav and expiration | a/b/c\n"
        "}"
    )
    allowed = doc.definitions[0].members[0].allowed
    assert [(a.type_name, a.relation, a.wildcard, a.with_names) for a in allowed] == [
        ("user", None, False, ()),
        ("user", None, True, ()),
        ("group", "member", False, ()),
        ("group", "...", False, ()),
        ("user", None, False, ("cav",)),
        ("user", None, False, ("expiration",)),
        ("user", None, False, ("cav", "expiration")),
        ("a/b/c", None, False, ()),
    ]


def test_permission_type_annotation() -> None:
    doc = parse_schema("definition doc {\n permission view: user | team#member = viewer\n}")
    p = doc.definitions[0].members[0]
    assert isinstance(p, ast.Permission)
    assert [a.type_name for a in p.annotation or ()] == ["user", "team"]


def test_caveat_body_is_captured_by_brace_matching() -> None:
    doc = parse_schema(
        'caveat c(m map<int>, s string, l list<list<string>>) {\n'
        '    {"a": 1, "}": 2}[s] == m["x"] && l.all(x, x.size() > 0) // a } in a comment\n'
        '}\n'
    )
    cav = doc.caveats[0]
    assert cav.expression == '{"a": 1, "}": 2}[s] == m["x"] && l.all(x, x.size() > 0) // a } in a comment'
    assert [str(p.type) for p in cav.parameters] == ["map<int>", "string", "list<list<string>>"]
    assert (cav.expression_span.line, cav.expression_span.column) == (2, 5)


def test_multiline_caveat_is_dedented() -> None:
    doc = parse_schema("caveat c(a int, b int) {\n        a == 1 &&\n          b == 2\n}")
    assert doc.caveats[0].expression == "a == 1 &&\n  b == 2"


def test_doc_comments_attach_to_the_following_element() -> None:
    doc = parse_schema(
        "/** the user */\n"
        "definition user {}\n"
        "\n"
        "// not a doc comment\n"
        "definition doc {\n"
        "    /**\n     * who may read\n     */\n"
        "    relation viewer: user // trailing\n"
        "    // dangling at the end\n"
        "}\n"
        "// end of file\n"
    )
    user, d = doc.definitions
    assert user.doc == "the user"
    assert d.doc is None and d.comments[0].text == "// not a doc comment"
    viewer = d.members[0]
    assert viewer.doc == "who may read"
    assert viewer.trailing_comment is not None and viewer.trailing_comment.text == "// trailing"
    assert [c.text for c in d.inner_comments] == ["// dangling at the end"]
    assert [c.text for c in doc.trailing_comments] == ["// end of file"]


def test_spans_point_at_names() -> None:
    doc = parse_schema("definition user {}\n\ndefinition doc {\n    relation viewer: user\n}")
    rel = doc.definitions[1].members[0]
    assert (rel.name_span.line, rel.name_span.column) == (4, 14)
    assert (rel.span.line, rel.span.column) == (4, 5)
    assert rel.allowed[0].span.column == 22


@pytest.mark.parametrize(
    "text, line, column, fragment",
    [
        ("definition doc {\n  relation owner example/user\n}", 2, 18, "expected `:`"),
        ("definition doc {\n  relation owner:\n}", 3, 1, "unexpected `}`; expected a name"),
        ("definition doc {\n  relation\n}", 2, 11, "unexpected end of line"),
        ("definition doc {\n  permission view viewer\n}", 2, 19, "expected"),
        ("definition doc {\n  permission view = viewer.foo(x)\n}", 2, 28, "`any` or `all`"),
        ("definition doc {\n  permission view = (viewer)->x\n}", 2, 29, "unexpected `->`"),
        ("definition doc {\n  relation r: user$\n}", 2, 19, "unexpected character '$'"),
        ("definition doc {", 1, 16, "`{` is never closed"),
        ("definition doc {\n  relation viewer: user\n  permission view = viewer + (", 1, 16, "never closed"),
        ("/* never closed\ndefinition doc {}", 1, 1, "unterminated comment"),
        ("caveat c(a string) {\n  a == 'x\n}", 2, 8, "unterminated string"),
    ],
)
def test_syntax_errors_name_the_position(text: str, line: int, column: int, fragment: str) -> None:
    with pytest.raises(DslSyntaxError) as e:
        parse_schema(text)
    assert (e.value.line, e.value.column) == (line, column), e.value.render()
    assert fragment in e.value.message
    rendered = e.value.render()
    assert "^" in rendered


@pytest.mark.conformance
def test_spicedb_invalid_schemafile_position() -> None:
    path = CONFORMANCE / "loader" / "invalid_schemafile.zed"
    with pytest.raises(DslSyntaxError) as e:
        parse_schema(path.read_text(), filename=str(path))
    assert (e.value.line, e.value.column) == (6, 18)
    assert "relation owner example/user" in e.value.render()


def test_line_ending_in_ellipsis_ends_the_statement() -> None:
    """SpiceDB does not end a statement after `group#...`; Headwater does (a strict superset)."""
    doc = parse_schema("definition group {\n  relation member: user | group#...\n}")
    assert doc.definitions[0].members[0].allowed[1].relation == "..."


def test_reserved_words_are_never_names() -> None:
    for text in ("definition nil {}", "definition doc {\n relation relation: user\n}", "caveat with(a int) { a }"):
        with pytest.raises(DslSyntaxError, match="unexpected keyword"):
            parse_schema(text)


def test_non_string_input_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_schema(b"definition user {}")  # type: ignore[arg-type]
