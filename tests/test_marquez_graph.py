"""Marquez's lineage graph (``GET /api/v1/lineage`` folded to datasets and jobs), read for the whole graph
at once, answers byte for byte what the per-node path answered: the connected walk resolving each reached
version on its own, and each dataset and job node filled by its own reads (``marquez_models.dataset`` of
``find_dataset``, ``marquez_models.job`` of ``find_job``, as ``GET …/datasets/{name}`` and ``GET
…/jobs/{name}`` shape them), for a reader of everything, of team-a only and of team-b only
(tests/security_scene.py), on SQLite and PostgreSQL; and audits the same reads."""

from __future__ import annotations

import contextlib
import copy
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

import datatrail
from datatrail.core.errors import DatatrailError, NotFound
from datatrail.core.limits import MAX_RESPONSE_DEPTH, bounded
from datatrail.core.model import Ref
from datatrail.core.results import LineageColumns, LineageNode, LineageResult
from datatrail.lineage import Graph
from datatrail.server import create_app
from datatrail.server import marquez_models as mq
from datatrail.server.marquez import _fold, fold_columns, to_marquez
from datatrail.server.marquez_models import run_state
from datatrail.server.routes import json_body
from datatrail.server.routes.lineage import _cut, encode
from datatrail.service import Trail
from tests.security_scene import Scene, build
from tests.test_paging import _audited, _head, event, vary

USERS = {"admin": "root", "viewer": "vera", "other_owner": "olga"}


def bounded_nest(levels: int) -> Any:
    """A dict nested ``levels`` deep."""
    value: Any = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def scene(request: pytest.FixtureRequest, tmp_path: Path) -> Scene:
    """The two teams, with tests/test_paging.py's varied datasets in team-a (schemas, tags, a classified
    column inherited along lineage, a dropped dataset, a symlink, a planned output)."""
    uri = request.getfixturevalue("pg_uri") if request.param == "postgres" else None
    built = build(tmp_path / "scene", uri)
    trail = datatrail.connect(built.uri)
    try:
        vary(trail, tmp_path / "files")
    finally:
        trail.close()
    return built


def _connected_one_by_one(trail: Trail, namespace: str, name: str, depth: int) -> Graph:
    """Marquez's connected graph of a dataset as it was walked before: one step at a time from the versions
    reached, each resolved on its own (``Catalog.lookup``)."""
    frontier = trail.catalog.dataset_versions(namespace, name)
    seen = {(v.namespace, v.name, v.number) for v in frontier}
    nodes: dict[str, LineageNode] = {}
    edges: set[tuple[str, str]] = set()
    for step in range(max(depth, 1)):
        if not frontier:
            break
        result = trail.catalog.versions_lineage(frontier, direction="both", depth=1 if depth else 0)
        for node_id, node in result.nodes.items():
            nodes.setdefault(node_id, LineageNode(node.id, node.type, node.depth + step, node.data))
        edges.update(result.edges)
        frontier = []
        for node in result.nodes.values():
            d = node.data
            if node.type != "version" or d.get("redacted"):
                continue
            key = (d["namespace"], d["name"], int(d["version"]))
            if key not in seen:
                seen.add(key)
                frontier.append(trail.catalog.lookup(Ref(d["namespace"], d["name"], str(d["version"]))))
    trail.catalog._note("dataset.lineage", str(Ref(namespace, name)))
    return Graph(f"dataset:{namespace}:{name}", "both", depth, nodes, tuple(sorted(edges)))


def _filled_one_by_one(trail: Trail, shaped: dict[str, Any]) -> dict[str, Any]:
    """Each dataset and job node filled by its own reads, as ``GET …/datasets/{name}`` and ``GET
    …/jobs/{name}`` answer (a node whose dataset or job is not listed keeps what the walk gave)."""
    for node in shaped["graph"]:
        data = node["data"]
        if data.get("redacted") or node["type"] not in ("DATASET", "JOB"):
            continue
        try:
            if node["type"] == "DATASET":
                found = mq.find_dataset(trail, data["namespace"], data["name"])
                node["data"] = {**mq.dataset(trail, found), "versions": data.get("versions", [])}
            else:
                job = mq.find_job(trail, data["namespace"], data["name"])
                node["data"] = {**mq.job(trail, job), "runs": data.get("runs", [])}
        except NotFound:
            continue
    return shaped


