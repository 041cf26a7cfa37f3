"""Metrics: every Prometheus metric of a server process, named once in one table, on one registry.

:data:`METRICS` is the table (name, type, labels, meaning; docs/operations.md
repeats it and a test keeps the two equal). A :class:`Metrics` holds one
:class:`prometheus_client.CollectorRegistry` per server process with:

- the metrics counted on the request path (RPCs by method and status code, their
  latency, decisions by permissionship and API), updated by the handler layer
  (engine/service/observe.py) through pre-bound children;
- everything else read at scrape time by :class:`EngineCollector` from counters the
  engine keeps anyway (the caches' :meth:`~.cache.Cache.stats`, the audit writer's
  queue, the engine's ``counters``, the head revision hint, the PostgreSQL pool), so
  the hot path pays nothing for them;
- ``headwater_build_info`` (version, commit if known, Python, store kind).

With ``--processes N`` (``multiprocess_dir``: the supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` to a fresh
directory for its workers), the request-path metrics use prometheus_client's multiprocess mode (each worker
writes its own files there) and :meth:`Metrics.exposition` answers ``MultiProcessCollector`` over the
directory, so whichever worker a scrape reaches shows the whole group: counters summed, histograms merged. The
engine's counters cannot be read across processes: each worker mirrors them into multiprocess metrics of the
same names (:class:`_Mirror`) every ``sync_seconds`` and right before it answers a scrape, so the other
workers' cache, audit and lineage figures lag by at most that period. Sizes and queue depths are summed over
the live workers, the head revision is their maximum.

Names follow Prometheus conventions: ``_total`` counters, ``_seconds``, base
units, and labels with a bounded set of values (never object ids or tokens).

Example::

    >>> m = Metrics(store="memory")
    >>> m.requests.labels("headwater.v1", "PermissionService", "Check", "OK").inc()
    >>> b"headwater_rpc_requests_total{" in m.exposition()[0]
    True
"""

from __future__ import annotations

