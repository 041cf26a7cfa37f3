"""The one SQLite helper (engine/sqlitedb.py): connections, transactions, translated errors, migrations."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from headwater.engine.errors import StoreError, StoreUnavailableError, WriteConflictError
from headwater.engine.sqlitedb import Migration, SqliteFile, transaction

NOTES = (
    Migration(1, "notes", ("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE)",)),
    Migration(2, "note authors", ("ALTER TABLE notes ADD COLUMN author TEXT",)),
)


def _file(tmp_path: Path, **options: object) -> SqliteFile:
    return SqliteFile(tmp_path / "notes.db", name="the notes file", **options)  # type: ignore[arg-type]


def test_connections_are_in_wal_mode_with_the_asked_synchronous_and_no_implicit_transactions(tmp_path: Path) -> None:
    for synchronous, level in (("FULL", 2), ("NORMAL", 1)):
        f = SqliteFile(tmp_path / f"{synchronous}.db", name="the notes file", synchronous=synchronous,
                       busy_timeout=1.5)
        with f.connection() as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert db.execute("PRAGMA synchronous").fetchone()[0] == level
            assert db.execute("PRAGMA busy_timeout").fetchone()[0] == 1500
            assert db.isolation_level is None
        f.close()
    with pytest.raises(ValueError, match="synchronous"):
        SqliteFile(tmp_path / "x.db", name="x", synchronous="OFF")


def test_a_thread_reuses_its_idle_connection_and_gets_a_second_one_while_it_holds_one(tmp_path: Path) -> None:
    f = _file(tmp_path)
    with f.connection() as first:
        pass
    with f.connection() as again:
        assert again is first
        with f.connection() as nested:
            assert nested is not first
    seen: list[sqlite3.Connection] = []

    def other_thread() -> None:
        with f.connection() as db:
            seen.append(db)

    t = threading.Thread(target=other_thread)
    t.start()
    t.join()
    assert seen and seen[0] is not first
    f.close()


def test_checkin_rolls_back_an_open_transaction(tmp_path: Path) -> None:
    f = _file(tmp_path)
    f.migrate(NOTES, table="notes_migrations")
    db, idle = f.checkout()
    db.execute("BEGIN")
    db.execute("INSERT INTO notes (text) VALUES ('left open')")
    f.checkin(db, idle)
    assert not db.in_transaction
    with f.connection() as db:
        assert db.execute("SELECT count(*) FROM notes").fetchone()[0] == 0
    f.close()


def test_close_closes_every_connection_and_the_file_refuses_new_ones(tmp_path: Path) -> None:
    f = _file(tmp_path)
    with f.connection() as db:
        pass
    f.close(optimize=True)
    assert f.closed
    with pytest.raises(sqlite3.ProgrammingError):
        db.execute("SELECT 1")
    with pytest.raises(StoreError, match=r"the notes file at .* is closed"):
        f.checkout()
    f.close()  # idempotent


def test_a_transaction_commits_or_rolls_back_on_any_exception(tmp_path: Path) -> None:
    f = _file(tmp_path)
    f.migrate(NOTES, table="notes_migrations")
    with f.connection() as db:
        with transaction(db, "BEGIN IMMEDIATE"):
            db.execute("INSERT INTO notes (text) VALUES ('kept')")
        with pytest.raises(KeyboardInterrupt), transaction(db, "BEGIN IMMEDIATE"):
            db.execute("INSERT INTO notes (text) VALUES ('dropped')")
            raise KeyboardInterrupt
        assert not db.in_transaction
        assert db.execute("SELECT text FROM notes").fetchall() == [("kept",)]


def test_busy_becomes_store_unavailable_naming_the_action_and_the_file(tmp_path: Path) -> None:
    holder = _file(tmp_path)
    holder.migrate(NOTES, table="notes_migrations")
    impatient = _file(tmp_path, busy_timeout=0.05)
    with holder.connection() as db, transaction(db, "BEGIN IMMEDIATE"):
        db.execute("INSERT INTO notes (text) VALUES ('writing')")
        with impatient.connection() as other:
            with pytest.raises(StoreUnavailableError) as info, impatient.translated("add a note"), \
                    transaction(other, "BEGIN IMMEDIATE"):
                pass
    assert str(info.value).startswith(f"cannot add a note: the notes file at {tmp_path / 'notes.db'} is busy (")
    assert str(info.value).endswith("; retry later")
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    holder.close()
    impatient.close()


def test_translation_of_each_kind_of_driver_error(tmp_path: Path) -> None:
    f = _file(tmp_path)
    f.migrate(NOTES, table="notes_migrations")
    with f.connection() as db:
        db.execute("INSERT INTO notes (text) VALUES ('once')")
        with pytest.raises(WriteConflictError, match="cannot add a note: a concurrent change conflicts with it at "
                                                     "the notes file at .* \\(UNIQUE constraint failed"):
            with f.translated("add a note"):
                db.execute("INSERT INTO notes (text) VALUES ('once')")
        with pytest.raises(StoreError, match=r"cannot read: the notes file at .* failed \(no such table: nope\)"):
            with f.translated("read"):
                db.execute("SELECT * FROM nope")
    f.close()
    locked = sqlite3.OperationalError("database is locked")
    plain = _file(tmp_path, busy_advice="", conflicts=False, corruption=False)
    assert str(plain.translate(locked, "write")) == f"cannot write: the notes file at {plain.path} is busy " \
                                                     "(database is locked)"
    conflict = plain.translate(sqlite3.IntegrityError("UNIQUE constraint failed: notes.text"), "write")
    assert type(conflict) is StoreError and "failed (UNIQUE" in str(conflict)


def test_a_file_that_is_not_a_database_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_bytes(b"this is not a database, just text " * 200)
    with pytest.raises(StoreError, match="cannot open the notes file: the notes file at .* is not a database or is "
                                         "corrupted"):
        _file(tmp_path).migrate(NOTES, table="notes_migrations")
    with pytest.raises(StoreError, match="cannot load notes: the notes file at .* failed"):
        _file(tmp_path, corruption=False, open_action="load notes").migrate(NOTES, table="notes_migrations")


def test_migrations_are_applied_once_in_order_and_recorded(tmp_path: Path) -> None:
    f = _file(tmp_path)
    seeded: list[int] = []

    def seed(db: sqlite3.Connection) -> None:
        seeded.append(1)
        if db.execute("SELECT count(*) FROM notes").fetchone()[0] == 0:
            db.execute("INSERT INTO notes (text, author) VALUES ('first', 'ann')")

    f.migrate(NOTES[:1], table="notes_migrations", stamp=lambda: "then")
    f.migrate(NOTES, table="notes_migrations", then=seed, stamp=lambda: "now")
    f.migrate(NOTES, table="notes_migrations", then=seed)  # nothing left to apply
    with f.connection() as db:
        assert db.execute("SELECT version, name, applied_at FROM notes_migrations ORDER BY version").fetchall() == [
            (1, "notes", "then"), (2, "note authors", "now")]
        assert db.execute("SELECT text, author FROM notes").fetchall() == [("first", "ann")]
    assert seeded == [1, 1]
    f.close()


def test_a_failed_migration_leaves_nothing_behind(tmp_path: Path) -> None:
    broken = (*NOTES, Migration(3, "broken", ("CREATE TABLE tags (x)", "CREATE TABLE tags (y)")))
    f = _file(tmp_path)
    with pytest.raises(StoreError, match="cannot open the notes file: .* failed .*already exists"):
        f.migrate(broken, table="notes_migrations")
    with f.connection() as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall() == []
    f.close()


def test_a_file_written_by_a_newer_version_is_refused(tmp_path: Path) -> None:
    f = _file(tmp_path)
    f.migrate(NOTES, table="notes_migrations")
    f.close()
    older = _file(tmp_path)
    with pytest.raises(StoreError) as info:
        older.migrate(NOTES[:1], table="notes_migrations")
    assert str(info.value) == (f"cannot open the notes file at {tmp_path / 'notes.db'}: it was written by a newer "
                               "Headwater (table layout version 2; this version knows up to 1); upgrade Headwater")
    with pytest.raises(StoreError, match=r"^cannot open .*: layout 2 > 1$"):
        older.migrate(NOTES[:1], table="notes_migrations", newer="layout {applied} > {latest}")
    older.close()


def test_another_programs_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE accounts (id INTEGER)")
    other.commit()
    other.close()
    f = _file(tmp_path)
    with pytest.raises(StoreError) as info:
        f.migrate(NOTES, table="notes_migrations")
    assert str(info.value) == (f"cannot open the notes file at {path}: it is a database of something else "
                               "(tables ['accounts']), not a Headwater store")
    with f.connection() as db:
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["accounts"]
    f.close()
