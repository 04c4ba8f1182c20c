"""The Marquez-compatible API: Marquez's own OpenAPI schemas, its python client, its test events.

Marquez's ``openapi.yml`` and ``test-events/`` are read from ``$DATATRAIL_CONFORMANCE_DIR/marquez-spec``
(never copied into the project); the tests that need them skip with the reason when it is absent.
"""

from __future__ import annotations

import json
import re
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema
import marquez_client  # type: ignore[import-untyped]
import pytest
import yaml
from fastapi.testclient import TestClient

from datatrail.core.model import RunState
from datatrail.server import create_app
from datatrail.server.marquez_models import run_state, version_uuid
from datatrail.server.routes.marquez import WRITES
from datatrail.server.routes.search import matches
from tests.conformance import spec_dir
from tests.httpserver import running
from tests.security_scene import build

MARQUEZ = spec_dir("marquez-spec")
MISSING = "Marquez's spec not found: set DATATRAIL_CONFORMANCE_DIR to a folder holding marquez-spec/"
needs_marquez = pytest.mark.skipif(MARQUEZ is None, reason=MISSING)
PRODUCER = "https://example.com/tests"
KITCHEN = "grandmas.kitchen"


def seg(value: str) -> str:
    return quote(value, safe="")


def apples() -> list[dict[str, Any]]:
    """Marquez's apples sequence (``api/src/test/resources/apples``), in its test's order."""
    assert MARQUEZ is not None
    return [json.loads(p.read_text()) for p in sorted((MARQUEZ / "test-events" / "apples").glob("*.json"))]


def extra_events() -> list[dict[str, Any]]:
    """Events that fill what the apples leave empty: a schema, tags, a source, column lineage."""
    run_id = str(uuid.uuid4())
    facets = {
        "schema": {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json",
            "fields": [{"name": "a", "type": "INTEGER", "description": "the a"}, {"name": "b", "type": "VARCHAR"}],
        },
        "dataSource": {
            "_producer": PRODUCER,
            "_schemaURL": "https://x/y",
            "name": "pantry-db",
            "uri": "postgres://db:5432",
        },
        "tags": {"_producer": PRODUCER, "_schemaURL": "https://x/y", "tags": [{"key": "recipe", "value": "true"}]},
    }
    out_facets = {
        **facets,
        "columnLineage": {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json",
            "fields": {
                "total": {
                    "inputFields": [
                        {
                            "namespace": KITCHEN,
                            "name": "pantry",
                            "field": "a",
                            "transformations": [{"type": "DIRECT", "subtype": "AGGREGATION"}],
                        }
                    ]
                }
            },
        },
        "schema": {**facets["schema"], "fields": [{"name": "total", "type": "INTEGER"}]},
    }
    return [
        {
            "eventType": "COMPLETE",
            "eventTime": "2020-11-01T10:00:00Z",
            "producer": PRODUCER,
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": run_id, "facets": {}},
            "job": {
                "namespace": KITCHEN,
                "name": "count_pantry",
                "facets": {
                    "sourceCodeLocation": {
                        "_producer": PRODUCER,
                        "_schemaURL": "https://x/y",
                        "type": "git",
                        "url": "https://github.com/grandma/kitchen",
                    }
                },
            },
            "inputs": [{"namespace": KITCHEN, "name": "pantry", "facets": facets}],
            "outputs": [{"namespace": KITCHEN, "name": "pantry.totals", "facets": out_facets}],
        }
    ]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(f"sqlite:///{tmp_path / 'trail.db'}"), raise_server_exceptions=False) as c:
        yield c


def load(client: TestClient, events: list[dict[str, Any]]) -> None:
    for event in events:
        response = client.post("/api/v1/lineage", json=event)
        assert response.status_code == 201, response.text


# ---------------------------------------------------------------- Marquez's OpenAPI schemas


