"""SpiceDB's schema warnings (`pkg/development/warningdefs.go`), as `lint_schema` and `headwater lint` report them.

Each warning has a schema that triggers it (message and line:column asserted) and a near-identical one that
must not. The cases of SpiceDB's `warnings_test.go` are ported with the same positions (SpiceDB's schemas are
indented with tabs, which count one column each, as in SpiceDB). SpiceDB's mixed-operator check scans the source
text; `_spicedb_mixed_operators` below does the same, and a seeded random test holds our check (which reads
the syntax tree) equal to it.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from headwater.dsl import DslError, ast, format_schema, lint_schema, parse_schema
from headwater.engine.cli import main


def lint(text: str) -> list[str]:
    """Every warning of ``text`` as `headwater lint` prints it (without the file name)."""
    return [str(w) for w in lint_schema(text)[1]]


SELF = 'Permission "view" references itself: the reference can never grant, and a check that meets it under an ' \
       'exclusion fails (SpiceDB raises an error due to infinite recursion) (permission-references-itself)'

SUBJECT_SET = """definition group {
                relation direct_member: user
                permission member = direct_member
            }

            definition user {}

            definition document {
                relation parent_group: group#member
                permission view = {arrow}
            }
"""

# (name, schema, the warnings expected): SpiceDB's TestWarnings, case by case. SpiceDB's two cases that lint
# `permission view = view` with the warning turned off use `viewer + view` here: Headwater refuses a bare
# self-alias, as SpiceDB's WriteSchema does (test_a_bare_self_alias_is_an_error_not_a_warning).
SPICEDB_CASES = [
    ("no warnings", """definition user {}

            definition group {
                relation direct_member: user
                permission member = direct_member
            }

            definition document {
                relation viewer: user | group#member
                permission view = viewer
            }
""", []),
    ("permission referencing itself, nested", """definition test {
                relation viewer: test
                relation editor: test
                permission view = viewer + (editor & view)
            }""", [f"4:42: warning: {SELF}"]),
    ("arrow referencing relation", """definition group {
                relation member: user
            }

            definition user {}

            definition document {
                relation group: group
                permission view = group->member
            }
""", [('9:23: warning: Arrow `group->member` under permission "view" references relation "member" on definition '
       '"group"; it is recommended to point to a permission (arrow-references-relation)')]),
    ("arrow referencing unknown relation", """definition group {
            }

            definition user {}

            definition document {
                relation group: group
                permission view = group->member
            }
""", [('8:23: warning: Arrow `group->member` under permission "view" references relation/permission "member" '
       'that does not exist on any subject types of relation "group" (arrow-references-unreachable-relation)')]),
    ("arrow referencing subject relation", SUBJECT_SET.replace("{arrow}", "parent_group->member"), [('10:23: warning: Arrow `parent_group->member` under permission "view" references relation "parent_group" '
       'that has relation "member" on subject "group": *the subject relation will be ignored for the arrow* '
       '(arrow-walks-subject-relation)')]),
    ("all arrow referencing subject relation", SUBJECT_SET.replace("{arrow}", "parent_group.all(member)"), [('10:23: warning: Arrow `parent_group.all(member)` under permission "view" references relation '
       '"parent_group" that has relation "member" on subject "group": *the subject relation will be ignored for '
       'the arrow* (arrow-walks-subject-relation)')]),
    ("relation referencing its parent definition in its name", """definition user {}

            definition document {
                relation viewer: user
                permission view_document = viewer
            }""", [('5:5: warning: Permission "view_document" references parent type "document" in its name; it is '
                    'recommended to drop the suffix (relation-name-references-parent)')]),
    ("relation referencing its parent definition in its name but warning disabled", """definition user {}

            definition document {
                relation viewer: user

                // spicedb-ignore-warning: relation-name-references-parent
                permission view_document = viewer
            }""", []),
    ("permission referencing itself but warning disabled", """definition test {
                relation viewer: test
                // spicedb-ignore-warning: permission-references-itself
                permission view = viewer + view
            }""", []),
    ("arrow referencing relation but warning disabled", """definition group {
                relation member: user
            }

            definition user {}

            definition document {
                relation group: group

                // spicedb-ignore-warning: arrow-references-relation
                permission view = group->member
            }
