"""Every command of the table against a database (--db), a server (--server) and a TLS server (--tls-ca), and
--json on every command that prints data.

A new command must be added to CASES (with the arguments that make it work on the ai-lineage example) or to
LOCAL (commands that work on files or the machine itself, never on a database or server).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from headwater.engine.cli import TABLE, main
from headwater.engine.cli.table import Command

from .conftest import POLICY, Target

Case = Callable[[Target, Path], list[str]]

# command -> (its arguments for a target and a temporary folder, the exit code, a text stdout must contain)
CASES: dict[str, tuple[Case, int, str]] = {
    "check": (lambda t, d: ["dataset:claims", "read", "user:alice"], 0, "HAS_PERMISSION"),
    "check-bulk": (lambda t, d: [_file(d / "items.txt", "// items\ndataset:claims read user:alice\n\n"
                                                       "dataset:claims read user:bob\n")], 1,
                   "dataset:claims read user:bob  NO_PERMISSION"),
    "expand": (lambda t, d: ["dataset:claims", "viewer"], 0, "user:bob"),
    "lookup-resources": (lambda t, d: ["dataset", "read", "user:alice"], 0, "dataset:claims"),
    "lookup-subjects": (lambda t, d: ["dataset:claims", "read", "user"], 0, "user:alice"),
    "labels": (lambda t, d: ["dataset:claims"], 0, "confidential"),
    "ancestors": (lambda t, d: ["dataset:merged"], 0, "dataset:claims"),
    "descendants": (lambda t, d: ["dataset:claims"], 0, "dataset:merged"),
    "derive": (lambda t, d: [f"output:dv_{t.name}", "--lineage", "produced_by=model:fraud", "--relationship",
                             f"output:dv_{t.name}#requester@user:alice", "--check", "view@user:alice"], 0,
               "view@user:alice  HAS_PERMISSION"),
    "openlineage ingest": (lambda t, d: [str(POLICY.parents[1] / "openlineage" / "pipeline.ndjson")], 0,
                           "4 events read, 4 recorded"),
    "schema write": (lambda t, d: [str(POLICY)], 0, "schema version"),
    "schema read": (lambda t, d: [], 0, "definition dataset"),
    "schema diff": (lambda t, d: [str(POLICY)], 0, "no semantic change"),
    "relationships touch": (lambda t, d: [f"dataset:t_{t.name}#viewer@user:zed"], 0, "touch: 1 relationship"),
    "relationships create": (lambda t, d: [f"dataset:c_{t.name}#viewer@user:zed"], 0, "create: 1 relationship"),
    "relationships delete": (lambda t, d: ["dataset:nothing#viewer@user:zed"], 0, "delete: 1 relationship"),
    "relationships read": (lambda t, d: ["--resource-type", "dataset", "--resource-id", "claims"], 0,
                           "dataset:claims#owner@user:dan"),
    "export": (lambda t, d: ["-"], 0, "dataset:claims#owner@user:dan"),
    "import": (lambda t, d: [_file(d / "rels.txt", f"dataset:i_{t.name}#viewer@user:zed\n")], 0,
               "imported 1 relationship"),
    "watch": (lambda t, d: ["--after", t.token], 0, ""),
    "backup create": (lambda t, d: [str(d / "store.backup")], 0, "backed up"),
    "audit verify": (lambda t, d: [], 0, "ok"),
    "audit query": (lambda t, d: ["--kind", "decision", "--limit", "5"], 0, "dataset:claims"),
    "audit export": (lambda t, d: ["-", "--kind", "decision"], 0, "dataset:claims"),
    "audit replay": (lambda t, d: [str(t.decision)], 0, "HAS_PERMISSION"),
    "report": (lambda t, d: ["--classification", "sensitivity"], 0, '"object": "output:o2"'),
    # the seeded decision (alice reads dataset:claims) is her first access to its labels: exit 1, alerts
    "monitor": (lambda t, d: ["--since", "1d"], 1, "first_access  user:alice  sensitivity:confidential"),
    # the seeded decision (alice reads dataset:claims, through team:analysts) is closed by the proposal: exit 1
    "impact": (lambda t, d: ["--relationships", _file(d / "proposal.txt", "-team:analysts#member@user:alice\n")],
               1, "dataset:claims#read@user:alice  HAS_PERMISSION -> NO_PERMISSION"),
}

# Local by nature: files on disk, the machine, or the database itself; or tested elsewhere on every target
# (backup restore needs an empty store: tests of backup).
LOCAL = {"fmt", "lint", "validate", "migrate", "serve", "serve-testing", "audit init", "audit anchor",
         "audit acknowledge", "audit prune", "context set", "context use", "context list", "context remove",
         "token create", "completion", "backup restore", "backup verify", "openlineage id", "playground"}

# --json: the keys of each JSON document printed (the first one, for JSON lines).
JSON_KEYS: dict[str, set[str]] = {
    "check": {"permissionship", "missing_context", "token"},
    "check-bulk": {"resource", "permission", "subject", "permissionship", "missing_context", "token", "error"},
    "expand": {"tree", "token", "subjects"},
    "lookup-resources": {"resource", "permissionship", "missing_context"},
    "lookup-subjects": {"subject", "excluded", "permissionship", "missing_context"},
    "labels": {"object", "token", "classifications"},
    "ancestors": {"depth", "object", "path"},
    "descendants": {"depth", "object", "path"},
    "derive": {"object", "token", "written", "classifications", "decisions"},
    "openlineage ingest": {"events", "recorded", "ignored", "relationships", "revision"},
    "schema write": {"stored", "version", "digest", "token"},
    "schema read": {"schema", "digest", "token"},
    "schema diff": {"old", "new", "diff", "changes"},
    "relationships touch": {"operation", "count", "token"},
    "relationships create": {"operation", "count", "token"},
    "relationships delete": {"operation", "count", "token"},
    "relationships read": {"relationship", "resource", "relation", "subject", "caveat", "caveat_context",
                           "expiration"},
    "export": {"relationship", "resource", "relation", "subject", "caveat", "caveat_context", "expiration"},
    "import": {"count", "batches", "seconds", "token"},
    "watch": {"token", "operation", "relationship"},
    "audit verify": {"ok", "records", "count", "head_hash", "record_id", "problem", "notes", "message"},
    "audit query": {"id"},
    "audit replay": {"record", "available", "same", "permissionship", "missing_context", "explanation", "message"},
    "report": {"token", "revision", "since", "permissions", "subject_types", "notes", "objects", "classifications",
               "changes", "diff"},
    "monitor": {"rule", "time", "subject", "value", "summary", "record_id", "evidence"},
    "impact": {"token", "decisions", "checks", "skipped", "changed", "opened", "closed", "conditional", "errors",
               "refused", "changes"},
}


def _file(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _commands() -> list[Command]:
    return [c for c in TABLE if isinstance(c, Command)]


def _takes(command: str, flag: str) -> bool:
    entry = next(c for c in _commands() if c.name == command)
    return any(flag in a.names for a in entry.args)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_command_is_covered() -> None:
    names = {c.name for c in _commands()}
    assert names - set(CASES) - LOCAL == set(), "add the new command to CASES or LOCAL"
    for name in CASES:
        assert _takes(name, "--server") and _takes(name, "--tls-ca") and _takes(name, "--profile"), name


@pytest.mark.parametrize("mode", ["db", "server", "tls"])
@pytest.mark.parametrize("command", sorted(CASES))
def test_command_works_on_each_target(command: str, mode: str, targets: dict[str, Target], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEADWATER_DB", raising=False)
    monkeypatch.setenv("HEADWATER_CONFIG_DIR", str(tmp_path / "config"))  # no saved context
    build, expected_code, expected_text = CASES[command]
    target = targets[mode]
    code, out, err = _run([*command.split(), *build(target, tmp_path), *target.args], capsys)
    assert code == expected_code, err
    assert expected_text in out, (out, err)


@pytest.mark.parametrize("mode", ["db", "server"])
@pytest.mark.parametrize("command", sorted(JSON_KEYS))
def test_json_output(command: str, mode: str, targets: dict[str, Target], tmp_path: Path,
                     capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_CONFIG_DIR", str(tmp_path / "config"))
    assert _takes(command, "--json")
    build, expected_code, _ = CASES[command]
    target = targets[mode]
    argv = [*command.split(), *build(target, tmp_path), *target.args, "--json"]
    if command in ("relationships create", "import"):  # a relationship of its own: create fails on an existing one
        argv = [a.replace(f"_{mode}#", f"_{mode}_json#") for a in argv]
        if command == "import":
            Path(argv[1]).write_text(f"dataset:i_{mode}_json#viewer@user:zed\n", encoding="utf-8")
    code, out, err = _run(argv, capsys)
    assert code == expected_code, err
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert lines, err
    documents = [json.loads(out)] if command in ("labels", "derive", "report") else [json.loads(ln) for ln in lines]
    assert JSON_KEYS[command] <= set(documents[0]), documents[0]


def test_every_data_printing_command_has_json() -> None:
    for name in CASES:
        if name not in ("audit export", "backup create"):  # JSON Lines already; writes a backup file
            assert _takes(name, "--json"), name


def test_schema_write_dry_run_accepts_or_refuses(targets: dict[str, Target], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    narrower = POLICY.read_text(encoding="utf-8").replace("    relation steward: user\n", "", 1)
    narrower = narrower.replace("declassify scrubbed: sensitivity by steward", "relation scrubbed: sensitivity")
    new = _file(tmp_path / "narrower.zed", narrower)
    for mode in ("db", "server"):
        code, out, err = _run(["schema", "write", "--dry-run", new, *targets[mode].args], capsys)
        assert code == 1, (out, err)
        assert "would be REFUSED" in out and "refused:" in out and "-    relation steward: user" in out
        code, out, _ = _run(["schema", "write", "--dry-run", str(POLICY), *targets[mode].args, "--json"], capsys)
        assert code == 0 and json.loads(out)["accepted"] is True and json.loads(out)["stored"] is False
    code, out, _ = _run(["schema", "read", *targets["db"].args], capsys)
    assert "relation steward: user" in out  # nothing was stored


def test_schema_diff_of_two_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = _file(tmp_path / "old.zed", "definition user {}\ndefinition doc {\n  relation viewer: user\n"
                                      "  relation banned: user\n  permission view = viewer - banned\n}\n")
    new = _file(tmp_path / "new.zed", "definition user {}\ndefinition team {}\n\ndefinition doc {\n"
                                      "    relation viewer: user | team\n    permission view = viewer\n"
                                      "    permission edit = viewer\n}\n")
    code, out, _ = _run(["schema", "diff", old, new], capsys)
    assert code == 0
    assert f"--- {old}" in out and f"+++ {new}" in out
    for line in ("+ definition team", "- relation doc#banned", "~ relation doc#viewer", "~ permission doc#view",
                 "+ permission doc#edit"):
        assert line in out.splitlines(), out
    code, out, _ = _run(["schema", "diff", old, old, "--json"], capsys)
    assert json.loads(out) == {"old": old, "new": old, "diff": "", "changes": []}
    formatted = _file(tmp_path / "same.zed", Path(old).read_text().replace("  ", "\t"))
    code, out, _ = _run(["schema", "diff", old, formatted], capsys)
    assert out.strip() == "no semantic change"
    assert _run(["schema", "diff", old, str(tmp_path / "missing.zed")], capsys)[0] == 2


def test_validate_accepts_a_schema_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["validate", str(POLICY)], capsys)
    assert code == 0
    lint_code, lint_out, _ = _run(["lint", str(POLICY)], capsys)
    assert out == lint_out and "ok (" in out
    bad = _file(tmp_path / "bad.zed", "definition doc {\n  relation viewer: nobody\n}\n")
    code, out, _ = _run(["validate", bad], capsys)
    assert code == 1 and "1 error" in out
    assert _run(["validate", bad, str(POLICY.parent / "validation.yaml")], capsys)[0] == 2
    code, out, _ = _run(["validate", "--json", str(POLICY), bad], capsys)
    reports = json.loads(out)
    assert code == 1 and [r["ok"] for r in reports] == [True, False]
    assert reports[0]["summary"] == lint_out.strip() and reports[1]["summary"].endswith("1 error")
    assert any("nobody" in m for m in reports[1]["messages"])
    assert json.loads(_run(["lint", "--json", str(POLICY)], capsys)[1]) == reports[:1]


def test_mutual_tls_and_the_token_from_the_environment(make_mtls_server: Callable[[], str], certs: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from .conftest import ADMIN

    monkeypatch.setenv("HEADWATER_CONFIG_DIR", str(certs / "no-config"))
    address = make_mtls_server()
    monkeypatch.setenv("HEADWATER_TOKEN", ADMIN)
    # (without a client certificate the handshake fails: tests/service/test_tls.py; the client retries it a while)
    code, out, err = _run(["schema", "write", str(POLICY), "--server", address, "--tls-ca", str(certs / "ca.pem"),
                           "--tls-cert", str(certs / "client.pem"), "--tls-key", str(certs / "client.key")], capsys)
    assert code == 0 and "stored schema version 1" in out, err
