"""The limits of docs/security.md ("Limits") against a real `datatrail serve` and in process.

Events nest at most 64 levels; what was stored deeper before that limit existed
reads back cut, through the API, the web UI and the CLI. A refusal is a 4xx
with ``{"error", "detail"}``, never a 500 or a dropped connection.
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
from tests import httpserver
from tests.security_scene import Scene, build

A = "team-a"
DEEP_RUN = str(uuid.UUID(int=0xDEE9))
LEVELS = 500  # what a store written before the limit may hold; reads failed past about 300
MARK = cut_marker(MAX_EVENT_DEPTH)


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
    srv = httpserver.start(tmp_path_factory.mktemp("srv"), store=scene.uri)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


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
