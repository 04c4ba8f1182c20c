"""What a store makes of events from schedulers and engines (Airflow, Spark), over every store.

Outputs named before a run completes are planned, not versions; a run with only a START is
RUNNING; a run known only by its ending starts when its facets say; a DAG run lists its task
runs; a job is a lineage node (issue 17).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

import datatrail
from datatrail.core.errors import InvalidInput, NotFound
from datatrail.core.model import RunState
from tests.conformance import MISSING, spec_dir

PRODUCER = "https://github.com/apache/airflow/tree/providers-openlineage/2.20.3"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def run_event(
    event_type: str,
    run_id: str,
    job: str,
    minute: int,
    *,
    inputs: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    run_facets: dict[str, Any] | None = None,
    output_facets: dict[str, Any] | None = None,
    namespace: str = "airflow",
) -> dict[str, Any]:
    """An event as the Airflow provider sends it: files in namespace ``file``, no datatrail facets."""
    return {
        "eventType": event_type,
        "eventTime": f"2026-12-01T10:{minute:02d}:00+00:00",
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": run_id, "facets": run_facets or {}},
        "job": {"namespace": namespace, "name": job, "facets": {}},
        "inputs": [{"namespace": "file", "name": n, "facets": {}} for n in inputs],
        "outputs": [{"namespace": "file", "name": n, "facets": output_facets or {}} for n in outputs],
    }


def parent(run_id: str, job: str) -> dict[str, Any]:
    return {
        "parent": {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-1-0/ParentRunFacet.json",
            "run": {"runId": run_id},
            "job": {"namespace": "airflow", "name": job},
        }
    }


def ingest(trail: datatrail.Trail, *events: dict[str, Any]) -> None:
    for event in events:
        trail.ingest(event, actor="airflow")


def versions(trail: datatrail.Trail, name: str) -> list[int]:
    try:
        return [v.number for v in trail.versions(f"file:{name}")]
    except NotFound:
        return []


def test_outputs_of_a_start_are_planned_until_a_complete_names_them(trail: datatrail.Trail) -> None:
    rid = str(uuid.uuid4())
    ingest(trail, run_event("START", rid, "dag.export", 0, inputs=("/d/shop.db",), outputs=("/d/report.csv",)))
    run = trail.get_run(rid)
    assert run.state is RunState.RUNNING
    assert run.outputs == () and run.planned_outputs == (("file", "/d/report.csv"),)
    assert versions(trail, "/d/report.csv") == []  # named, not written: no version, nothing is latest
    with pytest.raises(NotFound):
        trail.get("file:/d/report.csv@latest")
    ingest(trail, run_event("RUNNING", rid, "dag.export", 1, outputs=("/d/report.csv",)))
    assert versions(trail, "/d/report.csv") == []
    ingest(trail, run_event("COMPLETE", rid, "dag.export", 2, outputs=("/d/report.csv",)))
    run = trail.get_run(rid)
    assert run.state is RunState.COMPLETE and run.planned_outputs == ()
    assert [v.ref for v in run.outputs] == ["file:/d/report.csv@1"]
    assert trail.get("file:/d/report.csv@latest").run_id == rid


def test_a_failed_or_aborted_run_produces_no_version(trail: datatrail.Trail) -> None:
    good, failed, aborted = (str(uuid.uuid4()) for _ in range(3))
    ingest(
        trail,
        run_event("START", good, "dag.write", 0, outputs=("/d/out.csv",)),
        run_event("COMPLETE", good, "dag.write", 1, outputs=("/d/out.csv",)),
        run_event("START", failed, "dag.write", 2, outputs=("/d/out.csv", "/d/never_written.txt")),
        run_event("FAIL", failed, "dag.write", 3, outputs=("/d/out.csv", "/d/never_written.txt")),
        run_event("ABORT", aborted, "dag.write", 4, outputs=("/d/out.csv",)),
    )
    assert versions(trail, "/d/out.csv") == [1]
    assert trail.get("file:/d/out.csv@latest").run_id == good  # the failures did not move latest
    assert versions(trail, "/d/never_written.txt") == []
    assert trail.get_run(failed).state is RunState.FAIL
    assert trail.get_run(failed).planned_outputs == (("file", "/d/never_written.txt"), ("file", "/d/out.csv"))
    assert trail.get_run(aborted).outputs == ()


def test_a_complete_arriving_first_gives_the_same_state(trail: datatrail.Trail) -> None:
    rid = str(uuid.uuid4())
    start = run_event("START", rid, "dag.t", 0, outputs=("/d/x.csv",))
    complete = run_event("COMPLETE", rid, "dag.t", 5, outputs=("/d/x.csv",))
    ingest(trail, complete, start)
    run = trail.get_run(rid)
    assert (run.state, run.planned_outputs) == (RunState.COMPLETE, ())
    assert [v.ref for v in run.outputs] == ["file:/d/x.csv@1"]
    assert run.started_at is not None and run.started_at.minute == 0 and run.ended_at is not None


def test_a_start_alone_is_running_everywhere(trail: datatrail.Trail) -> None:
    rid = str(uuid.uuid4())
    ingest(trail, run_event("START", rid, "dag.slow", 0))
    assert trail.get_run(rid).state is RunState.RUNNING
    assert [r.state for r in trail.runs()] == [RunState.RUNNING]
    assert [j.latest_state for j in trail.jobs("airflow")] == ["RUNNING"]
    assert trail.get_run(rid).to_dict()["state"] == "RUNNING"


def test_a_run_known_only_by_its_end_starts_when_its_facets_say(trail: datatrail.Trail) -> None:
    nominal, airflow_ti, bare = (str(uuid.uuid4()) for _ in range(3))
    facets = {"nominalTime": {"nominalStartTime": "2026-12-01T09:30:00Z"}}
    ti = {"airflow": {"taskInstance": {"start_date": "2026-12-01T10:03:00+00:00"}}}
    ingest(
        trail,
        run_event("COMPLETE", nominal, "dag.a", 10, run_facets=facets),
        run_event("COMPLETE", airflow_ti, "dag.b", 10, run_facets={**facets, **ti}),
        run_event("COMPLETE", bare, "dag.c", 10),
    )
    assert trail.get_run(nominal).started_at.isoformat() == "2026-12-01T09:30:00+00:00"  # type: ignore[union-attr]
    assert trail.get_run(airflow_ti).started_at.isoformat() == "2026-12-01T10:03:00+00:00"  # type: ignore[union-attr]
    bare_run = trail.get_run(bare)
    assert bare_run.started_at == bare_run.ended_at  # nothing tells more
    # Once the START arrives, its time is the start.
    ingest(trail, run_event("START", nominal, "dag.a", 1))
    assert trail.get_run(nominal).started_at.isoformat() == "2026-12-01T10:01:00+00:00"  # type: ignore[union-attr]


def test_a_dag_run_lists_its_task_runs(trail: datatrail.Trail) -> None:
    dag, load, export = (str(uuid.uuid4()) for _ in range(3))
    ingest(
        trail,
        run_event("START", dag, "shop", 0),
        run_event("START", load, "shop.load_sqlite", 1, run_facets=parent(dag, "shop")),
        run_event("COMPLETE", load, "shop.load_sqlite", 2, run_facets=parent(dag, "shop")),
        run_event("START", export, "shop.export_report", 3, run_facets=parent(dag, "shop")),
        run_event("COMPLETE", dag, "shop", 4),
    )
    assert trail.get_run(dag).children == (load, export)
    assert trail.get_run(load).parent_run_id == dag and trail.get_run(load).children == ()
    assert trail.get_run(dag).to_dict()["children"] == [load, export]


def test_a_job_is_a_lineage_node_linked_to_the_jobs_that_feed_it(trail: datatrail.Trail) -> None:
    load, export, lonely = (str(uuid.uuid4()) for _ in range(3))
    ingest(
        trail,
        run_event("COMPLETE", load, "shop.load_sqlite", 1, inputs=("/d/orders.csv",), outputs=("/d/shop.db",)),
        run_event("COMPLETE", export, "shop.export_report", 2, inputs=("/d/shop.db",), outputs=("/d/report.csv",)),
        run_event("START", lonely, "shop.idle", 3),
    )
    graph = trail.job_lineage("airflow", "shop.export_report", direction="upstream", depth=5)
    jobs = {n.data["job"] for n in graph.nodes.values() if n.type == "run"}
    assert jobs == {"shop.export_report", "shop.load_sqlite"}
    # A job whose runs read and wrote nothing is still a node of its own lineage.
    idle = trail.job_lineage("airflow", "shop.idle")
    assert [(n.type, n.data["job"], n.data["state"]) for n in idle.nodes.values()] == [("run", "shop.idle", "RUNNING")]


def test_short_run_ids_always_resolve(trail: datatrail.Trail) -> None:
    # UUIDv7 ids made in the same milliseconds share their first 12+ characters.
    stamp = 0x0193_A24E_4812
    ids = [str(uuid.UUID(f"{stamp + i // 7:012x}7{i:03x}8{i * 7919:015x}")) for i in range(20)]
    for i, rid in enumerate(ids):
        ingest(trail, run_event("START", rid, "dag.t", i))
    labels = trail.catalog.run_labels(ids)
    assert len(set(labels.values())) == 20
    for rid, label in labels.items():
        assert len(label) >= 8 and rid.startswith(label)
        assert trail.get_run(label).id == rid
    with pytest.raises(InvalidInput, match="ambiguous") as err:
        trail.get_run(ids[0][:12])
    assert ids[0] in str(err.value) and ids[1] in str(err.value)  # the candidates are named


def test_marquez_test_events_ingest_and_a_missing_producer_is_refused(trail: datatrail.Trail) -> None:
    folder = spec_dir("marquez-spec")
    if folder is None:
        pytest.skip(MISSING)
    files = sorted((folder / "test-events").glob("*/*.json"))
    events = [json.loads(p.read_text()) for p in files]
    events = [e for e in events if isinstance(e, dict) and "eventTime" in e]  # lineage/node.json are answers
    assert len(events) >= 20 and any("schemaURL" not in e for e in events)
    for event in events:
        trail.ingest(event, actor="marquez-tests")
    assert trail.get_run("41fb5137-f0fd-4ee5-ba5c-56f8571d1bd7").state is RunState.COMPLETE  # no schemaURL
    before = len(trail.runs(limit=10_000))
    bare = run_event("START", str(uuid.uuid4()), "no.producer", 0)
    del bare["producer"]
    with pytest.raises(InvalidInput, match="'producer' is missing"):
        trail.ingest(bare, actor="someone")
    assert len(trail.runs(limit=10_000)) == before


def facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/X.json", **fields}


def documented_run(trail: datatrail.Trail) -> str:
    """A run of a SQL job writing a documented table with a schema, as a producer reports them."""
    rid = str(uuid.uuid4())
    event = run_event("COMPLETE", rid, "dbt.orders", 5, namespace="dbt")
    event["job"]["facets"] = {
        "documentation": facet(description="Daily totals per customer."),
        "sql": facet(query="SELECT customer, SUM(amount) AS total\nFROM orders GROUP BY customer", dialect="sqlite"),
    }
    event["outputs"] = [
        {
            "namespace": "sqlite://shop.db",
            "name": "main.totals",
            "facets": {
                "documentation": facet(description="One row per customer."),
                "schema": facet(fields=[{"name": "customer", "type": "TEXT"}, {"name": "total", "type": "REAL"}]),
            },
        }
    ]
    trail.ingest(event, actor="dbt")
    return rid


def test_documentation_schema_and_sql_that_producers_send_are_shown(trail: datatrail.Trail) -> None:
    documented_run(trail)
    table = next(d for d in trail.datasets("sqlite://shop.db") if d.name == "main.totals")
    assert table.description == "One row per customer."
    job = next(j for j in trail.jobs("dbt") if j.name == "dbt.orders")
    assert job.description == "Daily totals per customer."
    assert job.sql is not None and job.sql.startswith("SELECT customer")
    assert trail.describe("sqlite://shop.db:main.totals@1")["schema"] == [
        {"name": "customer", "type": "TEXT"},
        {"name": "total", "type": "REAL"},
    ]
    # A later event's documentation wins; one removing it clears the description.
    later = run_event("COMPLETE", str(uuid.uuid4()), "dbt.orders", 9, namespace="dbt")
    later["job"]["facets"] = {"documentation": {"_producer": PRODUCER, "_schemaURL": SCHEMA_URL, "_deleted": True}}
    trail.ingest(later, actor="dbt")
    assert next(j for j in trail.jobs("dbt") if j.name == "dbt.orders").description is None


def test_symlinks_unify_the_names_producers_give_one_dataset(trail: datatrail.Trail) -> None:
    path, table = ("hdfs://nn:8020", "/warehouse/shop.db/orders"), ("hive://metastore:9083", "shop.orders")
    links = {"symlinks": facet(identifiers=[{"namespace": table[0], "name": table[1], "type": "TABLE"}])}
    spark, hive, reader = (str(uuid.uuid4()) for _ in range(3))
    write = run_event("COMPLETE", spark, "spark.load", 1, namespace="spark")
    write["outputs"] = [{"namespace": path[0], "name": path[1], "facets": links}]
    read = run_event("COMPLETE", hive, "hive.report", 2, namespace="hive")
    read["inputs"] = [{"namespace": table[0], "name": table[1], "facets": {}}]
    # A third producer names the path without the facet: the link leads it to the table too.
    plain = run_event("COMPLETE", reader, "spark.audit", 3, namespace="spark")
    plain["inputs"] = [{"namespace": path[0], "name": path[1], "facets": {}}]
    ingest(trail, write, read, plain)
    assert {(d.namespace, d.name) for d in trail.datasets() if d.namespace in (path[0], table[0])} == {table}
    assert [v.ref for v in trail.get_run(spark).outputs] == ["hive://metastore:9083:shop.orders@1"]
    assert [v.ref for v in trail.get_run(hive).inputs] == ["hive://metastore:9083:shop.orders@1"]
    assert [v.ref for v in trail.get_run(reader).inputs] == ["hive://metastore:9083:shop.orders@1"]
    assert [v.number for v in trail.versions(f"{path[0]}:{path[1]}")] == [1]  # the path names the table
    graph = trail.job_lineage("hive", "hive.report", direction="upstream", depth=3)
    assert {n.data["job"] for n in graph.nodes.values() if n.type == "run"} == {"hive.report", "spark.load"}
    # The audit entry names the version as it is stored (the table), so the store's integrity holds.
    assert trail.check_store() == []


def test_a_file_and_its_host_form_are_one_dataset_whichever_is_named(trail: datatrail.Trail) -> None:
    local, hosted = ("file", "/data/x.csv"), ("file://host1", "/data/x.csv")
    links = {"symlinks": facet(identifiers=[{"namespace": hosted[0], "name": hosted[1], "type": "FILE"}])}
    writer, reader = str(uuid.uuid4()), str(uuid.uuid4())
    write = run_event("COMPLETE", writer, "w", 1)
    write["outputs"] = [{"namespace": local[0], "name": local[1], "facets": links}]
    read = run_event("COMPLETE", reader, "r", 2)
    read["inputs"] = [{"namespace": hosted[0], "name": hosted[1], "facets": {}}]
    ingest(trail, write, read)
    assert [v.ref for v in trail.get_run(reader).inputs] == ["file:/data/x.csv@1"]
    assert trail.get_run(reader).inputs == trail.get_run(writer).outputs
