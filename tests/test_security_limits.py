"""The limits of docs/security.md ("Limits") against a real `datatrail serve` and in process.

Events nest at most 64 levels; what was stored deeper before that limit existed
reads back cut, through the API, the web UI and the CLI. nodeIds and every
free-text parameter are bounded in length, nodeIds split in linear time, and
every number (path, query or body) is range-checked: a refusal is a 4xx with
``{"error", "detail"}``, never a 500 or a dropped connection.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import datatrail
from datatrail import events
from datatrail.core.changes import VersionInfo
from datatrail.core.limits import MAX_EVENT_DEPTH, MAX_RESPONSE_DEPTH, cut_marker, nesting_depth
from datatrail.events import build_dataset_event
from datatrail.server.app import create_app
from datatrail.server.marquez import MAX_SPLITS, split_node_id
from tests import httpserver
from tests.security_scene import Scene, build

A = "team-a"
DEEP_RUN = str(uuid.UUID(int=0xDEE9))
LEVELS = 500  # what a store written before the limit may hold; reads failed past about 300
MARK = cut_marker(MAX_EVENT_DEPTH)
HUGE = ("99999999999999999999", str(2**63), "-1", "-99999999999999999999", "9" * 5000)


def nested(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"a": value}
    return value


def run_event(run_id: str, facet: Any, *, job: str = "legacy", output: str = "legacy/out") -> dict[str, Any]:
    """A RunEvent of team-a with ``facet`` as a run facet, as parameters and as version properties."""
    return {
        "eventType": "COMPLETE",
        "eventTime": "2024-05-01T10:00:00+00:00",
        "producer": "https://example.com/tests/limits",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": {"deep": facet, "datatrail_run": {"params": {"p": facet}}}},
        "job": {"namespace": A, "name": job, "facets": {}},
        "inputs": [],
        "outputs": [
            {
                "namespace": A,
                "name": output,
                "facets": {"version": {"datasetVersion": "k1"}, "datatrail_version": {"properties": {"p": facet}}},
            }
        ],
    }


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    found = build(tmp_path_factory.mktemp("limits"))
    with pytest.MonkeyPatch.context() as patch, datatrail.connect(found.uri) as trail:
        patch.setattr(events, "MAX_EVENT_DEPTH", 10_000)  # a store written before the limit existed
        trail.ingest(run_event(DEEP_RUN, nested(LEVELS)))
    return found


@pytest.fixture(scope="module")
def server(scene: Scene, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpserver.Server]:
    with httpserver.running(tmp_path_factory.mktemp("srv"), store=scene.uri) as srv:
        yield srv


@pytest.fixture(scope="module")
def admin(server: httpserver.Server, scene: Scene) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {scene.tokens['admin']}"}
    with httpx.Client(base_url=server.uri, headers=headers, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def in_process(scene: Scene) -> Iterator[TestClient]:
    headers = {"Authorization": f"Bearer {scene.tokens['admin']}"}
    with TestClient(create_app(scene.uri), headers=headers) as client:  # server errors raise here
        yield client


def refused(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in (statuses or (400,)), (response.request.url, response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "detail"}, body
    return body


# ---------------------------------------------------------------- nesting depth


def test_an_event_nested_too_deeply_is_refused_before_anything_is_written(admin: httpx.Client, scene: Scene) -> None:
    editor = {"Authorization": f"Bearer {scene.tokens['editor']}"}
    before = [e["id"] for e in admin.get("/api/v1/events").json()["events"]]
    # The facet is deepest as version properties: outputs[0].facets.datatrail_version.properties.p.
    at_limit = run_event(str(uuid.uuid4()), nested(MAX_EVENT_DEPTH - 6), job="at-limit", output="fits")
    assert nesting_depth(at_limit) == MAX_EVENT_DEPTH
    assert admin.post("/api/v1/lineage", json=at_limit, headers=editor).status_code == 201
    too_deep = run_event(str(uuid.uuid4()), nested(1), job="deep", output="too-deep")
    too_deep["run"]["facets"]["deep"] = nested(MAX_EVENT_DEPTH - 2)  # run.facets.deep: 65 levels
    body = refused(admin.post("/api/v1/lineage", json=too_deep, headers=editor))
    assert body["detail"].startswith("invalid event: run.facets.deep.a.… nests deeper than 64 levels")
    assert "\n" not in body["detail"]
    # The HTTP store's write, and a batch: the deep event is refused by its index, the other stored.
    refused(admin.post("/api/v1/events", json={"event": too_deep, "action": "run.complete"}, headers=editor))
    fine = build_dataset_event(A, "batch-fine", VersionInfo(key="k-fine"))
    batch = admin.post("/api/v1/lineage/batch", json=[fine, too_deep], headers=editor)
    assert batch.status_code == 200, batch.text
    assert batch.json()["stored"] == 1 and [(f["index"], f["error"]) for f in batch.json()["failed"]] == [
        (1, "invalid_input")
    ]
    after = [e["id"] for e in admin.get("/api/v1/events").json()["events"]]
    assert len(after) == len(before) + 2  # at-limit and batch-fine, nothing of the deep one
    names = {d["name"] for d in admin.get("/api/v1/datasets", params={"namespace": A}).json()["datasets"]}
    assert "fits" in names and "too-deep" not in names


@pytest.mark.parametrize("where", ["real", "in-process"])
def test_what_was_stored_deeper_reads_back_cut(
    where: str, admin: httpx.Client, in_process: TestClient, scene: Scene
) -> None:
    client: Any = admin if where == "real" else in_process
    cookie = {"Cookie": f"datatrail_token={scene.tokens['admin']}"}
    reads = [
        f"/api/v1/runs/{DEEP_RUN}",
        "/api/v1/runs",
        f"/api/v1/namespaces/{A}/jobs/legacy/runs",
        "/api/v1/events",
        f"/api/v1/namespaces/{A}/datasets/legacy%2Fout/versions/1",
        f"/api/v1/namespaces/{A}/datasets/legacy%2Fout/versions",
        f"/api/v1/lineage?nodeId=run:{DEEP_RUN}",
        f"/api/v1/lineage?nodeId=dataset:{A}:legacy/out%231",
    ]
    for url in reads:
        response = client.get(url)
        assert response.status_code == 200, (url, response.text[:300])
        assert nesting_depth(response.json()) <= MAX_RESPONSE_DEPTH + 2, url  # + the route's envelope
    run = json.dumps(client.get(f"/api/v1/runs/{DEEP_RUN}").json())
    assert run.count(cut_marker(MAX_RESPONSE_DEPTH)) == 3  # the run facet, the parameter, the output's properties
    listed = [e["event"] for e in client.get("/api/v1/events").json()["events"]]
    deep = next(e for e in listed if e.get("run", {}).get("runId") == DEEP_RUN)
    assert nesting_depth(deep) == MAX_EVENT_DEPTH and MARK in json.dumps(deep)  # as it could be ingested again
    for page in (f"/runs/{DEEP_RUN}", f"/datasets/{A}/legacy%2Fout/versions/1", f"/jobs/{A}/legacy"):
        response = client.get(page, headers=cookie)
        assert response.status_code == 200, (page, response.text[:300])
    assert "nested deeper than 64 levels: cut" in client.get(f"/runs/{DEEP_RUN}", headers=cookie).text


def test_export_cuts_what_was_stored_deeper_so_it_imports_again(
    server: httpserver.Server, scene: Scene, tmp_path: Path
) -> None:
    exe = str(httpserver.DATATRAIL)
    local = tmp_path / "local.jsonl"
    remote = tmp_path / "remote.jsonl"
    env = {"PATH": "/usr/bin:/bin", "DATATRAIL_TOKEN": scene.tokens["admin"]}
    for store, out in ((scene.uri, local), (server.uri, remote)):
        done = subprocess.run(
            [exe, "--store", store, "export", "openlineage", "-o", str(out)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in local.read_text().splitlines()]
    deep = next(e for e in lines if e.get("run", {}).get("runId") == DEEP_RUN)
    assert nesting_depth(deep) == MAX_EVENT_DEPTH and MARK in json.dumps(deep)
    assert remote.read_text() == local.read_text()
    datatrail.init(tmp_path / "fresh").close()
    done = subprocess.run(
        [exe, "import", "openlineage", str(local)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path / "fresh",
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------- nodeIds and free text


def test_node_ids_are_bounded_and_split_in_linear_time(admin: httpx.Client, scene: Scene) -> None:
    # 60,000 characters, as in the review: refused at once.
    for url in ("/api/v1/lineage", "/api/v1/column-lineage"):
        body = refused(admin.get(f"{url}?nodeId=dataset:{'a:' * 30_000}"))
        assert "4096" in json.dumps(body["detail"])
    # Under the bound, with 2,000 ':' to try: a few lookups, not 2,000 (each would be audited).
    viewer = {"Authorization": f"Bearer {scene.tokens['viewer']}"}
    before = admin.get("/api/v1/audit", params={"limit": 10_000}).json()["entries"][0]["seq"]
    node = "dataset:" + "a:" * 2000 + "b"
    refused(admin.get("/api/v1/lineage", params={"nodeId": node}, headers=viewer), 404)
    refused(admin.get("/api/v1/lineage", params={"nodeId": "job:" + "a:" * 2000 + "b"}, headers=viewer), 404)
    after = admin.get("/api/v1/audit", params={"limit": 10_000}).json()["entries"]
    assert len([e for e in after if e["seq"] > before]) <= 2 * MAX_SPLITS + 2


def test_split_node_id_asks_at_most_a_few_questions_of_bounded_size() -> None:
    asked: list[tuple[str, str]] = []

    def exists(namespace: str, name: str) -> bool:
        asked.append((namespace, name))
        return False

    node = "dataset:" + "ab:" * 1300 + "c#" + "d:" * 10
    with pytest.raises(Exception, match="no dataset matches"):
        split_node_id(node, exists)
    assert len(asked) <= 2 * MAX_SPLITS
    assert all(len(ns) <= 1024 and len(name) <= 1024 for ns, name in asked)
    found = split_node_id("dataset:postgres://db:5432:public.orders:v2#3", lambda ns, n: ns == "postgres://db:5432")
    assert found == ("postgres://db:5432", "public.orders:v2", "3")


def _spec_parameters(client: httpx.Client) -> list[tuple[str, str, dict[str, Any]]]:
    spec = client.get("/openapi.json").json()
    return [
        (method.upper(), path, param)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for param in operation.get("parameters", [])
    ]


SAMPLES = {
    "namespace": A,
    "name": "a/raw",
    "job": "clean",
    "version": "1",
    "nodeId": f"dataset:{A}:a/raw",
    "q": "a",
    "key": "k",
    "runId": "00000000-0000-0000-0000-000000000000",
    "id": "00000000-0000-0000-0000-000000000000",
    "uri": "file:///a/raw.csv",
    "number": "1",
}


def _url(path: str, run_id: str) -> str:
    samples = {**SAMPLES, "run_id": run_id, "name": "a%2Fraw"}
    for key, value in samples.items():
        path = path.replace("{" + key + "}", value)
    return path


def _call(client: Any, method: str, url: str, params: dict[str, Any]) -> Any:
    if method == "POST":
        return client.post(url, params=params, json=[])
    return client.get(url, params=params)


def _required(parameters: list[tuple[str, str, dict[str, Any]]], method: str, path: str) -> dict[str, str]:
    return {
        p["name"]: SAMPLES[p["name"]]
        for m, pa, p in parameters
        if (m, pa) == (method, path) and p["in"] == "query" and p.get("required")
    }


def test_every_free_text_query_parameter_is_bounded(admin: httpx.Client, scene: Scene) -> None:
    parameters = _spec_parameters(admin)
    texts = [
        (m, path, p)
        for m, path, p in parameters
        if p["in"] == "query" and "enum" not in p["schema"] and "string" in json.dumps(p["schema"])
    ]
    assert len(texts) >= 20
    for method, path, param in texts:
        schema = json.dumps(param["schema"])
        assert '"maxLength"' in schema, f"{method} {path} {param['name']} has no maxLength"
        params = {**_required(parameters, method, path), param["name"]: "x" * 5000}
        refused(_call(admin, method, _url(path, scene.clean_run), params))


@pytest.mark.parametrize("where", ["real", "in-process"])
def test_every_number_is_range_checked(where: str, admin: httpx.Client, in_process: TestClient, scene: Scene) -> None:
    client: Any = admin if where == "real" else in_process
    parameters = _spec_parameters(admin)
    numbers = [(m, path, p) for m, path, p in parameters if p["schema"].get("type") == "integer"]
    assert {p["name"] for _, _, p in numbers} >= {"limit", "offset", "depth", "after_id", "version"}
    for method, path, param in numbers:
        for value in HUGE:
            params = {**_required(parameters, method, path), param["name"]: value}
            refused(_call(client, method, _url(path, scene.clean_run), params))
    # Version numbers as path segments (a selector: number, alias, digest…), in the API and the UI.
    base = f"/api/v1/namespaces/{A}/datasets/a%2Fraw/versions"
    cookie = {"Cookie": f"datatrail_token={scene.tokens['admin']}"}
    for value in HUGE[:2] + HUGE[4:]:
        for suffix in ("", "/files", "/profile", "/facets", "/checks"):
            refused(client.get(f"{base}/{value}{suffix}"))
        for query in ({"selector": value},):
            refused(client.get("/api/v1/resolve", params={"namespace": A, "name": "a/raw", **query}))
        ui = [
            f"/datasets/{A}/a%2Fraw/versions/{value}",
            f"/datasets/{A}/a%2Fraw/diff?a={value}&b=1",
            f"/datasets/{A}/a%2Fraw/lineage?version={value[:200]}",
        ]
        for page in ui:
            response = client.get(page, headers=cookie)
            assert 400 <= response.status_code < 500, (page, response.status_code)
        for url, extra in (("/api/v1/lineage/traverse", ""), ("/api/v1/column-lineage/traverse", ", null")):
            body = f'[["{A}", "a/raw", {value}{extra}]]'  # as sent: 5,000 digits are no Python int to dump
            refused(client.post(url, content=body, headers={"Content-Type": "application/json"}))
    for page in ("/audit?limit=99999999999999999999", f"/datasets/{A}/a%2Fraw/lineage?up=-1"):
        assert 400 <= client.get(page, headers=cookie).status_code < 500


def test_long_path_segments_are_refused(admin: httpx.Client) -> None:
    body = refused(admin.get(f"/api/v1/namespaces/{'n' * 5000}/datasets"))
    assert "at most 4096" in body["detail"]
    refused(admin.get(f"/api/v1/runs/{'r' * 5000}"))
