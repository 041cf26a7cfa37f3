"""The HTTP listener's server: uvicorn on a thread of its own inside the server process.

:class:`HttpListener` binds its socket itself (so that port 0 gives a real port,
known before :meth:`start` returns, and a bad address fails the start at once),
then runs ``uvicorn.Server`` on a daemon thread with its own asyncio event loop.
uvicorn installs no signal handlers off the main thread: SIGTERM/SIGINT stay with
``headwater serve``, which stops gRPC and then this listener. :meth:`stop` asks
uvicorn to exit (it stops accepting, lets requests in flight finish for up to
``grace`` seconds), joins the thread and closes the socket, so the port is free
when it returns. TLS uses the gRPC settings' files (a client CA makes it mutual).

Example::

    >>> from starlette.applications import Starlette
    >>> listener = HttpListener(Starlette(), "127.0.0.1:0").start()
    >>> listener.port > 0
    True
    >>> listener.stop()
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from typing import Any

import uvicorn

from ...errors import ConfigError

__all__ = ["HttpListener"]

_log = logging.getLogger("headwater.service.http")


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    try:
        return host, int(port)
    except ValueError:
        raise ConfigError(f"http_address must be host:port, got {address!r}") from None


class HttpListener:
    """An ASGI ``app`` served at ``address`` (host:port) on a background thread (see the module docstring)."""

    def __init__(self, app: Any, address: str, *, tls_cert: str | None = None, tls_key: str | None = None,
                 tls_client_ca: str | None = None, reuse_port: bool = False) -> None:
        self.app = app
        self.host, self._port = _split(address)
        self.port = 0
        self.tls = tls_cert is not None
        self._tls = (tls_cert, tls_key, tls_client_ca)
        self._reuse_port = reuse_port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """``host:port`` it listens on (the real port when asked for port 0)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def start(self) -> HttpListener:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self._reuse_port:  # the workers of --processes N share the port, like gRPC's
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # Accepted connections inherit it: without it every request after the first on a keep-alive connection
        # (the OpenLineage client's, a Prometheus scraper's) waited ~40 ms, uvicorn's small response writes held
        # by Nagle's algorithm until the client's delayed ACK (measured: 44 ms a request, 1 ms with it).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self._port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise ConfigError(f"cannot listen on {self.host}:{self._port} (http_address): "
                              f"{exc.strerror or exc}") from None
        sock.setblocking(False)
        self._socket = sock
        self.port = sock.getsockname()[1]
        cert, key, client_ca = self._tls
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                                ssl_certfile=cert, ssl_keyfile=key, ssl_ca_certs=client_ca,
                                ssl_cert_reqs=ssl.CERT_REQUIRED if client_ca else ssl.CERT_NONE,
                                timeout_graceful_shutdown=5)
        self._server = uvicorn.Server(config)
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self._serve(started))
            except BaseException as exc:  # noqa: BLE001 - reported by start()
                failure.append(exc)
                started.set()

        self._thread = threading.Thread(target=run, name="headwater-http", daemon=True)
        self._thread.start()
        started.wait(10)
        if failure or not self._server.started:
            self._close_socket()
            raise ConfigError(f"the HTTP listener on {self.address} did not start: "
                              f"{failure[0] if failure else 'timed out'}")
        return self

    async def _serve(self, started: threading.Event) -> None:
        server = self._server
        assert server is not None and self._socket is not None

        async def announce() -> None:
            while not server.started and not server.should_exit:
                await asyncio.sleep(0.005)
            started.set()

        watcher = asyncio.ensure_future(announce())
        try:
            await server.serve(sockets=[self._socket])
        finally:
            watcher.cancel()
            started.set()

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, give requests in flight ``grace`` seconds, end the thread, release the port. Safe to call
        twice."""
        server, thread = self._server, self._thread
        if server is not None:
            server.config.timeout_graceful_shutdown = max(0, int(grace))
            server.should_exit = True
        if thread is not None:
            thread.join(grace + 5)
            if thread.is_alive():
                _log.warning("the HTTP listener did not stop in time", extra={"fields": {"event": "http_stop_slow"}})
        self._thread = None
        self._close_socket()

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
