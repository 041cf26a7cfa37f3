"""``headwater serve --processes N``: one supervisor and N worker processes serving one port.

The GIL lets one Python process use one core; N processes use N. The supervisor:

- refuses, before starting anything, what N processes cannot serve (:func:`refusal`):
  a ``:memory:`` store (each process would have its own), an audit log on a SQLite
  database (one hash-chained log with several appending processes is not designed),
  and any system but Linux (whose SO_REUSEPORT spreads connections over the sockets);
- reserves the port (a free one for port 0): it binds the address itself with
  SO_REUSEPORT and keeps that socket (bound, never listening, so it receives no
  connection) for its lifetime, so a restarted worker finds the port still theirs;
  a port that something is already listening on is refused, so that two groups never
  share a port by accident;
- reserves the HTTP port (``--http-address``) the same way, and gives the workers one fresh
  ``PROMETHEUS_MULTIPROC_DIR`` (removed at exit; a dead worker's live gauges are dropped), so
  that ``/metrics`` on whichever worker shows the whole group (engine/metrics.py);
- starts worker 0, waits until it serves (it creates or migrates the database and
  writes the schema file), then the others; each worker is the ordinary server
  (:func:`~.server.serve`) bound with SO_REUSEPORT, and the kernel spreads new
  connections over the workers;
- logs ``serving`` once, in the single server's format, with ``processes`` and the
  workers' ``pids`` added (each worker logs ``worker_serving``, and every line of a
  worker carries its ``worker`` number and ``pid``);
- restarts a worker that exits while serving, after a backoff (0.5 s, doubling up to
  30 s; back to 0.5 s once a worker has served for a minute), logged;
- on SIGTERM or SIGINT sends SIGTERM to every worker (each drains its calls for
  ``grace_seconds``), kills one still running ``grace_seconds`` + 5 s later, and
  returns 0;
- on SIGHUP sends SIGHUP to every worker (each reloads the token file, or keeps its tokens
  when the file does not load).

Workers are fresh interpreters (``subprocess``, see docs/decisions/serve-processes.md):
the supervisor writes the pickled :class:`~headwater.engine.config.Config` to a
worker's stdin and keeps that pipe open; a worker reads to its end in a thread, so
when the supervisor is gone (even SIGKILLed) the worker drains and exits by itself.
A worker reports that it serves on a second pipe.

Example::

    >>> from headwater.engine.config import Config
    >>> print(refusal(Config.of(db=":memory:", processes=2, insecure_no_auth=True)))
    --processes 2 cannot serve --db :memory:: each process would have its own throw-away store; give a database file
    >>> refusal(Config.of(db="headwater.db", processes=2, insecure_no_auth=True)) is None
    True
"""

from __future__ import annotations

import errno
import json
import logging
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import IO, Any

from ...dsl import DslError
from .. import tracing
from ..config import Config
from ..errors import ConfigError, EngineError
from ..metrics import forget_process
from .server import AUDIT_NOT_SHARED, STOPPED_WITH_CALLS_RUNNING, HeadwaterServer, configure_logging, serve

__all__ = ["refusal", "run_worker", "supervise"]

_log = logging.getLogger("headwater.supervisor")

#: Seconds a worker gets beyond ``grace_seconds`` to exit after SIGTERM before it is killed.
_KILL_MARGIN = 5.0
#: Seconds the first start of a worker may take before the group gives up.
_START_SECONDS = 120.0
_BACKOFF_FIRST, _BACKOFF_MAX, _BACKOFF_RESET = 0.5, 30.0, 60.0
#: What a worker's interpreter runs (``sys.argv[1:]`` names it in ``ps``).
_WORKER_CODE = "from headwater.engine.service.supervisor import run_worker; run_worker()"


