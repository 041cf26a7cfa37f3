"""Expand: the tree for every expression form, caveats, expiration, wildcards, cycles, depth; and the
membership rules (SpiceDB's developmentmembership) that reduce a tree to its terminal subjects."""

from __future__ import annotations

from datetime import timedelta

import pytest

from headwater.engine import Config, Engine, MaxDepthExceededError, ObjectRef, SubjectRef, UnknownPermissionError
from headwater.engine.consistency import Consistency
from headwater.engine.expand import ExpandedSubject, ExpandNode, ExpandOperation, format_tree
from headwater.engine.membership import FoundSubject, found_subjects
from headwater.engine.relationships import parse_subject
from headwater.engine.store.memory import MemoryStore

UNION, INTERSECTION, EXCLUSION = ExpandOperation.UNION, ExpandOperation.INTERSECTION, ExpandOperation.EXCLUSION

SCHEMA = """
use expiration
use self

caveat min_level(level int, required int) {
    level >= required
}

definition user {
    relation friend: user
    permission me_or_friend = friend + self
}

definition group {
    relation member: user | group#member | user with min_level | user with expiration | group#member with min_level
}

definition folder {
    relation parent: folder | folder with min_level
    relation viewer: user | user:* | group#member
    relation banned: user | group#member
    permission view = viewer + parent->view
    permission visible = viewer - banned
}

definition document {
    relation folder: folder | folder with min_level
    relation owner: user
    relation reader: user | user:* | user with min_level
    relation approver: group | group with min_level
    permission read = reader + owner + folder->view
    permission both = owner & reader
    permission approve = approver.all(member)
    permission nothing = nil
    permission reader_or_nothing = reader + nil
    permission edit = owner
}
"""


@pytest.fixture
def engine(clock) -> Engine:
    e = Engine(MemoryStore(clock=clock), clock=clock)
    e.write_schema(SCHEMA)
    return e


def tree(engine: Engine, resource: str, permission: str, **kw) -> ExpandNode:
    node, _ = engine.expand(resource, permission, **kw)
    return node


def found(engine: Engine, resource: str, permission: str, **kw) -> dict[str, list[str]]:
    """Terminal subjects in validation-string form -> sorted relations."""
    node = tree(engine, resource, permission, **kw)
    return {f.validation_string(): sorted(f.relations) for f in found_subjects(node)}


def leaf_subjects(node: ExpandNode) -> list[str]:
    assert node.is_leaf
    return [str(x.subject) + ("[...]" if x.caveated else "") for x in node.subjects]


O = ObjectRef


# ---------------------------------------------------------------- the tree, form by form


def test_relation_is_a_leaf_of_direct_subjects(engine: Engine) -> None:
    engine.touch("document:d#reader@user:ann", "document:d#reader@user:*")
    node, token = engine.expand("document:d", "reader")
    assert node.resource == O("document", "d") and node.name == "reader" and node.operation is None
    assert leaf_subjects(node) == ["user:*", "user:ann"]
    assert all(x.relationship is not None and str(x.relationship).startswith("document:d#reader@")
               for x in node.subjects)
    assert token.startswith("hw")


def test_relation_with_subject_sets_is_a_union_of_the_leaf_and_each_set(engine: Engine) -> None:
    engine.touch("folder:f#viewer@user:ann", "folder:f#viewer@group:eng#member", "group:eng#member@user:bob",
                 "group:eng#member@group:ops#member", "group:ops#member@user:cid")
    node = tree(engine, "folder:f", "viewer")
    assert node.operation is UNION and (node.resource, node.name) == (O("folder", "f"), "viewer")
    leaf, eng = node.children
    assert leaf_subjects(leaf) == ["group:eng#member", "user:ann"]
    assert (eng.resource, eng.name, eng.operation) == (O("group", "eng"), "member", UNION)
    assert leaf_subjects(eng.children[0]) == ["group:ops#member", "user:bob"]
    assert leaf_subjects(eng.children[1]) == ["user:cid"]
    assert found(engine, "folder:f", "viewer") == {
        "group:eng#member": ["folder:f#viewer"], "group:ops#member": ["group:eng#member"],
        "user:ann": ["folder:f#viewer"], "user:bob": ["group:eng#member"], "user:cid": ["group:ops#member"]}


