"""Health checking (``grpc.health.v1``) with readiness distinct from liveness, and reflection, both naming the
server's version.

Service names the health service answers for:

- ``liveness``: SERVING as soon as the process listens (while it still migrates the store or loads its
  schema), NOT_SERVING only once it drains to stop. A liveness probe that fails means "restart me".
- ``readiness``, ``""`` (the whole server, what generic clients such as ``grpc_health_probe`` ask) and every
  API service (``headwater.v1.PermissionService``, ``authzed.api.v1.PermissionsService``...): NOT_SERVING
  until migrations, the schema file or the bootstrap file are done, SERVING after, NOT_SERVING again when the
  server drains. A readiness probe that fails means "send no traffic yet".

Until then, every other call is UNAVAILABLE ("starting"), which clients retry (:class:`StartupGate`).

Every health and reflection response carries the initial metadata ``headwater-version`` (the package's
version, :func:`..version.version`), as the API responses do (engine/service/handlers.py).

Example::

    >>> sorted(probe_names(["headwater.v1.PermissionService"]))
    ['', 'headwater.v1.PermissionService', 'readiness']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from ..version import version

__all__ = ["LIVENESS", "READINESS", "Health", "Reflection", "StartupGate", "add_health_and_reflection",
           "probe_names"]

#: The health service name of liveness: SERVING while the process is up (until it drains).
LIVENESS = "liveness"
#: The health service name of readiness (like ``""`` and each API's name): SERVING once start-up is done.
READINESS = "readiness"

_VERSION_KEY = "headwater-version"
_SERVING, _NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


def probe_names(services: Iterable[str]) -> list[str]:
    """The names that report readiness: ``""``, ``readiness`` and the API services."""
    return ["", READINESS, *services]


def _send_version(context: Any) -> None:
    try:
        context.send_initial_metadata(((_VERSION_KEY, version()),))
    except (ValueError, grpc.RpcError):  # already sent, or the client has gone: the answer matters more
        pass


class Health(health.HealthServicer):
    """The standard health servicer: ``liveness`` SERVING at once, every readiness name NOT_SERVING until
    :meth:`ready`; each response with the version in its initial metadata."""

    def __init__(self, services: Sequence[str]) -> None:
        super().__init__(experimental_non_blocking=True)
        self.names = probe_names(services)
        self.set(LIVENESS, _SERVING)
        for name in self.names:
            self.set(name, _NOT_SERVING)

    def ready(self) -> None:
        """Start-up is done: every readiness name SERVING (ignored once draining)."""
        for name in self.names:
            self.set(name, _SERVING)

    def Check(self, request: health_pb2.HealthCheckRequest, context: Any) -> health_pb2.HealthCheckResponse:
        _send_version(context)
        return super().Check(request, context)

    def Watch(self, request: health_pb2.HealthCheckRequest, context: Any,
              send_response_callback: Any = None) -> Any:
        _send_version(context)
        return super().Watch(request, context, send_response_callback)


class Reflection(reflection.ReflectionServicer):
    """Server reflection, with the version in its initial metadata."""

    def ServerReflectionInfo(self, request_iterator: Any, context: Any) -> Iterator[Any]:
        _send_version(context)
        yield from super().ServerReflectionInfo(request_iterator, context)


class StartupGate(grpc.GenericRpcHandler):
    """The first handler of the server: while it is closed (start-up), every call but health checks and
    reflection is UNAVAILABLE; once :meth:`open`, it steps aside (one attribute read per call)."""

    def __init__(self) -> None:
        self.opened = False
        self._refuse = grpc.stream_stream_rpc_method_handler(self._unavailable)  # any call shape: nothing is read

    def open(self) -> None:
        self.opened = True

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        if self.opened or handler_call_details.method.startswith(_ALWAYS):  # type: ignore[attr-defined]
            return None
        return self._refuse

    @staticmethod
    def _unavailable(requests: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        _send_version(context)
        context.abort(grpc.StatusCode.UNAVAILABLE, "the server is starting (migrating the store, loading the "
                      "schema); retry shortly, or wait for the health service to report readiness SERVING")
        yield from ()


_ALWAYS = (f"/{health.SERVICE_NAME}/", f"/{reflection.SERVICE_NAME}/")


def add_health_and_reflection(server: grpc.Server, services: Sequence[str]) -> Health:
    """Serve health checking (every name NOT_SERVING but ``liveness``) and reflection of ``services`` (plus
    themselves) on ``server``; the health servicer, whose :meth:`Health.ready` ends the start-up."""
    checker = Health(services)
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        Reflection([*services, health.SERVICE_NAME, reflection.SERVICE_NAME]), server)
    return checker