def to_json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema.

    - ``$ref: '#/components/schemas/X'`` → ``#/$defs/X``;
    - a property not in ``required`` may be null, and so may one marked ``nullable``: Marquez writes
      absent values as ``null`` (its own examples: ``lastModifiedAt: null``, ``latestRun: null``);
    - ``oneOf`` becomes ``anyOf``: the spec's alternatives (Dataset or Job as a graph node's data)
      require no property, so every object matches both and ``oneOf`` could never pass; each node's
      data is checked against its own type separately;
    - a bare ``type:`` (null in YAML, in SearchResult) is dropped.
    """
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref":
            out["$ref"] = value.replace("#/components/schemas/", "#/$defs/")
        elif (key == "type" and value is None) or key in ("discriminator", "nullable", "example", "deprecated"):
            continue
        elif key == "oneOf":
            out["anyOf"] = to_json_schema(value)
        elif key == "properties":
            required = set(node.get("required") or ())
            out["properties"] = {
                name: to_json_schema(prop) if name in required else {"anyOf": [to_json_schema(prop), {"type": "null"}]}
                for name, prop in value.items()
            }
        else:
            out[key] = to_json_schema(value)
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if MARQUEZ is None:
        pytest.skip(MISSING)
    found: dict[str, Any] = yaml.safe_load((MARQUEZ / "openapi.yml").read_text())
    return found


def validator(spec: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    defs = to_json_schema(spec["components"]["schemas"])
    # The spec says a DatasetVersion's tags are a string; Marquez (DatasetVersion.java: ImmutableSet<TagName>)
    # answers an array, as for datasets. datatrail answers what Marquez does.
    defs["DatasetVersion"]["properties"]["tags"] = {"type": "array", "items": {"type": "string"}}
    # The spec makes a FacetsResult's facets one CustomFacet; Marquez (RunFacets.java, JobFacets.java) answers
    # a map of facet name to facet, like every other ``facets``.
    defs["FacetsResult"]["properties"]["facets"] = {"$ref": "#/$defs/RunFacets"}
    # A Run is "anyOf" an IncompleteRun and an object of the rest, which any object is; Marquez's Run.java
    # is both at once, so both must hold (the state among NEW, RUNNING, COMPLETED, FAILED, ABORTED…).
    defs["Run"] = {"allOf": defs["Run"]["anyOf"], "type": "object"}
    # Column lineage answers DATASET_FIELD nodes (Marquez's NodeType.java; test-events/column_lineage/node.json).
    defs["NodeType"]["enum"] = ["JOB", "DATASET", "DATASET_FIELD"]
    schema = {"$defs": defs, "$ref": f"#/$defs/{name}"}
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def ok_schema(spec: dict[str, Any], path: str) -> dict[str, Any]:
    """The schema of a path's 200 answer (the YAML spells the status as text, or as a number)."""
    responses = spec["paths"][path]["get"]["responses"]
    found: dict[str, Any] = (responses.get("200") or responses[200])["content"]["application/json"]["schema"]
    return found


def response_schema(spec: dict[str, Any], path: str) -> str:
    return str(ok_schema(spec, path)["$ref"].rsplit("/", 1)[-1])


def fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: seg(values[m.group(1)]), template)


