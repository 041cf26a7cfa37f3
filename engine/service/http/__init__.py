"""The HTTP listener next to gRPC (``--http-address``): its routes (:mod:`.app`) and its server thread
(:mod:`.listener`); docs/decisions/http-listener.md."""

from __future__ import annotations

from .app import Route, RouteContext, build_app, routes
from .listener import HttpListener

__all__ = ["HttpListener", "Route", "RouteContext", "build_app", "routes"]
