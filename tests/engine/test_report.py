"""The compliance report (engine/governance/report.py): exact "who can view" lists, labels, clearances,
declassifications, --at and --since, and its three formats.

The property test draws random lineage data (labels, lineage, clearances through teams, with expirations,
caveated and wildcard viewers, declassifications by stewards) and holds the report to the engine's own
answers: every object whose effective label holds a value is listed under it (and no other), and its
viewers are exactly the subjects, among every subject of the data, that ``Engine.check`` allows (conditional
ones marked conditional).
"""

from __future__ import annotations

import csv
import doctest
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater.engine import Config, Engine, Permissionship, RevisionUnavailableError
from headwater.engine.governance import report as report_module
from headwater.engine.governance import report_render
from headwater.engine.governance.report import Report, Viewer, build_report
from headwater.engine.governance.report_render import CSV_COLUMNS, render_csv, render_html
from headwater.engine.store.memory import MemoryStore

from tests.cli.conftest import POLICY, example_relationships

SCHEMA = """\
use expiration

caveat on_shift(hour int) {
    hour >= 9 && hour < 17
}

classification sensitivity {
    levels public < internal < confidential < restricted
    categories pii, phi
    cleared: user | team#member | user with expiration
}

definition user {}

definition team {
    relation member: user | team#member
}

definition dataset {
    relation steward: user
    relation viewer: user | user:* | team#member | user with on_shift
    relation label: sensitivity
    lineage derived_from: dataset
    declassify scrubbed: sensitivity by steward
    permission read = viewer & cleared
}

definition model {
    relation operator: user | team#member
    lineage trained_on: dataset
    permission use = operator & cleared & upstream(read)
}

definition output {
    relation requester: user | user with on_shift
    lineage produced_by: model
    lineage input: dataset
    permission view = requester & cleared
}
"""

VALUES = ("public", "internal", "confidential", "pii", "phi")
USERS = [f"user:u{i}" for i in range(4)]
DATASETS = [f"dataset:d{i}" for i in range(4)]
MODELS = ["model:m0", "model:m1"]
OUTPUTS = ["output:o0", "output:o1", "output:o2"]
FUTURE = "2099-01-01T00:00:00Z"


def _groups() -> dict[str, list[str]]:
    """The relationships the property test may draw, by group (lineage points to lower indexes: no cycle)."""
    teams = [f"team:t0#member@{u}" for u in USERS[:2]] + [f"team:t1#member@{u}" for u in USERS[2:]]
    teams += ["team:t1#member@team:t0#member"]
    clearances = [f"sensitivity:{v}#cleared@{s}" for v in VALUES for s in USERS + ["team:t0#member", "team:t1#member"]]
    clearances += [f"sensitivity:{v}#cleared@{u}[expiration:{FUTURE}]" for v in VALUES for u in USERS[:2]]
    labels = [f"{d}#label@sensitivity:{v}" for d in DATASETS for v in VALUES]
    lineage = [f"{d}#derived_from@{up}" for i, d in enumerate(DATASETS) for up in DATASETS[:i]]
    lineage += [f"{m}#trained_on@{d}" for m in MODELS for d in DATASETS]
    lineage += [f"{o}#produced_by@{m}" for o in OUTPUTS for m in MODELS] + [f"{o}#input@{d}" for o in OUTPUTS
                                                                            for d in DATASETS]
    access = [f"{d}#viewer@{s}" for d in DATASETS for s in [*USERS, "user:*", "team:t0#member", "team:t1#member"]]
    access += [f"{d}#viewer@{u}[on_shift]" for d in DATASETS for u in USERS]
    access += [f"{m}#operator@{s}" for m in MODELS for s in [*USERS, "team:t1#member"]]
    access += [f"{o}#requester@{u}" for o in OUTPUTS for u in USERS]
    access += [f"{o}#requester@{u}[on_shift]" for o in OUTPUTS for u in USERS]
    return {"teams": teams, "clearances": clearances, "labels": labels, "lineage": lineage, "access": access}


