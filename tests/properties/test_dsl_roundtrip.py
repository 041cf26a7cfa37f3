"""parse(format(s)) == s: formatting never changes what a schema says (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from headwater.dsl import compile_schema, format_schema, parse_schema

from .schema_strategies import documents

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(documents())
def test_format_then_parse_gives_the_same_tree(doc) -> None:
    text = format_schema(doc)
    assert parse_schema(text) == doc
    assert format_schema(parse_schema(text)) == text  # canonical form is a fixed point


@SETTINGS
@given(documents(with_comments=False))
def test_format_then_compile_gives_the_same_model(doc) -> None:
    model = compile_schema(doc)
    text = format_schema(doc)
    again = compile_schema(text)
    assert again == model
    assert again.digest == compile_schema(format_schema(parse_schema(text))).digest
