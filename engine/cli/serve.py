"""``headwater serve``: run the gRPC server (engine/service, docs/grpc.md)."""

from __future__ import annotations

import argparse
import os
from typing import TextIO

from ...dsl import DslError
from .. import EngineError
from ..config import load_config
from .table import EXIT_USAGE, Command, arg


def _cmd_serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ..service.server import STOPPED_WITH_CALLS_RUNNING, serve  # grpc loads only for the server
    from ..service.supervisor import supervise

    settings = {a.dest: getattr(args, a.dest) for a in _SETTINGS}
    try:
        config = load_config(settings, config_file=args.config)
        if config.server.processes > 1:
            return supervise(config)
        code = serve(config)
        if code == STOPPED_WITH_CALLS_RUNNING:
            # A call never reached a cancellation checkpoint: do not wait for its thread at interpreter exit
            # (the audit log is flushed and the store's last commit is durable).
            out.flush()
            err.flush()
            os._exit(0)
        return code
    except (EngineError, DslError, OSError) as exc:
        text = exc.render() if isinstance(exc, DslError) else str(exc)
        print(f"error: {text}", file=err)
        return EXIT_USAGE


def _cmd_serve_testing(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from functools import partial

    from ..bootstrap import Seed
    from ..config import Config
    from ..service.server import serve  # grpc loads only for the server
    from ..service.testing import TestingServer

    try:
        if args.max_stores < 1:
            raise ValueError(f"--max-stores must be at least 1, got {args.max_stores}")
        paths = [p.strip() for value in args.load_configs or () for p in value.split(",") if p.strip()]
        seed = Seed(paths) if paths else None
        readonly = None if args.readonly_address.strip().lower() in ("", "off") else args.readonly_address.strip()
        config = Config.of(address=args.address, log_level=args.log_level, insecure_no_auth=True, db=":memory:")
        code = serve(config, server=partial(TestingServer, max_stores=args.max_stores, seed=seed,
                                            readonly_address=readonly))
    except (EngineError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    return finish(code, out, err)


def finish(code: int, out: TextIO, err: TextIO) -> int:
    """The exit code of a server that stopped with ``code``; when a call never reached a cancellation checkpoint,
    exit at once rather than wait for its thread (the audit log is flushed, the store's last commit durable)."""
    from ..service.server import STOPPED_WITH_CALLS_RUNNING

    if code == STOPPED_WITH_CALLS_RUNNING:
        for stream in (out, err):
            stream.flush()
        os._exit(0)
    return code


# Every setting of the server, each also a HEADWATER_* variable and a key of the --config file.
_SETTINGS = (
    arg("--address", metavar="HOST:PORT", help="where to listen (default 127.0.0.1:50051; port 0 picks a free port)"),
    arg("--workers", type=int, metavar="N", help="threads serving calls (default 16)"),
    arg("--processes", type=int, metavar="N",
        help="worker processes sharing the port, under a supervisor that restarts a dead one; over a database "
             "file, not :memory: nor an audited SQLite database (default 1: this process serves; docs/scaling.md)"),
    arg("--heavy-calls", type=int, metavar="N",
        help="lookups, expands, exports, listings and audit scans running at once; others wait while heavy "
             "calls leave a quarter of the workers free, more are RESOURCE_EXHAUSTED (default 4)"),
    arg("--db", metavar="DB", help="the database: a SQLite file, created on first start (default headwater.db), a "
                                   "postgresql:// URI (migrated first: headwater migrate), or :memory: for a "
                                   "throw-away store"),
    arg("--pool-size", type=int, metavar="N", help="PostgreSQL: connections open at most per process (default 20)"),
    arg("--pool-timeout", type=float, metavar="S",
        help="PostgreSQL: seconds a call waits for a free connection before UNAVAILABLE (default 5)"),
    arg("--statement-timeout", type=float, metavar="S",
        help="PostgreSQL: seconds one statement may run before the database cancels it (default 30)"),
    arg("--schema", metavar="FILE", help="schema file written at start unless already stored"),
    arg("--bootstrap", metavar="FILE",
        help="validation file (schema and relationships, as `headwater validate` reads) loaded at start into an "
             "empty store; a restart over the same data loads nothing, a store holding other data is refused"),
    arg("--token-file", metavar="FILE", help="TOML file of bearer tokens with names and scopes"),
    arg("--insecure-no-auth", action="store_true", default=None,
        help="serve WITHOUT authentication (anyone who can connect can read and write everything)"),
    arg("--tls-cert", metavar="FILE", help="PEM certificate chain: serve TLS (with --tls-key)"),
    arg("--tls-key", metavar="FILE", help="PEM private key of --tls-cert"),
    arg("--tls-client-ca", metavar="FILE", help="PEM CA bundle: require client certificates signed by it (mutual TLS)"),
    arg("--max-updates-per-write", type=int, metavar="N", help="updates in one write (default 1000)"),
    arg("--max-bulk-check-items", type=int, metavar="N", help="items in one bulk check (default 1000)"),
    arg("--max-caveat-context-bytes", type=int, metavar="N",
        help="bytes of caveat context on one relationship or check (default 4096)"),
    arg("--max-page-size", type=int, metavar="N",
        help="results per streamed page, and the largest page a request may ask for (default 1000)"),
    arg("--max-message-bytes", type=int, metavar="N", help="largest request or response message (default 4194304)"),
    arg("--max-depth", type=int, metavar="N", help="longest dispatch chain in one check (default 50)"),
    arg("--max-schema-bytes", type=int, metavar="N", help="bytes of schema text one schema write may send "
                                                           "(default 524288)"),
    arg("--max-schema-definitions", type=int, metavar="N",
        help="definitions, caveats and classifications in one schema (default 5000)"),
    arg("--max-definition-members", type=int, metavar="N",
        help="relations and permissions in one definition (default 2000)"),
    arg("--max-expression-nesting", type=int, metavar="N",
        help="levels of operators in one permission expression, at most 100 (default 32)"),
    arg("--max-work-per-request", type=int, metavar="N",
        help="sub-problems evaluated plus rows read by one request before RESOURCE_EXHAUSTED (default 1000000)"),
    arg("--cache-size", type=int, metavar="N",
        help="entries in the shared check cache; 0 turns the cache off (default 100000)"),
    arg("--grace-seconds", type=float, metavar="S",
        help="how long in-flight calls may finish at shutdown (default 10)"),
    arg("--watch-poll-seconds", type=float, metavar="S", help="how often Watch looks for new changes (default 0.2)"),
    arg("--log-level", choices=["debug", "info", "warning", "error"], help="default info"),
    arg("--http-address", metavar="HOST:PORT",
        help="serve HTTP there too: Prometheus metrics at /metrics (docs/operations.md), OpenLineage events at "
             "/api/v1/lineage (docs/lineage-capture.md), same TLS as gRPC; port 0 "
             "picks a free port (default: no HTTP listener)"),
    arg("--metrics", action=argparse.BooleanOptionalAction, default=None,
        help="collect metrics and serve /metrics on the HTTP listener (default on when --http-address is given)"),
    arg("--metrics-token-file", metavar="FILE",
        help="file holding a bearer token that /metrics requires (default: /metrics needs no token)"),
    arg("--playground", action=argparse.BooleanOptionalAction, default=None,
        help="serve the playground on the HTTP listener: its page at / and scratch workspaces that need no token "
             "(docs/playground.md); --no-playground leaves them out (default on when --http-address is given)"),
    arg("--openlineage-mapping", metavar="FILE",
        help="TOML file whose [openlineage] table maps OpenLineage datasets and jobs to objects for POST "
             "/api/v1/lineage on the HTTP listener (docs/lineage-capture.md; default: the built-in mapping)"),
    arg("--audit", action=argparse.BooleanOptionalAction, default=None,
        help="keep an audit log beside the database (<db>.audit; docs/audit.md): every change and the decisions "
             "--audit-decisions selects, with the caller's token name (default off; a database that already has "
             "an audit log stays audited)"),
    arg("--audit-decisions", metavar="POLICY",
        help="which decisions to record: all (default), denials, sample:RATE (e.g. sample:0.01) or off (changes "
             "only)"),
    arg("--audit-durable", action=argparse.BooleanOptionalAction, default=None,
        help="a check answers only once its audit record is committed and fsynced"),
    arg("--audit-queue-size", type=int, metavar="N",
        help="audit records queued at most; a check waits for room beyond it (default 10000)"),
    arg("--audit-key-file", metavar="FILE",
        help="file holding the HMAC key that signs the audit log's head and checkpoints (never logged)"),
    arg("--audit-explain", choices=["off", "denials", "all"],
        help="which recorded decisions carry their explanation's summary (default off)"),
    arg("--audit-path", metavar="FILE", help="the audit log's file (default <db>.audit beside the database)"),
    arg("--monitor", action=argparse.BooleanOptionalAction, default=None,
        help="run the monitoring rules over the audit log as it grows: each alert logged (event alert) and counted "
             "in headwater_monitor_alerts_total (needs --audit; docs/governance.md; default off)"),
    arg("--monitor-rules", metavar="FILE",
        help="TOML file whose [monitor] table sets the monitoring rules (default: the built-in rules)"),
    arg("--gc-window", type=float, metavar="S",
        help="seconds deleted relationships stay readable at old revisions (default 86400)"),
    arg("--gc-interval", metavar="S",
        help="seconds between automatic garbage collections, or never (default 600)"),
    arg("--head-staleness", type=float, metavar="S",
        help="seconds a minimize_latency read may lag the newest revision (default 0.05)"),
)

COMMANDS = (
    Command(
        "serve", help="run the gRPC server",
        description="Serve the Headwater gRPC API (docs/grpc.md): checks, lookups, expand, relationships, the "
                    "schema, lineage and the audit trail, plus gRPC health checking and server reflection, over an "
                    "embedded SQLite database (created on first start) or PostgreSQL (--db postgresql://...; "
                    "headwater migrate first). --bootstrap FILE loads a validation file's schema and relationships "
                    "into an empty store at start. It runs here, on this machine (no --server). Every setting is "
                    "a flag, a HEADWATER_* "
                    "environment variable (e.g. HEADWATER_TOKEN_FILE) or a key of the TOML --config file, in that "
                    "order of precedence. Bearer tokens come from --token-file; running without authentication "
                    "needs --insecure-no-auth. --audit keeps an audit log (the AuditService serves it to tokens "
                    "with the audit scope). SIGTERM or SIGINT drains in-flight calls, writes the audit records "
                    "still queued and closes the database. Logs are JSON lines on stderr, one per call (method, "
                    "status, duration, token name). --processes N serves from N worker processes sharing the "
                    "port, to use N cores (the supervisor forwards SIGTERM and waits for every worker to drain).",
        args=(arg("--config", metavar="FILE", help="TOML file of settings (keys named like the flags, with _)"),
              *_SETTINGS),
        run=_cmd_serve),
    Command(
        "serve-testing", help="run an in-memory gRPC server with one empty store per bearer token, for test suites",
        description="Like spicedb serve-testing: serve both APIs (headwater.v1 and SpiceDB's authzed.api.v1) from "
                    "memory, where every distinct bearer token gets its own isolated, empty store (schema and "
                    "relationships), created on its first call (with --load-configs, holding those files' schema "
                    "and relationships); calls without a token share one anonymous store. A second port "
                    "(--readonly-address) serves the same stores read-only. No token configuration and no "
                    "authentication: every scope is granted. At most --max-stores stores are kept (one more "
                    "forgets the least recently used). Nothing is written to disk. Logs are JSON lines on stderr "
                    "(the serving line gives the ports). docs/grpc.md#serve-testing",
        args=(arg("--address", metavar="HOST:PORT", default="127.0.0.1:50051",
                  help="where to listen (default 127.0.0.1:50051; port 0 picks a free port)"),
              arg("--readonly-address", metavar="HOST:PORT", default="127.0.0.1:50052",
                  help="where to serve the same stores read-only: calls that would write are UNAVAILABLE "
                       "'service read-only' (default 127.0.0.1:50052, as spicedb serve-testing; off: none)"),
              arg("--load-configs", metavar="FILE[,FILE]", action="append",
                  help="validation files (schema and relationships) every new store starts with, as spicedb "
                       "serve-testing --load-configs; checked at start (repeat or separate with commas)"),
              arg("--log-level", choices=["debug", "info", "warning", "error"], default="info", help="default info"),
              arg("--max-stores", type=int, metavar="N", default=1000,
                  help="stores (tokens) kept at most; one more forgets the least recently used (default 1000)")),
        run=_cmd_serve_testing),
)
