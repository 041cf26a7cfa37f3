"""Schema limits and deep or huge schemas, through the language's public functions (headwater.dsl).

Regression tests for issue 14: about 250 levels of alternating nesting ended in lark's
``VisitError`` around a ``RecursionError`` (INTERNAL from WriteSchema, "maximum recursion
depth exceeded" from lint, with no position), and nothing bounded a schema's size.
"""

from __future__ import annotations

import pytest

from headwater.dsl import (
    DslError,
    SchemaLimitError,
    SchemaLimits,
    ast,
    compile_schema,
    format_schema,
    lint_schema,
    parse_schema,
)
from headwater.dsl.limits import MAX_EXPRESSION_NESTING_CEILING

HEAD = "definition user {}\ndefinition doc {\n    relation aaa: user\n    relation bbb: user\n"


def alternating(levels: int) -> str:
    """`aaa + (bbb - (aaa + (bbb - (...))))`: ``levels`` operators, each nested in the one before."""
    text = "aaa + bbb"
    for i in range(1, levels):
        text = f"bbb - ({text})" if i % 2 else f"aaa + ({text})"
    return text


def schema_with(expression: str) -> str:
    return HEAD + f"    permission ppp = {expression}\n}}\n"


def nesting_of(expression: str) -> int:
    """The smallest max_expression_nesting that accepts ``expression``."""
    for limit in range(1, MAX_EXPRESSION_NESTING_CEILING + 1):
        try:
            parse_schema(schema_with(expression), limits=SchemaLimits(max_expression_nesting=limit))
            return limit
        except SchemaLimitError:
            continue
    raise AssertionError("deeper than the ceiling")


@pytest.mark.parametrize("levels", [250, 400, 3_000, 20_000])
def test_deep_alternating_nesting_is_a_located_limit_error_from_every_function(levels: int) -> None:
    text = schema_with(alternating(levels))
    for fn in (parse_schema, compile_schema, lint_schema):
        with pytest.raises(SchemaLimitError) as info:
            fn(text)  # type: ignore[operator]
        e = info.value
        assert (e.line, e.column) == (5, 22 + 7 * 32), e  # the 33rd operator: past the default of 32
        assert "nested too deeply: more than 32 levels (max_expression_nesting) in permission `ppp`" in e.message
        assert "5:246: expression nested too deeply" in str(e) and "^" in str(e)


def test_the_error_points_at_the_sub_expression_that_goes_too_deep() -> None:
    text = schema_with("aaa + (bbb - (aaa & bbb))")
    with pytest.raises(SchemaLimitError) as info:
        compile_schema(text, limits=SchemaLimits(max_expression_nesting=2))
    assert (info.value.line, info.value.column) == (5, 36)  # `aaa & bbb`
    compile_schema(text, limits=SchemaLimits(max_expression_nesting=3))


@pytest.mark.parametrize(("expression", "nesting"), [
    ("aaa", 1),  # no operator at all: any limit accepts it
    ("aaa + bbb", 1),
    ("aaa + bbb + aaa + bbb", 1),  # a run of one operator counts once
    ("aaa & bbb & aaa", 1),
    ("aaa + (bbb + aaa)", 2),  # explicit parentheses nest
    ("aaa - bbb", 1),
    ("aaa - bbb - aaa", 2),  # `(aaa - bbb) - aaa`: each `-` counts
    ("aaa + (bbb - aaa)", 2),
    ("(aaa + bbb) & (aaa - bbb)", 2),
    ("((((aaa))))", 1),  # parentheses alone are no operator
    ("aaa->bbb", 1),
    ("aaa->bbb->aaa->bbb", 2),  # a chain of arrows (refused by the compiler) counts from its second arrow
])
def test_how_nesting_is_counted(expression: str, nesting: int) -> None:
    assert nesting_of(expression) == nesting