def refusal(config: Config) -> str | None:
    """Why ``config`` cannot be served by ``config.server.processes`` > 1 processes, or None."""
    n, db = config.server.processes, config.storage.db
    if n <= 1:
        return None
    if not sys.platform.startswith("linux"):  # elsewhere SO_REUSEPORT does not spread connections over sockets
        return f"--processes {n} needs Linux (its SO_REUSEPORT spreads connections over the processes)"
    if db == ":memory:":
        return (f"--processes {n} cannot serve --db :memory:: each process would have its own throw-away store; "
                "give a database file")
    if (config.audit.enabled or config.audit.path is not None) and not db.startswith(("postgresql:", "postgres:")):
        return f"--processes {n} with the audit log (--audit): {AUDIT_NOT_SHARED}"
    return tracing.settings_problem()  # else each worker would fail on it, and be restarted, again and again


def supervise(config: Config) -> int:
    """Serve with ``config.server.processes`` workers until SIGTERM or SIGINT; 0 after the drain, else the exit
    code of a worker that could not start (ConfigError, before anything starts, for a :func:`refusal`)."""
    problem = refusal(config)
    if problem is not None:
        raise ConfigError(problem)
    logger = logging.getLogger("headwater")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    configure_logging(config.server.log_level)
    try:
        return _Supervisor(config).run()
    finally:
        logger.handlers, logger.propagate = saved[0], saved[2]
        logger.setLevel(saved[1])


# ------------------------------------------------------------------ the port


