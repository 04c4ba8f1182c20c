"""Standard OpenLineage facets mapped onto the model: schema, statistics, dataset/job/run facets,
column lineage, lifecycle changes, and lineage as of a past time — on every store."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import datatrail
from datatrail.core.errors import InvalidInput
from datatrail.server import create_app

PRODUCER = "https://example.com/tests"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
NS = "warehouse://db:5432"


def facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets/x.json", **fields}


def field(name: str, column: str, kind: str = "DIRECT", subtype: str = "IDENTITY") -> dict[str, Any]:
    return {
        "namespace": NS,
        "name": name,
        "field": column,
        "transformations": [{"type": kind, "subtype": subtype, "description": "", "masking": False}],
    }


def dataset(name: str, version: str, **facets: Any) -> dict[str, Any]:
    return {"namespace": NS, "name": name, "facets": {"version": facet(datasetVersion=version), **facets}}


def event(
    job: str,
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
    *,
    time: str,
    state: str = "COMPLETE",
    run_id: str | None = None,
    run_facets: dict[str, Any] | None = None,
    job_facets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "eventType": state,
        "eventTime": time,
        "producer": PRODUCER,
        "schemaURL": SCHEMA,
        "run": {"runId": run_id or str(uuid.uuid5(uuid.NAMESPACE_URL, job + time)), "facets": run_facets or {}},
        "job": {"namespace": "etl", "name": job, "facets": job_facets or {}},
        "inputs": inputs,
        "outputs": outputs,
    }


def pipeline() -> list[dict[str, Any]]:
    """raw (a, b) -> clean (x from a, y from a and b, filtered on b) -> report (total from x)."""
    raw = dataset(
        "public.raw",
        "r1",
        schema=facet(fields=[{"name": "a", "type": "INT"}, {"name": "b", "type": "TEXT"}]),
        dataSource=facet(name="db", uri="postgres://db:5432"),
        ownership=facet(owners=[{"name": "team:data", "type": "MAINTAINER"}]),
        tags=facet(tags=[{"key": "domain", "value": "sales", "source": "manual"}]),
    )
    raw["outputFacets"] = {"outputStatistics": facet(rowCount=10, size=2048)}
    clean = dataset(
        "public.clean",
        "c1",
        columnLineage=facet(
            fields={
                "x": {"inputFields": [field("public.raw", "a")]},
                "y": {"inputFields": [field("public.raw", "a"), field("public.raw", "b", subtype="AGGREGATION")]},
            },
            dataset=[field("public.raw", "b", kind="INDIRECT", subtype="FILTER")],
        ),
    )
    report = dataset(
        "public.report", "p1", columnLineage=facet(fields={"total": {"inputFields": [field("public.clean", "x")]}})
    )
    return [
        event(
            "extract",
            [],
            [raw],
            time="2026-01-01T00:00:00Z",
            run_facets={"nominalTime": facet(nominalStartTime="2026-01-01T00:00:00Z")},
            job_facets={"sql": facet(query="SELECT * FROM src")},
        ),
        event("clean", [dataset("public.raw", "r1")], [clean], time="2026-01-02T00:00:00Z"),
        event("report", [dataset("public.clean", "c1")], [report], time="2026-01-03T00:00:00Z"),
    ]


@pytest.fixture
def loaded(trail: datatrail.Trail) -> datatrail.Trail:
    for ev in pipeline():
        trail.ingest(ev)
    return trail


def test_schema_statistics_and_dataset_facets(loaded: datatrail.Trail) -> None:
    info = loaded.describe(f"{NS}:public.raw@1")
    assert info["schema"] == [{"name": "a", "type": "INT"}, {"name": "b", "type": "TEXT"}]
    assert info["stats"]["outputStatistics"] == {"rowCount": 10, "size": 2048}
    facets = info["facets"]
    assert facets["dataSource"]["value"]["uri"] == "postgres://db:5432"
    assert facets["ownership"]["value"]["owners"][0]["name"] == "team:data"
    assert facets["tags"]["time"].startswith("2026-01-01")
    assert "schema" not in facets and "version" not in facets  # version-level facets are not dataset facets
    assert loaded.describe(f"{NS}:public.clean@1")["schema"] is None


def test_run_facets_are_kept(loaded: datatrail.Trail) -> None:
    run = next(r for r in loaded.runs() if r.job == "extract")
    assert loaded.get_run(run.id).facets["nominalTime"]["value"]["nominalStartTime"] == "2026-01-01T00:00:00Z"


def test_column_lineage_upstream_and_downstream(loaded: datatrail.Trail) -> None:
    up = loaded.column_lineage(f"{NS}:public.report@1", "total", depth=5)
    ids = {f"column:{NS}:{n}" for n in ("public.report@1#total", "public.clean@1#x", "public.raw@1#a")}
    assert set(up.nodes) == ids
    assert (f"column:{NS}:public.raw@1#a", f"column:{NS}:public.clean@1#x") in {(s, t) for s, t, _ in up.edges}
    depths = {n["column"]: n["depth"] for n in up.nodes.values()}
    assert depths == {"total": 0, "x": 1, "a": 2}

    down = loaded.column_lineage(f"{NS}:public.raw@1", "b", direction="downstream", depth=5)
    assert {n["column"] for n in down.nodes.values()} == {"b", "y", "*"}
    edge = next(tr for s, t, tr in down.edges if t.endswith("#y"))
    assert edge == [{"type": "DIRECT", "subtype": "AGGREGATION", "description": "", "masking": False}]

    everything = loaded.column_lineage(f"{NS}:public.clean@1", None, direction="both", depth=1)
    assert {n["column"] for n in everything.nodes.values()} == {"a", "b", "x", "y", "*", "total"}


def test_column_lineage_of_an_unknown_version_is_an_error(loaded: datatrail.Trail) -> None:
    with pytest.raises(datatrail.core.errors.NotFound):
        loaded.column_lineage(f"{NS}:public.report@9", "total")


def test_lineage_as_of_a_past_time(loaded: datatrail.Trail) -> None:
    now = loaded.lineage(f"{NS}:public.raw@1", direction="downstream", depth=5)
    assert {n.data.get("name") for n in now.nodes.values() if n.type == "version"} == {
        "public.raw",
        "public.clean",
        "public.report",
    }
    then = loaded.lineage(f"{NS}:public.raw@1", direction="downstream", depth=5, as_of="2026-01-02T12:00:00Z")
    assert {n.data.get("name") for n in then.nodes.values() if n.type == "version"} == {"public.raw", "public.clean"}
    before = loaded.lineage(f"{NS}:public.raw@1", direction="downstream", depth=5, as_of="2026-01-01T12:00:00Z")
    assert [n.type for n in before.nodes.values()] == ["version"]
    with pytest.raises(InvalidInput, match="ISO 8601"):
        loaded.lineage(f"{NS}:public.raw@1", as_of="yesterday")


def test_a_run_that_ended_later_shows_running_as_of_before_its_end(trail: datatrail.Trail) -> None:
    run_id = str(uuid.uuid4())
    src = dataset("s", "1")
    trail.ingest(event("job", [], [src], time="2026-01-01T00:00:00Z"))
    trail.ingest(event("t", [dataset("s", "1")], [dataset("o", "1")], time="2026-01-05T00:00:00Z", run_id=run_id))
    trail.ingest(event("t", [dataset("s", "1")], [], time="2026-01-04T00:00:00Z", run_id=run_id, state="START"))
    graph = trail.lineage(f"{NS}:s@1", direction="downstream", depth=2, as_of="2026-01-04T12:00:00Z")
    run = graph.nodes[f"run:{run_id}"]
    assert run.data["state"] == "RUNNING"
    assert f"version:{NS}:o@1" not in graph.nodes


def test_latest_facet_wins_whatever_the_order(trail: datatrail.Trail) -> None:
    old = event(
        "own",
        [],
        [dataset("t", "1", ownership=facet(owners=[{"name": "old"}]))],
        time="2026-01-01T00:00:00Z",
    )
    new = event(
        "own",
        [],
        [dataset("t", "2", ownership=facet(owners=[{"name": "new"}]))],
        time="2026-02-01T00:00:00Z",
    )
    trail.ingest(new)
    trail.ingest(old)
    assert trail.describe(f"{NS}:t@1")["facets"]["ownership"]["value"]["owners"] == [{"name": "new"}]


def test_lifecycle_drop_hides_the_dataset_and_create_brings_it_back(trail: datatrail.Trail) -> None:
    def life(state: str, version: str, time: str) -> dict[str, Any]:
        return event(
            "ddl",
            [],
            [dataset("tmp", version, lifecycleStateChange=facet(lifecycleStateChange=state))],
            time=time,
        )

    trail.ingest(life("CREATE", "1", "2026-01-01T00:00:00Z"))
    trail.ingest(life("DROP", "1", "2026-01-02T00:00:00Z"))
    assert "tmp" not in {d.name for d in trail.datasets(NS)}
    assert trail.describe(f"{NS}:tmp@1")["lifecycle"] == "DROP"  # history stays readable
    trail.ingest(life("OVERWRITE", "2", "2026-01-03T00:00:00Z"))
    assert "tmp" in {d.name for d in trail.datasets(NS)}
    trail.ingest(life("DROP", "1", "2026-01-02T00:00:00Z"))  # a late repeat changes nothing
    assert trail.describe(f"{NS}:tmp@2")["lifecycle"] == "OVERWRITE"


def test_column_edges_do_not_depend_on_event_order(workdir: Path) -> None:
    def snapshot(order: tuple[dict[str, Any], ...], where: Path) -> Any:
        where.mkdir()
        trail = datatrail.init(where)
        try:
            for ev in order:
                trail.ingest(ev)
                trail.ingest(ev)  # a repeat is a no-op
            graph = trail.column_lineage(f"{NS}:public.clean@1", None, direction="both", depth=3)
            return sorted(graph.nodes), sorted((s, t) for s, t, _ in graph.edges)
        finally:
            trail.close()

    events = pipeline()
    results = {repr(snapshot(order, workdir / f"s{i}")) for i, order in enumerate(itertools.permutations(events))}
    assert len(results) == 1


@pytest.mark.sql_store
def test_column_lineage_endpoint(trail: datatrail.Trail) -> None:
    for ev in pipeline():
        trail.ingest(ev)
    with TestClient(create_app(trail._store)) as client:
        node = f"datasetField:{NS}:public.clean:y"
        body = client.get("/api/v1/column-lineage", params={"nodeId": node, "direction": "upstream"}).json()
        nodes = {n["id"]: n for n in body["graph"]}
        assert set(nodes) == {node, f"datasetField:{NS}:public.raw:a", f"datasetField:{NS}:public.raw:b"}
        inputs = {(f["dataset"], f["field"]) for f in nodes[node]["data"]["inputFields"]}
        assert inputs == {("public.raw", "a"), ("public.raw", "b")}
        versioned = client.get(
            "/api/v1/column-lineage", params={"nodeId": f"dataset:{NS}:public.report#1", "direction": "upstream"}
        ).json()
        assert f"datasetField:{NS}:public.raw#1:a" in {n["id"] for n in versioned["graph"]}
        bad = client.get("/api/v1/column-lineage", params={"nodeId": "table:etl:clean"})
        assert bad.status_code == 400 and "datasetField" in bad.json()["detail"]
        missing = client.get("/api/v1/column-lineage", params={"nodeId": f"datasetField:{NS}:nothing.here:a"})
        assert missing.status_code == 404
        as_of = client.get(
            "/api/v1/lineage",
            params={"nodeId": f"dataset:{NS}:public.raw", "direction": "downstream", "asOf": "2026-01-02T12:00:00Z"},
        ).json()
        assert {n["id"] for n in as_of["graph"]} == {
            f"dataset:{NS}:public.raw",
            f"dataset:{NS}:public.clean",
            "job:etl:clean",
        }
        assert (
            client.get("/api/v1/lineage", params={"nodeId": f"dataset:{NS}:public.raw", "asOf": "soon"}).status_code
            == 400
        )
        facets = client.get(
            f"/api/v1/namespaces/{NS.replace(':', '%3A').replace('/', '%2F')}/datasets/public.raw/versions/1/facets"
        ).json()
        assert facets["schema"][0]["name"] == "a"


def test_ingest_many_answers_for_each_event(trail: datatrail.Trail) -> None:
    first, second, _ = pipeline()
    results = trail.ingest_many([first, {"eventType": "START"}, first, second])
    assert isinstance(results[1], InvalidInput)
    stored, _, repeat, other = results
    assert not isinstance(stored, Exception) and not stored.duplicate
    assert not isinstance(repeat, Exception) and repeat.duplicate
    assert not isinstance(other, Exception) and not other.duplicate
    assert {r.job for r in trail.runs()} == {"extract", "clean"}


def test_job_facets_are_kept(loaded: datatrail.Trail) -> None:
    job = next(j for j in loaded.jobs("etl") if j.name == "extract")
    assert job.facets["sql"]["value"]["query"] == "SELECT * FROM src"
    assert job.to_dict()["facets"] == job.facets


def test_lineage_nodes_carry_failed_checks_and_drift_alerts(trail: datatrail.Trail, workdir: Path) -> None:
    import pandas as pd

    from datatrail.viz.nodes import marks_of

    pd.DataFrame({"x": [float(i) for i in range(200)]}).to_csv(workdir / "ref.csv", index=False)
    pd.DataFrame({"x": [float(i) + 500 for i in range(200)]}).to_csv(workdir / "cur.csv", index=False)
    ref, cur = trail.add("ref.csv", name="ref"), trail.add("cur.csv", name="cur")
    rules = workdir / "rules.yaml"
    rules.write_text("checks:\n  - {rule: between, column: x, min: 0, max: 100}\n")
    trail.check(ref, rules)
    record = trail.monitor(cur, reference=ref)
    assert record.drifted
    nodes = {
        n.data.get("name"): n
        for start in (ref, cur)
        for n in trail.lineage(start, direction="both", depth=2).nodes.values()
        if n.type == "version"
    }
    assert nodes["ref"].data["checks"] == {"failed": 1, "total": 1}
    assert marks_of(nodes["ref"]) == ("checks",)
    assert nodes["cur"].data["drift"]["alert"] is True and "checks" not in nodes["cur"].data
    assert marks_of(nodes["cur"]) == ("drift",)
    rules.write_text("checks:\n  - {rule: between, column: x, min: 0, max: 1000}\n")
    trail.check(ref, rules)  # the latest evaluation counts
    again = trail.lineage(ref, direction="both", depth=2)
    assert again.nodes[f"version:default:ref@{ref.number}"].data["checks"] == {"failed": 0, "total": 1}


def test_rename_links_the_previous_name_to_the_new_one(trail: datatrail.Trail) -> None:
    def renamed(new: str, old: str, version: str, time: str) -> dict[str, Any]:
        life = facet(lifecycleStateChange="RENAME", previousIdentifier={"namespace": NS, "name": old})
        return event(f"rename-{new}", [], [dataset(new, version, lifecycleStateChange=life)], time=time)

    def created(name: str, version: str, time: str) -> dict[str, Any]:
        life = facet(lifecycleStateChange="CREATE")
        return event(f"create-{name}", [], [dataset(name, version, lifecycleStateChange=life)], time=time)

    # The same history in both arrival orders: created on day 1, renamed on day 2.
    trail.ingest(created("orders_v1", "1", "2026-01-01T00:00:00Z"))
    trail.ingest(renamed("orders", "orders_v1", "2", "2026-01-02T00:00:00Z"))
    trail.ingest(renamed("users", "users_v1", "2", "2026-01-02T00:00:00Z"))
    trail.ingest(created("users_v1", "1", "2026-01-01T00:00:00Z"))  # arrives late
    names = {d.name for d in trail.datasets(NS)}
    assert {"orders", "users"} <= names and not {"orders_v1", "users_v1"} & names
    for new, old in (("orders", "orders_v1"), ("users", "users_v1")):
        assert trail.describe(f"{NS}:{new}@1")["lifecycle"] == "RENAME"
        before = trail.describe(f"{NS}:{old}@1")  # its history stays readable
        assert before["lifecycle"] == "RENAMED"
        assert before["facets"]["renamedTo"]["value"] == {"namespace": NS, "name": new}
    # A previous name never reported on its own: looking it up says where it went.
    trail.ingest(renamed("events", "events_2025", "1", "2026-01-03T00:00:00Z"))
    with pytest.raises(datatrail.NotFound, match="renamed to 'events'"):
        trail.get(f"{NS}:events_2025")
    # A later CREATE of the old name brings it back (the latest lifecycle state wins).
    trail.ingest(created("orders_v1", "9", "2026-01-05T00:00:00Z"))
    assert "orders_v1" in {d.name for d in trail.datasets(NS)}


def test_a_rename_must_say_what_it_renamed(trail: datatrail.Trail) -> None:
    life = facet(lifecycleStateChange="RENAME", previousIdentifier={"namespace": NS, "name": 7})
    bad = event("rename", [], [dataset("x", "1", lifecycleStateChange=life)], time="2026-01-01T00:00:00Z")
    with pytest.raises(InvalidInput, match="previousIdentifier"):
        trail.ingest(bad)
    assert trail.datasets(NS) == []