GROUPS = _groups()
_SIZES = {"teams": 4, "clearances": 12, "labels": 5, "lineage": 10, "access": 16}
RELATIONSHIPS = st.tuples(*(st.sets(st.sampled_from(GROUPS[g]), max_size=n) for g, n in _SIZES.items())).map(
    lambda parts: set().union(*parts))


def _key(rel: str) -> str:
    return rel.split("[", 1)[0]


def _engine(relationships: list[str], declassified: list[tuple[str, str]] = ()) -> Engine:
    engine = Engine(MemoryStore())
    engine.write_schema(SCHEMA)
    unique = list({_key(r): r for r in relationships}.values())  # one of `x` and `x[caveat]`
    stewards = sorted({f"{d}#steward@user:u4" for d, _ in declassified})
    if unique or stewards:
        engine.touch(*unique, *stewards)
    for d, value in declassified:
        engine.touch(f"{d}#scrubbed@sensitivity:{value}", actor="user:u4", reason=f"scrubbed {value}")
    return engine


def _answer(viewers: tuple[Viewer, ...], subject: str) -> Permissionship:
    """A subject's answer as the report lists it: its own entry, else a wildcard's unless excluded, else none."""
    by_subject = {v.subject: v for v in viewers}
    entry = by_subject.get(subject)
    if entry is None:
        wildcard = by_subject.get(subject.split(":")[0] + ":*")
        entry = wildcard if wildcard is not None and subject not in wildcard.excluded else None
    if entry is None:
        return Permissionship.NO_PERMISSION
    return Permissionship.CONDITIONAL_PERMISSION if entry.conditional else Permissionship.HAS_PERMISSION


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RELATIONSHIPS,
       st.lists(st.tuples(st.sampled_from(DATASETS), st.sampled_from(VALUES)), max_size=3, unique=True))
def test_who_can_view_equals_checks_over_every_subject(relationships: set[str],
                                                       declassified: list[tuple[str, str]]) -> None:
    engine = _engine(sorted(relationships), declassified)
    report = build_report(engine)
    subjects = sorted({*USERS, "user:u4", "user:nobody"})  # u4: the stewards
    permissions = {"dataset": "read", "model": "use", "output": "view"}
    assert dict(report.permissions) == {**permissions, "user": None, "team": None}
    for value in report.values:
        listed = {o.object: o for o in value.objects}
        carrying = set()
        for obj in DATASETS + MODELS + OUTPUTS:
            labels = {v.value: v for c in engine.effective_labels(obj).classifications for v in c.values}
            if value.value in labels:
                carrying.add(obj)
                entry = listed.get(obj)
                assert entry is not None, (value.value, obj)
                assert entry.own == (f"{obj}#label@sensitivity:{value.value}" in relationships)
                assert set(entry.paths) == set(labels[value.value].paths) - {obj}
        assert set(listed) == carrying, value.value
        for obj, entry in listed.items():
            assert entry.permission == permissions[obj.split(":")[0]]
            for subject in subjects:
                expected = engine.check(obj, entry.permission, subject).permissionship
                assert _answer(entry.viewers, subject) == expected, (obj, subject, entry.viewers)
            for viewer in entry.viewers:
                assert viewer.conditional == bool(viewer.missing_context)
        grants = {r.split("[")[0].split("@", 1)[1] for r in relationships
                  if r.startswith(f"sensitivity:{value.value}#cleared@")}
        assert {g.subject for g in value.cleared} == grants
        assert {d.object for d in value.declassified} == {d for d, v in declassified if v == value.value}
        assert all(d.actor == "user:u4" and d.reason == f"scrubbed {value.value}" and d.revision
                   for d in value.declassified)


def _example(**config: object) -> tuple[Engine, str]:
    engine = Engine(MemoryStore(), config=Config.of(audit=True, **config))
    engine.write_schema(POLICY.read_text(encoding="utf-8"))
    token = engine.touch(*example_relationships(), actor="user:stew", reason="anonymized").token
    return engine, token


