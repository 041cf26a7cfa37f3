"""The client side of the gRPC measurement in ``benchmarks.run`` (``measure_grpc``), in its own process.

    python -m benchmarks.grpc_client --address HOST:PORT --mode warm|cold --checks FILE --out FILE
                                     [--chunk 50] [--prime 20] [--limit N] [--floor-min 2000]

``--checks`` is a JSON object ``{scenario: [[resource, permission, subject], ...]}``.
Every check goes through the generated client (``headwater.engine.client.Client``),
one unary ``Check`` per call on one channel, timed alone with ``time.perf_counter``.

- ``warm``: each scenario's sample in chunks of ``--chunk`` checks, each chunk run
  once (untimed; the server's cache now holds every answer), then timed. Before each
  timed check, an empty RPC (``grpc.health.v1.Health/Check``, no work) is timed on
  the same channel: the floor of a call. If the scenarios gave fewer than
  ``--floor-min`` empty RPCs, more are timed, still alternating with (untimed)
  warm checks.
- ``cold``: for a server started with ``--cache-size 0``. The first ``--prime``
  checks of each scenario run once untimed (the server process, its connections
  and SQLite's page cache warm up; no answer is cached), then every check (or the
  first ``--limit``) is timed.

Writes ``{"scenarios": {name: {"times_us": [...], "answers": [...]}}, "empty_rpc_us": [...]}``
to ``--out``; an answer is the permissionship name (``HAS_PERMISSION``, ...) or ``ERROR: ...``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from headwater.engine.client import Client

CheckArgs = Sequence[str]  # resource, permission, subject


def answer(client: Client, c: CheckArgs) -> str:
    try:
        return client.check(c[0], c[1], c[2]).permissionship.name
    except Exception as exc:  # a failed call is an answer to report, not a crash
        return f"ERROR: {type(exc).__name__}: {exc}"


def run_warm(client: Client, scenarios: dict[str, list[CheckArgs]], chunk: int, floor_min: int
             ) -> dict[str, Any]:
    clock = time.perf_counter
    out: dict[str, Any] = {}
    floor: list[float] = []
    for name, checks in scenarios.items():
        times: list[float] = []
        answers: list[str] = []
        own_floor: list[float] = []  # the empty RPCs interleaved with this scenario's checks (same time window)
        for i in range(0, len(checks), chunk):
            part = checks[i:i + chunk]
            for c in part:  # warm: the server caches every answer of the chunk
                answer(client, c)
            for c in part:
                t = clock()
                client.health()
                own_floor.append((clock() - t) * 1e6)
                t = clock()
                a = answer(client, c)
                times.append((clock() - t) * 1e6)
                answers.append(a)
        out[name] = {"times_us": times, "answers": answers, "empty_rpc_us": own_floor}
        floor += own_floor
    pool = [c for checks in scenarios.values() for c in checks[:chunk]]
    i = 0
    while len(floor) < floor_min and pool:  # top the floor up, still alternating with warm checks
        t = clock()
        client.health()
        floor.append((clock() - t) * 1e6)
        answer(client, pool[i % len(pool)])
        i += 1
    return {"scenarios": out, "empty_rpc_us": floor}


def run_cold(client: Client, scenarios: dict[str, list[CheckArgs]], prime: int, limit: int | None = None
             ) -> dict[str, Any]:
    clock = time.perf_counter
    out: dict[str, Any] = {}
    for name, checks in scenarios.items():
        for c in checks[:prime]:
            answer(client, c)
        times: list[float] = []
        answers: list[str] = []
        for c in checks[:limit]:
            t = clock()
            a = answer(client, c)
            times.append((clock() - t) * 1e6)
            answers.append(a)
        out[name] = {"times_us": times, "answers": answers}
    return {"scenarios": out, "empty_rpc_us": []}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--address", required=True, help="host:port of a running `headwater serve --insecure-no-auth`")
    ap.add_argument("--mode", choices=["warm", "cold"], required=True)
    ap.add_argument("--checks", type=Path, required=True, help="JSON: {scenario: [[resource, permission, subject]]}")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--chunk", type=int, default=50, help="warm: checks warmed together before they are timed")
    ap.add_argument("--prime", type=int, default=20, help="cold: untimed checks per scenario before timing")
    ap.add_argument("--limit", type=int, help="cold: time only the first N checks of each scenario")
    ap.add_argument("--floor-min", type=int, default=2000, help="warm: empty RPCs timed at least")
    ap.add_argument("--timeout", type=float, default=60.0, help="deadline of each call, in seconds")
    args = ap.parse_args(argv)
    scenarios: dict[str, list[CheckArgs]] = json.loads(args.checks.read_text())
    started = time.perf_counter()
    with Client(args.address, timeout=args.timeout) as client:
        client.wait_ready(30)
        for _ in range(200):  # the channel and the server's threads, before anything is timed
            client.health()
        if args.mode == "warm":
            result = run_warm(client, scenarios, max(1, args.chunk), args.floor_min)
        else:
            result = run_cold(client, scenarios, args.prime, args.limit)
    result["wall_s"] = round(time.perf_counter() - started, 2)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
