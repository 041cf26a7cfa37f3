"""gRPC checks per second from ``headwater serve --processes 1`` and ``--processes 2`` (issue 16).

    python -m benchmarks.bench_processes [--processes 1 2] [--clients 2] [--connections 8] [--in-flight 8]
                                         [--seconds 10] [--warmup 3] [--rounds 3] [--server-nice N]
                                         [--store sqlite|postgresql] [--two-servers]
                                         [--json benchmarks/results/processes.json]

``--store postgresql`` puts the same data in a new PostgreSQL database (created on ``--pg-server``, dropped
after); ``--two-servers`` adds a layout of two separate single-process servers over that database, each
load generator connected to one of them.

One SQLite file in a temporary folder holds the ai-lineage sample's schema
(examples/ai-lineage/policy.zed) and 200 grants ``dataset:d<i>#viewer@user:u<i>``.
For each round, and in it for each ``--processes`` value (alternating, so that a
change in the machine's load falls on both), the benchmark starts ``headwater serve
--processes P`` on it (no auth, 127.0.0.1, ``--log-level warning``: no access log
line per call), then ``--clients`` load-generator **processes**. Each opens
``--connections`` connections of its own (so the kernel's SO_REUSEPORT hash spreads
them over the workers) and keeps ``--in-flight`` asynchronous ``Check`` calls
(grpc.aio) running on each: warm checks (``dataset:d<r>#read@user:u<r>``, allowed,
and ``...@user:u<r+1>``, denied, at minimize_latency, so the server's check cache
answers after the first ``--warmup`` seconds, which are not counted). Reported per
run: checks per second over ``--seconds``, errors, and the CPU seconds the server's
processes (each worker separately), the load generators and the rest of the machine
used in that window, from /proc: the load generators share the machine's cores with
the server, so on 2 cores they take CPU that ``--processes 2`` would otherwise use.

Each session (its runs, the medians per ``--processes`` value, the machine's load
average) is added to the ``--json`` file. Numbers, not pass/fail; the figures and
what limits them: docs/scaling.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

POLICY = Path(__file__).resolve().parents[1] / "examples" / "ai-lineage" / "policy.zed"
DATASETS = 200
_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (0.0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _machine_cpu_seconds() -> float:
    """CPU seconds every process of the machine has used (all cores: /proc/stat less idle and iowait)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / _TICK


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except OSError:
                pass
    return sorted(out)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the load generator (one process) -----------------------------------------------------------


async def _drive(address: str, connections: int, in_flight: int, count_from: float, stop_at: float) -> dict:
    import grpc
    from headwater.engine.relationships import parse_object, parse_subject
    from headwater.engine.service import convert
    from headwater.engine.service.pb import permission_pb2, permission_pb2_grpc

    requests = [permission_pb2.CheckRequest(resource=convert.object_to_proto(parse_object(f"dataset:d{i}")),
                                            permission="read",
                                            subject=convert.subject_to_proto(parse_subject(f"user:u{i + k}")))
                for i in range(DATASETS) for k in (0, 1)]
    counted = errors = 0
    first_error = ""
    # A local subchannel pool: each channel is a connection of its own (else grpc shares one per target).
    channels = [grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(connections)]

    async def loop(stub: Any, offset: int) -> None:
        nonlocal counted, errors, first_error
        i = offset
        while (now := time.time()) < stop_at:
            i = (i + 1) % len(requests)
            try:
                await stub.Check(requests[i], timeout=30)
            except grpc.RpcError as exc:
                errors += 1
                first_error = first_error or f"{exc.code()}: {exc.details()}"
                continue
            if now >= count_from:
                counted += 1

    try:
        for channel in channels:
            await channel.channel_ready()
        stubs = [permission_pb2_grpc.PermissionServiceStub(c) for c in channels]
        await asyncio.gather(*(loop(stub, 37 * j) for stub in stubs for j in range(in_flight)))
    finally:
        for channel in channels:
            await channel.close()
    return {"checks": counted, "errors": errors, "first_error": first_error}


def _client(args: tuple[str, int, int, float, float]) -> dict:
    """A load-generator process: its counts, and the CPU seconds it used from ``count_from`` on."""
    address, connections, in_flight, count_from, stop_at = args
    mark: list[float] = []

    def at_count_from() -> None:
        time.sleep(max(0.0, count_from - time.time()))
        mark.append(time.process_time())

    threading.Thread(target=at_count_from, daemon=True).start()
    result = asyncio.run(_drive(address, connections, in_flight, count_from, stop_at))
    result["cpu_s"] = time.process_time() - (mark[0] if mark else 0.0)
    return result


# --- one run ------------------------------------------------------------------------------------


