"""Prometheus metrics: a running server scraped over HTTP after scripted traffic shows exact counts.

Traffic goes through both APIs (``headwater.v1`` with Headwater's client, ``authzed.api.v1`` with the official
``authzed`` client) and includes failures; the scrape (``urllib``) is parsed with ``prometheus_client``'s parser.
The table of docs/operations.md and the registry name the same metrics.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from authzed.api.v1 import (CheckPermissionRequest, Client, DeleteRelationshipsRequest, ObjectReference,
                             RelationshipFilter, SubjectReference)
from grpcutil import insecure_bearer_token_credentials
from headwater.engine.metrics import METRICS, Metrics, parse_exposition
from headwater.engine.service.server import HeadwaterServer

from .conftest import TOKENS, client_for, seed

REPO = Path(__file__).resolve().parents[2]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: HeadwaterServer, token: str | None = None) -> Samples:
    assert server.http is not None
    request = urllib.request.Request(f"http://{server.http.address}/metrics")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return parse_exposition(response.read().decode())


def by(samples: Samples, name: str, *keep: str) -> dict[tuple[str, ...], float]:
    """The samples called ``name``, by the values of the labels ``keep`` (zero values left out)."""
    out: dict[tuple[str, ...], float] = {}
    for (sample, labels), value in samples.items():
        if sample == name and value:
            values = dict(labels)
            key = tuple(values[k] for k in keep)
            out[key] = out.get(key, 0) + value
    return out


def v1_check(resource: str, permission: str, subject: str) -> CheckPermissionRequest:
    rtype, rid = resource.split(":")
    stype, sid = subject.split(":")
    return CheckPermissionRequest(resource=ObjectReference(object_type=rtype, object_id=rid), permission=permission,
                                  subject=SubjectReference(object=ObjectReference(object_type=stype, object_id=sid)))


def test_exact_counts_after_scripted_traffic(make_server: Callable[..., HeadwaterServer]) -> None:
    server = make_server(http_address="127.0.0.1:0")
    assert server.http is not None and server.http.port > 0
    assert server.serving["http_port"] == server.http.port
    with client_for(server) as admin:
        seed(admin)  # SchemaService/Write, RelationshipService/Write
        for _ in range(3):
            assert admin.check("document:readme", "view", "user:ann").allowed
        for _ in range(2):
            assert not admin.check("document:readme", "view", "user:mallory").allowed
        assert admin.check("document:tuesday", "view", "user:dan").permissionship.name == "CONDITIONAL_PERMISSION"
        with pytest.raises(Exception):
            admin.check("document:readme", "no_such_permission", "user:ann")
    with client_for(server, None) as anonymous:
        with pytest.raises(Exception):
            anonymous.check("document:readme", "view", "user:ann")
    v1 = Client(server.address, insecure_bearer_token_credentials(TOKENS["reader"][0]))
    for _ in range(2):
        assert v1.CheckPermission(v1_check("document:readme", "view", "user:bob")).permissionship == 2
    assert v1.CheckPermission(v1_check("document:readme", "view", "user:zed")).permissionship == 1
    assert v1.CheckPermission(v1_check("document:tuesday", "view", "user:dan")).permissionship == 3
    with pytest.raises(grpc.RpcError) as denied:  # a reader may not delete
        v1.DeleteRelationships(DeleteRelationshipsRequest(
            relationship_filter=RelationshipFilter(resource_type="document")))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

    samples = scrape(server)
    requests = by(samples, "headwater_rpc_requests_total", "api", "service", "method", "code")
    assert requests == {
        ("headwater.v1", "SchemaService", "Write", "OK"): 1,
        ("headwater.v1", "RelationshipService", "Write", "OK"): 1,
        ("headwater.v1", "PermissionService", "Check", "OK"): 6,
        ("headwater.v1", "PermissionService", "Check", "INVALID_ARGUMENT"): 1,
        ("headwater.v1", "PermissionService", "Check", "UNAUTHENTICATED"): 1,
        ("authzed.api.v1", "PermissionsService", "CheckPermission", "OK"): 4,
        ("authzed.api.v1", "PermissionsService", "DeleteRelationships", "PERMISSION_DENIED"): 1,
    }
    latency = by(samples, "headwater_rpc_duration_seconds_count", "api", "method")
    assert latency[("headwater.v1", "Check")] == 8
    assert latency[("authzed.api.v1", "CheckPermission")] == 4
    assert by(samples, "headwater_decisions_total", "api", "permissionship") == {
        ("headwater.v1", "has"): 3, ("headwater.v1", "no"): 2, ("headwater.v1", "conditional"): 1,
        ("authzed.api.v1", "has"): 2, ("authzed.api.v1", "no"): 1, ("authzed.api.v1", "conditional"): 1,
    }
    assert [store for (store,) in by(samples, "headwater_build_info", "store")] == ["sqlite"]
    assert samples[("headwater_store_head_revision", ())] >= 1


def test_cache_hits_and_misses_are_exact(make_server: Callable[..., HeadwaterServer]) -> None:
    server = make_server(http_address="127.0.0.1:0")
    with client_for(server) as admin:
        seed(admin)
        before_first = scrape(server)
        assert admin.check("document:readme", "view", "user:ann").allowed  # fills the cache
        before = scrape(server)
        for _ in range(5):
            assert admin.check("document:readme", "view", "user:ann").allowed  # each one top-level hit
    after = scrape(server)
    key = (("cache", "checks"),)
    assert after[("headwater_cache_hits_total", key)] - before[("headwater_cache_hits_total", key)] == 5
    assert after[("headwater_cache_misses_total", key)] == before[("headwater_cache_misses_total", key)]
    reads = ("headwater_store_operations_total", (("operation", "read"),))
    assert before[reads] - before_first.get(reads, 0) == 1  # the first check read one snapshot
    assert after[reads] == before[reads]  # the cached ones none
    assert server.engine is not None
    stats = server.engine.caches.stats()["checks"]
    assert (after[("headwater_cache_hits_total", key)], after[("headwater_cache_misses_total", key)],
            after[("headwater_cache_entries", key)]) == (stats["hits"], stats["misses"], stats["size"])


def test_lineage_counts(make_server: Callable[..., HeadwaterServer]) -> None:
    server = make_server(http_address="127.0.0.1:0")
    with client_for(server) as admin:
        seed(admin)
        admin.effective_labels("document:report")
        admin.effective_labels("document:clean")
        with pytest.raises(Exception):
            admin.touch("document:raw#derived_from@document:report", actor="user:admin", reason="cycle")
        admin.touch("document:clean#scrubbed@sensitivity:pii", actor="user:stew", reason="scrubbed")
    samples = scrape(server)
    assert samples[("headwater_lineage_declassifications_total", ())] == 1
    assert samples[("headwater_lineage_effective_label_computations_total", ())] == 2
    assert samples[("headwater_lineage_cycle_refusals_total", ())] == 1


def test_a_metrics_token_is_required_when_configured(make_server: Callable[..., HeadwaterServer],
                                                     tmp_path: Path) -> None:
    secret = "metrics-secret-0123456789"
    (tmp_path / "metrics.token").write_text(secret + "\n")
    server = make_server(http_address="127.0.0.1:0", metrics_token_file=str(tmp_path / "metrics.token"))
    for token in (None, "wrong-token", TOKENS["admin"][0]):
        with pytest.raises(urllib.error.HTTPError) as refused:
            scrape(server, token)
        assert refused.value.code == 401
    assert ("headwater_build_info" in {name for name, _ in scrape(server, secret)})


def test_metrics_off_serves_no_metrics(make_server: Callable[..., HeadwaterServer]) -> None:
    server = make_server(http_address="127.0.0.1:0", metrics=False)
    assert server.metrics is None and server.servicer is not None and server.servicer.observer is None
    with pytest.raises(urllib.error.HTTPError) as missing:
        scrape(server)
    assert missing.value.code == 404


def test_the_operations_table_and_the_registry_name_the_same_metrics() -> None:
    text = (REPO / "docs" / "operations.md").read_text()
    documented = set(re.findall(r"^\| `(headwater_[a-z_]+)` \|", text, re.MULTILINE))
    assert documented == {m.name for m in METRICS}
    from headwater.engine import Engine
    from headwater.engine.store.memory import MemoryStore

    with Engine(MemoryStore()) as engine:
        metrics = Metrics(lambda: engine, store="memory")
        exposed = {f.name + ("_total" if f.type == "counter" else "") for f in metrics.registry.collect()}
    ours = {name for name in exposed if name.startswith("headwater_")}
    assert ours == {m.name for m in METRICS}
    types = {f.name + ("_total" if f.type == "counter" else ""): f.type for f in metrics.registry.collect()}
    assert {m.name: m.type for m in METRICS} == {name: types[name] for name in ours}


def test_audit_and_gc_counts(make_server: Callable[..., HeadwaterServer]) -> None:
    server = make_server(http_address="127.0.0.1:0", audit=True)
    with client_for(server) as admin:
        seed(admin)  # one record for the schema, one for the batch of relationships
        for _ in range(3):  # one decision record each (audit_decisions = all)
            admin.check("document:readme", "view", "user:ann")
    assert server.engine is not None
    server.engine.flush_audit()
    samples = scrape(server)
    assert samples[("headwater_audit_records_written_total", ())] == 5
    assert samples[("headwater_audit_queue_depth", ())] == 0
    assert samples[("headwater_audit_write_seconds_count", ())] >= 1
    assert samples[("headwater_audit_write_seconds_sum", ())] > 0
    assert samples[("headwater_audit_records_dropped_total", ())] == 0
    assert samples[("headwater_gc_runs_total", ())] == 0
    removed = server.engine.gc()
    samples = scrape(server)
    assert samples[("headwater_gc_runs_total", ())] == 1
    assert samples[("headwater_store_operations_total", (("operation", "gc"),))] == 1
    assert samples[("headwater_store_operations_total", (("operation", "write"),))] == 1  # seed's relationships
    assert samples[("headwater_gc_rows_removed_total", ())] == removed
    assert samples[("headwater_gc_expired_rows_removed_total", ())] == removed.expired_removed


def _referenced(text: str) -> set[str]:
    """Metric names in PromQL: ``headwater_...`` with a histogram's or summary's sample suffix taken off."""
    names = set(re.findall(r"\bheadwater_[a-z_]+", text))
    known = {m.name for m in METRICS}
    out = set()
    for name in names:
        base = next((name.removesuffix(s) for s in ("_bucket", "_count", "_sum") if name.removesuffix(s) in known),
                    name)
        out.add(base)
    return out


@pytest.mark.parametrize("path", ["docs/operations/grafana-dashboard.json", "docs/operations/alerts.yaml"])
def test_the_dashboard_and_the_alerts_name_existing_metrics(path: str) -> None:
    import json

    import yaml

    text = (REPO / path).read_text()
    if path.endswith(".json"):
        exprs = [t["expr"] for p in json.loads(text)["panels"] for t in p["targets"]]
    else:
        exprs = [r["expr"] for g in yaml.safe_load(text)["groups"] for r in g["rules"]]
    referenced = set().union(*(_referenced(e) for e in exprs))
    assert referenced and referenced <= {m.name for m in METRICS}, referenced - {m.name for m in METRICS}
