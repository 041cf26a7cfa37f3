"""SqliteStore behaves exactly like MemoryStore: random operation sequences give identical results.

Every operation (writes with preconditions and validate hooks, deletes with limits,
reads at old revisions and other times, changes, schemas, gc, clock moves) runs on
both stores; each result, or each error's type and message, must be equal.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headwater.engine.errors import EngineError, InvalidRequestError
from headwater.engine.relationships import CaveatRef, ObjectRef, Relationship, SubjectRef
from headwater.engine.store import Operation, Precondition, Reader, RelationshipFilter, Row, Store, Update
from headwater.engine.store.memory import MemoryStore
from headwater.engine.store.sqlite import SqliteStore

START = datetime(2024, 6, 1, 12, 0, 0, tzinfo=timezone.utc)

RESOURCES = [ObjectRef("doc", "a"), ObjectRef("doc", "ab"), ObjectRef("folder", "a")]
RELATIONS = ["viewer", "editor"]
SUBJECTS = [
    SubjectRef("user", "tom"),
    SubjectRef("user", "ann"),
    SubjectRef("user", "*"),
    SubjectRef("group", "eng"),
    SubjectRef("group", "eng", "member"),
]
CAVEATS = [None, CaveatRef("cav"), CaveatRef("cav", '{"x":1}')]
EXPIRATIONS = [
    None,
    START - timedelta(days=1),  # already expired
    START + timedelta(minutes=90),  # expires once the clock has moved enough
    datetime(2323, 12, 1, tzinfo=timezone.utc),
]
NOWS = [None, START, START + timedelta(minutes=90), START + timedelta(hours=2), datetime(2400, 1, 1, tzinfo=timezone.utc)]


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


relationships = st.builds(
    Relationship,
    st.sampled_from(RESOURCES),
    st.sampled_from(RELATIONS),
    st.sampled_from(SUBJECTS),
    st.sampled_from(CAVEATS),
    st.sampled_from(EXPIRATIONS),
)
updates = st.lists(
    st.builds(Update, st.sampled_from(list(Operation)), relationships),
    min_size=1,
    max_size=8,
    unique_by=lambda update: update.relationship.key,
)
_id_choice = st.one_of(
    st.none(),
    st.none(),
    st.tuples(st.just("resource_id"), st.sampled_from(["a", "ab", "b"])),
    st.tuples(st.just("resource_id_prefix"), st.sampled_from(["a", "", "c"])),
)


@st.composite
def filters(draw: st.DrawFn) -> RelationshipFilter:
    # Each field is usually unset, so that filters match something.
    fields: dict[str, str | None] = {
        "resource_type": draw(st.sampled_from([None, None, None, "doc", "folder"])),
        "relation": draw(st.sampled_from([None, None, None, *RELATIONS])),
        "subject_type": draw(st.sampled_from([None, None, None, "user", "group"])),
        "subject_id": draw(st.sampled_from([None, None, None, "tom", "*", "eng"])),
        "subject_relation": draw(st.sampled_from([None, None, None, "...", "member"])),
    }
    id_choice = draw(_id_choice)
    if id_choice is not None:
        fields[id_choice[0]] = id_choice[1]
    return RelationshipFilter(**fields)


revisions = st.one_of(st.none(), st.none(), st.integers(min_value=-1, max_value=10))  # mostly head
limits = st.one_of(st.none(), st.integers(min_value=1, max_value=4))
keys = st.builds(lambda r: Row.of(r).key, relationships)

_OPERATIONS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "write": st.tuples(
        st.just("write"),
        updates,
        st.lists(st.builds(Precondition, filters(), st.booleans()), max_size=1) | st.just([]),
        st.sampled_from([None, None, None, "observe", "refuse"]),
    ),
    "delete": st.tuples(st.just("delete"), filters(), limits, st.booleans()),
    "read": st.tuples(st.just("read"), revisions, st.sampled_from(NOWS), filters(), st.none() | keys, limits),
    "count": st.tuples(st.just("count"), revisions, st.sampled_from(NOWS), filters()),
    # Every relationships(), subject_sets(), relationship() and reverse read the small universe allows, in one
    # snapshot.
    "probe": st.tuples(st.just("probe"), revisions, st.sampled_from(NOWS)),
    "changes": st.tuples(st.just("changes"), st.sampled_from([0, 0, 0, 1, 2, 3, -1, 12]), limits),
    "write_schema": st.tuples(st.just("write_schema"), st.sampled_from(["s1", "s2"]), st.booleans()),
    "read_schema": st.tuples(st.just("read_schema"), revisions),
    "revision_info": st.tuples(st.just("revision_info"), st.integers(min_value=-1, max_value=10)),
    "advance": st.tuples(st.just("advance"), st.sampled_from([1, 30, 60, 600])),
    "gc": st.tuples(st.just("gc"), st.sampled_from([0, 30, 120])),
}
# Writes and reads dominate, so that the stores hold enough relationships for reads to disagree.
_WEIGHTS = {"write": 8, "read": 3, "probe": 4, "changes": 3}
operations = st.sampled_from([kind for kind in _OPERATIONS for _ in range(_WEIGHTS.get(kind, 1))]).flatmap(
    _OPERATIONS.__getitem__
)


def _observe(log: list[object]) -> Any:
    def validate(reader: Reader, batch: Sequence[Update]) -> None:
        log.append((reader.revision, reader.count(RelationshipFilter()), len(batch)))

    return validate


def _refuse(reader: Reader, batch: Sequence[Update]) -> None:
    raise InvalidRequestError(f"refused {len(batch)} updates at revision {reader.revision}")


def _apply(store: Store, clock: FakeClock, op: tuple[Any, ...]) -> object:
    kind = op[0]
    if kind == "write":
        _, batch, preconditions, mode = op
        log: list[object] = []
        validate = {None: None, "observe": _observe(log), "refuse": _refuse}[mode]
        revision = store.write(batch, preconditions, validate=validate, metadata={"n": str(len(batch))})
        return revision, log
    if kind == "delete":
        _, filter, limit, allow_partial = op
        if filter.is_empty:
            filter = RelationshipFilter(resource_type="doc")
        return store.delete(filter, limit=limit, allow_partial=allow_partial)
    if kind in ("read", "count", "probe"):
        revision, now = op[1], op[2]
        with store.snapshot(revision, now=now) as reader:
            if kind == "read":
                return reader.read(op[3], after=op[4], limit=op[5])
            if kind == "count":
                return reader.count(op[3])
            return [
                *(list(reader.relationships(resource.type, resource.id, relation)) for resource in RESOURCES
                  for relation in RELATIONS),
                *(list(reader.subject_sets(resource.type, resource.id, relation)) for resource in RESOURCES
                  for relation in RELATIONS),
                *(
                    reader.relationship(resource.type, resource.id, relation, subject.type, subject.id,
                                        subject.relation or "")
                    for resource in RESOURCES
                    for relation in RELATIONS
                    for subject in SUBJECTS
                ),
                *(
                    reader.read(RelationshipFilter(resource_type=resource_type, relation=relation,
                                                   subject_type=subject.type, subject_id=subject.id,
                                                   subject_relation=subject.relation or "..."))
                    for resource_type in ("doc", "folder")
                    for relation in RELATIONS
                    for subject in SUBJECTS
                ),
            ]
    if kind == "changes":
        return store.changes(op[1], limit=op[2])
    if kind == "write_schema":
        _, text, refuse = op

        def check(reader: Reader) -> None:
            if refuse:
                raise InvalidRequestError(f"schema refused at revision {reader.revision}")

        return store.write_schema(text, f"digest-{text}", validate=check), store.schema_history()
    if kind == "read_schema":
        return store.read_schema(op[1])
    if kind == "revision_info":
        return store.revision_time(op[1]), store.revision_metadata(op[1])
    if kind == "advance":
        clock.now += timedelta(minutes=op[1])
        return clock.now
    if kind == "gc":
        return store.gc(timedelta(minutes=op[1]))
    raise AssertionError(f"unknown operation {kind}")


def _outcome(store: Store, clock: FakeClock, op: tuple[Any, ...]) -> object:
    try:
        return ("ok", _apply(store, clock, op))
    except EngineError as exc:
        return ("error", type(exc).__name__, str(exc))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations, min_size=10, max_size=40))
def test_sqlite_store_behaves_like_memory_store(ops: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        memory_clock, sqlite_clock = FakeClock(), FakeClock()
        with MemoryStore(clock=memory_clock) as memory, SqliteStore(
            Path(directory) / "headwater.db", clock=sqlite_clock
        ) as sqlite:
            for step, op in enumerate(ops):
                expected = _outcome(memory, memory_clock, op)
                actual = _outcome(sqlite, sqlite_clock, op)
                assert actual == expected, f"step {step}: {op!r}"
            final = [(s.head(), s.changes(_oldest(s)), s.schema_history()) for s in (memory, sqlite)]
            assert final[0] == final[1]


def _oldest(store: Store) -> int:
    """The oldest revision still readable (gc may have moved it)."""
    revision = store.head()
    while revision > 0:
        try:
            store.revision_time(revision - 1)
        except EngineError:
            break
        revision -= 1
    return revision
