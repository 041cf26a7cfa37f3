"""The audit trail (engine/audit/): the hash chain and every way of tampering with it, pruning with a
checkpoint, the decision policies, change history, queries and export, replay, and the CLI."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from headwater.engine import (
    BulkCheckItem,
    Config,
    Engine,
    InvalidRequestError,
    NotFoundError,
    RelationshipFilter,
    StoreError,
    StoreUnavailableError,
)
from headwater.engine.audit import (
    GENESIS,
    LISTED_CHANGES,
    AuditLog,
    RecordKind,
    audit_path_for,
    canonical_json,
    changes_digest,
    context_digest,
    record_hash,
)
from headwater.engine.cli import main
from headwater.engine.consistency import decode_token
from headwater.engine.store.memory import MemoryStore
from headwater.engine.store.sqlite import SqliteStore

REPO = Path(__file__).resolve().parents[2]
SCHEMA = """use expiration

caveat on_network(ip ipaddress, cidr string) {
    ip.in_cidr(cidr)
}

definition user {}

definition group {
    relation member: user
}

definition document {
    relation viewer: user | group#member | user with on_network | user with expiration
    permission view = viewer
}
"""
T0 = datetime(2030, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _engine(tmp_path: Path, clock: Clock | None = None, **config) -> Engine:
    clock = clock or Clock()
    store = SqliteStore(tmp_path / "h.db", clock=clock)
    engine = Engine(store, config=Config.of(audit=True, **config), clock=clock)
    engine.write_schema(SCHEMA, actor="user:admin")
    return engine


@pytest.fixture
def engine(tmp_path: Path):
    e = _engine(tmp_path)
    yield e
    e.close()


def _decisions(engine: Engine, n: int = 10) -> None:
    """n decision records: even ones allowed (user:ann), odd ones denied (user:u<i>)."""
    engine.touch("document:d#viewer@user:ann")
    for i in range(n):
        engine.check("document:d", "view", "user:ann" if i % 2 == 0 else f"user:u{i}", caller=f"c{i}")
    engine.audit.flush()


def _raw(engine: Engine) -> sqlite3.Connection:
    engine.audit.flush()
    return sqlite3.connect(engine.audit.path, isolation_level=None)


def _last_id(db: sqlite3.Connection) -> int:
    return db.execute("SELECT max(id) FROM records").fetchone()[0]


# --- the chain -----------------------------------------------------------------------------------


def test_an_untouched_log_verifies_and_every_record_chains(engine: Engine) -> None:
    _decisions(engine)
    result = engine.audit.verify()
    assert result.ok and result.record_id is None and result.problem is None
    assert result.records == result.count == 12  # schema, relationships, 10 decisions
    db = _raw(engine)
    prev = GENESIS
    for row_id, body, prev_hash, h in db.execute("SELECT id, body, prev_hash, hash FROM records ORDER BY id"):
        assert prev_hash == prev and h == record_hash(prev, body)
        content = json.loads(body)
        assert content["id"] == row_id and canonical_json(content) == body  # canonical: sorted keys, no spaces
        prev = h
    assert engine.audit.head() == (12, prev)
    assert str(result).startswith("ok: 12 records verified")


def test_an_empty_log_verifies(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "a.audit") as log:
        assert log.verify().ok and log.head() == (0, GENESIS)


def _edit(db: sqlite3.Connection) -> None:
    db.execute("UPDATE records SET body = json_set(body, '$.subject', 'user:mallory') WHERE id = 5")


def _edit_and_rehash(db: sqlite3.Connection) -> None:
    body, prev = db.execute("SELECT body, prev_hash FROM records WHERE id = 5").fetchone()
    forged = canonical_json({**json.loads(body), "subject": "user:mallory"})
    db.execute("UPDATE records SET body = ?, hash = ? WHERE id = 5", [forged, record_hash(prev, forged)])


def _delete(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM records WHERE id = 5")


def _insert(db: sqlite3.Connection) -> None:
    """Shift #5.. up by one and put a well-formed record, chained to #4, at #5."""
    for i in range(_last_id(db), 4, -1):
        db.execute("UPDATE records SET id = ? WHERE id = ?", [i + 1, i])
    prev = db.execute("SELECT hash FROM records WHERE id = 4").fetchone()[0]
    body = canonical_json({"id": 5, "kind": "decision", "time": "2030-01-01T00:00:00.000000Z", "caller": None,
                           "resource": "document:d", "permission": "view", "subject": "user:mallory",
                           "result": "HAS_PERMISSION", "revision": 2})
    db.execute("INSERT INTO records (id, body, prev_hash, hash) VALUES (5, ?, ?, ?)",
               [body, prev, record_hash(prev, body)])


