"""``headwater serve-testing``: one isolated, empty in-memory store per bearer token, like ``spicedb serve-testing``.

A client test suite points at one server and gets a fresh store by sending a new
token: every distinct ``authorization: Bearer <token>`` selects its own
``Engine(MemoryStore())`` (schema, relationships, revisions, caches), created on the
token's first call. No token file: any token is accepted and every scope granted.
A call without a bearer token (no ``authorization`` metadata, or another scheme)
uses one shared anonymous store, as SpiceDB's per-token middleware does (its
``internal/middleware/pertoken`` keys the store by the bearer token, the empty
string when there is none).

Both APIs are served (``headwater.v1`` and ``authzed.api.v1``) through the usual
handler layer (:mod:`.handlers`: deadlines, the work budget, heavy-call turns,
draining, the access log); only the engine behind each call changes. The normal
``headwater serve`` path is untouched: this module builds its own handlers, whose
functions pick the store per call.

At most ``max_stores`` stores (default :data:`MAX_STORES`) are kept; creating one
more forgets the least recently used one (its data is gone; a call still running on
it finishes on it, and its Watch streams end). SpiceDB keeps every store until it
exits.

Example::

    >>> from headwater.engine.service.client import Client
    >>> server = TestingServer(Config.of(address="127.0.0.1:0")).start()
    >>> alice, bob = Client(server.address, token="alice"), Client(server.address, token="bob")
    >>> _ = alice.write_schema("definition user {}")
    >>> alice.read_schema()[0]
    'definition user {}...'
    >>> bob.read_schema()
    Traceback (most recent call last):
    ...
    headwater.engine.errors.NotFoundError: ...
    >>> alice.close(); bob.close(); server.stop()
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import grpc

from ..api import Engine
from ..config import Config
from ..store.memory import MemoryStore
from .auth import TokenSet
from .authzed.service import RULES as AUTHZED_RULES
from .authzed.service import SERVICES as AUTHZED_SERVICES
from .authzed.servicer import AuthzedServicer
from .handlers import SERVICES, service_handler
from .server import HeadwaterServer
from .servicer import Servicer

__all__ = ["MAX_STORES", "Stores", "TestingServer", "bearer_token"]

#: Stores kept at most by default (one per token); one more forgets the least recently used.
MAX_STORES = 1000

_log = logging.getLogger("headwater.service")


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The bearer token a call presents, or "" (the anonymous store) without one, as SpiceDB's ``AuthFromMD``."""
    for key, value in metadata or ():
        if key.lower() == "authorization":
            header = value.decode("latin-1") if isinstance(value, bytes) else value
            scheme, _, secret = header.strip().partition(" ")
            return secret.strip() if scheme.lower() == "bearer" else ""
    return ""


class _Tenant:
    """One token's store: its engine and the servicers of both APIs over it."""

    __slots__ = ("authzed", "headwater")

    def __init__(self, config: Config) -> None:
        engine = Engine(MemoryStore(), config=config)
        self.headwater = Servicer(engine, config)
        self.authzed = AuthzedServicer(engine, config)


class Stores(Servicer):
    """The servicer keeping the server's lifecycle (draining, running calls, heavy turns) and the per-token stores;
    :meth:`tenant` finds or creates a call's store."""

    def __init__(self, engine: Engine, config: Config | None = None, *, max_stores: int = MAX_STORES) -> None:
        super().__init__(engine, config)
        if max_stores < 1:
            raise ValueError("max_stores must be at least 1")
        self.config = config or engine.config
        self.max_stores = max_stores
        self._tenants: OrderedDict[str, _Tenant] = OrderedDict()
        self._lock = threading.Lock()

    def tenant(self, context: Any) -> _Tenant:
        """The store of the call's bearer token, created empty on its first call."""
        token = bearer_token(context.invocation_metadata() if context is not None else None)
        with self._lock:
            found = self._tenants.get(token)
            if found is not None:
                self._tenants.move_to_end(token)
                return found
            found = self._tenants[token] = _Tenant(self.config)
            evicted = self._tenants.popitem(last=False)[1] if len(self._tenants) > self.max_stores else None
        if evicted is not None:
            evicted.headwater.drain()  # its Watch streams end; calls running on it finish on it
        return found

    def __len__(self) -> int:
        with self._lock:
            return len(self._tenants)

    def _each(self) -> list[_Tenant]:
        with self._lock:
            return list(self._tenants.values())

    def drain(self) -> None:
        super().drain()
        for tenant in self._each():
            tenant.headwater.drain()

    def cancel_running(self) -> None:
        super().cancel_running()
        for tenant in self._each():
            tenant.headwater.cancel_running()

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        """Every service of both APIs, each call served by its token's store (no authentication: every scope)."""
        def headwater_method(rename: dict[str, str]) -> Callable[[str], Callable[..., Any]]:
            def method_for(rpc: str) -> Callable[..., Any]:
                name = rename.get(rpc, rpc)
                return lambda request, context: getattr(self.tenant(context).headwater, name)(request, context)
            return method_for

        def authzed_method(rpc: str) -> Callable[..., Any]:
            return lambda request, context: getattr(self.tenant(context).authzed, rpc)(request, context)

        return [*(service_handler(module.DESCRIPTOR.services_by_name[name], headwater_method(rename), None, self)
                  for module, name, rename in SERVICES),
                *(service_handler(module.DESCRIPTOR.services_by_name[name], authzed_method, None, self,
                                  AUTHZED_RULES)
                  for module, name in AUTHZED_SERVICES)]


class TestingServer(HeadwaterServer):
    """A :class:`~.server.HeadwaterServer` whose every bearer token has its own empty in-memory store (``config``
    gives the address, limits and logging; its store and token settings are replaced: no authentication)."""

    __test__ = False  # not a pytest test class

    def __init__(self, config: Config, *, max_stores: int = MAX_STORES) -> None:
        super().__init__(config.replace(db=":memory:", token_file=None, insecure_no_auth=True, schema=None,
                                        audit=False, processes=1))
        self.max_stores = max_stores

    @property
    def stores(self) -> Stores:
        assert isinstance(self.servicer, Stores), "the server is not started"
        return self.servicer

    def _servicer(self, engine: Engine, config: Config) -> Servicer:
        return Stores(engine, config, max_stores=self.max_stores)

    def _handlers(self, tokens: TokenSet | None) -> list[grpc.GenericRpcHandler]:
        return self.stores.handlers()

    def _announce_no_auth(self) -> None:
        _log.warning("serve-testing: every bearer token gets its own empty in-memory store (at most %d); no "
                     "authentication, nothing is kept: for test suites only", self.max_stores,
                     extra={"fields": {"event": "testing", "address": self.address, "max_stores": self.max_stores}})

    def _serving_fields(self) -> dict[str, Any]:
        return {"mode": "testing", "max_stores": self.max_stores}

