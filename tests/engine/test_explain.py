"""Explanations of grants and denials for every expression form."""

from __future__ import annotations

from headwater.engine import Engine
from headwater.engine.store.memory import MemoryStore

SCHEMA = """
caveat on_site(site string) {
    site == "hq"
}
definition user {}
definition group {
    relation member: user | group#member
}
definition doc {
    relation parent: doc
    relation viewer: user | group#member | user with on_site
    relation banned: user
    relation editor: user
    permission view = viewer - banned
    permission edit = editor & viewer
    permission inherited = viewer + parent->inherited
}
"""


def engine() -> Engine:
    e = Engine(MemoryStore())
    e.write_schema(SCHEMA)
    e.touch("doc:d#viewer@group:g#member", "group:g#member@user:ann", "doc:d#viewer@user:bob",
            "doc:d#banned@user:bob", "doc:d#editor@user:cat", 'doc:d#viewer@user:dan[on_site]',
            "doc:child#parent@doc:d")
    return e


def summary(e: Engine, resource: str, permission: str, subject: str) -> list[str]:
    result = e.check(resource, permission, subject, explain=True)
    assert result.explanation is not None
    assert f"{resource}#{permission} for {subject}" in result.explanation.tree.render()[0]
    return list(result.explanation.summary)


def test_grant_names_the_relationships() -> None:
    assert summary(engine(), "doc:d", "view", "user:ann") == [
        "granted: doc:d#view for user:ann", "  by doc:d#viewer@group:g#member", "  by group:g#member@user:ann"]


def test_grant_through_an_arrow() -> None:
    lines = summary(engine(), "doc:child", "inherited", "user:ann")
    assert lines[0] == "granted: doc:child#inherited for user:ann"
    assert "  by doc:child#parent@doc:d" in lines and "  by group:g#member@user:ann" in lines


def test_denial_by_exclusion_names_what_excluded() -> None:
    lines = summary(engine(), "doc:d", "view", "user:bob")
    assert lines == ["denied: doc:d#view for user:bob", "  - excluded by `doc:d#banned for user:bob`: "
                                                        "doc:d#banned@user:bob"]


def test_denial_by_intersection_names_the_failing_branch() -> None:
    lines = summary(engine(), "doc:d", "edit", "user:cat")
    assert lines == ["denied: doc:d#edit for user:cat", "  - nothing grants doc:d#viewer for user:cat"]


def test_conditional_names_the_missing_context() -> None:
    lines = summary(engine(), "doc:d", "view", "user:dan")
    assert lines[0] == "conditional: doc:d#view for user:dan: needs context: site"


def test_plain_denial() -> None:
    lines = summary(engine(), "doc:d", "view", "user:nobody")
    assert lines[0] == "denied: doc:d#view for user:nobody"
