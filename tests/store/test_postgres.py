"""PostgresStore runs the store contract, plus what only a shared, migrated database can get wrong."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from contract import FakeClock, StoreContract

from headwater.engine.store import Store
from headwater.engine.store.postgres import PostgresStore
from tests.conftest import pg_truncate


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def make_store(self, pg_database: str) -> Callable[[FakeClock], Store]:
        def make(clock: FakeClock) -> Store:
            pg_truncate(pg_database)
            return PostgresStore(pg_database, clock=clock, pool_size=4)
        return make


# --- what only PostgreSQL can get wrong ---------------------------------------------------------------------

import threading  # noqa: E402
from datetime import timedelta  # noqa: E402

import psycopg  # noqa: E402
from contract import touch  # noqa: E402

from headwater.engine import Engine  # noqa: E402
from headwater.engine.errors import StoreError, StoreUnavailableError  # noqa: E402
from headwater.engine.store import RelationshipFilter  # noqa: E402
from headwater.engine.store.postgres import migrate  # noqa: E402


@pytest.fixture
def fresh(pg_server) -> str:
    """A new, unmigrated database."""
    return pg_server.database()


def _explained(uri: str, queries: list[tuple[str, tuple]], generic: bool) -> list[str]:
    plans = []
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f"SET plan_cache_mode = {'force_generic_plan' if generic else 'force_custom_plan'}")
        cur = psycopg.RawCursor(conn)
        for sql, params in queries:
            plan = "\n".join(row[0] for row in cur.execute(f"EXPLAIN {sql}", params).fetchall())
            plans.append(f"{sql}\n{plan}")
    return plans


def test_no_read_of_the_evaluator_scans_the_relationships_table(pg_database: str) -> None:
    pg_truncate(pg_database)
    with PostgresStore(pg_database) as store:
        for start in range(0, 20_000, 1_000):
            store.write([touch(f"doc:d{n}#viewer@user:u{n % 500}") for n in range(start, start + 500)]
                        + [touch(f"doc:d{n}#viewer@group:g{n % 50}#member") for n in range(start + 500, start + 1_000)])
        for n in range(100):  # a large object: read with per-question queries
            store.write([touch(f"folder:big#viewer@user:b{n}_{k}") for k in range(10)])
        with psycopg.connect(pg_database, autocommit=True) as conn:
            conn.execute("ANALYZE relationships")
        recorded: list[tuple[str, tuple]] = []
        with store.backend.snapshot(None, store.now()) as reader:  # type: ignore[attr-defined]
            real = reader._execute  # type: ignore[attr-defined]

            def spy(sql: str, params: tuple) -> object:
                recorded.append((sql, tuple(params)))
                return real(sql, params)

            reader._execute = spy  # type: ignore[attr-defined]
            reader.prefetch([("doc", "d1"), ("doc", "d2"), ("folder", "big")])
            reader.prefetch_lineage("doc", "d3", ["derived_from", "viewer"])
            reader.relationships("doc", "d7", "viewer")
            reader.relationships("folder", "big", "viewer")
            reader.subject_sets("folder", "big", "viewer")
            reader.relationship("folder", "big", "viewer", "user", "b3_4", "")
            reader.read(RelationshipFilter(resource_type="doc", relation="viewer", subject_type="user",
                                           subject_id="u7", subject_relation="..."), limit=100)
            page = reader.read(RelationshipFilter(resource_type="doc", relation="viewer", subject_type="user",
                                                  subject_id="u7", subject_relation="..."), limit=3)
            reader.read(RelationshipFilter(resource_type="doc", relation="viewer", subject_type="user",
                                           subject_id="u7", subject_relation="..."), after=page[-1].key, limit=3)
            reader.read(RelationshipFilter(subject_type="group", subject_id="g3"), limit=10)
            reader.read(RelationshipFilter(resource_type="doc", resource_id="d9"))
            reader.read(RelationshipFilter(resource_type="doc", resource_id_prefix="d12"), limit=10)
            reader.count(RelationshipFilter(resource_type="doc", resource_id="d9", relation="viewer"))
    # One prefetch, one lineage prefetch, the object read of d7 (big is known to be large), three questions to big,
    # seven listings.
    assert len(recorded) == 13, [sql for sql, _ in recorded]
    for generic in (False, True):
        for plan in _explained(pg_database, recorded, generic):
            assert "Seq Scan on relationships" not in plan, plan


def test_an_unmigrated_database_is_refused_naming_the_command(fresh: str) -> None:
    with pytest.raises(StoreError, match=r"is not migrated; run `headwater migrate --db postgresql://"):
        PostgresStore(fresh)
    with pytest.raises(StoreError, match="headwater migrate"):
        Engine.open(fresh)


def test_migrate_is_idempotent_and_a_dry_run_changes_nothing(fresh: str) -> None:
    planned = Engine.migrate(fresh, dry_run=True)
    assert planned.kind == "postgresql" and planned.dry_run and [v for v, _ in planned.steps] == [1, 2, 3]
    with pytest.raises(StoreError, match="not migrated"):
        PostgresStore(fresh)  # the dry run applied nothing
    assert [v for v, _ in Engine.migrate(fresh).steps] == [1, 2, 3]
    assert Engine.migrate(fresh).steps == ()
    assert Engine.migrate(fresh, dry_run=True).steps == ()
    PostgresStore(fresh).close()


def test_a_database_migrated_by_a_newer_headwater_is_refused(fresh: str) -> None:
    migrate(fresh)
    with psycopg.connect(fresh, autocommit=True) as conn:
        conn.execute("INSERT INTO headwater_migrations (version, name, applied_at) VALUES (99, 'future', now())")
    with pytest.raises(StoreError, match="newer Headwater"):
        PostgresStore(fresh)
    with pytest.raises(StoreError, match="newer Headwater"):
        Engine.migrate(fresh)


def test_a_password_never_appears_in_errors(fresh: str) -> None:
    secret = "s3cret-Pa55"
    bad = fresh.replace("postgresql://", f"postgresql://nobody_here:{secret}@").rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(StoreUnavailableError) as caught:
        PostgresStore(bad)
    assert secret not in str(caught.value) and "nobody_here:***@" in str(caught.value)
    with pytest.raises(StoreUnavailableError) as caught:
        PostgresStore(f"postgresql://127.0.0.1:1/x?user=a&password={secret}")
    assert secret not in str(caught.value) and "password=***" in str(caught.value)


def test_an_exhausted_pool_is_a_clear_error_not_a_hang(pg_database: str) -> None:
    pg_truncate(pg_database)
    with PostgresStore(pg_database, pool_size=1, pool_timeout=0.3) as store:
        errors: list[BaseException] = []
        with store.snapshot():
            def other() -> None:
                try:
                    with store.snapshot():
                        pass
                except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
                    errors.append(exc)
            thread = threading.Thread(target=other)
            thread.start()
            thread.join(10)
        assert not thread.is_alive()
        assert len(errors) == 1 and isinstance(errors[0], StoreUnavailableError)
        assert "pool of 1 connections is exhausted" in str(errors[0])
        with store.snapshot() as reader:  # the connection is back
            revision = reader.revision
        assert revision == store.head() == 0


def test_a_statement_over_the_timeout_is_cancelled_and_reported(pg_database: str) -> None:
    pg_truncate(pg_database)
    with PostgresStore(pg_database, statement_timeout=0.2) as store:
        db = store.backend.db  # type: ignore[attr-defined]
        with pytest.raises(StoreUnavailableError, match="cancelled the statement"):
            with db.transaction("sleep") as conn:
                conn.execute("SELECT pg_sleep(2)")
        assert store.head() == 0  # the pool recovered its connection


def test_two_stores_over_one_database_see_each_others_writes_and_never_share_a_revision(pg_database: str) -> None:
    pg_truncate(pg_database)
    with PostgresStore(pg_database) as a, PostgresStore(pg_database) as b:
        revisions: list[int] = []
        lock = threading.Lock()

        def write(store: Store, who: str) -> None:
            for n in range(20):
                revision = store.write([touch(f"doc:{who}{n}#viewer@user:tom")])
                with lock:
                    revisions.append(revision)
        threads = [threading.Thread(target=write, args=(s, w)) for s, w in ((a, "a"), (b, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(revisions) == list(range(1, 41))
        assert a.head() == b.head() == 40
        with b.snapshot() as reader:
            assert reader.count(RelationshipFilter(resource_type="doc")) == 40
        assert [c.revision for c in a.changes(0)] == list(range(1, 41))
        times = [a.revision_time(r) for r in range(41)]
        assert times == sorted(times)
        assert b.gc(timedelta(0)) == 0  # nothing was deleted; every revision before the head is forgotten
        with a.snapshot(40) as reader:
            assert reader.count(RelationshipFilter(resource_type="doc")) == 40


def test_gc_finds_expired_relationships_through_their_index(pg_database: str) -> None:
    """The garbage collector's delete of expired relationships reads the partial index of migration 3 (with
    statistics over 20,000 live relationships, 50 of them expiring), in custom and generic plans."""
    from headwater.engine.store.postgres import GC_EXPIRED

    pg_truncate(pg_database)
    with PostgresStore(pg_database) as store:
        for start in range(0, 20_000, 1_000):
            store.write([touch(f"doc:e{n}#viewer@user:u{n % 500}") for n in range(start, start + 1_000)])
        store.write([touch(f"doc:x{n}#viewer@user:v{n}[expiration:2099-01-01T00:00:00Z]") for n in range(50)])
        with psycopg.connect(pg_database, autocommit=True) as conn:
            conn.execute("ANALYZE relationships")
    for generic in (False, True):
        (plan,) = _explained(pg_database, [(GC_EXPIRED.replace("%s", "$1", 1).replace("%s", "$2", 1),
                                            (4_000_000_000_000_000, 3))], generic)
        assert "Seq Scan on relationships" not in plan and "relationships_expiring" in plan, plan
