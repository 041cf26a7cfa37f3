"""Lineage and sensitivity: every rule of the issue, through the public Engine API and the CLI."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from headwater.dsl import DslError, compile_schema
from headwater.engine import (
    Engine,
    InvalidRelationshipError,
    ObjectRef,
    Operation,
    Permissionship,
    SubjectRef,
    Update,
    parse_relationship,
)
from headwater.engine.cli import main
from headwater.engine.errors import DeclassificationRefusedError, LineageCycleError
from headwater.engine.lineage import Lineage
from headwater.engine.store.memory import MemoryStore

REPO = Path(__file__).resolve().parents[2]
POLICY = (REPO / "examples" / "ai-lineage" / "policy.zed").read_text()
HAS, NO, COND = (Permissionship.HAS_PERMISSION, Permissionship.NO_PERMISSION,
                 Permissionship.CONDITIONAL_PERMISSION)


@pytest.fixture
def engine(clock) -> Engine:
    e = Engine(MemoryStore(clock=clock), clock=clock)
    e.write_schema(POLICY)
    return e


def perm(engine: Engine, resource: str, permission: str, subject: str, **kw) -> Permissionship:
    return engine.check(resource, permission, subject, **kw).permissionship


def labels(engine: Engine, obj: str) -> dict[str, frozenset[str]]:
    with engine.store.snapshot() as reader:
        return Lineage(engine.schema(), reader).labels(ObjectRef(*obj.split(":"))).values


def test_example_validation_file_passes(capsys: pytest.CaptureFixture[str]) -> None:
    path = REPO / "examples" / "ai-lineage" / "validation.yaml"
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "22 of 22 assertions passed" in out


def test_effective_label_is_own_plus_inherited_minus_declassified(engine: Engine) -> None:
    engine.touch("dataset:raw#label@sensitivity:confidential", "dataset:raw#label@sensitivity:pii",
                 "dataset:mid#derived_from@dataset:raw", "dataset:mid#label@sensitivity:financial",
                 "dataset:mid#steward@user:stew", "model:m#trained_on@dataset:mid", "output:o#produced_by@model:m")
    assert labels(engine, "output:o") == {"sensitivity": frozenset({"confidential", "pii", "financial"})}
    engine.touch("dataset:mid#scrubbed@sensitivity:pii", "dataset:mid#scrubbed@sensitivity:financial",
                 actor="user:stew", reason="anonymized")
    # inherited pii removed; mid's own `financial` label stays although declassified
    assert labels(engine, "dataset:mid") == {"sensitivity": frozenset({"confidential", "financial"})}
    assert labels(engine, "output:o") == {"sensitivity": frozenset({"confidential", "financial"})}


def test_lowering_a_level_by_declassifying_and_relabeling(engine: Engine) -> None:
    engine.touch("dataset:raw#label@sensitivity:restricted", "dataset:summary#derived_from@dataset:raw",
                 "dataset:summary#steward@user:stew", "dataset:summary#viewer@user:ann",
                 "sensitivity:internal#cleared@user:ann")
    assert perm(engine, "dataset:summary", "read", "user:ann") is NO
    engine.touch("dataset:summary#scrubbed@sensitivity:restricted", actor="user:stew", reason="aggregated")
    engine.touch("dataset:summary#label@sensitivity:internal")
    assert labels(engine, "dataset:summary") == {"sensitivity": frozenset({"internal"})}
    assert perm(engine, "dataset:summary", "read", "user:ann") is HAS


def test_level_clearance_at_or_above_and_every_category(engine: Engine) -> None:
    engine.touch("dataset:d#label@sensitivity:internal", "dataset:d#label@sensitivity:phi",
                 "dataset:d#label@sensitivity:financial", "dataset:d#viewer@user:ann", "dataset:d#viewer@user:bob",
                 "sensitivity:restricted#cleared@user:ann", "sensitivity:phi#cleared@user:ann",
                 "sensitivity:financial#cleared@user:ann", "sensitivity:internal#cleared@user:bob",
                 "sensitivity:phi#cleared@user:bob")
    assert perm(engine, "dataset:d", "read", "user:ann") is HAS
    assert perm(engine, "dataset:d", "read", "user:bob") is NO  # lacks financial


def test_lowest_level_and_unlabelled_need_no_clearance(engine: Engine) -> None:
    engine.touch("dataset:pub#label@sensitivity:public", "dataset:pub#viewer@user:ann",
                 "dataset:plain#viewer@user:ann")
    assert perm(engine, "dataset:pub", "read", "user:ann") is HAS
    assert perm(engine, "dataset:plain", "read", "user:ann") is HAS


def test_expired_clearance(engine: Engine, clock) -> None:
    until = (clock.now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    engine.touch("dataset:d#label@sensitivity:confidential", "dataset:d#viewer@user:ann",
                 f"sensitivity:confidential#cleared@user:ann[expiration:{until}]")
    assert perm(engine, "dataset:d", "read", "user:ann") is HAS
    clock.now += timedelta(days=2)
    assert perm(engine, "dataset:d", "read", "user:ann") is NO


def test_caveated_clearance_gives_conditional_results() -> None:
    schema = POLICY.replace("cleared: user | team#member | user with expiration",
                            "cleared: user | team#member | user with expiration | user with on_site").replace(
        "definition user {}", "caveat on_site(site string) {\n    site == \"hq\"\n}\n\ndefinition user {}")
    engine = Engine(MemoryStore())
    engine.write_schema(schema)
    engine.touch("dataset:d#label@sensitivity:confidential", "dataset:d#viewer@user:ann",
                 "sensitivity:confidential#cleared@user:ann[on_site]")
    r = engine.check("dataset:d", "read", "user:ann")
    assert r.permissionship is COND and r.missing_context == ("site",)
    assert perm(engine, "dataset:d", "read", "user:ann", context={"site": "hq"}) is HAS
    assert perm(engine, "dataset:d", "read", "user:ann", context={"site": "home"}) is NO


def test_lineage_cycles_are_refused_atomically(engine: Engine) -> None:
    engine.touch("dataset:a#derived_from@dataset:b", "dataset:b#derived_from@dataset:c")
    head = engine.store.head()
    with pytest.raises(LineageCycleError) as e:
        engine.touch("dataset:x#viewer@user:ann", "dataset:c#derived_from@dataset:a")
    assert "dataset:c -derived_from-> dataset:a -derived_from-> dataset:b -derived_from-> dataset:c" in str(e.value)
    assert engine.store.head() == head  # nothing of the batch was written
    assert perm(engine, "dataset:x", "read", "user:ann") is NO
    with pytest.raises(LineageCycleError, match="dataset:s -derived_from-> dataset:s"):
        engine.touch("dataset:s#derived_from@dataset:s")
    # a cycle across types (output -> model -> dataset cannot loop back, but a batch may add both edges)
    with pytest.raises(LineageCycleError):
        engine.touch("dataset:p#derived_from@dataset:q", "dataset:q#derived_from@dataset:p")


def test_deleting_an_edge_in_the_same_batch_avoids_the_cycle(engine: Engine) -> None:
    from headwater.engine import parse_relationship

    engine.touch("dataset:a#derived_from@dataset:b")
    engine.write([Update(Operation.DELETE, parse_relationship("dataset:a#derived_from@dataset:b")),
                  Update(Operation.TOUCH, parse_relationship("dataset:b#derived_from@dataset:a"))])
    assert labels(engine, "dataset:a") == {}


def test_declassification_needs_actor_reason_and_the_by_permission(engine: Engine) -> None:
    engine.touch("dataset:d#steward@user:stew", "dataset:d#owner@user:own")
    with pytest.raises(DeclassificationRefusedError, match="needs an actor and a reason"):
        engine.touch("dataset:d#scrubbed@sensitivity:pii")
    with pytest.raises(DeclassificationRefusedError, match="needs an actor and a reason"):
        engine.touch("dataset:d#scrubbed@sensitivity:pii", actor="user:stew")
    with pytest.raises(DeclassificationRefusedError, match="user:own may not declassify .* needs `steward`"):
        engine.touch("dataset:d#scrubbed@sensitivity:pii", actor="user:own", reason="please")
    result = engine.touch("dataset:d#scrubbed@sensitivity:pii", actor="user:stew", reason="tokenized")
    assert engine.store.revision_metadata(result.revision) == {"actor": "user:stew", "reason": "tokenized"}
    with pytest.raises(DeclassificationRefusedError):
        engine.remove("dataset:d#scrubbed@sensitivity:pii", actor="user:own", reason="undo")
    engine.remove("dataset:d#scrubbed@sensitivity:pii", actor="user:stew", reason="undo")


def test_a_declassification_is_authorized_against_its_own_batch(engine: Engine) -> None:
    """A steward granted in the same batch counts; one the batch removes does not; nothing is written on refusal."""
    result = engine.touch("dataset:e#steward@user:stew", "dataset:e#scrubbed@sensitivity:pii",
                          actor="user:stew", reason="tokenized on import")
    assert engine.store.revision_metadata(result.revision) == {"actor": "user:stew", "reason": "tokenized on import"}
    engine.touch("dataset:f#steward@user:stew")
    head = engine.store.head()
    with pytest.raises(DeclassificationRefusedError, match="user:stew may not declassify"):
        engine.write([Update(Operation.DELETE, parse_relationship("dataset:f#steward@user:stew")),
                      Update(Operation.TOUCH, parse_relationship("dataset:f#scrubbed@sensitivity:pii"))],
                     actor="user:stew", reason="after leaving")
    assert engine.store.head() == head
    with pytest.raises(DeclassificationRefusedError, match="user:own may not declassify"):
        engine.touch("dataset:g#steward@user:stew", "dataset:g#scrubbed@sensitivity:pii",
                     actor="user:own", reason="not the steward")
    assert engine.store.head() == head


def test_unknown_classification_values_are_refused(engine: Engine) -> None:
    for text in ("dataset:d#label@sensitivity:secret", "sensitivity:topsecret#cleared@user:ann"):
        with pytest.raises(InvalidRelationshipError, match="is not a value of classification `sensitivity`"):
            engine.touch(text)


def test_diamond_and_deep_chain(engine: Engine) -> None:
    # diamond: top -> left, right -> bottom
    engine.touch("dataset:left#derived_from@dataset:top", "dataset:right#derived_from@dataset:top",
                 "dataset:bottom#derived_from@dataset:left", "dataset:bottom#derived_from@dataset:right",
                 "dataset:top#label@sensitivity:phi", "dataset:right#label@sensitivity:confidential")
    assert labels(engine, "dataset:bottom") == {"sensitivity": frozenset({"phi", "confidential"})}
    # depth 100
    chain = [f"dataset:c{i + 1}#derived_from@dataset:c{i}" for i in range(100)]
    for i in range(0, 100, 50):
        engine.touch(*chain[i:i + 50])
    engine.touch("dataset:c0#label@sensitivity:restricted", "model:deep#trained_on@dataset:c100",
                 "model:deep#operator@user:ann", "sensitivity:restricted#cleared@user:ann",
                 *[f"dataset:c{i}#viewer@user:ann" for i in range(0, 101)])
    assert labels(engine, "model:deep") == {"sensitivity": frozenset({"restricted"})}
    assert perm(engine, "model:deep", "use", "user:ann") is HAS  # cleared + read on all 101 upstream
    engine.remove("dataset:c37#viewer@user:ann")
    assert perm(engine, "model:deep", "use", "user:ann") is NO  # upstream(read) fails at c37


def test_upstream_walks_through_types_without_the_permission_and_is_vacuous_without_upstream() -> None:
    engine = Engine(MemoryStore())
    engine.write_schema("""