@pytest.mark.parametrize("terms", [1_500, 50_000])
def test_long_flat_expressions_compile_format_and_round_trip(terms: int) -> None:
    text = schema_with(" + ".join(["aaa", "bbb"] * (terms // 2)))
    schema = compile_schema(text)
    assert len(schema.definitions["doc"].permissions["ppp"].expr.children) == terms  # type: ignore[union-attr]
    canonical = format_schema(parse_schema(text))
    assert canonical.count("+") == terms - 1 and "(" not in canonical
    assert format_schema(parse_schema(canonical)) == canonical


@pytest.mark.parametrize("text", [
    schema_with(" - ".join(["aaa", "bbb"] * 25_000)),  # 50,000 subtractions: (((aaa - bbb) - aaa) - ...)
    schema_with("aaa" + "->bbb" * 50_000),  # a chain of 50,000 arrows
    "caveat cav(x " + "list<" * 5_000 + "int" + ">" * 5_000 + ") {\n  x == x\n}\n",
])
def test_long_chains_and_deep_types_never_crash(text: str) -> None:
    try:
        compile_schema(text)
    except DslError as e:
        assert e.line > 0 and e.column > 0, e
        assert all(x.line > 0 for x in e.errors)


def test_parentheses_alone_do_not_nest() -> None:
    compile_schema(schema_with("(" * 50_000 + "aaa + bbb" + ")" * 50_000))


def test_deep_caveat_parameter_types_are_a_limit_error() -> None:
    text = "caveat cav(x " + "list<" * 40 + "int" + ">" * 40 + ") {\n  x == x\n}\n"
    with pytest.raises(SchemaLimitError) as info:
        compile_schema(text)
    assert (info.value.line, info.value.column) == (1, 14 + 5 * 33)
    assert "type of parameter `x` of caveat `cav` nested too deeply" in info.value.message


def test_caveat_errors_without_a_position_point_at_the_expression() -> None:
    """cel-cpp reports a few errors at position -1 (printed 4294967295): the caveat's expression, then."""
    with pytest.raises(DslError) as info:
        compile_schema("caveat cav(x int) {\n  " + " + ".join(["x"] * 60) + " == 1\n}\n")
    assert (info.value.line, info.value.column) == (2, 3)


# ---------------------------------------------------------------- size and counts


def test_schema_bytes_limit_points_at_the_first_character_past_it() -> None:
    text = "definition user {}\n// é\ndefinition doc {}\n"
    limit = len("definition user {}\n// é".encode())  # é is two bytes
    compile_schema(text, limits=SchemaLimits(max_schema_bytes=len(text.encode())))
    with pytest.raises(SchemaLimitError) as info:
        parse_schema(text, limits=SchemaLimits(max_schema_bytes=limit))
    e = info.value
    assert (e.line, e.column) == (2, 5)  # just after the é
    assert f"schema too large: {len(text.encode())} bytes, more than the limit of {limit} bytes (max_schema_bytes)" \
        in e.message


def test_a_huge_input_is_refused_before_it_is_parsed() -> None:
    text = "definition doc {}\n" * 600_000  # 10.8 MB
    with pytest.raises(SchemaLimitError) as info:
        compile_schema(text)
    assert (info.value.line, info.value.column) == (29_128, 3)  # byte 524,288


def test_definition_limit_counts_definitions_caveats_and_classifications() -> None:
    text = ("definition user {}\ncaveat cav(x int) {\n  x == 1\n}\nclassification lvl {\n  levels low < high\n  cleared: user\n}\n"
            "definition doc {}\n")
    compile_schema(text, limits=SchemaLimits(max_schema_definitions=4))
    with pytest.raises(SchemaLimitError) as info:
        compile_schema(text, limits=SchemaLimits(max_schema_definitions=3))
    assert (info.value.line, info.value.column) == (9, 12)  # the 4th: `doc`
    assert "too many definitions: more than the limit of 3 (max_schema_definitions)" in info.value.message


def test_member_limit_points_at_the_first_member_past_it_in_each_definition() -> None:
    body = "".join(f"    relation rel{i}: user\n" for i in range(5))
    text = f"definition user {{}}\ndefinition doc {{\n{body}}}\ndefinition folder {{\n{body}}}\n"
    compile_schema(text, limits=SchemaLimits(max_definition_members=5))
    with pytest.raises(SchemaLimitError) as info:
        lint_schema(text, limits=SchemaLimits(max_definition_members=3))
    assert [(e.line, e.column) for e in info.value.errors] == [(6, 14), (13, 14)]  # rel3 of each
    assert "too many members in definition `doc`: 5 relations and permissions, more than the limit of 3" \
        in info.value.message


def test_limits_apply_to_a_tree_built_by_hand() -> None:
    expr: ast.Expr = ast.RelationRef("aaa")
    for _ in range(5_000):  # deeper than Python's stack would allow a recursive pass
        expr = ast.Exclusion(expr, ast.RelationRef("bbb"))
    doc = ast.Document((ast.Definition("doc", (ast.Relation("aaa", (ast.AllowedType("doc"),)),
                                              ast.Relation("bbb", (ast.AllowedType("doc"),)),
                                              ast.Permission("ppp", expr))),))
    with pytest.raises(SchemaLimitError):
        compile_schema(doc)


def test_limits_are_checked_and_unlimited_is_for_stored_schemas() -> None:
    for bad in (dict(max_schema_bytes=0), dict(max_definition_members=-1), dict(max_schema_definitions=True),
                dict(max_expression_nesting=MAX_EXPRESSION_NESTING_CEILING + 1)):
        with pytest.raises(ValueError):
            SchemaLimits(**bad)  # type: ignore[arg-type]
    unlimited = SchemaLimits.unlimited()
    assert unlimited.max_expression_nesting == MAX_EXPRESSION_NESTING_CEILING
    assert unlimited.max_schema_bytes > 2**40


def test_at_the_nesting_ceiling_every_step_works() -> None:
    text = schema_with(alternating(MAX_EXPRESSION_NESTING_CEILING))
    schema = compile_schema(text, limits=SchemaLimits.unlimited())
    assert "ppp" in schema.definitions["doc"].permissions
    canonical = format_schema(parse_schema(text, limits=SchemaLimits.unlimited()))
    assert parse_schema(canonical, limits=SchemaLimits.unlimited()) == parse_schema(text,
                                                                                    limits=SchemaLimits.unlimited())


# ---------------------------------------------------------------- caveat names: one rule


@pytest.mark.parametrize("name", ["ab", "a", "AB", "_x", "1ab", "ab_", "abc/def", "a" * 128])
def test_caveat_names_spicedb_accepts_compile(name: str) -> None:
    compile_schema(f"caveat {name}(x int) {{\n  x == 1\n}}\n")


def test_a_caveat_name_no_relationship_could_use_is_refused_where_declared() -> None:
    with pytest.raises(DslError) as info:
        compile_schema("caveat " + "a" * 129 + "(x int) {\n  x == 1\n}\n")
    assert (info.value.line, info.value.column) == (1, 8)
    assert "caveat names are 1 to 128 characters" in info.value.message
