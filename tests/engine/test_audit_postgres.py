"""The audit trail on PostgreSQL (issue 16): the decision log and change history in the store's own database.

- an audited PostgreSQL engine records decisions and changes in the database's `audit_*` tables, where they
  are queried back, pruned and verified;
- two engines over one database (two pools, as two servers) appending at once form ONE chain that verifies;
- tampering in the database (an edited record, a removed tail, the log deleted, rolled back or replaced) is
  named by verify and refused at open, exactly as on SQLite, until acknowledged;
- a write whose record another server still has on its way is waited for, not called a break;
- `headwater audit verify|query|export|acknowledge --db postgresql://...` work on it;
- the queries use the indexes.

Each test gets its own migrated database (dropped at the end of the run).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from headwater.engine import Config, Engine
from headwater.engine.audit import AuditLog, RecordKind
from headwater.engine.audit.sql_storage import AuditStorage
from headwater.engine.cli import main
from headwater.engine.errors import AuditTrailBrokenError, ConfigError, StoreError
from headwater.engine.store.postgres import PostgresStore, migrate

from tests.conftest import Clock

SCHEMA = "definition user {}\n\ndefinition doc {\n    relation viewer: user\n    permission view = viewer\n}\n"


@pytest.fixture(autouse=True)
def _no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEADWATER_AUDIT_KEY", raising=False)


@pytest.fixture
def db(pg_server) -> str:
    """A new database, migrated (store and audit tables)."""
    uri = pg_server.database()
    migrate(uri)
    return uri


def _sql(uri: str, statement: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(uri, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def _audited(uri: str, clock: Clock | None = None, **settings: object) -> Engine:
    """An audited engine over ``uri``: #1 schema (revision 1), #2 relationships (revision 2), #3 and #4 decisions."""
    engine = Engine(PostgresStore(uri, pool_size=4), config=Config.of(audit=True, **settings),
                    clock=clock or Clock())
    engine.write_schema(SCHEMA, actor="user:admin")
    engine.touch("doc:1#viewer@user:ann", actor="user:admin", reason="seed")
    engine.check("doc:1", "view", "user:ann")
    engine.check("doc:1", "view", "user:bob")
    return engine


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_an_audited_engine_keeps_decisions_and_changes_in_its_database(db: str) -> None:
    clock = Clock()
    with _audited(db, clock) as engine:
        assert engine.audit is not None and engine.audit.path is None and engine.audit_path is None
        assert [(r.id, r.kind.value) for r in engine.audit.query().records] == [
            (1, "schema"), (2, "relationships"), (3, "decision"), (4, "decision")]
        rows = _sql(db, "SELECT id, kind, subject, result, revision FROM audit_records ORDER BY id")
        assert rows == [(1, "schema", None, None, 1), (2, "relationships", None, None, 2),
                        (3, "decision", "user:ann", "HAS_PERMISSION", 2), (4, "decision", "user:bob", "NO_PERMISSION", 2)]
        denied = engine.audit.query(kind="decision", result="NO_PERMISSION").records
        assert [(r.id, r.subject) for r in denied] == [(4, "user:bob")]
        assert engine.audit.query(actor="user:admin", revision=2).records[0].kind is RecordKind.RELATIONSHIPS
        page = engine.audit.query(limit=3, newest_first=True)
        assert [r.id for r in page.records] == [4, 3, 2] and page.cursor is not None
        assert [r.id for r in engine.audit.query(limit=3, newest_first=True, cursor=page.cursor).records] == [1]
        # The store names its log and how far the chain had come when the write began.
        metadata = engine.store.revision_metadata(2)
        assert metadata["audit_log"] == engine.audit.log_id and metadata["audit_count"] == "1"
        assert _sql(db, "SELECT log_id FROM audit_identity") == [(engine.audit.log_id,)]
        assert str(engine.audit_verify()).startswith("ok: 4 records verified, head #4")

        clock.now += timedelta(days=30)
        engine.check("doc:1", "view", "user:ann")
        checkpoint = engine.audit.prune(clock.now - timedelta(days=1))
        assert checkpoint is not None and checkpoint.id == 4 and checkpoint["pruned"] == 4
        assert [r.kind.value for r in engine.audit.query().records] == ["checkpoint", "decision"]
        assert engine.audit_verify().ok
        log_id = engine.audit.log_id
    with Engine.open(db) as engine:  # not asked for: the store's binding keeps its log
        assert engine.audit is not None and engine.audit.log_id == log_id and engine.audit_verify().ok


