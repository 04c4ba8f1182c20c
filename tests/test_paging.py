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
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect

import datatrail
from datatrail.core.model import Ref
from datatrail.core.patterns import matches
from datatrail.core.results import DatasetDetails
from datatrail.server import create_app
from datatrail.server.routes import decode_cursor, encode_cursor
from tests.httpserver import Server, running
from tests.security_scene import Scene, build

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
            # By name: ix_datasets_created (0011) answers a count of the same rows as well.
            "ix_datasets_listed": (
                "SELECT name FROM datasets WHERE namespace_id = 1 AND deleted_at IS NULL ORDER BY name"
            ),
        }
        for index, query in plans.items():
            plan = "\n".join(str(r[0]) for r in conn.execute(f"EXPLAIN {query}").fetchall())
            assert index in plan, plan


# ---------------------------------------------------------------- a page of full datasets, read at once


def _facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets/x.json", **fields}


def vary(trail: datatrail.Trail, folder: Path, ns: str = "team-a") -> None:
    """Datasets of ``ns`` with every kind of fact a Marquez Dataset shows: a classified column and datasets
    inheriting it (by column lineage and by name), schema facets with column descriptions, tags, a source
    and documentation, several versions, a dataset dropped (hidden from listings), a symlink, a dataset
    only ever read (an observed version: no schema, the profile read) and one only planned (no version)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "raw.csv").write_text("email,score\nann@x.org,3\nbob@y.org,5\n")
    raw = trail.add(folder / "raw.csv", name="a/raw", namespace=ns)
    trail.classify(raw, "email", "pii")
    (folder / "raw.csv").write_text("email,score\nann@x.org,3\n")
    trail.add(folder / "raw.csv", name="a/raw", namespace=ns)  # a second version
    schema = _facet(fields=[{"name": "email", "type": "VARCHAR", "description": "who"}, {"name": "n", "type": "INT"}])
    source = _facet(name="warehouse", uri="postgres://db:5432")
    tags = _facet(tags=[{"key": "gold", "value": "true"}, {"key": "owner", "value": "ann"}])
    doc = _facet(description="the reported table")
    lineage = _facet(fields={"email": {"inputFields": [{"namespace": ns, "name": "a/raw", "field": "email"}]}})
    reported = event(ns, "a/reported", ("a/raw", "a/never-written"))
    facets = {"schema": schema, "dataSource": source, "tags": tags, "documentation": doc, "columnLineage": lineage}
    reported["outputs"][0]["facets"] = facets
    trail.ingest(reported)
    named = event(ns, "a/by-name", ("a/raw",))  # no column lineage: inherits by column name
    named["outputs"][0]["facets"] = {"schema": _facet(fields=[{"name": "email", "type": "TEXT"}])}
    trail.ingest(named)
    for i in range(3):
        trail.ingest(event(ns, "a/many", job=f"many {i}"))
    dropped = event(ns, "a/dropped")
    trail.ingest(dropped)
    drop = event(ns, "a/dropped")
    drop["outputs"][0]["facets"] = {"lifecycleStateChange": _facet(lifecycleStateChange="DROP")}
    trail.ingest(drop)
    linked = event(ns, "a/path")
    linked["outputs"][0]["facets"] = {
        "symlinks": _facet(identifiers=[{"namespace": ns, "name": "a/table", "type": "TABLE"}])
    }
    trail.ingest(linked)
    planned = event(ns, "a/planned")
    planned["eventType"] = "START"  # a planned output: a dataset without a version
    trail.ingest(planned)
    secret = event("team-b", "b/secret", ("a/reported",))
    trail.ingest(secret)
    child = event(ns, "a/child", job="child")  # its parent run is team-b's
    parent = {"run": {"runId": secret["run"]["runId"]}, "job": {"namespace": "team-b", "name": "job"}}
    child["run"]["facets"] = {"parent": _facet(**parent)}
    trail.ingest(child)
    own = event(ns, "a/child2", job="child2")  # its parent run is in ns
    own["run"]["facets"] = {
        "parent": _facet(run={"runId": child["run"]["runId"]}, job={"namespace": ns, "name": "child"})
    }
    trail.ingest(own)


def _one_by_one(trail: datatrail.Trail, page: list[datatrail.Dataset]) -> list[DatasetDetails]:
    """What the page's details were before: each dataset's reads, one at a time."""
    out = []
    for d in page:
        if d.latest is None:
            out.append(DatasetDetails(d, None, {}, {}, None))
            continue
        latest = trail.catalog.lookup(Ref(d.namespace, d.name, str(d.latest)))
        described = trail.catalog.describe(latest)
        profile = None if described.get("schema") else trail.catalog.profile(latest)
        out.append(DatasetDetails(d, latest, described, trail.catalog.classifications(latest), profile))
    return out


def test_sources_and_tags_read_pages_as_each_dataset_alone(
    sqlite_trail: datatrail.Trail, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Marquez's sources and tags read every dataset a page at a time (pages of 2 here, across two
    namespaces): the same answers as reading each dataset's latest version alone."""
    from datatrail.core.times import iso
    from datatrail.server import marquez_models as mq
    from datatrail.server.routes import marquez as routes

    trail = sqlite_trail
    vary(trail, workdir / "a")
    vary(trail, workdir / "b", ns="team-b")
    monkeypatch.setattr(routes, "_EVERY_PAGE", 2)
    sources: dict[str, dict[str, Any]] = {}
    tags: set[str] = set()
    for j in trail.jobs():
        tags.update(mq.job_tags(j))
    for d in trail.datasets():
        version = None if d.latest is None else trail.catalog.lookup(Ref(d.namespace, d.name, str(d.latest)))
        facts = mq.Facts(trail, version)
        tags.update(facts.tags, *(f["tags"] for f in facts.fields))
        created, entry = iso(d.created_at), sources.get(facts.source_name)
        if entry is None or (created and (entry["createdAt"] or created) > created):
            sources[facts.source_name] = mq.source_of(facts.source_name, facts.source_uri, created)
    assert len(list(routes._every_dataset(trail))) == len(trail.datasets()) >= 10
    assert routes._sources(trail) == [sources[k] for k in sorted(sources)]
    page = routes.Page(limit=100, offset=0)
    assert routes._tags(trail, page)["tags"] == [{"name": n, "description": None} for n in sorted(tags)]
    assert {"pii"} <= tags