def _one_by_one(trail: Trail, kind: str, namespace: str, name: str, direction: str | None) -> bytes:
    """The route's answer, the per-node way; NotFound where the route answers 404 (it looks the start up
    first, as here)."""
    if kind == "dataset":
        trail.catalog.lookup(Ref(namespace, name))
    elif name not in {j.name for j in trail.jobs(namespace)}:
        raise NotFound(name)
    if kind == "dataset" and direction is None:
        graph = _connected_one_by_one(trail, namespace, name, 5)
    elif kind == "dataset":
        graph = trail.dataset_lineage(namespace, name, direction=direction, depth=5)  # type: ignore[arg-type]
    elif direction is None:
        graph = trail.catalog.connected_lineage(namespace, name, kind="job", depth=5, runs=1000)
    else:
        graph = trail.job_lineage(namespace, name, direction=direction, depth=5)  # type: ignore[arg-type]
    return encode(_filled_one_by_one(trail, to_marquez(graph, fold=True)))


STARTS = [
    ("dataset", "team-a", "a/report"),  # reaches team-b's b/secret: a placeholder for team-a's reader
    ("dataset", "team-a", "a/reported"),
    ("dataset", "team-a", "a/raw"),
    ("job", "team-a", "mix"),
    ("dataset", "team-b", "b/secret"),
]


@pytest.mark.parametrize("role", list(USERS))
def test_marquez_graph_is_each_node_read_alone(scene: Scene, role: str) -> None:
    user = USERS[role]
    headers = {"Authorization": f"Bearer {scene.tokens[role]}"}
    shared = datatrail.connect(scene.uri)
    try:
        principal = shared.security.authenticate(scene.tokens[role])
        assert principal is not None and principal.name == user
        with TestClient(create_app(scene.uri)) as client:
            compared = 0
            for kind, ns, name in STARTS:
                for direction in (None, "both", "upstream", "downstream"):
                    url = f"/api/v1/lineage?nodeId={quote(f'{kind}:{ns}:{name}')}&depth=5"
                    url += f"&direction={direction}" if direction else ""
                    before = _head(scene.uri)
                    answer = client.get(url, headers=headers)
                    route_reads = _audited(scene.uri, user, before)
                    before = _head(scene.uri)
                    try:
                        expected = _one_by_one(shared.scoped(principal, "testclient"), kind, ns, name, direction)
                    except NotFound:
                        assert answer.status_code == 404, (url, answer.text)
                        continue
                    assert answer.status_code == 200, (url, answer.text)
                    assert answer.content == expected, url
                    assert route_reads == _audited(scene.uri, user, before), url
                    graph = answer.json()["graph"]
                    compared += sum(1 for n in graph if n["type"] in ("DATASET", "JOB") and "id" in n["data"])
            # The graphs held filled nodes of both kinds for every reader (team-b's owner: b/secret's).
            assert compared > 0
    finally:
        shared.close()


def test_marquez_graph_store_reads_equal_one_by_one(trail: Trail, workdir: Path) -> None:
    """The store reads behind it, on SQLite, PostgreSQL and through a server: ``jobs_by_name`` is ``jobs(ns,
    name=)`` of each, ``versions_by_number`` ``lookup`` of each, in the order asked, names no job or version
    has left out."""
    vary(trail, workdir / "files")
    jobs = [(j.namespace, j.name) for j in trail.jobs()]
    keys = [*reversed(jobs), ("team-a", "no-such-job"), ("nowhere", "mix")]
    assert trail.catalog.jobs_by_name(keys) == [j for k in keys for j in trail.jobs(k[0], name=k[1])]
    assert len(trail.catalog.jobs_by_name(keys)) == len(jobs) > 2
    versions = [
        (v.namespace, v.name, v.number)
        for d in trail.datasets()
        for v in trail.catalog.dataset_versions(d.namespace, d.name)
    ]
    wanted = [*reversed(versions), ("team-a", "a/raw", 99), ("nowhere", "a/raw", 1)]
    one_by_one = []
    for ns, name, number in wanted:
        with contextlib.suppress(NotFound):
            one_by_one.append(trail.catalog.lookup(Ref(ns, name, str(number))))
    assert trail.catalog.versions_by_number(wanted) == one_by_one
    assert len(one_by_one) == len(versions) > 3
    assert trail.catalog.versions_by_number([]) == [] and trail.catalog.jobs_by_name([]) == []


