"""What the topic suites of the store contract share: the fake clock, builders, the data set, fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone

import pytest
from headwater.engine.relationships import ObjectRef, Relationship, SubjectRef, parse_relationship
from headwater.engine.store import (
    Change,
    Operation,
    Reader,
    RelationshipFilter,
    Row,
    Store,
    Update,
)

__all__ = [
    "ContractBase",
    "DATASET",
    "DOC1",
    "EVERYTHING",
    "FILTER_CASES",
    "FakeClock",
    "SORTED_DATASET",
    "START",
    "assert_reads_agree",
    "changes_text",
    "create",
    "delete",
    "found",
    "read_all",
    "rel",
    "resources",
    "texts",
    "touch",
]

START = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def rel(text: str) -> Relationship:
    return parse_relationship(text)


def create(text: str) -> Update:
    return Update(Operation.CREATE, rel(text))


def touch(text: str) -> Update:
    return Update(Operation.TOUCH, rel(text))


def delete(text: str) -> Update:
    return Update(Operation.DELETE, rel(text))


def texts(found: Sequence[Row | Relationship] | Iterator[Row | Relationship]) -> list[str]:
    """Rows (or relationships) as relationship text."""
    return [str(r.relationship() if isinstance(r, Row) else r) for r in found]


def found(reader: Reader, resource: ObjectRef, relation: str, subject_type: str, subject_id: str,
          subject_relation: str | None) -> list[Row]:
    """``reader.relationship()`` as a list of zero or one row."""
    row = reader.relationship(resource.type, resource.id, relation, subject_type, subject_id, subject_relation or "")
    return [] if row is None else [row]


def assert_reads_agree(reader: Reader, doc: ObjectRef, relations: list[str],
                       subjects: list[tuple[str, str, str | None]]) -> None:
    """The evaluator's three reads agree: ``subject_sets`` is the subject sets of ``relationships``, and
    ``relationship`` finds exactly the row ``relationships`` lists for that subject."""
    for relation in relations:
        every = list(reader.relationships(doc.type, doc.id, relation))
        assert list(reader.subject_sets(doc.type, doc.id, relation)) == [r for r in every if r.subject_relation]
        for st, sid, srel in subjects:
            assert found(reader, doc, relation, st, sid, srel) == [
                r for r in every if (r.subject_type, r.subject_id, r.subject_relation) == (st, sid, srel or "")]


def resources(reader: Reader, resource_type: str, relation: str, subject: SubjectRef) -> list[Row]:
    """The reverse read of a lookup: relationships of ``resource_type#relation`` naming exactly ``subject``."""
    return reader.read(RelationshipFilter(resource_type=resource_type, relation=relation, subject_type=subject.type,
                                          subject_id=subject.id, subject_relation=subject.relation or "..."))


def read_all(store: Store, revision: int | None = None, *, now: datetime | None = None) -> list[str]:
    with store.snapshot(revision, now=now) as reader:
        return texts(reader.read(RelationshipFilter()))


def changes_text(changes: list[Change]) -> list[tuple[int, str, str]]:
    return [(c.revision, c.operation.value, str(c.relationship)) for c in changes]


DOC1 = ObjectRef("doc", "1")
EVERYTHING = RelationshipFilter()

# A small data set for filter, ordering and pagination tests, written in scrambled order.
DATASET = [
    "doc:readme#viewer@user:tom",
    "doc:1#viewer@group:eng#member",
    "doc:1#viewer@user:*",
    "doc:1#editor@user:ann",
    "doc:1#viewer@group:eng",
    "doc:10#viewer@user:tom",
    "doc:2#viewer@group:eng#owner",
    "folder:root#viewer@user:tom",
    "doc:1#viewer@user:tom",
    "doc:re#owner@user:tom",
    "doc:1#viewer@group:eng2#member",
]
SORTED_DATASET = [
    "doc:1#editor@user:ann",
    "doc:1#viewer@group:eng",
    "doc:1#viewer@group:eng#member",
    "doc:1#viewer@group:eng2#member",
    "doc:1#viewer@user:*",
    "doc:1#viewer@user:tom",
    "doc:10#viewer@user:tom",
    "doc:2#viewer@group:eng#owner",
    "doc:re#owner@user:tom",
    "doc:readme#viewer@user:tom",
    "folder:root#viewer@user:tom",
]

FILTER_CASES = [
    (RelationshipFilter(resource_type="folder"), ["folder:root#viewer@user:tom"]),
    (RelationshipFilter(resource_type="doc", resource_id="1", relation="editor"), ["doc:1#editor@user:ann"]),
    (
        RelationshipFilter(resource_id_prefix="1"),
        [r for r in SORTED_DATASET if r.startswith(("doc:1#", "doc:10#"))],
    ),
    (
        RelationshipFilter(resource_type="doc", resource_id_prefix="re"),
        ["doc:re#owner@user:tom", "doc:readme#viewer@user:tom"],
    ),
    (RelationshipFilter(resource_id_prefix="readme"), ["doc:readme#viewer@user:tom"]),
    (RelationshipFilter(resource_id_prefix="x"), []),
    (RelationshipFilter(resource_type="doc", resource_id="1"), [r for r in SORTED_DATASET if r.startswith("doc:1#")]),
    (
        RelationshipFilter(resource_type="doc", resource_id="1", subject_type="user"),
        [r for r in SORTED_DATASET if r.startswith("doc:1#") and "@user:" in r],
    ),
    (RelationshipFilter(resource_type="doc"), [r for r in SORTED_DATASET if r.startswith("doc:")]),
    (RelationshipFilter(relation="owner"), ["doc:re#owner@user:tom"]),
    (
        RelationshipFilter(subject_type="group"),
        [
            "doc:1#viewer@group:eng",
            "doc:1#viewer@group:eng#member",
            "doc:1#viewer@group:eng2#member",
            "doc:2#viewer@group:eng#owner",
        ],
    ),
    (
        RelationshipFilter(subject_type="group", subject_id="eng"),
        ["doc:1#viewer@group:eng", "doc:1#viewer@group:eng#member", "doc:2#viewer@group:eng#owner"],
    ),
    (
        RelationshipFilter(subject_relation="member"),
        ["doc:1#viewer@group:eng#member", "doc:1#viewer@group:eng2#member"],
    ),
    (
        RelationshipFilter(subject_type="group", subject_relation="..."),
        ["doc:1#viewer@group:eng"],
    ),
    (RelationshipFilter(subject_id="*"), ["doc:1#viewer@user:*"]),
    (RelationshipFilter(resource_type="nothing"), []),
    (RelationshipFilter(), SORTED_DATASET),
]


class ContractBase:
    """Behaviour tests shared by every backend; subclasses provide ``make_store``."""

    @pytest.fixture
    def make_store(self) -> Callable[[FakeClock], Store]:
        raise NotImplementedError("a backend's test class overrides the make_store fixture")

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def store(self, make_store: Callable[[FakeClock], Store], clock: FakeClock) -> Iterator[Store]:
        store = make_store(clock)
        yield store
        store.close()

    @pytest.fixture
    def loaded(self, store: Store) -> Store:
        store.write([touch(text) for text in DATASET])
        return store
