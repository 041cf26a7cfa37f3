"""POST /api/v1/lineage: the official OpenLineage client records a pipeline; bad and cyclic events store nothing."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated.tags_dataset import TagsDatasetFacet, TagsDatasetFacetFields
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpCompression, HttpConfig, HttpTransport

from headwater.engine.service.server import HeadwaterServer

from .conftest import TOKENS, client_for

REPO = Path(__file__).resolve().parents[2]
POLICY = (REPO / "examples/ai-lineage/policy.zed").read_text()
PIPELINE = [json.loads(line) for line in (REPO / "examples/openlineage/pipeline.ndjson").read_text().splitlines()]
PRODUCER = "https://github.com/example/pipelines/tree/v1"


@pytest.fixture()
def server(make_server: Callable[..., HeadwaterServer]) -> HeadwaterServer:
    s = make_server(http_address="127.0.0.1:0")
    with client_for(s) as c:
        c.write_schema(POLICY, actor="user:admin")
        c.touch("sensitivity:confidential#cleared@user:alice", "sensitivity:pii#cleared@user:alice",
                "sensitivity:internal#cleared@user:bob", actor="user:admin")
    return s


def url(server: HeadwaterServer) -> str:
    return f"http://127.0.0.1:{server.http.port}"


def ol_client(server: HeadwaterServer, who: str = "writer", **config: Any) -> OpenLineageClient:
    auth = ApiKeyTokenProvider({"apiKey": TOKENS[who][0]})
    return OpenLineageClient(transport=HttpTransport(HttpConfig(url=url(server), auth=auth,
                                                                retry={"total": 0}, **config)))


def post(server: HeadwaterServer, body: bytes, *, token: str | None = TOKENS["writer"][0],
         headers: dict[str, str] | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url(server) + "/api/v1/lineage", data=body, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text)
        except json.JSONDecodeError:
            return exc.code, {"text": text.decode()}


def relationships(server: HeadwaterServer) -> list[str]:
    with client_for(server) as c:
        return sorted(str(r) for r in c.export_relationships())


def event(state: RunState, job: str, inputs: list[InputDataset], outputs: list[OutputDataset],
          run_id: str) -> RunEvent:
    return RunEvent(eventType=state, eventTime=datetime.now(UTC).isoformat(), run=Run(runId=run_id),
                    job=Job(namespace="airflow://prod", name=job), producer=PRODUCER, inputs=inputs, outputs=outputs)


@pytest.mark.parametrize("compression", [None, HttpCompression.GZIP])
def test_the_official_client_records_a_training_and_an_inference_run(server: HeadwaterServer,
                                                                      compression: HttpCompression | None) -> None:
    client = ol_client(server, compression=compression)
    tags = TagsDatasetFacet(tags=[TagsDatasetFacetFields(key="pii", value="true", field="email"),
                                  TagsDatasetFacetFields(key="sensitivity", value="confidential")])
    claims = InputDataset(namespace="postgres://warehouse:5432", name="public.claims", facets={"tags": tags})
    model = OutputDataset(namespace="s3://ml", name="models/risk")
    train, infer = str(uuid.uuid4()), str(uuid.uuid4())
    client.emit(event(RunState.START, "risk.train_model", [claims], [], train))
    client.emit(event(RunState.COMPLETE, "risk.train_model", [claims], [model], train))
    prediction = OutputDataset(namespace="s3://ml", name="predictions/batch-7")
    client.emit(event(RunState.COMPLETE, "risk.inference", [InputDataset(namespace="s3://ml", name="models/risk")],
                      [prediction], infer))
    output, model_id = "output:s3=3A//ml|predictions/batch-7", "model:s3=3A//ml|models/risk"
    claims_id = "dataset:postgres=3A//warehouse=3A5432|public+claims"
    with client_for(server) as c:
        c.touch(f"{output}#requester@user:alice", f"{output}#requester@user:bob", actor="user:admin")
        assert [str(i.object) for i in c.ancestors(output).items] == [
            model_id, claims_id]
        labels = {v.value: v.paths for cl in c.effective_labels(output).classifications for v in cl.values}
        assert labels == {"confidential": (f"{output} -produced_by-> {model_id} -trained_on-> {claims_id}",),
                          "pii": (f"{output} -produced_by-> {model_id} -trained_on-> {claims_id}",)}
        assert c.check(output, "view", "user:alice").allowed
        assert not c.check(output, "view", "user:bob").allowed


def test_the_same_event_twice_changes_nothing(server: HeadwaterServer) -> None:
    body = json.dumps(PIPELINE[1]).encode()
    status, first = post(server, body)
    assert status == 200 and first["written"] and first["relationships"] == 3
    status, again = post(server, body)
    assert status == 200 and (again["written"], again["revision"]) == (False, first["revision"])


def test_a_batch_is_recorded_atomically_and_gzip_is_accepted(server: HeadwaterServer) -> None:
    status, result = post(server, gzip.compress(json.dumps(PIPELINE).encode()), headers={"Content-Encoding": "gzip"})
    assert status == 200
    assert {k: result[k] for k in ("events", "recorded", "ignored", "relationships")} == {
        "events": 4, "recorded": 4, "ignored": 0, "relationships": 6}
    assert len([r for r in relationships(server) if "openlineage" not in r and "=3A" in r]) == 6


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "the body is not JSON"),
    (b"[]", "an empty batch"),
    (json.dumps({**PIPELINE[1], "run": {"runId": "nope"}}).encode(), "$.run.runId: 'nope' is not a 'uuid'"),
    (json.dumps([PIPELINE[1], {**PIPELINE[3], "eventTime": "later"}]).encode(), "event 2: $.eventTime"),
    (json.dumps({**PIPELINE[1], "inputs": [{"namespace": "pg", "name": "t", "facets": {"tags": {
        "_producer": PRODUCER, "_schemaURL": PRODUCER, "tags": [{"key": "sensitivity", "value": "secret"}]}}}]}
    ).encode(), "`secret` is not a value of classification `sensitivity`"),
])
def test_bad_events_are_refused_with_400_and_store_nothing(server: HeadwaterServer, body: bytes, message: str) -> None:
    before = relationships(server)
    status, answer = post(server, body)
    assert status == 400 and message in answer["error"]
    assert relationships(server) == before


def test_a_cyclic_event_is_refused_with_409_and_stores_nothing(server: HeadwaterServer) -> None:
    forward = {**PIPELINE[1], "job": {"namespace": "etl", "name": "copy"},
               "inputs": [{"namespace": "pg", "name": "a"}], "outputs": [{"namespace": "pg", "name": "b"}]}
    assert post(server, json.dumps(forward).encode())[0] == 200
    before = relationships(server)
    back = {**forward, "inputs": [{"namespace": "pg", "name": "b"}],
            "outputs": [{"namespace": "pg", "name": "a"}, {"namespace": "pg", "name": "c"}]}
    status, answer = post(server, json.dumps(back).encode())
    assert status == 409 and "cycl" in answer["error"]
    assert relationships(server) == before
    with pytest.raises(requests.HTTPError) as caught:  # the official client sees the refusal too
        ol_client(server).transport.emit(RunEvent(
            eventType=RunState.COMPLETE, eventTime=datetime.now(UTC).isoformat(), run=Run(runId=str(uuid.uuid4())),
            job=Job(namespace="etl", name="copy"), producer=PRODUCER,
            inputs=[InputDataset(namespace="pg", name="b")], outputs=[OutputDataset(namespace="pg", name="a")]))
    assert caught.value.response.status_code == 409


def test_a_token_with_the_write_scope_is_needed(server: HeadwaterServer) -> None:
    body = json.dumps(PIPELINE[1]).encode()
    assert post(server, body, token=None)[0] == 401
    assert post(server, body, token="not-a-token")[0] == 401
    assert post(server, body, token=TOKENS["reader"][0])[0] == 403
    with pytest.raises(requests.HTTPError) as caught:
        ol_client(server, who="reader").transport.emit(RunEvent(
            eventType=RunState.COMPLETE, eventTime=datetime.now(UTC).isoformat(), run=Run(runId=str(uuid.uuid4())),
            job=Job(namespace="etl", name="copy"), producer=PRODUCER))
    assert caught.value.response.status_code == 403
    assert relationships(server) == sorted(["sensitivity:confidential#cleared@user:alice",
                                            "sensitivity:pii#cleared@user:alice",
                                            "sensitivity:internal#cleared@user:bob"])


def test_the_ingest_is_audited_with_the_callers_token_name(make_server: Callable[..., HeadwaterServer],
                                                           tmp_path: Path) -> None:
    s = make_server(http_address="127.0.0.1:0", audit=True)
    with client_for(s) as c:
        c.write_schema(POLICY, actor="user:admin")
    assert post(s, json.dumps(PIPELINE[1]).encode())[0] == 200
    s.engine.flush_audit()
    page = s.engine.audit_query(kind="relationships", limit=1, newest_first=True)
    records = list(getattr(page, "records", page))
    assert records and records[0].get("actor") == "writer"
    assert "OpenLineage COMPLETE run" in (records[0].get("reason") or "")
