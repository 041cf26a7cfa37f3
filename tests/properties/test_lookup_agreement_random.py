"""Check, LookupResources, LookupSubjects and Expand agree on random data (hypothesis).

Same schema and generator as the store/cache equivalence test: wildcards, exclusion,
intersection, `.all()`, nested groups with cycles, caveats (with and without
context) and expiration.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from headwater.engine import Engine, MaxDepthExceededError, Permissionship, SubjectRef
from headwater.engine.membership import found_subjects
from headwater.engine.store.memory import MemoryStore

from .test_check_equivalence import CHECKS, CONTEXTS, NOW, SCHEMA, SUBJECTS, relationships


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(relationships())
def test_lookups_agree_with_check(rels: list[str]) -> None:
    clock = lambda: NOW  # noqa: E731
    engine = Engine(MemoryStore(clock=clock), clock=clock)
    engine.write_schema(SCHEMA)
    if rels:
        engine.touch(*rels)
    for context in CONTEXTS:
        for resource, permission in CHECKS:
            type_name = resource.split(":")[0]
            for subject_text in SUBJECTS:
                subject = SubjectRef(*subject_text.replace("#", ":").split(":")) if "#" in subject_text else \
                    SubjectRef(*subject_text.split(":"))
                try:
                    check = engine.check(resource, permission, subject, context=context)
                except MaxDepthExceededError:
                    continue
                try:
                    lr = {r.resource_id: r for r in
                          engine.lookup_resources(type_name, permission, subject, context=context).results}
                    ls = engine.lookup_subjects(resource, permission, subject.type, subject.relation,
                                                context=context).results
                except MaxDepthExceededError:
                    continue
                rid = resource.split(":")[1]
                if check.permissionship is Permissionship.NO_PERMISSION:
                    assert rid not in lr, (resource, permission, subject_text, context)
                else:
                    assert lr[rid].permissionship == check.permissionship
                    assert lr[rid].missing_context == check.missing_context
                got = Permissionship.NO_PERMISSION
                own = [r for r in ls if r.subject == subject]
                wild = [r for r in ls if r.subject.id == "*" and subject.relation is None and subject not in r.excluded]
                if own:
                    got = own[0].permissionship
                elif wild:
                    got = wild[0].permissionship
                assert got == check.permissionship, (resource, permission, subject_text, context, ls)
                try:
                    found = found_subjects(engine.expand(resource, permission, context=context)[0])
                except MaxDepthExceededError:
                    continue
                covered = any(f.covers(subject) is not False for f in found) or subject.relation is not None and any(
                    f.subject == subject for f in found)
                # Expand lists a subject set only where a relationship names it; Check also counts a set as a
                # member of itself. Compare plain subjects exactly, subject sets one way.
                if subject.relation is None:
                    assert covered == (check.permissionship is not Permissionship.NO_PERMISSION), (
                        "expand", resource, permission, subject_text, context, [f.validation_string() for f in found])