def _reserve(address: str) -> tuple[list[socket.socket], int]:
    """Bound (not listening) SO_REUSEPORT sockets holding ``address`` for the workers, and its port."""
    host, _, port_text = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") else host
    try:
        infos = socket.getaddrinfo(host or None, int(port_text), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot listen on {address}: {exc}") from None
    wanted = int(port_text)
    for _ in range(20):  # port 0: the port chosen on the first address may be taken on another; choose again
        port, held = wanted, []
        try:
            for family, kind, proto, _name, sockaddr in dict.fromkeys(infos):
                probe = socket.socket(family, kind, proto)  # fails on a port something listens on
                try:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    probe.bind((sockaddr[0], port, *sockaddr[2:]))
                    port = probe.getsockname()[1]
                finally:
                    probe.close()
                sock = socket.socket(family, kind, proto)
                held.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((sockaddr[0], port, *sockaddr[2:]))
            return held, port
        except OSError as exc:
            for sock in held:
                sock.close()
            if wanted or exc.errno != errno.EADDRINUSE:
                raise ConfigError(f"cannot listen on {address}: {exc.strerror or exc}") from None
    raise ConfigError(f"cannot listen on {address}: no port free on every address")


# ------------------------------------------------------------------ the supervisor


@dataclass
class _Worker:
    """One worker process, its pipes, and what it reported."""

    number: int
    process: subprocess.Popen[bytes]
    started: float
    serving: dict[str, Any] | None = None  # its start-up log line's fields, once it serves
    reported: threading.Event = field(default_factory=threading.Event)


class _Supervisor:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.count = config.server.processes
        self.stopping = threading.Event()
        self.wake = threading.Event()  # a signal, a worker serving, or a worker's pipe closing
        self.workers: dict[int, _Worker] = {}
        self.backoff = dict.fromkeys(range(self.count), _BACKOFF_FIRST)
        self.restart_at: dict[int, float] = {}
        self.metrics_dir: str | None = None  # the workers' PROMETHEUS_MULTIPROC_DIR (with an HTTP listener)

    def run(self) -> int:
        host = self.config.server.address.rpartition(":")[0]
        held, port = _reserve(self.config.server.address)
        config = self.config.replace(address=f"{host}:{port}")
        held_http, config = self._reserve_http(config)
        held += held_http
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hangup)
        try:
            code = self._start_all(config)
            if code is None:
                first = self.workers[0].serving or {}
                pids = [self.workers[i].process.pid for i in range(self.count)]
                _log.info("serving on %s", first.get("address"), extra={"fields": {
                    **first, "processes": self.count, "pids": pids, "supervisor_pid": os.getpid()}})
                self._watch(config)
            codes = self._stop_all()
            _log.info("stopped", extra={"fields": {"event": "stopped", "processes": self.count, "codes": codes}})
            return code or 0
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            for sock in held:
                sock.close()
            if self.metrics_dir is not None:
                shutil.rmtree(self.metrics_dir, ignore_errors=True)

    def _reserve_http(self, config: Config) -> tuple[list[socket.socket], Config]:
        """The HTTP port too, shared by the workers like gRPC's (port 0: one free port for all), and a fresh
        directory where their metrics meet (prometheus_client's multiprocess mode; engine/metrics.py)."""
        address = config.server.http_address
        if address is None:
            return [], config
        held, port = _reserve(address)
        if config.server.metrics:
            self.metrics_dir = tempfile.mkdtemp(prefix="headwater-metrics-")
        return held, config.replace(http_address=f"{address.rpartition(':')[0]}:{port}")

    def _worker_env(self) -> dict[str, str] | None:
        if self.metrics_dir is None:
            return None
        return {**os.environ, "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir}

    def _on_signal(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        _log.info("received %s", name, extra={"fields": {"event": "signal", "signal": name}})
        self.stopping.set()
        self.wake.set()

    def _on_hangup(self, signum: int, frame: object) -> None:
        """SIGHUP: every worker reloads the token file (a restarted worker reads it when it starts)."""
        pids = []
        for worker in list(self.workers.values()):
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGHUP)
                pids.append(worker.process.pid)
        _log.info("received SIGHUP: the workers reload the token file", extra={"fields": {
            "event": "signal", "signal": "SIGHUP", "forwarded_to": pids}})

    def _start_all(self, config: Config) -> int | None:
        """Start worker 0, then the others once it serves; None when all serve, else the exit code to return."""
        for numbers in ([0], range(1, self.count)):
            for n in numbers:
                self._spawn(config, n)
            deadline = time.monotonic() + _START_SECONDS
            while not all(self.workers[n].serving for n in numbers):
                if self.stopping.is_set():
                    return 0
                for n in numbers:
                    code = self.workers[n].process.poll()
                    if code is not None:
                        _log.error("worker %d exited with code %d before serving", n, code,
                                   extra={"fields": {"event": "worker_failed", "worker": n, "code": code}})
                        return code if code > 0 else 1
                if time.monotonic() > deadline:
                    _log.error("workers did not serve within %.0fs", _START_SECONDS,
                               extra={"fields": {"event": "worker_failed"}})
                    return 1
                self.wake.wait(0.1)
                self.wake.clear()
        return None

    def _spawn(self, config: Config, number: int) -> None:
        ready_read, ready_write = os.pipe()
        try:
            process = subprocess.Popen([sys.executable, "-c", _WORKER_CODE, f"headwater-worker-{number}"],
                                       stdin=subprocess.PIPE, pass_fds=(ready_write,),
                                       env=self._worker_env())
        finally:
            os.close(ready_write)
        worker = _Worker(number, process, time.monotonic())
        self.workers[number] = worker
        assert process.stdin is not None
        try:  # the stdin pipe stays open: its end tells the worker that the supervisor is gone
            process.stdin.write(pickle.dumps({"config": config, "worker": number, "ready_fd": ready_write}))
            process.stdin.flush()
        except OSError:
            pass  # it died already: the watch loop sees its exit
        threading.Thread(target=self._read_report, args=(worker, os.fdopen(ready_read, "rb")), daemon=True,
                         name=f"headwater-worker-{number}").start()
        _log.info("started worker %d (pid %d)", number, process.pid,
                  extra={"fields": {"event": "worker_started", "worker": number, "pid": process.pid}})

    def _read_report(self, worker: _Worker, pipe: IO[bytes]) -> None:
        with pipe:
            line = pipe.readline()
        if line:
            worker.serving = json.loads(line)
        worker.reported.set()
        self.wake.set()

    def _watch(self, config: Config) -> None:
        """Until a signal: restart a worker that exits, after its backoff."""
        while not self.stopping.is_set():
            now = time.monotonic()
            for n, worker in list(self.workers.items()):
                if n in self.restart_at:
                    continue
                code = worker.process.poll()
                if code is None:
                    if worker.serving and now - worker.started > _BACKOFF_RESET:
                        self.backoff[n] = _BACKOFF_FIRST
                    continue
                delay = self.backoff[n]
                self.backoff[n] = min(delay * 2, _BACKOFF_MAX)
                self.restart_at[n] = now + delay
                _log.warning("worker %d (pid %d) exited with code %d; restarting it in %.1fs", n,
                             worker.process.pid, code, delay, extra={"fields": {
                                 "event": "worker_exited", "worker": n, "pid": worker.process.pid, "code": code,
                                 "restart_in": delay}})
                if self.metrics_dir is not None:  # its live gauges go; its counts stay in the sums
                    forget_process(self.metrics_dir, worker.process.pid)
                self._close(worker)
            for n, at in list(self.restart_at.items()):
                if now >= at:
                    del self.restart_at[n]
                    self._spawn(config, n)
            self.wake.wait(0.2)
            self.wake.clear()

    def _stop_all(self) -> list[int | None]:
        """SIGTERM to every worker, each killed if still running after the grace period; their exit codes."""
        grace = self.config.server.grace_seconds
        running = [w for w in self.workers.values() if w.process.poll() is None]
        _log.info("draining %d worker(s) (grace %.1fs)", len(running), grace,
                  extra={"fields": {"event": "draining", "grace": grace, "pids": [w.process.pid for w in running]}})
        for worker in running:
            worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace + _KILL_MARGIN
        for worker in running:
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _log.warning("worker %d (pid %d) did not stop within %.1fs: killed", worker.number,
                             worker.process.pid, grace + _KILL_MARGIN, extra={"fields": {
                                 "event": "worker_killed", "worker": worker.number, "pid": worker.process.pid}})
                worker.process.kill()
                worker.process.wait()
        for worker in self.workers.values():
            worker.process.poll()
            self._close(worker)
        return [self.workers[n].process.returncode for n in sorted(self.workers)]

    @staticmethod
    def _close(worker: _Worker) -> None:
        if worker.process.stdin is not None:
            try:
                worker.process.stdin.close()
            except OSError:
                pass


# ------------------------------------------------------------------ a worker


def run_worker() -> None:
    """A worker's whole life (what the supervisor's child interpreters run): read the config from stdin, serve
    until SIGTERM or the supervisor's end, and exit (2 when it cannot serve, as ``headwater serve`` does)."""
    try:
        order = pickle.load(sys.stdin.buffer)
    except EOFError:  # the supervisor was gone before it could tell us anything
        sys.exit(1)
    config: Config = order["config"]
    report = os.fdopen(order["ready_fd"], "wb")
    threading.Thread(target=_watch_supervisor, args=(config.server.grace_seconds,), daemon=True,
                     name="headwater-supervisor-watch").start()

    def ready(server: HeadwaterServer) -> None:
        with report:
            report.write(json.dumps(server.serving, default=str).encode() + b"\n")

    try:
        code = serve(config, worker=order["worker"], ready=ready)
    except (EngineError, DslError, OSError) as exc:
        print(f"error: {exc.render() if isinstance(exc, DslError) else exc}", file=sys.stderr)
        sys.exit(2)
    sys.stderr.flush()
    if code == STOPPED_WITH_CALLS_RUNNING:  # a call never reached a checkpoint: do not wait for its thread
        os._exit(0)
    sys.exit(code)


def _watch_supervisor(grace: float) -> None:
    """Block until the supervisor's end of stdin closes (it stopped us, or it is gone), then stop this worker:
    SIGTERM to itself (a drain), and a hard exit should the drain outlast the supervisor's own deadline."""
    try:  # the file descriptor itself: a thread blocked in sys.stdin would hold its lock at interpreter exit
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace + _KILL_MARGIN)
    os._exit(1)
