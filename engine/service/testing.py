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

As ``spicedb serve-testing`` does, a store can start from validation files instead of
empty (``seed``, the CLI's ``--load-configs``: their schema and relationships, loaded
into each new store), and a second, read-only port serves the same stores
(``readonly_address``, the CLI's ``--readonly-address``, default ``127.0.0.1:50052``):
reads answer there, and every call that would write (relationships, schema, imports,
derivations) is ``UNAVAILABLE`` "service read-only", with SpiceDB's
``ERROR_REASON_SERVICE_READ_ONLY`` through ``authzed.api.v1``.

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
from ..bootstrap import Seed
from ..config import Config
from ..errors import ConfigError, StoreUnavailableError
from ..store.memory import MemoryStore
from .auth import METHOD_SCOPES as HEADWATER_SCOPES
from .auth import TokenSet
from .authzed.errors import V1Error
from .authzed.service import METHOD_SCOPES as AUTHZED_SCOPES
from .authzed.service import RULES as AUTHZED_RULES
from .authzed.service import SERVICES as AUTHZED_SERVICES
from .authzed.servicer import AuthzedServicer
from .handlers import SERVICES, service_handler
from .server import HeadwaterServer, bind, grpc_server
from .servicer import Servicer

__all__ = ["MAX_STORES", "READ_ONLY", "Stores", "TestingServer", "bearer_token"]

#: Stores kept at most by default (one per token); one more forgets the least recently used.
MAX_STORES = 1000

#: What a call that would write answers on the read-only port (SpiceDB's words).
READ_ONLY = "service read-only"

#: The scopes of the calls that write: refused on the read-only port.
_WRITE_SCOPES = frozenset({"write", "schema"})

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

    def __init__(self, config: Config, seed: Seed | None) -> None:
        engine = Engine(MemoryStore(), config=config)
        if seed is not None:
            seed.into(engine)
        self.headwater = Servicer(engine, config)
        self.authzed = AuthzedServicer(engine, config)


class Stores(Servicer):
    """The servicer keeping the server's lifecycle (draining, running calls, heavy turns) and the per-token stores;
    :meth:`tenant` finds or creates a call's store."""

    def __init__(self, engine: Engine, config: Config | None = None, *, max_stores: int = MAX_STORES,
                 seed: Seed | None = None) -> None:
        super().__init__(engine, config)
        if max_stores < 1:
            raise ValueError("max_stores must be at least 1")
        self.config = config or engine.config
        self.max_stores = max_stores
        self.seed = seed
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
            found = self._tenants[token] = _Tenant(self.config, self.seed)
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

    def handlers(self, *, readonly: bool = False) -> list[grpc.GenericRpcHandler]:
        """Every service of both APIs, each call served by its token's store (no authentication: every scope);
        ``readonly``: the calls that would write are refused (:data:`READ_ONLY`) before a store is touched."""
        def headwater_method(service: str, rename: dict[str, str]) -> Callable[[str], Callable[..., Any]]:
            def method_for(rpc: str) -> Callable[..., Any]:
                name = rename.get(rpc, rpc)
                if readonly and HEADWATER_SCOPES.get(f"/{service}/{rpc}") in _WRITE_SCOPES:
                    return _refuse(StoreUnavailableError(READ_ONLY))
                return lambda request, context: getattr(self.tenant(context).headwater, name)(request, context)
            return method_for

        def authzed_method(service: str) -> Callable[[str], Callable[..., Any]]:
            def method_for(rpc: str) -> Callable[..., Any]:
                if readonly and AUTHZED_SCOPES.get(f"/{service}/{rpc}") in _WRITE_SCOPES:
                    return _refuse(V1Error(grpc.StatusCode.UNAVAILABLE, READ_ONLY,
                                           "ERROR_REASON_SERVICE_READ_ONLY"))
                return lambda request, context: getattr(self.tenant(context).authzed, rpc)(request, context)
            return method_for

        def descriptor(module: Any, name: str) -> Any:
            return module.DESCRIPTOR.services_by_name[name]

        return [*(service_handler(descriptor(module, name), headwater_method(descriptor(module, name).full_name,
                                                                              rename), None, self)
                  for module, name, rename in SERVICES),
                *(service_handler(descriptor(module, name), authzed_method(descriptor(module, name).full_name),
                                  None, self, AUTHZED_RULES)
                  for module, name in AUTHZED_SERVICES)]


def _refuse(error: Exception) -> Callable[..., Any]:
    def refuse(request: Any, context: Any) -> Any:
        raise error
    return refuse


class TestingServer(HeadwaterServer):
    """A :class:`~.server.HeadwaterServer` whose every bearer token has its own empty in-memory store (``config``
    gives the address, limits and logging; its store and token settings are replaced: no authentication)."""

    __test__ = False  # not a pytest test class

    def __init__(self, config: Config, *, max_stores: int = MAX_STORES, seed: Seed | None = None,
                 readonly_address: str | None = None) -> None:
        super().__init__(config.replace(db=":memory:", token_file=None, insecure_no_auth=True, schema=None,
                                        audit=False, processes=1))
        self.max_stores = max_stores
        self.seed = seed
        self.readonly_address = readonly_address  # host:port once started (the real port); None: no such port
        self._readonly: grpc.Server | None = None

    def start(self) -> TestingServer:
        """Start as :meth:`HeadwaterServer.start`, then the read-only port (if any) over the same stores."""
        if self.readonly_address is None:
            super().start()
            return self
        # Bound before the main port starts serving, so the serving line gives both.
        server = self._bind_readonly(self.readonly_address)
        try:
            super().start()
        except BaseException:
            server.stop(0)
            raise
        server.add_generic_rpc_handlers(self.stores.handlers(readonly=True))
        server.start()
        self._readonly = server
        return self

    def _bind_readonly(self, address: str) -> grpc.Server:
        server, health = grpc_server(self.config, thread_name="headwater-ro")
        try:
            port = bind(server, address, what="--readonly-address")
        except ConfigError:
            server.stop(0)
            raise
        health.ready()
        self.readonly_address = f"{address.rsplit(':', 1)[0]}:{port}"
        return server

    def stop(self, grace: float | None = None) -> None:
        readonly, self._readonly = self._readonly, None
        done = readonly.stop(grace if grace is not None else self.config.server.grace_seconds) if readonly else None
        super().stop(grace)  # drains every store: Watch streams on both ports end
        if done is not None:
            done.wait(5.0)

    @property
    def stores(self) -> Stores:
        assert isinstance(self.servicer, Stores), "the server is not started"
        return self.servicer

    def _servicer(self, engine: Engine, config: Config) -> Servicer:
        return Stores(engine, config, max_stores=self.max_stores, seed=self.seed)

    def _handlers(self, tokens: TokenSet | None) -> list[grpc.GenericRpcHandler]:
        return self.stores.handlers()

    def _announce_no_auth(self) -> None:
        _log.warning("serve-testing: every bearer token gets its own empty in-memory store (at most %d); no "
                     "authentication, nothing is kept: for test suites only", self.max_stores,
                     extra={"fields": {"event": "testing", "address": self.address, "max_stores": self.max_stores}})

    def _serving_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"mode": "testing", "max_stores": self.max_stores}
        if self.readonly_address is not None:
            fields["readonly_address"] = self.readonly_address
        if self.seed is not None:
            fields["load_configs"] = self.seed.paths
        return fields

