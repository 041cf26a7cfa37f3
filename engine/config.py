"""Config: every setting of the engine and the server, in one frozen object; every default written once, here.

A :class:`Config` has sections (``limits``, ``cache``, ``storage``, ``audit``,
``server``); the engine and the server read the same object. Each setting also
has one flat name (``max_depth``, ``cache_size``, ``audit_decisions``...) used
everywhere a person types it: the ``headwater serve`` flag (``--max-depth``),
the environment variable (``HEADWATER_MAX_DEPTH``), the TOML key (``max_depth =
11``, or ``[limits] max_depth = 11``) and :meth:`Config.of`. :func:`load_config`
reads flags, then ``HEADWATER_*`` variables, then a TOML file, in that order of
precedence; a relative path in a TOML file is relative to the file. Durations
are seconds. A bad value is a :class:`~headwater.engine.errors.ConfigError`
naming the setting and where it came from.

Example::

    >>> Config().limits.max_depth
    50
    >>> Config.of(max_depth=11, cache_size=0).cache.size
    0
    >>> load_config({"workers": 4}, {"HEADWATER_WORKERS": "8", "HEADWATER_INSECURE_NO_AUTH": "1"}).server.workers
    4
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..dsl import SchemaLimits
from ..dsl.limits import MAX_EXPRESSION_NESTING_CEILING
from .errors import ConfigError
from .store.naming import is_file

__all__ = ["SETTINGS", "AuditSettings", "CacheSettings", "Config", "Limits", "ServerSettings", "Setting",
           "StorageSettings", "load_config", "read_toml"]

_ENV_PREFIX = "HEADWATER_"
_SCHEMA = SchemaLimits()  # the schema limits' defaults are the language's (dsl/limits.py)


@dataclass(frozen=True, slots=True)
class Limits:
    """How much work one request may ask for."""

    #: Longest chain of sub-problems one check may take before MaxDepthExceededError (SpiceDB's default too).
    max_depth: int = 50
    #: Updates in one write, and relationships per import batch (SpiceDB's default).
    max_updates_per_write: int = 1000
    #: Relationships one bulk import commits in one transaction at most: the batch of SpiceDB's
    #: ImportBulkRelationships (an import up to this size is all or nothing, as in SpiceDB; a larger one is
    #: committed in batches of this size), and the largest ``batch_size`` of ``Engine.import_relationships``.
    max_import_batch: int = 100_000
    #: Bytes of caveat context (as JSON) stored on one relationship, and sent with one check.
    max_caveat_context_bytes: int = 4096
    #: Items in one bulk check.
    max_bulk_check_items: int = 1000
    #: Results per server page of a stream, and the largest page a request may ask for.
    max_page_size: int = 1000
    #: Largest gRPC request or response message, in bytes (bigger ones are RESOURCE_EXHAUSTED).
    max_message_bytes: int = 4 * 1024 * 1024
    #: Bytes of schema text one schema write may send (the defaults and their compile times:
    #: docs/language.md, "Limits").
    max_schema_bytes: int = _SCHEMA.max_schema_bytes
    #: Definitions, caveats and classifications in one schema.
    max_schema_definitions: int = _SCHEMA.max_schema_definitions
    #: Relations and permissions in one definition.
    max_definition_members: int = _SCHEMA.max_definition_members
    #: Levels of operators one permission expression may nest (at most 100: dsl/limits.py).
    max_expression_nesting: int = _SCHEMA.max_expression_nesting
    #: Work one request may do: sub-problems evaluated plus relationship rows read by walks and listings
    #: (about 5 to 10 µs each); beyond it the request ends with WorkLimitExceededError (RESOURCE_EXHAUSTED).
    max_work_per_request: int = 1_000_000


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """The engine's caches (built in engine/chain.py)."""

    #: Entries in the shared check cache (outcomes of checks and of their sub-problems); 0 turns the check and
    #: lineage caches off.
    size: int = 100_000
    #: Effective labels and upstream sets kept (per revision).
    lineage_size: int = 50_000
    #: Compiled schemas kept, by digest.
    schema_size: int = 64
    #: Revisions whose schema in force is remembered.
    revision_size: int = 1024
    #: Lookup listings whose candidates are kept for their next pages.
    listing_size: int = 64


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """The store, its history and how fresh a read is."""

    #: The database: a SQLite file (created on first start), a ``postgresql://`` URI (a database migrated with
    #: ``headwater migrate``; the ``PG*`` variables and the password file fill in what it leaves out), or
    #: ``:memory:`` for a throw-away store.
    db: str = "headwater.db"
    #: PostgreSQL only: connections open at most per process (each running call holds one while it reads).
    pool_size: int = 20
    #: PostgreSQL only: how long a call waits for a free connection before UNAVAILABLE.
    pool_timeout: timedelta = timedelta(seconds=5)
    #: PostgreSQL only: how long one statement may run before the database cancels it (UNAVAILABLE).
    statement_timeout: timedelta = timedelta(seconds=30)
    #: How long deleted relationships stay readable at old revisions (garbage-collection window).
    gc_window: timedelta = timedelta(hours=24)
    #: How often (at most) a write triggers garbage collection of history older than ``gc_window``
    #: (None: never automatically; call ``Engine.gc()``).
    gc_interval: timedelta | None = timedelta(minutes=10)
    #: How stale a minimize_latency read may be: the head revision is re-read at most this often (this
    #: process's own writes are seen at once). Zero reads the head for every check. SpiceDB's equivalent
    #: defaults to 5 s.
    head_staleness: timedelta = timedelta(milliseconds=50)


