"""`headwater context` (saved servers, a 0600 file, masked tokens) and `headwater token create` (a round trip
through a real server started with the printed entry)."""

from __future__ import annotations

import json
import stat
import sys
import types
from pathlib import Path

import pytest

from headwater.engine import Config
from headwater.engine.cli import main
from headwater.engine.service.server import HeadwaterServer

from .conftest import POLICY

SECRET = "ctx-token-0123456789abcdef"


@pytest.fixture()
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "config"
    monkeypatch.setenv("HEADWATER_CONFIG_DIR", str(d))
    monkeypatch.setenv("HEADWATER_KEYRING", "0")
    for name in ("HEADWATER_DB", "HEADWATER_CONTEXT", "HEADWATER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return d


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture()
def server(tmp_path: Path) -> HeadwaterServer:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(f'[[tokens]]\nname = "ctx"\nscopes = ["check", "write", "schema"]\ntoken = "{SECRET}"\n')
    s = HeadwaterServer(Config.of(address="127.0.0.1:0", db=str(tmp_path / "s.db"), token_file=str(tokens),
                                  grace_seconds=1.0)).start()
    yield s
    s.stop(grace=0)


def test_contexts(config_dir: Path, server: HeadwaterServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["context", "list"], capsys)[0] == 0
    code, out, _ = _run(["context", "set", "dev", server.address, "--token", SECRET], capsys)
    assert code == 0 and "now current" in out and SECRET not in out
    path = config_dir / "contexts.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    other = ["context", "set", "other", server.address, "--token", "other-token-0123456789"]
    assert _run(other, capsys)[0] == 0
    code, out, _ = _run(["context", "list"], capsys)
    assert SECRET not in out and "other-token" not in out
    assert "* dev" in out and "  other" in out and "ctx-…(26 chars)" in out
    code, out, _ = _run(["context", "list", "--json"], capsys)
    listed = json.loads(out)
    assert SECRET not in out and [c["name"] for c in listed["contexts"]] == ["dev", "other"]
    assert listed["contexts"][0] == {"name": "dev", "current": True, "address": server.address, "tls": False,
                                     "tls_ca": None, "tls_cert": None, "tls_key": None, "token": "ctx-…(26 chars)",
                                     "token_store": "file"}
    # neither --db nor --server: the current context's server
    assert _run(["schema", "write", str(POLICY)], capsys)[0] == 0
    code, out, err = _run(["relationships", "touch", "dataset:d#owner@user:ann"], capsys)
    assert code == 0, err
    assert _run(["check", "dataset:d", "read", "user:ann"], capsys)[0] == 0  # no label: the lowest level
    # --profile picks another context (whose token the server does not know), and an unknown one is an error
    code, _, err = _run(["schema", "read", "--profile", "other"], capsys)
    assert code == 2 and "invalid bearer token" in err
    code, _, err = _run(["schema", "read", "--profile", "nope"], capsys)
    assert code == 2 and "no context named 'nope'" in err
    # use, remove; the file stays 0600
    assert _run(["context", "use", "other"], capsys)[0] == 0
    assert _run(["context", "use", "nope"], capsys)[0] == 1
    assert _run(["schema", "read", "--profile", "dev"], capsys)[0] == 0
    assert _run(["context", "remove", "other"], capsys)[0] == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    code, out, _ = _run(["context", "list", "--json"], capsys)
    assert [c["name"] for c in json.loads(out)["contexts"]] == ["dev"]
    # no current context any more: the usual error names the ways to give one
    code, _, err = _run(["schema", "read"], capsys)
    assert code == 2 and "--server" in err and "context" in err


def test_context_with_tls_files(config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not used")
    assert _run(["context", "set", "prod", "example.com:443", "--tls-ca", str(ca)], capsys)[0] == 0
    code, out, _ = _run(["context", "list", "--json"], capsys)
    entry = json.loads(out)["contexts"][0]
    assert entry["tls"] is True and entry["tls_ca"] == str(ca.resolve()) and entry["token"] == "none"
    assert _run(["context", "set", "prod", "example.com:443", "--insecure"], capsys)[0] == 0
    assert json.loads(_run(["context", "list", "--json"], capsys)[1])["contexts"][0]["tls"] is False


def test_token_create_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_CONFIG_DIR", str(tmp_path / "config"))
    code, out, err = _run(["token", "create", "policy-ci", "--scopes", "check,schema"], capsys)
    assert code == 0 and "shown once" in out and "cannot be shown again" in err
    token, _, entry = out.partition("\n")
    assert token.startswith("hw_") and len(token) > 40 and token not in entry
    code, out, _ = _run(["token", "create", "reader", "--scopes", "check", "--json"], capsys)
    reader = json.loads(out)
    assert set(reader) == {"name", "scopes", "token", "sha256", "entry"} and reader["token"] not in reader["entry"]
    (tmp_path / "tokens.toml").write_text(entry + "\n" + reader["entry"])
    server = HeadwaterServer(Config.of(address="127.0.0.1:0", db=str(tmp_path / "t.db"),
                                       token_file=str(tmp_path / "tokens.toml"), grace_seconds=1.0)).start()
    try:
        remote = ["--server", server.address]
        assert _run(["schema", "write", str(POLICY), *remote, "--token", token], capsys)[0] == 0
        code, out, _ = _run(["schema", "read", *remote, "--token", reader["token"]], capsys)
        assert code == 0 and "definition dataset" in out
        code, _, err = _run(["schema", "write", str(POLICY), *remote, "--token", reader["token"]], capsys)
        assert code == 2 and "scope" in err  # the reader lacks the schema scope
        code, _, err = _run(["schema", "read", *remote, "--token", "hw_not-a-real-token-000000"], capsys)
        assert code == 2 and "invalid bearer token" in err
    finally:
        server.stop(grace=0)
    code, _, err = _run(["token", "create", "x", "--scopes", "check,root"], capsys)
    assert code == 2 and "unknown: root" in err


def test_tokens_go_to_a_usable_keyring(config_dir: Path, server: HeadwaterServer, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store: dict[tuple[str, str], str] = {}
    keyring = types.ModuleType("keyring")
    keyring.get_keyring = lambda: types.SimpleNamespace(priority=1)  # type: ignore[attr-defined]
    keyring.set_password = lambda service, user, secret: store.__setitem__((service, user), secret)  # type: ignore
    keyring.get_password = lambda service, user: store.get((service, user))  # type: ignore[attr-defined]
    keyring.delete_password = lambda service, user: store.pop((service, user))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "keyring", keyring)
    monkeypatch.setenv("HEADWATER_KEYRING", "1")
    code, out, _ = _run(["context", "set", "dev", server.address, "--token", SECRET], capsys)
    assert code == 0 and "system keyring" in out
    assert store == {("headwater", "dev"): SECRET}
    assert SECRET not in (config_dir / "contexts.toml").read_text()
    assert json.loads(_run(["context", "list", "--json"], capsys)[1])["contexts"][0]["token_store"] == "keyring"
    monkeypatch.setenv("HEADWATER_CONTEXT", "dev")
    assert _run(["schema", "write", str(POLICY)], capsys)[0] == 0  # the token came from the keyring
    assert _run(["context", "remove", "dev"], capsys)[0] == 0 and store == {}
    # --no-keyring keeps it in the file
    assert _run(["context", "set", "dev", server.address, "--token", SECRET, "--no-keyring"], capsys)[0] == 0
    assert store == {} and SECRET in (config_dir / "contexts.toml").read_text()
