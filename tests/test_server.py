"""The REST API through its in-process client: ingest, limits, errors, lineage and resources."""

from __future__ import annotations

import copy
import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from datatrail.core.errors import NotFound
from datatrail.server import create_app
from datatrail.server.marquez import split_node_id
from tests import test_producer_semantics as ps
from tests.conformance import needs_openlineage_spec, spec_dir

SPEC = spec_dir() or Path("openlineage-spec-not-available")
PRODUCER = "https://example.com/tests"
RUN_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
T0 = "2024-05-01T10:00:00+00:00"

needs_spec = needs_openlineage_spec


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'server.db'}"
    return str(request.getfixturevalue("pg_uri"))


@pytest.fixture
def client(server_uri: str) -> Iterator[TestClient]:
    with TestClient(create_app(server_uri), raise_server_exceptions=False) as c:
        yield c


def seg(value: str) -> str:
    return quote(value, safe="")


def run_event(
    job: str,
    inputs: list[tuple[str, str]],
    outputs: list[tuple[str, str]],
    *,
    state: str = "COMPLETE",
    run_id: str | None = None,
    namespace: str = "pipelines",
    time: str = T0,
) -> dict[str, Any]:
    def ds(ns: str, name: str) -> dict[str, Any]:
        return {"namespace": ns, "name": name, "facets": {}}

    return {
        "eventType": state,
        "eventTime": time,
        "producer": PRODUCER,
        "schemaURL": RUN_SCHEMA,
        "run": {"runId": run_id or str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": namespace, "name": job, "facets": {}},
        "inputs": [ds(*d) for d in inputs],
        "outputs": [ds(*d) for d in outputs],
    }


def assert_error(response: Any, status: int, error: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    if error is not None:
        assert body["error"] == error
    assert "Traceback" not in response.text
    return body  # type: ignore[no-any-return]


# ---------------------------------------------------------------- basics


def test_health_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/v1/lineage", "/api/v1/lineage/batch", "/api/v1/namespaces", "/api/v1/search"):
        assert path in paths
    assert_error(client.get("/api/v1/nope"), 404, "not_found")
    assert_error(client.put("/api/v1/lineage"), 405, "method_not_allowed")


def test_ingest_one_event_is_idempotent(client: TestClient) -> None:
    event = run_event("load", [], [("s3://bucket", "raw/orders.csv")])
    first = client.post("/api/v1/lineage", json=event)
    assert first.status_code == 201 and first.json()["stored"] is True
    again = client.post("/api/v1/lineage", json=event)
    assert again.status_code == 201 and again.json()["duplicate"] is True
    versions = client.get(f"/api/v1/namespaces/{seg('s3://bucket')}/datasets/{seg('raw/orders.csv')}/versions")
    assert versions.json()["totalCount"] == 1


def test_gzip_bodies(client: TestClient) -> None:
    event = run_event("load", [], [("default", "gz")])
    body = gzip.compress(json.dumps(event).encode())
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert client.post("/api/v1/lineage", content=body, headers=headers).status_code == 201
    batch = gzip.compress(json.dumps([run_event("a", [], [("default", "x")])]).encode())
    assert client.post("/api/v1/lineage/batch", content=batch, headers=headers).status_code == 201
    assert_error(client.post("/api/v1/lineage", content=b"not gzip", headers=headers), 400, "invalid_input")
    truncated = body[: len(body) // 2]
    assert_error(client.post("/api/v1/lineage", content=truncated, headers=headers), 400, "invalid_input")
    br = {"Content-Encoding": "br", "Content-Type": "application/json"}
    assert_error(client.post("/api/v1/lineage", content=b"{}", headers=br), 415, "unsupported_media_type")


def test_body_limit_counts_after_decompression(tmp_path: Path) -> None:
    app = create_app(f"sqlite:///{tmp_path / 'small.db'}", max_body=2000)
    with TestClient(app, raise_server_exceptions=False) as c:
        event = run_event("load", [], [("default", "x")])
        event["run"]["facets"]["padding"] = {"_producer": PRODUCER, "text": "x" * 5000}
        assert_error(c.post("/api/v1/lineage", json=event), 413, "payload_too_large")
        # Small on the wire, big once inflated: a gzip bomb is cut off at the limit.
        bomb = gzip.compress(b"[" + b" " * 10_000_000 + b"]")
        assert len(bomb) < 20_000
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        assert_error(c.post("/api/v1/lineage/batch", content=bomb, headers=headers), 413, "payload_too_large")
        small = run_event("load", [], [("default", "x")])
        assert c.post("/api/v1/lineage", json=small).status_code == 201


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "must be an object"),
        (b'{"eventTime": "2024-01-01T00:00:00Z"}', "neither 'run'"),
        (b'{"eventTime": "2024-01-01T00:00:00Z", "job": {"namespace": "a", "name": "b"}}', "'producer' is missing"),
        (b'{"eventTime": "2024-01-01T00:00:00Z", "job": {}, "producer": ""}', "'producer' must be"),
        (b'{"eventTime": "yesterday", "run": {}}', "eventTime"),
        (b'{"eventTime": NaN}', "NaN"),
        (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    ],
)
def test_bad_events_are_400_with_a_reason(client: TestClient, body: bytes, fragment: str) -> None:
    response = client.post("/api/v1/lineage", content=body, headers={"Content-Type": "application/json"})
    assert fragment in assert_error(response, 400, "invalid_input")["detail"]


def test_job_event_and_dataset_event(client: TestClient) -> None:
    job_event = {
        "eventTime": T0,
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
        "job": {"namespace": "dbt://prod", "name": "models.orders", "facets": {"custom_x": {"anything": [1, 2]}}},
        "inputs": [{"namespace": "postgres://db:5432", "name": "public.raw_orders"}],
        "outputs": [
            {
                "namespace": "postgres://db:5432",
                "name": "public.orders",
                "facets": {"version": {"_producer": PRODUCER, "datasetVersion": "v42"}},
            }
        ],
    }
    assert client.post("/api/v1/lineage", json=job_event).status_code == 201
    one = f"/api/v1/namespaces/{seg('postgres://db:5432')}/datasets/public.orders/versions/v42"
    assert client.get(one).json()["versionNumber"] == 1
    dataset_event = {
        "eventTime": T0,
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {"namespace": "s3://bucket", "name": "a:b@c", "facets": {"version": {"datasetVersion": "x"}}},
    }
    assert client.post("/api/v1/lineage", json=dataset_event).status_code == 201
    assert client.get(f"/api/v1/namespaces/{seg('s3://bucket')}/datasets/{seg('a:b@c')}").json()["latestVersion"] == 1
    no_name = copy.deepcopy(job_event)
    del no_name["job"]["name"]
    assert "job needs" in assert_error(client.post("/api/v1/lineage", json=no_name), 400)["detail"]


def test_batch_stores_the_valid_events_and_names_the_failed(client: TestClient) -> None:
    good = run_event("load", [], [("default", "a")])
    bad_time = copy.deepcopy(good) | {"eventTime": "soon"}
    bad_run = run_event("load", [], [("default", "b")], run_id="not-a-uuid")
    response = client.post("/api/v1/lineage/batch", json=[good, bad_time, 5, good, bad_run])
    assert response.status_code == 200
    report = response.json()
    assert report["received"] == 5 and report["stored"] == 1 and report["duplicates"] == 1
    assert [f["index"] for f in report["failed"]] == [1, 2, 4]
    assert all(f["error"] == "invalid_input" and f["detail"] for f in report["failed"])
    assert "not a UUID" in report["failed"][2]["detail"]
    assert client.post("/api/v1/lineage/batch", json=[good]).status_code == 201
    assert_error(client.post("/api/v1/lineage/batch", json=good), 400, "invalid_input")


def test_batch_size_is_bounded(tmp_path: Path) -> None:
    with TestClient(create_app(f"sqlite:///{tmp_path / 'b.db'}", max_batch=3)) as c:
        events = [run_event("j", [], [("default", f"d{i}")]) for i in range(4)]
        assert_error(c.post("/api/v1/lineage/batch", json=events), 413, "payload_too_large")
        assert c.post("/api/v1/lineage/batch", json=events[:3]).status_code == 201


def test_store_down_is_503(tmp_path: Path) -> None:
    app = create_app("postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=2")
    with TestClient(app, raise_server_exceptions=False) as c:
        assert_error(c.get("/healthz"), 503, "store_unavailable")
        event = run_event("load", [], [("default", "x")])
        response = c.post("/api/v1/lineage", json=event)
        assert_error(response, 503, "store_unavailable")
        assert response.headers["Retry-After"]


def test_unexpected_errors_have_no_stack_trace(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from datatrail.service import Trail

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(Trail, "ingest", boom)
    monkeypatch.setattr(Trail, "ingest_soon", boom)  # the server's own path for an open server or an admin
    body = assert_error(client.post("/api/v1/lineage", json=run_event("j", [], [])), 500, "internal")
    assert "secret internals" not in body["detail"]


def test_api_keys(tmp_path: Path) -> None:
    app = create_app(f"sqlite:///{tmp_path / 'k.db'}", api_keys={"s3cret": "airflow"})
    with TestClient(app, raise_server_exceptions=False) as c:
        event = run_event("load", [], [("default", "x")])
        assert_error(c.post("/api/v1/lineage", json=event), 401, "unauthorized")
        wrong = {"Authorization": "Bearer nope"}
        assert_error(c.post("/api/v1/lineage", json=event, headers=wrong), 401, "unauthorized")
        assert_error(c.get("/api/v1/namespaces", headers=wrong), 401, "unauthorized")
        ok = {"Authorization": "Bearer s3cret"}
        assert c.post("/api/v1/lineage", json=event, headers=ok).status_code == 201
        # The token's principal is the actor, whatever a body claims.
        body = {"event": run_event("other", [], []), "actor": "mallory", "action": "run.start"}
        assert c.post("/api/v1/events", json=body, headers=ok).status_code == 201
        entries = c.get("/api/v1/audit", headers=ok).json()["entries"]
        assert {e["actor"] for e in entries if e["outcome"] == "allowed"} == {"airflow"}
        # The refused tokens above are denied attempts, recorded without a name (issue 6).
        assert {e["actor"] for e in entries if e["outcome"] == "denied"} == {"anonymous"}
        assert c.get("/healthz").status_code == 200


# ---------------------------------------------------------------- the specification's own events


def fill(value: Any, key: str | None = None) -> Any:
    """An integration test expectation made a concrete event: matchers become values."""
    if isinstance(value, dict):
        return {k: fill(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v) for v in value]
    if isinstance(value, str) and ("{{" in value or "${json-unit" in value):
        if key == "runId":
            return str(uuid.uuid4())
        if key is not None and key.lower().endswith("time"):
            return T0
        return 1 if "any-number" in value else "any"
    return value


def complete(raw: dict[str, Any]) -> dict[str, Any]:
    """Fill what an expectation may leave out (README of openlineage-spec): times, producer, ids, names."""
    event = fill(raw)
    event.setdefault("eventTime", T0)
    event.setdefault("producer", PRODUCER)
    event.setdefault("schemaURL", RUN_SCHEMA)
    if "dataset" not in event:
        job = event.setdefault("job", {})
        job.setdefault("namespace", "default")
        job.setdefault("name", "job")
        run = event.setdefault("run", {})
        run.setdefault("runId", str(uuid.uuid4()))
    for key in ("inputs", "outputs"):
        for ds in event.get(key) or []:
            ds.setdefault("namespace", "default")
            version = (ds.get("facets") or {}).get("version")
            if isinstance(version, dict):
                version.setdefault("datasetVersion", "any")
    return event


def integration_events() -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted((SPEC / "integration-events").glob("*/*.json")):
        data = json.loads(path.read_text())
        for i, raw in enumerate(data if isinstance(data, list) else [data]):
            found.append((f"{path.parent.name}/{path.name}#{i}", complete(raw)))
    return found


def facet_examples() -> list[tuple[str, dict[str, Any]]]:
    """Each facet example of the specification, wrapped in a minimal valid event where it belongs."""
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted((SPEC / "tests").glob("*/*.json")):
        facets = json.loads(path.read_text())
        event = run_event("wrapped", [("default", "in")], [("default", "out")], state="START")
        kind = path.parent.name
        if kind.endswith("RunFacet"):
            event["run"]["facets"].update(facets)
        elif kind.endswith("JobFacet") or (kind == "LineageFacet" and "entries" in facets.get("lineage", {})):
            event["job"]["facets"].update(facets)
        elif kind.endswith("InputDatasetFacet"):
            event["inputs"][0]["inputFacets"] = facets
        elif kind.endswith("OutputDatasetFacet"):
            event["outputs"][0]["outputFacets"] = facets
        else:
            event["outputs"][0]["facets"].update(facets)
        found.append((f"{kind}/{path.name}", event))
    found.append(("example_full_event.json", json.loads((SPEC / "tests" / "example_full_event.json").read_text())))
    return found


@needs_spec
def test_every_facet_example_is_accepted(client: TestClient) -> None:
    examples = facet_examples()
    assert len(examples) > 40
    for label, event in examples:
        response = client.post("/api/v1/lineage", json=event)
        assert response.status_code == 201, (label, response.text)


@needs_spec
def test_every_integration_event_is_accepted(client: TestClient) -> None:
    events = integration_events()
    assert len(events) > 500
    response = client.post("/api/v1/lineage/batch", json=[e for _, e in events])
    report = response.json()
    failed = {events[f["index"]][0]: f["detail"] for f in report["failed"]}
    assert failed == {}
    assert response.status_code == 201
    assert report["stored"] + report["duplicates"] == len(events)
    # Unknown and custom facets are kept verbatim: a repeat is recognised as the same event.
    again = client.post("/api/v1/lineage/batch", json=[e for _, e in events[:50]]).json()
    assert again["duplicates"] == 50


@needs_spec
def test_integration_lineage_through_real_namespaces(client: TestClient) -> None:
    events = [e for label, e in integration_events() if label.startswith("dbt/postgres_run_successful")]
    assert client.post("/api/v1/lineage/batch", json=events).status_code == 201
    ns = "postgres://postgres:5432"
    datasets = client.get(f"/api/v1/namespaces/{seg(ns)}/datasets").json()["datasets"]
    assert "postgres.public.raw_customers" in {d["name"] for d in datasets}
    # A model written by a completed run has a version (one per run), so it has lineage.
    written = [
        o["name"] for e in events if e["eventType"] == "COMPLETE" for o in e.get("outputs", []) if o["namespace"] == ns
    ]
    assert written
    node = f"dataset:{ns}:{written[-1]}"
    graph = client.get("/api/v1/lineage", params={"nodeId": node, "direction": "both"}).json()
    ids = {n["id"] for n in graph["graph"]}
    assert node in ids
    assert any(i.startswith("job:") for i in ids)


# ---------------------------------------------------------------- lineage reads


PIPELINE = [
    ("extract", [("postgres://db:5432", "public.orders")], [("s3://bucket", "raw/orders.v1.parquet")]),
    ("clean", [("s3://bucket", "raw/orders.v1.parquet")], [("duckdb://shop.duckdb", "main.clean/orders")]),
    ("report", [("duckdb://shop.duckdb", "main.clean/orders")], [("file", "/tmp/report:2024.csv")]),
]


def load_pipeline(client: TestClient, runs: int = 1) -> None:
    events = []
    for i in range(runs):
        for job, ins, outs in PIPELINE:
            events.append(run_event(job, ins, outs, time=f"2024-05-0{i + 1}T10:00:00+00:00"))
    # A source read without a version facet and never written has no version, hence no lineage
    # (see docs/server.md); the producer here names the version it read.
    events[0]["inputs"][0]["facets"]["version"] = {"_producer": PRODUCER, "datasetVersion": "snapshot-1"}
    assert client.post("/api/v1/lineage/batch", json=events).status_code == 201


def test_node_id_rule() -> None:
    existing = {
        ("postgres://db:5432", "public.orders"),
        ("s3://bucket", "raw/orders.v1.parquet"),
        ("duckdb://shop.duckdb", "main.clean/orders"),
        ("file", "/tmp/report:2024.csv"),
        ("a:b", "c"),
        ("a", "b:c"),
    }

    def exists(ns: str, name: str) -> bool:
        return (ns, name) in existing

    assert split_node_id("dataset:postgres://db:5432:public.orders", exists) == (
        "postgres://db:5432",
        "public.orders",
        None,
    )
    assert split_node_id("dataset:s3://bucket:raw/orders.v1.parquet#2", exists) == (
        "s3://bucket",
        "raw/orders.v1.parquet",
        "2",
    )
    assert split_node_id("dataset:duckdb://shop.duckdb:main.clean/orders#latest", exists)[:2] == (
        "duckdb://shop.duckdb",
        "main.clean/orders",
    )
    # A name with ':' is found by trying the splits from the last ':' back.
    assert split_node_id("dataset:file:/tmp/report:2024.csv", exists) == ("file", "/tmp/report:2024.csv", None)
    # Both splits exist: the longest namespace wins, as in refs.
    assert split_node_id("dataset:a:b:c", exists) == ("a:b", "c", None)
    with pytest.raises(NotFound):
        split_node_id("dataset:s3://bucket:missing", exists)
    for bad in ("job:x:y", "dataset:", "orders"):
        with pytest.raises(Exception, match="nodeId"):
            split_node_id(bad, exists)


def test_dataset_level_lineage_is_folded(client: TestClient) -> None:
    load_pipeline(client, runs=2)
    node = "dataset:duckdb://shop.duckdb:main.clean/orders"
    response = client.get("/api/v1/lineage", params={"nodeId": node, "direction": "both", "depth": 5})
    assert response.status_code == 200, response.text
    graph = {n["id"]: n for n in response.json()["graph"]}
    assert set(graph) == {
        "dataset:postgres://db:5432:public.orders",
        "job:pipelines:extract",
        "dataset:s3://bucket:raw/orders.v1.parquet",
        "job:pipelines:clean",
        "dataset:duckdb://shop.duckdb:main.clean/orders",
        "job:pipelines:report",
        "dataset:file:/tmp/report:2024.csv",
    }
    clean = graph[node]
    assert clean["type"] == "DATASET" and clean["data"]["versions"] == [1, 2]
    assert clean["inEdges"] == [{"origin": "job:pipelines:clean", "destination": node}]
    assert clean["outEdges"] == [{"origin": node, "destination": "job:pipelines:report"}]
    assert graph["job:pipelines:clean"]["type"] == "JOB" and len(graph["job:pipelines:clean"]["data"]["runs"]) == 2
    up = client.get("/api/v1/lineage", params={"nodeId": node, "direction": "upstream", "depth": 1}).json()
    assert {n["id"] for n in up["graph"]} == {node, "job:pipelines:clean", "dataset:s3://bucket:raw/orders.v1.parquet"}


def test_version_level_lineage(client: TestClient) -> None:
    load_pipeline(client, runs=2)
    node = "dataset:s3://bucket:raw/orders.v1.parquet#1"
    graph = client.get("/api/v1/lineage", params={"nodeId": node, "direction": "downstream", "depth": 1}).json()
    by_type: dict[str, list[str]] = {}
    for n in graph["graph"]:
        by_type.setdefault(n["type"], []).append(n["id"])
    assert sorted(by_type["DATASET_VERSION"]) == [
        "dataset:duckdb://shop.duckdb:main.clean/orders#1",
        "dataset:s3://bucket:raw/orders.v1.parquet#1",
    ]
    assert len(by_type["RUN"]) == 1
    latest = client.get("/api/v1/lineage", params={"nodeId": node.replace("#1", "#latest"), "depth": 0}).json()
    assert [n["id"] for n in latest["graph"]] == ["dataset:s3://bucket:raw/orders.v1.parquet#2"]


def test_job_and_run_node_ids(client: TestClient) -> None:
    load_pipeline(client)
    both = {"direction": "both", "depth": 1}
    job = client.get("/api/v1/lineage", params={"nodeId": "job:pipelines:clean", **both}).json()
    # One step from what the job read and wrote: the producer of its input, the reader of its output.
    assert {n["id"] for n in job["graph"]} == {
        "dataset:postgres://db:5432:public.orders",
        "job:pipelines:extract",
        "dataset:s3://bucket:raw/orders.v1.parquet",
        "job:pipelines:clean",
        "dataset:duckdb://shop.duckdb:main.clean/orders",
        "job:pipelines:report",
        "dataset:file:/tmp/report:2024.csv",
    }
    zero = client.get("/api/v1/lineage", params={"nodeId": "job:pipelines:clean", "depth": 0}).json()
    # The job itself is a node (as in Marquez), linked to what it read and wrote.
    assert {n["id"] for n in zero["graph"]} == {
        "dataset:s3://bucket:raw/orders.v1.parquet",
        "job:pipelines:clean",
        "dataset:duckdb://shop.duckdb:main.clean/orders",
    }
    node = next(n for n in zero["graph"] if n["id"] == "job:pipelines:clean")
    assert [e["origin"] for e in node["inEdges"]] == ["dataset:s3://bucket:raw/orders.v1.parquet"]
    assert [e["destination"] for e in node["outEdges"]] == ["dataset:duckdb://shop.duckdb:main.clean/orders"]
    run_id = client.get("/api/v1/namespaces/pipelines/jobs/clean").json()["latestRun"]["id"]
    run = client.get("/api/v1/lineage", params={"nodeId": f"run:{run_id}", "depth": 0}).json()
    assert {n["id"] for n in run["graph"]} == {
        "dataset:s3://bucket:raw/orders.v1.parquet#1",
        "dataset:duckdb://shop.duckdb:main.clean/orders#1",
    }
    run1 = client.get("/api/v1/lineage", params={"nodeId": f"run:{run_id}", "depth": 1}).json()
    assert f"run:{run_id}" in {n["id"] for n in run1["graph"]}
    assert_error(client.get("/api/v1/lineage", params={"nodeId": "job:pipelines:nope"}), 404, "not_found")
    assert_error(client.get("/api/v1/lineage", params={"nodeId": f"run:{uuid.uuid4()}"}), 404, "not_found")


def test_lineage_errors(client: TestClient) -> None:
    load_pipeline(client)
    assert_error(client.get("/api/v1/lineage", params={"nodeId": "dataset:s3://bucket:nope"}), 404, "not_found")
    assert_error(client.get("/api/v1/lineage", params={"nodeId": "orders"}), 400, "invalid_input")
    node = "dataset:s3://bucket:raw/orders.v1.parquet"
    assert_error(client.get("/api/v1/lineage", params={"nodeId": node, "depth": 101}), 400, "invalid_input")
    assert_error(client.get("/api/v1/lineage", params={"nodeId": node, "direction": "sideways"}), 400)
    assert_error(client.get("/api/v1/lineage", params={"nodeId": node + "#9"}), 404, "not_found")
    assert_error(client.get("/api/v1/lineage"), 400, "invalid_input")


# ---------------------------------------------------------------- resources


def test_resources_take_url_encoded_path_parameters(client: TestClient) -> None:
    load_pipeline(client, runs=2)
    names = [n["name"] for n in client.get("/api/v1/namespaces").json()["namespaces"]]
    assert names == ["duckdb://shop.duckdb", "file", "pipelines", "postgres://db:5432", "s3://bucket"]
    base = f"/api/v1/namespaces/{seg('s3://bucket')}/datasets"
    assert [d["name"] for d in client.get(base).json()["datasets"]] == ["raw/orders.v1.parquet"]
    one = f"{base}/{seg('raw/orders.v1.parquet')}"
    assert client.get(one).json()["latestVersion"] == 2
    versions = client.get(f"{one}/versions", params={"limit": 1, "offset": 1}).json()  # newest first
    assert versions["totalCount"] == 2 and [v["versionNumber"] for v in versions["versions"]] == [1]
    first = client.get(f"{one}/versions/1").json()
    assert first["versionNumber"] == 1 and first["version"] == versions["versions"][0]["version"]
    assert client.get(f"{one}/versions/{first['version']}").json()["versionNumber"] == 1  # by Marquez's UUID
    assert client.get(f"{one}/versions/latest").json()["versionNumber"] == 2
    assert_error(client.get(f"{one}/versions/7"), 404, "not_found")
    assert_error(client.get(f"{base}/{seg('raw/missing')}"), 404, "not_found")
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}):
        assert_error(client.get(f"{one}/versions", params=bad), 400, "invalid_input")
    report = f"/api/v1/namespaces/file/datasets/{seg('/tmp/report:2024.csv')}"
    assert client.get(report).json()["name"] == "/tmp/report:2024.csv"
    jobs = client.get("/api/v1/namespaces/pipelines/jobs").json()["jobs"]
    assert [j["name"] for j in jobs] == ["clean", "extract", "report"] and jobs[0]["runCount"] == 2
    assert client.get("/api/v1/namespaces/pipelines/jobs/clean").json()["latestRun"]["state"] == "COMPLETED"
    runs = client.get("/api/v1/namespaces/pipelines/jobs/clean/runs").json()["runs"]
    assert len(runs) == 2
    run = client.get(f"/api/v1/runs/{runs[0]['id']}").json()
    assert run["job"] == "clean" and [v["name"] for v in run["inputs"]] == ["raw/orders.v1.parquet"]
    assert_error(client.get(f"/api/v1/runs/{uuid.uuid4()}"), 404, "not_found")
    assert_error(client.get("/api/v1/runs/not-a-run"), 400, "invalid_input")


