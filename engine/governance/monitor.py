"""Access monitoring: rules over the audit trail that flag unusual access to sensitive data, with their evidence.

The rules read the decision log (the audit trail's ``decision`` records: who was
allowed or denied what, at which revision) and its change records, per subject and
per classification value (``sensitivity:pii``):

==================  ===========================================================================
``first_access``    a subject is allowed, for the first time since the baseline began, on an
                    object whose effective label holds a value it never touched before (a
                    level counts as touched once the subject touched it or a higher one)
``denial_burst``    a subject's denials within ``window`` reach ``denial_factor`` times its
                    baseline rate (and at least ``min_denials``): someone probing
``volume_spike``    the same for allowed decisions on sensitive labels (``sensitive``)
``declassification``  every declassification written (who, why, at which revision)
``high_clearance``  every clearance granted on a value at or above ``clearance_threshold``
==================  ===========================================================================

A :class:`Monitor` takes records in chain order: those before the monitored period
form the baseline (``baseline`` long) and raise nothing; later ones raise
:class:`Alert` s. Alerts are a pure function of the log and of the labels at each
decision's revision, so asking again for the same period gives the same alerts: that
is how they are queried afterwards. :func:`scan` runs a period; :func:`follow` keeps
reading new records as they are written.

Example (records made by hand; an engine's audit log gives real ones)::

    >>> from datetime import UTC, datetime, timedelta
    >>> from headwater.engine.audit.records import AuditRecord, RecordKind
    >>> t0 = datetime(2026, 12, 6, tzinfo=UTC)
    >>> def decision(i, subject, resource, result="HAS_PERMISSION"):
    ...     return AuditRecord(i, RecordKind.DECISION, t0 + timedelta(minutes=i), {
    ...         "subject": subject, "resource": resource, "permission": "view", "result": result,
    ...         "revision": 7, "token": "hw1_x"}, "", "")
    >>> labels = {"output:o1": {"sensitivity:pii": "output:o1 -produced_by-> model:m -trained_on-> dataset:d"}}
    >>> monitor = Monitor(Rules(), labels=lambda resource, token: labels.get(resource, {}), start=t0 + timedelta(
    ...     minutes=10))
    >>> [a.rule for a in monitor.feed(decision(1, "user:ann", "output:o1"))]   # the baseline: ann touched pii
    []
    >>> [(a.rule, a.subject, a.value) for a in monitor.feed(decision(11, "user:bob", "output:o1"))]
    [('first_access', 'user:bob', 'sensitivity:pii')]
    >>> [a.rule for a in monitor.feed(decision(12, "user:ann", "output:o1"))]
    []
"""

from __future__ import annotations

import inspect
import time as _time
import tomllib
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..audit.records import AuditRecord, RecordKind
from ..consistency import Consistency, encode_token
from ..config import read_toml
from ..errors import ConfigError, InvalidRequestError, RevisionUnavailableError
from ..results import Alert

__all__ = ["RULES", "Alert", "Monitor", "Rules", "follow", "monitor_rules", "scan", "source_labels", "store_changes"]

RULES = ("first_access", "denial_burst", "volume_spike", "declassification", "high_clearance")
_ALLOWED = "HAS_PERMISSION"
_DENIED = "NO_PERMISSION"
_EVIDENCE_IDS = 20  # record ids listed as the evidence of a burst or spike