def test_computed_relation_is_wrapped_in_a_union_named_after_the_permission(engine: Engine) -> None:
    engine.touch("document:d#owner@user:ann")
    node = tree(engine, "document:d", "edit")
    assert (node.name, node.operation, len(node.children)) == ("edit", UNION, 1)
    assert node.children[0].name == "owner" and leaf_subjects(node.children[0]) == ["user:ann"]
    assert found(engine, "document:d", "edit") == {"user:ann": ["document:d#owner"]}


def test_union_arrow_and_relation_sets(engine: Engine) -> None:
    engine.touch("document:d#reader@user:ann", "document:d#owner@user:ann", "document:d#folder@folder:f",
                 "folder:f#viewer@user:bob", "folder:f#parent@folder:root", "folder:root#viewer@user:ann")
    node = tree(engine, "document:d", "read")
    assert node.operation is UNION and [c.name for c in node.children] == ["reader", "owner", "read"]
    arrow = node.children[2]
    assert arrow.operation is UNION and [(c.resource, c.name) for c in arrow.children] == [(O("folder", "f"), "view")]
    # ann is reached three ways; the relation set names the relationships' resource#relation
    assert found(engine, "document:d", "read") == {
        "user:ann": ["document:d#owner", "document:d#reader", "folder:root#viewer"],
        "user:bob": ["folder:f#viewer"]}


def test_intersection_keeps_subjects_in_every_branch(engine: Engine) -> None:
    engine.touch("document:d#owner@user:ann", "document:d#owner@user:bob", "document:d#reader@user:ann")
    node = tree(engine, "document:d", "both")
    assert node.operation is INTERSECTION and [c.name for c in node.children] == ["owner", "reader"]
    assert found(engine, "document:d", "both") == {"user:ann": ["document:d#owner", "document:d#reader"]}


def test_intersection_with_a_wildcard_keeps_the_concrete_subjects(engine: Engine) -> None:
    engine.touch("document:d#owner@user:ann", "document:d#reader@user:*")
    assert found(engine, "document:d", "both") == {"user:ann": ["document:d#owner"]}


def test_exclusion_removes_subjects_and_turns_a_wildcard_into_one_with_exclusions(engine: Engine) -> None:
    engine.touch("folder:f#viewer@user:*", "folder:f#viewer@user:ann", "folder:f#viewer@user:bob",
                 "folder:f#banned@user:bob", "folder:f#banned@user:zed")
    node = tree(engine, "folder:f", "visible")
    assert node.operation is EXCLUSION and [c.name for c in node.children] == ["viewer", "banned"]
    assert found(engine, "folder:f", "visible") == {"user:* - {user:bob, user:zed}": ["folder:f#viewer"],
                                                    "user:ann": ["folder:f#viewer"]}


def test_exclusion_of_a_wildcard_removes_everything(engine: Engine) -> None:
    engine.touch("document:d#owner@user:ann", "document:d#reader@user:*")
    engine.write_schema(SCHEMA.replace("permission edit = owner", "permission edit = owner - reader"))
    assert found(engine, "document:d", "edit") == {}


def test_arrow_over_a_subject_type_without_the_target_gives_an_empty_leaf(engine: Engine) -> None:
    schema = SCHEMA.replace("relation folder: folder | folder with min_level",
                            "relation folder: folder | folder with min_level | user")
    engine.write_schema(schema)
    engine.touch("document:d#folder@user:ann", "document:d#folder@folder:f", "folder:f#viewer@user:bob")
    arrow = tree(engine, "document:d", "read").children[2]
    assert arrow.operation is UNION and len(arrow.children) == 2
    empty = next(c for c in arrow.children if c.resource == O("document", "d"))
    assert empty.is_leaf and empty.subjects == () and empty.name == "read"
    assert found(engine, "document:d", "read") == {"user:bob": ["folder:f#viewer"]}


def test_all_arrow_is_an_intersection_over_the_subjects(engine: Engine) -> None:
    engine.touch("document:d#approver@group:a", "document:d#approver@group:b", "group:a#member@user:ann",
                 "group:a#member@user:bob", "group:b#member@user:ann")
    node = tree(engine, "document:d", "approve")
    assert node.operation is UNION
    every = node.children[0]
    assert every.operation is INTERSECTION and [c.resource for c in every.children] == [O("group", "a"),
                                                                                          O("group", "b")]
    assert found(engine, "document:d", "approve") == {"user:ann": ["group:a#member", "group:b#member"]}


def test_all_arrow_over_nothing_grants_nothing(engine: Engine) -> None:
    node = tree(engine, "document:d", "approve")
    assert node.children[0].operation is INTERSECTION and node.children[0].children == ()
    assert found_subjects(node) == []


