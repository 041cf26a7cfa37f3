"""The AuditService (proto/headwater/v1/audit.proto): decisions made over gRPC are recorded with the token's name,
Query filters and pages, Export is the CLI's JSON Lines, Verify names a tampered record, Replay re-evaluates, only
the audit scope may call it, the serve settings, and a SIGTERM'd `headwater serve --audit` loses no record."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from headwater.engine import BulkCheckItem, Config, Engine
from headwater.engine.audit import AuditLog, RecordKind, audit_path_for, canonical_json, record_hash
from headwater.engine.cli import main
from headwater.engine.client import Client, RemoteError
from headwater.engine.errors import InvalidRequestError, NotFoundError, PreconditionFailedError
from headwater.engine.service.auth import METHOD_SCOPES
from headwater.engine.service.pb import audit_pb2, audit_pb2_grpc
from headwater.engine.config import load_config
from headwater.engine.errors import ConfigError
from headwater.engine.service.server import HeadwaterServer
from headwater.engine.store.sqlite import SqliteStore

from .conftest import LIMITS, SCHEMA, TOKENS, client_for, seed, write_token_file
from .test_serve import _wait_for_serving

AUDIT_RPCS = ["Query", "Export", "Verify", "Replay"]


@pytest.fixture(scope="module")
def audited(make_server):
    """A seeded server keeping an audit log; reader and writer have asked a few questions."""
    server = make_server(audit=True)
    with client_for(server) as admin:
        seed(admin)
        admin.touch("document:extra#viewer@user:eve")  # no actor: recorded as None, as before
    with client_for(server, "reader") as reader:
        assert reader.check("document:readme", "view", "user:bob").allowed
        assert not reader.check("document:readme", "view", "user:mallory").allowed
        reader.check_bulk([BulkCheckItem("document:readme", "view", "user:cat"),
                           BulkCheckItem("document:public", "view", "user:zed"),
                           BulkCheckItem("document:readme", "nope", "user:cat")])  # an error: not a decision
        assert [r.resource_id for r in reader.lookup_resources("document", "view", "user:bob").results]
        reader.lookup_subjects("document:readme", "view", "user")
    with client_for(server, "writer") as writer:
        writer.check("document:raw", "read", "user:bob")
        writer.check("document:tuesday", "view", "user:dan", context={"day": "tue"})
    return server


@pytest.fixture()
def auditor(audited):
    with client_for(audited, "auditor") as c:
        yield c


# --- recording over gRPC -----------------------------------------------------------------------


def test_decisions_and_lookups_made_over_grpc_carry_the_token_name(auditor) -> None:
    decisions = auditor.audit_query(kind="decision").records
    assert [(r.caller, r.resource, r.permission, r.subject, r.result) for r in decisions] == [
        ("reader", "document:readme", "view", "user:bob", "HAS_PERMISSION"),
        ("reader", "document:readme", "view", "user:mallory", "NO_PERMISSION"),
        ("reader", "document:readme", "view", "user:cat", "HAS_PERMISSION"),
        ("reader", "document:public", "view", "user:zed", "HAS_PERMISSION"),
        ("writer", "document:raw", "read", "user:bob", "HAS_PERMISSION"),
        ("writer", "document:tuesday", "view", "user:dan", "HAS_PERMISSION")]
    assert decisions[-1]["context_sha256"] is not None and decisions[0]["context_sha256"] is None
    lookups = auditor.audit_query(kind="lookup").records
    assert [(r.caller, r["lookup"], r["count"]) for r in lookups] == [("reader", "resources", 4),
                                                                     ("reader", "subjects", 3)]


def test_writes_keep_their_actor_and_reason_as_before(auditor) -> None:
    changes = auditor.audit_query(kind="relationships").records
    assert [(r.get("actor"), r.get("reason"), r["count"]) for r in changes] == [
        ("user:admin", "seed", 16), (None, None, 1)]
    schema = auditor.audit_query(kind=RecordKind.SCHEMA).records
    assert [(r.get("actor"), r["version"]) for r in schema] == [("user:admin", 1)]
    assert all(r.caller is None for r in changes)


def test_without_authentication_the_caller_is_none(make_server) -> None:
    server = make_server(insecure_no_auth=True, audit=True)
    with client_for(server, None) as c:
        seed(c)
        c.check("document:readme", "view", "user:bob")
        [record] = c.audit_query(kind="decision").records
    assert record.caller is None


# --- Query -------------------------------------------------------------------------------------


def test_query_filters(auditor, audited) -> None:
    q = auditor.audit_query
    assert [r.subject for r in q(subject="user:bob", kind="decision").records] == ["user:bob", "user:bob"]
    assert [r.subject for r in q(resource="document:readme", kind="decision").records] == [
        "user:bob", "user:mallory", "user:cat"]
    assert [r.resource for r in q(permission="read").records] == ["document:raw"]
    assert [r.subject for r in q(result="NO_PERMISSION").records] == ["user:mallory"]
    assert {r.caller for r in q(caller="writer").records} == {"writer"} and len(q(caller="writer").records) == 2
    assert [r.kind for r in q(actor="user:admin").records] == [RecordKind.SCHEMA, RecordKind.RELATIONSHIPS]
    everything = q(limit=1000).records
    assert [r.id for r in everything] == list(range(1, len(everything) + 1))
    # revisions: exact, and a range
    seeded = q(kind="relationships").records[0].revision
    assert {r.revision for r in q(revision=seeded).records} == {seeded}
    assert q(min_revision=seeded + 1, kind="relationships").records[0]["count"] == 1
    assert [r.kind for r in q(max_revision=seeded - 1).records] == [RecordKind.SCHEMA]
    # a time range: since is inclusive, until exclusive
    middle = everything[len(everything) // 2]
    since = q(since=middle.time, limit=1000).records
    until = q(until=middle.time, limit=1000).records
    assert middle in since and all(r.time >= middle.time for r in since)
    assert middle not in until and all(r.time < middle.time for r in until)
    assert sorted(r.id for r in since + until) == [r.id for r in everything]
    assert q(since=datetime(2999, 1, 1, tzinfo=UTC)).records == []
    # newest first
    assert [r.id for r in q(newest_first=True, limit=3).records] == [everything[-1].id - i for i in range(3)]


def test_query_records_are_the_stored_records(auditor, audited) -> None:
    remote = auditor.audit_query(limit=1000).records
    local = audited.engine.audit.query(limit=1000).records
    assert remote == local
    for record in remote:  # each record's JSON re-chains on its own
        data = json.loads(record.to_json())
        h, prev = data.pop("hash"), data.pop("prev_hash")
        assert record_hash(prev, canonical_json(data)) == h


def test_query_pages_with_a_cursor(auditor) -> None:
    everything = [r.id for r in auditor.audit_query(limit=1000).records]
    seen, cursor, pages = [], None, 0
    while True:
        page = auditor.audit_query(limit=3, cursor=cursor)
        seen += [r.id for r in page.records]
        pages += 1
        if page.cursor is None:
            break
        cursor = page.cursor
    assert seen == everything and pages == -(-len(everything) // 3)
    first = auditor.audit_query(kind="decision", limit=2)
    rest = auditor.audit_query(kind="decision", limit=100, cursor=first.cursor)
    assert [r.subject for r in first.records + rest.records][:4] == ["user:bob", "user:mallory", "user:cat",
                                                                    "user:zed"]
    assert rest.cursor is None
    with pytest.raises(InvalidRequestError, match="another query"):
        auditor.audit_query(kind="lookup", cursor=first.cursor)
    with pytest.raises(InvalidRequestError, match="malformed audit cursor"):
        auditor.audit_query(cursor="garbage!")


def test_query_streams_past_the_server_page_size(make_server) -> None:
    server = make_server(audit=True)  # max_page_size 100
    with client_for(server) as admin:
        seed(admin)
        for _ in range(7):
            admin.check_bulk([BulkCheckItem("document:readme", "view", f"user:u{i}") for i in range(20)])
        page = admin.audit_query(kind="decision", limit=1000)
        assert len(page.records) == 140 and page.cursor is None
        half = admin.audit_query(kind="decision", limit=120)
        assert len(half.records) == 120 and half.cursor is not None
        assert len(admin.audit_query(kind="decision", limit=1000, cursor=half.cursor).records) == 20
    # on the wire: the last record of each server page carries the cursor, and the stream ends after all
    with grpc.insecure_channel(server.address) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        request = audit_pb2.AuditQueryRequest(filter=audit_pb2.AuditFilter(kind=audit_pb2.AUDIT_RECORD_KIND_DECISION))
        responses = list(stub.Query(request, metadata=(("authorization", f"Bearer {TOKENS['auditor'][0]}"),),
                                    timeout=10))
    assert len(responses) == 140
    assert [i for i, r in enumerate(responses) if r.after_result_cursor] == [99]


# --- Export ------------------------------------------------------------------------------------


def test_export_is_the_json_lines_of_headwater_audit_export(auditor, audited) -> None:
    text = "".join(auditor.audit_export())
    local = io.StringIO()
    n = audited.engine.audit.export(local)
    assert text == local.getvalue() and len(text.splitlines()) == n
    previous = None
    for line in text.splitlines():
        data = json.loads(line)
        h, prev = data.pop("hash"), data.pop("prev_hash")
        assert record_hash(prev, canonical_json(data)) == h
        assert previous is None or prev == previous
        previous = h
    decisions = [json.loads(line) for line in auditor.audit_export(kind="decision", caller="writer")]
    assert [d["resource"] for d in decisions] == ["document:raw", "document:tuesday"]
    assert list(auditor.audit_export(subject="user:nobody")) == []


def test_export_chunks_resume_from_their_cursor(audited) -> None:
    metadata = (("authorization", f"Bearer {TOKENS['auditor'][0]}"),)
    with grpc.insecure_channel(audited.address) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        chunks = list(stub.Export(audit_pb2.AuditExportRequest(optional_batch_size=4), metadata=metadata, timeout=10))
        total = audited.engine.audit.head()[0]
        assert [c.records for c in chunks] == [4] * (total // 4) + ([total % 4] if total % 4 else [])
        assert all(c.after_cursor for c in chunks[:-1]) and not chunks[-1].after_cursor
        assert all(c.jsonl.count("\n") == c.records for c in chunks)
        rest = list(stub.Export(audit_pb2.AuditExportRequest(optional_batch_size=4,
                                                             optional_cursor=chunks[1].after_cursor),
                                metadata=metadata, timeout=10))
        assert "".join(c.jsonl for c in rest) == "".join(c.jsonl for c in chunks[2:])
        empty = list(stub.Export(audit_pb2.AuditExportRequest(filter=audit_pb2.AuditFilter(subject="user:nobody")),
                                 metadata=metadata, timeout=10))
        assert [(c.jsonl, c.records) for c in empty] == [("", 0)]
        with pytest.raises(grpc.RpcError) as e:
            list(stub.Export(audit_pb2.AuditExportRequest(optional_batch_size=101), metadata=metadata, timeout=10))
        assert e.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_numbers_past_sqlite_integers_are_invalid_arguments(audited) -> None:
    import base64
    import hashlib

    metadata = (("authorization", f"Bearer {TOKENS['auditor'][0]}"),)
    huge = 2**64 - 1
    # a cursor forged for the empty filter (the log's own cursor format) with an id past SQLite's integers
    query_id = hashlib.sha256(canonical_json([[], [], False]).encode()).hexdigest()[:12]
    forged = base64.urlsafe_b64encode(f"{huge}:{query_id}".encode()).decode().rstrip("=")
    with grpc.insecure_channel(audited.address) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        calls = [lambda: list(stub.Query(audit_pb2.AuditQueryRequest(filter=audit_pb2.AuditFilter(revision=huge)),
                                         metadata=metadata, timeout=5)),
                 lambda: list(stub.Query(audit_pb2.AuditQueryRequest(optional_cursor=forged), metadata=metadata,
                                         timeout=5)),
                 lambda: list(stub.Export(audit_pb2.AuditExportRequest(optional_cursor=forged), metadata=metadata,
                                          timeout=5)),
                 lambda: stub.Replay(audit_pb2.AuditReplayRequest(record_id=huge), metadata=metadata, timeout=5)]
        for call in calls:
            with pytest.raises(grpc.RpcError) as e:
                call()
            assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
            assert "out of range" in e.value.details()


# --- Verify ------------------------------------------------------------------------------------


def test_verify_ok_then_names_a_tampered_record(make_server) -> None:
    server = make_server(audit=True)
    with client_for(server) as admin:
        seed(admin)
        for subject in ("user:bob", "user:mallory", "user:cat"):
            admin.check("document:readme", "view", subject)
        result = admin.audit_verify()
        assert result.ok and result.count == result.records == 5 and result.record_id is None
        assert str(result).startswith("ok: 5 records verified, head #5 ")
        db = sqlite3.connect(server.engine.audit.path, isolation_level=None)
        try:
            db.execute("UPDATE records SET body = json_set(body, '$.result', 'HAS_PERMISSION') WHERE id = 4")
            result = admin.audit_verify()
            assert not result.ok and result.record_id == 4
            assert result.problem == "altered: its content no longer matches its hash"
            assert str(result) == "record 4: altered: its content no longer matches its hash"
            db.execute("UPDATE records SET body = json_set(body, '$.result', 'NO_PERMISSION') WHERE id = 4")
            assert admin.audit_verify().ok
            db.execute("DELETE FROM records WHERE id = 3")
            result = admin.audit_verify()
            assert not result.ok and result.record_id == 3 and result.problem.startswith("removed")
        finally:
            db.close()


def test_verify_checks_the_head_with_the_key_file(make_server, tmp_path: Path) -> None:
    key = tmp_path / "audit.key"
    key.write_text("  k3y-from-a-secret-store \n")
    server = make_server(audit=True, audit_key_file=str(key))
    with client_for(server) as admin:
        seed(admin)
        assert admin.audit_verify().ok
    with AuditLog(server.engine.audit.path, key="another key") as log:
        assert "not signed with this log's key" in (log.verify().problem or "")
    with AuditLog(server.engine.audit.path, key="k3y-from-a-secret-store") as log:
        assert log.verify().ok


# --- Replay ------------------------------------------------------------------------------------


def test_replay_gives_the_same_answer_with_its_explanation(auditor) -> None:
    denied = auditor.audit_query(result="NO_PERMISSION").records[0]
    replayed = auditor.audit_replay(denied.id)
    assert replayed.available and replayed.same and replayed.record == denied
    assert replayed.result.permissionship.value == "NO_PERMISSION"
    assert replayed.message == f"record #{denied.id} replayed at revision {denied.revision}: same answer: NO_PERMISSION"
    assert replayed.result.explanation.summary[0] == "denied: document:readme#view for user:mallory"
    assert replayed.result.explanation.tree.label  # the full tree comes back too
    latest = auditor.audit_replay(resource="document:raw", permission="read", subject="user:bob")
    assert latest.same and latest.result.allowed and latest.record.caller == "writer"
    assert any("by " in line for line in latest.result.explanation.summary)
    with pytest.raises(NotFoundError, match="no recorded decision"):
        auditor.audit_replay(resource="document:raw", permission="read", subject="user:bob",
                             before=datetime(2000, 1, 1, tzinfo=UTC))


def test_replay_of_a_caveated_decision_takes_its_context(auditor) -> None:
    record = auditor.audit_query(resource="document:tuesday", kind="decision").records[0]
    without = auditor.audit_replay(record.id)
    assert not without.same and "keeps only as a hash" in without.message
    assert without.result.permissionship.value == "CONDITIONAL_PERMISSION"
    assert auditor.audit_replay(record.id, context={"day": "tue"}).same
    with pytest.raises(InvalidRequestError, match="does not match"):
        auditor.audit_replay(record.id, context={"day": "wed"})


def test_replay_refuses_what_is_not_a_decision(auditor) -> None:
    with pytest.raises(InvalidRequestError, match="only decisions can be replayed"):
        auditor.audit_replay(1)
    with pytest.raises(NotFoundError, match="no audit record #99999"):
        auditor.audit_replay(99999)
    with pytest.raises(InvalidRequestError, match="name the decision"):
        auditor.audit_replay()
    metadata = (("authorization", f"Bearer {TOKENS['auditor'][0]}"),)
    with grpc.insecure_channel(auditor.address) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        with pytest.raises(grpc.RpcError) as e:
            stub.Replay(audit_pb2.AuditReplayRequest(record_id=3, context_json="[1, 2"), metadata=metadata, timeout=5)
        assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT and "not valid JSON" in e.value.details()


def test_replay_beyond_the_history_window_says_so(tmp_path: Path, token_file: Path) -> None:
    class Clock:
        now = datetime(2030, 1, 1, tzinfo=UTC)

        def __call__(self) -> datetime:
            return self.now

    clock = Clock()
    engine = Engine(SqliteStore(tmp_path / "h.db", clock=clock),
                    config=Config.of(audit=True, gc_window=timedelta(hours=1), gc_interval=None), clock=clock)
    server = HeadwaterServer(Config.of(address="127.0.0.1:0", db=str(tmp_path / "h.db"), token_file=str(token_file),
                                          **LIMITS), engine=engine).start()
    try:
        with client_for(server) as admin:
            seed(admin)
            assert admin.check("document:readme", "view", "user:bob").allowed
            record = admin.audit_query(kind="decision").records[0]
            assert admin.audit_replay(record.id).same
            clock.now += timedelta(days=1)
            admin.touch("document:later#viewer@user:eve")
            clock.now += timedelta(days=1)
            admin.touch("document:later#viewer@user:fay")
            engine.gc()
            replayed = admin.audit_replay(record.id)
        assert replayed.available is False and replayed.same is None and replayed.result is None
        assert f"its revision {record.revision} is beyond the history window" in replayed.message
        assert "the log says HAS_PERMISSION" in replayed.message
    finally:
        server.stop(grace=0)
        engine.close()


# --- scopes and a server without a log ---------------------------------------------------------


CALLS = {
    "Query": lambda c: c.audit_query(),
    "Export": lambda c: list(c.audit_export()),
    "Verify": lambda c: c.audit_verify(),
    "Replay": lambda c: c.audit_replay(resource="document:readme", permission="view", subject="user:bob"),
}


def test_every_audit_rpc_needs_the_audit_scope_only() -> None:
    assert {m.rsplit("/", 1)[1]: s for m, s in METHOD_SCOPES.items() if "AuditService" in m} == {
        name: "audit" for name in AUDIT_RPCS}


@pytest.mark.parametrize("who", sorted(TOKENS))
@pytest.mark.parametrize("rpc", AUDIT_RPCS)
def test_audit_scope_is_enforced(audited, who: str, rpc: str) -> None:
    with client_for(audited, who) as c:
        if "audit" in TOKENS[who][1]:
            CALLS[rpc](c)
        else:
            with pytest.raises(RemoteError) as e:
                CALLS[rpc](c)
            assert e.value.code == "PERMISSION_DENIED"
            assert f"token {who!r} lacks the audit scope needed for /headwater.v1.AuditService/{rpc}" in str(e.value)


@pytest.mark.parametrize("rpc", AUDIT_RPCS)
def test_no_token_is_unauthenticated(audited, rpc: str) -> None:
    with client_for(audited, None) as c, pytest.raises(RemoteError) as e:
        CALLS[rpc](c)
    assert e.value.code == "UNAUTHENTICATED"


@pytest.mark.parametrize("rpc", AUDIT_RPCS)
def test_a_server_without_an_audit_log_says_how_to_start_one(server, rpc: str) -> None:
    with client_for(server, "auditor") as c, pytest.raises(PreconditionFailedError) as e:
        CALLS[rpc](c)
    assert e.value.code == "FAILED_PRECONDITION" and "--audit" in str(e.value)


# --- settings ----------------------------------------------------------------------------------


def test_audit_settings_from_flags_environment_and_file(tmp_path: Path) -> None:
    f = tmp_path / "headwater.toml"
    f.write_text('insecure_no_auth = true\naudit = true\naudit_queue_size = 50\naudit_decisions = "off"\n')
    key = tmp_path / "key"
    key.write_text("s3cret-audit-key\n")
    env = {"HEADWATER_AUDIT_DECISIONS": "sample:0.25", "HEADWATER_AUDIT_KEY_FILE": str(key)}
    config = load_config({"audit_durable": True}, env, str(f))
    audit = config.audit
    assert (audit.enabled, audit.decisions, audit.durable, audit.queue_size) == (True, "sample:0.25", True, 50)
    assert audit.resolved_key() == "s3cret-audit-key"
    assert "s3cret" not in repr(config)
    assert not load_config({}, {"HEADWATER_INSECURE_NO_AUTH": "1"}).audit.enabled
    assert load_config({}, {"HEADWATER_INSECURE_NO_AUTH": "1", "HEADWATER_AUDIT": "on"}).audit.enabled


@pytest.mark.parametrize("settings, message", [
    ({"audit_decisions": "some"}, "audit_decisions must be all, denials, off or sample"),
    ({"audit_decisions": "sample:2"}, "audit_decisions must be"),
    ({"audit_queue_size": 0}, "audit_queue_size must be a positive integer"),
])
def test_bad_audit_settings_are_refused(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.of(insecure_no_auth=True, **settings)


def test_an_unreadable_or_empty_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read audit key file"):
        Config.of(insecure_no_auth=True, audit=True, audit_key_file=str(tmp_path / "none")).audit.resolved_key()
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        Config.of(insecure_no_auth=True, audit=True, audit_key_file=str(tmp_path / "empty")).audit.resolved_key()


def test_serve_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import headwater.engine.service.server as server_module

    seen = []
    monkeypatch.setattr(server_module, "serve", lambda config: seen.append(config) or 0)
    for name in [k for k in os.environ if k.startswith("HEADWATER_")]:
        monkeypatch.delenv(name)
    assert main(["serve", "--insecure-no-auth", "--audit", "--audit-decisions", "denials", "--audit-durable",
                 "--audit-queue-size", "64", "--audit-key-file", str(tmp_path / "k")]) == 0
    assert main(["serve", "--insecure-no-auth", "--no-audit"]) == 0
    first, second = seen[0].audit, seen[1].audit
    assert (first.enabled, first.decisions, first.durable, first.queue_size, first.key_file) == (
        True, "denials", True, 64, str(tmp_path / "k"))
    assert second.enabled is False and second.decisions == "all"


def test_a_durable_server_commits_each_decision_before_answering(make_server) -> None:
    server = make_server(audit=True, audit_durable=True, audit_decisions="denials")
    with client_for(server) as admin:
        seed(admin)
        admin.check("document:readme", "view", "user:bob")
        admin.check("document:readme", "view", "user:mallory")
    audit = server.engine.audit
    assert audit.durable and audit.pending == 0
    with AuditLog(audit.path) as log:  # another connection sees it already
        assert [r.subject for r in log.query(kind="decision").records] == ["user:mallory"]


# --- SIGTERM -----------------------------------------------------------------------------------


def test_sigterm_flushes_every_answered_decision(tmp_path: Path) -> None:
    tokens = write_token_file(tmp_path / "tokens.toml")
    schema = tmp_path / "schema.zed"
    schema.write_text(SCHEMA)
    key = tmp_path / "audit.key"
    key.write_text("the-audit-hmac-key-0123\n")
    db = tmp_path / "served.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(HEADWATER_TOKEN_FILE=str(tokens), HEADWATER_AUDIT_QUEUE_SIZE="5000")
    proc = subprocess.Popen([sys.executable, "-m", "headwater.engine", "serve", "--address", "127.0.0.1:0",
                             "--db", str(db), "--schema", str(schema), "--audit", "--audit-key-file", str(key)],
                            env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    answered: list[tuple[str, bool]] = []
    try:
        ready = _wait_for_serving(proc, lines)
        assert ready["audit"] and ready["audit_signed"] and ready["audit_path"] == str(audit_path_for(db))
        address = f"127.0.0.1:{ready['port']}"
        with Client(address, token=TOKENS["admin"][0], timeout=10) as admin:
            admin.touch(*[f"document:d{i}#viewer@user:u{i}" for i in range(40)], actor="user:admin")
        with Client(address, token=TOKENS["reader"][0], timeout=10) as c:
            for i in range(300):
                subject = f"user:u{i % 50}"
                answered.append((subject, c.check(f"document:d{i % 40}", "view", subject).allowed))
            bulk = c.check_bulk([BulkCheckItem(f"document:d{i}", "view", f"user:u{i}") for i in range(20)])
            answered += [(f"user:u{i}", r.result.allowed) for i, r in enumerate(bulk)]
        proc.send_signal(signal.SIGTERM)  # at once: the last records are still queued
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    text = "".join(lines)
    assert "the-audit-hmac-key" not in text and all(secret not in text for secret, _ in TOKENS.values())
    events = [e for e in (json.loads(line).get("event") for line in lines if line.startswith("{")) if e]
    assert events[-3:] == ["signal", "draining", "stopped"], events
    with AuditLog(audit_path_for(db), create=False, key="the-audit-hmac-key-0123") as log:
        assert log.verify().ok
        decisions = list(log.iterate(kind="decision"))
        changes = list(log.iterate(kind="relationships"))
    assert [(r.subject, r.result == "HAS_PERMISSION") for r in decisions] == answered
    assert {r.caller for r in decisions} == {"reader"} and len(decisions) == 320
    assert [r["count"] for r in changes] == [40] and changes[0].get("actor") == "user:admin"
    with pytest.raises(ConfigError, match="is signed"):
        Engine.open(db)  # records written without the key would be unsigned
    with Engine.open(db, config=Config.of(audit_key="the-audit-hmac-key-0123")) as engine:
        assert engine.audit is not None  # an audited database stays audited
        assert engine.replay(decisions[0].id).same
