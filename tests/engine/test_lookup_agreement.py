"""Check, LookupResources and LookupSubjects agree on every conformance file (SpiceDB's consistency suite idea).

For every file of tests/conformance/data/spicedb/{testconfigs,examples}: for every resource type and
permission in its schema, every object that appears in its relationships as a resource, and every
subject that appears (objects and subject sets): the resource is in LookupResources exactly when
Check says HAS or CONDITIONAL, and the subject is in LookupSubjects (itself, or covered by a
`type:*` that does not exclude it) exactly then too, with the same permissionship.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.engine import Engine, EngineError, Permissionship, SubjectRef
from headwater.engine.store.memory import MemoryStore
from headwater.engine.validationfile import load_validation_file

from tests.conformance import CONFORMANCE, validation_files

pytestmark = pytest.mark.conformance


def _load(path: Path) -> Engine:
    engine = Engine(MemoryStore())
    for doc in load_validation_file(path, root=CONFORMANCE):
        if doc.schema_text is not None:
            engine.write_schema(doc.schema_text)
        rels = [r for r, _ in doc.relationships]
        for i in range(0, len(rels), 1000):
            engine.touch(*rels[i:i + 1000])
    return engine


@pytest.mark.parametrize("path", validation_files(split_validations=False), ids=lambda p: p.relative_to(CONFORMANCE).as_posix())
def test_check_and_lookups_agree(path: Path) -> None:
    engine = _load(path)
    schema = engine.schema()
    rels, _ = engine.read(__import__("headwater.engine", fromlist=["RelationshipFilter"]).RelationshipFilter())
    objects = {r.resource for r in rels} | {SubjectRef(r.subject.type, r.subject.id) for r in rels
                                            if r.subject.id != "*"}
    objects_by_type: dict[str, set[str]] = {}
    for o in objects:
        objects_by_type.setdefault(o.type, set()).add(o.id)
    subjects = {SubjectRef(r.subject.type, r.subject.id, r.subject.relation) for r in rels if r.subject.id != "*"}
    subjects |= {SubjectRef(t, i) for t, ids in objects_by_type.items() for i in ids}
    compared = 0
    for type_name, definition in schema.definitions.items():
        names = list(definition.relations) + list(definition.permissions)
        for name in names:
            for subject in sorted(subjects, key=str):
                try:
                    lr = {r.resource_id: r for r in _all_resources(engine, type_name, name, subject)}
                except EngineError:
                    continue
                for rid in sorted(objects_by_type.get(type_name, ())):
                    try:
                        c = engine.check(f"{type_name}:{rid}", name, subject)
                    except EngineError:
                        continue
                    granted = c.permissionship is not Permissionship.NO_PERMISSION
                    assert (rid in lr) == granted, (path.name, f"{type_name}:{rid}#{name}@{subject}", c, lr.get(rid))
                    if granted:
                        assert lr[rid].permissionship == c.permissionship
                    ls = _subject_permissionship(engine, f"{type_name}:{rid}", name, subject)
                    assert ls == c.permissionship, (path.name, f"{type_name}:{rid}#{name}@{subject}", c, ls)
                    compared += 1
    assert compared > 0
    print(path.name, "compared", compared)


def _all_resources(engine: Engine, type_name: str, name: str, subject: SubjectRef):
    """Page through with a small page size so pagination is exercised too."""
    out, cursor = [], None
    while True:
        page = engine.lookup_resources(type_name, name, subject, limit=3, cursor=cursor)
        out.extend(page.results)
        cursor = page.cursor
        if cursor is None:
            return out


def _subject_permissionship(engine: Engine, resource: str, name: str, subject: SubjectRef) -> Permissionship:
    page = engine.lookup_subjects(resource, name, subject.type, subject.relation)
    assert page.cursor is None
    for r in page.results:
        if r.subject == subject:
            return r.permissionship
    for r in page.results:  # not listed itself: the wildcard's answer, unless excluded
        if r.subject.id == "*" and subject.relation is None and subject not in r.excluded:
            return r.permissionship
    return Permissionship.NO_PERMISSION