def test_run_counts_are_kept_by_ingest(scene: Scene) -> None:
    """``jobs.run_count`` (revision 0009) is what counting each job's runs answers, whatever arrives: new runs,
    the START and COMPLETE of one run, a repeated event, a batch with a bad event (rolled back alone) and
    runs written through ``trail.run``."""
    trail = datatrail.connect(scene.uri)
    try:
        start = {**event("team-a", "a/counted", job="counter"), "eventType": "START"}
        done = {**start, "eventType": "COMPLETE", "eventTime": "2026-01-01T00:05:00Z"}
        trail.ingest(start)
        trail.ingest(done)
        trail.ingest(done)  # a repeat: stored once
        other = event("team-a", "a/counted", job="counter")
        results = trail.ingest_many([event("team-a", "a/counted", job="counter"), {"eventType": "nonsense"}, other])
        assert [isinstance(r, DatatrailError) for r in results] == [False, True, False]
        with trail.run("counter", namespace="team-a") as run:
            run.input("team-a:a/counted@1")
        by_job = {(j.namespace, j.name): j.run_count for j in trail.jobs()}
        assert by_job[("team-a", "counter")] == 4
        engine = create_engine(scene.uri)
        with engine.connect() as conn:
            counted = conn.execute(
                text(
                    "SELECT n.name, j.name, count(r.pk) FROM jobs j JOIN namespaces n ON n.id = j.namespace_id"
                    " LEFT JOIN runs r ON r.job_id = j.id GROUP BY n.name, j.name"
                )
            ).all()
        engine.dispose()
        assert by_job == {(ns, name): count for ns, name, count in counted}
        assert [j.run_count for j in trail.catalog.jobs_by_name(list(by_job))] == list(by_job.values())
        page, _ = trail.catalog.job_page("team-a", limit=100)
        assert {(j.namespace, j.name): j.run_count for j in page} == {
            k: v for k, v in by_job.items() if k[0] == "team-a"
        }
    finally:
        trail.close()


def _standard(answer: Any) -> bytes:
    """What FastAPI answers for a route's dict: its encoder, then ``JSONResponse``, of the answer cut as
    ``routes.call`` cuts it."""
    return bytes(JSONResponse(jsonable_encoder(bounded(answer, MAX_RESPONSE_DEPTH))).body)


@pytest.mark.parametrize("role", list(USERS))
def test_jobs_page_is_fastapis_encoding(scene: Scene, role: str) -> None:
    """Marquez's jobs page, written by orjson where that writes what FastAPI's encoder writes, is byte for byte
    the standard encoding of the same page, pages of every size, for each reader; with a run's metrics that
    orjson writes otherwise (1e-05, an integer beyond 64 bits), the page takes the standard way."""
    trail = datatrail.connect(scene.uri)
    try:
        with trail.run("tiny", namespace="team-a", params={"deep": {"a": [1, {"b": 2}]}}) as run:
            run.input("team-a:a/raw@1")
            run.log_metric("small", 1e-05)
        with trail.run("huge", namespace="team-a") as run:
            run.log_metric("big", 2**70)
            run.log_metric("rate", 0.25)
    finally:
        trail.close()
    shared = datatrail.connect(scene.uri)
    try:
        principal = shared.security.authenticate(scene.tokens[role])
        reader = shared.scoped(principal, "testclient")
        headers = {"Authorization": f"Bearer {scene.tokens[role]}"}
        with TestClient(create_app(scene.uri)) as client:
            for ns in ("team-a", "team-b"):
                for limit, offset in ((1000, 0), (1, 0), (2, 1), (3, 100)):
                    answer = client.get(f"/api/v1/namespaces/{ns}/jobs?limit={limit}&offset={offset}", headers=headers)
                    assert answer.status_code == 200, answer.text
                    assert answer.headers["content-type"] == "application/json"
                    found, total = reader.catalog.job_page(ns, limit=limit, offset=offset)
                    expected = _standard({"jobs": mq.jobs(reader, found), "totalCount": total})
                    assert answer.content == expected, (ns, limit, offset)
            everyone = client.get("/api/v1/namespaces/team-a/jobs?limit=1000", headers=headers).json()["jobs"]
        if role != "other_owner":  # team-a's readers see the runs whose metrics take the standard way
            metrics = {j["name"]: j["latestRun"]["metrics"] for j in everyone if j["latestRun"]}
            assert metrics["tiny"] == {"small": 1e-05} and metrics["huge"] == {"big": 2**70, "rate": 0.25}
    finally:
        shared.close()


