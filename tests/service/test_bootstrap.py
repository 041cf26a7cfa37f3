"""``headwater serve --bootstrap FILE``: a validation file's schema and relationships loaded at start into an empty
store (engine/bootstrap.py), and ``make serve``'s use of it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from headwater.engine import Engine
from headwater.engine.client import Client
from headwater.engine.config import Config
from headwater.engine.errors import ConfigError
from headwater.engine.service.server import HeadwaterServer

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "ai-lineage" / "validation.yaml"


def start(db: Path, **settings: object) -> HeadwaterServer:
    return HeadwaterServer(Config.of(address="127.0.0.1:0", db=str(db), insecure_no_auth=True,
                                     bootstrap=str(EXAMPLE), **settings)).start()


def test_a_first_start_loads_the_file_and_answers(tmp_path: Path) -> None:
    server = start(tmp_path / "hw.db")
    try:
        with Client(server.address) as client:
            assert client.check("output:o1", "view", "user:frank").allowed
            denied = client.check("output:o1", "view", "user:bob", explain=True)
            assert not denied.allowed
            assert "missing `cleared` on sensitivity:confidential" in denied.explanation.summary[1]
            # the declassification of the example is there, by the bootstrap, as the audit and metadata say
            assert client.check("dataset:claims_anon", "read", "user:frank").allowed
            history = client.schema_history()
            assert [v.actor for v in history] == ["bootstrap"]
    finally:
        server.stop()


def test_a_restart_over_the_same_data_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "hw.db"
    start(db).stop()
    head = Engine.open(db).store.head()
    server = start(db)
    try:
        with Client(server.address) as client:
            assert client.check("output:o1", "view", "user:frank").allowed
    finally:
        server.stop()
    assert Engine.open(db).store.head() == head


def test_a_store_holding_other_data_is_refused_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "hw.db"
    engine = Engine.open(db)
    engine.write_schema("definition user {}\ndefinition doc {\n relation viewer: user\n}")
    engine.touch("doc:1#viewer@user:ann")
    head = engine.store.head()
    engine.close()
    with pytest.raises(ConfigError, match="the store is not empty .* loads into an empty store only"):
        start(db)
    assert Engine.open(db).store.head() == head


def test_bad_settings_and_files_are_refused_before_serving(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="give --schema or --bootstrap, not both"):
        start(tmp_path / "a.db", schema=str(REPO / "examples" / "ai-lineage" / "policy.zed"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("schema: |\n  definition user {}\nrelationships: |\n  doc:1#viewer@user:ann\n")
    with pytest.raises(ConfigError, match=r"cannot bootstrap from .*broken.yaml.*doc"):
        HeadwaterServer(Config.of(address="127.0.0.1:0", db=str(tmp_path / "b.db"), insecure_no_auth=True,
                                  bootstrap=str(broken))).start()
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError, match="missing.yaml"):
        HeadwaterServer(Config.of(address="127.0.0.1:0", db=str(tmp_path / "c.db"), insecure_no_auth=True,
                                  bootstrap=str(missing))).start()


def test_make_serve_bootstraps_the_ai_lineage_example() -> None:
    command = subprocess.run(["make", "-n", "serve"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    serve_line = [line for line in command.splitlines() if "headwater serve" in line]
    assert serve_line and "--bootstrap examples/ai-lineage/validation.yaml" in serve_line[-1]
