"""Cursored reads, export, import and watch (engine/streams.py), through the Engine and the CLI."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from headwater.engine import (
    AlreadyExistsError,
    Consistency,
    Engine,
    InvalidRelationshipError,
    InvalidRequestError,
    LimitExceededError,
    Operation,
    RelationshipFilter,
    RevisionUnavailableError,
    parse_relationship,
)
from headwater.engine.cli import main
from headwater.engine.consistency import decode_token, encode_token
from headwater.engine.store.memory import MemoryStore
from headwater.engine.store.sqlite import SqliteStore
from headwater.engine.streams import ImportFailedError, ImportProgress

SCHEMA = """
definition user {}
definition group {
    relation member: user | group | group#member
}
definition doc {
    relation viewer: user | user:* | group | group#member
    relation editor: user
    permission view = viewer + editor
}
"""

# Deliberately out of order, with ids that sort differently as text and as numbers,
# subject sets next to plain subjects, and a wildcard.
DATA = [
    "doc:doc-2#viewer@user:ann",
    "doc:doc-10#viewer@user:ann",
    "doc:doc-1#viewer@group:eng#member",
    "doc:doc-1#viewer@group:eng",
    "doc:doc-1#viewer@user:*",
    "doc:doc-1#viewer@user:bob",
    "doc:doc-1#editor@user:cat",
    "doc:doc-1#viewer@user:ann",
    "group:eng#member@user:ann",
    "group:eng#member@group:ops#member",
    "group:ops#member@user:dan",
    "doc:doc-3#viewer@user:ann",
    "doc:doc-3#editor@user:ann",
]
SORTED = [
    "doc:doc-1#editor@user:cat",
    "doc:doc-1#viewer@group:eng",
    "doc:doc-1#viewer@group:eng#member",
    "doc:doc-1#viewer@user:*",
    "doc:doc-1#viewer@user:ann",
    "doc:doc-1#viewer@user:bob",
    "doc:doc-10#viewer@user:ann",
    "doc:doc-2#viewer@user:ann",
    "doc:doc-3#editor@user:ann",
    "doc:doc-3#viewer@user:ann",
    "group:eng#member@group:ops#member",
    "group:eng#member@user:ann",
    "group:ops#member@user:dan",
]


@pytest.fixture(params=["memory", "sqlite"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "streams.db")
    with Engine(store) as e:
        e.write_schema(SCHEMA)
        e.touch(*DATA)
        yield e


def _texts(rels) -> list[str]:
    return [str(r) for r in rels]


def _all_pages(engine: Engine, f: RelationshipFilter | None, size: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = engine.read_relationships(f, limit=size, cursor=cursor)
        pages.append(_texts(page.relationships))
        cursor = page.cursor
        if cursor is None:
            return pages


# ------------------------------------------------------------------ read_relationships


def test_listing_is_in_key_order_with_no_subject_relation_first(engine: Engine) -> None:
    page = engine.read_relationships()
    assert _texts(page.relationships) == SORTED
    assert page.cursor is None
    assert page.token == engine.read(RelationshipFilter())[1]


@pytest.mark.parametrize("f", [None, RelationshipFilter(resource_type="doc"),
                               RelationshipFilter(resource_type="doc", resource_id="doc-1"),
                               RelationshipFilter(subject_type="user", subject_id="ann"),
                               RelationshipFilter(resource_type="group", subject_relation="member"),
                               RelationshipFilter(resource_id_prefix="doc-1")],
                         ids=str)
def test_every_page_size_concatenates_to_the_listing_exactly_once(engine: Engine,
                                                                  f: RelationshipFilter | None) -> None:
    full = _texts(engine.read_relationships(f).relationships)
    assert full == [r for r in SORTED if (f or RelationshipFilter()).matches(parse_relationship(r))]
    for size in range(1, len(full) + 2):
        pages = _all_pages(engine, f, size)
        assert [r for p in pages for r in p] == full, size
        assert all(len(p) == size for p in pages[:-1]), size
        assert 0 < len(pages[-1]) <= size or full == []


def test_an_exactly_full_last_page_has_no_cursor(engine: Engine) -> None:
    page = engine.read_relationships(limit=len(SORTED))
    assert len(page.relationships) == len(SORTED) and page.cursor is None


def test_every_page_reads_the_revision_of_the_first(engine: Engine) -> None:
    first = engine.read_relationships(limit=4)
    assert _texts(first.relationships) == SORTED[:4]
    engine.touch("doc:doc-0#viewer@user:zed", "doc:doc-15#viewer@user:zed", "group:zzz#member@user:zed")
    engine.remove("doc:doc-2#viewer@user:ann", "doc:doc-1#editor@user:cat")
    rest, cursor, tokens = [], first.cursor, set()
    while cursor is not None:
        page = engine.read_relationships(limit=4, cursor=cursor)
        rest += _texts(page.relationships)
        tokens.add(page.token)
        cursor = page.cursor
    assert _texts(first.relationships) + rest == SORTED
    assert tokens == {first.token}
    # A new listing sees the new revision.
    assert "doc:doc-2#viewer@user:ann" not in _texts(engine.read_relationships().relationships)


def test_consistency_selects_the_snapshot(engine: Engine) -> None:
    before = engine.read_relationships().token
    engine.touch("doc:doc-9#viewer@user:ann")
    old = engine.read_relationships(consistency=Consistency.at_exact_snapshot(before))
    assert _texts(old.relationships) == SORTED and old.token == before


def test_cursor_misuse_is_refused(engine: Engine) -> None:
    f = RelationshipFilter(resource_type="doc")
    cursor = engine.read_relationships(f, limit=2).cursor
    assert cursor is not None
    with pytest.raises(InvalidRequestError, match="different query"):
        engine.read_relationships(RelationshipFilter(resource_type="group"), limit=2, cursor=cursor)
    with pytest.raises(InvalidRequestError, match="different query"):
        engine.read_relationships(None, limit=2, cursor=cursor)
    with pytest.raises(InvalidRequestError, match="malformed cursor"):
        engine.read_relationships(f, limit=2, cursor="hwc1_notacursor")
    with pytest.raises(InvalidRequestError, match="malformed cursor"):
        engine.read_relationships(f, limit=2, cursor=cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:])
    with pytest.raises(InvalidRequestError, match="different query"):  # a LookupResources cursor
        other = engine.lookup_resources("doc", "view", "user:ann", limit=1).cursor
        assert other is not None
        engine.read_relationships(f, limit=2, cursor=other)
    for bad in (0, -1, True, "2"):
        with pytest.raises(InvalidRequestError, match="limit"):
            engine.read_relationships(f, limit=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="RelationshipFilter"):
        engine.read_relationships({"resource_type": "doc"})  # type: ignore[arg-type]
    # The page size may change between pages: the cursor belongs to the filter, not the size.
    assert len(engine.read_relationships(f, limit=5, cursor=cursor).relationships) == 5


def _clocked() -> tuple[Engine, list[datetime]]:
    now = [datetime(2030, 1, 1, tzinfo=UTC)]
    engine = Engine(MemoryStore(clock=lambda: now[0]), clock=lambda: now[0])
    engine.write_schema(SCHEMA)
    return engine, now


def test_a_cursor_from_a_collected_revision_is_unavailable() -> None:
    engine, now = _clocked()
    engine.touch("doc:doc-1#viewer@user:ann", "doc:doc-2#viewer@user:ann")
    cursor = engine.read_relationships(limit=1).cursor
    assert cursor is not None
    now[0] += timedelta(hours=2)
    engine.remove("doc:doc-2#viewer@user:ann")
    now[0] += timedelta(hours=2)
    engine.store.gc(timedelta(hours=1))
    with pytest.raises(RevisionUnavailableError):
        engine.read_relationships(limit=1, cursor=cursor)


# ------------------------------------------------------------------ export


def test_export_streams_one_revision_while_writes_happen(engine: Engine) -> None:
    export = engine.export_relationships(batch_size=3)
    token = export.token
    pages = export.pages()
    first = next(pages)
    assert _texts(first) == SORTED[:3]
    engine.touch("doc:doc-0#viewer@user:zed", "doc:doc-99#viewer@user:zed", "group:zzz#member@user:zed")
    engine.remove(*SORTED[5:9])
    rest = [r for page in pages for r in page]
    assert _texts(first + rest) == SORTED
    assert export.token == token and export.revision == decode_token(token) < engine.store.head()
    assert [len(p) for p in export.pages()] == [3, 3, 3, 3, 1]  # iterating again: the same revision
    assert _texts(export) == SORTED


def test_export_filter_and_token() -> None:
    engine = Engine(MemoryStore())
    engine.write_schema(SCHEMA)
    written = engine.touch(*DATA[:3])
    export = engine.export_relationships(RelationshipFilter(resource_type="doc", resource_id_prefix="doc-1"))
    assert export.token == written.token
    assert _texts(export) == ["doc:doc-1#viewer@group:eng#member", "doc:doc-10#viewer@user:ann"]
    with pytest.raises(InvalidRequestError, match="batch_size"):
        engine.export_relationships(batch_size=0)
    assert list(Engine(_empty_with_schema()).export_relationships()) == []


def _empty_with_schema() -> MemoryStore:
    store = MemoryStore()
    Engine(store).write_schema(SCHEMA)
    return store


# ------------------------------------------------------------------ import


def _count(engine: Engine) -> int:
    return len(engine.read(RelationshipFilter())[0])


def test_import_writes_batches_and_reports_progress() -> None:
    engine = Engine(MemoryStore())
    engine.write_schema(SCHEMA)
    seen: list[ImportProgress] = []
    lines = [f"doc:d{i}#viewer@user:u{i}\n" for i in range(10)]
    result = engine.import_relationships(iter(lines), batch_size=4, progress=seen.append, actor="loader",
                                         reason="backfill")
    assert (result.count, result.batches) == (10, 3)
    assert [(p.batches, p.relationships) for p in seen] == [(1, 4), (2, 8), (3, 10)]
    assert all(p.seconds >= 0 and p.rate > 0 for p in seen)
    assert seen[-1].token == result.token and result.seconds >= seen[-1].seconds
    revisions = [engine.store.head() - 2, engine.store.head() - 1, engine.store.head()]
    assert [p.token for p in seen] == [encode_token(r) for r in revisions]
    assert engine.store.revision_metadata(revisions[0]) == {"actor": "loader", "reason": "backfill"}
    assert _count(engine) == 10


def test_a_bad_line_in_batch_two_leaves_batch_one_committed_and_nothing_of_batch_two() -> None:
    engine = Engine(MemoryStore())
    engine.write_schema(SCHEMA)
    lines = ["doc:a#viewer@user:1", "// comment", "doc:a#viewer@user:2", "", "doc:a#viewer@user:3",
             "doc:b#viewer@user:4", "doc:b#viewer@user:5", "doc:b#viewer@not a subject", "doc:b#viewer@user:6"]
    with pytest.raises(ImportFailedError) as info:
        engine.import_relationships(lines, batch_size=3)
    e = info.value
    assert (e.batch, e.line, e.committed, e.committed_batches) == (2, 8, 3, 1)
    assert isinstance(e.cause, InvalidRelationshipError)
    assert e.token == engine.read(RelationshipFilter())[1]
    assert "line 8 (batch 2)" in str(e) and "batch 1 stays committed (3 relationships" in str(e)
    assert "nothing of batch 2 was written" in str(e)
    assert _texts(engine.read(RelationshipFilter())[0]) == ["doc:a#viewer@user:1", "doc:a#viewer@user:2",
                                                            "doc:a#viewer@user:3"]


def test_a_relationship_the_schema_refuses_names_its_line() -> None:
    engine = Engine(MemoryStore())
    engine.write_schema(SCHEMA)
    lines = ["doc:a#viewer@user:1", "doc:a#viewer@user:2", "doc:b#viewer@user:3", "doc:b#owner@user:4"]
    with pytest.raises(ImportFailedError) as info:
        engine.import_relationships(lines, batch_size=2)
    assert (info.value.batch, info.value.line, info.value.committed) == (2, 4, 2)
    assert "relation `owner` not found" in str(info.value)
    assert _count(engine) == 2


def test_an_existing_relationship_is_an_error_naming_it() -> None:
    engine = Engine(MemoryStore())
    engine.write_schema(SCHEMA)
    engine.touch("doc:b#viewer@user:3")
    with pytest.raises(ImportFailedError) as info:
        engine.import_relationships(["doc:a#viewer@user:1", "doc:b#viewer@user:3"])
    assert isinstance(info.value.cause, AlreadyExistsError)
    assert (info.value.batch, info.value.line, info.value.committed) == (1, 2, 0)
    assert "doc:b#viewer@user:3" in str(info.value) and "nothing was committed" in str(info.value)
    assert _count(engine) == 1


def test_a_repeated_relationship_is_an_error_within_and_across_batches() -> None:
    engine = Engine(MemoryStore())
    engine.write_schema(SCHEMA)
    with pytest.raises(ImportFailedError, match=r"appears twice \(lines 1 and 3\)"):
        engine.import_relationships(["doc:a#viewer@user:1", "doc:a#viewer@user:2", "doc:a#viewer@user:1"])
    assert _count(engine) == 0
    with pytest.raises(ImportFailedError) as info:
        engine.import_relationships(["doc:a#viewer@user:1", "doc:a#viewer@user:2", "doc:a#viewer@user:1"],
                                    batch_size=2)
    assert (info.value.batch, info.value.line) == (2, 3) and isinstance(info.value.cause, AlreadyExistsError)


def test_import_arguments_and_empty_input() -> None:
    engine = Engine(MemoryStore())
    engine.write_schema(SCHEMA)
    with pytest.raises(LimitExceededError, match="max_import_batch"):
        engine.import_relationships([], batch_size=100_001)
    assert engine.import_relationships([], batch_size=5_000).count == 0  # a batch may hold more than a write
    with pytest.raises(InvalidRequestError, match="batch_size"):
        engine.import_relationships([], batch_size=0)
    with pytest.raises(ImportFailedError, match="must be a Relationship"):
        engine.import_relationships([42])  # type: ignore[list-item]
    result = engine.import_relationships(["", "// nothing"])
    assert (result.count, result.batches, result.token) == (0, 0, encode_token(engine.store.head()))
    rel = parse_relationship("doc:a#viewer@user:1")
    assert engine.import_relationships([rel]).count == 1


# ------------------------------------------------------------------ watch


def test_watch_orders_changes_and_resumes() -> None:
    engine = Engine(MemoryStore())
    start = engine.write_schema(SCHEMA).token
    engine.touch("doc:b#viewer@user:2", "doc:a#viewer@user:1")
    engine.write_schema(SCHEMA + "\ndefinition extra {}")  # a revision without relationship changes
    engine.remove("doc:a#viewer@user:1")
    engine.touch("doc:b#viewer@user:2")  # touching again: an update, reported as TOUCH
    events = engine.watch(start)
    assert [(e.revision, e.operation, str(e.relationship)) for e in events] == [
        (2, Operation.TOUCH, "doc:a#viewer@user:1"),
        (2, Operation.TOUCH, "doc:b#viewer@user:2"),
        (4, Operation.DELETE, "doc:a#viewer@user:1"),
        (5, Operation.TOUCH, "doc:b#viewer@user:2"),
    ]
    first = engine.watch(start, limit=1)  # whole revisions only: revision 2 comes whole
    assert len(first) == 2
    assert engine.watch(first[-1].token) == events[2:]
    assert engine.watch(events[-1].token) == []
    with pytest.raises(InvalidRequestError, match="limit"):
        engine.watch(start, limit=0)
    with pytest.raises(InvalidRequestError, match="malformed"):
        engine.watch("not-a-token")


def test_watch_from_a_collected_revision_names_the_oldest_to_resume_from() -> None:
    engine, now = _clocked()  # revision 1: the schema
    engine.touch("doc:a#viewer@user:1")  # 2
    now[0] += timedelta(hours=2)
    engine.remove("doc:a#viewer@user:1")  # 3
    engine.touch("doc:a#viewer@user:2")  # 4
    now[0] += timedelta(hours=2)
    engine.touch("doc:a#viewer@user:3")  # 5
    # The newest revision committed before now - 1h (revision 4) becomes the oldest kept one.
    engine.store.gc(timedelta(hours=1))
    for gone in (1, 3):
        with pytest.raises(RevisionUnavailableError) as info:
            engine.watch(encode_token(gone))
        assert info.value.oldest == 4 and info.value.revision == gone
        assert "garbage-collected" in str(info.value)
        assert f"the oldest revision to resume from is 4 (token {encode_token(4)})" in str(info.value)
    assert [(e.revision, str(e.relationship)) for e in engine.watch(encode_token(4))] == [
        (5, "doc:a#viewer@user:3")]
    with pytest.raises(RevisionUnavailableError, match="newest revision is 5"):
        engine.watch(encode_token(9))


def test_follow_yields_new_changes_until_stopped() -> None:
    engine = Engine(MemoryStore())
    start = engine.write_schema(SCHEMA).token
    engine.touch("doc:a#viewer@user:1")
    stop = threading.Event()
    got: list[str] = []

    def writer() -> None:
        time.sleep(0.05)
        engine.touch("doc:a#viewer@user:2")
        time.sleep(0.05)
        engine.remove("doc:a#viewer@user:1")

    thread = threading.Thread(target=writer)
    thread.start()
    for event in engine.follow(start, poll_interval=0.01, stop=stop, timeout=10):
        got.append(f"{event.operation.name} {event.relationship}")
        if len(got) == 3:
            stop.set()
    thread.join()
    assert got == ["TOUCH doc:a#viewer@user:1", "TOUCH doc:a#viewer@user:2", "DELETE doc:a#viewer@user:1"]
    started = time.monotonic()
    assert list(engine.follow(engine.read(RelationshipFilter())[1], poll_interval=0.01, timeout=0.1)) == []
    assert time.monotonic() - started < 5
    # Bad arguments fail at the call, not at the first poll.
    with pytest.raises(InvalidRequestError, match="malformed"):
        engine.follow("nope")
    with pytest.raises(InvalidRequestError, match="poll_interval"):
        engine.follow(start, poll_interval=-1)


# ------------------------------------------------------------------ CLI


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_export_import_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schema = tmp_path / "s.zed"
    schema.write_text(SCHEMA)
    src, dst, dump, again = (str(tmp_path / n) for n in ("src.db", "dst.db", "dump.txt", "again.txt"))
    assert _cli(capsys, "schema", "write", str(schema), "--db", src)[0] == 0
    assert _cli(capsys, "relationships", "touch", "--db", src, *DATA)[0] == 0
    code, out, err = _cli(capsys, "export", "--db", src, dump)
    assert code == 0 and out == "" and f"exported {len(DATA)} relationships at hw1_" in err
    assert Path(dump).read_text().splitlines() == SORTED
    assert _cli(capsys, "schema", "write", str(schema), "--db", dst)[0] == 0
    code, out, err = _cli(capsys, "import", dump, "--db", dst, "--batch-size", "5")
    assert code == 0, err
    assert out.startswith(f"imported {len(DATA)} relationships in 3 batches (")
    assert err.splitlines()[0].startswith("batch 1: 5 relationships, 1 batch, ")  # not a terminal: one line per batch
    assert len(err.splitlines()) == 3
    assert _cli(capsys, "export", "--db", dst, again)[0] == 0
    assert Path(again).read_text() == Path(dump).read_text()
    code, out, _ = _cli(capsys, "export", "--db", dst, "--resource-type", "group")
    assert out.splitlines() == [r for r in SORTED if r.startswith("group:")]


def test_cli_import_bad_line_exits_1_naming_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schema = tmp_path / "s.zed"
    schema.write_text(SCHEMA)
    db = str(tmp_path / "x.db")
    rels = tmp_path / "rels.txt"
    rels.write_text("doc:a#viewer@user:1\ndoc:a#viewer@user:2\n\n// batch 2\ndoc:a#viewer@user:3\ndoc:a#nope@user:4\n")
    _cli(capsys, "schema", "write", str(schema), "--db", db)
    code, out, err = _cli(capsys, "import", str(rels), "--db", db, "--batch-size", "2")
    assert code == 1
    assert f"{rels}:6: import failed at line 6 (batch 2)" in err
    assert "batch 1 stays committed (2 relationships" in err
    code, out, _ = _cli(capsys, "relationships", "read", "--db", db)
    assert out.splitlines() == ["doc:a#viewer@user:1", "doc:a#viewer@user:2"]
    assert _cli(capsys, "import", str(tmp_path / "missing.txt"), "--db", db)[0] == 2
    assert _cli(capsys, "import", str(rels), "--db", db, "--batch-size", "100001")[0] == 2  # over max_import_batch


def test_cli_read_pages_and_watch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schema = tmp_path / "s.zed"
    schema.write_text(SCHEMA)
    db = str(tmp_path / "x.db")
    _cli(capsys, "schema", "write", str(schema), "--db", db)
    _cli(capsys, "relationships", "touch", "--db", db, *DATA)
    listed, cursor = [], None
    while True:
        code, out, err = _cli(capsys, "relationships", "read", "--db", db, "--page-size", "5",
                              *(["--cursor", cursor] if cursor else []))
        assert code == 0
        listed += out.splitlines()
        lines = [ln for ln in err.splitlines() if ln.startswith("next page: --cursor ")]
        if not lines:
            break
        cursor = lines[0].split()[-1]
    assert listed == SORTED
    assert _cli(capsys, "relationships", "read", "--db", db, "--page-size", "2", "--limit", "3")[0] == 2
    assert _cli(capsys, "relationships", "read", "--db", db, "--cursor", "hwc1_bad")[0] == 2

    _cli(capsys, "relationships", "delete", "--db", db, "doc:doc-2#viewer@user:ann")
    code, out, err = _cli(capsys, "watch", "--db", db, "--after", encode_token(2))
    assert code == 0 and out.splitlines() == [f"{encode_token(3)} DELETE doc:doc-2#viewer@user:ann"]
    assert f"1 change; resume with --after {encode_token(3)}" in err
    code, out, _ = _cli(capsys, "watch", "--db", db, "--after", encode_token(1), "--follow", "--timeout", "0.2",
                        "--poll-interval", "0.05")
    assert code == 0 and len(out.splitlines()) == len(DATA) + 1
    code, _, err = _cli(capsys, "watch", "--db", db, "--after", encode_token(40))
    assert code == 2 and "newest revision is 3" in err


def test_module_examples_run() -> None:
    import doctest

    import headwater.engine.streams

    result = doctest.testmod(headwater.engine.streams, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