import os
import platform
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector,
                               Summary, multiprocess)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["METRICS", "EngineCollector", "MetricSpec", "Metrics", "build_commit", "forget_process",
           "parse_exposition"]


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: its full exposed name (counters with ``_total``), type, label names and meaning."""

    name: str
    type: str  # counter, gauge, histogram, summary
    labels: tuple[str, ...]
    help: str


_RPC = ("api", "service", "method")

#: Every metric a server exposes (besides the standard ``process_*`` and ``python_*`` ones).
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("headwater_rpc_requests_total", "counter", (*_RPC, "code"),
               "RPCs handled, by API, service, method and gRPC status code"),
    MetricSpec("headwater_rpc_duration_seconds", "histogram", _RPC,
               "Time from a call's start to its handler's end (streams: the whole stream)"),
    MetricSpec("headwater_decisions_total", "counter", ("api", "permissionship"),
               "Check decisions answered (bulk items each), by API and permissionship (has, no, conditional)"),
    MetricSpec("headwater_cache_hits_total", "counter", ("cache",), "Lookups that found an entry, per cache"),
    MetricSpec("headwater_cache_misses_total", "counter", ("cache",), "Lookups that found none, per cache"),
    MetricSpec("headwater_cache_evictions_total", "counter", ("cache",), "Entries dropped to make room, per cache"),
    MetricSpec("headwater_cache_entries", "gauge", ("cache",), "Entries held now, per cache"),
    MetricSpec("headwater_cache_max_entries", "gauge", ("cache",), "Entries held at most, per cache"),
    MetricSpec("headwater_store_head_revision", "gauge", (),
               "The newest revision this process has seen (as of at most head_staleness ago)"),
    MetricSpec("headwater_store_operations_total", "counter", ("operation",),
               "Store operations: read (one read transaction), head, write, delete, gc, changes (Watch polls)"),
    MetricSpec("headwater_store_operation_seconds", "summary", ("operation",),
               "Time per store operation (a read: while its snapshot was held, evaluation included)"),
    MetricSpec("headwater_store_pool_connections", "gauge", ("state",),
               "PostgreSQL pool connections: in_use, idle, and requests waiting for one (waiting)"),
    MetricSpec("headwater_gc_runs_total", "counter", (), "Garbage collections of old history run"),
    MetricSpec("headwater_gc_rows_removed_total", "counter", (),
               "Rows removed by garbage collection (old versions and expired relationships)"),
    MetricSpec("headwater_gc_expired_rows_removed_total", "counter", (),
               "Of those, relationships that expired without being deleted"),
    MetricSpec("headwater_lineage_cycle_refusals_total", "counter", (),
               "Writes refused because they would make the lineage graph cyclic"),
    MetricSpec("headwater_lineage_declassifications_total", "counter", (),
               "Declassifications written or deleted"),
    MetricSpec("headwater_lineage_effective_label_computations_total", "counter", (),
               "Effective-label computations answered"),
    MetricSpec("headwater_audit_queue_depth", "gauge", (), "Audit records queued or being written"),
    MetricSpec("headwater_audit_records_written_total", "counter", (), "Audit records committed"),
    MetricSpec("headwater_audit_write_seconds", "summary", (), "Time to append one batch of audit records"),
    MetricSpec("headwater_audit_write_failures_total", "counter", (),
               "Batches that failed to be written (they stay queued and are retried)"),
    MetricSpec("headwater_audit_records_dropped_total", "counter", (),
               "Audit records dropped: always 0 (a full queue makes producers wait, never drops)"),
    MetricSpec("headwater_monitor_alerts_total", "counter", ("rule",),
               "Alerts of the monitoring rules raised by the server's monitor (--monitor), per rule"),
    MetricSpec("headwater_build_info", "gauge", ("version", "commit", "python", "store"),
               "Always 1; the labels say what is running"),
)

_SPECS = {s.name: s for s in METRICS}

#: Latency buckets (seconds): a warm check is ~0.1-0.5 ms, a cold one a few ms, a heavy listing seconds.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _help(name: str) -> str:
    return _SPECS[name].help


def build_commit() -> str:
    """The git commit of the source tree, if it is a checkout (``HEADWATER_COMMIT`` wins), else ``unknown``."""
    given = os.environ.get("HEADWATER_COMMIT")
    if given:
        return given
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return "unknown"
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=2, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _version() -> str:
    try:
        return metadata.version("headwater")
    except metadata.PackageNotFoundError:
        return "unknown"


class Metrics:
    """The registry of one server process and the metrics updated on the request path (see the module docstring).

    ``engine``: returns the engine whose caches, audit log and counters :class:`EngineCollector` reads at scrape
    time (None: none). ``store``: the store kind for ``headwater_build_info`` (memory, sqlite, postgresql).
    """

    def __init__(self, engine: Callable[[], Any] | None = None, *, store: str = "unknown",
                 commit: str | None = None, multiprocess_dir: str | None = None, sync_seconds: float = 1.0) -> None:
        self.registry = CollectorRegistry()
        self.multiprocess_dir = multiprocess_dir
        self._mirror: _Mirror | None = None
        self._stop = threading.Event()
        r = self.registry
        self.requests = Counter("headwater_rpc_requests", _help("headwater_rpc_requests_total"),
                                (*_RPC, "code"), registry=r)
        self.duration = Histogram("headwater_rpc_duration_seconds", _help("headwater_rpc_duration_seconds"), _RPC,
                                  buckets=BUCKETS, registry=r)
        self.decisions = Counter("headwater_decisions", _help("headwater_decisions_total"),
                                 ("api", "permissionship"), registry=r)
        self.alerts = Counter("headwater_monitor_alerts", _help("headwater_monitor_alerts_total"), ("rule",),
                              registry=r)
        info = Gauge("headwater_build_info", _help("headwater_build_info"), ("version", "commit", "python", "store"),
                     registry=r, multiprocess_mode="max")
        info.labels(_version(), commit or build_commit(), platform.python_version(), store).set(1)
        if multiprocess_dir is None:
            if engine is not None:
                r.register(EngineCollector(engine))
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
        elif engine is not None:
            self._mirror = _Mirror(EngineCollector(engine), r)
            self._mirror.sync()
            threading.Thread(target=self._sync_every, args=(sync_seconds,), name="headwater-metrics-sync",
                             daemon=True).start()

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition of every metric (of every worker, in multiprocess mode), and its content type."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        self.sync()
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=self.multiprocess_dir)
        return generate_latest(merged), CONTENT_TYPE_LATEST

    def sync(self) -> None:
        """Multiprocess mode: copy the engine's counters into this worker's files now."""
        if self._mirror is not None:
            self._mirror.sync()

    def close(self) -> None:
        """Stop the mirroring thread, after a last copy (multiprocess mode; nothing otherwise)."""
        if not self._stop.is_set():
            self._stop.set()
            self.sync()

    def _sync_every(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            try:
                self.sync()
            except Exception:  # noqa: BLE001 - an engine closing under it; the next round or close() retries
                pass


def forget_process(multiprocess_dir: str, pid: int) -> None:
    """A worker of a multiprocess group is gone: drop its live gauges (its counters stay in the sums)."""
    multiprocess.mark_process_dead(pid, multiprocess_dir)


#: How the mirror keeps each gauge across workers (others: summed over the live ones).
_GAUGE_MODES = {"headwater_store_head_revision": "max"}


class _Mirror:
    """Copies what an :class:`EngineCollector` reads into multiprocess metrics of the same names: counters by
    their increase since the last copy, gauges set, the audit summary's count and sum increased."""

    def __init__(self, source: EngineCollector, registry: CollectorRegistry) -> None:
        self._source = source
        self._registry = registry
        self._metrics: dict[str, Any] = {}
        self._last: dict[tuple[str, tuple[str, ...]], float] = {}
        self._lock = threading.Lock()

    def _metric(self, family: Metric) -> Any:
        name = family.name + ("_total" if family.type == "counter" else "")
        metric = self._metrics.get(name)
        if metric is None:
            spec = _SPECS[name]
            if family.type == "counter":
                metric = Counter(family.name, spec.help, spec.labels, registry=self._registry)
            elif family.type == "summary":
                metric = Summary(family.name, spec.help, spec.labels, registry=self._registry)
            else:
                metric = Gauge(family.name, spec.help, spec.labels, registry=self._registry,
                               multiprocess_mode=_GAUGE_MODES.get(name, "livesum"))
            self._metrics[name] = metric
        return metric

    def sync(self) -> None:
        with self._lock:
            for family in self._source.collect():
                metric = self._metric(family)
                for sample in family.samples:
                    labels = tuple(sample.labels.values())
                    child = metric.labels(*labels) if labels else metric
                    if family.type == "gauge":
                        child.set(sample.value)
                        continue
                    key = (sample.name, labels)
                    delta = sample.value - self._last.get(key, 0.0)
                    self._last[key] = sample.value
                    if delta <= 0:
                        continue
                    if family.type == "counter":
                        child.inc(delta)
                    elif sample.name.endswith("_count"):
                        child._count.inc(delta)  # a summary's totals grow by the batches written since the last copy
                    elif sample.name.endswith("_sum"):
                        child._sum.inc(delta)