def test_the_example_report() -> None:
    engine, token = _example()
    report = build_report(engine)
    assert report.token == token and report.notes == ()
    pii = report.value("sensitivity", "pii")
    assert [o.object for o in pii.objects] == ["dataset:claims", "model:fraud", "output:o2"]
    o2 = pii.object("output:o2")
    assert o2.paths == ("output:o2 -produced_by-> model:fraud -trained_on-> dataset:claims",) and not o2.own
    assert (o2.permission, o2.viewers) == ("view", (Viewer("user:alice"),))
    # claims_anon declassified pii: it and what derives from it are not listed under pii
    assert pii.object("dataset:claims_anon") is None and pii.object("output:o1") is None
    [scrubbed] = pii.declassified
    assert (scrubbed.object, scrubbed.actor, scrubbed.reason, scrubbed.token) == (
        "dataset:claims_anon", "user:stew", "anonymized", token)
    [logged] = pii.declassification_log
    assert (logged.object, logged.operation, logged.actor, logged.reason) == (
        "dataset:claims_anon", "touch", "user:stew", "anonymized")
    confidential = report.value("sensitivity", "confidential")
    team = next(g for g in confidential.cleared if g.subject == "team:analysts#member")
    assert team.members == (Viewer("user:alice"),)
    assert confidential.object("output:o1").viewers == (Viewer("user:frank"),)
    # carol's clearances expired (2020): not listed
    assert all("carol" not in g.subject for v in report.values for g in v.cleared)


def test_expiration_and_caveats_are_reported() -> None:
    engine = _engine(["sensitivity:pii#cleared@user:u0[expiration:2099-01-01T00:00:00Z]",
                      "dataset:d0#label@sensitivity:pii", "dataset:d0#viewer@user:u0[on_shift]"])
    pii = build_report(engine).value("sensitivity", "pii")
    assert [(g.subject, g.expiration) for g in pii.cleared] == [("user:u0", "2099-01-01T00:00:00+00:00")]
    assert pii.object("dataset:d0").viewers == (Viewer("user:u0", True, ("hour",)),)


def test_permission_choice() -> None:
    engine, _ = _example()
    report = build_report(engine, permissions=["view", "model=operator"])
    assert report.permissions["dataset"] is None and report.permissions["model"] == "operator"
    claims = report.value("sensitivity", "pii").object("dataset:claims")
    assert (claims.permission, claims.viewers) == (None, ())
    fraud = report.value("sensitivity", "pii").object("model:fraud")
    assert {v.subject for v in fraud.viewers} == {"user:alice", "user:frank"}  # operators: no clearance needed
    with pytest.raises(ValueError, match="model has no permission or relation nope"):
        build_report(engine, permissions=["model=nope"])
    with pytest.raises(ValueError, match="no classification 'nope'"):
        build_report(engine, classification="nope")
    assert {v.classification for v in build_report(engine, classification="sensitivity").values} == {"sensitivity"}


def test_at_a_past_revision_and_since() -> None:
    engine, token = _example()
    later = engine.touch("output:o2#requester@user:bob", "sensitivity:pii#cleared@user:bob",
                         "sensitivity:confidential#cleared@user:bob", "output:o4#produced_by@model:fraud").token
    then = build_report(engine, at=token)
    assert then.token == token and then.value("sensitivity", "pii").object("output:o4") is None
    now = build_report(engine, since=token)
    assert now.token == later and now.since == token
    assert {(c.kind, c.relationship) for c in now.changes} == {
        ("clearance", "sensitivity:pii#cleared@user:bob"), ("clearance", "sensitivity:confidential#cleared@user:bob"),
        ("lineage", "output:o4#produced_by@model:fraud"), ("access", "output:o2#requester@user:bob")}
    pii = next(d for d in now.diff if d.value == "pii")
    assert pii.objects_added == ("output:o4",) and pii.cleared_added == ("user:bob",)
    assert pii.viewers_added == {"output:o2": ("user:bob",), "dataset:claims": ("user:bob",)}
    assert pii.viewers_removed == {} and pii.objects_removed == ()
    assert build_report(engine, at=token, since=token).changes == ()
    with pytest.raises(ValueError, match="names a revision after the one reported"):
        build_report(engine, at=token, since=later)