@needs_marquez
def test_every_read_path_of_marquez_answers_its_schema(client: TestClient, spec: dict[str, Any]) -> None:
    load(client, apples() + extra_events())
    kitchen_apples = client.get(f"/api/v1/namespaces/{KITCHEN}/datasets/apples").json()
    job = client.get(f"/api/v1/namespaces/{KITCHEN}/jobs/count_pantry").json()
    values = {
        "namespace": KITCHEN,
        "dataset": "apples",
        "version": kitchen_apples["currentVersion"],
        "job": "count_pantry",
        "id": job["latestRun"]["id"],
        "source": "pantry-db",
    }
    job_version = job["currentVersion"]
    queries: dict[str, dict[str, Any]] = {
        "/lineage": {"nodeId": f"job:{KITCHEN}:prepare_apple_filling", "depth": 10},
        "/column-lineage": {"nodeId": f"datasetField:{KITCHEN}:pantry.totals:total", "withDownstream": "true"},
        "/search": {"q": "apple"},
        "/jobs/runs/{id}/facets": {"type": "job"},
        "/runlineage/upstream": {"runId": job["latestRun"]["id"]},
    }
    reads = [p for p, ops in spec["paths"].items() if "get" in ops]
    assert len(reads) == 21, reads  # every read path of the spec is below
    for path in reads:
        url = "/api/v1" + fill(path, {**values, "version": job_version} if "/jobs/{job}/versions" in path else values)
        response = client.get(url, params=queries.get(path, {}))
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        errors = sorted(validator(spec, response_schema(spec, path)).iter_errors(body), key=str)
        assert not errors, (path, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]])
        if path == "/runlineage/upstream":
            assert [r["job"]["name"] for r in body["runs"]] == ["count_pantry"]
        if path == "/column-lineage":
            assert MARQUEZ is not None
            expected = json.loads((MARQUEZ / "test-events" / "column_lineage" / "node.json").read_text())
            for node in body["graph"]:
                assert set(node) == set(expected) and set(expected["data"]) <= set(node["data"]), node
                for item in node["data"]["inputFields"]:
                    assert set(expected["data"]["inputFields"][0]) <= set(item)
            total = next(n for n in body["graph"] if n["id"].endswith("pantry.totals:total"))
            assert total["data"]["inputFields"][0]["transformationType"] == "AGGREGATION"
        if path == "/lineage":
            assert MARQUEZ is not None
            expected = json.loads((MARQUEZ / "test-events" / "lineage" / "node.json").read_text())
            for node in body["graph"]:
                assert set(node) == set(expected), node
                if node["type"] == "DATASET":
                    assert set(expected["data"]) <= set(node["data"]), node["data"]
                kind = {"DATASET": "Dataset", "JOB": "Job"}[node["type"]]
                node_errors = list(validator(spec, kind).iter_errors(node["data"]))
                assert not node_errors, (node["id"], node_errors[:3])
    # What the schemas leave optional is there: the facets the events sent, read back.
    totals = client.get(f"/api/v1/namespaces/{KITCHEN}/datasets/pantry.totals").json()
    assert totals["sourceName"] == "pantry-db" and totals["tags"] == ["recipe"]
    assert totals["fields"] == [{"name": "total", "type": "INTEGER", "tags": [], "description": None}]
    assert job["location"] == "https://github.com/grandma/kitchen"
    assert job["inputs"] == [{"namespace": KITCHEN, "name": "pantry"}]
    assert job["outputs"] == [{"namespace": KITCHEN, "name": "pantry.totals"}]
    assert client.get("/api/v1/sources/pantry-db").json()["connectionUrl"] == "postgres://db:5432"
    assert {"name": "recipe", "description": None} in client.get("/api/v1/tags").json()["tags"]


def check(spec: dict[str, Any], name: str, body: Any, where: str) -> None:
    errors = list(validator(spec, name).iter_errors(body))
    assert not errors, (where, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]])