def test_all_arrow_with_a_false_caveat_grants_nothing(engine: Engine) -> None:
    engine.touch("document:d#approver@group:a", 'document:d#approver@group:b[min_level:{"level":1,"required":2}]',
                 "group:a#member@user:ann", "group:b#member@user:ann")
    assert found(engine, "document:d", "approve") == {}
    assert engine.check("document:d", "approve", "user:ann").permissionship.name == "NO_PERMISSION"


def test_nil_is_an_empty_leaf(engine: Engine) -> None:
    node = tree(engine, "document:d", "nothing")
    assert node.operation is UNION and node.children == (ExpandNode(O("document", "d"), "nothing"),)
    engine.touch("document:d#reader@user:ann")
    assert found(engine, "document:d", "reader_or_nothing") == {"user:ann": ["document:d#reader"]}


def test_self_yields_the_resource_itself(engine: Engine) -> None:
    engine.touch("user:bob#friend@user:alice")
    node = tree(engine, "user:bob", "me_or_friend")
    self_leaf = node.children[1]
    assert self_leaf.subjects == (ExpandedSubject(SubjectRef("user", "bob"), None),)
    assert found(engine, "user:bob", "me_or_friend") == {"user:alice": ["user:bob#friend"],
                                                         "user:bob": ["user:bob#me_or_friend"]}


# ---------------------------------------------------------------- caveats, expiration


def test_caveats_false_is_dropped_undecided_is_marked(engine: Engine) -> None:
    engine.touch('document:d#reader@user:low[min_level:{"level":1,"required":2}]',
                 'document:d#reader@user:high[min_level:{"level":3,"required":2}]',
                 'document:d#reader@user:ask[min_level:{"required":2}]')
    assert leaf_subjects(tree(engine, "document:d", "reader")) == ["user:ask[...]", "user:high"]
    assert found(engine, "document:d", "read") == {"user:ask[...]": ["document:d#reader"],
                                                   "user:high": ["document:d#reader"]}
    # with context the undecided one is decided; stored context wins over the request's
    assert found(engine, "document:d", "read", context={"level": 5, "required": 99}) == {
        "user:ask": ["document:d#reader"], "user:high": ["document:d#reader"]}
    assert found(engine, "document:d", "read", context={"level": 0}) == {"user:high": ["document:d#reader"]}


def test_a_caveated_subject_set_or_arrow_hop_marks_everything_under_it(engine: Engine) -> None:
    engine.touch('group:g#member@group:inner#member[min_level:{"required":2}]', "group:inner#member@user:ann",
                 'document:d#folder@folder:f[min_level:{"required":2}]', "folder:f#viewer@user:bob")
    inner = tree(engine, "group:g", "member").children[1]
    assert inner.caveated and inner.resource == O("group", "inner")
    assert found(engine, "group:g", "member") == {"group:inner#member[...]": ["group:g#member"],
                                                  "user:ann[...]": ["group:inner#member"]}
    hop = tree(engine, "document:d", "read").children[2].children[0]
    assert hop.caveated and hop.resource == O("folder", "f")
    assert found(engine, "document:d", "read") == {"user:bob[...]": ["folder:f#viewer"]}
    assert "[caveated]" in format_tree(tree(engine, "document:d", "read"))


def test_an_uncaveated_path_wins_over_a_caveated_one(engine: Engine) -> None:
    engine.touch('document:d#reader@user:ann[min_level:{"required":2}]', "document:d#owner@user:ann")
    assert found(engine, "document:d", "read") == {"user:ann": ["document:d#owner", "document:d#reader"]}