def test_two_servers_appending_at_once_form_one_chain(db: str) -> None:
    with _audited(db):
        pass
    engines = [Engine.open(db, config=Config.of(audit=True)) for _ in range(2)]  # two pools: two servers
    rounds, errors = 12, []

    def work(engine: Engine, name: str) -> None:
        try:
            for n in range(rounds):
                engine.touch(f"doc:{name}{n}#viewer@user:{name}", actor=f"user:{name}", reason="race")
                engine.check(f"doc:{name}{n}", "view", f"user:{name}", caller=name)
                engine.check("doc:1", "view", "user:ann", caller=name)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(engine, f"s{e}t{t}"))
               for e, engine in enumerate(engines) for t in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for engine in engines:
        engine.close()
    assert errors == []

    with Engine.open(db) as engine:
        result = engine.audit_verify()
        expected = 4 + len(threads) * rounds * 3
        assert result.ok and result.records == expected and result.count == expected, str(result)
        records = list(engine.audit.iterate())
    assert [r.id for r in records] == list(range(1, expected + 1))
    assert all(b.prev_hash == a.hash for a, b in zip(records, records[1:]))
    writes = [r for r in records if r.kind is RecordKind.RELATIONSHIPS]
    assert sorted(r.revision for r in writes) == list(range(2, 3 + len(threads) * rounds))  # one per revision
    callers = {r.caller for r in records if r.kind is RecordKind.DECISION}
    assert callers == {None} | {f"s{e}t{t}" for e in range(2) for t in range(2)}
    # Both servers' records are interleaved in the one chain, not in two runs.
    servers = [r.caller[:2] for r in records if r.kind is RecordKind.DECISION and r.caller]
    assert sum(1 for a, b in zip(servers, servers[1:]) if a != b) > 1


