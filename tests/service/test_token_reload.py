"""SIGHUP reloads the token file of a running ``headwater serve``: new tokens work, removed ones are refused, a
broken file is refused and the tokens in force stay; connections and streams in flight are kept."""

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

from headwater.engine.client import Client, RemoteError
from headwater.engine.config import Config
from headwater.engine.service.server import HeadwaterServer, serve

from .conftest import SCHEMA, TOKENS, write_token_file

NEWBIE = "newbie-token-0123456789"


def _events(lines: list[str]) -> list[dict]:
    found = []
    for line in list(lines):
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def _wait_for(proc: subprocess.Popen[str], lines: list[str], event: str, count: int = 1,
              timeout: float = 30) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        matching = [r for r in _events(lines) if r.get("event") == event]
        if len(matching) >= count:
            return matching[count - 1]
        if proc.poll() is not None:
            raise AssertionError(f"headwater serve exited with {proc.returncode}:\n" + "".join(lines))
        time.sleep(0.05)
    raise AssertionError(f"no {event!r} line (#{count}) from headwater serve:\n" + "".join(lines))


def _refused(address: str, token: str) -> str:
    with Client(address, token=token, timeout=10) as c:
        with pytest.raises(RemoteError) as info:
            c.check("document:readme", "view", "user:bob")
        return info.value.code


def _allowed(address: str, token: str) -> bool:
    with Client(address, token=token, timeout=10) as c:
        return c.check("document:readme", "view", "user:bob").allowed


def test_sighup_reloads_the_token_file_and_refuses_a_broken_one(tmp_path: Path) -> None:
    tokens = write_token_file(tmp_path / "tokens.toml")
    schema = tmp_path / "schema.zed"
    schema.write_text(SCHEMA)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(HEADWATER_WATCH_POLL_SECONDS="0.05", HEADWATER_GRACE_SECONDS="2")
    proc = subprocess.Popen([sys.executable, "-m", "headwater.engine", "serve", "--address", "127.0.0.1:0",
                             "--db", str(tmp_path / "hw.db"), "--token-file", str(tokens), "--schema", str(schema)],
                            env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        address = f"127.0.0.1:{_wait_for(proc, lines, 'serving')['port']}"
        admin = Client(address, token=TOKENS["admin"][0], timeout=10)
        start = admin.touch("document:readme#viewer@user:bob").token
        assert _allowed(address, TOKENS["reader"][0])
        assert _refused(address, NEWBIE) == "UNAUTHENTICATED"
        watched: list[str] = []
        watch = threading.Thread(target=lambda: watched.extend(
            str(e.relationship) for e in admin.follow(start, timeout=8)), daemon=True)
        watch.start()  # a stream open across both reloads

        # A good file: newbie added, reader removed, admin kept.
        text = tokens.read_text().replace('name = "reader"', 'name = "newbie"').replace(TOKENS["reader"][0], NEWBIE)
        tokens.write_text(text)
        proc.send_signal(signal.SIGHUP)
        reloaded = _wait_for(proc, lines, "tokens_reloaded")
        assert "newbie" in reloaded["tokens"] and "reader" not in reloaded["tokens"]
        assert _allowed(address, NEWBIE)
        assert _refused(address, TOKENS["reader"][0]) == "UNAUTHENTICATED"
        assert admin.check("document:readme", "view", "user:bob").allowed  # the same connection, still served

        # A broken file: refused, logged, the tokens in force stay.
        tokens.write_text('[[tokens]]\nname = "half-written"\nscopes = ["check"]\ntoken = "short"\n')
        proc.send_signal(signal.SIGHUP)
        refused = _wait_for(proc, lines, "tokens_not_reloaded")
        assert refused["level"] == "error" and "at least 16 characters" in refused["reason"]
        assert "short" not in json.dumps(refused)  # never a token, even a broken one
        assert _allowed(address, NEWBIE)
        assert _refused(address, TOKENS["reader"][0]) == "UNAUTHENTICATED"
        tokens.unlink()  # a missing file too
        proc.send_signal(signal.SIGHUP)
        _wait_for(proc, lines, "tokens_not_reloaded", count=2)
        assert _allowed(address, NEWBIE)

        admin.touch("document:after#viewer@user:ann")
        watch.join(15)
        assert "document:after#viewer@user:ann" in watched  # the Watch stream outlived the reloads
        admin.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    assert [r["signal"] for r in _events(lines) if r.get("event") == "signal"] == ["SIGHUP"] * 3 + ["SIGTERM"]


@pytest.mark.skipif(sys.platform != "linux", reason="--processes N serves on Linux only (SO_REUSEPORT)")
def test_the_supervisor_passes_sighup_to_every_worker(tmp_path: Path) -> None:
    tokens = write_token_file(tmp_path / "tokens.toml")
    schema = tmp_path / "schema.zed"
    schema.write_text(SCHEMA)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(HEADWATER_GRACE_SECONDS="2")
    proc = subprocess.Popen([sys.executable, "-m", "headwater.engine", "serve", "--address", "127.0.0.1:0",
                             "--db", str(tmp_path / "hw.db"), "--token-file", str(tokens), "--schema", str(schema),
                             "--processes", "2"], env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        address = f"127.0.0.1:{_wait_for(proc, lines, 'serving', timeout=60)['port']}"
        with Client(address, token=TOKENS["admin"][0], timeout=10) as admin:
            admin.touch("document:readme#viewer@user:bob")
        tokens.write_text(tokens.read_text().replace('name = "reader"', 'name = "newbie"')
                          .replace(TOKENS["reader"][0], NEWBIE))
        proc.send_signal(signal.SIGHUP)
        _wait_for(proc, lines, "tokens_reloaded", count=2)
        reloaded = [r for r in _events(lines) if r.get("event") == "tokens_reloaded"]
        assert sorted(r["worker"] for r in reloaded) == [0, 1]
        for _ in range(6):  # new connections, spread over both workers
            assert _allowed(address, NEWBIE)
            assert _refused(address, TOKENS["reader"][0]) == "UNAUTHENTICATED"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)


def test_a_sighup_while_starting_is_done_once_serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = write_token_file(tmp_path / "tokens.toml")
    schema = tmp_path / "schema.zed"
    schema.write_text(SCHEMA)
    load = HeadwaterServer._load_schema

    def hangup_while_loading(self: HeadwaterServer, path: str) -> None:  # the tokens were read already
        tokens.write_text(tokens.read_text().replace('name = "reader"', 'name = "newbie"'))
        os.kill(os.getpid(), signal.SIGHUP)  # by default, this would end the process (pytest with it)
        load(self, path)

    monkeypatch.setattr(HeadwaterServer, "_load_schema", hangup_while_loading)
    seen: list[list[str]] = []

    def ready(server: HeadwaterServer) -> None:
        def watch() -> None:
            end = time.monotonic() + 15
            while time.monotonic() < end and not seen:
                assert server.tokens is not None
                names = [e.name for e in server.tokens.entries]
                if "newbie" in names:
                    seen.append(names)
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=watch, daemon=True).start()

    config = Config.of(address="127.0.0.1:0", db=str(tmp_path / "hw.db"), token_file=str(tokens), schema=str(schema),
                       grace_seconds=1)
    assert serve(config, ready=ready) == 0
    assert seen and "reader" not in seen[0]