def test_a_page_of_details_is_what_each_dataset_reads_alone(trail: datatrail.Trail, workdir: Path) -> None:
    vary(trail, workdir / "files")
    listed = trail.datasets("team-a")
    assert {"a/raw", "a/reported", "a/by-name", "a/never-written"} <= {d.name for d in listed}
    assert "a/dropped" not in {d.name for d in listed}
    for limit, offset, after in ((100, 0, None), (2, 1, None), (3, 0, "a/many"), (1, 0, "a/raw"), (5, 50, None)):
        page, total = trail.catalog.dataset_page("team-a", limit=limit, offset=offset, after=after)
        details, counted = trail.catalog.dataset_page_details("team-a", limit=limit, offset=offset, after=after)
        alone = _one_by_one(trail, page)
        if trail.uri.startswith("http"):
            # The HTTP store's own classifications() reads the labels off the profile (none for data that
            # only events reported); the page carries the server's, checked below against what they are.
            alone = [replace(b, classifications=a.classifications) for a, b in zip(details, alone, strict=True)]
        assert (details, counted) == (alone, total)
    whole, _ = trail.catalog.dataset_page_details("team-a", limit=100)
    by_name = {x.dataset.name: x for x in whole}
    assert by_name["a/raw"].classifications == {"email": ["pii"]}
    assert by_name["a/reported"].classifications == {"email": ["pii"]}  # along column lineage
    assert by_name["a/by-name"].classifications == {"email": ["pii"]}  # by column name
    assert by_name["a/reported"].described["schema"] and by_name["a/reported"].profile is None
    assert by_name["a/never-written"].latest is not None and by_name["a/never-written"].latest.digest is None
    assert by_name["a/planned"].latest is None
    # By name (a lineage graph's datasets): the same details, in the order asked; unlisted names left out.
    keys = [("team-a", "nope"), ("team-a", "a/dropped"), *((x.dataset.namespace, x.dataset.name) for x in whole)]
    assert trail.catalog.dataset_details(list(reversed(keys))) == list(reversed(whole))
    assert trail.catalog.dataset_details([]) == []
    # Runs by id: each as get_run reads it, in the order asked, a missing one left out.
    ids = [j.latest_run for j in trail.jobs() if j.latest_run is not None]
    assert len(ids) >= 7
    missing = str(uuid.uuid4())
    assert trail.catalog.runs_by_id([*reversed(ids), missing, ids[0]]) == [
        trail.catalog.get_run(i) for i in [*reversed(ids), ids[0]]
    ]
    assert trail.catalog.runs_by_id([]) == []
    # A page of jobs: a slice of the listing.
    listed_jobs = trail.jobs("team-a")
    for limit, offset in ((100, 0), (2, 1), (3, 4), (1, 50)):
        assert trail.catalog.job_page("team-a", limit=limit, offset=offset) == (
            listed_jobs[offset : offset + limit],
            len(listed_jobs),
        )
    assert trail.catalog.job_page("nobody", limit=10) == ([], 0)
    assert trail.catalog.dataset_page_details("nobody", limit=10) == ([], 0)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def scene(request: pytest.FixtureRequest, tmp_path: Path) -> Scene:
    """The security tests' two teams (tests/security_scene.py), with :func:`vary`'s datasets in team-a."""
    uri = request.getfixturevalue("pg_uri") if request.param == "postgres" else None
    built = build(tmp_path / "scene", uri)
    trail = datatrail.connect(built.uri)
    try:
        vary(trail, tmp_path / "files")
    finally:
        trail.close()
    return built