def test_expired_relationships_are_invisible(engine: Engine, clock) -> None:
    soon = (clock.now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    engine.touch(f"group:g#member@user:ann[expiration:{soon}]", "group:g#member@user:bob")
    assert leaf_subjects(tree(engine, "group:g", "member")) == ["user:ann", "user:bob"]
    clock.now += timedelta(hours=2)
    assert leaf_subjects(tree(engine, "group:g", "member")) == ["user:bob"]


# ---------------------------------------------------------------- cycles, depth, errors, consistency


def test_data_cycles_are_cut(engine: Engine) -> None:
    engine.touch("group:a#member@group:b#member", "group:b#member@group:a#member", "group:a#member@user:ann",
                 "group:b#member@user:bob")
    node = tree(engine, "group:a", "member")
    b = node.children[1]
    cut = b.children[1]
    assert (cut.resource, cut.name, cut.operation, cut.subjects) == (O("group", "a"), "member", None, ())
    assert found(engine, "group:a", "member") == {
        "group:a#member": ["group:b#member"], "group:b#member": ["group:a#member"],
        "user:ann": ["group:a#member"], "user:bob": ["group:b#member"]}


def test_arrow_cycle_is_cut(engine: Engine) -> None:
    engine.touch("folder:a#parent@folder:b", "folder:b#parent@folder:a", "folder:b#viewer@user:ann")
    assert found(engine, "folder:a", "view") == {"user:ann": ["folder:b#viewer"]}


def test_going_deeper_than_max_depth_raises_naming_the_path(clock) -> None:
    engine = Engine(MemoryStore(clock=clock), config=Config.of(max_depth=3), clock=clock)
    engine.write_schema(SCHEMA)
    engine.touch("group:g0#member@group:g1#member", "group:g1#member@group:g2#member",
                 "group:g2#member@group:g3#member", "group:g3#member@user:ann")
    with pytest.raises(MaxDepthExceededError) as exc:
        engine.expand("group:g0", "member")
    assert "group:g0#member -> group:g1#member -> group:g2#member -> group:g3#member" in str(exc.value)
    engine.remove("group:g2#member@group:g3#member")
    assert found(engine, "group:g0", "member").keys() == {"group:g1#member", "group:g2#member"}


def test_unknown_permission_or_definition(engine: Engine) -> None:
    with pytest.raises(UnknownPermissionError, match="`nope` not found under definition `document`"):
        engine.expand("document:d", "nope")
    with pytest.raises(UnknownPermissionError, match="definition `nope` not found"):
        engine.expand("nope:d", "view")


def test_expand_at_an_exact_snapshot(engine: Engine) -> None:
    first = engine.touch("document:d#owner@user:ann")
    engine.touch("document:d#owner@user:bob")
    old, token = engine.expand("document:d", "owner", consistency=Consistency.at_exact_snapshot(first.token))
    assert token == first.token and leaf_subjects(old) == ["user:ann"]
    assert leaf_subjects(tree(engine, "document:d", "owner")) == ["user:ann", "user:bob"]


def test_as_dict_and_format_tree(engine: Engine) -> None:
    engine.touch("folder:f#viewer@user:ann", "folder:f#banned@user:bob")
    node = tree(engine, "folder:f", "visible")
    data = node.as_dict()
    assert data["operation"] == "exclusion" and data["children"][0]["subjects"][0]["subject"] == "user:ann"
    assert format_tree(node).splitlines() == ["folder:f#visible exclusion", "  folder:f#viewer: user:ann",
                                              "  folder:f#banned: user:bob"]


# ---------------------------------------------------------------- membership rules (SpiceDB's own cases)


ONR = ObjectRef("folder", "company")


def leaf(*subjects: str, caveated: tuple[str, ...] = ()) -> ExpandNode:
    return ExpandNode(ONR, "viewer", subjects=tuple(ExpandedSubject(parse_subject(s), None, s in caveated)
                                                     for s in subjects))


def members(node: ExpandNode) -> list[str]:
    return [f.validation_string() for f in found_subjects(node)]


@pytest.mark.parametrize("op, children, expected", [
    # internal/developmentmembership/membership_test.go
    (INTERSECTION, [["user:legal"], ["user:owner", "user:legal"]], ["user:legal"]),
    (INTERSECTION, [["user:legal", "folder:foobar"], ["user:owner", "user:legal"]], ["user:legal"]),
    (INTERSECTION, [["user:legal", "folder:foobar", "folder:barbaz"], ["user:owner", "user:legal", "folder:barbaz"]],
     ["folder:barbaz", "user:legal"]),
    (EXCLUSION, [["user:owner", "user:legal"], ["user:legal"]], ["user:owner"]),
    (EXCLUSION, [["user:owner", "user:legal", "user:third"], ["user:legal"], ["user:owner"]], ["user:third"]),
    (EXCLUSION, [["user:owner", "user:legal"], ["user:legal"], ["user:*"]], []),
    (EXCLUSION, [["user:owner", "user:legal", "user:third"], ["user:another"], ["user:owner"]],
     ["user:legal", "user:third"]),
    (INTERSECTION, [["user:owner", "user:*"], ["user:legal"]], ["user:legal"]),
    (INTERSECTION, [["user:owner", "user:*"], ["user:*"]], ["user:*", "user:owner"]),
    (INTERSECTION, [["user:*"], ["user:owner", "user:*"]], ["user:*", "user:owner"]),
    (EXCLUSION, [["user:owner", "user:*"], ["user:legal"]], ["user:* - {user:legal}", "user:owner"]),
    (EXCLUSION, [["user:owner", "user:legal"], ["user:*"]], []),
    (INTERSECTION, [["user:owner", "user:legal"], ["user:*"], ["user:*"]], ["user:legal", "user:owner"]),
    (INTERSECTION, [["user:owner", "user:legal", "user:*"], ["user:owner"], ["user:*"]], ["user:owner"]),
    (INTERSECTION, [["user:owner", "user:legal"], ["user:another"], ["user:*"]], []),
    # wildcards with exclusions (internal/datasets/basesubjectset.go examples)
    (UNION, [["user:*"], ["user:tom"]], ["user:*", "user:tom"]),
    (INTERSECTION, [["user:*"], ["user:*"]], ["user:*"]),
])
def test_membership_rules_match_spicedb(op: ExpandOperation, children: list[list[str]], expected: list[str]) -> None:
    node = ExpandNode(ONR, "viewer", op, tuple(leaf(*c) for c in children))
    assert members(node) == sorted(expected)


def test_wildcard_exclusions_combine_as_spicedb_does() -> None:
    minus = lambda base, *removed: ExpandNode(ONR, "viewer", EXCLUSION, (base, *removed))  # noqa: E731
    star_minus_tom = minus(leaf("user:*"), leaf("user:tom"))
    star_minus_tom_sarah = minus(leaf("user:*"), leaf("user:tom", "user:sarah"))
    star_minus_sarah = minus(leaf("user:*"), leaf("user:sarah"))
    # {* - {tom, sarah}} + {* - {sarah}} => {* - {sarah}}; {* - {tom}} + {tom} => {*} and tom
    assert members(ExpandNode(ONR, "viewer", UNION, (star_minus_tom_sarah, star_minus_sarah))) == [
        "user:* - {user:sarah}"]
    assert members(ExpandNode(ONR, "viewer", UNION, (star_minus_tom, leaf("user:tom")))) == ["user:*", "user:tom"]
    # {* - {tom}} & {* - {sarah}} => {* - {sarah, tom}}
    assert members(ExpandNode(ONR, "viewer", INTERSECTION, (star_minus_tom, star_minus_sarah))) == [
        "user:* - {user:sarah, user:tom}"]
    # {* - {sarah}} - {* - {tom, sarah}} => {tom}
    assert members(minus(star_minus_sarah, star_minus_tom_sarah)) == ["user:tom"]
    # {*} - {tom[c]} => {* - {tom[...]}}; {tom} - {tom[c]} => {tom[...]}
    assert members(minus(leaf("user:*"), leaf("user:tom", caveated=("user:tom",)))) == ["user:* - {user:tom[...]}"]
    assert members(minus(leaf("user:tom"), leaf("user:tom", caveated=("user:tom",)))) == ["user:tom[...]"]
    # {tom} & {*[c]} => {tom[...]}; {tom[c]} | {tom} => {tom}
    caveated_star = ExpandNode(ONR, "viewer", UNION, (leaf("user:*"),), caveated=True)
    assert members(ExpandNode(ONR, "viewer", INTERSECTION, (leaf("user:tom"), caveated_star))) == ["user:tom[...]"]
    assert members(ExpandNode(ONR, "viewer", UNION, (leaf("user:tom", caveated=("user:tom",)), leaf("user:tom")))) == [
        "user:tom"]


def test_exclusion_relations_and_found_subject_coverage() -> None:
    other = ExpandNode(ObjectRef("folder", "other"), "banned", subjects=(
        ExpandedSubject(parse_subject("user:tom"), None, True),))
    node = ExpandNode(ONR, "viewer", EXCLUSION, (leaf("user:tom", "user:*"), other))
    tom, star = found_subjects(node)[1], found_subjects(node)[0]
    # a caveated subtraction keeps the subject, caveated, and it gains the subtracted side's relations
    assert (tom.validation_string(), sorted(tom.relations)) == ("user:tom[...]", ["folder:company#viewer",
                                                                                 "folder:other#banned"])
    assert star.validation_string() == "user:* - {user:tom[...]}"
    assert star.covers(SubjectRef("user", "ann")) is True
    assert star.covers(SubjectRef("user", "tom")) is None  # only if tom's caveat is false
    assert star.covers(SubjectRef("group", "ann")) is False
    assert FoundSubject(SubjectRef("user", "ann")).covers(SubjectRef("user", "ann")) is True
