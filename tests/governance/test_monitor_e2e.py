"""The monitoring rules over a real audit trail: through Python, the CLI (--db and --server), gRPC (a scan and
--follow), and the server's own monitor with its Prometheus counter."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from headwater.client import Client
from headwater.engine import Config, Engine
from headwater.engine.bootstrap import bootstrap
from headwater.engine.cli import main
from headwater.engine.context import utc_now
from headwater.engine.governance.monitor import Rules, scan
from headwater.engine.service.server import HeadwaterServer

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "ai-lineage" / "validation.yaml"
RULES_TOML = '[monitor]\nmin_denials = 5\nmin_volume = 3\nwindow_seconds = 3600\n'
RULES = Rules(min_denials=5, min_volume=3)
EXPECTED = [  # (rule, subject, value) in record order
    ("first_access", "user:alice", "sensitivity:confidential"),
    ("first_access", "user:alice", "sensitivity:pii"),
    ("volume_spike", "user:alice", None),
    ("denial_burst", "user:bob", None),
    ("declassification", "user:stew", "sensitivity:pii"),
    ("high_clearance", "user:mallory", "sensitivity:restricted"),
]


def _activity(engine: Engine) -> datetime:
    """Baseline activity, then (after the returned time) activity built to raise EXPECTED, and some that must not."""
    engine.check("output:o1", "view", "user:frank")  # baseline: frank touches confidential
    engine.check("output:o1", "view", "user:bob")  # baseline: one denial for bob
    engine.flush_audit()
    time.sleep(0.05)
    middle = utc_now()
    time.sleep(0.05)
    engine.check("output:o2", "view", "user:alice")  # alice: confidential and pii, for the first time
    engine.check("output:o2", "view", "user:alice")
    engine.check("output:o2", "view", "user:alice")  # her 3rd on sensitive labels within the window: a spike
    engine.check("output:o1", "view", "user:frank")  # nothing new for frank
    engine.check("output:o2", "view", "user:frank")  # a denial touches nothing (and 1 is no burst)
    for _ in range(6):
        engine.check("output:o1", "view", "user:bob")  # bob probing: the 5th fires, once
    engine.touch("dataset:merged#steward@user:stew", actor="user:admin", reason="ownership")
    engine.touch("dataset:merged#scrubbed@sensitivity:pii", actor="user:stew", reason="emails removed")
    engine.touch("sensitivity:restricted#cleared@user:mallory", "sensitivity:internal#cleared@user:zed",
                 actor="user:admin", reason="onboarding")
    engine.flush_audit()
    return middle


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, datetime]]:
    db = tmp_path_factory.mktemp("monitor") / "hw.db"
    with Engine.open(str(db), config=Config.of(audit=True)) as engine:
        bootstrap(engine, EXAMPLE)
        middle = _activity(engine)
    yield db, middle


def _triples(alerts: list) -> list[tuple]:
    return [(a.rule, a.subject, a.value) for a in alerts]


def test_python_scan_raises_exactly_the_expected_alerts(audited: tuple[Path, datetime]) -> None:
    db, middle = audited
    with Engine.open(str(db)) as engine:
        alerts = scan(engine, RULES, since=middle)
        assert _triples(alerts) == EXPECTED
        assert scan(engine, RULES, since=middle) == alerts  # asked again: the same alerts
        assert scan(engine, RULES, since=utc_now()) == []  # a quiet period
    first = alerts[1]
    assert first.evidence["path"] == "output:o2 -produced_by-> model:fraud -trained_on-> dataset:claims"
    assert alerts[2].evidence["count"] == 3 and alerts[2].evidence["expected"] == 0.0
    assert alerts[3].evidence["count"] == 5 and alerts[5].evidence["reason"] == "onboarding"


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_cli_prints_json_lines_and_exits_1_on_alerts(audited: tuple[Path, datetime], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_CONFIG_DIR", str(tmp_path / "config"))
    db, middle = audited
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES_TOML)
    code, out, err = _cli(["monitor", "--db", str(db), "--since", middle.isoformat(), "--rules", str(rules),
                           "--json"], capsys)
    assert code == 1, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(a["rule"], a["subject"], a["value"]) for a in lines] == EXPECTED
    assert set(lines[0]) == {"rule", "time", "subject", "value", "summary", "record_id", "evidence"}
    code, out, err = _cli(["monitor", "--db", str(db), "--since", "0s", "--rules", str(rules)], capsys)
    assert (code, out) == (0, "") and "0 alerts since" in err
    with pytest.raises(SystemExit) as exited:  # argparse refuses it
        main(["monitor", "--db", str(db), "--since", "yesterday-ish"])
    assert exited.value.code == 2 and "not an ISO 8601 time nor a duration" in capsys.readouterr().err


@pytest.fixture()
def server(audited: tuple[Path, datetime], make_server: Callable[..., HeadwaterServer]) -> HeadwaterServer:
    return make_server(db=str(audited[0]), audit=True, monitor_rules=None)


def test_grpc_monitor_gives_the_same_alerts_and_needs_the_audit_scope(audited: tuple[Path, datetime],
                                                                       server: HeadwaterServer,
                                                                       capsys: pytest.CaptureFixture[str],
                                                                       tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.service.conftest import TOKENS
    _, middle = audited
    with Client(server.address, token=TOKENS["auditor"][0], timeout=30) as client:
        alerts = list(client.monitor(since=middle, rules_toml=RULES_TOML))
        with Engine.open(str(audited[0])) as engine:
            assert alerts == scan(engine, RULES, since=middle)
        assert _triples(alerts) == EXPECTED
        with pytest.raises(Exception, match="rules_toml"):
            list(client.monitor(since=middle, rules_toml="[monitor]\nrules = ['nope']\n"))
    with Client(server.address, token=TOKENS["reader"][0], timeout=30) as client:
        with pytest.raises(Exception, match="audit scope"):
            list(client.monitor(since=middle))
    monkeypatch.setenv("HEADWATER_CONFIG_DIR", str(tmp_path / "config"))
    code, out, err = _cli(["monitor", "--server", server.address, "--token", TOKENS["auditor"][0], "--since",
                           middle.isoformat(), "--json"], capsys)
    assert code == 1, err  # the server's rules (the defaults: min_denials 10, min_volume 20): no burst, no spike
    assert [tuple(json.loads(line)[k] for k in ("rule", "subject", "value")) for line in out.splitlines()] == [
        t for t in EXPECTED if t[0] not in ("denial_burst", "volume_spike")]


def test_grpc_follow_sends_an_alert_as_it_happens(server: HeadwaterServer) -> None:
    from tests.service.conftest import TOKENS
    received: list = []
    with Client(server.address, token=TOKENS["auditor"][0], timeout=20) as client:
        started = utc_now()

        def listen() -> None:
            try:
                for alert in client.monitor(since=started, follow=True, timeout=15):
                    received.append(alert)
                    return
            except Exception as exc:  # noqa: BLE001 - reported below
                received.append(exc)

        thread = threading.Thread(target=listen)
        thread.start()
        time.sleep(0.5)
        with Client(server.address, token=TOKENS["admin"][0], timeout=10) as admin:
            admin.touch("sensitivity:restricted#cleared@user:oscar", actor="user:admin", reason="incident 7")
        thread.join(20)
    assert len(received) == 1 and not isinstance(received[0], Exception), received
    assert (received[0].rule, received[0].subject, received[0].evidence["reason"]) == (
        "high_clearance", "user:oscar", "incident 7")


def test_the_servers_own_monitor_logs_and_counts_alerts(make_server: Callable[..., HeadwaterServer],
                                                        tmp_path: Path) -> None:
    from tests.service.conftest import TOKENS
    db = tmp_path / "watched.db"
    with Engine.open(str(db), config=Config.of(audit=True)) as engine:
        bootstrap(engine, EXAMPLE)
    s = make_server(db=str(db), audit=True, monitor=True, http_address="127.0.0.1:0", watch_poll_seconds=0.05)
    with Client(s.address, token=TOKENS["admin"][0], timeout=10) as admin:
        admin.check("output:o2", "view", "user:alice")
    deadline = time.monotonic() + 20
    while True:
        with urllib.request.urlopen(f"http://127.0.0.1:{s.http.port}/metrics", timeout=5) as response:
            text = response.read().decode()
        line = next((l for l in text.splitlines()
                     if l.startswith('headwater_monitor_alerts_total{rule="first_access"}')), None)
        if line is not None and float(line.split()[-1]) == 2.0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert line is not None and float(line.split()[-1]) == 2.0  # confidential and pii
    assert s.alerts is not None and s.alerts.raised == 2


def test_monitor_without_an_audit_log_is_refused_before_serving(make_server: Callable[..., HeadwaterServer]) -> None:
    from headwater.engine.errors import ConfigError
    with pytest.raises(ConfigError, match="monitor needs the audit log"):
        make_server(monitor=True)


def test_a_clearance_inside_a_batch_the_log_lists_only_as_a_digest_still_fires(tmp_path: Path) -> None:
    """A batch of more than LISTED_CHANGES relationships (here one import batch of 1,200, as SpiceDB's bulk import
    now writes) is recorded with its count and digest only; high_clearance reads its changes from the store's
    change history (Watch) instead, and says so in the evidence."""
    from headwater.engine.audit.records import LISTED_CHANGES
    from headwater.engine.governance.monitor import store_changes

    with Engine.open(str(tmp_path / "big.db"), config=Config.of(audit=True)) as engine:
        bootstrap(engine, EXAMPLE)
        since = utc_now()
        batch = [f"team:t{i}#member@user:u{i}" for i in range(1_199)] + ["sensitivity:restricted#cleared@user:mallory"]
        engine.import_relationships(batch, batch_size=1_200, actor="user:admin", reason="bulk onboarding")
        engine.flush_audit()
        (record,) = engine.audit_query(kind="relationships", since=since, limit=10).records
        assert record.get("changes") is None and record.get("count") == 1_200 > LISTED_CHANGES
        alerts = scan(engine, Rules(rules=("high_clearance",)), since=since)
        assert _triples(alerts) == [("high_clearance", "user:mallory", "sensitivity:restricted")]
        assert alerts[0].evidence["source"] == "store change history"
        assert alerts[0].evidence["reason"] == "bulk onboarding"
        changes = store_changes(engine)
        assert changes(record) is not None and len(changes(record)) == 1_200
        forged = type(record)(record.id, record.kind, record.time, {**record.body, "count": 7}, "", "")
        assert changes(forged) is None  # what the store holds must add up to what the log recorded