@pytest.mark.parametrize(
    "answer",
    [
        {"jobs": [{"x": 1.5, "n": None, "t": True, "s": "é\u2028\x7f", "i": -(2**63), "u": 2**64 - 1}]},
        {"m": 1e-05},
        {"m": 2**64},
        {"m": -(2**63) - 1},
        {"m": 1e16, "z": -0.0, "k": 0.0001},
        {"k": {1: "a", None: "b"}},
        {"t": (1, 2)},
        {"deep": bounded_nest(MAX_RESPONSE_DEPTH - 1)},
        {"deep": bounded_nest(MAX_RESPONSE_DEPTH + 5)},
        [1, [2, [3]]],
    ],
)
def test_json_body_is_the_standard_encoding(answer: Any) -> None:
    """``json_body``: orjson's bytes when they are the standard encoder's, the standard way otherwise (small
    floats, integers beyond 64 bits, keys that are not strings, tuples, an answer nested too deep to keep)."""
    assert json_body(answer) == _standard(answer)


def test_graph_cut_is_the_whole_answer_bounded(scene: Scene) -> None:
    """The folded graph is cut where producers' values sit, not by walking all of it: the same answer as
    ``bounded`` of the whole (what every other route does), for facets, a run's params and code nested just
    within the limit, just beyond it and far beyond, in a dataset's node and in a job's latest run (both
    where it is ``latestRun`` and, one level deeper, ``latestRuns[0]``)."""
    trail = datatrail.connect(scene.uri)
    try:
        base = mq.fill_graph(trail, to_marquez(trail.dataset_lineage("team-a", "a/report", depth=5), fold=True))
    finally:
        trail.close()
    kinds = {n["type"] for n in base["graph"] if "id" in n["data"]}
    assert kinds == {"DATASET", "JOB"}
    # The deepest that fits: {"graph": [{"data": {"facets": {"deep": …}}}]} holds it at level 6, a run's
    # params at 8 (latestRuns[0]).
    room = {"dataset facets": MAX_RESPONSE_DEPTH - 5, "job facets": MAX_RESPONSE_DEPTH - 5}
    room |= {"run params": MAX_RESPONSE_DEPTH - 7, "run code": MAX_RESPONSE_DEPTH - 7}
    for levels in (*range(MAX_RESPONSE_DEPTH - 8, MAX_RESPONSE_DEPTH - 3), MAX_RESPONSE_DEPTH + 9):
        for where in ("dataset facets", "job facets", "run params", "run code"):
            answer = copy.deepcopy(base)
            node = next(
                n
                for n in answer["graph"]
                if "id" in n["data"] and n["type"] == ("DATASET" if where.startswith("dataset") else "JOB")
            )
            if where.startswith("run"):
                run = node["data"]["latestRun"]
                assert run is not None and run is node["data"]["latestRuns"][0]
                run[where.split()[1]] = {"deep": bounded_nest(levels)}
            else:
                node["data"]["facets"] = {"deep": bounded_nest(levels)}
            expected = encode(bounded(copy.deepcopy(answer), MAX_RESPONSE_DEPTH))
            assert encode(_cut(answer)) == expected, (levels, where)
            assert (b"levels: cut" in expected) == (levels > room[where]), (levels, where)