@dataclass(frozen=True, slots=True)
class AuditSettings:
    """The audit log (engine/audit, docs/audit.md)."""

    #: Keep an audit log: every relationship and schema change, and the decisions ``decisions`` selects.
    #: A database last written audited stays audited whatever this says (its log is kept, and a missing or
    #: rolled-back log is refused until acknowledged: docs/audit.md).
    enabled: bool = False
    #: The audit log's SQLite file. None: ``<database>.audit`` beside a SQLite store's file; a temporary
    #: file, removed on close, for any other store.
    path: str | None = None
    #: Which decisions are recorded: "all", "denials" (NO_PERMISSION and CONDITIONAL_PERMISSION),
    #: "sample:<rate>" (e.g. "sample:0.01") or "off" (changes only). Lookups: one record per call, under
    #: "all" and "sample".
    decisions: str = "all"
    #: Which recorded decisions carry their explanation's summary lines: "off", "denials" or "all". Each
    #: costs one more (uncached) evaluation on the checking thread.
    explain: str = "off"
    #: A check returns only once its decision record is committed and fsynced. Off: records are written in
    #: the background, at the latest 100 ms after the check (see docs/audit.md for what a crash loses).
    durable: bool = False
    #: Audit records queued or being written at most; a check waits for room beyond it.
    queue_size: int = 10_000
    #: HMAC key signing the audit log's pruning checkpoints and head (None: a plain SHA-256).
    key: str | None = field(default=None, repr=False)
    #: A file holding that key (its content without surrounding whitespace); never logged.
    key_file: str | None = None
    #: Follow the audit log in the server and raise the monitoring rules' alerts as they happen: one log line
    #: each (``"event": "alert"``) and ``headwater_monitor_alerts_total{rule}`` (docs/governance.md).
    monitor: bool = False
    #: A TOML file whose ``[monitor]`` table sets the rules (None: the defaults); Monitor calls use it too.
    monitor_rules: str | None = None

    def resolved_key(self) -> str | None:
        """``key``, or the content of ``key_file`` (ConfigError if it cannot be read or is empty)."""
        if self.key is not None or self.key_file is None:
            return self.key
        try:
            key = Path(self.key_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read audit key file {self.key_file}: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None
        if not key:
            raise ConfigError(f"audit key file {self.key_file} is empty")
        return key


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """``headwater serve``: where it listens, who may call it, how it stops."""

    #: host:port to listen on; port 0 picks a free port (the log and ``HeadwaterServer.port`` tell which).
    address: str = "127.0.0.1:50051"
    #: Threads serving calls (each in-flight call, streams included, holds one).
    workers: int = 16
    #: Worker processes sharing the listening port (SO_REUSEPORT) under one supervisor; 1 serves in this process
    #: (engine/service/supervisor.py, docs/scaling.md).
    processes: int = 1
    #: Heavy calls (lookups, expand, exports, listings, audit queries and verification, lineage walks) that
    #: run at once. Others wait for a turn while heavy calls leave a quarter of the workers (at least 2) to
    #: everything else; beyond that a heavy call is RESOURCE_EXHAUSTED at once (engine/service/admission.py).
    heavy_calls: int = 4
    #: Schema file written at start unless the stored schema is already the same.
    schema: str | None = None
    #: Validation file (schema and relationships) loaded at start into an empty store (engine/bootstrap.py).
    bootstrap: str | None = None
    #: TOML file of bearer tokens (see engine/service/auth.py); required unless insecure_no_auth.
    token_file: str | None = None
    #: Serve without authentication. Must be set explicitly; announced loudly at start-up.
    insecure_no_auth: bool = False
    #: PEM certificate chain and private key: serve TLS (both or neither).
    tls_cert: str | None = None
    tls_key: str | None = None
    #: PEM CA bundle: require and verify client certificates (mutual TLS); needs tls_cert/tls_key.
    tls_client_ca: str | None = None
    #: Seconds in-flight calls get to finish at shutdown before they are cancelled.
    grace_seconds: float = 10.0
    #: How often Watch looks for new changes when there are none, in seconds.
    watch_poll_seconds: float = 0.2
    #: Log level of the structured logs (debug, info, warning, error).
    log_level: str = "info"
    #: host:port of the HTTP listener (``/metrics``; engine/service/http, docs/operations.md); None: no HTTP
    #: listener. Port 0 picks a free port. Same TLS files as gRPC.
    http_address: str | None = None
    #: Collect Prometheus metrics and serve them at ``/metrics`` on the HTTP listener (off without one).
    metrics: bool = True
    #: A file holding the bearer token ``/metrics`` requires (None: ``/metrics`` needs no token); never logged.
    metrics_token_file: str | None = None
    #: Serve the playground (its page at ``/`` and its scratch workspaces, which need no token; docs/playground.md)
    #: on the HTTP listener. Off: those routes are not there (404); /metrics and /api/v1/lineage stay.
    playground: bool = True
    #: The TOML file whose ``[openlineage]`` table maps OpenLineage events to objects (POST /api/v1/lineage;
    #: docs/lineage-capture.md); None: the built-in mapping.
    openlineage_mapping: str | None = None

    def validate_serving(self) -> None:
        """Refuse to serve without authentication unless that is asked for explicitly."""
        if self.insecure_no_auth and self.token_file is not None:
            raise ConfigError("give token_file or insecure_no_auth, not both")
        if not self.insecure_no_auth and self.token_file is None:
            raise ConfigError("no token file: give --token-file (or HEADWATER_TOKEN_FILE, or token_file in the "
                              "config file), or run explicitly without authentication with --insecure-no-auth")


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: its flat name, where it lives (section, field), how text becomes its value, and its check."""

    name: str
    section: str
    field: str
    parse: Callable[[Any], Any]
    check: Callable[[Any], str | None]  # a problem, or None
    path: bool = False  # a file name: relative to the TOML file it came from


def _positive(value: Any) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else "a positive integer"


def _nesting(value: Any) -> str | None:
    ok = _positive(value) is None and value <= MAX_EXPRESSION_NESTING_CEILING
    return None if ok else f"an integer from 1 to {MAX_EXPRESSION_NESTING_CEILING}"


def _size(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return None if ok else "zero (no cache) or a positive integer"


def _seconds_or_more(value: Any) -> str | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
    return None if ok else "zero or more seconds"


def _duration(value: Any) -> str | None:
    return None if isinstance(value, timedelta) and value >= timedelta(0) else "a duration of zero or more"


def _optional_duration(value: Any) -> str | None:
    return None if value is None else _duration(value)


def _address(value: Any) -> str | None:
    return None if isinstance(value, str) and ":" in value else "host:port"


def _log_level(value: Any) -> str | None:
    ok = isinstance(value, str) and value.lower() in ("debug", "info", "warning", "error")
    return None if ok else "debug, info, warning or error"


def _decisions(value: Any) -> str | None:
    if value in ("all", "denials", "off"):
        return None
    if isinstance(value, str) and value.startswith("sample:"):
        try:
            if 0.0 <= float(value[len("sample:"):]) <= 1.0:
                return None
        except ValueError:
            pass
    return "all, denials, off or sample:<rate> with a rate between 0 and 1 (an invalid audit decisions policy)"


def _explain(value: Any) -> str | None:
    return None if value in ("off", "denials", "all") else "off, denials or all (an invalid audit explain policy)"


def _anything(value: Any) -> str | None:
    return None


def _text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _integer(value: Any) -> Any:
    if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
        raise ValueError("expected an integer")
    return int(value)


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    return float(value)


_BOOL_TEXT = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def _boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOL_TEXT:
        return _BOOL_TEXT[value.strip().lower()]
    raise ValueError("expected true or false")


def _timedelta(value: Any) -> Any:
    return value if isinstance(value, timedelta) else timedelta(seconds=_number(value))


def _optional_timedelta(value: Any) -> Any:
    if value is None or isinstance(value, str) and value.strip().lower() in ("never", "off", "none"):
        return None
    return _timedelta(value)


SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("max_depth", "limits", "max_depth", _integer, _positive),
    Setting("max_updates_per_write", "limits", "max_updates_per_write", _integer, _positive),
    Setting("max_import_batch", "limits", "max_import_batch", _integer, _positive),
    Setting("max_caveat_context_bytes", "limits", "max_caveat_context_bytes", _integer, _positive),
    Setting("max_bulk_check_items", "limits", "max_bulk_check_items", _integer, _positive),
    Setting("max_page_size", "limits", "max_page_size", _integer, _positive),
    Setting("max_message_bytes", "limits", "max_message_bytes", _integer, _positive),
    Setting("max_schema_bytes", "limits", "max_schema_bytes", _integer, _positive),
    Setting("max_schema_definitions", "limits", "max_schema_definitions", _integer, _positive),
    Setting("max_definition_members", "limits", "max_definition_members", _integer, _positive),
    Setting("max_expression_nesting", "limits", "max_expression_nesting", _integer, _nesting),
    Setting("max_work_per_request", "limits", "max_work_per_request", _integer, _positive),
    Setting("cache_size", "cache", "size", _integer, _size),
    Setting("cache_lineage_size", "cache", "lineage_size", _integer, _positive),
    Setting("cache_schema_size", "cache", "schema_size", _integer, _positive),
    Setting("cache_revision_size", "cache", "revision_size", _integer, _positive),
    Setting("cache_listing_size", "cache", "listing_size", _integer, _positive),
    Setting("db", "storage", "db", _text, _anything, path=True),
    Setting("pool_size", "storage", "pool_size", _integer, _positive),
    Setting("pool_timeout", "storage", "pool_timeout", _timedelta, _duration),
    Setting("statement_timeout", "storage", "statement_timeout", _timedelta, _duration),
    Setting("gc_window", "storage", "gc_window", _timedelta, _duration),
    Setting("gc_interval", "storage", "gc_interval", _optional_timedelta, _optional_duration),
    Setting("head_staleness", "storage", "head_staleness", _timedelta, _duration),
    Setting("audit", "audit", "enabled", _boolean, _anything),
    Setting("audit_path", "audit", "path", _text, _anything, path=True),
    Setting("audit_decisions", "audit", "decisions", _text, _decisions),
    Setting("audit_explain", "audit", "explain", _text, _explain),
    Setting("audit_durable", "audit", "durable", _boolean, _anything),
    Setting("audit_queue_size", "audit", "queue_size", _integer, _positive),
    Setting("audit_key", "audit", "key", _text, _anything),
    Setting("audit_key_file", "audit", "key_file", _text, _anything, path=True),
    Setting("monitor", "audit", "monitor", _boolean, _anything),
    Setting("monitor_rules", "audit", "monitor_rules", _text, _anything, path=True),
    Setting("address", "server", "address", _text, _address),
    Setting("workers", "server", "workers", _integer, _positive),
    Setting("processes", "server", "processes", _integer, _positive),
    Setting("heavy_calls", "server", "heavy_calls", _integer, _positive),
    Setting("schema", "server", "schema", _text, _anything, path=True),
    Setting("bootstrap", "server", "bootstrap", _text, _anything, path=True),
    Setting("token_file", "server", "token_file", _text, _anything, path=True),
    Setting("insecure_no_auth", "server", "insecure_no_auth", _boolean, _anything),
    Setting("tls_cert", "server", "tls_cert", _text, _anything, path=True),
    Setting("tls_key", "server", "tls_key", _text, _anything, path=True),
    Setting("tls_client_ca", "server", "tls_client_ca", _text, _anything, path=True),
    Setting("grace_seconds", "server", "grace_seconds", _number, _seconds_or_more),
    Setting("watch_poll_seconds", "server", "watch_poll_seconds", _number, _seconds_or_more),
    Setting("log_level", "server", "log_level", _text, _log_level),
    Setting("http_address", "server", "http_address", _text, _address),
    Setting("metrics", "server", "metrics", _boolean, _anything),
    Setting("metrics_token_file", "server", "metrics_token_file", _text, _anything, path=True),
    Setting("playground", "server", "playground", _boolean, _anything),
    Setting("openlineage_mapping", "server", "openlineage_mapping", _text, _anything, path=True),
)}
"""Every setting by its flat name (the name of its flag, environment variable and TOML key)."""

_SECTIONS = {"limits": Limits, "cache": CacheSettings, "storage": StorageSettings, "audit": AuditSettings,
             "server": ServerSettings}


@dataclass(frozen=True, slots=True)
class Config:
    """Every setting of an engine and its server, by section; see the module docstring."""

    limits: Limits = field(default_factory=Limits)
    cache: CacheSettings = field(default_factory=CacheSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    server: ServerSettings = field(default_factory=ServerSettings)

    @classmethod
    def of(cls, **settings: Any) -> Config:
        """A config from flat settings (``Config.of(max_depth=11, audit=True)``), the rest at their defaults."""
        return cls().replace(**settings)

    def replace(self, **settings: Any) -> Config:
        """This config with the flat ``settings`` changed; each is checked (ConfigError names a bad one)."""
        return self._with({name: (value, None) for name, value in settings.items()})

    def _with(self, values: Mapping[str, tuple[Any, str | None]]) -> Config:
        """This config with ``values`` (flat name -> (value, source or None when given as a Python value))."""
        changes: dict[str, dict[str, Any]] = {}
        for name, (value, source) in values.items():
            setting = SETTINGS.get(name)
            if setting is None:
                known = ", ".join(sorted(SETTINGS))
                raise ConfigError(f"{'unknown setting ' + repr(name)}" + (f" in {source}" if source else "")
                                  + f"; known: {known}")
            if source is not None and value is not None:
                try:
                    value = setting.parse(value)
                except (ValueError, TypeError, OverflowError) as exc:
                    raise ConfigError(f"{name} from {source}: {value!r} is not valid ({exc})") from None
            optional = dataclasses.fields(_SECTIONS[setting.section])  # None is valid where the default is None
            nullable = any(f.name == setting.field and f.default is None for f in optional)
            if not (value is None and nullable):
                problem = setting.check(value)
                if problem is not None:
                    raise ConfigError(f"{name} must be {problem}, got {value!r}"
                                      + (f" (from {source})" if source else ""))
            changes.setdefault(setting.section, {})[setting.field] = value
        sections = {name: dataclasses.replace(getattr(self, name), **fields) for name, fields in changes.items()}
        config = dataclasses.replace(self, **sections)
        config._validate_together()
        return config

    def _validate_together(self) -> None:
        server = self.server
        if (server.tls_cert is None) != (server.tls_key is None):
            raise ConfigError("tls_cert and tls_key go together: give both or neither")
        if server.tls_client_ca is not None and server.tls_cert is None:
            raise ConfigError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")


def load_config(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
                config_file: str | None = None, *, serving: bool = True) -> Config:
    """The settings from ``flags`` (non-None values), then ``env`` (``HEADWATER_*``), then the TOML file.

    ``config_file`` (or ``HEADWATER_CONFIG``) names the TOML file: flat keys named like the
    settings, or tables named like the sections (``[limits]``, keys named like the section's
    fields or like the flat settings). ``serving``: also require what ``headwater serve``
    requires (a token file, or authentication explicitly off).
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = dict(os.environ if env is None else env)
    values: dict[str, tuple[Any, str | None]] = {}
    path = config_file or env.get(_ENV_PREFIX + "CONFIG")
    if path:
        values.update(_from_file(path))
    for name in SETTINGS:
        var = _ENV_PREFIX + name.upper()
        if var in env and env[var] != "":
            values[name] = (env[var], f"environment variable {var}")
    for name, value in flags.items():
        values[name] = (value, f"--{name.replace('_', '-')}")
    config = Config()._with(values)
    if serving:
        config.server.validate_serving()
    return config


def read_toml(path: str | Path, what: str, error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """The TOML file at ``path`` (a ``what``, such as "config file"); ``error`` names it when it cannot be read
    or is not TOML."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{what} {path} is not valid TOML: {exc}") from None


def _from_file(path: str) -> dict[str, tuple[Any, str | None]]:
    data = read_toml(path, "config file")
    source, folder = f"config file {path}", Path(path).parent
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS and isinstance(value, dict):
            for inner, inner_value in value.items():
                flat[_flat_name(key, inner, source)] = inner_value
        elif key not in SETTINGS:
            raise ConfigError(f"{source}: unknown setting {key!r}; known: {sorted(SETTINGS)}")
        else:
            flat[key] = value
    out: dict[str, tuple[Any, str | None]] = {}
    for name, value in flat.items():
        if SETTINGS[name].path and isinstance(value, str) and is_file(value):
            value = str(folder / value) if not Path(value).is_absolute() else value
        out[name] = (value, source)
    return out


def _flat_name(section: str, key: str, source: str) -> str:
    """The flat name of ``key`` in the TOML table ``[section]`` (a field name or a flat name of that section)."""
    for setting in SETTINGS.values():
        if setting.section == section and key in (setting.field, setting.name):
            return setting.name
    raise ConfigError(f"{source}: unknown setting {key!r} in [{section}]; known: "
                      f"{sorted(s.field for s in SETTINGS.values() if s.section == section)}")