@dataclass(frozen=True, slots=True)
class Rules:
    """The rules' settings (a TOML ``[monitor]`` table: :meth:`from_toml`; docs/governance.md)."""

    #: The rules that run (all by default).
    rules: tuple[str, ...] = RULES
    #: How far back, before the monitored period, the baseline reaches.
    baseline: timedelta = timedelta(days=30)
    #: The sliding window of the burst and spike rules.
    window: timedelta = timedelta(hours=1)
    denial_factor: float = 3.0
    min_denials: int = 10
    volume_factor: float = 3.0
    min_volume: int = 20
    #: Classification values that count as sensitive: a level means "that level or higher", a category itself.
    sensitive: tuple[str, ...] = ("sensitivity:confidential", "sensitivity:pii", "sensitivity:phi")
    #: A clearance granted on one of these (a level: or higher) raises ``high_clearance``.
    clearance_threshold: tuple[str, ...] = ("sensitivity:restricted",)

    @classmethod
    def from_toml(cls, data: Mapping[str, Any], source: str = "monitor rules") -> Rules:
        """The rules of a parsed TOML document's ``[monitor]`` table (durations in seconds)."""
        table = data.get("monitor")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: no [monitor] table")
        known = {"rules", "baseline_seconds", "window_seconds", "denial_factor", "min_denials", "volume_factor",
                 "min_volume", "sensitive", "clearance_threshold"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(f"{source} [monitor]: unknown key {unknown[0]!r}; known: {sorted(known)}")
        values: dict[str, Any] = {}
        try:
            if "rules" in table:
                values["rules"] = tuple(str(r) for r in table["rules"])
                bad = sorted(set(values["rules"]) - set(RULES))
                if bad:
                    raise ConfigError(f"{source} [monitor] rules: unknown rule {bad[0]!r}; known: {list(RULES)}")
            for key in ("baseline", "window"):
                if f"{key}_seconds" in table:
                    seconds = float(table[f"{key}_seconds"])
                    if seconds <= 0:
                        raise ValueError(f"{key}_seconds must be positive")
                    values[key] = timedelta(seconds=seconds)
            for key in ("denial_factor", "volume_factor"):
                if key in table:
                    values[key] = float(table[key])
            for key in ("min_denials", "min_volume"):
                if key in table:
                    values[key] = int(table[key])
            for key in ("sensitive", "clearance_threshold"):
                if key in table:
                    values[key] = tuple(str(v) for v in table[key])
                    if any(v.count(":") != 1 for v in values[key]):
                        raise ValueError(f"{key}: each value is `classification:value`")
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source} [monitor]: {exc}") from None
        return cls(**values)


#: The labels of an object at a decision: (resource, revision token) -> {classification value: one lineage path}.
Labels = Callable[[str, str], Mapping[str, str]]


def source_labels(source: Any) -> Labels:
    """Labels read from an Engine or a Client (``effective_labels``) at the decision's revision, or at the head when
    that revision was garbage-collected; cached per (resource, token)."""
    cache: dict[tuple[str, str], Mapping[str, str]] = {}

    def labels(resource: str, token: str) -> Mapping[str, str]:
        key = (resource, token)
        if key not in cache:
            try:
                found = source.effective_labels(resource, consistency=Consistency.at_exact_snapshot(token))
            except (RevisionUnavailableError, ValueError):  # a client raises the engine's error class too
                found = source.effective_labels(resource)
            cache[key] = {f"{c.classification}:{v.value}": (v.paths[0] if v.paths else resource)
                          for c in found.classifications for v in c.values}
            if len(cache) > 100_000:
                cache.clear()
        return cache[key]

    return labels


class _Rate:
    """Per subject: events in the sliding window, and the baseline's count (the expected rate per window)."""

    def __init__(self) -> None:
        self.baseline: Counter[str] = Counter()
        self.recent: dict[str, deque[tuple[datetime, int]]] = {}
        self.fired: dict[str, datetime] = {}

    def add(self, subject: str, when: datetime, record_id: int, window: timedelta) -> deque[tuple[datetime, int]]:
        recent = self.recent.setdefault(subject, deque())
        recent.append((when, record_id))
        while recent and recent[0][0] <= when - window:
            recent.popleft()
        return recent


