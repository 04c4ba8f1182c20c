"""Listings the database pages (issue 22, item 5): a namespace's datasets by LIMIT/OFFSET and by keyset
(``cursor``), one dataset or job by name, search's prefiltered matches, and the indexes behind them.

Each store read is checked against the full listing it pages or filters, over every store (SQLite,
PostgreSQL, a server); the keyset pages through a real ``datatrail serve`` while datasets are added.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from sqlalchemy import create_engine, inspect

import datatrail
from datatrail.core.patterns import matches
from datatrail.server.routes import decode_cursor, encode_cursor
from tests.httpserver import Server, running

PRODUCER = "https://example.com/tests"
NAMES = ["b", "a", "c_d", "cxd", "Straße", "STRASSE", "d9999", "d19999", "x\\y", "ünï", "e%f", "z"]


def event(namespace: str, output: str, inputs: tuple[str, ...] = (), job: str = "job") -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": "2026-01-01T00:00:00Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": namespace, "name": job, "facets": {}},
        "inputs": [{"namespace": namespace, "name": n} for n in inputs],
        "outputs": [{"namespace": namespace, "name": output}],
    }


@pytest.fixture
def filled(trail: datatrail.Trail) -> datatrail.Trail:
    for i, name in enumerate(NAMES):
        trail.ingest(event("ns", name, job=f"job {name}"))
        if i % 3 == 0:
            trail.ingest(event("ns", name, job=f"job {name}"))  # a second version
    trail.ingest(event("other", "a"))
    trail.ingest(event("ssh-ns", "plain"))
    return trail


# ---------------------------------------------------------------- the store reads, against the full listing


def test_dataset_page_is_a_slice_of_the_listing(filled: datatrail.Trail) -> None:
    listed = filled.datasets("ns")
    assert len(listed) == len(NAMES)
    for limit in (1, 5, 100):
        for offset in (0, 3, 11, 12, 50):
            page, total = filled.catalog.dataset_page("ns", limit=limit, offset=offset)
            assert (page, total) == (listed[offset : offset + limit], len(listed))
    for i, d in enumerate(listed):
        page, total = filled.catalog.dataset_page("ns", limit=3, after=d.name)
        assert (page, total) == (listed[i + 1 : i + 4], len(listed))
        page, _ = filled.catalog.dataset_page("ns", limit=2, offset=1, after=d.name)
        assert page == listed[i + 2 : i + 4]
    assert filled.catalog.dataset_page("nobody", limit=10) == ([], 0)


def test_one_dataset_or_job_by_name(filled: datatrail.Trail) -> None:
    everything = filled.datasets()
    for d in everything:
        assert filled.datasets(d.namespace, name=d.name) == [d]
    assert filled.datasets("ns", name="nope") == []
    assert filled.datasets(name="a") == [d for d in everything if d.name == "a"]
    jobs = filled.jobs()
    for j in jobs:
        assert filled.jobs(j.namespace, name=j.name) == [j]
    assert filled.jobs("ns", name="nope") == []


@pytest.mark.parametrize("q", ["d9999", "a", "ss", "SS", "ß", "c_d", "c%d", "x\\y", "e%f", "NS", "sh-", "ü", "_", "%"])
def test_matching_datasets_and_jobs_are_those_the_pattern_matches(filled: datatrail.Trail, q: str) -> None:
    datasets, jobs = filled.datasets(), filled.jobs()
    assert filled.datasets(match=q) == [d for d in datasets if matches(q, d.name) or matches(q, d.namespace)]
    assert filled.jobs(match=q) == [j for j in jobs if matches(q, j.name) or matches(q, j.namespace)]
    in_ns = [d for d in datasets if d.namespace == "ns" and (matches(q, d.name) or matches(q, d.namespace))]
    assert filled.datasets("ns", match=q) == in_ns


def test_latest_run_of_each_job_is_the_last_started(trail: datatrail.Trail) -> None:
    ids = []
    for hour in (3, 1, 2):
        e = event("ns", "out", job="j")
        e["eventTime"] = f"2026-01-01T0{hour}:00:00Z"
        e["eventType"] = "START"
        trail.ingest(e)
        ids.append(e["run"]["runId"])
    (job,) = trail.jobs("ns")
    assert (job.run_count, job.latest_run) == (3, ids[0])


# ---------------------------------------------------------------- keyset pages through a real server


def _get(srv: Server, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(srv.uri + path, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _post(srv: Server, events: list[dict[str, Any]]) -> None:
    body = json.dumps(events).encode()
    request = urllib.request.Request(
        srv.uri + "/api/v1/lineage/batch", body, {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        assert r.status == 201


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    store = request.getfixturevalue("pg_uri") if request.param == "postgres" else None
    with running(tmp_path / "srv", store=store) as srv:
        yield srv


def test_keyset_pages_neither_skip_nor_repeat_while_datasets_are_added(server: Server) -> None:
    _post(server, [event("perf", f"d{i:03d}") for i in range(0, 100, 2)])  # d000, d002, … d098
    first = {f"d{i:03d}" for i in range(0, 100, 2)}
    path = "/api/v1/namespaces/perf/datasets?limit=7"
    status, page = _get(server, path)
    assert status == 200 and page["totalCount"] == 50
    seen = [d["name"] for d in page["datasets"]]
    added = 0
    while page["nextCursor"] is not None:
        # Others write meanwhile: before the page reached (d001…), and after it (d1xx).
        _post(server, [event("perf", f"d{added * 2 + 1:03d}"), event("perf", f"d1{added:02d}")])
        added += 1
        status, page = _get(server, f"{path}&cursor={quote(page['nextCursor'])}")
        assert status == 200
        seen += [d["name"] for d in page["datasets"]]
    assert len(seen) == len(set(seen))  # nothing twice
    assert first <= set(seen)  # nothing there at the start was skipped
    assert seen == sorted(seen)  # in the listing's order
    assert page["totalCount"] == 50 + 2 * added
    # Marquez's offset pages are the same slices of the listing as before.
    status, whole = _get(server, "/api/v1/namespaces/perf/datasets?limit=1000")
    names = [d["name"] for d in whole["datasets"]]
    status, mid = _get(server, "/api/v1/namespaces/perf/datasets?limit=10&offset=40")
    assert [d["name"] for d in mid["datasets"]] == names[40:50] and mid["totalCount"] == len(names)
    assert whole["nextCursor"] is None


@pytest.mark.parametrize("cursor", ["nope", "WyJrMSJd", encode_cursor("d1")[:-2] + "!!", quote('["k1", 3]')])
def test_a_bad_cursor_is_a_one_line_400(tmp_path: Path, cursor: str) -> None:
    with running(tmp_path / "srv") as srv:
        _post(srv, [event("perf", "d1")])
        status, answer = _get(srv, f"/api/v1/namespaces/perf/datasets?cursor={quote(cursor)}")
    assert status == 400
    message = json.dumps(answer)
    assert "invalid cursor" in message and "nextCursor" in message and "\\n" not in message
    assert "Traceback" not in message


def test_cursor_round_trip() -> None:
    for name in ("d1", "raw/penguins", "ü ß", "x" * 1000, ""):
        assert decode_cursor(encode_cursor(name)) == name


# ---------------------------------------------------------------- the indexes (migration 0008)


def _indexes(uri: str) -> set[str]:
    engine = create_engine(uri.replace("postgresql://", "postgresql+psycopg://"))
    try:
        found = inspect(engine)
        return {i["name"] for table in ("datasets", "jobs", "audit") for i in found.get_indexes(table) if i["name"]}
    finally:
        engine.dispose()


def test_migration_creates_the_listing_index_on_sqlite(tmp_path: Path) -> None:
    datatrail.init(tmp_path).close()
    names = _indexes(f"sqlite:///{tmp_path / '.datatrail' / 'trail.db'}")
    assert "ix_datasets_listed" in names
    assert not {n for n in names if n.endswith("_trgm") or n.endswith("_wide")}  # PostgreSQL's only


@pytest.mark.postgres
def test_migration_creates_the_trigram_indexes_on_postgres(pg_uri: str) -> None:
    assert {
        "ix_datasets_listed",
        "ix_datasets_name_trgm",
        "ix_jobs_name_trgm",
        "ix_audit_target_trgm",
        "ix_datasets_name_wide",
        "ix_jobs_name_wide",
    } <= _indexes(pg_uri)
    with psycopg.connect(pg_uri) as conn:
        conn.execute("SET enable_seqscan = off")  # a tiny table: the planner would rather scan; can it use them?
        plans = {
            "ix_datasets_name_trgm": "SELECT id FROM datasets WHERE name ILIKE '%d9999%'",
            "ix_audit_target_trgm": "SELECT seq FROM audit WHERE target LIKE '%d9999%'",
            "ix_datasets_listed": "SELECT count(*) FROM datasets WHERE namespace_id = 1 AND deleted_at IS NULL",
        }
        for index, query in plans.items():
            plan = "\n".join(str(r[0]) for r in conn.execute(f"EXPLAIN {query}").fetchall())
            assert index in plan, plan
