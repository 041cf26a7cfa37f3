"""What ``Client`` and ``AsyncClient`` share: the channel, its options, the token, the stubs, the defaults.

``channels`` is the module that makes the channel: ``grpc`` (blocking) or ``grpc.aio`` (asyncio); both have
``insecure_channel(address, options=...)`` and ``secure_channel(address, credentials, options=...)``, and the
generated stubs take either channel.

Example::

    >>> import grpc
    >>> base = ClientBase("localhost:1", grpc, timeout=2.0)
    >>> base.timeout, base.retry.max_attempts, base.attempts(True, None).deadline is not None
    (2.0, 8, True)
    >>> base.channel.close()
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import grpc

from .calls import STUBS, ClientTls, channel_options
from .retry import Attempts, RetryPolicy

__all__ = ["ClientBase"]


class ClientBase:
    """A connection's settings and channel (see :class:`headwater.client.Client` for the parameters)."""

    def __init__(self, address: str, channels: ModuleType, *, token: str | None = None,
                 tls: bool | ClientTls = False, timeout: float | None = 30.0,
                 max_message_bytes: int = 4 * 1024 * 1024, retry: RetryPolicy | None = None,
                 wait_for_ready: bool = False) -> None:
        self.address = address
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self.wait_for_ready = wait_for_ready
        options = channel_options(self.retry, max_message_bytes, tls)
        if tls:
            credentials = grpc.ssl_channel_credentials(*(tls if isinstance(tls, ClientTls) else ClientTls()).pem())
            self.channel: Any = channels.secure_channel(address, credentials, options=options)
        else:
            self.channel = channels.insecure_channel(address, options=options)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._stubs = {name: stub(self.channel) for name, stub in STUBS.items()}
        # two stubs under the attribute names of the first client (tests send raw requests through them)
        self._permissions, self._relationships = self._stubs["permissions"], self._stubs["relationships"]

    def method(self, rpc: tuple[str, str]) -> Any:
        """The stub's method for ``rpc`` (stub name, method name)."""
        return getattr(self._stubs[rpc[0]], rpc[1])

    def attempts(self, safe: bool, timeout: float | None) -> Attempts:
        """The retry bookkeeping of one call: ``timeout`` is the call's, else the client's."""
        return Attempts(self.retry, safe=safe, timeout=self.timeout if timeout is None else timeout)

    def options(self, timeout: float | None) -> dict[str, Any]:
        """The keyword arguments of one attempt: its deadline, the token, wait_for_ready."""
        return {"timeout": timeout, "metadata": self._metadata, "wait_for_ready": self.wait_for_ready}