def test_version_ids_are_uuid5() -> None:
    """Marquez's dataset and job version ids, written without building ``uuid.UUID`` objects, are the uuid5
    they always were (clients keep them)."""
    names = ["", "dataset\x1fperf\x1fd1\x1f1", "ç:\u2028/ü\U0001f600", "x" * 2000]
    names += [f"n{i}\x1e{i * 7919}" for i in range(500)]
    for name in names:
        assert mq.uuid5_text(name) == str(uuid.uuid5(mq.VERSION_NAMESPACE, name)), name
    assert mq.version_uuid("warehouse", "public.orders", 2) == str(
        uuid.uuid5(mq.VERSION_NAMESPACE, "dataset\x1fwarehouse\x1fpublic.orders\x1f2")
    )


def _to_marquez_before(graph: Graph, *, fold: bool) -> dict[str, Any]:
    """``to_marquez`` as it was before round eight folded each node once (the reference)."""
    nodes: dict[str, dict[str, Any]] = {}
    keys: dict[str, str] = {}
    for node in graph.nodes.values():
        nid, kind, data = _fold(node, fold)
        keys[node.id] = nid
        entry = nodes.setdefault(nid, {"id": nid, "type": kind, "data": data, "inEdges": [], "outEdges": []})
        if node.data.get("redacted"):
            continue
        if fold and node.type == "version":
            entry["data"].setdefault("versions", []).append(node.data["version"])
        elif fold:
            entry["data"].setdefault("runs", []).append({"id": node.data["id"], "state": run_state(node.data["state"])})
    edges = sorted({(keys[s], keys[t]) for s, t in graph.edges if s in keys and t in keys})
    for origin, destination in edges:
        if origin == destination:
            continue
        edge = {"origin": origin, "destination": destination}
        nodes[origin]["outEdges"].append(edge)
        nodes[destination]["inEdges"].append(edge)
    for entry in nodes.values():
        data = entry["data"]
        if "versions" in data:
            data["versions"].sort()
        if "runs" in data:
            data["runs"].sort(key=lambda r: r["id"])
    return {"graph": [nodes[k] for k in sorted(nodes)]}


@pytest.mark.parametrize("role", list(USERS))
def test_folding_is_what_it_was(scene: Scene, role: str) -> None:
    """``to_marquez`` folds each node once: the same answer as before, folded or not, with placeholders of
    hidden nodes (team-a's and team-b's readers), for datasets', jobs' and connected graphs."""
    shared = datatrail.connect(scene.uri)
    try:
        reader = shared.scoped(shared.security.authenticate(scene.tokens[role]), "testclient")
        graphs = []
        for kind, ns, name in STARTS:
            with contextlib.suppress(NotFound):
                if kind == "dataset":
                    graphs.append(reader.catalog.connected_lineage(ns, name, depth=5))
                    graphs += [reader.dataset_lineage(ns, name, direction=d, depth=5) for d in ("both", "upstream")]
                else:
                    graphs.append(reader.catalog.connected_lineage(ns, name, kind="job", depth=5))
                    graphs.append(reader.job_lineage(ns, name, direction="both", depth=5))
        assert len(graphs) > 4
        redacted = 0
        for graph in graphs:
            for fold in (True, False):
                assert encode(to_marquez(graph, fold=fold)) == encode(_to_marquez_before(graph, fold=fold))
            redacted += sum(1 for n in graph.nodes.values() if n.data.get("redacted"))
            # The route's fold from columns (a dataset's graph; any graph's columns fold alike).
            columns = LineageColumns.of(LineageResult(graph.nodes, graph.edges))
            assert encode(fold_columns(columns)) == encode(_to_marquez_before(graph, fold=True))
        assert (redacted > 0) == (role != "admin")
        for kind, ns, name in STARTS:
            for direction in ("both", "upstream", "downstream"):
                with contextlib.suppress(NotFound):
                    if kind == "dataset":
                        graph = reader.dataset_lineage(ns, name, direction=direction, depth=5)  # type: ignore[arg-type]
                        walked = reader.dataset_lineage_columns(ns, name, selector=None, direction=direction, depth=5)  # type: ignore[arg-type]
                        assert encode(fold_columns(walked)) == encode(_to_marquez_before(graph, fold=True))
    finally:
        shared.close()
