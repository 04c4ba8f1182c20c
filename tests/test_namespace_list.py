"""Namespaces as the store lists them (revision 0011): the same namespaces, counts and first and last times as
a reading of every dataset and job gave, on every store; Marquez's namespace list and namespace, and the UI's
home page, answer from them."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text

import datatrail
from datatrail.core.results import NamespaceSummary
from datatrail.server import create_app
from tests.migrate import upgrade

PRODUCER = "https://example.com/tests"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def event(job: str, outputs: list[tuple[str, str]], time: str, namespace: str = "etl", drop: bool = False) -> Any:
    facets: dict[str, Any] = {"version": {"_producer": PRODUCER, "_schemaURL": SCHEMA, "datasetVersion": time}}
    if drop:
        facets["lifecycleStateChange"] = {"_producer": PRODUCER, "_schemaURL": SCHEMA, "lifecycleStateChange": "DROP"}
    return {
        "eventType": "COMPLETE",
        "eventTime": time,
        "producer": PRODUCER,
        "schemaURL": SCHEMA,
        "run": {"runId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{job}/{time}"))},
        "job": {"namespace": namespace, "name": job},
        "inputs": [],
        "outputs": [{"namespace": ns, "name": n, "facets": facets} for ns, n in outputs],
    }


def fill(trail: datatrail.Trail) -> None:
    """Datasets and jobs of several namespaces at several times; the first and the last of warehouse://a
    dropped, and warehouse://b's only dataset dropped (a namespace with nothing listed)."""
    a, b = "warehouse://a", "warehouse://b"
    day = "2026-01-{:02d}T00:00:00Z".format
    trail.ingest_many(
        [
            event("load", [(a, "t0"), (a, "t1")], day(1)),
            event("load", [(a, "t2")], day(3)),
            event("copy", [(a, "t3"), (b, "u0")], day(5), namespace="etl2"),
            event("late", [(a, "t4")], day(9), namespace="etl2"),
            event("drop", [(a, "t0")], day(10), drop=True),
            event("drop", [(a, "t4")], day(11), drop=True),
            event("drop", [(b, "u0")], day(12), drop=True),
            event("later", [("Zed", "z")], day(13), namespace="etl"),  # sorted before lower-case names
        ]
    )


def as_listed(trail: datatrail.Trail) -> list[NamespaceSummary]:
    """What the namespace list was before revision 0011: every listed dataset and job read and grouped."""
    datasets, jobs = trail.datasets(), trail.jobs()
    out = []
    for name in sorted({d.namespace for d in datasets} | {j.namespace for j in jobs}):
        mine = [d.created_at for d in datasets if d.namespace == name]
        theirs = [j.created_at for j in jobs if j.namespace == name]
        times = [x for x in mine + theirs if x]
        first, last = (min(times), max(times)) if times else (None, None)
        out.append(NamespaceSummary(name, len(mine), len(theirs), first, last))
    return out


def test_namespaces_are_those_the_listings_group(trail: datatrail.Trail) -> None:
    assert trail.catalog.namespaces() == []
    fill(trail)
    found = trail.catalog.namespaces()
    assert found == as_listed(trail)
    assert [(s.name, s.datasets, s.jobs) for s in found] == [
        ("Zed", 1, 0),
        ("etl", 0, 3),
        ("etl2", 0, 2),
        ("warehouse://a", 3, 0),
    ]
    # warehouse://a's first and last datasets are hidden: its times are those of t1 and t3.
    a = found[-1]
    assert (a.created_at, a.updated_at) == (trail.datasets("warehouse://a")[0].created_at, found[-1].updated_at)
    assert a.created_at is not None and a.created_at.day == 1 and a.updated_at is not None and a.updated_at.day == 5
    for s in found:
        assert trail.catalog.namespaces(s.name) == [s]
    assert trail.catalog.namespaces("warehouse://b") == [] and trail.catalog.namespaces("nowhere") == []


def test_marquez_namespaces_and_home_page_answer_from_the_namespace_rows(tmp_path: Path) -> None:
    with datatrail.init(tmp_path) as trail:
        fill(trail)
        listed = as_listed(trail)
        uri = trail.location.uri
    expected = [
        {
            "name": s.name,
            "createdAt": s.created_at.isoformat() if s.created_at else None,
            "updatedAt": s.updated_at.isoformat() if s.updated_at else None,
            "ownerName": "anonymous",
            "description": None,
            "isHidden": False,
            "datasets": s.datasets,
            "jobs": s.jobs,
        }
        for s in listed
    ]
    with TestClient(create_app(uri)) as client:
        assert client.get("/api/v1/namespaces").json() == {"namespaces": expected, "totalCount": 4}
        assert client.get("/api/v1/namespaces?limit=1&offset=1").json() == {
            "namespaces": expected[1:2],
            "totalCount": 4,
        }
        for one in expected:
            assert client.get(f"/api/v1/namespaces/{one['name'].replace('/', '%2F')}").json() == one
        gone = client.get("/api/v1/namespaces/warehouse:%2F%2Fb")
        assert gone.status_code == 404 and "no namespace 'warehouse://b'" in gone.json()["detail"]
        home = client.get("/").text
        assert "warehouse://a" in home and "warehouse://b" not in home


def at(day: str) -> datetime:
    """A time of January 2026 as the stores write and read it (UTC)."""
    return datetime.fromisoformat(f"2026-01-{day}T00:00:00+00:00")


def test_0011_indexes_a_store_of_0010(empty_uri: str) -> None:
    """A store of revision 0010 upgrades to the indexes, and lists its namespaces as before."""
    engine = create_engine(empty_uri)
    with engine.begin() as conn:
        upgrade(conn, "0010")
        conn.execute(
            text(
                "INSERT INTO namespaces (id, name, created_at, dataset_count, job_count) VALUES"
                " (1, 'a', :t, 2, 0), (2, 'etl', :t, 0, 1)"
            ),
            {"t": at("01")},
        )
        for i, (created, deleted) in enumerate([("02", None), ("04", None), ("01", "05"), ("09", "09")]):
            conn.execute(
                text(
                    "INSERT INTO datasets (id, namespace_id, name, kind, created_at, deleted_at)"
                    " VALUES (:i, 1, :n, 'dataset', :c, :gone)"
                ),
                {"i": i + 1, "n": f"d{i}", "c": at(created), "gone": deleted and at(deleted)},
            )
        conn.execute(
            text("INSERT INTO jobs (id, namespace_id, name, created_at) VALUES (1, 2, 'j', :t)"), {"t": at("03")}
        )
        upgrade(conn, "0011")
        indexes = {i["name"] for table in ("datasets", "jobs") for i in inspect(conn).get_indexes(table)}
    engine.dispose()
    assert {"ix_datasets_created", "ix_jobs_created"} <= indexes
    with datatrail.connect(empty_uri) as trail:
        found = trail.catalog.namespaces()
        assert found == as_listed(trail)
    assert [(s.name, s.datasets, s.jobs, s.created_at, s.updated_at) for s in found] == [
        ("a", 2, 0, at("02"), at("04")),
        ("etl", 0, 1, at("03"), at("03")),
    ]
