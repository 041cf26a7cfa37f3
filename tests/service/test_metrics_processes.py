"""``headwater serve --processes 2 --http-address``: whichever worker a scrape reaches shows the whole group.

The supervisor shares the HTTP port like gRPC's and gives the workers one fresh ``PROMETHEUS_MULTIPROC_DIR``;
request counts and decisions are exact at once, the engine's counters (caches) once mirrored (at most a second).
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator

import pytest
from headwater.engine.client import Client
from headwater.engine.metrics import parse_exposition

from .test_processes import Group, _check_on_new_connection, _serve, _stop

CHECKS = 24


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Group]:
    running = _serve(tmp_path_factory.mktemp("metrics-processes"), "--http-address", "127.0.0.1:0")
    yield running
    _stop(running)


def scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:  # a new connection each
        return parse_exposition(response.read().decode())


def value(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and labels.items() <= dict(ls).items())


def test_every_worker_shows_the_group_s_counts(group: Group) -> None:
    serving = group.wait_for(lambda r: r.get("event") == "serving")
    http = serving["http_address"]
    assert not http.endswith(":0")
    workers = group.records()
    assert {r["http_address"] for r in workers if r.get("event") == "worker_serving"} == {http}
    with Client(group.address, timeout=10) as client:
        client.touch("document:readme#viewer@user:bob")
    since = len(group.records())
    for _ in range(CHECKS):
        assert _check_on_new_connection(group.address, "document:readme")
    served_by = group.check_pids(since)
    for _ in range(8):  # new connections: SO_REUSEPORT spreads them over the workers
        samples = scrape(http)
        assert value(samples, "headwater_rpc_requests_total", method="Check", code="OK") == CHECKS
        assert value(samples, "headwater_decisions_total", api="headwater.v1", permissionship="has") == CHECKS
        assert value(samples, "headwater_rpc_duration_seconds_count", method="Check") == CHECKS
        assert value(samples, "headwater_rpc_requests_total", method="Write", code="OK") == 1
        assert [dict(ls)["store"] for (n, ls), v in samples.items() if n == "headwater_build_info"] == ["sqlite"]
    deadline = time.monotonic() + 10
    while True:  # the engines' counters arrive within the mirroring period (1 s)
        samples = scrape(http)
        hits = value(samples, "headwater_cache_hits_total", cache="checks")
        served_by = group.check_pids(since)  # (a worker's access-log line may reach us after its answer)
        if hits == CHECKS - len(served_by) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert hits == CHECKS - len(served_by)  # each worker's first check missed; the rest hit its cache
    assert value(samples, "headwater_store_head_revision") >= 1