class Monitor:
    """The rules over records fed in chain order: before ``start`` they form the baseline, from ``start`` on they
    raise alerts (see the module docstring). ``classifications``: name -> its levels low to high (levels are
    compared by rank; anything else is a category), read from the schema when an engine or client is at hand."""

    def __init__(self, rules: Rules, *, labels: Labels, start: datetime,
                 classifications: Mapping[str, tuple[str, ...]] | None = None,
                 changes: Callable[[AuditRecord], list[tuple[str, str]] | None] | None = None) -> None:
        self.rules, self.labels, self.start = rules, labels, start
        # The changes of a batch the log lists only as a digest (over LISTED_CHANGES), from the store's change
        # history (None: not at hand, e.g. collected as garbage).
        self.changes = changes
        self.levels = dict(classifications or {"sensitivity": ("public", "internal", "confidential", "restricted")})
        self.touched: dict[str, set[str]] = {}
        self.denials, self.volume = _Rate(), _Rate()
        self.baseline_from = _minus(start, rules.baseline)
        self.last_id = 0

    # --- values ---------------------------------------------------------------------------------

    def _at_or_above(self, value: str, thresholds: Iterable[str]) -> bool:
        name, _, v = value.partition(":")
        levels = self.levels.get(name, ())
        for threshold in thresholds:
            t_name, _, t = threshold.partition(":")
            if t_name != name:
                continue
            if v == t or (t in levels and v in levels and levels.index(v) >= levels.index(t)):
                return True
        return False

    # --- records --------------------------------------------------------------------------------

    def feed(self, record: AuditRecord) -> list[Alert]:
        """The alerts ``record`` raises (none for the baseline, or for a record already fed)."""
        if record.id <= self.last_id:
            return []
        self.last_id = record.id
        live = record.time >= self.start
        if record.kind is RecordKind.DECISION:
            return self._decision(record, live)
        if not live:
            return []
        if record.kind is RecordKind.DECLASSIFICATION and "declassification" in self.rules.rules:
            return self._declassification(record)
        if record.kind is RecordKind.RELATIONSHIPS and "high_clearance" in self.rules.rules:
            return self._clearances(record)
        return []

    def _decision(self, record: AuditRecord, live: bool) -> list[Alert]:
        subject, result = record.get("subject"), record.get("result")
        if subject is None or record.time < self.baseline_from:
            return []
        alerts: list[Alert] = []
        if result == _DENIED:
            alerts += self._rate(self.denials, "denial_burst", record, live, self.rules.denial_factor,
                                 self.rules.min_denials, "denials")
        if result != _ALLOWED:
            return alerts
        values = self.labels(record["resource"], record.get("token") or "")
        touched = self.touched.setdefault(subject, set())
        for value, path in sorted(values.items()):
            if not any(self._at_or_above(t, (value,)) for t in touched):  # t is value, or a higher level
                touched.add(value)
                if live and "first_access" in self.rules.rules:
                    alerts.append(Alert(
                        "first_access", record.time, subject, value,
                        f"{subject} was allowed {record.get('permission')} on {record['resource']}, labelled "
                        f"{value}, for the first time", record.id,
                        {"record_ids": [record.id], "resource": record["resource"],
                         "permission": record.get("permission"), "revision": record.get("revision"),
                         "token": record.get("token"), "path": path}))
        if any(self._at_or_above(v, self.rules.sensitive) for v in values):
            alerts += self._rate(self.volume, "volume_spike", record, live, self.rules.volume_factor,
                                 self.rules.min_volume, "allowed decisions on sensitive labels")
        return alerts

    def _rate(self, rate: _Rate, rule: str, record: AuditRecord, live: bool, factor: float, minimum: int,
              what: str) -> list[Alert]:
        subject = record["subject"]
        if not live:
            rate.baseline[subject] += 1
            return []
        recent = rate.add(subject, record.time, record.id, self.rules.window)
        expected = rate.baseline[subject] * (self.rules.window / self.rules.baseline)
        threshold = max(float(minimum), factor * expected)
        fired = rate.fired.get(subject)
        if rule not in self.rules.rules or len(recent) < threshold or (
                fired is not None and record.time - fired < self.rules.window):
            return []
        rate.fired[subject] = record.time
        return [Alert(rule, record.time, subject, None,
                      f"{subject}: {len(recent)} {what} within {_duration(self.rules.window)}, against "
                      f"{expected:.2f} expected from the baseline", record.id,
                      {"record_ids": [i for _, i in recent][-_EVIDENCE_IDS:], "count": len(recent),
                       "baseline_count": rate.baseline[subject], "expected": round(expected, 3),
                       "threshold": round(threshold, 3), "revision": record.get("revision")})]

    def _declassification(self, record: AuditRecord) -> list[Alert]:
        operation = record.get("operation")
        verb = "removed the declassification of" if operation == "delete" else "declassified"
        value = record.get("subject")
        return [Alert("declassification", record.time, record.get("actor"), value,
                      f"{record.get('actor')} {verb} {value} on {record.get('resource')}: "
                      f"{record.get('reason')}", record.id,
                      {"record_ids": [record.id], "resource": record.get("resource"), "operation": operation,
                       "relation": record.get("relation"), "actor": record.get("actor"),
                       "reason": record.get("reason"), "revision": record.get("revision"),
                       "token": record.get("token")})]

    def _clearances(self, record: AuditRecord) -> list[Alert]:
        alerts = []
        listed, source = record.get("changes"), "audit record"
        if listed is None and self.changes is not None and record.get("count"):
            listed, source = self.changes(record), "store change history"  # a large batch: its digest only
        for operation, text in listed or ():
            if operation not in ("touch", "create"):
                continue
            resource, _, rest = text.partition("#")
            relation, _, subject = rest.partition("@")
            if relation != "cleared" or not self._at_or_above(resource, self.rules.clearance_threshold):
                continue
            alerts.append(Alert("high_clearance", record.time, subject.split("[")[0], resource,
                                f"{record.get('actor') or 'someone'} cleared {subject} for {resource}", record.id,
                                {"record_ids": [record.id], "relationship": text, "actor": record.get("actor"),
                                 "reason": record.get("reason"), "revision": record.get("revision"),
                                 "token": record.get("token"), "source": source}))
        return alerts