def test_search(client: TestClient) -> None:
    load_pipeline(client)
    hits = client.get("/api/v1/search", params={"q": "ORDERS"}).json()
    assert {(h["type"], h["name"]) for h in hits["results"]} == {
        ("DATASET", "public.orders"),
        ("DATASET", "raw/orders.v1.parquet"),
        ("DATASET", "main.clean/orders"),
    }
    jobs = client.get("/api/v1/search", params={"q": "clean"}).json()["results"]
    assert ("JOB", "clean") in {(h["type"], h["name"]) for h in jobs}
    assert client.get("/api/v1/search", params={"q": "s3://"}).json()["totalCount"] == 1
    assert_error(client.get("/api/v1/search", params={"q": ""}), 400, "invalid_input")


def test_ui_shows_child_runs_planned_outputs_and_a_reported_schema(client: TestClient) -> None:
    dag, task, sql = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    start = ps.run_event("START", task, "shop.write", 1, outputs=("/d/never.txt",), run_facets=ps.parent(dag, "shop"))
    for event in (ps.run_event("COMPLETE", dag, "shop", 2), start):
        assert client.post("/api/v1/lineage", json=event).status_code == 201
    assert client.get(f"/api/v1/runs/{dag}").json()["children"] == [task]
    planned = client.get(f"/api/v1/runs/{task}").json()["planned_outputs"]
    assert planned == [{"namespace": "file", "name": "/d/never.txt"}]
    dag_page = client.get(f"/runs/{dag}").text
    assert 'id="run-children"' in dag_page and f"/runs/{task}" in dag_page
    task_page = client.get(f"/runs/{task}").text
    assert 'id="run-planned"' in task_page and "/d/never.txt" in task_page
    event = ps.run_event("COMPLETE", sql, "dbt.orders", 5, namespace="dbt")
    schema = ps.facet(fields=[{"name": "customer", "type": "TEXT", "description": "who"}])
    event["outputs"] = [{"namespace": "sqlite://shop.db", "name": "main.totals", "facets": {"schema": schema}}]
    assert client.post("/api/v1/lineage", json=event).status_code == 201
    version_page = client.get(f"/datasets/{seg('sqlite://shop.db')}/{seg('main.totals')}/versions/1").text
    assert 'id="reported-schema"' in version_page and "customer" in version_page and "TEXT" in version_page