def _prepare(folder: Path, store: str, pg_server: str) -> str:
    """The benchmark's database, loaded: a SQLite file in ``folder``, or a new PostgreSQL database on ``pg_server``
    (``benchmarks.run.bench_database``; dropped by ``drop_bench_database``)."""
    from headwater.engine import Engine

    from benchmarks.run import bench_database

    db = bench_database(store, folder, pg_server)
    with Engine.open(db) as engine:
        engine.write_schema(POLICY.read_text())
        engine.touch(*[f"dataset:d{i}#viewer@user:u{i}" for i in range(DATASETS)])
    return db


def run_once(db: str, processes: int, clients: int, connections: int, in_flight: int, seconds: float,
             warmup: float, folder: Path, server_nice: int = 0, separate_servers: int = 1) -> dict[str, Any]:
    """One run: ``headwater serve --processes P`` (or, with ``separate_servers`` > 1, that many single-process
    servers on ports of their own over the same database, the load generators' connections spread over them)."""
    from headwater.engine.client import Client

    addresses = [f"127.0.0.1:{_free_port()}" for _ in range(separate_servers)]
    log_path = folder / f"server-{processes}-{separate_servers}.log"
    with open(log_path, "w") as log:
        started = [subprocess.Popen([sys.executable, "-m", "headwater.engine", "serve", "--db", str(db),
                                     "--insecure-no-auth", "--address", address, "--log-level", "warning",
                                     "--processes", str(processes)],
                                    stdout=subprocess.DEVNULL, stderr=log, env=dict(os.environ))
                   for address in addresses]
        server = started[0]
        try:
            for address in addresses:
                with Client(address) as client:
                    client.wait_ready(60)
            end = time.monotonic() + 60
            while processes > 1 and len(_children(server.pid)) < processes and time.monotonic() < end:
                time.sleep(0.1)
            servers = [p.pid for p in started] if processes == 1 else _children(server.pid)
            for pid in servers:  # --server-nice: the server's processes before other work on the machine
                os.setpriority(os.PRIO_PROCESS, pid, server_nice)
            time.sleep(1.0)  # the second worker binds the port a moment after it appears
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(clients) as pool:
                count_from = time.time() + 2.0 + warmup  # pool processes started and connected by then
                stop_at = count_from + seconds
                jobs = [(addresses[i % len(addresses)], connections, in_flight, count_from, stop_at)
                        for i in range(clients)]
                pending = pool.map_async(_client, jobs)
                time.sleep(max(0.0, count_from - time.time()))
                cpu_from = {pid: _cpu_seconds(pid) for pid in servers}
                machine_from = _machine_cpu_seconds()
                time.sleep(max(0.0, stop_at - time.time()))
                cpu_to = {pid: _cpu_seconds(pid) for pid in servers}
                machine = _machine_cpu_seconds() - machine_from
                per_client = pending.get(timeout=seconds + warmup + 120)
            restarted = processes > 1 and _children(server.pid) != servers
        finally:
            for p in started:
                p.terminate()
            for p in started:
                p.wait(timeout=60)
    checks = sum(c["checks"] for c in per_client)
    server_cpu = [cpu_to[p] - cpu_from[p] for p in servers]
    client_cpu = [c["cpu_s"] for c in per_client]
    return {"processes": processes, "servers": separate_servers,
            "layout": f"{separate_servers} servers" if separate_servers > 1 else str(processes),
            "checks_per_s": round(checks / seconds),
            "errors": sum(c["errors"] for c in per_client),
            "first_error": next((c["first_error"] for c in per_client if c["first_error"]), ""),
            "server_cpu_s": [round(x, 2) for x in server_cpu],
            "load_generator_cpu_s": [round(x, 2) for x in client_cpu],
            # what else ran on the machine meanwhile (other sessions, the supervisor, the kernel)
            "other_cpu_s": round(machine - sum(server_cpu) - sum(client_cpu), 2),
            "cores_busy": round(machine / seconds, 2),
            "server_cpu_us_per_check": round(sum(server_cpu) / max(checks, 1) * 1e6),
            "load_generator_cpu_us_per_check": round(sum(client_cpu) / max(checks, 1) * 1e6),
            "worker_restarted": restarted, "server_exit": server.returncode, "seconds": seconds}


