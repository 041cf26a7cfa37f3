"""Each monitoring rule fires on a synthetic decision log built to trigger it, and stays silent on one built not to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from headwater.engine import Engine
from headwater.engine.audit.records import AuditRecord, RecordKind
from headwater.engine.errors import ConfigError
from headwater.engine.governance.monitor import Monitor, Rules, source_labels
from headwater.engine.store.memory import MemoryStore

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 1, tzinfo=UTC)
START = T0 + timedelta(days=30)  # the monitored period starts here; the 30 days before are the baseline


@pytest.fixture(scope="module")
def engine() -> Engine:
    """The AI-lineage example: output:o2 inherits confidential PII from dataset:claims, o1 only confidential."""
    e = Engine(MemoryStore())
    e.write_schema((REPO / "examples/ai-lineage/policy.zed").read_text())
    e.touch("dataset:claims#label@sensitivity:confidential", "dataset:claims#label@sensitivity:pii",
            "dataset:anon#derived_from@dataset:claims", "dataset:anon#steward@user:stew",
            "model:fraud#trained_on@dataset:claims", "output:o2#produced_by@model:fraud",
            "dataset:stats#label@sensitivity:internal", "output:o3#input@dataset:stats")
    return e


class Log:
    """A synthetic audit log: records in chain order, with times and ids."""

    def __init__(self, token: str) -> None:
        self.records: list[AuditRecord] = []
        self.token = token

    def _add(self, kind: RecordKind, when: datetime, body: dict) -> None:
        self.records.append(AuditRecord(len(self.records) + 1, kind, when, body, "", ""))

    def decision(self, when: datetime, subject: str, resource: str, result: str = "HAS_PERMISSION") -> None:
        self._add(RecordKind.DECISION, when, {"subject": subject, "resource": resource, "permission": "view",
                                              "result": result, "revision": 3, "token": self.token})

    def declassification(self, when: datetime, operation: str = "touch") -> None:
        self._add(RecordKind.DECLASSIFICATION, when, {
            "actor": "user:stew", "reason": "scrubbed emails", "operation": operation, "revision": 4,
            "token": self.token, "relationship": "dataset:anon#scrubbed@sensitivity:pii", "resource": "dataset:anon",
            "subject": "sensitivity:pii", "relation": "scrubbed", "classification": "sensitivity", "value": "pii"})

    def changes(self, when: datetime, *changes: tuple[str, str]) -> None:
        self._add(RecordKind.RELATIONSHIPS, when, {"actor": "user:admin", "reason": "onboarding", "revision": 5,
                                                   "token": self.token, "operation": "write",
                                                   "changes": [list(c) for c in changes], "count": len(changes)})

    def run(self, engine: Engine, rules: Rules = Rules()) -> list:
        levels = {n: tuple(c.levels) for n, c in engine.schema().classifications.items()}
        monitor = Monitor(rules, labels=source_labels(engine), start=START, classifications=levels)
        return [alert for record in self.records for alert in monitor.feed(record)]


def log(engine: Engine) -> Log:
    return Log(engine.revision_token())


def test_first_access_fires_once_per_subject_and_value_with_the_lineage_path(engine: Engine) -> None:
    g = log(engine)
    g.decision(T0 + timedelta(days=1), "user:ann", "output:o2")  # ann touched confidential and pii in the baseline
    g.decision(START + timedelta(hours=1), "user:ann", "output:o2")  # nothing new for ann
    g.decision(START + timedelta(hours=2), "user:bob", "output:o3")  # bob: internal, for the first time
    g.decision(START + timedelta(hours=3), "user:bob", "output:o2")  # bob: confidential and pii, first time
    g.decision(START + timedelta(hours=4), "user:bob", "output:o2")  # again: nothing new
    g.decision(START + timedelta(hours=5), "user:cat", "output:o2", result="NO_PERMISSION")  # a denial touches nothing
    alerts = [a for a in g.run(engine) if a.rule == "first_access"]
    assert [(a.subject, a.value, a.record_id) for a in alerts] == [
        ("user:bob", "sensitivity:internal", 3), ("user:bob", "sensitivity:confidential", 4),
        ("user:bob", "sensitivity:pii", 4)]
    assert alerts[2].evidence["path"] == "output:o2 -produced_by-> model:fraud -trained_on-> dataset:claims"
    assert alerts[2].evidence["record_ids"] == [4] and alerts[2].evidence["resource"] == "output:o2"


def test_first_access_counts_a_higher_level_as_touching_the_lower_ones(engine: Engine) -> None:
    g = log(engine)
    g.decision(T0 + timedelta(days=2), "user:ann", "output:o2")  # confidential (and pii)
    g.decision(START + timedelta(hours=1), "user:ann", "output:o3")  # internal: below what ann touched
    assert [a for a in g.run(engine) if a.rule == "first_access"] == []


def test_a_denial_burst_fires_above_the_baseline_rate_and_not_below(engine: Engine) -> None:
    rules = Rules(rules=("denial_burst",), window=timedelta(hours=1), denial_factor=3.0, min_denials=5)
    quiet, probing = log(engine), log(engine)
    for day in range(30):  # 24 denials a day in the baseline: one an hour, for both
        for hour in range(24):
            for g in (quiet, probing):
                g.decision(T0 + timedelta(days=day, hours=hour), "user:eve", "dataset:claims", "NO_PERMISSION")
    for minute in range(4):  # 4 in an hour: under min_denials
        quiet.decision(START + timedelta(minutes=minute), "user:eve", "dataset:claims", "NO_PERMISSION")
    for minute in range(8):  # 8 in ten minutes: over 5 and over 3 x 1 expected
        probing.decision(START + timedelta(minutes=minute), "user:eve", "dataset:claims", "NO_PERMISSION")
    assert quiet.run(engine, rules) == []
    alerts = probing.run(engine, rules)
    assert [(a.rule, a.subject) for a in alerts] == [("denial_burst", "user:eve")]  # once per window
    first = len(probing.records) - 8 + 5  # the 5th denial of the burst fires it
    assert alerts[0].record_id == first and alerts[0].evidence["count"] == 5
    assert alerts[0].evidence["expected"] == 1.0 and alerts[0].evidence["record_ids"][-1] == first


def test_a_denial_burst_is_measured_against_the_subjects_own_baseline(engine: Engine) -> None:
    rules = Rules(rules=("denial_burst",), window=timedelta(hours=1), denial_factor=3.0, min_denials=5)
    g = log(engine)
    for day in range(30):  # a noisy service: 240 denials a day, 10 an hour
        for i in range(240):
            g.decision(T0 + timedelta(days=day, minutes=6 * i), "user:batch", "dataset:claims", "NO_PERMISSION")
    for i in range(20):  # 20 in an hour: under 3 x 10
        g.decision(START + timedelta(minutes=3 * i), "user:batch", "dataset:claims", "NO_PERMISSION")
    assert g.run(engine, rules) == []


def test_a_volume_spike_counts_only_sensitive_labels(engine: Engine) -> None:
    rules = Rules(rules=("volume_spike",), min_volume=10, volume_factor=3.0)
    sensitive, harmless = log(engine), log(engine)
    for i in range(12):
        sensitive.decision(START + timedelta(minutes=i), "user:ann", "output:o2")
        harmless.decision(START + timedelta(minutes=i), "user:ann", "output:o3")  # internal: not sensitive
    alerts = sensitive.run(engine, rules)
    assert [(a.rule, a.record_id, a.evidence["count"]) for a in alerts] == [("volume_spike", 10, 10)]
    assert harmless.run(engine, rules) == []


def test_every_declassification_fires(engine: Engine) -> None:
    g = log(engine)
    g.declassification(T0 + timedelta(days=3))  # in the baseline: not reported
    g.declassification(START + timedelta(minutes=5))
    g.declassification(START + timedelta(minutes=6), operation="delete")
    alerts = g.run(engine, Rules(rules=("declassification",)))
    assert [(a.rule, a.subject, a.value, a.record_id) for a in alerts] == [
        ("declassification", "user:stew", "sensitivity:pii", 2), ("declassification", "user:stew", "sensitivity:pii", 3)]
    assert alerts[0].evidence["reason"] == "scrubbed emails" and "removed" in alerts[1].summary
    assert g.run(engine, Rules(rules=("first_access",))) == []


def test_a_clearance_at_or_above_the_threshold_fires(engine: Engine) -> None:
    g = log(engine)
    g.changes(START + timedelta(minutes=1), ("touch", "sensitivity:restricted#cleared@user:mallory"),
              ("touch", "sensitivity:internal#cleared@user:bob"), ("delete", "sensitivity:restricted#cleared@user:x"),
              ("touch", "dataset:claims#viewer@user:mallory"))
    g.changes(START + timedelta(minutes=2), ("create", "sensitivity:confidential#cleared@team:analysts#member"))
    alerts = g.run(engine, Rules(rules=("high_clearance",)))
    assert [(a.subject, a.value) for a in alerts] == [("user:mallory", "sensitivity:restricted")]
    lower = g.run(engine, Rules(rules=("high_clearance",), clearance_threshold=("sensitivity:confidential",)))
    assert [(a.subject, a.value) for a in lower] == [("user:mallory", "sensitivity:restricted"),
                                                     ("team:analysts#member", "sensitivity:confidential")]


def test_the_rules_table_is_read_and_checked() -> None:
    rules = Rules.from_toml({"monitor": {"rules": ["first_access"], "window_seconds": 600, "min_denials": 3,
                                         "sensitive": ["sensitivity:pii"]}})
    assert (rules.rules, rules.window, rules.min_denials, rules.sensitive) == (
        ("first_access",), timedelta(minutes=10), 3, ("sensitivity:pii",))
    for bad, message in [({}, "no \\[monitor\\] table"), ({"monitor": {"rule": []}}, "unknown key 'rule'"),
                         ({"monitor": {"rules": ["typo"]}}, "unknown rule 'typo'"),
                         ({"monitor": {"window_seconds": -1}}, "must be positive"),
                         ({"monitor": {"sensitive": ["pii"]}}, "classification:value")]:
        with pytest.raises(ConfigError, match=message):
            Rules.from_toml(bad)
