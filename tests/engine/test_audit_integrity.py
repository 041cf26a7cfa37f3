"""An audit trail that stays on and verification that does not pass forgeries (issue 14, items 3 to 5).

Every case of the attacker-minded review is a regression test here, through the public interfaces: the
`headwater` command line, the Python Engine, and `headwater serve` refusing to start.

- the log deleted, replaced (by another or an empty log) or rolled back, and a change whose record was lost:
  opening the database is refused until `headwater audit acknowledge`;
- `audit verify`: a signed log without its key, an empty log where the store says records were written, a
  missing or corrupt head, a missing table, a truncated or non-SQLite file: exit 1 with one line, never a
  traceback;
- anchors: `audit anchor` (stdout, --output, --post) and `audit verify --anchor`, which catches a rollback to
  an older copy of a signed log with its signed head.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from headwater.engine import Config, Engine, MemoryStore
from headwater.engine.audit import AuditLog, RecordKind, audit_path_for
from headwater.engine.cli import main
from headwater.engine.errors import AuditTrailBrokenError, ConfigError, PreconditionFailedError
from headwater.engine.service.server import HeadwaterServer

SCHEMA = "definition user {}\n\ndefinition doc {\n    relation viewer: user\n    permission view = viewer\n}\n"
KEY = "an-audit-key-0123"


@pytest.fixture(autouse=True)
def _no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HEADWATER_AUDIT_KEY", "HEADWATER_ANCHOR_AUTHORIZATION"):
        monkeypatch.delenv(name, raising=False)


def _audited(tmp_path: Path, key: str | None = None) -> Path:
    """An audited database: records #1 schema (revision 1), #2 relationships (revision 2), #3 a decision."""
    db = tmp_path / "h.db"
    with Engine.open(db, config=Config.of(audit=True, audit_key=key)) as engine:
        engine.write_schema(SCHEMA, actor="user:admin")
        engine.touch("doc:1#viewer@user:ann", actor="user:admin", reason="seed")
        engine.check("doc:1", "view", "user:ann")
    return db


def _log(db: Path) -> Path:
    return audit_path_for(db)


