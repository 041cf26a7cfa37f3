"""The handler layer's metrics hook: each finished call counted by method and status, timed, its decisions counted.

:class:`RpcObserver` is what :mod:`.handlers` calls once per call (when metrics are
on; when they are off the servicer's ``observer`` is None and nothing is done). The
labels come from the method's full name (``/headwater.v1.PermissionService/Check``:
api ``headwater.v1``, service ``PermissionService``, method ``Check``); the children
of each (method, code) are bound once and kept, so a call costs two dict lookups, an
increment and a histogram observation. The check methods of both APIs have their
decisions read from the response (:data:`DECISIONS`): both APIs number permissionship
alike (1 no, 2 has, 3 conditional).

Example::

    >>> from headwater.engine.metrics import Metrics
    >>> from headwater.engine.service.pb import permission_pb2
    >>> m = Metrics()
    >>> observe = RpcObserver(m)
    >>> observe("/headwater.v1.PermissionService/Check", "OK", 0.0, permission_pb2.CheckResponse(permissionship=2))
    >>> m.decisions.labels("headwater.v1", "has")._value.get()
    1.0
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from ..metrics import Metrics

__all__ = ["DECISIONS", "PERMISSIONSHIP", "RpcObserver"]

#: Permissionship numbers (the same in headwater.v1 and authzed.api.v1) -> the ``permissionship`` label.
PERMISSIONSHIP = {1: "no", 2: "has", 3: "conditional"}


def _one(response: Any) -> Iterable[int]:
    return (response.permissionship,)


def _pairs(response: Any) -> Iterable[int]:
    return (pair.item.permissionship for pair in response.pairs if pair.HasField("item"))


#: The methods answering decisions -> the permissionships in a response.
DECISIONS: dict[str, Callable[[Any], Iterable[int]]] = {
    "/headwater.v1.PermissionService/Check": _one,
    "/headwater.v1.PermissionService/CheckBulk": _pairs,
    "/authzed.api.v1.PermissionsService/CheckPermission": _one,
    "/authzed.api.v1.PermissionsService/CheckBulkPermissions": _pairs,
    "/authzed.api.v1.ExperimentalService/BulkCheckPermission": _pairs,
}


def _labels(method: str) -> tuple[str, str, str]:
    """``/headwater.v1.PermissionService/Check`` -> (``headwater.v1``, ``PermissionService``, ``Check``)."""
    service, _, name = method.lstrip("/").rpartition("/")
    api, _, short = service.rpartition(".")
    return api, short, name


class RpcObserver:
    """Counts and times finished calls into a :class:`~..metrics.Metrics` (see the module docstring)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._counts: dict[tuple[str, str], Any] = {}
        self._timers: dict[str, Any] = {}
        self._decisions: dict[tuple[str, int], Any] = {}

    def __call__(self, method: str, code: str, started: float, response: Any = None) -> None:
        """Count a call of ``method`` that ended with ``code`` (a grpc.StatusCode name), begun at ``started``
        (time.monotonic()); ``response``: its answer, for the decisions of a check."""
        elapsed = time.monotonic() - started
        counter = self._counts.get((method, code))
        if counter is None:
            counter = self._counts[(method, code)] = self.metrics.requests.labels(*_labels(method), code)
        counter.inc()
        timer = self._timers.get(method)
        if timer is None:
            timer = self._timers[method] = self.metrics.duration.labels(*_labels(method))
        timer.observe(elapsed)
        if response is not None and code == "OK":
            read = DECISIONS.get(method)
            if read is not None:
                self._count_decisions(method, read(response))

    def _count_decisions(self, method: str, permissionships: Iterable[int]) -> None:
        for p in permissionships:
            child = self._decisions.get((method, p))
            if child is None:
                label = PERMISSIONSHIP.get(p)
                if label is None:
                    continue
                child = self._decisions[(method, p)] = self.metrics.decisions.labels(_labels(method)[0], label)
            child.inc()