@needs_marquez
def test_every_object_read_from_marquez_test_events_answers_its_schema(
    client: TestClient, spec: dict[str, Any]
) -> None:
    """Marquez's corner-case events (every facet, nanoseconds, no time zone, unicode, a large event, a dataset
    event, a job event…) ingested, then every namespace, dataset, version, job, job version, run and lineage
    graph read back through the API checked against Marquez's schemas."""
    assert MARQUEZ is not None
    folders = ("open_lineage", "listener", "apples")
    events = [json.loads(p.read_text()) for f in folders for p in sorted((MARQUEZ / "test-events" / f).glob("*.json"))]
    load(client, events)
    namespaces = client.get("/api/v1/namespaces").json()
    check(spec, "NamespaceList", namespaces, "namespaces")
    counted = {"Dataset": 0, "DatasetVersion": 0, "Job": 0, "Run": 0, "JobVersion": 0, "LineageGraph": 0}
    for ns in namespaces["namespaces"]:
        base = f"/api/v1/namespaces/{seg(ns['name'])}"
        check(spec, "Namespace", client.get(base).json(), base)
        datasets = client.get(f"{base}/datasets").json()
        check(spec, "DatasetList", datasets, base)
        for d in datasets["datasets"]:
            one = f"{base}/datasets/{seg(d['name'])}"
            check(spec, "Dataset", client.get(one).json(), one)
            versions = client.get(f"{one}/versions").json()
            check(spec, "DatasetVersionList", versions, one)
            for v in versions["versions"]:
                check(spec, "DatasetVersion", client.get(f"{one}/versions/{v['version']}").json(), v["version"])
                counted["DatasetVersion"] += 1
            graph = client.get("/api/v1/lineage", params={"nodeId": f"dataset:{ns['name']}:{d['name']}"}).json()
            check(spec, "LineageGraph", graph, one)
            counted["Dataset"] += 1
            counted["LineageGraph"] += 1
        jobs = client.get(f"{base}/jobs").json()
        check(spec, "JobList", jobs, base)
        for j in jobs["jobs"]:
            one = f"{base}/jobs/{seg(j['name'])}"
            check(spec, "Job", client.get(one).json(), one)
            check(spec, "JobVersionList", client.get(f"{one}/versions").json(), one)
            counted["JobVersion"] += len(client.get(f"{one}/versions").json()["versions"])
            runs = client.get(f"{one}/runs").json()
            check(spec, "RunList", runs, one)
            for r in runs["runs"]:
                check(spec, "Run", client.get(f"/api/v1/jobs/runs/{r['id']}").json(), r["id"])
                counted["Run"] += 1
            counted["Job"] += 1
    assert all(n >= 5 for n in counted.values()), counted
    # The listener's run was RUNNING, then COMPLETE: Marquez's COMPLETED.
    listener = client.get("/api/v1/jobs/runs/5e58a95c-1c71-4231-8984-ac172d5566cf").json()
    assert listener["state"] == "COMPLETED" and listener["durationMs"] == 86_400_000


