"""The real openlineage-python client (HttpTransport, API key, gzip) against a `datatrail serve` process."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import column_lineage_dataset as cll
from openlineage.client.facet_v2 import job_type_job, parent_run, schema_dataset
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpCompression, HttpConfig, HttpTransport

from tests import httpserver

KEY = "ol-secret-key"
NS = "airflow://scheduler"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python"
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpserver.Server]:
    with httpserver.running(tmp_path_factory.mktemp("ol"), {"DATATRAIL_API_KEYS": f"airflow={KEY}"}) as srv:
        yield srv


@pytest.fixture
def client_for(server: httpserver.Server) -> Iterator[Callable[[str], OpenLineageClient]]:
    """Clients of the server with an API key, gzip bodies and no retries; closed after the test."""
    made: list[OpenLineageClient] = []

    def make(key: str) -> OpenLineageClient:
        config = HttpConfig(
            url=server.uri,
            auth=ApiKeyTokenProvider({"apiKey": key}),
            compression=HttpCompression.GZIP,
            retry={"total": 0},
        )
        made.append(OpenLineageClient(transport=HttpTransport(config)))
        return made[-1]

    yield make
    for client in made:
        client.close()


def schema(*names: str) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type="string") for n in names]
    )


def column_lineage(source: tuple[str, str], mapping: dict[str, list[str]]) -> cll.ColumnLineageDatasetFacet:
    ns, name = source
    return cll.ColumnLineageDatasetFacet(
        fields={
            out: cll.Fields(inputFields=[cll.InputField(namespace=ns, name=name, field=f) for f in ins])
            for out, ins in mapping.items()
        }
    )


RAW = ("postgres://db:5432", "shop.public.orders")
STAGED = ("s3://lake", "staged/orders.parquet")
FEATURES = ("s3://lake", "features/orders.v2.parquet")
MODEL = ("mlflow://models", "churn")


def pipeline() -> list[RunEvent]:
    """DAG run → extract → transform → train, each START then COMPLETE, with schemas and column lineage."""
    dag_run = str(uuid.uuid4())
    steps = [
        ("shop_dag.extract", RAW, STAGED, {"id": ["id"], "amount": ["amount"]}),
        ("shop_dag.features", STAGED, FEATURES, {"id": ["id"], "amount_usd": ["amount"]}),
        ("shop_dag.train", FEATURES, MODEL, {"score": ["amount_usd", "id"]}),
    ]
    events: list[RunEvent] = []
    for i, (job, source, target, mapping) in enumerate(steps):
        run_id = str(uuid.uuid4())
        facets = {
            "parent": parent_run.ParentRunFacet(
                run=parent_run.Run(runId=dag_run), job=parent_run.Job(namespace=NS, name="shop_dag")
            )
        }
        job_facets = {"jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="AIRFLOW")}
        columns = sorted({c for ins in mapping.values() for c in ins})
        inputs = [InputDataset(namespace=source[0], name=source[1], facets={"schema": schema(*columns)})]
        outputs = [
            OutputDataset(
                namespace=target[0],
                name=target[1],
                facets={"schema": schema(*mapping), "columnLineage": column_lineage(source, mapping)},
            )
        ]
        start = T0 + timedelta(minutes=10 * i)
        for state, when in ((RunState.START, start), (RunState.COMPLETE, start + timedelta(minutes=5))):
            events.append(
                RunEvent(
                    eventType=state,
                    eventTime=when.isoformat(),
                    run=Run(runId=run_id, facets=facets),
                    job=Job(namespace=NS, name=job, facets=job_facets),
                    producer=PRODUCER,
                    inputs=inputs,
                    outputs=outputs if state is RunState.COMPLETE else [],
                )
            )
    return events


def test_openlineage_client_pipeline_and_lineage(
    server: httpserver.Server, client_for: Callable[[str], OpenLineageClient]
) -> None:
    client = client_for(KEY)
    for event in pipeline():
        client.emit(event)
    auth = {"Authorization": f"Bearer {KEY}"}
    node = f"dataset:{MODEL[0]}:{MODEL[1]}"
    response = httpx.get(
        f"{server.uri}/api/v1/lineage", params={"nodeId": node, "direction": "upstream", "depth": 10}, headers=auth
    )
    assert response.status_code == 200, response.text
    graph = {n["id"]: n for n in response.json()["graph"]}
    jobs = {f"job:{NS}:shop_dag.{j}" for j in ("extract", "features", "train")}
    source = f"dataset:{RAW[0]}:{RAW[1]}"
    datasets = {node, source, f"dataset:{STAGED[0]}:{STAGED[1]}", f"dataset:{FEATURES[0]}:{FEATURES[1]}"}
    assert set(graph) == jobs | datasets
    edges = {(e["origin"], e["destination"]) for n in graph.values() for e in n["inEdges"] + n["outEdges"]}
    # The source table was read without a version and never written: its "observed" version feeds extract.
    assert (source, f"job:{NS}:shop_dag.extract") in edges
    assert (f"job:{NS}:shop_dag.train", node) in edges
    assert (f"dataset:{FEATURES[0]}:{FEATURES[1]}", f"job:{NS}:shop_dag.train") in edges
    assert (f"job:{NS}:shop_dag.features", f"dataset:{FEATURES[0]}:{FEATURES[1]}") in edges
    assert all(graph[j]["data"]["runs"][0]["state"] == "COMPLETED" for j in jobs)
    # Everything the client sent was recorded as the key's principal, and once.
    entries = httpx.get(f"{server.uri}/api/v1/audit", params={"limit": 100}, headers=auth).json()["entries"]
    writes = [e for e in entries if "event" in e["details"]]  # reads (the lineage above) are audited too
    assert len(writes) == 6 and {e["actor"] for e in entries} == {"airflow"}
    for event in pipeline()[:2]:
        client.emit(event)  # new run ids: new runs of the same job
    jobs_url = f"{server.uri}/api/v1/namespaces/{quote(NS, safe='')}/jobs"
    listed = {j["name"]: j for j in httpx.get(jobs_url, headers=auth).json()["jobs"]}
    assert listed["shop_dag.extract"]["runCount"] == 2 and listed["shop_dag.train"]["runCount"] == 1


def test_wrong_api_key_is_refused(server: httpserver.Server, client_for: Callable[[str], OpenLineageClient]) -> None:
    client = client_for("wrong")
    with pytest.raises(Exception, match="401"):
        client.emit(pipeline()[0])
    assert httpx.post(f"{server.uri}/api/v1/lineage", json={}).status_code == 401


def test_server_log_has_no_traceback(server: httpserver.Server, tmp_path: Path) -> None:
    auth = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    response = httpx.post(f"{server.uri}/api/v1/lineage", content=b"{oops", headers=auth)
    assert response.status_code == 400 and response.json()["error"] == "invalid_input"
    assert "Traceback" not in server.log.read_text()


def test_the_datatrail_transport_sends_batches_through_the_real_client(server: httpserver.Server) -> None:
    from openlineage.client.transport.factory import DefaultTransportFactory

    from datatrail.interop.ol_transport import DatatrailTransport

    # Configured as openlineage.yml would: the factory imports the class by its name.
    transport = DefaultTransportFactory().create(
        {
            "type": "datatrail.interop.ol_transport.DatatrailTransport",
            "url": server.uri,
            "api_key": KEY,
            "batch_size": 7,
            "flush_interval": 60,
        }
    )
    assert isinstance(transport, DatatrailTransport)
    client = OpenLineageClient(transport=transport)
    job = f"batched-{uuid.uuid4().hex[:8]}"
    runs = [str(uuid.uuid4()) for _ in range(10)]
    for i, run_id in enumerate(runs):
        for state, minutes in ((RunState.START, 0), (RunState.COMPLETE, 1)):
            client.emit(
                RunEvent(
                    eventType=state,
                    eventTime=(T0 + timedelta(hours=i, minutes=minutes)).isoformat(),
                    run=Run(runId=run_id),
                    job=Job(namespace=NS, name=job),
                    producer=PRODUCER,
                    inputs=[InputDataset(namespace=NS, name=f"{job}.source")],
                    outputs=[OutputDataset(namespace=NS, name=f"{job}.target")],
                )
            )
    # 20 events, batches of 7: two full batches went at once, the rest waits for the
    # flush interval (a minute) or the close.
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while transport.sent < 14 and datetime.now(UTC) < deadline:
        time.sleep(0.05)
    assert transport.sent == 14
    client.close()
    assert transport.sent == 20
    headers = {"Authorization": f"Bearer {KEY}"}
    found = httpx.get(
        f"{server.uri}/api/v1/namespaces/{quote(NS, safe='')}/jobs/{job}/runs", headers=headers, params={"limit": 100}
    )
    assert found.status_code == 200, found.text
    assert sorted(r["id"] for r in found.json()["runs"]) == sorted(runs)
    assert {r["state"] for r in found.json()["runs"]} == {"COMPLETED"}


def test_the_datatrail_transport_says_what_is_wrong_with_its_settings() -> None:
    from datatrail.interop.ol_transport import DatatrailConfig

    with pytest.raises(RuntimeError, match="needs `url`"):
        DatatrailConfig.from_dict({"type": "x"})
    with pytest.raises(RuntimeError, match="unknown datatrail transport settings \\['bach_size'\\]"):
        DatatrailConfig.from_dict({"url": "http://h", "bach_size": 5})
    with pytest.raises(RuntimeError, match="batch_size must be 1 to 1000"):
        DatatrailConfig.from_dict({"url": "http://h", "batch_size": 5000})


def test_the_datatrail_transport_sends_a_batch_again_after_a_5xx() -> None:
    import gzip
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from datatrail.interop.ol_transport import DatatrailConfig, DatatrailTransport

    answers = [503, 201]
    received: list[list[dict[str, object]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            assert self.headers["Content-Encoding"] == "gzip" and self.headers["Authorization"] == "Bearer k"
            received.append(json.loads(gzip.decompress(body)))
            status = answers.pop(0)
            answer = json.dumps({"received": 2, "stored": 2, "duplicates": 0, "failed": []}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        transport = DatatrailTransport(DatatrailConfig(url=url, api_key="k", batch_size=10, flush_interval=60))
        client = OpenLineageClient(transport=transport)
        for state in (RunState.START, RunState.COMPLETE):
            client.emit(
                RunEvent(
                    eventType=state,
                    eventTime=T0.isoformat(),
                    run=Run(runId=str(uuid.uuid4())),
                    job=Job(namespace=NS, name="retry"),
                    producer=PRODUCER,
                )
            )
        client.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert len(received) == 2 and received[0] == received[1]  # the same batch, sent again after the 503
    assert [e["eventType"] for e in received[1]] == ["START", "COMPLETE"] and transport.sent == 2