definition user {}
definition dataset {
    relation viewer: user
    permission read = viewer
}
definition model {
    lineage trained_on: dataset
}
definition output {
    relation requester: user
    lineage produced_by: model
    permission view = requester & upstream(read)
}""")
    engine.touch("output:o#requester@user:ann", "output:lonely#requester@user:ann")
    assert perm(engine, "output:lonely", "view", "user:ann") is HAS  # nothing upstream: vacuously true
    engine.touch("output:o#produced_by@model:m", "model:m#trained_on@dataset:d")
    assert perm(engine, "output:o", "view", "user:ann") is NO  # model has no `read`; the dataset does
    engine.touch("dataset:d#viewer@user:ann")
    assert perm(engine, "output:o", "view", "user:ann") is HAS


def test_cleared_of_one_classification() -> None:
    engine = Engine(MemoryStore())
    engine.write_schema("""
classification secrecy {
    levels open < secret
    cleared: user
}
classification region {
    categories eu, us
    cleared: user
}
definition user {}
definition file {
    relation tag: secrecy | region
    relation viewer: user
    permission read = viewer & cleared
    permission read_eu_rules = viewer & cleared(region)
}""")
    engine.touch("file:f#tag@secrecy:secret", "file:f#tag@region:eu", "file:f#viewer@user:ann",
                 "region:eu#cleared@user:ann")
    assert perm(engine, "file:f", "read_eu_rules", "user:ann") is HAS
    assert perm(engine, "file:f", "read", "user:ann") is NO  # not cleared for secrecy:secret
    engine.touch("secrecy:secret#cleared@user:ann")
    assert perm(engine, "file:f", "read", "user:ann") is HAS


@pytest.mark.parametrize("text, fragment", [
    ("classification lvl {\n levels a1a < b1b\n cleared: user\n}\ndefinition user {}\n"
     "definition doc {\n lineage upp: user#member\n}", "lineage relation names plain objects"),
    ("classification lvl {\n levels a1a < b1b\n cleared: user\n}\ndefinition user {}\n"
     "caveat cav(x int) {\n x > 1\n}\ndefinition doc {\n relation lab: lvl with cav\n}", "label relation takes plain"),
    ("classification lvl {\n levels a1a < b1b\n cleared: user\n}\ndefinition user {}\n"
     "definition doc {\n relation viewer: user\n permission read = viewer & cleared\n}", "no label can reach"),
    ("definition user {}\ndefinition doc {\n relation viewer: user\n lineage upp: doc\n"
     " permission read = viewer & upstream(nope)\n}", "upstream(nope)"),
    ("classification lvl {\n levels a1a < b1b\n cleared: user\n}\ndefinition user {}\n"
     "definition doc {\n relation steward: user\n declassify scrub: nope by steward\n}", "unknown classification `nope`"),
    ("classification lvl {\n levels a1a < b1b\n cleared: user\n}\ndefinition user {}\n"
     "definition doc {\n declassify scrub: lvl by steward\n}", "no relation or permission `steward`"),
    ("definition user {}\ndefinition doc {\n relation viewer: user\n permission read = viewer & frobnicate(x)\n}",
     "unknown function `frobnicate(...)`"),
    ("classification lvl {\n levels a1a < b1b < a1a\n cleared: user\n}\ndefinition user {}", "appears twice"),
    ("classification lvl {\n levels a1a\n}\ndefinition user {}", "needs `cleared:"),
])
def test_schema_errors(text: str, fragment: str) -> None:
    with pytest.raises(DslError) as e:
        compile_schema(text)
    assert fragment in str(e.value)
    assert e.value.line > 0


def test_a_relation_called_cleared_keeps_its_spicedb_meaning() -> None:
    schema = compile_schema("definition user {}\ndefinition doc {\n relation cleared: user\n"
                            " permission view = cleared\n}")
    from headwater.dsl.schema import Computed

    assert schema.definitions["doc"].permissions["view"].expr == Computed("cleared")


def test_lookups_and_bulk_check_handle_cleared_and_upstream(engine: Engine) -> None:
    path = REPO / "examples" / "ai-lineage" / "validation.yaml"
    from headwater.engine.validationfile import run_validation_file

    assert run_validation_file(path).ok
    # load the example into this engine
    from headwater.engine.validationfile import load_validation_file

    for doc in load_validation_file(path):
        engine.write([Update(Operation.TOUCH, r) for r, _ in doc.relationships], trusted=True)
    outputs = {r.resource_id for r in engine.lookup_resources("output", "view", "user:frank").results}
    assert outputs == {"o1"}
    datasets = {r.resource_id for r in engine.lookup_resources("dataset", "read", "user:alice").results}
    assert datasets == {"claims", "claims_anon"}
    viewers = engine.lookup_subjects("output:o2", "view", "user").results
    assert [str(v.subject) for v in viewers] == ["user:alice"]
    from headwater.engine import BulkCheckItem

    bulk = engine.check_bulk([BulkCheckItem("output:o1", "view", SubjectRef("user", u)) for u in ("frank", "bob")])
    assert [b.result.permissionship for b in bulk] == [HAS, NO]


def test_effective_labels_api_with_provenance_and_declassifications(engine: Engine) -> None:
    engine.touch("dataset:raw#label@sensitivity:restricted", "dataset:raw#label@sensitivity:phi",
                 "dataset:mid#derived_from@dataset:raw", "dataset:mid#steward@user:stew",
                 "dataset:mid#label@sensitivity:internal", "output:o#input@dataset:mid", "output:o#input@dataset:raw")
    result = engine.touch("dataset:mid#scrubbed@sensitivity:restricted", actor="user:stew", reason="aggregated")
    mid = engine.effective_labels("dataset:mid").classifications[0]
    assert (mid.level, mid.categories) == ("internal", ("phi",))
    assert [(v.value, v.paths) for v in mid.values] == [
        ("internal", ("dataset:mid",)), ("phi", ("dataset:mid -derived_from-> dataset:raw",))]
    assert [(d.value, d.actor, d.reason, d.token) for d in mid.declassified] == [
        ("restricted", "user:stew", "aggregated", result.token)]
    out = engine.effective_labels("output:o").classifications[0]
    assert out.level == "restricted"  # through the direct input edge to raw
    phi = next(v for v in out.values if v.value == "phi")
    assert set(phi.paths) == {"output:o -input-> dataset:raw", "output:o -input-> dataset:mid -derived_from-> dataset:raw"}
    assert engine.effective_labels("dataset:nothing").classifications == ()


def test_ancestors_and_descendants_paged_and_depth_limited(engine: Engine) -> None:
    engine.touch(*[f"dataset:c{i + 1}#derived_from@dataset:c{i}" for i in range(10)],
                 "model:m#trained_on@dataset:c10", "output:o#produced_by@model:m")
    up = engine.ancestors("output:o")
    assert [str(i.object) for i in up.items] == ["model:m"] + [f"dataset:c{i}" for i in range(10, -1, -1)]
    assert [i.depth for i in up.items] == list(range(1, 13))
    assert engine.ancestors("output:o", max_depth=2).items[-1].path == \
        "output:o -produced_by-> model:m -trained_on-> dataset:c10"
    pages, cursor = [], None
    while True:
        page = engine.descendants("dataset:c0", limit=5, cursor=cursor)
        pages.extend(str(i.object) for i in page.items)
        cursor = page.cursor
        if cursor is None:
            break
    assert pages == [f"dataset:c{i}" for i in range(1, 11)] + ["model:m", "output:o"]
    assert engine.descendants("dataset:c0", max_depth=1).items[0].path == "dataset:c0 <-derived_from- dataset:c1"


def test_expand_agrees_with_check_on_the_example() -> None:
    from headwater.engine.membership import found_subjects
    from headwater.engine.validationfile import load_validation_file

    engine = Engine(MemoryStore())
    docs = load_validation_file(REPO / "examples" / "ai-lineage" / "validation.yaml")
    engine.write_schema(docs[0].schema_text)
    engine.write([Update(Operation.TOUCH, r) for r, _ in docs[0].relationships], trusted=True)
    users = ["alice", "bob", "carol", "dan", "erin", "frank", "stew", "nobody"]
    compared = 0
    for resource, permission in [("dataset:claims", "read"), ("dataset:claims_anon", "read"),
                                 ("dataset:merged", "read"), ("dataset:public_stats", "read"),
                                 ("model:risk", "use"), ("model:fraud", "use"), ("output:o1", "view"),
                                 ("output:o2", "view"), ("output:o3", "view")]:
        found = found_subjects(engine.expand(resource, permission)[0])
        for u in users:
            subject = SubjectRef("user", u)
            granted = engine.check(resource, permission, subject).permissionship is not NO
            assert any(f.covers(subject) for f in found) == granted, (resource, permission, u)
            compared += 1
    assert compared == 72


def test_a_declassification_is_authorized_without_the_shared_caches(engine: Engine) -> None:
    """The authorization runs inside the write transaction, at a revision not committed yet (and, with group
    commit, possibly never: a failed commit frees its revision numbers for other data). So it neither reads
    nor fills the check or lineage caches."""
    engine.touch("dataset:d#steward@user:stew", "dataset:d#label@sensitivity:pii")
    engine.clear_caches()
    engine.touch("dataset:d#scrubbed@sensitivity:pii", actor="user:stew", reason="tokenized")
    assert len(engine.caches.checks) == 0 and len(engine.caches.lineage) == 0