@needs_marquez
def test_marquez_test_events_read_back_as_the_graph_marquez_describes(client: TestClient) -> None:
    """Marquez's LineageTest ingests the apples and asks for the lineage of the job prepare_apple_filling
    at depth 10. Derived from the events: five jobs in grandmas.kitchen, the datasets they read and
    write, and the edges between them."""
    load(client, apples())
    graph = client.get("/api/v1/lineage", params={"nodeId": f"job:{KITCHEN}:prepare_apple_filling", "depth": 10})
    nodes = {n["id"]: n for n in graph.json()["graph"]}
    k, cup = f"{KITCHEN}:", "cupboard:"
    edges = {
        ("dataset:backyard:crab.apples", f"job:{k}gather_apples"),
        (f"job:{k}gather_apples", f"dataset:{k}apples"),
        (f"dataset:{k}apples", f"job:{k}prepare_apple_filling"),
        (f"dataset:{k}cinnamon", f"job:{k}prepare_apple_filling"),
        (f"dataset:{cup}sugar", f"job:{k}prepare_apple_filling"),
        (f"job:{k}prepare_apple_filling", f"dataset:{k}apple.filling"),
        (f"dataset:{k}apples", f"job:{k}prepare_apple_cider"),
        (f"dataset:{cup}sugar", f"job:{k}prepare_apple_cider"),
        (f"job:{k}prepare_apple_cider", f"dataset:{k}apple.cider"),
        (f"dataset:{k}apple.cider", f"job:{k}prepare_vinegar"),
        (f"job:{k}prepare_vinegar", f"dataset:{cup}apple.vinegar"),
        (f"dataset:{k}apple.filling", f"job:{k}prepare_apple_pie"),
        (f"job:{k}prepare_apple_pie", f"dataset:{k}apple.pie"),
        # Marquez draws a job's current version only (gather_apples now picks crab apples); datatrail
        # keeps every run's edges, so the first picking, from laurents-orchard, stays in the graph.
        ("dataset:laurents-orchard:red.delicious", f"job:{k}gather_apples"),
    }
    assert set(nodes) == {e for edge in edges for e in edge}
    seen = {(e["origin"], e["destination"]) for n in nodes.values() for e in n["outEdges"]}
    assert seen == edges
    assert seen == {(e["origin"], e["destination"]) for n in nodes.values() for e in n["inEdges"]}
    # From a dataset, Marquez's graph is the same: all that is connected (the cider and the vinegar too,
    # though neither is upstream nor downstream of the pie) ...
    pie = client.get("/api/v1/lineage", params={"nodeId": f"dataset:{k}apple.pie", "depth": 10}).json()["graph"]
    assert {(e["origin"], e["destination"]) for n in pie for e in n["outEdges"]} == edges
    # ... and datatrail's directions walk one way: the cider branch is neither upstream nor downstream.
    both = client.get(
        "/api/v1/lineage", params={"nodeId": f"dataset:{k}apple.pie", "depth": 10, "direction": "both"}
    ).json()["graph"]
    assert {n["id"] for n in both} == set(nodes) - {
        f"job:{k}prepare_apple_cider",
        f"dataset:{k}apple.cider",
        f"job:{k}prepare_vinegar",
        f"dataset:{cup}apple.vinegar",
    }
    one = client.get("/api/v1/lineage", params={"nodeId": f"job:{k}prepare_vinegar", "depth": 1}).json()["graph"]
    assert {n["id"] for n in one if n["type"] == "JOB"} == {
        f"job:{k}prepare_vinegar",
        f"job:{k}prepare_apple_cider",
    }
    gather = nodes[f"job:{k}gather_apples"]["data"]
    assert gather["type"] == "BATCH" and gather["runCount"] == 2
    # The job as it is now (its latest run), as Marquez's job version has it.
    assert gather["inputs"] == [{"namespace": "backyard", "name": "crab.apples"}]
    assert gather["outputs"] == [{"namespace": KITCHEN, "name": "apples"}]
    assert gather["latestRun"]["state"] == "COMPLETED"
    pie = nodes[f"dataset:{k}apple.pie"]["data"]
    assert pie["id"] == {"namespace": KITCHEN, "name": "apple.pie"} and pie["versions"] == [1, 2]
    filling_runs = client.get(f"/api/v1/namespaces/{KITCHEN}/jobs/prepare_apple_filling/runs").json()
    assert [r["id"][:8] for r in filling_runs["runs"]] == ["e7d71919", "ab468fb4"] and filling_runs["totalCount"] == 2
    # Two job versions: the second filling added sugar.
    versions = client.get(f"/api/v1/namespaces/{KITCHEN}/jobs/prepare_apple_filling/versions").json()["versions"]
    assert [len(v["inputs"]) for v in versions] == [3, 2]
    # Vinegar was reported after the pie (5_ is newer than 6_): arrival order does not matter.
    vinegar = client.get("/api/v1/namespaces/cupboard/datasets/apple.vinegar/versions").json()
    made_by = vinegar["versions"][0]["createdByRun"]
    assert made_by["id"] == "a1060004-2a7b-4c3f-a8f9-696362c134df"
    assert made_by["inputDatasetVersions"][0]["datasetVersionId"]["name"] == "apple.cider"


# ---------------------------------------------------------------- marquez-python against a real server


@needs_marquez
def test_marquez_python_client_reads_a_real_server(tmp_path: Path) -> None:
    with running(tmp_path / "srv") as srv:
        for event in apples():
            request = urllib.request.Request(
                f"{srv.uri}/api/v1/lineage",
                data=json.dumps(event).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request) as answer:
                assert answer.status == 201
        client = marquez_client.MarquezClient(url=srv.uri)
        names = [n["name"] for n in client.list_namespaces()["namespaces"]]
        assert names == ["backyard", "cupboard", KITCHEN, "laurents-orchard"]
        assert client.get_namespace(KITCHEN)["ownerName"] == "anonymous"
        datasets = client.list_datasets(KITCHEN)
        assert datasets["totalCount"] == 5
        assert [d["name"] for d in datasets["datasets"]] == [
            "apple.cider",
            "apple.filling",
            "apple.pie",
            "apples",
            "cinnamon",
        ]
        pie = client.get_dataset(KITCHEN, "apple.pie")
        assert pie["id"] == {"namespace": KITCHEN, "name": "apple.pie"} and pie["type"] == "DB_TABLE"
        versions = client.list_dataset_versions(KITCHEN, "apple.pie")["versions"]
        assert [v["versionNumber"] for v in versions] == [2, 1] and versions[0]["version"] == pie["currentVersion"]
        one = client.get_dataset_version(KITCHEN, "apple.pie", versions[1]["version"])
        assert one["versionNumber"] == 1 and one["createdByRun"]["id"] == "66ad484e-9bba-4eed-a5f5-3a17558e7f6b"
        jobs = client.list_jobs(KITCHEN)["jobs"]
        assert len(jobs) == 5 and {j["type"] for j in jobs} == {"BATCH"}
        job = client.get_job(KITCHEN, "prepare_apple_pie")
        assert job["latestRun"]["id"] == "bcef9942-cb5c-476a-995b-3e5ca14aff27"
        runs = client.list_job_runs(KITCHEN, "prepare_apple_pie")["runs"]
        assert [r["state"] for r in runs] == ["COMPLETED", "COMPLETED"]
        run = client.get_job_run(runs[0]["id"])
        assert run["outputDatasetVersions"][0]["datasetVersionId"]["version"] == pie["currentVersion"]
        lineage = client.get_column_lineage_by_dataset(KITCHEN, "apple.pie", depth=5)
        assert lineage == {"graph": []}  # the apples carry no column lineage
        assert client.list_tags()["tags"] == []
        with pytest.raises(marquez_client.errors.APIError):  # Marquez's write API: send events instead
            client.create_namespace("new-space", "me")
        assert client.list_namespaces()["namespaces"][-1]["name"] == "laurents-orchard"