def test_a_collected_revision_is_an_error() -> None:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    clock = lambda: now[0]  # noqa: E731
    engine = Engine(MemoryStore(clock=clock), clock=clock,
                    config=Config.of(gc_window=timedelta(hours=1), gc_interval=timedelta(minutes=10)))
    engine.write_schema(POLICY.read_text(encoding="utf-8"))
    first = engine.touch("dataset:claims#label@sensitivity:pii").token
    engine.remove("dataset:claims#label@sensitivity:pii")
    now[0] += timedelta(hours=2)
    engine.touch("dataset:claims#owner@user:dan")
    with pytest.raises(RevisionUnavailableError):
        build_report(engine, at=first)


def test_without_viewers() -> None:
    engine, _ = _example()
    report = build_report(engine, viewers=False)
    assert report.permissions == {}
    full = build_report(engine)
    for fast, value in zip(report.values, full.values):
        assert [(o.object, o.own, o.paths) for o in fast.objects] == [(o.object, o.own, o.paths) for o in value.objects]
        assert all(o.permission is None and o.viewers == () for o in fast.objects)
        assert fast.cleared == value.cleared and fast.declassified == value.declassified


def test_no_audit_log_is_a_note() -> None:
    engine = _engine(["dataset:d0#label@sensitivity:pii"])
    report = build_report(engine)
    assert report.notes and "audit log" in report.notes[0]


def test_json_keys() -> None:
    engine, _ = _example()
    data = json.loads(json.dumps(build_report(engine).to_json()))
    assert set(data) == {"token", "revision", "since", "permissions", "subject_types", "notes", "objects",
                         "classifications", "changes", "diff"}
    value = data["classifications"][4]
    assert value["value"] == "pii" and set(value) == {"classification", "value", "kind", "cleared", "objects",
                                                      "declassified", "declassification_log"}
    assert set(value["objects"][0]) == {"object", "own", "inherited", "paths", "permission", "viewers"}
    assert set(value["objects"][0]["viewers"][0]) == {"subject", "conditional", "missing_context", "excluded"}


def test_csv_rows() -> None:
    engine, token = _example()
    engine.touch("output:o2#requester@user:bob")
    out = io.StringIO()
    render_csv(build_report(engine, since=token), out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == CSV_COLUMNS
    viewers = {(r["value"], r["object"], r["subject"]) for r in rows if r["section"] == "viewer"}
    assert ("pii", "output:o2", "user:alice") in viewers and ("pii", "output:o2", "user:bob") not in viewers
    o2 = next(r for r in rows if r["section"] == "viewer" and r["object"] == "output:o2")
    assert o2["carries"] == "inherited" and o2["path"].startswith("output:o2 -produced_by-> model:fraud")
    assert {"cleared", "declassified", "declassification log", "change"} <= {r["section"] for r in rows}
    member = next(r for r in rows if r["section"] == "cleared" and r["via"] == "team:analysts#member")
    assert member["subject"] == "user:alice"
    nobody = [r for r in rows if r["section"] == "viewer" and r["object"] == "dataset:public_stats"]
    assert [r["subject"] for r in nobody] == ["user:bob"]


def test_html_escapes_everything() -> None:
    engine, _ = _example()
    engine.touch("dataset:claims#steward@user:stew")
    engine.touch("dataset:claims#scrubbed@sensitivity:phi", actor="user:stew", reason="<script>alert(1)</script> & co")
    page = render_html(build_report(engine))
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert page.startswith("<!DOCTYPE html>") and "http://" not in page and "https://" not in page
    assert page.count("<table") >= 8


@pytest.mark.parametrize("module", [report_module, report_render])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_an_empty_report() -> None:
    engine = Engine(MemoryStore())
    engine.write_schema(SCHEMA)
    report = build_report(engine)
    assert report.objects == 0 and all(not v.objects for v in report.values)
    assert "<table" in render_html(report) and isinstance(report, Report)
