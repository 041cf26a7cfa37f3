"""Build, start and stop the gRPC server from a frozen :class:`ServerConfig`.

Settings come from command-line flags, then ``HEADWATER_*`` environment variables,
then a TOML config file, then the defaults below, in that order of precedence
(:func:`load_server_config`). The server:

- opens (creating on first start) the SQLite database and, if a schema file is
  configured, writes it unless the stored schema is already the same;
- authenticates every Headwater RPC with bearer tokens from the token file, or runs
  without authentication only with an explicit ``insecure_no_auth``, announced
  loudly in the log;
- serves TLS from certificate files, verifying client certificates when a client
  CA is given (mutual TLS);
- serves standard gRPC health checking (``grpc.health.v1``) and server reflection;
- keeps an audit log when ``audit`` is on (or the database already has one), with
  each check's caller (the token's name);
- on :meth:`HeadwaterServer.stop` (``headwater serve`` calls it on SIGTERM/SIGINT)
  reports NOT_SERVING, refuses new calls, ends Watch streams, waits up to
  ``grace_seconds`` for in-flight calls, then writes the audit records still queued
  and closes the audit log and the store (``Engine.close``).

Example::

    >>> config = ServerConfig(address="127.0.0.1:0", db=":memory:", insecure_no_auth=True)
    >>> config.engine_config().max_depth
    50
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import tomllib
from collections.abc import Mapping
from concurrent import futures
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TextIO

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ..api import Engine
from ..config import Config
from .auth import TokenSet, load_token_file
from .handlers import build_handlers, service_names
from .servicer import Servicer, ServicerLimits

__all__ = ["ConfigError", "HeadwaterServer", "JsonFormatter", "ServerConfig", "configure_logging",
           "load_server_config", "serve"]

_log = logging.getLogger("headwater.service")
_ENV_PREFIX = "HEADWATER_"


class ConfigError(ValueError):
    """A setting is missing, malformed or contradicts another; the message names the setting and its source."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Every setting of ``headwater serve``; each is also a flag (``--max-depth``), an environment variable
    (``HEADWATER_MAX_DEPTH``) and a config-file key (``max_depth``)."""

    #: host:port to listen on; port 0 picks a free port (the log and ``HeadwaterServer.port`` tell which).
    address: str = "127.0.0.1:50051"
    #: Threads serving calls (each in-flight call, streams included, holds one).
    workers: int = 16
    #: SQLite database file, created on first start (``:memory:`` for a throw-away store).
    db: str = "headwater.db"
    #: Schema file written at start unless the stored schema is already the same.
    schema: str | None = None
    #: TOML file of bearer tokens (see ``engine/service/auth.py``); required unless insecure_no_auth.
    token_file: str | None = None
    #: Serve without authentication. Must be set explicitly; announced loudly at start-up.
    insecure_no_auth: bool = False
    #: PEM certificate chain and private key: serve TLS (both or neither).
    tls_cert: str | None = None
    tls_key: str | None = None
    #: PEM CA bundle: require and verify client certificates (mutual TLS); needs tls_cert/tls_key.
    tls_client_ca: str | None = None
    #: Updates in one Write (and relationships per Import batch).
    max_updates_per_write: int = 1000
    #: Items in one CheckBulk.
    max_bulk_check_items: int = 1000
    #: Bytes of caveat context (as JSON) on one relationship or one check.
    max_caveat_context_bytes: int = 4096
    #: Results per server page of a stream, and the largest page a request may ask for.
    max_page_size: int = 1000
    #: Largest request or response message, in bytes (bigger ones are RESOURCE_EXHAUSTED).
    max_message_bytes: int = 4 * 1024 * 1024
    #: Longest chain of dispatches in one check (MaxDepthExceededError past it).
    max_depth: int = 50
    #: Entries in the shared check cache (``Config.cache_size``); 0 turns the check and label caches off.
    cache_size: int = 100_000
    #: Seconds in-flight calls get to finish at shutdown before they are cancelled.
    grace_seconds: float = 10.0
    #: How often Watch looks for new changes when there are none, in seconds.
    watch_poll_seconds: float = 0.2
    #: Log level of the structured logs (debug, info, warning, error).
    log_level: str = "info"
    #: Keep an audit log (docs/audit.md) beside the database (``<db>.audit``): every change, and the decisions
    #: ``audit_decisions`` selects, each with the caller's token name. A database that already has an audit
    #: log stays audited whatever this says.
    audit: bool = False
    #: Which decisions the audit log records: all, denials, sample:<rate> (e.g. sample:0.01) or off.
    audit_decisions: str = "all"
    #: A check answers only once its audit record is committed and fsynced (else within 100 ms, in batches).
    audit_durable: bool = False
    #: Audit records queued or being written at most; a check waits for room beyond it.
    audit_queue_size: int = 10_000
    #: File holding the HMAC key that signs the audit log's head and pruning checkpoints (its content without
    #: surrounding whitespace). The key is never logged.
    audit_key_file: str | None = None

    def __post_init__(self) -> None:
        for name in ("workers", "max_updates_per_write", "max_bulk_check_items", "max_caveat_context_bytes",
                     "max_page_size", "max_message_bytes", "max_depth", "audit_queue_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.cache_size, int) or isinstance(self.cache_size, bool) or self.cache_size < 0:
            raise ConfigError(f"cache_size must be zero (no cache) or a positive integer, got {self.cache_size!r}")
        for name in ("grace_seconds", "watch_poll_seconds"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} must be zero or more seconds, got {value!r}")
        if not isinstance(self.address, str) or ":" not in self.address:
            raise ConfigError(f"address must be host:port, got {self.address!r}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("tls_cert and tls_key go together: give both or neither")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ConfigError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")
        if self.insecure_no_auth and self.token_file is not None:
            raise ConfigError("give token_file or insecure_no_auth, not both")
        if not self.insecure_no_auth and self.token_file is None:
            raise ConfigError("no token file: give --token-file (or HEADWATER_TOKEN_FILE, or token_file in the "
                              "config file), or run explicitly without authentication with --insecure-no-auth")
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError(f"log_level must be debug, info, warning or error, got {self.log_level!r}")
        if not _valid_decisions(self.audit_decisions):
            raise ConfigError(f"audit_decisions must be all, denials, off or sample:<rate> with a rate between 0 "
                              f"and 1, got {self.audit_decisions!r}")

    def engine_config(self) -> Config:
        """The engine's limits and audit settings from these settings (reads the audit key file)."""
        return Config(max_depth=self.max_depth, max_updates_per_write=self.max_updates_per_write,
                      max_caveat_context_bytes=self.max_caveat_context_bytes,
                      max_bulk_check_items=self.max_bulk_check_items, cache_size=self.cache_size, audit=self.audit,
                      audit_decisions=self.audit_decisions, audit_durable=self.audit_durable,
                      audit_queue_size=self.audit_queue_size, audit_key=self.audit_key())

    def audit_key(self) -> str | None:
        """The HMAC key from ``audit_key_file`` (None without one); ConfigError if it cannot be read or is empty."""
        if self.audit_key_file is None:
            return None
        try:
            key = Path(self.audit_key_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read audit key file {self.audit_key_file}: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None
        if not key:
            raise ConfigError(f"audit key file {self.audit_key_file} is empty")
        return key


def _valid_decisions(policy: object) -> bool:
    if policy in ("all", "denials", "off"):
        return True
    if not isinstance(policy, str) or not policy.startswith("sample:"):
        return False
    try:
        rate = float(policy[len("sample:"):])
    except ValueError:
        return False
    return 0.0 <= rate <= 1.0


_FIELDS = {f.name: f for f in fields(ServerConfig)}
_BOOL_TEXT = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _coerce(name: str, value: Any, source: str) -> Any:
    """``value`` (a string from the environment, or a TOML value) as the type of the field ``name``."""
    default = _FIELDS[name].default
    kind = type(default) if default is not None else str
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _BOOL_TEXT:
                return _BOOL_TEXT[value.strip().lower()]
            raise ValueError("expected true or false")
        if kind is int:
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            return int(value)
        if kind is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return float(value)
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value
    except ValueError as exc:
        raise ConfigError(f"{name} from {source}: {value!r} is not valid ({exc})") from None


def load_server_config(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
                       config_file: str | None = None) -> ServerConfig:
    """The settings from ``flags`` (non-None values), then ``env`` (``HEADWATER_*``), then the TOML file.

    ``config_file`` (or ``HEADWATER_CONFIG``) names the TOML file: flat keys named
    like the :class:`ServerConfig` fields. An unknown key or variable-typed value is
    a :class:`ConfigError` naming it and where it came from.

    Example::

        >>> load_server_config({"workers": 4}, {"HEADWATER_WORKERS": "8", "HEADWATER_INSECURE_NO_AUTH": "1"}).workers
        4
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    path = config_file or env.get(_ENV_PREFIX + "CONFIG")
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        for key, value in data.items():
            if key not in _FIELDS:
                raise ConfigError(f"config file {path}: unknown setting {key!r}; known: {sorted(_FIELDS)}")
            values[key] = _coerce(key, value, f"config file {path}")
    for name in _FIELDS:
        var = _ENV_PREFIX + name.upper()
        if var in env and env[var] != "":
            values[name] = _coerce(name, env[var], f"environment variable {var}")
    for name, value in flags.items():
        if name not in _FIELDS:
            raise ConfigError(f"unknown setting {name!r}")
        values[name] = _coerce(name, value, f"--{name.replace('_', '-')}")
    return ServerConfig(**values)


# ------------------------------------------------------------------ logging


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's ``fields`` (if any)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
                                "level": record.levelname.lower(), "logger": record.name,
                                "msg": record.getMessage()}
        data.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(level: str = "info", stream: TextIO | None = None) -> logging.Handler:
    """Send the ``headwater`` loggers to ``stream`` (stderr) as JSON lines; returns the handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
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


class HeadwaterServer:
    """A running (after :meth:`start`) gRPC server over one Engine.

    Example::

        >>> server = HeadwaterServer(ServerConfig(address="127.0.0.1:0", db=":memory:", insecure_no_auth=True))
        >>> server.start().port > 0
        True
        >>> server.stop()
    """

    def __init__(self, config: ServerConfig, *, engine: Engine | None = None) -> None:
        self.config = config
        self._own_engine = engine is None
        self.engine = engine
        self.port = 0
        self.servicer: Servicer | None = None
        self._server: grpc.Server | None = None
        self._health: health.HealthServicer | None = None
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()

    @property
    def address(self) -> str:
        """``host:port`` the server listens on (the real port when configured with port 0)."""
        host = self.config.address.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    def start(self) -> HeadwaterServer:
        cfg = self.config
        tokens: TokenSet | None = None if cfg.insecure_no_auth else load_token_file(cfg.token_file or "")
        credentials = None
        if cfg.tls_cert is not None and cfg.tls_key is not None:
            client_ca = _read(cfg.tls_client_ca, "client CA file") if cfg.tls_client_ca else None
            credentials = grpc.ssl_server_credentials([(_read(cfg.tls_key, "TLS key file"),
                                                        _read(cfg.tls_cert, "TLS certificate file"))],
                                                      root_certificates=client_ca,
                                                      require_client_auth=client_ca is not None)
        if self.engine is None:
            if cfg.db == ":memory:":
                from ..store.memory import MemoryStore

                self.engine = Engine(MemoryStore(), config=cfg.engine_config())
            else:
                self.engine = Engine.open(cfg.db, config=cfg.engine_config())
        try:
            if cfg.schema:
                self._load_schema(cfg.schema)
            self.servicer = Servicer(self.engine, ServicerLimits(cfg.max_page_size, cfg.watch_poll_seconds))
            options = [("grpc.max_receive_message_length", cfg.max_message_bytes),
                       ("grpc.max_send_message_length", cfg.max_message_bytes),
                       ("grpc.so_reuseport", 0)]
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=cfg.workers,
                                                            thread_name_prefix="headwater-rpc"),
                                 options=options, maximum_concurrent_rpcs=None)
            server.add_generic_rpc_handlers(build_handlers(self.servicer, tokens))
            self._health = health.HealthServicer(experimental_non_blocking=True)
            health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
            names = service_names()
            reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
            try:
                if credentials is not None:
                    self.port = server.add_secure_port(cfg.address, credentials)
                else:
                    self.port = server.add_insecure_port(cfg.address)
            except RuntimeError as exc:  # grpc's "failed to bind"
                raise ConfigError(f"cannot listen on {cfg.address}: {exc}") from None
            if not self.port:
                raise ConfigError(f"cannot listen on {cfg.address} (in use, or not an address of this host)")
            server.start()
        except BaseException:
            if self._own_engine and self.engine is not None:
                self.engine.close()
            raise
        self._server = server
        for name in ["", *names]:
            self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if tokens is None:
            for _ in range(3):
                _log.warning("AUTHENTICATION IS OFF (--insecure-no-auth): anyone who can reach %s can read and "
                             "change every relationship and the schema", self.address,
                             extra={"fields": {"event": "insecure_no_auth", "address": self.address}})
        if credentials is None and not self.address.startswith(("127.", "localhost", "[::1]")):
            _log.warning("TLS is off: tokens and data cross the network in clear text",
                         extra={"fields": {"event": "plaintext", "address": self.address}})
        _log.info("serving on %s", self.address, extra={"fields": {
            "event": "serving", "address": self.address, "port": self.port, "tls": credentials is not None,
            "mutual_tls": cfg.tls_client_ca is not None, "auth": tokens is not None,
            "tokens": [e.name for e in tokens.entries] if tokens else [], "db": cfg.db, "workers": cfg.workers,
            **self._audit_fields()}})
        return self

    def _audit_fields(self) -> dict[str, Any]:
        """What the start-up log says about auditing (never the key: only whether there is one)."""
        audit = self.engine.audit if self.engine is not None else None
        if audit is None:
            return {"audit": False}
        return {"audit": True, "audit_path": str(audit.path), "audit_decisions": self.config.audit_decisions,
                "audit_durable": audit.durable, "audit_signed": self.config.audit_key_file is not None}

    def _load_schema(self, path: str) -> None:
        assert self.engine is not None
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read schema file {path}: {exc}") from None
        planned = self.engine.write_schema(text, dry_run=True)  # DslError / SchemaConflictError stop the start
        stored = self.engine.store.read_schema()
        if stored is not None and stored.digest == planned.digest:
            _log.info("schema %s is already stored (version %d)", path, stored.version,
                      extra={"fields": {"event": "schema", "version": stored.version, "digest": stored.digest}})
            return
        result = self.engine.write_schema(text, actor="headwater serve")
        _log.info("wrote schema %s as version %d", path, result.version,
                  extra={"fields": {"event": "schema", "version": result.version, "digest": result.digest,
                                    "token": result.token}})

    def stop(self, grace: float | None = None) -> None:
        """Drain and stop: NOT_SERVING, no new calls, Watch streams end, in-flight calls get ``grace`` seconds
        (default ``grace_seconds``), then the engine is closed (the audit log flushed first). Safe to call
        twice."""
        with self._stop_lock:
            if self._stopped.is_set():
                return
            grace = self.config.grace_seconds if grace is None else grace
            _log.info("draining (grace %.1fs)", grace, extra={"fields": {"event": "draining", "grace": grace}})
            if self._health is not None:
                self._health.enter_graceful_shutdown()
            if self.servicer is not None:
                self.servicer.drain()
            if self._server is not None:
                self._server.stop(grace).wait()
            if self._own_engine and self.engine is not None:
                self.engine.close()
            self._stopped.set()
            _log.info("stopped", extra={"fields": {"event": "stopped"}})

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`stop` has finished (True) or ``timeout`` passes (False)."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> HeadwaterServer:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(config: ServerConfig) -> int:
    """Run until SIGTERM or SIGINT, then drain and stop; the exit code (0 after a clean stop)."""
    logger = logging.getLogger("headwater")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    configure_logging(config.log_level)
    try:
        return _run(config)
    finally:  # leave logging as it was (serve may run inside another program, e.g. the tests)
        logger.handlers, logger.propagate = saved[0], saved[2]
        logger.setLevel(saved[1])


def _run(config: ServerConfig) -> int:
    server = HeadwaterServer(config).start()
    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        _log.info("received %s", signal.Signals(signum).name, extra={"fields": {"event": "signal",
                                                                               "signal": signal.Signals(signum).name}})
        stopping.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        server.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0