def _audited(uri: str, user: str, before: int) -> list[tuple[str, str | None, str]]:
    trail = datatrail.connect(uri)
    try:
        found = trail.audit_entries(user=user, limit=10_000)
    finally:
        trail.close()
    return sorted((e.action, e.target, e.outcome) for e in found if e.seq > before)


def _head(uri: str) -> int:
    trail = datatrail.connect(uri)
    try:
        head = trail.audit_checkpoint()
    finally:
        trail.close()
    return head.seq if head is not None else 0


@pytest.mark.parametrize("role", ["admin", "viewer", "other_owner"])
def test_marquez_list_pages_are_each_dataset_shaped_alone(scene: Scene, role: str) -> None:
    """Marquez's list page, read in a few statements for the page, answers byte for byte what each
    dataset's own ``GET …/datasets/{name}`` (shaped one dataset at a time) answers, for a reader of
    everything, of team-a only and of team-b only, at every offset and cursor, and audits the same reads."""
    user = {"admin": "root", "viewer": "vera", "other_owner": "olga"}[role]
    headers = {"Authorization": f"Bearer {scene.tokens[role]}"}
    with TestClient(create_app(scene.uri)) as client:
        for ns in ("team-a", "team-b"):
            before = _head(scene.uri)
            whole = client.get(f"/api/v1/namespaces/{ns}/datasets?limit=1000", headers=headers)
            assert whole.status_code == 200, whole.text
            listed = whole.json()["datasets"]
            page_reads = _audited(scene.uri, user, before)
            visible = role == "admin" or (role == "viewer") == (ns == "team-a")
            assert bool(listed) == visible and whole.json()["totalCount"] == len(listed)
            before = _head(scene.uri)
            alone = []
            for d in listed:
                one = client.get(
                    f"/api/v1/namespaces/{quote(ns, safe='')}/datasets/{quote(d['name'], safe='')}", headers=headers
                )
                assert one.status_code == 200, one.text
                alone.append(one.content)
            assert [json.dumps(d, separators=(",", ":")).encode() for d in listed] == alone
            assert page_reads == _audited(scene.uri, user, before)  # the same reads, audited once each
            first = (
                ("dataset.read", f"{ns}:{listed[0]['name']}@{listed[0]['latestVersion']}", "allowed")
                if listed
                else None
            )
            assert not visible or first in page_reads
            if ns == "team-a":
                assert {"a/reported", "a/raw", "a/planned"} <= {d["name"] for d in listed} or not visible
            # Smaller pages, by offset and by cursor, are slices of the whole.
            for limit in (1, 3):
                for offset in (0, 2):
                    part = client.get(
                        f"/api/v1/namespaces/{ns}/datasets?limit={limit}&offset={offset}", headers=headers
                    )
                    assert part.json()["datasets"] == listed[offset : offset + limit]
            cursor, walked = None, []
            while True:
                url = f"/api/v1/namespaces/{ns}/datasets?limit=2" + (f"&cursor={quote(cursor)}" if cursor else "")
                answer = client.get(url, headers=headers).json()
                walked += answer["datasets"]
                cursor = answer["nextCursor"]
                if cursor is None:
                    break
            assert walked == listed
            trail = datatrail.connect(scene.uri)
            try:
                assert trail.verify_audit().ok  # the page's entries, written at once, chain as one by one
            finally:
                trail.close()
            # The jobs page: each job as its own GET …/jobs/{name} answers it (its latest run and that
            # run's parent read once for the page); one job's parent run is in team-b.
            jobs = client.get(f"/api/v1/namespaces/{ns}/jobs?limit=1000", headers=headers)
            assert jobs.status_code == 200, jobs.text
            shown = jobs.json()["jobs"]
            assert bool(shown) == visible
            each = []
            for j in shown:
                one = client.get(
                    f"/api/v1/namespaces/{quote(ns, safe='')}/jobs/{quote(j['name'], safe='')}", headers=headers
                )
                assert one.status_code == 200, one.text
                each.append(one.content)
            assert [json.dumps(j, separators=(",", ":")).encode() for j in shown] == each
            for limit, offset in ((1, 0), (2, 1), (3, 5)):
                part = client.get(f"/api/v1/namespaces/{ns}/jobs?limit={limit}&offset={offset}", headers=headers).json()
                assert part == {"jobs": shown[offset : offset + limit], "totalCount": len(shown)}
            if ns == "team-a" and visible:
                # Marquez's lineage graph: each dataset and job node's data is its own GET's answer.
                for start in ("a/reported", "a/report"):
                    url = f"/api/v1/lineage?nodeId={quote(f'dataset:{ns}:{start}')}&direction=both&depth=5"
                    graph = client.get(url, headers=headers).json()["graph"]
                    kinds = {"DATASET": ("datasets", "versions"), "JOB": ("jobs", "runs")}
                    filled = [n for n in graph if n["type"] in kinds and not n["data"].get("redacted")]
                    assert {n["type"] for n in filled} == set(kinds)
                    for n in filled:
                        path, extra = kinds[n["type"]]
                        data = n["data"]
                        seg = f"{quote(data['namespace'], safe='')}/{path}/{quote(data['name'], safe='')}"
                        assert {k: v for k, v in data.items() if k != extra} == client.get(
                            f"/api/v1/namespaces/{seg}", headers=headers
                        ).json()
                parents = {j["name"]: j["parentJobName"] for j in shown}
                assert parents["child2"] == "child"
                assert parents["child"] == ("job" if role == "admin" else None)  # team-b's: hidden from vera
