"""SpiceDB's schema reflection (authzed.api.v1 SchemaService and its ExperimentalService twins) on Headwater.

Through the official `authzed` client over a real server. The expected answers are
SpiceDB's for the same schemas (its reflection, DiffSchema, ComputablePermissions and
DependentRelations tests in internal/services/v1), plus Headwater's additions (lineage,
declassify and label relations, classifications) as docs/decisions/authzed-api.md describes.
"""

from __future__ import annotations

import asyncio
import doctest
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from authzed.api.v1 import (
    AsyncClient,
    Client,
    ComputablePermissionsRequest,
    Consistency,
    DependentRelationsRequest,
    DiffSchemaRequest,
    ReflectionSchemaFilter,
    ReflectSchemaRequest,
    WriteSchemaRequest,
    experimental_service_pb2,
    schema_service_pb2,
)
from google.protobuf import text_format
from grpcutil import insecure_bearer_token_credentials
from headwater.engine.service.authzed import reflection
from headwater.engine.service.server import HeadwaterServer

from .conftest import TOKENS
from .test_authzed_api import fails

FULL = Consistency(fully_consistent=True)
_S = schema_service_pb2


def client(server: HeadwaterServer, who: str = "reader") -> Client:
    return Client(server.address, insecure_bearer_token_credentials(TOKENS[who][0]))


@pytest.fixture(scope="module")
def server(make_server: Callable[..., HeadwaterServer]) -> HeadwaterServer:
    return make_server()


@pytest.fixture()
def v1(server: HeadwaterServer) -> Iterator[Client]:
    yield client(server)


@pytest.fixture()
def write(server: HeadwaterServer) -> Callable[[str], None]:
    admin = client(server, "admin")

    def write_schema(text: str) -> None:
        admin.WriteSchema(WriteSchemaRequest(schema=text))

    return write_schema


def text(msg: Any) -> str:
    """A message as compact text, to compare whole answers."""
    return text_format.MessageToString(msg, as_one_line=True)


def refs(found: Any) -> list[tuple[str, str, bool]]:
    return [(r.definition_name, r.relation_name, r.is_permission) for r in found]


def terminal(type_: str, caveat: str = "") -> _S.ReflectionTypeReference:
    return _S.ReflectionTypeReference(subject_definition_name=type_, is_terminal_subject=True,
                                      optional_caveat_name=caveat)


def subject_set(type_: str, relation: str) -> _S.ReflectionTypeReference:
    return _S.ReflectionTypeReference(subject_definition_name=type_, optional_relation_name=relation)


def wildcard(type_: str) -> _S.ReflectionTypeReference:
    return _S.ReflectionTypeReference(subject_definition_name=type_, is_public_wildcard=True)


def relation(parent: str, name: str, *types: _S.ReflectionTypeReference, comment: str = "") -> _S.ReflectionRelation:
    return _S.ReflectionRelation(name=name, comment=comment, parent_definition_name=parent, subject_types=types)


def permission(parent: str, name: str, comment: str = "") -> _S.ReflectionPermission:
    return _S.ReflectionPermission(name=name, comment=comment, parent_definition_name=parent)


# ------------------------------------------------------------------ ReflectSchema

FULL_SCHEMA = """
/** user represents a user */
definition user {}

/** group represents a group */
definition group {
    relation direct_member: user | group#member
    relation admin: user
    permission member = direct_member + admin
}

/** somecaveat is a caveat */
caveat somecaveat(second string, first int) {
    first == 1 && second == "two"
}

/** document is a protected document */
definition document {
    // editor is a relation
    relation editor: user | group#member
    relation viewer: user | user with somecaveat | group#member | user:*

    // read all the things
    permission read = viewer + editor
}
"""

DOCUMENT = _S.ReflectionDefinition(
    name="document", comment="/** document is a protected document */",
    relations=[relation("document", "editor", terminal("user"), subject_set("group", "member"),
                        comment="// editor is a relation"),
               relation("document", "viewer", terminal("user"), terminal("user", "somecaveat"),
                        subject_set("group", "member"), wildcard("user"))],
    permissions=[permission("document", "read", "// read all the things")])