def summarize(runs: list[dict[str, Any]], layouts: list[str]) -> dict[str, Any]:
    """Per layout (a ``--processes`` value, or "2 servers"): the median over the rounds of each figure, and the
    speedup over the first."""
    summary: dict[str, Any] = {}
    for p in layouts:
        mine = [x for x in runs if x.get("layout", str(x["processes"])) == p]

        def median(key: str, mine: list[dict[str, Any]] = mine) -> float:
            return round(statistics.median(key_value(x, key) for x in mine), 2)

        summary[str(p)] = {"median_checks_per_s": round(median("checks_per_s")),
                           "checks_per_s_runs": [x["checks_per_s"] for x in mine],
                           "median_server_cores": median("server_cores"),
                           "median_load_generator_cores": median("load_generator_cores"),
                           "median_other_cores": median("other_cores"),
                           "median_server_cpu_us_per_check": round(median("server_cpu_us_per_check")),
                           "median_load_generator_cpu_us_per_check": round(median("load_generator_cpu_us_per_check"))}
    base = summary[str(layouts[0])]["median_checks_per_s"]
    for p in layouts:
        summary[str(p)]["speedup_vs_first"] = round(summary[str(p)]["median_checks_per_s"] / base, 2)
    return summary


def key_value(run: dict[str, Any], key: str) -> float:
    """A run's figure; the ``..._cores`` ones are CPU seconds over the counted seconds."""
    seconds = run.get("seconds", 10.0)
    if key == "server_cores":
        return sum(run["server_cpu_s"]) / seconds
    if key == "load_generator_cores":
        return sum(run["load_generator_cpu_s"]) / seconds
    if key == "other_cores":
        return run["other_cpu_s"] / seconds
    return float(run[key])


def save(result: dict[str, Any], path: Path) -> None:
    """Add ``result`` as one more session to the JSON file at ``path`` (created if missing)."""
    data = json.loads(path.read_text()) if path.exists() else {"benchmark": "processes", "sessions": []}
    data["sessions"].append(result)
    path.write_text(json.dumps(data, indent=2) + "\n")


def run(processes: list[int], clients: int, connections: int, in_flight: int, seconds: float, warmup: float,
        rounds: int, server_nice: int = 0, store: str = "sqlite", pg_server: str = "",
        two_servers: bool = False) -> dict[str, Any]:
    started = time.time()
    load_before = os.getloadavg()
    runs: list[dict[str, Any]] = []
    layouts = [(p, 1) for p in processes] + ([(1, 2)] if two_servers else [])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = _prepare(folder, store, pg_server)
        try:
            for r in range(rounds):
                for p, n in layouts:
                    result = run_once(db, p, clients, connections, in_flight, seconds, warmup, folder, server_nice,
                                      separate_servers=n)
                    result["round"] = r + 1
                    runs.append(result)
                    print(json.dumps(result), flush=True)
        finally:
            from benchmarks.run import drop_bench_database

            drop_bench_database(store, db, pg_server)
    names = [f"{n} servers" if n > 1 else str(p) for p, n in layouts]
    return {"summary": summarize(runs, names), "runs": runs,
            "parameters": {"processes": processes, "two_servers": two_servers, "store": store,
                           "clients": clients, "connections_per_client": connections,
                           "in_flight_per_connection": in_flight, "seconds": seconds, "warmup": warmup,
                           "rounds": rounds, "server_nice": server_nice,
                           "workload": f"examples/ai-lineage, {DATASETS} grants, warm checks"},
            "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform(), "load_average_start": load_before,
                        "load_average_end": os.getloadavg()},
            "when": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--clients", type=int, default=2, help="load-generator processes")
    ap.add_argument("--connections", type=int, default=8, help="connections per load-generator process")
    ap.add_argument("--in-flight", type=int, default=8, help="calls in flight per connection")
    ap.add_argument("--seconds", type=float, default=10.0, help="counted seconds per run")
    ap.add_argument("--warmup", type=float, default=3.0, help="uncounted seconds before them")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--server-nice", type=int, default=0,
                    help="the server processes' nice value (negative: served before other work; needs root)")
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "processes.json",
                    help="add the session to this file (default benchmarks/results/processes.json)")
    ap.add_argument("--store", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--pg-server", default=os.environ.get("HEADWATER_TEST_PG", "postgresql://127.0.0.1:5432/test"),
                    help="with --store postgresql: where the benchmark's database is created (and dropped)")
    ap.add_argument("--two-servers", action="store_true",
                    help="also run two separate single-process servers over the same database")
    args = ap.parse_args()
    result = run(args.processes, args.clients, args.connections, args.in_flight, args.seconds, args.warmup,
                 args.rounds, args.server_nice, args.store, args.pg_server, args.two_servers)
    for p, s in result["summary"].items():
        layout = p if "servers" in p else f"--processes {p}"
        print(f"{args.store}, {layout}: {s['median_checks_per_s']:,} checks/s (median of {s['checks_per_s_runs']}), "
              f"{s['speedup_vs_first']}x; server {s['median_server_cores']} cores, load generators "
              f"{s['median_load_generator_cores']}, other work {s['median_other_cores']}")
    save(result, args.json)


if __name__ == "__main__":
    main()
