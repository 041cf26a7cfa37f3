"""Expand and Check agree on every conformance file (SpiceDB's consistency-suite idea, for Expand).

For every file of tests/conformance/data/spicedb/{testconfigs,examples}: for every resource that appears
in its relationships, every relation and permission of the resource's type, and every subject that
appears (objects and subject sets): the subject is among Expand's terminal subjects (itself, or covered
by a `type:*` that does not exclude it) exactly when Check says HAS_PERMISSION or CONDITIONAL_PERMISSION,
and only under a caveat (`[...]`) exactly when Check says CONDITIONAL_PERMISSION (no context given).
Pairs where Check raises (e.g. a cycle through an exclusion) are skipped.

Check also counts a subject set as a member of itself wherever evaluation reaches it (``group:g#member``
has ``member`` on ``group:g``), which Expand, like SpiceDB's, does not list; so each expanded
``resource#relation`` is added as a subject of its own node before comparing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from headwater.engine import Engine, EngineError, Permissionship, RelationshipFilter, SubjectRef
from headwater.engine.expand import ExpandedSubject, ExpandNode, ExpandOperation
from headwater.engine.membership import FoundSubject, found_subjects
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


def _with_reached_sets(node: ExpandNode, parent: ExpandNode | None = None) -> ExpandNode:
    """The tree with each expanded ``resource#relation`` added as a subject of its own node (see module doc)."""
    node = replace(node, children=tuple(_with_reached_sets(c, node) for c in node.children))
    if parent is not None and (node.resource, node.name) == (parent.resource, parent.name):
        return node  # part of the parent's expression, not a separately reached relation
    itself = ExpandNode(node.resource, node.name,
                        subjects=(ExpandedSubject(SubjectRef(node.resource.type, node.resource.id, node.name), None),))
    return ExpandNode(node.resource, node.name, ExpandOperation.UNION, (replace(node, caveated=False), itself),
                      caveated=node.caveated)


def _expand_says(found: list[FoundSubject], subject: SubjectRef) -> Permissionship:
    covered = [f.covers(subject) for f in found]
    if True in covered:
        return Permissionship.HAS_PERMISSION
    if None in covered:
        return Permissionship.CONDITIONAL_PERMISSION
    return Permissionship.NO_PERMISSION


@pytest.mark.parametrize("path", validation_files(), ids=lambda p: p.relative_to(CONFORMANCE).as_posix())
def test_expand_and_check_agree(path: Path) -> None:
    engine = _load(path)
    schema = engine.schema()
    rels, _ = engine.read(RelationshipFilter())
    resources = sorted({r.resource for r in rels})
    subjects = {SubjectRef(r.subject.type, r.subject.id, r.subject.relation) for r in rels if r.subject.id != "*"}
    subjects |= {SubjectRef(r.subject.type, r.subject.id) for r in rels if r.subject.id != "*"}
    subjects |= {SubjectRef(o.type, o.id) for o in resources}
    compared = 0
    for resource in resources:
        definition = schema.definitions[resource.type]
        for name in [*definition.relations, *definition.permissions]:
            try:
                tree, _ = engine.expand(resource, name)
            except EngineError:
                continue
            found = found_subjects(_with_reached_sets(tree))
            for subject in sorted(subjects):
                try:
                    checked = engine.check(resource, name, subject).permissionship
                except EngineError:
                    continue
                assert _expand_says(found, subject) == checked, (
                    path.name, f"{resource}#{name}@{subject}", checked,
                    [f.validation_string() for f in found_subjects(tree)])
                compared += 1
    assert compared > 0