def _reorder(db: sqlite3.Connection) -> None:
    a = db.execute("SELECT body, prev_hash, hash FROM records WHERE id = 5").fetchone()
    b = db.execute("SELECT body, prev_hash, hash FROM records WHERE id = 6").fetchone()
    db.execute("UPDATE records SET body = ?, prev_hash = ?, hash = ? WHERE id = 5", b)
    db.execute("UPDATE records SET body = ?, prev_hash = ?, hash = ? WHERE id = 6", a)


def _truncate(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM records WHERE id > ?", [_last_id(db) - 3])


def _append_at_tail(db: sqlite3.Connection) -> None:
    last, prev = db.execute("SELECT id, hash FROM records ORDER BY id DESC LIMIT 1").fetchone()
    body = canonical_json({"id": last + 1, "kind": "decision", "time": "2030-01-01T00:00:00.000000Z",
                           "subject": "user:mallory", "result": "HAS_PERMISSION"})
    db.execute("INSERT INTO records (id, body, prev_hash, hash) VALUES (?, ?, ?, ?)",
               [last + 1, body, prev, record_hash(prev, body)])


def _renumber(db: sqlite3.Connection) -> None:
    db.execute("UPDATE records SET id = 100 WHERE id = 12")


def _delete_first(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM records WHERE id = 1")


TAMPERING = {
    # name: (mutation, the record verify must name, a word of its message)
    "edit a field": (_edit, 5, "altered"),
    "edit a field and rehash it": (_edit_and_rehash, 5, "altered"),
    "delete a record": (_delete, 5, "removed"),
    "insert a record": (_insert, 5, "inserted"),
    "reorder two records": (_reorder, 5, "reordered"),
    "truncate the tail": (_truncate, 10, "removed from the tail"),
    "append at the tail without the head": (_append_at_tail, 13, "inserted at the tail"),
    "move the last record": (_renumber, 12, "renumbered"),
    "delete the first record": (_delete_first, 1, "removed"),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_verify_catches_tampering_and_names_the_record(engine: Engine, name: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    mutate, record_id, word = TAMPERING[name]
    _decisions(engine)
    assert engine.audit.verify().ok
    mutate(_raw(engine))
    result = engine.audit.verify()
    assert not result.ok
    assert result.record_id == record_id, result
    assert word in result.problem, result
    # the CLI: exit 1, naming the record
    assert main(["audit", "verify", "--db", str(engine.audit.path)[:-len(".audit")]]) == 1
    assert capsys.readouterr().out.startswith(f"record {record_id}: ")


def test_truncation_with_a_rewritten_head_is_caught_only_with_a_key(tmp_path: Path) -> None:
    """What the key is for: without it, whoever can write the file can also rewrite the head."""
    for key, caught in ((None, False), ("s3cret", True)):
        folder = tmp_path / str(key)
        folder.mkdir()
        engine = _engine(folder, audit_key=key)
        _decisions(engine)
        db = _raw(engine)
        _truncate(db)
        last, h = db.execute("SELECT id, hash FROM records ORDER BY id DESC LIMIT 1").fetchone()
        db.execute("UPDATE head SET count = ?, hash = ?", [last, h])
        result = engine.audit.verify()
        assert result.ok is not caught, result
        if caught:
            assert "head" in result.problem and "key" in result.problem
        engine.close()


def test_a_key_that_differs_fails_and_so_does_no_key_on_a_signed_log(tmp_path: Path) -> None:
    engine = _engine(tmp_path, audit_key="k1")
    _decisions(engine, 2)
    engine.close()
    path = audit_path_for(tmp_path / "h.db")
    with AuditLog(path, key="k2") as log:
        assert not log.verify().ok
    with AuditLog(path) as log:  # without the key a re-hashed forgery would pass: a signed log fails
        result = log.verify()
        assert not result.ok and result.record_id is None and "no key was given" in result.problem
        assert str(result).startswith("failed: the log is signed")


def test_two_writers_on_one_file_still_form_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "shared.audit"
    a, b = AuditLog(path), AuditLog(path)

    def record(log: AuditLog, who: str) -> None:
        for i in range(200):
            log.record_schema(time=T0, actor=who, revision=i, token="t", version=i, digest="d",
                              previous_digest=None, old_text=None, new_text="x")
            if i % 50 == 0:
                log.flush()

    threads = [threading.Thread(target=record, args=(log, who)) for log, who in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a.close()
    b.close()
    with AuditLog(path) as log:
        result = log.verify()
        assert result.ok and result.count == 400


# --- pruning -------------------------------------------------------------------------------------


def test_pruning_leaves_a_checkpoint_and_the_rest_still_verifies(tmp_path: Path) -> None:
    clock = Clock()
    engine = _engine(tmp_path, clock)
    _decisions(engine, 4)  # records 1..6 at T0
    clock.now = T0 + timedelta(days=2)
    _decisions(engine, 4)  # records 7..11 (a touch + 4 decisions) two days later
    head = engine.audit.head()
    checkpoint = engine.audit.prune(T0 + timedelta(days=1))
    assert checkpoint is not None and checkpoint.kind is RecordKind.CHECKPOINT
    assert checkpoint.id == 6 and checkpoint["pruned"] == 6 and checkpoint["pruned_now"] == 6
    assert checkpoint["signed"] == "sha256"
    assert engine.audit.verify().ok
    assert engine.audit.head() == head  # pruning never moves the head
    assert [r.id for r in engine.audit.query().records] == [6, 7, 8, 9, 10, 11]
    with pytest.raises(NotFoundError):
        engine.audit.get(3)
    assert engine.audit.prune(T0 + timedelta(days=1)) is None  # nothing new is that old
    # a second prune replaces the checkpoint
    clock.now = T0 + timedelta(days=4)
    _decisions(engine, 2)
    second = engine.audit.prune(T0 + timedelta(days=3))
    assert second.id == 11 and second["pruned"] == 11 and second["pruned_now"] == 5
    assert engine.audit.verify().ok
    # everything pruned: the checkpoint is the last record and still matches the head
    assert engine.audit.prune(T0 + timedelta(days=5)).id == engine.audit.head()[0]
    assert engine.audit.verify().ok
    engine.close()


def test_a_checkpoint_is_hmac_signed_with_a_key_and_tampering_with_it_is_caught(tmp_path: Path) -> None:
    clock = Clock()
    engine = _engine(tmp_path, clock, audit_key="k")
    _decisions(engine, 4)
    clock.now = T0 + timedelta(days=2)
    _decisions(engine, 2)
    checkpoint = engine.audit.prune(T0 + timedelta(days=1))
    assert checkpoint["signed"] == "hmac-sha256"
    assert engine.audit.verify().ok
    db = _raw(engine)
    db.execute("UPDATE records SET body = json_set(body, '$.pruned_now', 1) WHERE id = ?", [checkpoint.id])
    result = engine.audit.verify()
    assert not result.ok and result.record_id == checkpoint.id and "signature" in result.problem
    db.execute("DELETE FROM records WHERE id = ?", [checkpoint.id])
    result = engine.audit.verify()
    assert not result.ok and result.record_id == checkpoint.id and "removed" in result.problem
    engine.close()


def test_a_log_that_does_not_verify_is_not_pruned(engine: Engine) -> None:
    _decisions(engine)
    _edit(_raw(engine))
    with pytest.raises(StoreError, match="does not verify"):
        engine.audit.prune(T0 + timedelta(days=1))
    assert engine.audit.get(1)  # nothing was deleted


# --- recording: policies, queue, durability --------------------------------------------------------


def _decision_results(engine: Engine) -> list[str]:
    engine.audit.flush()
    return [r.result for r in engine.audit.iterate(kind="decision")]


@pytest.mark.parametrize("policy, expected", [
    ("all", ["HAS_PERMISSION", "NO_PERMISSION", "CONDITIONAL_PERMISSION"]),
    ("denials", ["NO_PERMISSION", "CONDITIONAL_PERMISSION"]),
    ("sample:1", ["HAS_PERMISSION", "NO_PERMISSION", "CONDITIONAL_PERMISSION"]),
    ("sample:0", []),
    ("off", []),
])
def test_each_decision_policy(tmp_path: Path, policy: str, expected: list[str]) -> None:
    engine = _engine(tmp_path, audit_decisions=policy)
    engine.touch('document:d#viewer@user:ann', 'document:d#viewer@user:cat[on_network:{"cidr":"10.0.0.0/8"}]')
    engine.check("document:d", "view", "user:ann")
    engine.check("document:d", "view", "user:bob")
    engine.check("document:d", "view", "user:cat")
    assert _decision_results(engine) == expected
    kinds = [r.kind for r in engine.audit.iterate()]
    assert kinds[:2] == [RecordKind.SCHEMA, RecordKind.RELATIONSHIPS]  # changes are recorded under every policy
    engine.close()


def test_sampling_records_about_its_rate(tmp_path: Path) -> None:
    engine = _engine(tmp_path, audit_decisions="sample:0.5")
    for i in range(400):
        engine.check("document:d", "view", f"user:u{i}")
    assert 120 < len(_decision_results(engine)) < 280
    engine.close()


@pytest.mark.parametrize("bad", ["some", "sample:", "sample:2", "sample:x", ""])
def test_an_invalid_policy_is_refused_when_the_engine_starts(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidRequestError, match="audit decisions policy"):
        Engine(MemoryStore(), config=Config.of(audit=True, audit_decisions=bad))
    with pytest.raises(InvalidRequestError, match="explain policy"):
        Engine(MemoryStore(), config=Config.of(audit=True, audit_explain="sometimes"))


def test_a_decision_record_has_every_field(engine: Engine) -> None:
    engine.touch('document:d#viewer@user:ann[on_network:{"cidr":"10.0.0.0/8"}]')
    result = engine.check("document:d", "view", "user:ann", context={"ip": "10.1.2.3"}, caller="svc-token")
    engine.audit.flush()
    record = engine.audit.query(kind="decision").records[0]
    assert record.body.keys() == {"id", "kind", "time", "caller", "resource", "permission", "subject",
                                  "context_sha256", "result", "missing_context", "revision", "token",
                                  "schema_digest", "explanation", "latency_us"}
    assert (record.caller, record.resource, record.permission, record.subject, record.result) == (
        "svc-token", "document:d", "view", "user:ann", "HAS_PERMISSION")
    assert record["context_sha256"] == context_digest({"ip": "10.1.2.3"}) == hashlib.sha256(
        b'{"ip":"10.1.2.3"}').hexdigest()
    assert record.revision == result.revision and record["token"] == result.token
    assert record["schema_digest"] == engine.schema().digest
    assert record["explanation"] is None and record["latency_us"] >= 0 and record.time == T0
    missing = engine.check("document:d", "view", "user:ann")
    engine.audit.flush()
    last = engine.audit.query(kind="decision", newest_first=True, limit=1).records[0]
    assert last.result == "CONDITIONAL_PERMISSION" and last["missing_context"] == list(missing.missing_context)
    assert last["context_sha256"] is None and last.caller is None


@pytest.mark.parametrize("policy, explained", [("off", set()), ("denials", {"user:bob"}),
                                               ("all", {"user:ann", "user:bob"})])
def test_the_explain_policy(tmp_path: Path, policy: str, explained: set[str]) -> None:
    engine = _engine(tmp_path, audit_explain=policy)
    engine.touch("document:d#viewer@user:ann")
    engine.check("document:d", "view", "user:ann")
    engine.check("document:d", "view", "user:bob")
    engine.audit.flush()
    records = {r.subject: r["explanation"] for r in engine.audit.iterate(kind="decision")}
    assert {s for s, e in records.items() if e} == explained
    if "user:ann" in explained:
        assert records["user:ann"] == ["granted: document:d#view for user:ann", "  by document:d#viewer@user:ann"]
    if "user:bob" in explained:
        assert records["user:bob"][0] == "denied: document:d#view for user:bob"
    engine.close()


def test_bulk_checks_record_each_answered_item_and_lookups_one_record_per_call(engine: Engine) -> None:
    engine.touch("document:a#viewer@user:ann", "document:b#viewer@user:ann", "document:b#viewer@user:bob")
    engine.check_bulk([BulkCheckItem("document:a", "view", "user:ann"),
                       BulkCheckItem("document:a", "nope", "user:ann"),  # an error: not a decision
                       BulkCheckItem("document:b", "view", "user:bob")], caller="bulk")
    page = engine.lookup_resources("document", "view", "user:ann", caller="lr")
    subjects = engine.lookup_subjects("document:b", "view", "user", caller="ls")
    engine.audit.flush()
    decisions = [(r.resource, r.subject, r.caller) for r in engine.audit.iterate(kind="decision")]
    assert decisions == [("document:a", "user:ann", "bulk"), ("document:b", "user:bob", "bulk")]
    lookups = list(engine.audit.iterate(kind="lookup"))
    assert [(r["lookup"], r["count"], r.caller) for r in lookups] == [
        ("resources", len(page.results), "lr"), ("subjects", len(subjects.results), "ls")]
    assert lookups[0]["resource_type"] == "document" and lookups[0].subject == "user:ann"
    assert lookups[1].resource == "document:b" and lookups[1]["subject_type"] == "user"


def test_lookups_are_not_recorded_under_the_denials_policy(tmp_path: Path) -> None:
    engine = _engine(tmp_path, audit_decisions="denials")
    engine.lookup_resources("document", "view", "user:ann")
    engine.audit.flush()
    assert engine.audit.query(kind="lookup").records == []
    engine.close()


def test_an_engine_without_auditing_has_no_log(tmp_path: Path) -> None:
    engine = Engine(SqliteStore(tmp_path / "h.db"))
    assert engine.audit is None
    engine.write_schema(SCHEMA)
    engine.check("document:d", "view", "user:ann", caller="x")
    engine.close()
    assert not audit_path_for(tmp_path / "h.db").exists()
    with pytest.raises(InvalidRequestError, match="no audit log"):
        Engine(MemoryStore()).replay(1)


def test_a_memory_engine_gets_a_temporary_log_removed_on_close() -> None:
    engine = Engine(MemoryStore(), config=Config.of(audit=True))
    engine.write_schema(SCHEMA)
    path = engine.audit.path
    assert path.exists()
    engine.close()
    assert not path.parent.exists()


def test_an_audited_database_stays_audited_when_opened_again(tmp_path: Path) -> None:
    _engine(tmp_path).close()
    with Engine.open(tmp_path / "h.db") as engine:
        assert engine.audit is not None
        engine.check("document:d", "view", "user:ann")
    with AuditLog(audit_path_for(tmp_path / "h.db")) as log:
        assert [r.kind.value for r in log.iterate()] == ["schema", "decision"]


def test_close_writes_what_is_queued(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.audit", flush_interval=3600)  # the writer would wait an hour
    for i in range(50):
        log.record_schema(time=T0, actor=None, revision=i, token="t", version=i, digest="d", previous_digest=None,
                          old_text=None, new_text="x")
    assert log.pending == 50
    log.close()
    with AuditLog(tmp_path / "a.audit") as again:
        assert again.head()[0] == 50 and again.verify().ok


def test_records_are_written_within_the_flush_interval(tmp_path: Path) -> None:
    with AuditLog(tmp_path / "a.audit") as log:
        log.record_schema(time=T0, actor=None, revision=1, token="t", version=1, digest="d", previous_digest=None,
                          old_text=None, new_text="x")
        start = time.monotonic()
        while log.head()[0] == 0:
            time.sleep(0.005)
        assert time.monotonic() - start < 0.1 + 0.2  # the interval, plus scheduling slack on a loaded machine


def test_a_full_queue_makes_producers_wait_and_nothing_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "a.audit"
    log = AuditLog(path, queue_size=5)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the writer cannot commit while this is held

    def produce() -> None:
        for i in range(8):
            log.record_schema(time=T0, actor=None, revision=i, token="t", version=i, digest="d",
                              previous_digest=None, old_text=None, new_text="x")

    producer = threading.Thread(target=produce)
    producer.start()
    time.sleep(0.5)
    assert producer.is_alive() and log.pending == 5  # waiting for room, not dropping
    blocker.execute("ROLLBACK")
    producer.join(10)
    assert not producer.is_alive()
    log.flush()
    assert log.head()[0] == 8 and log.verify().ok
    log.close()


def test_a_durable_check_fails_rather_than_answer_unrecorded(tmp_path: Path) -> None:
    engine = _engine(tmp_path, audit_durable=True)
    engine.audit.close()  # the same file, with a writer that gives up quickly on a locked database
    engine.audit = AuditLog(engine.audit.path, durable=True, busy_timeout=0.05)
    blocker = sqlite3.connect(engine.audit.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreUnavailableError, match="cannot be written"):
        engine.check("document:d", "view", "user:ann")
    blocker.execute("ROLLBACK")
    engine.check("document:d", "view", "user:bob")  # the log recovered: the queued record is written too
    assert [r.subject for r in engine.audit.iterate(kind="decision")] == ["user:ann", "user:bob"]
    engine.close()


# --- change history --------------------------------------------------------------------------------


def test_writes_deletes_and_imports_are_recorded_with_actor_reason_and_revision(engine: Engine) -> None:
    w = engine.touch("document:a#viewer@user:ann", "document:b#viewer@user:bob", actor="user:admin",
                     reason="ticket 42")
    engine.remove("document:b#viewer@user:bob", actor="user:admin")
    imported = engine.import_relationships([f"document:i{i}#viewer@user:u{i}" for i in range(5)], batch_size=2)
    d = engine.delete(RelationshipFilter(resource_type="document", resource_id_prefix="i"), actor="user:ops")
    records = [r for r in engine.audit.iterate(kind="relationships")]
    first = records[0]
    assert (first.revision, first["actor"], first["reason"], first["operation"], first["count"]) == (
        w.revision, "user:admin", "ticket 42", "write", 2)
    assert first["changes"] == [["touch", "document:a#viewer@user:ann"], ["touch", "document:b#viewer@user:bob"]]
    assert first["changes_sha256"] == changes_digest([("touch", "document:a#viewer@user:ann"),
                                                      ("touch", "document:b#viewer@user:bob")])
    assert records[1]["changes"] == [["delete", "document:b#viewer@user:bob"]] and records[1]["reason"] is None
    assert [r["count"] for r in records[2:5]] == [2, 2, 1] and imported.batches == 3  # one record per batch
    assert records[2]["changes"][0][0] == "create"
    last = records[5]
    assert (last["operation"], last["count"], last["actor"], last.revision) == (
        "delete", 5, "user:ops", decode_token(d.token))
    assert last["filter"] == "resource_type='document', resource_id_prefix='i'" and last["partial"] is False
    assert sorted(c[1] for c in last["changes"]) == sorted(f"document:i{i}#viewer@user:u{i}" for i in range(5))
    assert engine.audit.query(kind="relationships", min_revision=decode_token(d.token)).records == [last]


def test_a_large_batch_keeps_its_count_and_digest_only(tmp_path: Path) -> None:
    engine = _engine(tmp_path, max_updates_per_write=LISTED_CHANGES + 1)
    rels = [f"document:d{i}#viewer@user:u{i}" for i in range(LISTED_CHANGES + 1)]
    engine.touch(*rels)
    record = engine.audit.query(kind="relationships").records[0]
    assert record["changes"] is None and record["count"] == len(rels)
    assert record["changes_sha256"] == changes_digest([("touch", r) for r in rels])
    engine.close()


def test_schema_changes_are_recorded_with_who_digest_and_diff(engine: Engine) -> None:
    second = engine.write_schema(SCHEMA + "\ndefinition folder {}\n", actor="user:root")
    first, again = list(engine.audit.iterate(kind="schema"))
    assert first["actor"] == "user:admin" and first["previous_digest"] is None and first["version"] == 1
    assert first["diff"].startswith("--- schema (before)\n+++ schema (after)\n")
    assert (again["actor"], again["version"], again["digest"], again["token"]) == (
        "user:root", 2, second.digest, second.token)
    assert again["previous_digest"] == first["digest"]
    assert "\n+definition folder {}\n" in again["diff"]
    assert all(not line.startswith("-") or line.startswith("---") for line in again["diff"].splitlines())


def test_declassifications_are_flagged(tmp_path: Path) -> None:
    engine = Engine(SqliteStore(tmp_path / "h.db"), config=Config.of(audit=True))
    engine.write_schema((REPO / "examples" / "ai-lineage" / "policy.zed").read_text())
    engine.touch("dataset:d#steward@user:stew", "dataset:d#label@sensitivity:pii")
    w = engine.touch("dataset:d#scrubbed@sensitivity:pii", actor="user:stew", reason="tokenized")
    engine.remove("dataset:d#scrubbed@sensitivity:pii", actor="user:stew", reason="undo")
    records = list(engine.audit.iterate(kind="declassification"))
    assert [(r["operation"], r.resource, r["classification"], r["value"], r["actor"], r["reason"])
            for r in records] == [("touch", "dataset:d", "sensitivity", "pii", "user:stew", "tokenized"),
                                  ("delete", "dataset:d", "sensitivity", "pii", "user:stew", "undo")]
    assert records[0].revision == w.revision and records[0]["relation"] == "scrubbed"
    engine.close()


# --- queries and export ---------------------------------------------------------------------------


def test_query_filters(tmp_path: Path) -> None:
    clock = Clock()
    engine = _engine(tmp_path, clock)
    _decisions(engine, 6)
    clock.now = T0 + timedelta(hours=1)
    later = engine.touch("document:e#viewer@user:ann", actor="user:ops")
    engine.check("document:e", "view", "user:ann", caller="late")
    q = engine.audit.query
    engine.audit.flush()
    assert [r.caller for r in q(subject="user:ann").records] == ["c0", "c2", "c4", "late"]
    assert [r.caller for r in q(resource="document:e").records] == ["late"]
    assert len(q(permission="view").records) == 7
    assert [r.subject for r in q(result="NO_PERMISSION").records] == ["user:u1", "user:u3", "user:u5"]
    assert [r.caller for r in q(caller="c3").records] == ["c3"]
    assert [r.kind for r in q(actor="user:ops").records] == [RecordKind.RELATIONSHIPS]
    assert [r.caller for r in q(kind="decision", since=T0 + timedelta(minutes=30)).records] == ["late"]
    assert len(q(kind="decision", until=T0 + timedelta(minutes=30)).records) == 6
    assert {r.kind for r in q(revision=later.revision).records} == {RecordKind.RELATIONSHIPS, RecordKind.DECISION}
    assert [r.id for r in q(max_revision=1).records] == [1]  # the schema write
    assert q(subject="user:nobody").records == []
    with pytest.raises(InvalidRequestError, match="unknown record kind"):
        q(kind="nonsense")
    engine.close()


def test_pagination_with_cursors(engine: Engine) -> None:
    _decisions(engine, 25)
    seen, cursor, pages = [], None, 0
    while True:
        page = engine.audit.query(kind="decision", limit=10, cursor=cursor)
        seen += [r.id for r in page.records]
        pages += 1
        cursor = page.cursor
        if cursor is None:
            break
    assert pages == 3 and seen == list(range(3, 28))
    newest = engine.audit.query(kind="decision", limit=10, newest_first=True)
    assert [r.id for r in newest.records] == list(range(27, 17, -1))
    following = engine.audit.query(kind="decision", limit=10, newest_first=True, cursor=newest.cursor)
    assert following.records[0].id == 17
    with pytest.raises(InvalidRequestError, match="another query"):
        engine.audit.query(kind="lookup", cursor=newest.cursor)
    with pytest.raises(InvalidRequestError, match="malformed"):
        engine.audit.query(cursor="!!")
    exact = engine.audit.query(kind="decision", limit=25)
    assert len(exact.records) == 25 and exact.cursor is None  # no cursor to an empty page


def test_export_is_json_lines_that_rechain(engine: Engine) -> None:
    _decisions(engine, 5)
    out = io.StringIO()
    assert engine.audit.export(out) == 7
    lines = out.getvalue().splitlines()
    prev = GENESIS
    for line in lines:
        data = json.loads(line)
        h, p = data.pop("hash"), data.pop("prev_hash")
        assert p == prev and record_hash(p, canonical_json(data)) == h
        prev = h
    out = io.StringIO()
    assert engine.audit.export(out, kind="decision", result="NO_PERMISSION") == 2
    assert {json.loads(line)["subject"] for line in out.getvalue().splitlines()} == {"user:u1", "user:u3"}


# --- replay ----------------------------------------------------------------------------------------


def test_replay_gives_the_same_answer_with_the_full_explanation(tmp_path: Path) -> None:
    clock = Clock()
    engine = _engine(tmp_path, clock)
    engine.touch("document:d#viewer@group:eng#member", "group:eng#member@user:ann")
    engine.check("document:d", "view", "user:ann")
    clock.now = T0 + timedelta(days=1)
    engine.touch("group:eng#member@user:ann", actor="user:admin")  # later changes do not matter
    engine.remove("group:eng#member@user:ann")
    assert not engine.check("document:d", "view", "user:ann").allowed
    record = engine.audit.query(kind="decision", result="HAS_PERMISSION").records[0]
    replayed = engine.replay(record.id)
    assert replayed.available and replayed.same and replayed.result.allowed
    assert replayed.result.revision == record.revision
    assert replayed.result.explanation.summary[0] == "granted: document:d#view for user:ann"
    assert "group:eng#member@user:ann" in "\n".join(replayed.result.explanation.tree.render())
    assert replayed.message == f"record #{record.id} replayed at revision {record.revision}: same answer: " \
                               "HAS_PERMISSION"
    # by matching fields: the latest matching decision, or the latest before a time
    latest = engine.replay(resource="document:d", permission="view", subject="user:ann")
    assert latest.record.id > record.id and latest.same and latest.result.allowed is False
    earlier = engine.replay(resource="document:d", permission="view", subject="user:ann",
                            before=T0 + timedelta(hours=1))
    assert earlier.record.id == record.id and earlier.result.allowed
    with pytest.raises(NotFoundError, match="no recorded decision"):
        engine.replay(resource="document:zzz", permission="view", subject="user:ann")
    with pytest.raises(InvalidRequestError, match="only decisions"):
        engine.replay(1)
    engine.close()


def test_replay_reports_a_different_answer(engine: Engine) -> None:
    """The store's history was altered under the log (here: the grant erased from the database file)."""
    engine.touch("document:d#viewer@user:ann")
    engine.check("document:d", "view", "user:ann")
    record = engine.audit.query(kind="decision").records[0]
    store_db = sqlite3.connect(engine.store.path, isolation_level=None)  # tampering on purpose
    store_db.execute("DELETE FROM relationships WHERE subject_id = 'ann'")
    engine.clear_caches()
    replayed = engine.replay(record.id)
    assert replayed.available and replayed.same is False
    assert replayed.result.permissionship.value == "NO_PERMISSION"
    assert "different answer: the log says HAS_PERMISSION, replaying gives NO_PERMISSION" in replayed.message


def test_replay_of_a_caveated_check_needs_its_context(engine: Engine) -> None:
    engine.touch('document:d#viewer@user:ann[on_network:{"cidr":"10.0.0.0/8"}]')
    engine.check("document:d", "view", "user:ann", context={"ip": "10.9.9.9"})
    record = engine.audit.query(kind="decision").records[0]
    blind = engine.replay(record.id)
    assert blind.same is False and blind.result.missing_context == ("ip",)
    assert "keeps only as a hash" in blind.message
    exact = engine.replay(record.id, context={"ip": "10.9.9.9"})
    assert exact.same is True
    with pytest.raises(InvalidRequestError, match="does not match"):
        engine.replay(record.id, context={"ip": "10.0.0.1"})


def test_replay_uses_the_recorded_time_for_expiration(tmp_path: Path) -> None:
    clock = Clock()
    engine = _engine(tmp_path, clock)
    engine.touch(f"document:d#viewer@user:ann[expiration:{(T0 + timedelta(hours=1)).isoformat()}]")
    assert engine.check("document:d", "view", "user:ann").allowed
    clock.now = T0 + timedelta(hours=2)
    assert not engine.check("document:d", "view", "user:ann").allowed
    first, second = engine.audit.iterate(kind="decision")
    assert engine.replay(first.id).same and engine.replay(first.id).result.allowed
    assert engine.replay(second.id).same and not engine.replay(second.id).result.allowed
    engine.close()


def test_replay_beyond_the_history_window_says_so(tmp_path: Path) -> None:
    clock = Clock()
    engine = _engine(tmp_path, clock, gc_window=timedelta(hours=1))
    engine.touch("document:d#viewer@user:ann")
    engine.check("document:d", "view", "user:ann")
    clock.now = T0 + timedelta(days=1)
    engine.touch("document:x#viewer@user:bob")
    clock.now = T0 + timedelta(days=2)
    engine.touch("document:y#viewer@user:bob")
    engine.gc()  # revisions before the last one older than an hour are gone
    record = engine.audit.query(kind="decision").records[0]
    replayed = engine.replay(record.id)
    assert replayed.available is False and replayed.same is None and replayed.result is None
    assert f"its revision {record.revision} is beyond the history window" in replayed.message
    assert "the log says HAS_PERMISSION" in replayed.message
    engine.close()


# --- the CLI -----------------------------------------------------------------------------------


def test_cli_audit_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "h.db")
    policy = tmp_path / "p.zed"
    policy.write_text(SCHEMA)
    assert main(["audit", "verify", "--db", db]) == 2
    assert "no audit log" in capsys.readouterr().err
    assert main(["schema", "write", str(policy), "--db", db]) == 0
    assert main(["audit", "init", "--db", db]) == 0
    assert "audit log started" in capsys.readouterr().out
    assert main(["relationships", "touch", "document:d#viewer@user:ann", "--db", db, "--actor", "user:admin",
                 "--reason", "r"]) == 0
    assert main(["check", "document:d", "view", "user:ann", "--db", db]) == 0
    assert main(["check", "document:d", "view", "user:bob", "--db", db]) == 1
    capsys.readouterr()
    assert main(["audit", "verify", "--db", db]) == 0
    assert capsys.readouterr().out.startswith("ok: 3 records verified")
    assert main(["audit", "query", "--db", db, "--kind", "decision", "--limit", "1"]) == 0
    captured = capsys.readouterr()
    assert "decision document:d#view@user:ann -> HAS_PERMISSION" in captured.out
    cursor = captured.err.split("--cursor ")[1].strip()
    assert main(["audit", "query", "--db", db, "--kind", "decision", "--limit", "1", "--cursor", cursor,
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["subject"] == "user:bob"
    out = tmp_path / "siem.jsonl"
    assert main(["audit", "export", str(out), "--db", db, "--result", "NO_PERMISSION"]) == 0
    assert [json.loads(x)["subject"] for x in out.read_text().splitlines()] == ["user:bob"]
    assert main(["audit", "export", "--db", db, "--since", "2000-01-01", "--until", "2000-01-02"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["audit", "replay", "2", "--db", db]) == 0
    replay_out = capsys.readouterr().out
    assert "same answer: HAS_PERMISSION" in replay_out and "by document:d#viewer@user:ann" in replay_out
    assert main(["audit", "replay", "3", "--db", db, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["same"] is True
    assert main(["audit", "replay", "1", "--db", db]) == 2
    assert "only decisions" in capsys.readouterr().err
    assert main(["audit", "prune", "--db", db, "--before", "2000-01-01T00:00:00Z"]) == 0
    assert capsys.readouterr().out == "nothing to prune\n"
    assert main(["audit", "prune", "--db", db, "--before", "2999-01-01"]) == 0
    assert "pruned 3 records; checkpoint #3 (sha256)" in capsys.readouterr().out
    assert main(["audit", "verify", "--db", db]) == 0
    with pytest.raises(SystemExit):
        main(["audit", "query", "--db", db, "--since", "yesterday"])  # argparse: not a time
    assert main(["audit"]) == 2


def test_cli_verify_uses_the_key_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    engine = _engine(tmp_path, audit_key="k")
    _decisions(engine, 2)
    engine.close()
    db = str(tmp_path / "h.db")
    monkeypatch.setenv("HEADWATER_AUDIT_KEY", "wrong")
    assert main(["audit", "verify", "--db", db]) == 1
    monkeypatch.setenv("HEADWATER_AUDIT_KEY", "k")
    assert main(["audit", "verify", "--db", db]) == 0
    assert "note" not in capsys.readouterr().out.split("\n")[-2]
