"""`headwater serve`: settings from flags, environment and a TOML file; a real subprocess drained by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from headwater.engine.cli import main
from headwater.engine.client import Client, RemoteError
from headwater.engine.config import load_config
from headwater.engine.errors import ConfigError

from .conftest import SCHEMA, TOKENS, client_for, seed, write_token_file


def test_flags_beat_environment_beat_file_beat_defaults(tmp_path: Path) -> None:
    f = tmp_path / "headwater.toml"
    f.write_text('address = "127.0.0.1:7000"\nworkers = 3\nmax_depth = 11\ninsecure_no_auth = true\n'
                 'grace_seconds = 4.5\n')
    env = {"HEADWATER_WORKERS": "5", "HEADWATER_MAX_DEPTH": "12", "HEADWATER_CONFIG": str(f)}
    config = load_config({"max_depth": 13, "db": None}, env)
    server = config.server
    assert (server.address, server.workers, config.limits.max_depth, server.grace_seconds) == (
        "127.0.0.1:7000", 5, 13, 4.5)
    assert server.insecure_no_auth and config.storage.db == "headwater.db"
    assert config.limits.max_depth == 13


@pytest.mark.parametrize("file_text, env, message", [
    ("colour = 'blue'\ninsecure_no_auth = true\n", {}, "unknown setting 'colour'"),
    ("workers = 'many'\ninsecure_no_auth = true\n", {}, "workers from config file"),
    ("", {"HEADWATER_WORKERS": "0", "HEADWATER_INSECURE_NO_AUTH": "yes"}, "workers must be a positive integer"),
    ("", {"HEADWATER_INSECURE_NO_AUTH": "maybe"}, "HEADWATER_INSECURE_NO_AUTH"),
    ("address = [\n", {}, "not valid TOML"),
    ("", {}, "no token file"),
    ("insecure_no_auth = true\ntoken_file = 't.toml'\n", {}, "not both"),
])
def test_bad_settings_name_the_setting_and_the_source(tmp_path: Path, file_text: str, env: dict[str, str],
                                                      message: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(file_text)
    with pytest.raises(ConfigError, match=message):
        load_config({}, env, str(f))


def test_serve_refuses_to_start_without_auth(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    for name in [k for k in os.environ if k.startswith("HEADWATER_")]:
        monkeypatch.delenv(name)
    assert main(["serve", "--db", ":memory:"]) == 2
    assert "--insecure-no-auth" in capsys.readouterr().err


def test_check_against_a_running_server(server, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    assert main(["check", "document:readme", "view", "user:bob", "--server", server.address,
                 "--token", TOKENS["reader"][0]]) == 0
    assert capsys.readouterr().out.startswith("HAS_PERMISSION  at hw1_")
    monkeypatch.setenv("HEADWATER_TOKEN", TOKENS["reader"][0])
    assert main(["check", "document:readme", "view", "user:mallory", "--server", server.address, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["permissionship"] == "NO_PERMISSION"
    assert main(["check", "document:raw", "read", "user:bob", "--server", server.address, "--explain"]) == 0
    assert "granted" in capsys.readouterr().out
    monkeypatch.delenv("HEADWATER_TOKEN")
    assert main(["check", "document:readme", "view", "user:bob", "--server", server.address]) == 2
    assert "UNAUTHENTICATED" in capsys.readouterr().err
    assert main(["check", "document:readme", "view", "user:bob"]) == 2
    assert "--server" in capsys.readouterr().err


def _wait_for_serving(proc: subprocess.Popen[str], lines: list[str], timeout: float = 30) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for line in list(lines):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == "serving":
                return record
        if proc.poll() is not None:
            raise AssertionError(f"headwater serve exited with {proc.returncode}:\n" + "".join(lines))
        time.sleep(0.05)
    raise AssertionError("headwater serve did not report serving:\n" + "".join(lines))


def test_serve_subprocess_starts_answers_and_drains_on_sigterm(tmp_path: Path) -> None:
    tokens = write_token_file(tmp_path / "tokens.toml")
    schema = tmp_path / "schema.zed"
    schema.write_text(SCHEMA)
    db = tmp_path / "served.db"
    config = tmp_path / "headwater.toml"
    config.write_text(f'db = "{db}"\nworkers = 4\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(HEADWATER_CONFIG=str(config), HEADWATER_TOKEN_FILE=str(tokens), HEADWATER_GRACE_SECONDS="5",
               HEADWATER_WATCH_POLL_SECONDS="0.05")
    proc = subprocess.Popen([sys.executable, "-m", "headwater.engine", "serve", "--address", "127.0.0.1:0",
                             "--schema", str(schema)], env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        ready = _wait_for_serving(proc, lines)
        assert ready["auth"] and ready["workers"] == 4 and ready["tokens"] == sorted(TOKENS, key=list(TOKENS).index)
        address = f"127.0.0.1:{ready['port']}"
        with Client(address, token=TOKENS["admin"][0], timeout=10) as c:
            assert c.health() == "SERVING"
            token = c.touch("document:readme#viewer@user:bob").token
            assert c.check("document:readme", "view", "user:bob").allowed
            # A Watch in flight when SIGTERM arrives ends with UNAVAILABLE (resume from its last token).
            outcome: list[object] = []

            def watch() -> None:
                try:
                    outcome.extend(c.follow(token, timeout=20))
                    outcome.append("ended")
                except RemoteError as exc:
                    outcome.append(exc.code)

            t = threading.Thread(target=watch)
            t.start()
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
            t.join(10)
            assert outcome and outcome[-1] in ("UNAVAILABLE", "ended"), outcome
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    events = [e for e in (json.loads(line).get("event") for line in lines if line.startswith("{")) if e]
    assert events[-3:] == ["signal", "draining", "stopped"], events
    assert db.exists()
    text = "".join(lines)
    assert all(secret not in text for secret, _ in TOKENS.values())
    rpc_lines = [json.loads(line) for line in lines if '"method"' in line]
    assert {r["token"] for r in rpc_lines} == {"admin"}
    assert [r["status"] for r in rpc_lines if r["method"].endswith("/Watch")] == ["UNAVAILABLE"]
    # The database survives the restart: the schema is not written again, the relationship is there.
    from headwater.engine import Engine

    with Engine.open(db) as engine:
        assert engine.check("document:readme", "view", "user:bob").allowed
        assert len(engine.store.schema_history()) == 1


def test_schema_file_loaded_at_start_only_when_it_changed(make_server, tmp_path: Path) -> None:
    schema = tmp_path / "s.zed"
    schema.write_text(SCHEMA)
    db = str(tmp_path / "reuse.db")
    first = make_server(db=db, schema=str(schema))
    with client_for(first) as c:
        assert len(c.schema_history()) == 1
    first.stop(grace=0)
    second = make_server(db=db, schema=str(schema))
    with client_for(second) as c:
        history = c.schema_history()
        assert len(history) == 1 and history[0].actor == "headwater serve"
    second.stop(grace=0)
    schema.write_text("definition broken {")
    from headwater.dsl import DslError

    with pytest.raises(DslError):
        make_server(db=db, schema=str(schema))


def test_stop_drains_in_flight_calls(make_server, monkeypatch) -> None:
    server = make_server(grace_seconds=5)
    with client_for(server) as c:
        seed(c)
    real = server.servicer.engine.check
    entered = threading.Event()

    def slow(*args, **kwargs):
        entered.set()
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(server.servicer.engine, "check", slow)
    result: list[object] = []
    with client_for(server) as c:
        t = threading.Thread(target=lambda: result.append(c.check("document:readme", "view", "user:bob").allowed))
        t.start()
        assert entered.wait(10)
        server.stop()
        t.join(5)
    assert result == [True]


def test_an_address_in_use_is_a_clear_error(make_server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = make_server(insecure_no_auth=True)
    assert main(["serve", "--insecure-no-auth", "--db", str(tmp_path / "x.db"), "--address", first.address]) == 2
    assert f"cannot listen on {first.address}" in capsys.readouterr().err


def test_cache_size_from_flag_environment_and_file(tmp_path: Path) -> None:
    from headwater.engine.config import Config

    f = tmp_path / "headwater.toml"
    f.write_text("insecure_no_auth = true\ncache_size = 500\n")
    env = {"HEADWATER_CONFIG": str(f)}
    assert load_config({}, env).cache.size == 500
    assert load_config({}, {**env, "HEADWATER_CACHE_SIZE": "70"}).cache.size == 70
    config = load_config({"cache_size": 0}, {**env, "HEADWATER_CACHE_SIZE": "70"})
    assert config.cache.size == 0
    assert load_config({}, {"HEADWATER_INSECURE_NO_AUTH": "1"}).cache.size == Config().cache.size
    with pytest.raises(ConfigError, match="cache_size must be zero"):
        load_config({}, {**env, "HEADWATER_CACHE_SIZE": "-1"})
    f.write_text("insecure_no_auth = true\ncache_size = 'big'\n")
    with pytest.raises(ConfigError, match="cache_size from config file"):
        load_config({}, env)


def test_serve_cache_size_flag_reaches_the_config(monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    from headwater.engine.service import server as server_module

    for name in [k for k in os.environ if k.startswith("HEADWATER_")]:
        monkeypatch.delenv(name)
    seen = []
    monkeypatch.setattr(server_module, "serve", lambda config: seen.append(config) or 0)
    assert main(["serve", "--insecure-no-auth", "--db", ":memory:", "--cache-size", "0"]) == 0
    assert main(["serve", "--insecure-no-auth", "--db", ":memory:"]) == 0
    assert [c.cache.size for c in seen] == [0, 100_000]
    assert main(["serve", "--insecure-no-auth", "--db", ":memory:", "--cache-size", "-5"]) == 2
    assert "cache_size must be zero" in capsys.readouterr().err


def test_a_server_without_cache_answers_every_check_afresh(make_server) -> None:
    cached, uncached = make_server(), make_server(cache_size=0)
    assert cached.engine.caches.checks is not None and uncached.engine.caches.checks is None and uncached.engine.caches.lineage is None
    for server in (cached, uncached):
        with client_for(server) as c:
            seed(c)
            for _ in range(2):
                assert c.check("document:readme", "view", "user:bob").allowed
                assert not c.check("document:readme", "view", "user:mallory").allowed
                assert c.check("document:report", "read", "user:bob").allowed
    assert cached.engine.cache_stats()["hits"] > 0 and uncached.engine.cache_stats()["size"] == 0
