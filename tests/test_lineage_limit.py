"""Every lineage graph is bounded (``DATATRAIL_LINEAGE_MAX_NODES``): a walk stops at the level that takes
it past the limit and answers GraphTooLarge (413 over HTTP, exit 2 in the CLI) saying which depth fits;
under the limit every answer is what it was. On SQLite and PostgreSQL, in process, through a real
``datatrail serve`` (the Marquez routes, the column lineage route, the UI, the HTTP store) and the CLI."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.core.errors import GraphTooLarge, InvalidInput
from datatrail.core.limits import GRAPH_LIMIT_ENV, MAX_GRAPH_NODES, graph_limit
from datatrail.store import check_settings
from datatrail.store.connected import connected_steps
from datatrail.store.sql import lineage
from tests import httpserver
from tests.interop_pipeline import COLUMN_LINEAGE_URL

PRODUCER = "https://github.com/datatrail/tests"
NS = "lim"
CHAIN = 8
LIMIT = 6
# d8@1's upstream holds 1 + 2k nodes at depth k (a version and its producing run per step): 5 at depth 2,
# 7 at depth 3. Its columns: 1 + k (d8.x <- d7.x <- … <- d0.x).
TOO_DEEP = f"has more than {LIMIT} nodes at depth 20; lower depth to"


def _event(i: int) -> dict[str, Any]:
    """Run j<i>: reads d<i-1> (none for i = 0), writes d<i>, whose column x is computed from d<i-1>'s x."""
    output: dict[str, Any] = {
        "namespace": NS,
        "name": f"d{i}",
        "facets": {
            "schema": {
                "_producer": PRODUCER,
                "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json",
                "fields": [{"name": "x", "type": "BIGINT"}],
            }
        },
    }
    if i:
        output["facets"]["columnLineage"] = {
            "_producer": PRODUCER,
            "_schemaURL": COLUMN_LINEAGE_URL,
            "fields": {"x": {"inputFields": [{"namespace": NS, "name": f"d{i - 1}", "field": "x"}]}},
        }
    return {
        "eventType": "COMPLETE",
        "eventTime": f"2026-01-01T00:00:{i:02d}Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.UUID(int=i + 1, version=4)), "facets": {}},
        "job": {"namespace": NS, "name": f"j{i}", "facets": {}},
        "inputs": [{"namespace": NS, "name": f"d{i - 1}"}] if i else [],
        "outputs": [output],
    }


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def chain(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store holding the chain d0 -> j1 -> d1 -> … -> j8 -> d8 (and j0 writing d0); its URI."""
    uri = request.getfixturevalue("pg_uri") if request.param == "postgres" else f"sqlite:///{tmp_path / 'trail.db'}"
    trail = datatrail.init(tmp_path / "work", uri=uri)
    try:
        for i in range(CHAIN + 1):
            trail.ingest(_event(i))
    finally:
        trail.close()
    return uri


def _stored(uri: str) -> list[Any]:
    trail = datatrail.connect(uri)
    try:
        return [trail.catalog.events(limit=1000), [(d.namespace, d.name, d.latest) for d in trail.datasets()]]
    finally:
        trail.close()


def test_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GRAPH_LIMIT_ENV, raising=False)
    assert graph_limit() == MAX_GRAPH_NODES
    monkeypatch.setenv(GRAPH_LIMIT_ENV, " 12 ")
    assert graph_limit() == 12
    for bad in ("0", "-3", "many", "1e5"):
        monkeypatch.setenv(GRAPH_LIMIT_ENV, bad)
        with pytest.raises(InvalidInput, match=f"invalid {GRAPH_LIMIT_ENV}="):
            graph_limit()
        with pytest.raises(InvalidInput, match=f"invalid {GRAPH_LIMIT_ENV}="):
            check_settings()  # `datatrail serve` refuses it before starting its workers


def test_walks_stop_at_the_limit(chain: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GRAPH_LIMIT_ENV, raising=False)
    monkeypatch.setenv("DATATRAIL_LINEAGE_CACHE_MB", "0")  # each walk made anew, under each limit
    before = _stored(chain)
    trail = datatrail.connect(chain)
    try:
        whole = trail.lineage(f"{NS}:d8@1", direction="upstream", depth=20)
        near = trail.lineage(f"{NS}:d8@1", direction="upstream", depth=2)
        both = trail.lineage(f"{NS}:d4@1", direction="both", depth=1)
        columns = trail.column_lineage(f"{NS}:d8@1", "x", direction="upstream", depth=5)
        connected = trail.catalog.connected_lineage(NS, "d8", depth=2)
        assert len(whole.nodes) == 2 * CHAIN + 2 and len(near.nodes) == 5 and len(columns.nodes) == 6
        monkeypatch.setenv(GRAPH_LIMIT_ENV, str(LIMIT))
        with pytest.raises(GraphTooLarge) as refused:
            trail.lineage(f"{NS}:d8@1", direction="upstream", depth=20)
        assert refused.value.message == f"the lineage graph around {NS}:d8@1 {TOO_DEEP} 2 or less"
        assert refused.value.http_status == 413 and refused.value.exit_code == 2
        assert trail.lineage(f"{NS}:d8@1", direction="upstream", depth=2).nodes == near.nodes
        # Both ways: 3 nodes up and 3 down at depth 1 (the start once), 9 at depth 2.
        assert trail.lineage(f"{NS}:d4@1", direction="both", depth=1).nodes == both.nodes
        with pytest.raises(GraphTooLarge, match=f"around {NS}:d4@1 has more than {LIMIT} nodes at depth 2; lower"):
            trail.lineage(f"{NS}:d4@1", direction="both", depth=2)
        with pytest.raises(GraphTooLarge, match=f"around dataset {NS}:d8 {TOO_DEEP} 2 or less"):
            trail.dataset_lineage(NS, "d8", direction="upstream", depth=20)
        with pytest.raises(GraphTooLarge, match=f"around dataset {NS}:d8 {TOO_DEEP} 2 or less"):
            trail.catalog.connected_lineage(NS, "d8", depth=20)
        assert trail.catalog.connected_lineage(NS, "d8", depth=2).nodes == connected.nodes
        with pytest.raises(GraphTooLarge, match=f"around job {NS}:j8 has more than {LIMIT} nodes"):
            trail.job_lineage(NS, "j8", direction="upstream", depth=20)
        with pytest.raises(GraphTooLarge, match=f"around {NS}:d8@1#x {TOO_DEEP} 5 or less"):
            trail.column_lineage(f"{NS}:d8@1", "x", direction="upstream", depth=20)
        assert trail.column_lineage(f"{NS}:d8@1", "x", direction="upstream", depth=5) == columns
        monkeypatch.setenv(GRAPH_LIMIT_ENV, "1")
        two = [trail.get(f"{NS}:d7@1"), trail.get(f"{NS}:d8@1")]
        with pytest.raises(GraphTooLarge, match="around 2 versions has more than 1 nodes at depth 0; even depth 0"):
            trail.catalog.versions_lineage(two, depth=0)
    finally:
        trail.close()
    assert _stored(chain) == before


def test_connected_walk_refuses_before_loading(chain: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Marquez's connected graph is walked in the database a step at a time, ids only: the step that
    passes the limit is the last, and a refused walk reads no node's data; under the limit it loads the
    graph once, and answers what a walk through ``lineage`` a step at a time answers."""
    walks: list[int] = []
    loads: list[int] = []
    found, load = lineage._found, lineage._load

    def counted_found(reader: Any, start_ids: Any, *args: Any, **kwargs: Any) -> Any:
        walks.append(len(start_ids))
        return found(reader, start_ids, *args, **kwargs)

    def counted_load(reader: Any, walked: Any, as_of: Any = None) -> Any:
        loads.append(len(walked.versions) + len(walked.runs))
        return load(reader, walked, as_of)

    monkeypatch.setattr(lineage, "_found", counted_found)
    monkeypatch.setattr(lineage, "_load", counted_load)
    monkeypatch.setenv(GRAPH_LIMIT_ENV, str(LIMIT))
    trail = datatrail.connect(chain)
    try:
        # 3 nodes after step 0 (d8, j8, d7), 5 after step 1, 7 after step 2: refused there, nothing loaded.
        with pytest.raises(GraphTooLarge, match=f"around dataset {NS}:d8 {TOO_DEEP} 2 or less"):
            trail.catalog.connected_lineage(NS, "d8", depth=20)
        assert (walks, loads) == ([1, 1, 1], [])
        walks.clear()
        graph = trail.catalog.connected_lineage(NS, "d8", depth=2)
        assert (walks, loads) == ([1, 1], [5])
        versions = trail.catalog.dataset_versions(NS, "d8")
        stepped = connected_steps(trail._store, versions, 2)
        assert graph.nodes == stepped.nodes and graph.edges == stepped.edges
        depths = {nid: n.depth for nid, n in graph.nodes.items() if n.type == "version"}
        assert depths == {f"version:{NS}:d8@1": 0, f"version:{NS}:d7@1": 1, f"version:{NS}:d6@1": 2}
    finally:
        trail.close()


def _get(base: str, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(base + path, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_server_answers_413(chain: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real server with a small limit answers 413 JSON naming the depth that fits, on every lineage
    route and the UI's page; one without answers those graphs, and both answer the same under it."""
    before = _stored(chain)
    url = {
        "version": f"/api/v1/lineage?nodeId={quote(f'dataset:{NS}:d8#1')}&direction=upstream",
        "folded": f"/api/v1/lineage?nodeId={quote(f'dataset:{NS}:d8')}&direction=upstream",
        "connected": f"/api/v1/lineage?nodeId={quote(f'dataset:{NS}:d8')}",
        "job": f"/api/v1/lineage?nodeId={quote(f'job:{NS}:j8')}&direction=upstream",
        "run": f"/api/v1/lineage?nodeId=run:{uuid.UUID(int=CHAIN + 1, version=4)}&direction=upstream",
        "columns": f"/api/v1/column-lineage?nodeId={quote(f'datasetField:{NS}:d8#1:x')}",
    }
    fits = {"version": 2, "folded": 2, "connected": 2, "columns": 5}
    limited = {**{k: LIMIT for k in url}, "columns": 5}
    with (
        httpserver.running(tmp_path / "capped", env={GRAPH_LIMIT_ENV: str(LIMIT)}, store=chain) as capped,
        httpserver.running(tmp_path / "open", store=chain) as open_,
    ):
        for kind, path in url.items():
            status, body = _get(capped.uri, path + "&depth=20")
            assert status == 413, (kind, body)
            answer = json.loads(body)
            assert answer["error"] == "graph_too_large" and "Traceback" not in answer["detail"]
            assert f"has more than {LIMIT} nodes at depth 20; lower depth to" in answer["detail"], kind
            if kind in fits:
                assert answer["detail"].endswith(f"lower depth to {fits[kind]} or less"), (kind, answer)
            status, whole = _get(open_.uri, path + "&depth=20")
            assert status == 200 and len(json.loads(whole)["graph"]) > 1, kind
            # Under the limit: the same bytes as the server without one.
            under = path + f"&depth={fits.get(kind, 1) if kind != 'columns' else 4}"
            status, body = _get(capped.uri, under)
            assert (status, body) == _get(open_.uri, under), kind
            assert status == 200 and len(json.loads(body)["graph"]) <= limited[kind], kind
        status, page = _get(capped.uri, f"/datasets/{NS}/d8/lineage?up=20&down=0")
        assert status == 413 and b"nodes at depth 20; lower depth to 2 or less" in page
        assert _get(open_.uri, f"/datasets/{NS}/d8/lineage?up=20&down=0")[0] == 200
        remote = datatrail.connect(capped.uri)  # the HTTP store: the server's walk, the same error
        try:
            with pytest.raises(GraphTooLarge, match=f"{TOO_DEEP} 2 or less"):
                remote.lineage(f"{NS}:d8@1", direction="upstream", depth=20)
            # Its connected walk: a request per step, the whole graph checked after each (here, by the limit
            # of the client's process: the server checks each step's walk alone).
            monkeypatch.setenv(GRAPH_LIMIT_ENV, str(LIMIT))
            with pytest.raises(GraphTooLarge, match=f"around dataset {NS}:d8 {TOO_DEEP} 2 or less"):
                remote.catalog.connected_lineage(NS, "d8", depth=20)
            assert remote.catalog.connected_lineage(NS, "d8", depth=2).nodes.keys() == {
                f"version:{NS}:d{i}@1" for i in (6, 7, 8)
            } | {f"run:{uuid.UUID(int=i + 1, version=4)}" for i in (7, 8)}
        finally:
            remote.close()
    assert _stored(chain) == before


def test_cli_lineage_refuses(chain: str, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--store", chain, "lineage", f"{NS}:d8@1", "--upstream", "--depth"]
    env = {GRAPH_LIMIT_ENV: str(LIMIT), "DATATRAIL_LINEAGE_CACHE_MB": "0"}
    refused = runner.invoke(app, [*args, "20"], env=env)
    assert refused.exit_code == 2, refused.output
    assert refused.output.strip().endswith(f"the lineage graph around {NS}:d8@1 {TOO_DEEP} 2 or less")
    assert len(refused.output.strip().splitlines()) == 1
    assert runner.invoke(app, [*args, "2"], env=env).output == runner.invoke(app, [*args, "2"]).output