# ---------------------------------------------------------------- Marquez's write API


def test_marquez_writes_answer_405_naming_the_lineage_endpoint(client: TestClient) -> None:
    client.post(
        "/api/v1/lineage",
        json={
            "eventType": "COMPLETE",
            "eventTime": "2024-01-01T00:00:00Z",
            "producer": PRODUCER,
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": str(uuid.uuid4())},
            "job": {"namespace": "ns", "name": "j"},
            "outputs": [{"namespace": "ns", "name": "d"}],
        },
    )
    before = client.get("/api/v1/events").json()
    values = {"namespace": "ns", "dataset": "d", "job": "j", "id": str(uuid.uuid4()), "source": "s", "tag": "PII"}
    values["field"] = "a"
    assert len(WRITES) == 15
    for method, path, _ in WRITES:
        response = client.request(method, "/api/v1" + fill(path, values), json={"ownerName": "me", "type": "BATCH"})
        assert response.status_code == 405, (method, path, response.text)
        body = response.json()
        assert body["error"] == "write_not_supported"
        assert "send an OpenLineage event to POST /api/v1/lineage" in body["detail"], body
    assert client.get("/api/v1/events").json() == before  # nothing written
    assert client.get("/api/v1/namespaces/ns/datasets/d").status_code == 200


# ---------------------------------------------------------------- the pieces


def test_run_states_map_to_marquez_states() -> None:
    assert [run_state(s) for s in RunState] == ["RUNNING", "COMPLETED", "FAILED", "ABORTED"]
    assert run_state("START") == "RUNNING"  # what stores before revision 0006 kept for a started run
    assert run_state(None) == "NEW" and run_state("OTHER") == "NEW"


def test_version_uuids_are_stable_and_address_versions(client: TestClient) -> None:
    for n in range(2):
        load(
            client,
            [
                {
                    "eventType": "COMPLETE",
                    "eventTime": f"2024-01-0{n + 1}T00:00:00Z",
                    "producer": PRODUCER,
                    "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                    "run": {"runId": str(uuid.uuid4())},
                    "job": {"namespace": "s3://b", "name": "j"},
                    "outputs": [{"namespace": "s3://b", "name": "raw/x.csv"}],
                }
            ],
        )
    base = f"/api/v1/namespaces/{seg('s3://b')}/datasets/{seg('raw/x.csv')}/versions"
    listed = client.get(base).json()["versions"]
    assert [v["version"] for v in listed] == [version_uuid("s3://b", "raw/x.csv", n) for n in (2, 1)]
    for v in listed:
        for selector in (v["version"], v["version"].upper(), str(v["versionNumber"])):
            assert client.get(f"{base}/{selector}").json()["id"]["version"] == v["version"]
    assert client.get(f"{base}/{uuid.uuid4()}").status_code == 404


