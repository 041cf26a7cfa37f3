"""The server's own monitor (``headwater serve --monitor``): the monitoring rules over its audit trail, as it grows.

A daemon thread follows the audit log from the server's start (the baseline is the
period before it) with :func:`~headwater.engine.governance.monitor.follow` and, for
each alert, logs one line (``"event": "alert"``, the alert's JSON under ``alert``) and
counts it in ``headwater_monitor_alerts_total{rule}``. It stops with the server, before
the engine is closed.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ..context import utc_now
from ..governance.monitor import Rules, follow

__all__ = ["AlertFollower"]

_log = logging.getLogger("headwater.service.monitor")


class AlertFollower:
    """Follows ``engine``'s audit log with ``rules``, polling every ``poll_seconds``; ``metrics`` may be None."""

    def __init__(self, engine: Any, rules: Rules, metrics: Any, poll_seconds: float) -> None:
        self.engine, self.rules, self.metrics, self.poll_seconds = engine, rules, metrics, poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="headwater-monitor", daemon=True)
        self.raised = 0

    def start(self) -> AlertFollower:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            for alert in follow(self.engine, self.rules, since=utc_now(), poll_seconds=self.poll_seconds,
                                stop=self._stop.is_set):
                self.raised += 1
                if self.metrics is not None:
                    self.metrics.alerts.labels(alert.rule).inc()
                _log.warning("alert %s: %s", alert.rule, alert.summary,
                             extra={"fields": {"event": "alert", "alert": alert.as_json()}})
        except Exception as exc:  # noqa: BLE001 - the monitor must say why it stopped; the server goes on
            if not self._stop.is_set():
                _log.error("the monitor stopped: %s", exc, extra={"fields": {"event": "monitor_failed",
                                                                            "error": str(exc)}})