def monitor_rules(text: str | None = None, path: str | None = None) -> Rules:
    """The rules of a TOML text (a Monitor request's; InvalidRequestError when bad), else of the file at ``path``
    (``monitor_rules``; ConfigError), else the defaults."""
    if text:
        try:
            return Rules.from_toml(tomllib.loads(text), "the request's rules")
        except (tomllib.TOMLDecodeError, ConfigError) as exc:
            raise InvalidRequestError(f"rules_toml: {exc}") from None
    if path:
        return Rules.from_toml(read_toml(path, "monitor rules file"), f"monitor rules file {path}")
    return Rules()


def _minus(moment: datetime, delta: timedelta) -> datetime:
    """``moment - delta``, or the earliest time there is (a period starting near year 1)."""
    try:
        return moment - delta
    except OverflowError:
        return datetime.min.replace(tzinfo=moment.tzinfo)


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _monitor(source: Any, rules: Rules, start: datetime) -> Monitor:
    schema = source.schema()
    levels = {name: tuple(c.levels) for name, c in schema.classifications.items()}
    return Monitor(rules, labels=source_labels(source), start=start, classifications=levels,
                   changes=store_changes(source))


def store_changes(source: Any) -> Callable[[AuditRecord], list[tuple[str, str]] | None]:
    """The changes a relationships record names (its revision's, from the store's change history: Watch), for a
    batch the log keeps only as a digest; None when the revision is no longer readable (garbage collected), or
    when what is read does not add up to the record's count."""
    # An Engine's watch takes a limit (1: the next revision, whole); a Client's gives what follows within its wait.
    whole_revision = {"limit": 1} if "limit" in inspect.signature(source.watch).parameters else {}

    def changes(record: AuditRecord) -> list[tuple[str, str]] | None:
        revision, token = record.get("revision"), record.get("token")
        if not isinstance(revision, int) or revision < 1 or not token:
            return None
        try:
            events = source.watch(encode_token(revision - 1), **whole_revision)
        except RevisionUnavailableError:
            return None
        found = [("delete" if e.operation.name == "DELETE" else "touch", str(e.relationship))
                 for e in events if e.token == token]
        return found if len(found) == record.get("count") else None
    return changes


def _records(source: Any, since: datetime, until: datetime | None) -> Iterator[AuditRecord]:
    cursor = None
    while True:
        page = source.audit_query(since=since, until=until, limit=1000, cursor=cursor)
        yield from page.records
        cursor = page.cursor
        if cursor is None:
            return


def scan(source: Any, rules: Rules, *, since: datetime, until: datetime | None = None) -> list[Alert]:
    """The alerts of the records from ``since`` (inclusive) to ``until`` (exclusive; None: now) of an Engine's or a
    Client's audit trail, with the baseline before ``since``."""
    monitor = _monitor(source, rules, since)
    alerts: list[Alert] = []
    for record in _records(source, _minus(since, rules.baseline), until):
        alerts += monitor.feed(record)
    return alerts


def follow(source: Any, rules: Rules, *, since: datetime, poll_seconds: float = 1.0,
           stop: Callable[[], bool] = lambda: False) -> Iterator[Alert]:
    """:func:`scan` from ``since``, then the alerts of each new record as it is written, until ``stop()``."""
    monitor = _monitor(source, rules, since)
    after = _minus(since, rules.baseline)
    while True:
        for record in _records(source, after, None):
            yield from monitor.feed(record)
            after = max(after, record.time)
        if stop():
            return
        _time.sleep(poll_seconds)