def _copy(src: Path, dst: Path) -> None:
    """Copy a closed log file (its WAL was checkpointed away on close)."""
    for suffix in ("-wal", "-shm"):
        Path(f"{dst}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(src, dst)


def _sql(db: Path, *statements: str) -> None:
    conn = sqlite3.connect(_log(db), isolation_level=None)
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- 3. auditing cannot be switched off by deleting the log ----------------------------------------------


def test_a_deleted_log_is_refused_by_the_engine_until_acknowledged(tmp_path: Path) -> None:
    db = _audited(tmp_path)
    old_id = _log_id(db)
    _log(db).unlink()
    for config in (None, Config.of(audit=True)):  # with or without auditing asked for
        with pytest.raises(AuditTrailBrokenError) as refused:
            Engine.open(db, config=config)
        message = str(refused.value)
        assert f"audit log {old_id}" in message and "there is no audit log at" in message
        assert f"headwater audit acknowledge --db {db} --by NAME --reason TEXT" in message
        assert isinstance(refused.value, PreconditionFailedError)
    assert not _log(db).exists()  # no fresh chain was started behind the operator's back

    record = Engine.acknowledge_audit_break(db, by="user:ops", reason="INC-7: disk restored without the log")
    assert record is not None and record.kind is RecordKind.ACKNOWLEDGEMENT and record.id == 1
    assert (record["actor"], record["reason"], record["previous_log"], record["previous_revision"]) == (
        "user:ops", "INC-7: disk restored without the log", old_id, 2)
    assert record["revision"] == 3 and "no audit log" in record["problem"]
    with Engine.open(db) as engine:  # audited again without asking, into the new chain
        assert engine.audit is not None and engine.audit.log_id != old_id
        metadata = engine.store.revision_metadata(3)
        assert (metadata["actor"], metadata["audit_acknowledged"]) == ("user:ops", old_id)
        engine.touch("doc:2#viewer@user:bob", actor="user:admin")
        assert engine.audit_verify().ok
        assert [r.kind.value for r in engine.audit.iterate()] == ["acknowledgement", "relationships"]
    assert Engine.acknowledge_audit_break(db, by="user:ops", reason="again") is None  # nothing left to accept


def _log_id(db: Path) -> str:
    with AuditLog(_log(db), create=False) as log:
        return log.log_id


def test_a_schema_write_binds_the_store_too(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    with Engine.open(db, config=Config.of(audit=True)) as engine:
        engine.write_schema(SCHEMA)  # the last write is a schema write
    _log(db).unlink()
    with pytest.raises(AuditTrailBrokenError, match="revision 1 was written with audit log"):
        Engine.open(db)


def test_the_cli_refuses_every_command_that_opens_the_database(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    db = str(_audited(tmp_path))
    _log(Path(db)).unlink()
    for argv in (["check", "doc:1", "view", "user:ann", "--db", db],
                 ["relationships", "touch", "doc:1#viewer@user:bob", "--db", db],
                 ["schema", "read", "--db", db]):
        code, _, err = _cli(capsys, *argv)
        assert code == 2 and "its audit trail is broken" in err and "headwater audit acknowledge" in err, err
    # a new empty log (audit init) is another log, not a way around it
    assert _cli(capsys, "audit", "init", "--db", db)[0] == 0
    code, _, err = _cli(capsys, "check", "doc:1", "view", "user:ann", "--db", db)
    assert code == 2 and "is another log" in err
    code, out, _ = _cli(capsys, "audit", "verify", "--db", db)
    assert code == 1 and out.startswith("failed: ") and "is another log" in out
    # the operator acknowledges: recorded in the log, and the database opens again
    code, out, _ = _cli(capsys, "audit", "acknowledge", "--db", db, "--by", "user:ops", "--reason", "INC-8")
    assert code == 0 and out.startswith("acknowledged: #1 ") and "by user:ops (INC-8)" in out
    assert _cli(capsys, "check", "doc:1", "view", "user:ann", "--db", db)[0] == 0
    code, out, _ = _cli(capsys, "audit", "verify", "--db", db)
    assert code == 0 and out.startswith("ok: 2 records verified")
    code, out, _ = _cli(capsys, "audit", "query", "--db", db, "--kind", "acknowledgement")
    assert code == 0 and "acknowledgement of a broken audit trail at revision 3 by user:ops (INC-8)" in out
    code, out, _ = _cli(capsys, "audit", "acknowledge", "--db", db, "--by", "user:ops", "--reason", "again")
    assert code == 0 and out.startswith("nothing to acknowledge")


def test_a_rolled_back_or_replaced_log_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = _audited(tmp_path)
    old = tmp_path / "old.audit"
    _copy(_log(db), old)
    with Engine.open(db) as engine:
        engine.touch("doc:2#viewer@user:bob", actor="user:admin")  # record #4
        engine.touch("doc:3#viewer@user:bob", actor="user:admin")  # written when the log had 4 records
    _copy(old, _log(db))  # an older copy, from before the last writes
    with pytest.raises(AuditTrailBrokenError, match="now ends at record #3: it was rolled back"):
        Engine.open(db)
    code, out, _ = _cli(capsys, "audit", "verify", "--db", str(db))
    assert code == 1 and "rolled back" in out
    # an empty log carrying the right id (the store says 4 records were there) is a rollback too
    _log(db).unlink()
    AuditLog(_log(db)).close()
    _sql(db, f"UPDATE identity SET log_id = '{_log_id_of(old)}'")
    code, out, _ = _cli(capsys, "audit", "verify", "--db", str(db))
    assert code == 1 and "now ends at record #0" in out


def _log_id_of(path: Path) -> str:
    with AuditLog(path, create=False) as log:
        return log.log_id


def test_a_change_whose_record_was_lost_is_refused(tmp_path: Path) -> None:
    """A crash between the store's commit and the change's record (simulated: the record and the ones after it
    removed and the head set back): the store has a revision the log never recorded."""
    db = _audited(tmp_path)
    with AuditLog(_log(db), create=False) as log:
        count, last = log.head()
        first = log.get(1)
    _sql(db, "DELETE FROM records WHERE id > 1", f"UPDATE head SET count = 1, hash = '{first.hash}'")
    assert count == 3 and last != first.hash
    with pytest.raises(AuditTrailBrokenError, match="no record of the store's revision 2"):
        Engine.open(db)


def test_a_memory_store_has_nothing_to_enforce() -> None:
    store = MemoryStore()
    engine = Engine(store, config=Config.of(audit=True))  # its log is temporary: there is nothing to tie
    engine.write_schema(SCHEMA, actor="user:admin")
    assert store.revision_metadata(store.head()) == {"actor": "user:admin"}
    assert Engine(store).audit is None
    engine.close()


def test_a_signed_log_is_opened_with_its_key_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    db = _audited(tmp_path, key=KEY)
    with pytest.raises(ConfigError, match="is signed"):
        Engine.open(db)  # records written now would be unsigned
    with pytest.raises(ConfigError, match="another key"):
        Engine.open(db, config=Config.of(audit_key="not-the-key"))
    code, _, err = _cli(capsys, "check", "doc:1", "view", "user:ann", "--db", str(db))
    assert code == 2 and "HEADWATER_AUDIT_KEY" in err
    monkeypatch.setenv("HEADWATER_AUDIT_KEY", KEY)
    assert _cli(capsys, "check", "doc:1", "view", "user:ann", "--db", str(db))[0] == 0
    assert _cli(capsys, "audit", "verify", "--db", str(db))[0] == 0


# --- 4. verification that does not pass forgeries -------------------------------------------------------


def _rehash(db: Path, *, drop_mac: bool = False) -> None:
    """Forge a record and re-hash the whole chain and the head, as anyone can without the key."""
    from headwater.engine.audit import GENESIS, record_hash

    conn = sqlite3.connect(_log(db), isolation_level=None)
    try:
        conn.execute("UPDATE records SET body = json_set(body, '$.result', 'NO_PERMISSION') WHERE id = 3")
        prev = GENESIS
        for row_id, body in conn.execute("SELECT id, body FROM records ORDER BY id").fetchall():
            h = record_hash(prev, body)
            conn.execute("UPDATE records SET prev_hash = ?, hash = ? WHERE id = ?", [prev, h, row_id])
            prev = h
        conn.execute("UPDATE head SET hash = ?" + (", mac = ''" if drop_mac else ""), [prev])
    finally:
        conn.close()


def test_a_rehashed_forgery_of_a_signed_log_fails_without_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    db = _audited(tmp_path, key=KEY)
    _rehash(db)
    code, out, _ = _cli(capsys, "audit", "verify", "--db", str(db))
    assert code == 1 and out.startswith("failed: the log is signed") and "no key was given" in out
    code, out, _ = _cli(capsys, "audit", "verify", "--audit", str(_log(db)))  # the file alone: the same
    assert code == 1 and "no key was given" in out
    monkeypatch.setenv("HEADWATER_AUDIT_KEY", KEY)
    code, out, _ = _cli(capsys, "audit", "verify", "--db", str(db))
    assert code == 1 and "not signed with this log's key" in out


def test_a_forgery_that_strips_the_signature_is_caught_by_the_store(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    db = _audited(tmp_path, key=KEY)
    _rehash(db, drop_mac=True)  # now it looks like an unsigned log
    code, out, _ = _cli(capsys, "audit", "verify", "--db", str(db))
    assert code == 1 and "a signed log" in out


def test_an_unkeyed_log_with_its_tail_and_head_rewritten_is_caught_by_the_store(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = _audited(tmp_path)
    with AuditLog(_log(db), create=False) as log:
        first = log.get(1)
    _sql(db, "DELETE FROM records WHERE id > 1", f"UPDATE head SET count = 1, hash = '{first.hash}'")
    with AuditLog(_log(db), create=False) as log:
        assert log.verify().ok  # the file alone cannot tell
    code, out, _ = _cli(capsys, "audit", "verify", "--db", str(db))
    assert code == 1 and "no record of the store's revision 2" in out


def test_an_empty_log_where_the_store_says_records_were_written_fails(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    db = _audited(tmp_path)
    _log(db).unlink()
    code, out, _ = _cli(capsys, "audit", "verify", "--db", str(db))
    assert code == 1 and "there is no audit log at" in out
    AuditLog(_log(db)).close()  # "ok: 0 records" before
    code, out, _ = _cli(capsys, "audit", "verify", "--db", str(db))
    assert code == 1 and out.startswith("failed: ") and "another log" in out


# --- 5. a report, never a traceback ----------------------------------------------------------------------


@pytest.mark.parametrize("damage, expected", [
    (["DELETE FROM head"], "the head is missing"),
    (["DROP TABLE head"], "the head cannot be read"),
    (["UPDATE head SET count = 'many'"], "the head is corrupt"),
    (["UPDATE head SET hash = 'short'"], "the head is corrupt"),
    (["DROP TABLE records"], "cannot be read"),
    (["UPDATE records SET body = 5 WHERE id = 2"], "record 2: altered"),
    (["DELETE FROM identity"], "identity"),
])
def test_a_damaged_log_is_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: list[str],
                                   expected: str) -> None:
    db = _audited(tmp_path)
    _sql(db, *damage)
    for argv in (["--db", str(db)], ["--audit", str(_log(db))]):
        code, out, err = _cli(capsys, "audit", "verify", *argv)
        assert code == 1 and expected in out and err == "", (argv, out, err)
        assert len(out.splitlines()) == 1
    with pytest.raises(AuditTrailBrokenError, match="headwater audit acknowledge"):
        Engine.open(db)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_truncated_or_foreign_file_is_a_report(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  damage: str) -> None:
    db = _audited(tmp_path)
    path = _log(db)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"this is not a database, just text pretending to be an audit log\n" * 100)
    else:
        path.write_bytes(b"")  # SQLite reads an empty file as an empty database
    code, out, err = _cli(capsys, "audit", "verify", "--db", str(db))
    assert code == 1 and out.startswith("failed: ") and len(out.splitlines()) == 1, (out, err)
    code, _, err = _cli(capsys, "check", "doc:1", "view", "user:ann", "--db", str(db))
    assert code == 2 and err.startswith("error: ") and "acknowledge" in err
    if damage != "empty":  # an unreadable log is evidence: acknowledge does not overwrite it
        code, _, err = _cli(capsys, "audit", "acknowledge", "--db", str(db), "--by", "user:ops", "--reason", "x")
        assert code == 2 and "move it aside" in err
        shutil.move(path, tmp_path / "evidence.audit")
    assert _cli(capsys, "audit", "acknowledge", "--db", str(db), "--by", "user:ops", "--reason", "x")[0] == 0
    assert _cli(capsys, "check", "doc:1", "view", "user:ann", "--db", str(db))[0] == 0


# --- anchors: a rollback to an older copy ---------------------------------------------------------------


def test_anchors_catch_a_rollback_to_an_older_signed_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HEADWATER_AUDIT_KEY", KEY)
    db = _audited(tmp_path, key=KEY)
    older = tmp_path / "older.audit"
    _copy(_log(db), older)  # an older copy with its signed head
    for _ in range(3):  # decisions only: the store does not change
        assert _cli(capsys, "check", "doc:1", "view", "user:ann", "--db", str(db))[0] == 0
    anchor = tmp_path / "anchor.json"
    code, _, err = _cli(capsys, "audit", "anchor", "--db", str(db), "--output", str(anchor))
    assert code == 0 and "anchored record #6" in err
    document = json.loads(anchor.read_text())
    assert (document["sequence"], document["signed"], document["log"]) == (6, "hmac-sha256", _log_id(db))
    assert len(document["hash"]) == len(document["signature"]) == 64 and document["time"].endswith("Z")
    assert _cli(capsys, "audit", "verify", "--db", str(db), "--anchor", str(anchor))[0] == 0

    _copy(older, _log(db))
    assert _cli(capsys, "audit", "verify", "--db", str(db))[0] == 0  # by design: only an anchor can tell
    code, out, _ = _cli(capsys, "audit", "verify", "--db", str(db), "--anchor", str(anchor))
    assert code == 1 and "the log now ends at record #3, but it had reached #6 then: it was rolled back" in out

    # a forged anchor (its hash changed, the signature kept) and a malformed one are refused too
    _copy(tmp_path / "older.audit", _log(db))
    document["hash"] = "0" * 64
    anchor.write_text(json.dumps(document))
    code, out, _ = _cli(capsys, "audit", "verify", "--db", str(db), "--anchor", str(anchor))
    assert code == 1 and "signature does not match" in out
    anchor.write_text("{}")
    code, _, err = _cli(capsys, "audit", "verify", "--db", str(db), "--anchor", str(anchor))
    assert code == 2 and "is not an audit anchor" in err


def test_an_anchor_catches_a_rewritten_unkeyed_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = _audited(tmp_path)
    code, out, _ = _cli(capsys, "audit", "anchor", "--db", str(db))  # stdout
    assert code == 0 and json.loads(out)["signed"] is None and "signature" not in json.loads(out)
    anchor = tmp_path / "a.json"
    anchor.write_text(out)
    _rehash(db)  # a decision forged and the chain re-hashed: the file alone verifies
    assert _cli(capsys, "audit", "verify", "--db", str(db))[0] == 0
    code, out, _ = _cli(capsys, "audit", "verify", "--db", str(db), "--anchor", str(anchor))
    assert code == 1 and "record #3 no longer hashes to the anchored" in out
    (tmp_path / "other").mkdir()
    other = _audited(tmp_path / "other")
    code, out, _ = _cli(capsys, "audit", "verify", "--db", str(other), "--anchor", str(anchor))
    assert code == 1 and "is of another audit log" in out


def test_anchor_refuses_a_log_that_does_not_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = _audited(tmp_path)
    _sql(db, "UPDATE records SET body = json_set(body, '$.subject', 'user:x') WHERE id = 3")
    code, out, _ = _cli(capsys, "audit", "anchor", "--db", str(db))
    assert code == 1 and out.startswith("record 3: altered") and "{" not in out


class _Endpoint(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str | None, bytes]]] = []
    status = 201

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Endpoint.received.append((self.path, self.headers.get("Authorization"), body))
        self.send_response(_Endpoint.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def endpoint() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Endpoint.received.clear()
    _Endpoint.status = 201
    yield f"http://127.0.0.1:{server.server_address[1]}/anchors"
    server.shutdown()
    server.server_close()


def test_anchor_posts_to_the_operators_endpoint(tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    db = _audited(tmp_path)
    monkeypatch.setenv("HEADWATER_ANCHOR_AUTHORIZATION", "Bearer siem-token")
    code, out, err = _cli(capsys, "audit", "anchor", "--db", str(db), "--post", endpoint)
    assert code == 0 and out == "" and f"anchored record #3 at {endpoint} (HTTP 201)" in err
    [(path, authorization, body)] = _Endpoint.received
    assert path == "/anchors" and authorization == "Bearer siem-token" and json.loads(body)["sequence"] == 3
    _Endpoint.status = 500
    code, _, err = _cli(capsys, "audit", "anchor", "--db", str(db), "--post", endpoint)
    assert code == 2 and "HTTP 500" in err and "siem-token" not in err
    code, _, err = _cli(capsys, "audit", "anchor", "--db", str(db), "--post", "file:///etc/passwd")
    assert code == 2 and "http:// or https://" in err


# --- headwater serve ------------------------------------------------------------------------------------


def test_the_server_refuses_to_start_on_a_broken_trail(tmp_path: Path) -> None:
    db = _audited(tmp_path)
    _log(db).unlink()
    settings = {"address": "127.0.0.1:0", "db": str(db), "insecure_no_auth": True}
    with pytest.raises(AuditTrailBrokenError, match="headwater audit acknowledge"):
        HeadwaterServer(Config.of(**settings)).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    for flag in ("--no-audit", "--audit"):
        proc = subprocess.run([sys.executable, "-m", "headwater.engine", "serve", "--db", str(db), "--address",
                               "127.0.0.1:0", "--insecure-no-auth", flag], env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert proc.returncode == 2, proc.stderr
        assert "its audit trail is broken" in proc.stderr and "Traceback" not in proc.stderr
    assert not _log(db).exists()
    Engine.acknowledge_audit_break(db, by="user:ops", reason="INC-9")
    server = HeadwaterServer(Config.of(**settings)).start()
    try:
        assert server.engine is not None and server.engine.audit is not None  # audited without --audit
    finally:
        server.stop(grace=0)


@pytest.mark.parametrize("name", ["headwater.engine.audit.binding", "headwater.engine.audit.anchors"])
def test_docstring_examples_of_the_new_modules(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
