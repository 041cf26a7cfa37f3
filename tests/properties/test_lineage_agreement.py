"""Lineage on random data (hypothesis): Check, LookupResources, LookupSubjects and Expand-free bulk
checks agree, and the effective label equals a brute-force reference computation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater.engine import (
    BulkCheckItem,
    Engine,
    ObjectRef,
    Operation,
    Permissionship,
    SubjectRef,
    Update,
    parse_relationship,
)
from headwater.engine.lineage import Lineage
from headwater.engine.store.memory import MemoryStore

NOW = datetime(2030, 1, 1, tzinfo=UTC)
SCHEMA = """
use expiration

caveat on_site(site string) {
    site == "hq"
}

classification level {
    levels low < mid < high
    categories red, blue
    cleared: user | team#member | user with expiration | user with on_site
}

definition user {}

definition team {
    relation member: user
}

definition data {
    relation viewer: user | team#member
    relation steward: user
    relation tag: level
    lineage parent: data
    declassify scrub: level by steward
    permission read = viewer & cleared
    permission read_all = viewer & cleared & upstream(read)
    permission red_ok = viewer & cleared(level)
}
"""
N = 6
USERS = ["u0", "u1", "u2"]
VALUES = ["low", "mid", "high", "red", "blue"]


@st.composite
def worlds(draw: st.DrawFn) -> list[str]:
    rels: set[str] = set()
    for i in range(1, N):
        for j in draw(st.lists(st.integers(0, i - 1), max_size=2, unique=True)):
            rels.add(f"data:d{i}#parent@data:d{j}")  # edges only to lower numbers: acyclic
    for i in range(N):
        for v in draw(st.lists(st.sampled_from(VALUES), max_size=2, unique=True)):
            rels.add(f"data:d{i}#tag@level:{v}")
        for v in draw(st.lists(st.sampled_from(VALUES), max_size=1, unique=True)):
            rels.add(f"data:d{i}#scrub@level:{v}")
        for u in draw(st.lists(st.sampled_from(USERS), max_size=2, unique=True)):
            rels.add(f"data:d{i}#viewer@user:{u}")
        if draw(st.booleans()):
            rels.add(f"data:d{i}#viewer@team:t#member")
    for u in USERS:
        for v in draw(st.lists(st.sampled_from(VALUES), max_size=3, unique=True)):
            suffix = draw(st.sampled_from(["", "", "[on_site]",
                                           "[expiration:" + (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
                                           + "]"]))
            rels.add(f"level:{v}#cleared@user:{u}{suffix}")
    if draw(st.booleans()):
        rels.add("team:t#member@user:u0")
        rels.add(f"level:{draw(st.sampled_from(VALUES))}#cleared@team:t#member")
    return sorted(rels)


def _reference_labels(rels: list[str]) -> dict[str, set[str]]:
    tags = {f"d{i}": set() for i in range(N)}
    scrub = {f"d{i}": set() for i in range(N)}
    parents = {f"d{i}": set() for i in range(N)}
    for r in rels:
        res, _, subj = r.partition("@")
        obj, rel = res.split("#")
        if obj.startswith("data:"):
            d = obj[5:]
            if rel == "tag":
                tags[d].add(subj.split(":")[1])
            elif rel == "scrub":
                scrub[d].add(subj.split(":")[1])
            elif rel == "parent":
                parents[d].add(subj.split(":")[1])
    out: dict[str, set[str]] = {}
    for i in range(N):  # parents have lower numbers, so they are done first
        d = f"d{i}"
        inherited = set().union(*(out[p] for p in parents[d])) if parents[d] else set()
        out[d] = tags[d] | (inherited - scrub[d])
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(worlds())
def test_lineage_apis_agree(rels: list[str]) -> None:
    clock = lambda: NOW  # noqa: E731
    engine = Engine(MemoryStore(clock=clock), clock=clock)
    engine.write_schema(SCHEMA)
    if rels:
        engine.write([Update(Operation.TOUCH, parse_relationship(r)) for r in rels], trusted=True)
    reference = _reference_labels(rels)
    with engine.store.snapshot() as reader:
        lineage = Lineage(engine.schema(), reader)
        for d, values in reference.items():
            assert set(lineage.labels(ObjectRef("data", d)).of("level")) == values, (d, rels)
    for context in (None, {"site": "hq"}):
        for permission in ("read", "read_all", "red_ok"):
            items = [BulkCheckItem(f"data:d{i}", permission, SubjectRef("user", u), context)
                     for i in range(N) for u in USERS]
            bulk = {(b.item.resource, str(b.item.subject)): b.result for b in engine.check_bulk(items)}
            for u in USERS:
                lr = {r.resource_id: r.permissionship
                      for r in engine.lookup_resources("data", permission, f"user:{u}", context=context).results}
                for i in range(N):
                    check = engine.check(f"data:d{i}", permission, f"user:{u}", context=context)
                    assert bulk[(f"data:d{i}", f"user:{u}")].permissionship == check.permissionship
                    expected_lr = None if check.permissionship is Permissionship.NO_PERMISSION \
                        else check.permissionship
                    assert lr.get(f"d{i}") == expected_lr, (permission, u, i, context, rels)
            for i in range(N):
                ls = engine.lookup_subjects(f"data:d{i}", permission, "user", context=context).results
                listed = {r.subject.id: r.permissionship for r in ls if r.subject.id != "*"}
                for u in USERS:
                    check = engine.check(f"data:d{i}", permission, f"user:{u}", context=context)
                    got = listed.get(u, Permissionship.NO_PERMISSION)
                    assert got == check.permissionship, (permission, u, i, context, rels, ls)