class EngineCollector:
    """Reads, at scrape time, what the engine counts anyway: caches, audit writer, counters, head, pool."""

    def __init__(self, engine: Callable[[], Any]) -> None:
        self._engine = engine

    def describe(self) -> list[Metric]:
        return []  # collected lazily: nothing is read at registration

    def collect(self) -> Iterator[Metric]:
        engine = self._engine()
        if engine is None:
            return
        yield from _caches(engine)
        yield from _counters(engine)
        yield from _audit(engine)
        yield from _store(engine)


def _counter(name: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, _help(name), value=value)


def _caches(engine: Any) -> Iterator[Metric]:
    families = {key: (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(name, _help(name),
                                                                                      labels=("cache",))
                for key, name, kind in (("hits", "headwater_cache_hits_total", "counter"),
                                        ("misses", "headwater_cache_misses_total", "counter"),
                                        ("evictions", "headwater_cache_evictions_total", "counter"),
                                        ("size", "headwater_cache_entries", "gauge"),
                                        ("maxsize", "headwater_cache_max_entries", "gauge"))}
    for cache, stats in engine.caches.stats().items():
        for key, family in families.items():
            family.add_metric((cache,), stats[key])
    yield from families.values()


_COUNTERS = (("gc_runs", "headwater_gc_runs_total"), ("gc_rows_removed", "headwater_gc_rows_removed_total"),
             ("gc_expired_removed", "headwater_gc_expired_rows_removed_total"),
             ("lineage_cycle_refusals", "headwater_lineage_cycle_refusals_total"),
             ("lineage_declassifications", "headwater_lineage_declassifications_total"),
             ("lineage_effective_labels", "headwater_lineage_effective_label_computations_total"))


def _counters(engine: Any) -> Iterator[Metric]:
    counts = engine.counters
    for key, name in _COUNTERS:
        yield _counter(name, counts.get(key, 0))


def _audit(engine: Any) -> Iterator[Metric]:
    stats = engine.audit_stats()
    yield GaugeMetricFamily("headwater_audit_queue_depth", _help("headwater_audit_queue_depth"),
                            value=stats.get("pending", 0))
    yield _counter("headwater_audit_records_written_total", stats.get("written", 0))
    yield SummaryMetricFamily("headwater_audit_write_seconds", _help("headwater_audit_write_seconds"),
                              count_value=stats.get("batches", 0), sum_value=stats.get("write_seconds", 0.0))
    yield _counter("headwater_audit_write_failures_total", stats.get("failures", 0))
    yield _counter("headwater_audit_records_dropped_total", 0)


def _store(engine: Any) -> Iterator[Metric]:
    count = CounterMetricFamily("headwater_store_operations", _help("headwater_store_operations_total"),
                                labels=("operation",))
    seconds = SummaryMetricFamily("headwater_store_operation_seconds", _help("headwater_store_operation_seconds"),
                                  labels=("operation",))
    for operation, (n, total) in sorted(engine.store_operations().items()):
        count.add_metric((operation,), n)
        seconds.add_metric((operation,), count_value=n, sum_value=total)
    yield count
    yield seconds
    yield GaugeMetricFamily("headwater_store_head_revision", _help("headwater_store_head_revision"),
                            value=engine.known_head())
    pool = engine.pool_stats()
    family = GaugeMetricFamily("headwater_store_pool_connections", _help("headwater_store_pool_connections"),
                               labels=("state",))
    for state in ("in_use", "idle", "waiting"):
        if state in pool:
            family.add_metric((state,), pool[state])
    yield family


def parse_exposition(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of a text exposition by (sample name, sorted labels) (for tests and the benchmark).

    >>> parse_exposition('a_total{x="1"} 2.0\\n')[("a_total", (("x", "1"),))]
    2.0
    """
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}