GROUP = _S.ReflectionDefinition(
    name="group", comment="/** group represents a group */",
    relations=[relation("group", "direct_member", terminal("user"), subject_set("group", "member")),
               relation("group", "admin", terminal("user"))],
    permissions=[permission("group", "member")])
USER = _S.ReflectionDefinition(name="user", comment="/** user represents a user */")
SOMECAVEAT = _S.ReflectionCaveat(
    name="somecaveat", comment="/** somecaveat is a caveat */", expression='first == 1 && second == "two"',
    parameters=[_S.ReflectionCaveatParameter(name="first", type="int", parent_caveat_name="somecaveat"),
                _S.ReflectionCaveatParameter(name="second", type="string", parent_caveat_name="somecaveat")])


def test_reflect_schema_answers_as_spicedb(v1: Client, write: Callable[[str], None]) -> None:
    write(FULL_SCHEMA)
    answer = v1.ReflectSchema(ReflectSchemaRequest(consistency=FULL))
    assert answer.read_at.token
    assert [text(d) for d in answer.definitions] == [text(DOCUMENT), text(GROUP), text(USER)]
    assert [text(c) for c in answer.caveats] == [text(SOMECAVEAT)]


def test_reflect_schema_simple_and_with_line_comment(v1: Client, write: Callable[[str], None]) -> None:
    write("definition user {}")
    answer = v1.ReflectSchema(ReflectSchemaRequest())
    assert [text(d) for d in answer.definitions] == [text(_S.ReflectionDefinition(name="user"))]
    assert list(answer.caveats) == []
    write("// this is a user\n// on two lines\ndefinition user {}")
    assert v1.ReflectSchema(ReflectSchemaRequest()).definitions[0].comment == "// this is a user\n// on two lines"


def reflect(v1: Client, *filters: ReflectionSchemaFilter) -> tuple[list[str], list[str]]:
    answer = v1.ReflectSchema(ReflectSchemaRequest(optional_filters=filters))
    return [text(d) for d in answer.definitions], [c.name for c in answer.caveats]


def test_reflect_schema_filters_by_prefix(v1: Client, write: Callable[[str], None]) -> None:
    write(FULL_SCHEMA)
    assert reflect(v1, ReflectionSchemaFilter(optional_definition_name_filter="doc")) == ([text(DOCUMENT)], [])
    # filters are alternatives
    assert reflect(v1, ReflectionSchemaFilter(optional_definition_name_filter="doc"),
                   ReflectionSchemaFilter(optional_definition_name_filter="us")) == ([text(DOCUMENT), text(USER)], [])
    assert reflect(v1, ReflectionSchemaFilter(optional_caveat_name_filter="some")) == ([], ["somecaveat"])
    assert reflect(v1, ReflectionSchemaFilter(optional_caveat_name_filter="other")) == ([], [])
    assert reflect(v1, ReflectionSchemaFilter(optional_definition_name_filter="doc"),
                   ReflectionSchemaFilter(optional_caveat_name_filter="s")) == ([text(DOCUMENT)], ["somecaveat"])
    only_viewer_and_read = _S.ReflectionDefinition()
    only_viewer_and_read.CopyFrom(DOCUMENT)
    del only_viewer_and_read.relations[0]
    assert reflect(v1, ReflectionSchemaFilter(optional_definition_name_filter="doc", optional_relation_name_filter="view"),
                   ReflectionSchemaFilter(optional_definition_name_filter="doc", optional_permission_name_filter="read")
                   ) == ([text(only_viewer_and_read)], [])
    # a relation filter keeps every permission, and the other way round
    definitions, _ = reflect(v1, ReflectionSchemaFilter(optional_definition_name_filter="gr",
                                                        optional_relation_name_filter="adm"))
    assert definitions == [text(_S.ReflectionDefinition(
        name="group", comment="/** group represents a group */", relations=[relation("group", "admin", terminal("user"))],
        permissions=[permission("group", "member")]))]


