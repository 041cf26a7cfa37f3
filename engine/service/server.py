"""Build, start and stop the gRPC server from the one :class:`~headwater.engine.config.Config`.

Settings come from command-line flags, then ``HEADWATER_*`` environment variables,
then a TOML config file, then the defaults, in that order of precedence
(:func:`~headwater.engine.config.load_config`). The server:

- opens (creating on first start) the SQLite database and, if a schema file is
  configured, writes it unless the stored schema is already the same; or, with a
  bootstrap file, loads its schema and relationships into an empty store
  (:mod:`..bootstrap`);
- authenticates every Headwater RPC with bearer tokens from the token file, or runs
  without authentication only with an explicit ``insecure_no_auth``, announced
  loudly in the log;
- serves TLS from certificate files, verifying client certificates when a client
  CA is given (mutual TLS);
- serves SpiceDB's API (``authzed.api.v1``, :mod:`.authzed`) next to ``headwater.v1``, with the same tokens,
  limits, logging and audit;
- serves standard gRPC health checking (``grpc.health.v1``) and server reflection, listening before the store is
  opened: ``liveness`` is SERVING at once, readiness (``""``, ``readiness`` and each API service) only once the
  store is migrated and the schema or bootstrap file loaded; API calls are UNAVAILABLE until then
  (engine/service/health.py). A worker of ``--processes N`` listens only once ready;
- reloads the token file on SIGHUP (:meth:`HeadwaterServer.reload_tokens`): a file that does not load is
  refused and logged, the tokens in force stay; connections are kept;
- keeps an audit log when ``audit`` is on (or the database already has one), with
  each check's caller (the token's name);
- on :meth:`HeadwaterServer.stop` (``headwater serve`` calls it on SIGTERM/SIGINT)
  reports NOT_SERVING, refuses new calls, ends Watch streams, waits up to
  ``grace_seconds`` for in-flight calls, then writes the audit records still queued
  and closes the audit log and the store (``Engine.close``);
- as worker ``i`` of ``headwater serve --processes N`` (engine/service/supervisor.py),
  binds its port with SO_REUSEPORT, so that the N workers share it, and logs
  ``worker_serving`` (the supervisor logs ``serving`` once, for the group) with
  ``worker`` and ``pid`` on every line.

Example::

    >>> server = HeadwaterServer(Config.of(address="127.0.0.1:0", db=":memory:", insecure_no_auth=True))
    >>> server.start().port > 0
    True
    >>> server.stop()
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import grpc

from ...dsl import DslError
from ..api import Engine
from .. import tracing
from ..bootstrap import bootstrap
from ..config import Config
from ..dburi import redact
from ..errors import ConfigError, EngineError
from ..governance.monitor import Rules, monitor_rules
from ..metrics import Metrics
from ..store.memory import MemoryStore
from ..validationfile import ValidationFileError
from .alerts import AlertFollower
from .auth import TokenSet, load_token_file
from .auth import TokenFileError
from .authzed import build_authzed_handlers
from .authzed import service_names as authzed_service_names
from .handlers import build_handlers, service_names
from .health import Health, StartupGate, add_health_and_reflection
from .http import HttpListener, RouteContext, build_app, routes
from .observe import RpcObserver
from .servicer import REQUEST_ID, Servicer

__all__ = ["AUDIT_NOT_SHARED", "STOPPED_WITH_CALLS_RUNNING", "HeadwaterServer", "JsonFormatter", "bind", "grpc_server",
           "configure_logging", "serve"]

_log = logging.getLogger("headwater.service")

#: How long calls still running at the end of the grace period get to reach a cancellation checkpoint.
_CANCEL_SECONDS = 1.0


# ------------------------------------------------------------------ logging


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, with its offset, to the millisecond: ``2026-12-06T20:31:07.123+00:00``),
    level, logger, message, the formatter's ``fields`` (a worker's number and pid), the ``request_id`` of the call
    being served (when written during one) and the record's ``fields`` (if any)."""

    def __init__(self, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.fields = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
        data: dict[str, Any] = {"ts": ts, "level": record.levelname.lower(), "logger": record.name,
                                "msg": record.getMessage(), **self.fields}
        request = REQUEST_ID.get()
        if request is not None:
            data["request_id"] = request
        data.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(level: str = "info", stream: TextIO | None = None, *,
                      fields: Mapping[str, Any] | None = None) -> logging.Handler:
    """Send the ``headwater`` loggers to ``stream`` (stderr) as JSON lines, each with ``fields``; returns the
    handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(fields))
    logger = logging.getLogger("headwater")
    logger.handlers = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
    return handler


# ------------------------------------------------------------------ the server


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


#: Why a worker of ``--processes N`` refuses an audited SQLite database (the supervisor says it too, earlier).
AUDIT_NOT_SHARED = ("several processes appending to one hash-chained audit log in SQLite is not designed yet: "
                    "serve an audited SQLite database with one process (--processes 1)")


def grpc_server(config: Config, *, reuse_port: bool = False, thread_name: str = "headwater-rpc",
                first: Sequence[grpc.GenericRpcHandler] = ()) -> tuple[grpc.Server, Health]:
    """A gRPC server (not listening yet) with ``workers`` threads and the message-size limits, answering health
    checks and reflection of both APIs after the ``first`` handlers; its health servicer."""
    limits = config.limits
    options = [("grpc.max_receive_message_length", limits.max_message_bytes),
               ("grpc.max_send_message_length", limits.max_message_bytes),
               ("grpc.so_reuseport", 1 if reuse_port else 0)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=config.server.workers, thread_name_prefix=thread_name),
                         options=options, maximum_concurrent_rpcs=None)
    if first:
        server.add_generic_rpc_handlers(tuple(first))
    return server, add_health_and_reflection(server, service_names() + authzed_service_names())


def bind(server: grpc.Server, address: str, credentials: grpc.ServerCredentials | None = None,
         what: str = "") -> int:
    """Add the port ``address`` names to ``server`` (TLS with ``credentials``); its real port. ConfigError when it
    cannot be bound (``what``: the setting, named in the error)."""
    where = f"{address} ({what})" if what else address
    try:
        port = (server.add_secure_port(address, credentials) if credentials is not None
                else server.add_insecure_port(address))
    except RuntimeError as exc:  # grpc's "failed to bind"
        raise ConfigError(f"cannot listen on {where}: {exc}") from None
    if not port:
        raise ConfigError(f"cannot listen on {where} (in use, or not an address of this host)")
    return port


class HeadwaterServer:
    """A running (after :meth:`start`) gRPC server over one Engine.

    Example::

        >>> server = HeadwaterServer(Config.of(address="127.0.0.1:0", db=":memory:", insecure_no_auth=True))
        >>> server.start().port > 0
        True
        >>> server.stop()
    """

    def __init__(self, config: Config, *, engine: Engine | None = None, worker: int | None = None) -> None:
        config.server.validate_serving()
        self.config = config
        self.worker = worker  # its number in a group of --processes N (binds with SO_REUSEPORT), else None
        self.serving: dict[str, Any] = {}  # what the start-up log line said (a supervisor repeats it)
        self._own_engine = engine is None
        self.engine = engine
        self.port = 0
        self.servicer: Servicer | None = None
        self._server: grpc.Server | None = None
        self._health: Health | None = None
        self.tokens: TokenSet | None = None  # the tokens accepted (replaced in place by reload_tokens)
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()
        self.unfinished = 0  # calls still running when stop() returned (0 after a clean stop)
        self.metrics: Metrics | None = None  # with an HTTP listener and metrics on (engine/metrics.py)
        self.http: HttpListener | None = None  # with http_address: its real port is http.port
        self.alerts: AlertFollower | None = None  # with --monitor (engine/service/alerts.py)
        self._monitor_rules: Rules | None = None
        self.http_tokens: TokenSet | None = None  # the tokens the HTTP routes check (a token reload sets it)

    @property
    def address(self) -> str:
        """``host:port`` the server listens on (the real port when configured with port 0)."""
        host = self.config.server.address.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    def start(self) -> HeadwaterServer:
        """Listen at once (health: ``liveness`` SERVING, readiness NOT_SERVING, API calls UNAVAILABLE), then open
        the store (migrating it), load the schema or bootstrap file and build the servicer; only then report
        ready (engine/service/health.py). Any failure stops listening and raises."""
        config, worker = self.config, self.worker
        cfg = config.server
        tokens: TokenSet | None = None if cfg.insecure_no_auth else load_token_file(cfg.token_file or "")
        self.tokens = tokens
        credentials = None
        if cfg.tls_cert is not None and cfg.tls_key is not None:
            client_ca = _read(cfg.tls_client_ca, "client CA file") if cfg.tls_client_ca else None
            credentials = grpc.ssl_server_credentials([(_read(cfg.tls_key, "TLS key file"),
                                                        _read(cfg.tls_cert, "TLS certificate file"))],
                                                      root_certificates=client_ca,
                                                      require_client_auth=client_ca is not None)
        gate = StartupGate()  # first: API calls are UNAVAILABLE until ready
        server, self._health = grpc_server(config, reuse_port=worker is not None, first=(gate,))
        self.port = bind(server, cfg.address, credentials)
        # Alone, listen at once: health checks answer (liveness SERVING) while the rest starts. A worker of
        # --processes N listens only once ready: the kernel would give a starting worker its share of connections.
        early = worker is None
        try:
            if early:
                server.start()
            if self.engine is None:
                db = config.storage.db
                self.engine = (Engine(MemoryStore(), config=config) if db == ":memory:" else
                               Engine.open(db, config=config))
            if worker is not None and self.engine.audit_path is not None:  # a SQLite file beside the store
                raise ConfigError(f"--processes {cfg.processes} on {redact(config.storage.db)}: {AUDIT_NOT_SHARED}")
            if cfg.schema and cfg.bootstrap:
                raise ConfigError("give --schema or --bootstrap, not both (a bootstrap file holds its schema)")
            if cfg.schema:
                self._load_schema(cfg.schema)
            if cfg.bootstrap:
                self._bootstrap(cfg.bootstrap)
            self.servicer = self._servicer(self.engine, config)
            self._setup_metrics()
            server.add_generic_rpc_handlers(self._handlers(tokens))  # (after the gate, which steps aside once ready)
            if not early:
                server.start()
            self._start_http(tokens)
            self._monitor_rules = self._load_monitor_rules()
        except BaseException:
            server.stop(0)
            if self._own_engine and self.engine is not None:
                self.engine.close()
            raise
        self._server = server
        gate.open()
        self._health.ready()
        if tokens is None:
            self._announce_no_auth()
        if credentials is None and not self.address.startswith(("127.", "localhost", "[::1]")):
            _log.warning("TLS is off: tokens and data cross the network in clear text",
                         extra={"fields": {"event": "plaintext", "address": self.address}})
        self.serving = {
            "event": "serving", "address": self.address, "port": self.port, "tls": credentials is not None,
            "mutual_tls": cfg.tls_client_ca is not None, "auth": tokens is not None,
            "tokens": [e.name for e in tokens.entries] if tokens else [], "db": redact(config.storage.db),
            "workers": cfg.workers, **self._http_fields(),
            **self._audit_fields(), **self._serving_fields()}
        self._start_monitor(worker)
        if worker is None:
            _log.info("serving on %s", self.address, extra={"fields": self.serving})
        else:
            _log.info("worker %d serving on %s", worker, self.address,
                      extra={"fields": {**self.serving, "event": "worker_serving"}})
        return self

    # The HTTP listener and the metrics (engine/service/http, engine/metrics.py, docs/operations.md).

    def _setup_metrics(self) -> None:
        """Metrics are collected when they are on and there is an HTTP listener to serve them."""
        cfg = self.config.server
        if cfg.http_address is None or not cfg.metrics or self.servicer is None:
            return
        db = self.config.storage.db
        store = "memory" if db == ":memory:" else "postgresql" if db.startswith(("postgres://", "postgresql://")) \
            else "sqlite"
        shared = os.environ.get("PROMETHEUS_MULTIPROC_DIR") if self.worker is not None else None  # --processes N
        self.metrics = Metrics(lambda: self.engine, store=store, multiprocess_dir=shared or None)
        self.servicer.observer = RpcObserver(self.metrics)

    def _load_monitor_rules(self) -> Rules | None:
        """``--monitor``'s rules (ConfigError before serving for a bad rules file, or without an audit log)."""
        audit = self.config.audit
        if not audit.monitor:
            return None
        if self.engine is None or self.engine.audit_place is None:
            raise ConfigError("monitor needs the audit log: turn it on (--audit)")
        return monitor_rules(None, audit.monitor_rules)

    def _start_monitor(self, worker: int | None) -> None:
        """``--monitor``: the rules over the audit trail in a thread of this server (the first worker's only)."""
        rules = self._monitor_rules
        if rules is None or (worker is not None and worker != 0):
            return
        self.alerts = AlertFollower(self.engine, rules, self.metrics, self.config.server.watch_poll_seconds).start()
        self.serving["monitor"] = list(rules.rules)

    def _start_http(self, tokens: TokenSet | None) -> None:
        cfg = self.config.server
        if cfg.http_address is None:
            return
        self.http_tokens = tokens
        digest = None
        if cfg.metrics_token_file is not None:
            secret = _read(cfg.metrics_token_file, "metrics token file").decode("utf-8", "replace").strip()
            if not secret:
                raise ConfigError(f"metrics token file {cfg.metrics_token_file} is empty")
            digest = hashlib.sha256(secret.encode("utf-8")).digest()
        context = RouteContext(metrics=self.metrics, metrics_token=digest, server=self, playground=cfg.playground)
        app = build_app(routes(context), tokens=lambda: self.http_tokens)
        self.http = HttpListener(app, cfg.http_address, tls_cert=cfg.tls_cert, tls_key=cfg.tls_key,
                                 tls_client_ca=cfg.tls_client_ca, reuse_port=self.worker is not None).start()

    def _http_fields(self) -> dict[str, Any]:
        """What the start-up log says about the HTTP listener."""
        if self.http is None:
            return {}
        return {"http_address": self.http.address, "http_port": self.http.port, "metrics": self.metrics is not None,
                "metrics_token": self.config.server.metrics_token_file is not None,
                "playground": self.config.server.playground}

    # The hooks of ``headwater serve-testing`` (engine/service/testing.py), which overrides them.

    def _servicer(self, engine: Engine, config: Config) -> Servicer:
        """The servicer keeping the lifecycle (and, here, serving ``headwater.v1`` over ``engine``)."""
        return Servicer(engine, config)

    def _handlers(self, tokens: TokenSet | None) -> list[grpc.GenericRpcHandler]:
        """The handlers of both APIs over :attr:`servicer` (``tokens`` None: no authentication)."""
        assert self.servicer is not None
        return [*build_handlers(self.servicer, tokens), *build_authzed_handlers(self.servicer, tokens, self.config)]

    def _announce_no_auth(self) -> None:
        _log.warning("AUTHENTICATION IS OFF (--insecure-no-auth): anyone who can reach %s can read and change "
                     "every relationship and the schema; give --token-file to require bearer tokens",
                     self.address, extra={"fields": {"event": "insecure_no_auth", "address": self.address}})

    def _serving_fields(self) -> dict[str, Any]:
        """More fields of the start-up log line."""
        return {}

    def _audit_fields(self) -> dict[str, Any]:
        """What the start-up log says about auditing (never the key: only whether there is one)."""
        place = self.engine.audit_place if self.engine is not None else None
        if place is None:
            return {"audit": False}
        settings = self.config.audit
        path = self.engine.audit_path if self.engine is not None else None
        where = {"audit_path": str(path)} if path is not None else {"audit_log": place}  # PostgreSQL: its tables
        return {"audit": True, **where, "audit_decisions": settings.decisions,
                "audit_durable": settings.durable,
                "audit_signed": settings.key is not None or settings.key_file is not None}

    def _load_schema(self, path: str) -> None:
        assert self.engine is not None
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read schema file {path}: {exc}") from None
        planned = self.engine.write_schema(text, dry_run=True)  # DslError / SchemaConflictError stop the start
        history = self.engine.schema_history()
        stored = history[-1] if history else None
        if stored is not None and stored.digest == planned.digest:
            _log.info("schema %s is already stored (version %d)", path, stored.version,
                      extra={"fields": {"event": "schema", "version": stored.version, "digest": stored.digest}})
            return
        result = self.engine.write_schema(text, actor="headwater serve")
        _log.info("wrote schema %s as version %d", path, result.version,
                  extra={"fields": {"event": "schema", "version": result.version, "digest": result.digest,
                                    "token": result.token}})

    def _bootstrap(self, path: str) -> None:
        assert self.engine is not None
        try:
            report = bootstrap(self.engine, path)
        except DslError as exc:  # the file's schema: its own line and column
            raise ConfigError(f"cannot bootstrap from {path}: its schema does not compile: {exc.render()}") from None
        except (ValidationFileError, EngineError, OSError) as exc:
            raise ConfigError(f"cannot bootstrap from {path}: {exc}") from None
        fields = {"event": "bootstrap", "file": path, "schema_version": report.schema_version,
                  "relationships": report.written, "token": report.token}
        if report.loaded:
            _log.info("bootstrapped from %s: schema version %d, %d relationships", path, report.schema_version,
                      report.written, extra={"fields": fields})
        else:
            _log.info("%s is already loaded (schema version %d): nothing written", path, report.schema_version,
                      extra={"fields": fields})

    def stop(self, grace: float | None = None) -> None:
        """Drain and stop: NOT_SERVING, no new calls, Watch streams end, in-flight calls get ``grace`` seconds
        (default ``grace_seconds``) to finish; then the calls still running are cancelled (they stop at their
        next budget checkpoint, within milliseconds), the port is released, and the engine is closed (the audit
        log flushed first) once the last handler has returned. Safe to call twice."""
        with self._stop_lock:
            if self._stopped.is_set():
                return
            grace = self.config.server.grace_seconds if grace is None else grace
            _log.info("draining (grace %.1fs)", grace, extra={"fields": {"event": "draining", "grace": grace}})
            if self._health is not None:
                self._health.enter_graceful_shutdown()
            servicer = self.servicer
            if servicer is not None:
                servicer.drain()
            done = self._server.stop(grace) if self._server is not None else None
            still = servicer.wait_idle(grace) if servicer is not None else 0
            if servicer is not None:
                servicer.cancel_running()  # what is still running now stops at its next checkpoint
                if still:
                    still = servicer.wait_idle(_CANCEL_SECONDS)
            if done is not None:
                done.wait(_CANCEL_SECONDS)
            if self.alerts is not None:
                self.alerts.stop()
            if self.http is not None:  # after gRPC: /metrics stays scrapable while calls drain
                self.http.stop(min(grace, 5.0))
            if self.metrics is not None:
                self.metrics.close()
            if still:
                # A handler that does not reach a checkpoint (one long SQL statement) is not waited for: the
                # store is not closed under it; the audit log is flushed, and the process may exit.
                _log.warning("%d call(s) still running after the grace period and cancellation; the store is "
                             "left open", still, extra={"fields": {"event": "stop_incomplete", "running": still}})
                if self._own_engine and self.engine is not None:
                    self.engine.flush_audit()
            elif self._own_engine and self.engine is not None:
                self.engine.close()
            self.unfinished = still
            self._stopped.set()
            _log.info("stopped", extra={"fields": {"event": "stopped", "running": still}})

    def reload_tokens(self) -> bool:
        """Read the token file again and accept its tokens instead, all at once (calls in flight keep the
        answer they got; connections stay open): True if the new tokens are in force; False, with an error
        logged and the old tokens kept, when the file does not load (or the server runs without tokens)."""
        path = self.config.server.token_file
        if self.tokens is None or not path:
            _log.warning("SIGHUP: no token file to reload (authentication is off)",
                         extra={"fields": {"event": "tokens_not_reloaded", "reason": "authentication is off"}})
            return False
        try:
            fresh = load_token_file(path)
        except TokenFileError as exc:
            _log.error("token file not reloaded, the tokens in force stay: %s", exc,
                       extra={"fields": {"event": "tokens_not_reloaded", "reason": str(exc),
                                         "tokens": [e.name for e in self.tokens.entries]}})
            return False
        self.tokens.replace(fresh)
        _log.info("token file %s reloaded: %d token(s)", path, len(fresh.entries),
                  extra={"fields": {"event": "tokens_reloaded", "tokens": [e.name for e in fresh.entries]}})
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`stop` has finished (True) or ``timeout`` passes (False)."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> HeadwaterServer:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: What :func:`serve` returns when a call was still running after the grace period and its cancellation: the
#: process should end at once (``headwater serve`` does, with ``os._exit``) rather than wait for that thread.
STOPPED_WITH_CALLS_RUNNING = 75


def serve(config: Config, *, worker: int | None = None,
          ready: Callable[[HeadwaterServer], None] | None = None,
          server: Callable[[Config], HeadwaterServer] | None = None) -> int:
    """Run until SIGTERM or SIGINT (SIGHUP reloads the token file), then drain and stop: 0 after a clean stop, else
    :data:`STOPPED_WITH_CALLS_RUNNING` (the audit log was flushed; the store was left open under the call).

    ``worker``: serve as that worker of a ``--processes N`` group (engine/service/supervisor.py); ``ready`` is
    called with the started server; ``server`` builds the server instead of :class:`HeadwaterServer`
    (``headwater serve-testing`` gives :class:`~.testing.TestingServer`)."""
    logger = logging.getLogger("headwater")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    configure_logging(config.server.log_level,
                      fields=None if worker is None else {"worker": worker, "pid": os.getpid()})
    traced = tracing.configure()  # OTEL_TRACES_EXPORTER (engine/tracing.py): before the engine, so checks are spans
    try:
        running = _run(config, worker, ready, server)
    finally:  # leave logging as it was (serve may run inside another program, e.g. the tests)
        if traced:
            tracing.shutdown()  # the spans still buffered are exported
        logger.handlers, logger.propagate = saved[0], saved[2]
        logger.setLevel(saved[1])
    return STOPPED_WITH_CALLS_RUNNING if running.unfinished else 0


def _run(config: Config, worker: int | None, ready: Callable[[HeadwaterServer], None] | None,
         build: Callable[[Config], HeadwaterServer] | None) -> HeadwaterServer:
    stopping, wake, reloads = threading.Event(), threading.Event(), [0]
    # A SIGHUP while starting must not end the process (its default): it is remembered, and done once serving.
    hangup = signal.signal(signal.SIGHUP, lambda signum, frame: reloads.__setitem__(0, reloads[0] + 1))
    try:
        server = (HeadwaterServer(config, worker=worker) if build is None else build(config)).start()
    except BaseException:
        signal.signal(signal.SIGHUP, hangup)
        raise

    def on_signal(signum: int, frame: object) -> None:
        _log.info("received %s", signal.Signals(signum).name, extra={"fields": {"event": "signal",
                                                                               "signal": signal.Signals(signum).name}})
        if signum == signal.SIGHUP:
            reloads[0] += 1  # done by the loop below, outside the signal handler
        else:
            stopping.set()
        wake.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    previous[signal.SIGHUP] = hangup
    try:
        if ready is not None:
            ready(server)
        done = 0
        while not stopping.is_set():
            wake.wait(0.5)
            wake.clear()
            if reloads[0] != done and not stopping.is_set():
                done = reloads[0]
                server.reload_tokens()
    finally:
        server.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return server
