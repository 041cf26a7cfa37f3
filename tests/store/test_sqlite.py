"""SqliteStore runs the store contract, plus what only a file-backed store can get wrong."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from contract import START, FakeClock, StoreContract, read_all, touch

from headwater.engine.errors import InvalidRequestError, StoreError, StoreUnavailableError
from headwater.engine.store import Reader, RelationshipFilter, Store, StoredSchema, Update
from headwater.engine.store import migrations as store_migrations
from headwater.engine.store.sqlite import SqliteStore


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def make_store(self, tmp_path: Path) -> Callable[[FakeClock], Store]:
        return lambda clock: SqliteStore(tmp_path / "headwater.db", clock=clock)


def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "headwater.db"
    clock = FakeClock()
    with SqliteStore(path, clock=clock) as store:
        store.write([touch("doc:1#viewer@user:tom"), touch("doc:1#viewer@user:ann")], metadata={"actor": "ann"})
        clock.advance(seconds=5)
        store.write([touch("doc:1#viewer@user:tom[expiration:2323-12-01T00:00:00Z]")])
        store.write_schema("definition user {}", "d1")
    assert path.exists()
    with SqliteStore(path, clock=FakeClock(START + timedelta(days=1))) as store:
        assert store.head() == 3
        assert read_all(store, 1) == ["doc:1#viewer@user:ann", "doc:1#viewer@user:tom"]
        assert read_all(store) == ["doc:1#viewer@user:ann", "doc:1#viewer@user:tom[expiration:2323-12-01T00:00:00Z]"]
        assert store.revision_time(0) == START  # reopening does not restamp revision 0
        assert store.revision_time(2) == START + timedelta(seconds=5)
        assert store.revision_metadata(1) == {"actor": "ann"}
        assert store.schema_history() == [StoredSchema("definition user {}", "d1", 1, 3)]
        assert store.write([touch("doc:2#viewer@user:tom")]) == 4


def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "headwater.db"
    with SqliteStore(path) as first, SqliteStore(path) as second:
        first.write([touch("doc:1#viewer@user:tom")])
        assert second.head() == 1
        assert second.write([touch("doc:1#viewer@user:ann")]) == 2
        assert read_all(first) == ["doc:1#viewer@user:ann", "doc:1#viewer@user:tom"]


def test_threads_read_consistent_snapshots_while_another_thread_writes(tmp_path: Path) -> None:
    """Revision r holds exactly the rows doc:0..doc:(r-1); every snapshot must show a whole revision."""
    batches, rows_per_batch = 40, 25
    failures: list[str] = []
    done = threading.Event()

    with SqliteStore(tmp_path / "headwater.db") as store:

        def writer() -> None:
            try:
                for batch in range(batches):
                    store.write([touch(f"doc:{batch}#viewer@user:u{i}") for i in range(rows_per_batch)])
            except Exception as exc:  # pragma: no cover - reported below
                failures.append(f"writer: {exc!r}")
            finally:
                done.set()

        def reader() -> None:
            snapshots = 0
            try:
                while not done.is_set() or snapshots < 5:
                    with store.snapshot() as view:
                        revision = view.revision
                        total = view.count(RelationshipFilter(resource_type="doc"))
                        newest = list(view.relationships("doc", str(max(revision - 1, 0)), "viewer"))
                        if total != revision * rows_per_batch:
                            failures.append(f"revision {revision} shows {total} rows")
                        if revision and len(newest) != rows_per_batch:
                            failures.append(f"revision {revision} shows a partial batch")
                    snapshots += 1
            except Exception as exc:  # pragma: no cover - reported below
                failures.append(f"reader: {exc!r}")

        threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        assert failures == []
        assert store.head() == batches


def test_a_busy_database_raises_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "headwater.db"
    holding, release = threading.Event(), threading.Event()

    def hold_the_write_lock(reader: Reader, updates: Sequence[Update]) -> None:
        holding.set()
        release.wait(timeout=10)

    with SqliteStore(path) as slow, SqliteStore(path, busy_timeout=0.05) as impatient:
        thread = threading.Thread(target=lambda: slow.write([touch("doc:1#viewer@user:tom")], validate=hold_the_write_lock))
        thread.start()
        try:
            assert holding.wait(timeout=10)
            with pytest.raises(StoreUnavailableError) as info:
                impatient.write([touch("doc:1#viewer@user:ann")])
            assert isinstance(info.value.__cause__, sqlite3.Error)
            assert str(path) in str(info.value)
            assert read_all(impatient) == []  # readers are not blocked by the writer
        finally:
            release.set()
            thread.join(timeout=10)
        assert impatient.write([touch("doc:1#viewer@user:ann")]) == 2


def test_a_file_that_is_not_a_database_gives_a_clear_store_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not an SQLite database\n" * 200)
    with pytest.raises(StoreError) as info:
        SqliteStore(path)
    assert str(path) in str(info.value)
    assert "not a database" in str(info.value)
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_a_corrupted_database_gives_a_clear_store_error(tmp_path: Path) -> None:
    path = tmp_path / "headwater.db"
    with SqliteStore(path) as store:
        store.write([touch(f"doc:{i}#viewer@user:tom") for i in range(2000)])
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    data = bytearray(path.read_bytes())
    data[4096:] = b"\xff" * (len(data) - 4096)  # keep the header page, destroy every other page
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError) as info:
        with SqliteStore(path) as store:
            read_all(store)
    assert str(path) in str(info.value)
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_another_applications_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    conn.close()
    with pytest.raises(StoreError, match="not a Headwater store"):
        SqliteStore(path)


def test_a_missing_directory_gives_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        SqliteStore(tmp_path / "missing" / "headwater.db")
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_migrations_are_applied_once_and_a_newer_database_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "headwater.db"
    SqliteStore(path).close()
    future = store_migrations.Migration(
        store_migrations.LATEST_VERSION + 1, "a later release", ("CREATE TABLE later_feature (id INTEGER)",)
    )
    with monkeypatch.context() as patch:
        patch.setattr(store_migrations, "MIGRATIONS", (*store_migrations.MIGRATIONS, future))
        SqliteStore(path).close()  # applies the new migration to the existing file
        SqliteStore(path).close()  # a second open must not run it again ("table already exists")
    with pytest.raises(StoreError, match="newer Headwater"):
        SqliteStore(path)


def _history(store: SqliteStore) -> list[object]:
    """Everything a store answers about its data: every revision's relationships, the evaluator's reads, changes."""
    out: list[object] = []
    for revision in range(store.head() + 1):
        out.append(read_all(store, revision, now=START))
        with store.snapshot(revision, now=START) as reader:
            out.append([list(reader.relationships("doc", d, r)) for d in ("1", "2", "3") for r in ("viewer", "owner")])
            out.append(reader.relationship("doc", "1", "viewer", "user", "tom", ""))
    out.append([(c.revision, c.operation.value, str(c.relationship)) for c in store.changes(0)])
    return out


def test_a_version_2_database_is_migrated_without_losing_anything(tmp_path: Path) -> None:
    """Migration 3 rebuilds relationships as a table clustered by resource: a database written before it (with
    replaced, deleted, caveated and expiring relationships) answers exactly as before, and takes new writes."""
    clock = FakeClock()
    later = (START + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    current = SqliteStore(tmp_path / "current.db", clock=clock)
    current.write([touch("doc:1#viewer@user:tom"), touch("doc:1#viewer@group:eng#member"),
                   touch('doc:2#viewer@user:ann[level_ok:{"need":1}]'), touch(f"doc:3#owner@user:bob[expiration:{later}]")])
    current.write([touch('doc:2#viewer@user:ann[level_ok:{"need":2}]'), touch("doc:1#owner@user:tom")])
    current.delete(RelationshipFilter(resource_type="doc", resource_id="1", relation="viewer", subject_type="user"))
    current.write([touch("doc:1#viewer@user:tom")])
    current.write_schema("definition user {}", "digest-1")
    want = _history(current)
    current.close()

    # The same data in the layout of migrations 1 and 2 (what an older Headwater wrote).
    old = tmp_path / "old.db"
    db = sqlite3.connect(old, isolation_level=None)
    db.execute(store_migrations.MIGRATIONS_TABLE)
    for migration in store_migrations.MIGRATIONS[:2]:
        for statement in migration.statements:
            db.execute(statement)
        db.execute("INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01T00:00:00+00:00')",
                   [migration.version, migration.name])
    db.execute("ATTACH DATABASE ? AS cur", [str(tmp_path / "current.db")])
    columns = ("resource_type, resource_id, relation, subject_type, subject_id, subject_relation, caveat_name, "
               "caveat_context, expires_at_us, created_rev, deleted_rev")
    db.execute(f"INSERT INTO relationships ({columns}) SELECT {columns} FROM cur.relationships ORDER BY created_rev")
    db.execute("INSERT INTO revisions SELECT * FROM cur.revisions")
    db.execute("INSERT INTO schemas SELECT * FROM cur.schemas")
    db.execute("DETACH DATABASE cur")
    assert "WITHOUT ROWID" not in db.execute("SELECT sql FROM sqlite_master WHERE name = 'relationships'").fetchone()[0]
    db.close()

    migrated = SqliteStore(old, clock=clock)
    assert _history(migrated) == want
    db = sqlite3.connect(old)
    assert "WITHOUT ROWID" in db.execute("SELECT sql FROM sqlite_master WHERE name = 'relationships'").fetchone()[0]
    assert db.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] == store_migrations.LATEST_VERSION
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND "
                                            "tbl_name = 'relationships' AND name NOT LIKE 'sqlite_%'")}
    assert indexes == {"relationships_live_key", "relationships_by_subject", "relationships_by_created_rev",
                       "relationships_by_deleted_rev", "relationships_subject_sets", "relationships_expiring"}
    db.close()
    migrated.delete(RelationshipFilter(resource_type="doc", resource_id="2"))
    migrated.write([touch("doc:4#viewer@user:cy")])
    assert read_all(migrated, now=START) == ["doc:1#owner@user:tom", "doc:1#viewer@group:eng#member",
                                             "doc:1#viewer@user:tom", f"doc:3#owner@user:bob[expiration:{later}]",
                                             "doc:4#viewer@user:cy"]
    migrated.close()


def test_memory_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="MemoryStore"):
        SqliteStore(":memory:")


def test_a_store_serves_many_threads_until_it_is_closed(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "headwater.db")
    store.write([touch("doc:1#viewer@user:tom")])
    heads: list[int] = []
    threads = [threading.Thread(target=lambda: heads.append(store.head())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert heads == [1, 1, 1, 1]
    store.close()
    with pytest.raises(StoreError):
        store.head()


def test_gc_finds_expired_relationships_through_their_index(tmp_path: Path) -> None:
    """The garbage collector's delete of expired relationships reads the partial index of migration 4, never the
    whole table under the write lock."""
    from headwater.engine.store.sqlite import GC_EXPIRED

    with SqliteStore(tmp_path / "gc.db"):
        pass
    with sqlite3.connect(tmp_path / "gc.db") as conn:
        plan = " ".join(str(row[3]) for row in conn.execute(f"EXPLAIN QUERY PLAN {GC_EXPIRED}", [5, 3]))
    assert "USING INDEX relationships_expiring" in plan, plan