@pytest.mark.parametrize(("filter_", "message"), [
    (ReflectionSchemaFilter(optional_definition_name_filter="doc", optional_caveat_name_filter="invalid"),
     "cannot filter by both definition and caveat name"),
    (ReflectionSchemaFilter(optional_relation_name_filter="doc"), "relation name match requires definition name match"),
    (ReflectionSchemaFilter(optional_permission_name_filter="v"), "permission name match requires definition name match"),
    (ReflectionSchemaFilter(optional_definition_name_filter="doc", optional_relation_name_filter="v",
                            optional_permission_name_filter="r"), "cannot filter by both relation and permission name"),
])
def test_reflect_schema_refuses_invalid_filters(v1: Client, filter_: ReflectionSchemaFilter, message: str) -> None:
    error = fails(lambda: v1.ReflectSchema(ReflectSchemaRequest(optional_filters=[filter_])),
                  grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_INVALID_FILTER")
    assert error.details() == f"the relationship filter provided is not valid: {message}"


HEADWATER_SCHEMA = """use expiration

definition user {}

/** Sensitivity of data. */
classification sensitivity {
    levels public < internal < confidential
    cleared: user | user with expiration
}

definition dataset {
    relation owner: user
    relation steward: user
    // own labels
    relation label: sensitivity
    lineage derived_from: dataset
    declassify scrubbed: sensitivity by steward
    permission read = owner & cleared(sensitivity) & upstream(read)
}
"""


def test_reflect_schema_shows_headwater_additions_as_relations(v1: Client, write: Callable[[str], None]) -> None:
    write(HEADWATER_SCHEMA)
    answer = v1.ReflectSchema(ReflectSchemaRequest())
    assert [text(d) for d in answer.definitions] == [text(d) for d in [
        _S.ReflectionDefinition(name="dataset", relations=[
            relation("dataset", "owner", terminal("user")), relation("dataset", "steward", terminal("user")),
            relation("dataset", "label", terminal("sensitivity"), comment="// own labels"),
            relation("dataset", "derived_from", terminal("dataset")),
            relation("dataset", "scrubbed", terminal("sensitivity"))],
            permissions=[permission("dataset", "read")]),
        # a classification is the definition of its values, with its `cleared` relation (expiration is not shown)
        _S.ReflectionDefinition(name="sensitivity", comment="/** Sensitivity of data. */", relations=[
            relation("sensitivity", "cleared", terminal("user"), terminal("user"))]),
        _S.ReflectionDefinition(name="user")]]


def test_reflect_schema_before_any_schema_is_empty(make_server: Callable[..., HeadwaterServer]) -> None:
    empty = client(make_server())
    answer = empty.ReflectSchema(ReflectSchemaRequest(consistency=FULL))
    assert list(answer.definitions) == [] and list(answer.caveats) == [] and answer.read_at.token
    fails(lambda: empty.DependentRelations(DependentRelationsRequest(definition_name="user", permission_name="x")),
          grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_DEFINITION")
    assert [d.definition_added.name for d in empty.DiffSchema(DiffSchemaRequest(
        comparison_schema="definition user {}")).diffs] == ["user"]


def test_reflection_needs_the_check_scope(server: HeadwaterServer) -> None:
    schemer = client(server, "schemer")
    fails(lambda: schemer.ReflectSchema(ReflectSchemaRequest()), grpc.StatusCode.PERMISSION_DENIED)


# ------------------------------------------------------------------ DependentRelations

NESTED = """
definition user {}

definition group {
    relation direct_member: user | group#member
    relation admin: user
    permission member = direct_member + admin
}

definition document {
    relation unused: user
    relation viewer: user | group#member
    permission view = viewer
}
"""

ARROW = """
definition user {}

definition folder {
    relation alsounused: user
    relation viewer: user
    permission view = viewer
}

definition document {
    relation unused: user
    relation parent: folder
    relation viewer: user
    permission view = viewer + parent->view
    permission empty = nil
}
"""

SIMPLE = """
definition user {}

definition document {
    relation unused: user
    relation editor: user
    relation viewer: user
    permission view = viewer + editor
}
"""


@pytest.mark.parametrize(("schema", "name", "expected"), [
    (SIMPLE, "view", [("document", "editor", False), ("document", "viewer", False)]),
    (NESTED, "view", [("document", "viewer", False), ("group", "admin", False), ("group", "direct_member", False),
                      ("group", "member", True)]),
    (ARROW, "view", [("document", "parent", False), ("document", "viewer", False), ("folder", "view", True),
                     ("folder", "viewer", False)]),
    (ARROW, "empty", []),
])
def test_dependent_relations_answers_as_spicedb(v1: Client, write: Callable[[str], None], schema: str, name: str,
                                                expected: list[tuple[str, str, bool]]) -> None:
    write(schema)
    answer = v1.DependentRelations(DependentRelationsRequest(definition_name="document", permission_name=name,
                                                             consistency=FULL))
    assert refs(answer.relations) == expected
    assert answer.read_at.token


def test_dependent_relations_of_headwater_additions(v1: Client, write: Callable[[str], None]) -> None:
    write(HEADWATER_SCHEMA)
    answer = v1.DependentRelations(DependentRelationsRequest(definition_name="dataset", permission_name="read"))
    assert refs(answer.relations) == [
        ("dataset", "derived_from", False), ("dataset", "label", False), ("dataset", "owner", False),
        ("dataset", "scrubbed", False), ("sensitivity", "cleared", False)]


def test_dependent_relations_errors(v1: Client, write: Callable[[str], None]) -> None:
    write(SIMPLE)
    error = fails(lambda: v1.DependentRelations(DependentRelationsRequest(definition_name="invalid",
                                                                          permission_name="view")),
                  grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_DEFINITION")
    assert error.details() == "object definition `invalid` not found"
    error = fails(lambda: v1.DependentRelations(DependentRelationsRequest(definition_name="", permission_name="x")),
                  grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_DEFINITION")
    assert error.details() == "object definition `` not found"
    for name in ("invalid", ""):
        error = fails(lambda name=name: v1.DependentRelations(DependentRelationsRequest(definition_name="user",
                                                                              permission_name=name)),
                      grpc.StatusCode.FAILED_PRECONDITION, "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION")
        assert error.details() == f"relation/permission `{name}` not found under definition `user`"
    error = fails(lambda: v1.DependentRelations(DependentRelationsRequest(definition_name="document",
                                                                          permission_name="editor")),
                  grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION")
    assert error.details() == "the relation `editor` is not a permission"


# ------------------------------------------------------------------ ComputablePermissions

BASIC = """
definition user {}

definition folder {
    relation viewer: user
}

definition document {
    relation unused: user
    relation editor: user
    relation viewer: user
    permission view = viewer + editor
    permission only_view = viewer
    permission another = unused
    permission empty = nil
}
"""


def computable(v1: Client, definition: str, relation_: str = "", prefix: str = "") -> list[tuple[str, str, bool]]:
    answer = v1.ComputablePermissions(ComputablePermissionsRequest(
        definition_name=definition, relation_name=relation_, optional_definition_name_filter=prefix, consistency=FULL))
    assert answer.read_at.token
    return refs(answer.permissions)


def test_computable_permissions_answers_as_spicedb(v1: Client, write: Callable[[str], None]) -> None:
    write(BASIC)
    assert computable(v1, "user") == [
        ("document", "another", True), ("document", "editor", False), ("document", "only_view", True),
        ("document", "unused", False), ("document", "view", True), ("document", "viewer", False),
        ("folder", "viewer", False)]
    assert computable(v1, "user", prefix="folder") == [("folder", "viewer", False)]
    assert computable(v1, "user", prefix="nothing") == []
    assert computable(v1, "document", "viewer") == [("document", "only_view", True), ("document", "view", True)]
    assert computable(v1, "document", "unused") == [("document", "another", True)]
    assert computable(v1, "document", "another") == []


def test_computable_permissions_through_arrows_and_subject_relations(v1: Client, write: Callable[[str], None]) -> None:
    write(ARROW)
    # a folder's view reaches the documents' view through the arrow; a folder itself only their parent relation
    assert computable(v1, "folder", "view") == [("document", "view", True)]
    assert computable(v1, "folder", "viewer") == [("document", "view", True), ("folder", "view", True)]
    assert computable(v1, "folder") == [("document", "parent", False)]
    write(NESTED)
    assert computable(v1, "group", "member") == [
        ("document", "view", True), ("document", "viewer", False), ("group", "direct_member", False)]
    assert computable(v1, "user", prefix="group") == [
        ("group", "admin", False), ("group", "direct_member", False), ("group", "member", True)]


def test_computable_permissions_of_headwater_additions(v1: Client, write: Callable[[str], None]) -> None:
    write(HEADWATER_SCHEMA)
    # a clearance, a label or a lineage relationship can change `read`
    assert computable(v1, "user", prefix="sens") == [("sensitivity", "cleared", False)]
    assert ("dataset", "read", True) in computable(v1, "user")
    assert computable(v1, "sensitivity") == [("dataset", "label", False), ("dataset", "read", True),
                                             ("dataset", "scrubbed", False)]
    assert computable(v1, "dataset", "derived_from") == [("dataset", "read", True)]
    assert computable(v1, "dataset", "read") == []  # as in SpiceDB, a permission does not reach itself


def test_computable_permissions_errors(v1: Client, write: Callable[[str], None]) -> None:
    write(BASIC)
    error = fails(lambda: computable(v1, "invalid"), grpc.StatusCode.FAILED_PRECONDITION,
                  "ERROR_REASON_UNKNOWN_DEFINITION")
    assert error.details() == "object definition `invalid` not found"
    error = fails(lambda: computable(v1, "user", "invalid"), grpc.StatusCode.FAILED_PRECONDITION,
                  "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION")
    assert error.details() == "relation/permission `invalid` not found under definition `user`"


# ------------------------------------------------------------------ DiffSchema


def diff_of(v1: Client, write: Callable[[str], None], existing: str, comparison: str) -> list[str]:
    write(existing)
    answer = v1.DiffSchema(DiffSchemaRequest(comparison_schema=comparison, consistency=FULL))
    assert answer.read_at.token
    return [text(d) for d in answer.diffs]


def one(**field: Any) -> list[str]:
    return [text(_S.ReflectionSchemaDiff(**field))]


CAVEAT = "caveat someCaveat(someparam int) {\n    someparam < 42\n}"
RESOURCE = "definition user {}\n\ndefinition anon {}\n\ndefinition resource {\n    relation viewer: %s\n}"
PERMISSION = "definition user {}\n\ndefinition resource {\n    relation viewer: user\n%s}"


def caveat_message(expression: str = "someparam < 42", comment: str = "",
                   **params: str) -> _S.ReflectionCaveat:
    params = params or {"someparam": "int"}
    return _S.ReflectionCaveat(name="someCaveat", comment=comment, expression=expression, parameters=[
        _S.ReflectionCaveatParameter(name=n, type=t, parent_caveat_name="someCaveat") for n, t in sorted(params.items())])


def parameter(name: str, type_: str) -> _S.ReflectionCaveatParameter:
    return _S.ReflectionCaveatParameter(name=name, type=type_, parent_caveat_name="someCaveat")


VIEWER = relation("resource", "viewer", terminal("user"))

DIFF_CASES = [
    ("no diff", "definition user {}", "definition user {}", []),
    ("add definition", "definition user {}", "definition user {}\ndefinition document {}",
     one(definition_added=_S.ReflectionDefinition(name="document"))),
    ("remove definition", "definition user {}\ndefinition document {}", "definition user {}",
     one(definition_removed=_S.ReflectionDefinition(name="document"))),
    ("definition comment", "definition user {}", "// user has a comment\ndefinition user {}",
     one(definition_doc_comment_changed=_S.ReflectionDefinition(name="user", comment="// user has a comment"))),
    ("add caveat", "definition user {}", "definition user {}\n" + CAVEAT, one(caveat_added=caveat_message())),
    ("remove caveat", "definition user {}\n" + CAVEAT, "definition user {}", one(caveat_removed=caveat_message())),
    ("caveat comment", "// someCaveat has a comment\n" + CAVEAT, "// someCaveat has b comment\n" + CAVEAT,
     one(caveat_doc_comment_changed=caveat_message(comment="// someCaveat has b comment"))),
    ("add relation", "definition user {}", "definition user {\n    relation somerel: user\n}",
     one(relation_added=relation("user", "somerel", terminal("user")))),
    ("remove relation", "definition user {\n    relation somerel: user\n}", "definition user {}",
     one(relation_removed=relation("user", "somerel", terminal("user")))),
    ("subject type added", RESOURCE % "anon", RESOURCE % "user | anon",
     one(relation_subject_type_added=_S.ReflectionRelationSubjectTypeChange(
         relation=relation("resource", "viewer", terminal("user"), terminal("anon")),
         changed_subject_type=terminal("user")))),
    ("subject type removed", RESOURCE % "anon | user", RESOURCE % "user",
     one(relation_subject_type_removed=_S.ReflectionRelationSubjectTypeChange(
         relation=relation("resource", "viewer", terminal("user")), changed_subject_type=terminal("anon")))),
    ("relation comment", PERMISSION % "", PERMISSION.replace("    relation", "    // viewer has a comment\n    relation") % "",
     one(relation_doc_comment_changed=relation("resource", "viewer", terminal("user"),
                                               comment="// viewer has a comment"))),
    ("add permission", PERMISSION % "", PERMISSION % "    permission foo = nil\n",
     one(permission_added=permission("resource", "foo"))),
    ("remove permission", PERMISSION % "    permission foo = nil\n", PERMISSION % "",
     one(permission_removed=permission("resource", "foo"))),
    ("permission comment", PERMISSION % "    // foo has a comment\n    permission foo = nil\n",
     PERMISSION % "    // foo has a new comment\n    permission foo = nil\n",
     one(permission_doc_comment_changed=permission("resource", "foo", "// foo has a new comment"))),
    ("permission expression", PERMISSION % "    permission foo = nil\n", PERMISSION % "    permission foo = viewer\n",
     one(permission_expr_changed=permission("resource", "foo"))),
    # Headwater refuses an unused caveat parameter, so adding or removing one changes the expression too
    ("caveat parameter added", CAVEAT, CAVEAT.replace("someparam int", "someparam int, someparam2 string").replace(
        "< 42", "< 42 && someparam2 != ''"),
     one(caveat_parameter_added=parameter("someparam2", "string")) + one(caveat_expr_changed=caveat_message(
         expression="someparam < 42 && someparam2 != ''", someparam="int", someparam2="string"))),
    ("caveat parameter removed", CAVEAT.replace("someparam int", "someparam int, someparam2 string").replace(
        "< 42", "< 42 && someparam2 != ''"), CAVEAT,
     one(caveat_parameter_removed=parameter("someparam2", "string")) + one(caveat_expr_changed=caveat_message())),
    ("caveat parameter type", CAVEAT, CAVEAT.replace("someparam int", "someparam uint"),
     one(caveat_parameter_type_changed=_S.ReflectionCaveatParameterTypeChange(
         parameter=parameter("someparam", "uint"), previous_type="int"))),
    ("caveat expression", CAVEAT, CAVEAT.replace("42", "43"),
     one(caveat_expr_changed=caveat_message(expression="someparam < 43"))),
]


@pytest.mark.parametrize(("existing", "comparison", "expected"), [c[1:] for c in DIFF_CASES],
                         ids=[c[0] for c in DIFF_CASES])
def test_diff_schema_answers_as_spicedb(v1: Client, write: Callable[[str], None], existing: str, comparison: str,
                                        expected: list[str]) -> None:
    assert diff_of(v1, write, existing, comparison) == expected


def test_diff_schema_covers_every_kind_of_diff() -> None:
    kinds = {field.name for field in _S.ReflectionSchemaDiff.DESCRIPTOR.oneofs_by_name["diff"].fields}
    seen = {text_format.Parse(d, _S.ReflectionSchemaDiff()).WhichOneof("diff") for case in DIFF_CASES for d in case[3]}
    assert seen == kinds


def test_diff_schema_orders_the_changes(v1: Client, write: Callable[[str], None]) -> None:
    write("definition user {}\ndefinition zebra {}\ndefinition doc {\n    relation bbb: user\n"
          "    relation aaa: user\n    permission ppp = aaa\n}\n" + CAVEAT)
    comparison = ("definition user {}\ndefinition apple {}\ndefinition ant {}\n// doc\ndefinition doc {\n"
                  "    relation ccc: user | doc#aaa\n    relation aaa: user | user:*\n    permission ppp = aaa + ccc\n"
                  "    permission qqq = nil\n}\ncaveat other(xxx int) {\n    xxx > 1\n}")
    answer = v1.DiffSchema(DiffSchemaRequest(comparison_schema=comparison)).diffs
    assert [d.WhichOneof("diff") for d in answer] == [
        "definition_added", "definition_added", "definition_removed", "caveat_added", "caveat_removed",
        "definition_doc_comment_changed", "relation_removed", "relation_added", "permission_added",
        "permission_expr_changed", "relation_subject_type_added"]
    assert [answer[0].definition_added.name, answer[1].definition_added.name] == ["ant", "apple"]
    assert text(answer[10].relation_subject_type_added.changed_subject_type) == text(wildcard("user"))


def test_diff_schema_refuses_an_invalid_comparison_schema(v1: Client, write: Callable[[str], None]) -> None:
    write("definition user {}")
    fails(lambda: v1.DiffSchema(DiffSchemaRequest(comparison_schema="definition user { invalid")),
          grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_SCHEMA_PARSE_ERROR")
    fails(lambda: v1.DiffSchema(DiffSchemaRequest(comparison_schema="definition user {\n relation r: nobody\n}")),
          grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_SCHEMA_TYPE_ERROR")


def test_diff_schema_keeps_the_schema_limits(make_server: Callable[..., HeadwaterServer]) -> None:
    small = client(make_server(max_schema_definitions=2))
    comparison = "\n".join(f"definition type{i} {{}}" for i in range(3))
    error = fails(lambda: small.DiffSchema(DiffSchemaRequest(comparison_schema=comparison)),
                  grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_SCHEMA_TYPE_ERROR")
    assert "2" in error.details()


# ------------------------------------------------------------------ ExperimentalService twins, async, docs

_E = experimental_service_pb2


def test_experimental_twins_answer_as_the_schema_service(v1: Client, write: Callable[[str], None]) -> None:
    write(FULL_SCHEMA)
    pairs = [
        (v1.ExperimentalReflectSchema(_E.ExperimentalReflectSchemaRequest(optional_filters=[
            _E.ExpSchemaFilter(optional_definition_name_filter="gr")])),
         v1.ReflectSchema(ReflectSchemaRequest(optional_filters=[
             ReflectionSchemaFilter(optional_definition_name_filter="gr")]))),
        (v1.ExperimentalDiffSchema(_E.ExperimentalDiffSchemaRequest(comparison_schema="definition user {}")),
         v1.DiffSchema(DiffSchemaRequest(comparison_schema="definition user {}"))),
        (v1.ExperimentalComputablePermissions(_E.ExperimentalComputablePermissionsRequest(definition_name="user")),
         v1.ComputablePermissions(ComputablePermissionsRequest(definition_name="user"))),
        (v1.ExperimentalDependentRelations(_E.ExperimentalDependentRelationsRequest(
            definition_name="document", permission_name="read")),
         v1.DependentRelations(DependentRelationsRequest(definition_name="document", permission_name="read"))),
    ]
    for experimental, stable in pairs:
        assert experimental.SerializeToString() == stable.SerializeToString()
        assert len(experimental.ListFields()) >= 2
    fails(lambda: v1.ExperimentalDependentRelations(_E.ExperimentalDependentRelationsRequest(
        definition_name="nothing", permission_name="read")), grpc.StatusCode.FAILED_PRECONDITION,
        "ERROR_REASON_UNKNOWN_DEFINITION")


def test_reflection_through_the_async_client(server: HeadwaterServer, write: Callable[[str], None]) -> None:
    write(ARROW)

    async def session() -> tuple[list[str], list[tuple[str, str, bool]], grpc.StatusCode]:
        c = AsyncClient(server.address, insecure_bearer_token_credentials(TOKENS["reader"][0]))
        reflected = await c.ReflectSchema(ReflectSchemaRequest(consistency=FULL))
        dependent = await c.DependentRelations(DependentRelationsRequest(definition_name="document",
                                                                         permission_name="view"))
        try:
            await c.ComputablePermissions(ComputablePermissionsRequest(definition_name="nothing"))
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
        return [d.name for d in reflected.definitions], refs(dependent.relations), code

    names, dependent, code = asyncio.run(session())
    assert names == ["document", "folder", "user"]
    assert dependent[0] == ("document", "parent", False)
    assert code == grpc.StatusCode.FAILED_PRECONDITION


def test_module_docstring_examples_run() -> None:
    result = doctest.testmod(reflection, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