""", []),
    ("permission referencing itself with wrong warning disabled", """definition test {
                relation viewer: test
                // spicedb-ignore-warning: arrow-references-relation
                permission view = viewer + view
            }""", [f"4:32: warning: {SELF}"]),
    ("arrow referencing relation in the same namespace", """definition user {}

            definition document {
                relation parent: document
                relation viewer: user
                permission view = parent->viewer
            }
""", []),
    ("schema with multiline comments points warning to right place", """definition user {}

definition organization {}

definition platform {}

definition resource {
\t/** platform is the platform to which the resource belongs */
\trelation platform: platform

\t/**
\t * organization is the organization to which the resource belongs
\t */
\trelation organization: organization

\t/** admin is a user that can administer the resource */
\trelation admin: user

\t/** viewer is a read-only viewer of the resource */
\trelation viewer: user

\t/** can_admin allows a user to administer the resource */
\tpermission can_admin = admin

\t/** delete_resource allows a user to delete the resource. */
\tpermission delete_resource = can_admin
}
""", [('26:2: warning: Permission "delete_resource" references parent type "resource" in its name; it is '
       'recommended to drop the suffix (relation-name-references-parent)')]),
]


def _tabs(text: str) -> str:
    """SpiceDB's schemas are Go raw strings indented with tabs; here each four leading spaces stand for a tab."""
    lines = []
    for line in text.splitlines():
        body = line.lstrip(" ")
        lines.append("\t" * ((len(line) - len(body)) // 4) + body)
    return "\n".join(lines)


@pytest.mark.parametrize("name, text, expected", SPICEDB_CASES, ids=[c[0] for c in SPICEDB_CASES])
def test_spicedb_cases(name: str, text: str, expected: list[str]) -> None:
    assert lint(_tabs(text)) == expected


def test_a_bare_self_alias_is_an_error_not_a_warning() -> None:
    # SpiceDB's warnings test lints `permission view = view`; SpiceDB's WriteSchema refuses it (a cycle of
    # aliases), and so does Headwater.
    with pytest.raises(DslError, match="aliases of each other in a cycle: view -> view"):
        lint_schema("definition test {\n    permission view = view\n}")


# ---------------------------------------------------------------- each warning, triggered and not

PARENT = "definition user {}\ndefinition document {\n    relation {name}: user\n}"


@pytest.mark.parametrize("name, warned", [("viewer_document", True), ("document", True), ("document_viewer", False),
                                          ("viewer", False), ("documents", False)])
def test_relation_name_references_parent(name: str, warned: bool) -> None:
    expected = [(f'3:5: warning: Relation "{name}" references parent type "document" in its name; it is '
                 'recommended to drop the suffix (relation-name-references-parent)')] if warned else []
    assert lint(PARENT.replace("{name}", name)) == expected


def test_a_prefixed_definition_name_is_compared_whole() -> None:
    # SpiceDB compares with the definition's full name, `org/document`, which no relation name can end with.
    assert lint("definition user {}\ndefinition org/document {\n    relation view_document: user\n}") == []


SELF_SCHEMA = "definition user {}\ndefinition doc {\n    relation viewer: user\n    relation editor: user\n" \
              "    permission view = {expr}\n}"


@pytest.mark.parametrize("expr, column", [("viewer + (editor & view)", 42), ("view + viewer", 23),
                                          ("viewer - view", 32), ("viewer + (editor & viewer)", None),
                                          ("viewer + editor", None)])
def test_permission_references_itself(expr: str, column: int | None) -> None:
    expected = [f"5:{column}: warning: {SELF}"] if column else []
    assert lint(SELF_SCHEMA.replace("{expr}", expr)) == expected


def test_self_reference_is_not_also_reported_as_a_cycle() -> None:
    text = SELF_SCHEMA.replace("{expr}", "viewer + other\n    permission other = view + editor")
    out = lint(text)
    assert [w.rsplit("(", 1)[1] for w in out] == ["permission-depends-on-itself)", "permission-depends-on-itself)"]
    assert lint(SELF_SCHEMA.replace("{expr}", "viewer + view")) == [f"5:32: warning: {SELF}"]


def test_self_reference_is_reported_where_it_is_written_each_time() -> None:
    out = lint(SELF_SCHEMA.replace("{expr}", "view + (viewer & view)"))
    assert [w.split(":", 2)[:2] for w in out] == [["5", "23"], ["5", "40"]]


ARROW_SCHEMA = """definition user {}
definition group {
    relation member: user
    permission membership = member
}
definition document {
    relation owner: {allowed}
    permission view = {expr}
}"""


def _arrow(allowed: str, expr: str) -> list[str]:
    return lint(ARROW_SCHEMA.replace("{allowed}", allowed).replace("{expr}", expr))


def test_arrow_references_relation() -> None:
    assert _arrow("group", "owner->member") == [
        ('8:23: warning: Arrow `owner->member` under permission "view" references relation "member" on definition '
        '"group"; it is recommended to point to a permission (arrow-references-relation)')]
    assert _arrow("group", "owner->membership") == []
    assert _arrow("group", "owner.any(member)")[0].startswith("8:23: warning: Arrow `owner.any(member)` under")


def test_arrow_references_relation_reports_the_first_subject_type_that_has_one() -> None:
    out = _arrow("user | group | document", "owner->member")
    assert len(out) == 1 and 'on definition "group"' in out[0]


def test_arrow_references_unreachable_relation() -> None:
    assert _arrow("group | user", "owner->nothing") == [
        ('8:23: warning: Arrow `owner->nothing` under permission "view" references relation/permission "nothing" '
        'that does not exist on any subject types of relation "owner" (arrow-references-unreachable-relation)')]
    # one subject type that has it is enough (SpiceDB's arrows are dynamic: issue 1359)
    assert _arrow("group | user", "owner->membership") == []


def test_arrow_walks_subject_relation() -> None:
    expected = ('8:23: warning: Arrow `owner->membership` under permission "view" references relation "owner" that '
                'has relation "member" on subject "group": *the subject relation will be ignored for the arrow* '
                '(arrow-walks-subject-relation)')
    assert _arrow("user | group#member", "owner->membership") == [expected]
    assert _arrow("user | group", "owner->membership") == []
    assert _arrow("user | group#...", "owner->membership") == []  # `#...` is the object itself


def test_one_arrow_can_have_several_warnings_in_spicedbs_order() -> None:
    out = _arrow("group#member", "viewer_of + owner->member\n    relation viewer_of: user")
    assert [w.split(":", 2)[:2] for w in out] == [["8", "35"], ["8", "35"]]
    assert [w.rsplit("(", 1)[1] for w in out] == ["arrow-references-relation)", "arrow-walks-subject-relation)"]


def test_arrows_nested_in_any_operator_are_checked() -> None:
    out = _arrow("group", "nil - (owner->membership & owner->member)")
    assert len(out) == 1 and out[0].startswith("8:50: warning: Arrow `owner->member`")


MIXED = """definition user {}
definition folder {
    relation viewer: user
    permission view = viewer
}
definition doc {
    relation foo: user
    relation bar: user
    relation baz: user
    relation qux: user
    relation editor: user
    relation blocked: user
    relation parent: folder
    permission test_perm = {expr}
}"""

# SpiceDB's TestCheckExpressionForMixedOperators: (expression, what the message says, or None for no warning).
MIXED_CASES = [
    ("foo + bar", None), ("foo & bar", None), ("foo - bar", None), ("foo + bar + baz", None),
    ("foo & bar & baz", None), ("foo - bar - baz", None),
    ("foo + bar - baz", "union (+) and exclusion (-)"),
    ("foo - bar & baz", "exclusion (-) and intersection (&)"),
    ("foo + bar & baz", "union (+) and intersection (&)"),
    ("foo + bar - baz & qux", "union (+) and exclusion (-) and intersection (&)"),
    ("(foo + bar) - baz", None), ("foo - (bar & baz)", None), ("(foo + bar) - (baz & qux)", None),
    ("parent->view + editor", None),
    ("parent->view + editor - blocked", "union (+) and exclusion (-)"),
    ("parent.all(view) + editor", None), ("foo", None), ("(foo + bar) + (baz + qux)", None),
    ("((foo + bar) - baz) & qux", None),
    ("(foo + bar - baz)", "union (+) and exclusion (-)"),
    ("qux & (foo + bar - baz)", "union (+) and exclusion (-)"),
]


@pytest.mark.parametrize("expr, mixed", MIXED_CASES, ids=[c[0] for c in MIXED_CASES])
def test_mixed_operators_without_parentheses(expr: str, mixed: str | None) -> None:
    expected = [(f'14:5: warning: Permission "test_perm" mixes {mixed} at the same level of nesting; consider '
                 "adding parentheses to clarify precedence (mixed-operators-without-parentheses)")] if mixed else []
    assert lint(MIXED.replace("{expr}", expr)) == expected


def test_mixed_operators_across_lines_and_comments() -> None:
    expr = "(foo +\n        bar) - /* a comment */ baz & // another\n        qux"
    assert "exclusion (-) and intersection (&)" in lint(MIXED.replace("{expr}", expr))[0]


def test_canonical_formatting_clears_the_mixed_operators_warning() -> None:
    text = MIXED.replace("{expr}", "foo + bar - baz & qux")
    assert lint(text) and lint(format_schema(parse_schema(text))) == []


def test_a_tree_built_by_hand_is_not_checked_for_parentheses() -> None:
    doc = parse_schema(MIXED.replace("{expr}", "foo"))
    d = doc.items[2]
    assert isinstance(d, ast.Definition)
    expr = ast.Exclusion(ast.Union(ast.RelationRef("foo"), ast.RelationRef("bar")), ast.RelationRef("baz"))
    members = d.members[:-1] + (ast.Permission("test_perm", expr),)
    hand = ast.Document(doc.items[:2] + (ast.Definition("doc", members),))
    assert lint_schema(hand)[1] == []


def _spicedb_mixed_operators(expression: str) -> str | None:
    """SpiceDB's source scan: the operators of each parenthesized scope, the first scope closed reported first."""
    scopes: list[set[str]] = [set()]
    closed: list[set[str]] = []
    i = 0
    while i < len(expression):
        ch = expression[i]
        if ch == "(":
            scopes.append(set())
        elif ch == ")" and len(scopes) > 1:
            closed.append(scopes.pop())
        elif ch == "-" and expression[i + 1:i + 2] == ">":
            i += 1
        elif ch in "+-&":
            scopes[-1].add(ch)
        i += 1
    for ops in closed + scopes:
        if len(ops) > 1:
            names = {"+": "union (+)", "-": "exclusion (-)", "&": "intersection (&)"}
            return " and ".join(names[op] for op in "+-&" if op in ops)
    return None


def _random_expression(rng: random.Random, depth: int = 0) -> str:
    if depth > 3 or rng.random() < 0.3:
        return rng.choice(["foo", "bar", "baz", "qux", "parent->view", "parent.any(view)", "nil"])
    text = f"{_random_expression(rng, depth + 1)} {rng.choice('+-&')} {_random_expression(rng, depth + 1)}"
    return f"({text})" if rng.random() < 0.4 else text


def test_the_syntax_tree_check_agrees_with_spicedbs_source_scan() -> None:
    rng = random.Random(2786)  # SpiceDB's pull request that added the warning
    for _ in range(300):
        expr = _random_expression(rng)
        mixed = _spicedb_mixed_operators(expr)
        found = [w for w in lint(MIXED.replace("{expr}", expr)) if w.endswith("(mixed-operators-without-parentheses)")]
        assert found == ([(f'14:5: warning: Permission "test_perm" mixes {mixed} at the same level of nesting; '
                           "consider adding parentheses to clarify precedence (mixed-operators-without-parentheses)")]
                         if mixed else []), expr


# ---------------------------------------------------------------- turning warnings off


@pytest.mark.parametrize("name, text", [
    ("relation-name-references-parent", PARENT.replace("{name}", "viewer_document")),
    ("permission-references-itself", SELF_SCHEMA.replace("{expr}", "viewer + view")),
    ("arrow-references-relation", ARROW_SCHEMA.replace("{allowed}", "group").replace("{expr}", "owner->member")),
    ("arrow-references-unreachable-relation",
     ARROW_SCHEMA.replace("{allowed}", "group").replace("{expr}", "owner->nothing")),
    ("arrow-walks-subject-relation",
     ARROW_SCHEMA.replace("{allowed}", "group#member").replace("{expr}", "owner->membership")),
    ("mixed-operators-without-parentheses", MIXED.replace("{expr}", "foo + bar - baz")),
    ("permission-depends-on-itself",
     SELF_SCHEMA.replace("{expr}", "viewer + other").replace("\n}", "\n    permission other = view\n}")),
    ("annotation-references-unknown-definition", SELF_SCHEMA.replace("view = {expr}", "view: usr = viewer")),
])
def test_each_warning_can_be_turned_off_by_a_comment_above_its_member(name: str, text: str) -> None:
    out = lint(text)
    assert out and all(w.endswith(f"({name})") for w in out)
    lines = text.splitlines()
    line = int(out[-1].split(":")[0])  # the member that warns last
    start = next(i for i in range(line - 1, -1, -1) if lines[i].lstrip().startswith(("relation", "permission")))
    indent = lines[start][:len(lines[start]) - len(lines[start].lstrip())]
    for comment, silenced in ((f"// spicedb-ignore-warning: {name}", True),
                              ("// spicedb-ignore-warning: some-other-warning", False),
                              (f"/* spicedb-ignore-warning: {name} */", False),  # SpiceDB matches `//` comments
                              (f"//spicedb-ignore-warning: {name}", False)):
        edited = "\n".join(lines[:start] + [indent + comment] + lines[start:])
        assert len(lint(edited)) == len(out) - (1 if silenced else 0), comment


def test_an_ignore_comment_covers_only_the_member_below_it() -> None:
    text = ("definition user {}\ndefinition document {\n    relation owner_document: user "
            "// spicedb-ignore-warning: relation-name-references-parent\n"
            "    relation viewer_document: user\n}")
    assert [w.split(":", 2)[:2] for w in lint(text)] == [["3", "5"], ["4", "5"]]
    text = text.replace("    relation viewer", "    // spicedb-ignore-warning: relation-name-references-parent\n"
                                              "    relation viewer")
    assert [w.split(":", 2)[:2] for w in lint(text)] == [["3", "5"]]


# ---------------------------------------------------------------- the command line


def test_headwater_lint_prints_each_warning_with_its_place_and_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "w.zed"
    f.write_text(MIXED.replace("{expr}", "foo + bar - baz\n    permission view_doc = parent->viewer"))
    assert main(["lint", str(f)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f'{f}:14:5: warning: Permission "test_perm" mixes union (+) and exclusion (-) at the same '
                      "level of nesting; consider adding parentheses to clarify precedence "
                      "(mixed-operators-without-parentheses)")
    assert out[1] == (f'{f}:15:5: warning: Permission "view_doc" references parent type "doc" in its name; it is '
                      "recommended to drop the suffix (relation-name-references-parent)")
    assert out[2] == (f'{f}:15:27: warning: Arrow `parent->viewer` under permission "view_doc" references relation '
                      '"viewer" on definition "folder"; it is recommended to point to a permission '
                      "(arrow-references-relation)")
    assert out[3].startswith(f"{f}: ok (") and out[3].endswith(", 3 warnings)")
    assert main(["lint", "--strict", str(f)]) == 1
    capsys.readouterr()
    f.write_text(MIXED.replace("{expr}", "(foo + bar) - baz"))
    assert main(["lint", "--strict", str(f)]) == 0
    assert "warning" not in capsys.readouterr().out