def test_search_takes_marquez_wildcards() -> None:
    assert matches("apple%pie", "apple.pie") and matches("appl_", "APPLES") and not matches("pie%apple", "apple.pie")
    assert matches("%" * 500 + "z", "a" * 1000 + "z") and not matches("%a" * 500 + "z", "a" * 1024)


# ---------------------------------------------------------------- grants


def test_marquez_objects_keep_hidden_datasets_hidden(tmp_path: Path) -> None:
    """team-a's mix run read team-b's b/secret: a team-a viewer sees the run, the job, the lineage and the
    upstream runs without it; team-b's owner does not see team-a at all. Classified columns carry their
    labels as Marquez's field tags."""
    scene = build(tmp_path)
    with TestClient(create_app(scene.uri)) as client:
        viewer = {"Authorization": f"Bearer {scene.tokens['viewer']}"}
        answers = [
            client.get(url, headers=viewer)
            for url in (
                f"/api/v1/jobs/runs/{scene.mix_run}",
                "/api/v1/namespaces/team-a/jobs/mix",
                "/api/v1/namespaces/team-a/jobs/mix/versions",
                "/api/v1/namespaces/team-a/jobs",
                f"/api/v1/namespaces/team-a/datasets/{seg('a/report')}/versions",
                "/api/v1/lineage?nodeId=dataset:team-a:a/report&depth=5",
                f"/api/v1/runlineage/upstream?runId={scene.mix_run}",
                "/api/v1/sources",
                "/api/v1/tags",
                "/api/v1/events/lineage",
            )
        ]
        assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200]
        text = json.dumps([a.json() for a in answers])
        assert "b/secret" not in text and "team-b" not in text
        job = answers[1].json()
        assert job["inputs"] == [{"namespace": "team-a", "name": "a/clean"}]
        graph = answers[5].json()["graph"]
        assert [n["data"] for n in graph if n["data"].get("redacted")] == [{"redacted": True}]
        raw = client.get(f"/api/v1/namespaces/team-a/datasets/{seg('a/raw')}", headers=viewer).json()
        assert {f["name"]: f["tags"] for f in raw["fields"]}["email"] == ["pii"]
        assert {"name": "pii", "description": None} in answers[8].json()["tags"]
        other = {"Authorization": f"Bearer {scene.tokens['other_owner']}"}
        assert client.get("/api/v1/namespaces/team-a", headers=other).status_code == 404
        assert client.get(f"/api/v1/jobs/runs/{scene.mix_run}", headers=other).status_code == 404
        listed = client.get("/api/v1/namespaces", headers=other).json()
        assert [n["name"] for n in listed["namespaces"]] == ["team-b"] and listed["totalCount"] == 1


def test_a_run_names_the_job_version_its_job_lists(client: TestClient) -> None:
    """The same job version id from the run, the job and the job's versions (a job with a code location)."""
    load(client, extra_events())
    job = client.get(f"/api/v1/namespaces/{KITCHEN}/jobs/count_pantry").json()
    run = client.get(f"/api/v1/jobs/runs/{job['latestRun']['id']}").json()
    versions = client.get(f"/api/v1/namespaces/{KITCHEN}/jobs/count_pantry/versions").json()["versions"]
    assert run["jobVersion"]["version"] == job["currentVersion"] == versions[0]["version"]
    one = client.get(f"/api/v1/namespaces/{KITCHEN}/jobs/count_pantry/versions/{job['currentVersion']}").json()
    assert one["location"] == "https://github.com/grandma/kitchen" and one["runCount"] == 1