def test_a_record_edited_in_the_database_is_named_by_verify(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    with _audited(db):
        pass
    code, out, _ = _cli(capsys, "audit", "verify", "--db", db)
    assert code == 0 and out.startswith("ok: 4 records verified, head #4"), out

    _sql(db, "UPDATE audit_records SET body = replace(body, '\"NO_PERMISSION\"', '\"HAS_PERMISSION\"') WHERE id = 4")
    assert _sql(db, "SELECT result FROM audit_records WHERE id = 4") == [("HAS_PERMISSION",)]  # no second copy
    with pytest.raises(psycopg.errors.GeneratedAlways):
        _sql(db, "UPDATE audit_records SET result = 'NO_PERMISSION' WHERE id = 4")
    code, out, _ = _cli(capsys, "audit", "verify", "--db", db)
    assert code == 1 and out.strip() == "record 4: altered: its content no longer matches its hash"
    assert str(Engine.verify_audit_trail(db)) == "record 4: altered: its content no longer matches its hash"

    _sql(db, "UPDATE audit_records SET body = replace(body, '\"HAS_PERMISSION\"', '\"NO_PERMISSION\"') WHERE id = 4")
    assert Engine.verify_audit_trail(db).ok


def test_a_removed_tail_is_detected(db: str) -> None:
    with _audited(db):
        pass
    moved = _sql(db, "DELETE FROM audit_records WHERE id = 3 RETURNING id, body, prev_hash, hash")
    assert str(Engine.verify_audit_trail(db)) == "record 3: removed: #4 links to a record that is no longer in the log"
    _sql(db, "INSERT INTO audit_records (id, body, prev_hash, hash) VALUES (%s, %s, %s, %s)", moved[0])
    assert Engine.verify_audit_trail(db).ok

    _sql(db, "DELETE FROM audit_records WHERE id >= 3")  # the decisions after the store's last change
    result = Engine.verify_audit_trail(db)
    assert not result.ok and result.record_id == 3
    assert str(result).startswith("record 3: removed from the tail: the log ends at #2 but its head says 4")

    _sql(db, "DELETE FROM audit_records WHERE id = 2")  # and the record of the store's last change
    _sql(db, "UPDATE audit_head SET count = 1, hash = (SELECT hash FROM audit_records WHERE id = 1)")
    started = time.monotonic()
    with pytest.raises(AuditTrailBrokenError, match="the log has no record of the store's revision 2"):
        Engine.open(db)  # waited for a record that could be on its way first
    assert time.monotonic() - started >= 1.5
    assert "has no record of the store's revision 2" in str(Engine.verify_audit_trail(db))


def test_a_deleted_log_is_refused_at_open_until_acknowledged(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    with _audited(db) as engine:
        old_id = engine.audit.log_id
    _sql(db, "TRUNCATE audit_records, audit_head, audit_identity")
    for config in (None, Config.of(audit=True)):  # with or without auditing asked for
        with pytest.raises(AuditTrailBrokenError) as refused:
            Engine.open(db, config=config)
        message = str(refused.value)
        assert f"audit log {old_id}" in message and f"there is no audit log in {db}" in message
        assert f"headwater audit acknowledge --db {db} --by NAME --reason TEXT" in message
    assert _sql(db, "SELECT count(*) FROM audit_identity") == [(0,)]  # no chain started behind the operator's back
    code, out, _ = _cli(capsys, "audit", "verify", "--db", db)
    assert code == 1 and f"but there is no audit log in {db}" in out

    code, out, _ = _cli(capsys, "audit", "acknowledge", "--db", db, "--by", "user:ops", "--reason", "INC-9")
    assert code == 0 and out.startswith("acknowledged: #1 ") and "acknowledgement" in out, out
    with Engine.open(db) as engine:
        assert engine.audit_verify().ok and engine.audit.log_id != old_id
        record = engine.audit.get(1)
        assert (record.kind, record["previous_log"], record["actor"]) == (RecordKind.ACKNOWLEDGEMENT, old_id, "user:ops")
        engine.check("doc:1", "view", "user:ann")
    code, out, _ = _cli(capsys, "audit", "acknowledge", "--db", db, "--by", "user:ops", "--reason", "again")
    assert code == 0 and out.startswith("nothing to acknowledge")


def test_a_log_behind_or_replaced_is_refused(db: str) -> None:
    with _audited(db) as engine:
        engine.audit.flush()
        engine.touch("doc:2#viewer@user:ann", actor="user:admin")  # #5, its revision saw the head at #4
    head = _sql(db, "SELECT count, hash FROM audit_head")[0]
    # Rolled back to an older copy: the log ends before the head the store's last write saw.
    _sql(db, "DELETE FROM audit_records WHERE id >= 3")
    _sql(db, "UPDATE audit_head SET count = 2, hash = (SELECT hash FROM audit_records WHERE id = 2)")
    with pytest.raises(AuditTrailBrokenError, match="the log now ends at record #2: it was rolled back"):
        Engine.open(db)
    assert "rolled back" in str(Engine.verify_audit_trail(db)) and head[0] == 5

    # Replaced: another log (a fresh identity) is not the one the store names.
    _sql(db, "TRUNCATE audit_records, audit_head, audit_identity")
    AuditLog(db).close()  # `headwater audit init` on the emptied tables
    with pytest.raises(AuditTrailBrokenError, match="is another log"):
        Engine.open(db)

    # Records left without an identity cannot be acknowledged away: they are evidence, set aside first.
    _sql(db, "DELETE FROM audit_identity")
    _sql(db, "INSERT INTO audit_records (id, body, prev_hash, hash) VALUES (1, '{}', '', '')")
    with pytest.raises(AuditTrailBrokenError, match=r"cannot be used .*TRUNCATE audit_records"):
        Engine.acknowledge_audit_break(db, by="user:ops", reason="INC-10")


def test_a_write_whose_record_another_server_has_on_its_way_is_waited_for(db: str) -> None:
    with _audited(db):
        pass
    server_b = Engine.open(db, config=Config.of(audit=True))
    try:
        # Server B commits a write (its revision names the log) and its record is still on its way.
        assert server_b.audit is not None
        revision = server_b.store.write([], metadata={"actor": "user:b", **server_b.audit.revision_metadata()})

        def late_record() -> None:
            time.sleep(0.5)
            server_b.audit.record_relationships(time=datetime.now(UTC), operation="write", actor="user:b",
                                                reason=None, revision=revision, token="t", changes=[])
            server_b.audit.flush()

        thread = threading.Thread(target=late_record)
        thread.start()
        started = time.monotonic()
        with Engine.open(db) as server_a:  # not a break: the record arrives within the wait
            assert time.monotonic() - started >= 0.4
            assert server_a.audit_verify().ok
        thread.join()
    finally:
        server_b.close()


def test_a_signed_log_needs_its_key(db: str, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with _audited(db, audit_key="k3y-0123456789"):
        pass
    with pytest.raises(ConfigError, match="is signed"):
        Engine.open(db)
    code, out, _ = _cli(capsys, "audit", "verify", "--db", db)
    assert code == 1 and "signed" in out
    monkeypatch.setenv("HEADWATER_AUDIT_KEY", "k3y-0123456789")
    code, out, _ = _cli(capsys, "audit", "verify", "--db", db)
    assert code == 0 and out.startswith("ok: 4 records verified")


def test_the_audit_commands_take_a_uri(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "audit", "query", "--db", db)
    assert code == 2  # no log yet
    code, out, _ = _cli(capsys, "audit", "init", "--db", db)
    assert code == 0 and out.startswith(f"{db}: audit log started (0 records)")
    code, out, _ = _cli(capsys, "audit", "init", "--db", db)
    assert code == 0 and "already an audit log" in out
    with Engine.open(db) as engine:  # a log in the database is kept, as a log beside a SQLite file is
        assert engine.audit is not None and engine.audit.query().records == []
    with _audited(db):
        pass
    code, out, err = _cli(capsys, "audit", "query", "--db", db, "--kind", "decision", "--subject", "user:bob")
    assert code == 0 and out.splitlines()[0].startswith("#4 ") and "NO_PERMISSION" in out and "1 record" in err
    code, out, err = _cli(capsys, "audit", "export", "-", "--db", db, "--kind", "relationships")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [line["id"] for line in lines] == [2] and lines[0]["actor"] == "user:admin"
    code, out, _ = _cli(capsys, "audit", "anchor", "--db", db)
    assert code == 0 and json.loads(out)["sequence"] == 4
    code, out, _ = _cli(capsys, "audit", "replay", "4", "--db", db)
    assert code == 0 and "same answer: NO_PERMISSION" in out, out
    code, out, _ = _cli(capsys, "audit", "prune", "--db", db, "--before", "2100-01-01T00:00:00Z")
    assert code == 0 and out.startswith("pruned 4 records; checkpoint #4"), out
    code, out, _ = _cli(capsys, "audit", "verify", "--db", db)
    assert code == 0 and out.startswith("ok: 1 records verified, head #4"), out


def test_queries_use_the_indexes(db: str) -> None:
    with AuditLog(db) as log:
        start = datetime(2030, 1, 1, tzinfo=UTC)
        for n in range(4000):
            log.record_decision(time=start + timedelta(seconds=n), caller=f"c{n % 7}", resource=f"doc:{n % 500}",
                                permission="view", subject=f"user:{n % 300}", context=None,
                                result="NO_PERMISSION" if n % 4 else "HAS_PERMISSION", missing_context=(),
                                revision=n // 10, token="t", schema_digest="d", explanation=None, latency_us=1)
            if n % 50 == 0:
                log.record_relationships(time=start + timedelta(seconds=n), operation="write", actor="user:admin",
                                         reason=None, revision=n // 10, token="t", changes=[])
        log.flush()
    _sql(db, "ANALYZE audit_records")
    queries = [AuditStorage.plan(subject="user:7"), AuditStorage.plan(resource="doc:9", newest_first=True),
               AuditStorage.plan(revision=42), AuditStorage.plan(kind="relationships"),
               AuditStorage.plan(since=start + timedelta(seconds=3990)),
               AuditStorage.plan(kind="decision", subject="user:7", min_revision=100)]
    with psycopg.connect(db, autocommit=True) as conn:
        for query in queries:
            order = "DESC" if query.newest_first else "ASC"
            sql = (f"EXPLAIN SELECT id, body, prev_hash, hash FROM audit_records WHERE {query.where} "
                   f"ORDER BY id {order} LIMIT ?").replace("?", "%s")
            plan = "\n".join(row[0] for row in conn.execute(sql, [*query.params, query.limit + 1]).fetchall())
            assert "Seq Scan" not in plan and "Index" in plan, f"{query.where}\n{plan}"


def test_an_unmigrated_database_is_refused_naming_the_command(pg_server, capsys: pytest.CaptureFixture[str]) -> None:
    uri = pg_server.database()
    with pytest.raises(StoreError, match="run `headwater migrate --db"):
        AuditLog(uri)
    code, _, err = _cli(capsys, "audit", "verify", "--db", uri)
    assert code == 2 and "headwater migrate" in err
