"""LookupSubjects walks ``cleared`` and ``upstream(p)`` beside a granting branch of an intersection only when it
must (engine/lookup.py): the answers stay those of Check, also where the other branch holds for subjects no
relationship names, or a wildcard grants."""

from __future__ import annotations

import pytest

from headwater.engine import Engine
from headwater.engine.store.memory import MemoryStore

SCHEMA = """\
classification secrecy {
    levels low < high
    categories none
    cleared: user
}

classification sensitivity {
    levels public < confidential
    categories pii
    cleared: user
}

definition user {}

definition doc {
    relation viewer: user | user:*
    relation label: secrecy | sensitivity
    lineage derived_from: doc
    permission vacuous = cleared(secrecy)
    permission by_clearance = vacuous & cleared(sensitivity)
    permission by_viewer = viewer & cleared
    permission by_upstream = viewer & upstream(by_viewer)
}
"""

USERS = ["user:ann", "user:bob", "user:cy"]


@pytest.fixture()
def engine() -> Engine:
    engine = Engine(MemoryStore())
    engine.write_schema(SCHEMA)
    engine.touch("doc:a#label@sensitivity:confidential", "sensitivity:confidential#cleared@user:ann",
                 "secrecy:high#cleared@user:cy", "doc:b#viewer@user:*", "doc:b#label@sensitivity:confidential",
                 "doc:c#viewer@user:bob", "doc:c#viewer@user:ann", "doc:c#derived_from@doc:a",
                 "doc:a#viewer@user:ann")
    return engine


@pytest.mark.parametrize("resource", ["doc:a", "doc:b", "doc:c"])
@pytest.mark.parametrize("permission", ["by_clearance", "by_viewer", "by_upstream"])
def test_lookup_subjects_equals_checks(engine: Engine, resource: str, permission: str) -> None:
    results = engine.lookup_subjects(resource, permission, "user").results
    listed = {str(r.subject) for r in results}
    wildcard = next((r for r in results if str(r.subject) == "user:*"), None)
    for user in USERS:
        allowed = engine.check(resource, permission, user).allowed
        shown = user in listed or (wildcard is not None and user not in {str(s) for s in wildcard.excluded})
        assert shown == allowed, (resource, permission, user)


def test_a_vacuous_branch_still_finds_the_cleared(engine: Engine) -> None:
    # doc:a needs no secrecy clearance (no secrecy label): `vacuous` holds for everyone; ann is cleared confidential
    assert [str(r.subject) for r in engine.lookup_subjects("doc:a", "by_clearance", "user").results] == ["user:ann"]