def test_marquez_query_parameters(client: TestClient) -> None:
    """withDownstream, events' sortDirection/before/after/offset, search's filter, sort and wildcards."""
    events = extra_events()
    events.append({**events[0], "run": {"runId": str(uuid.uuid4())}, "eventTime": "2020-12-01T10:00:00Z"})
    events[1]["job"] = {"namespace": KITCHEN, "name": "report_pantry"}
    events[1]["inputs"] = [{"namespace": KITCHEN, "name": "pantry.totals"}]
    events[1]["outputs"] = [{"namespace": KITCHEN, "name": "pantry.report"}]
    load(client, events)
    # Column lineage: upstream only unless withDownstream=true (Marquez's default); direction is datatrail's.
    node = f"datasetField:{KITCHEN}:pantry:a"
    up = client.get("/api/v1/column-lineage", params={"nodeId": node}).json()["graph"]
    assert [n["id"] for n in up] == [node]
    down = client.get("/api/v1/column-lineage", params={"nodeId": node, "withDownstream": "true"}).json()["graph"]
    assert {n["id"] for n in down} == {node, f"datasetField:{KITCHEN}:pantry.totals:total"}
    same = client.get("/api/v1/column-lineage", params={"nodeId": node, "direction": "downstream"}).json()
    assert {n["id"] for n in same["graph"]} == {n["id"] for n in down}
    both = client.get("/api/v1/column-lineage", params={"nodeId": node, "direction": "both", "withDownstream": "1"})
    assert both.status_code == 400 and "not both" in both.json()["detail"]
    job = client.get("/api/v1/column-lineage", params={"nodeId": f"job:{KITCHEN}:count_pantry"}).json()["graph"]
    assert {n["id"] for n in job} == {node, f"datasetField:{KITCHEN}:pantry.totals:total"}
    # Lineage events: newest first by default, then pages; before/after bound eventTime.
    listed = client.get("/api/v1/events/lineage").json()
    assert listed["totalCount"] == 2 and [e["eventTime"][:10] for e in listed["events"]] == ["2020-12-01", "2020-11-01"]
    page = client.get("/api/v1/events/lineage", params={"sortDirection": "asc", "limit": 1, "offset": 1}).json()
    assert [e["eventTime"][:10] for e in page["events"]] == ["2020-12-01"] and page["totalCount"] == 2
    early = client.get("/api/v1/events/lineage", params={"before": "2020-11-15T00:00:00Z"}).json()
    assert [e["eventTime"][:10] for e in early["events"]] == ["2020-11-01"] and early["totalCount"] == 1
    late = client.get("/api/v1/events/lineage", params={"after": "2020-11-15T00:00:00Z"}).json()
    assert late["totalCount"] == 1
    # Search: wildcards, filter, namespace; a bad filter is a 400.
    hits = client.get("/api/v1/search", params={"q": "pantry.%s"}).json()
    assert [h["name"] for h in hits["results"]] == ["pantry.totals"] and hits["totalCount"] == 1
    jobs = client.get("/api/v1/search", params={"q": "_pantry", "filter": "job"}).json()["results"]
    assert [(h["type"], h["nodeId"]) for h in jobs] == [
        ("JOB", f"job:{KITCHEN}:count_pantry"),
        ("JOB", f"job:{KITCHEN}:report_pantry"),
    ]
    assert client.get("/api/v1/search", params={"q": "pantry", "namespace": "elsewhere"}).json()["totalCount"] == 0
    assert client.get("/api/v1/search", params={"q": "pantry", "filter": "tables"}).status_code == 400


def test_marquez_python_client_reads_with_a_token(tmp_path: Path) -> None:
    """marquez-python's api_key is sent as a Bearer token: a viewer of team-a reads team-a, and nothing of team-b."""
    scene = build(tmp_path / "scene")
    headers = marquez_client.client._HEADERS  # the client keeps its key in one module-wide dict
    try:
        with running(tmp_path / "srv", store=scene.uri) as srv:
            with pytest.raises(marquez_client.errors.APIError):  # no token: 401
                marquez_client.MarquezClient(url=srv.uri).list_namespaces()
            client = marquez_client.MarquezClient(url=srv.uri, api_key=scene.tokens["viewer"])
            assert [n["name"] for n in client.list_namespaces()["namespaces"]] == ["team-a"]
            names = {d["name"] for d in client.list_datasets("team-a")["datasets"]}
            assert names == {"a/raw", "a/clean", "a/report"}
            run = client.get_job_run(scene.mix_run)
            assert [i["datasetVersionId"]["name"] for i in run["inputDatasetVersions"]] == ["a/clean"]
            with pytest.raises(marquez_client.errors.APIError):  # hidden: 404
                client.get_namespace("team-b")
    finally:
        headers.pop("Authorization", None)
