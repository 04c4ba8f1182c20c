"""Big lineage answers (issue 22, item 1): the fast paths give what the reference paths give.

The version-level graph is built in one pass (``version_graph``), its times are
reshaped to ISO 8601 inside SQLite, and ``GET /api/v1/lineage`` encodes it with
orjson. Each is checked against the path it replaces, on a graph of runs over
two namespaces with checks, a failed run and a run still going, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

import datatrail
from datatrail.core.changes import VersionInfo
from datatrail.core.errors import InvalidInput
from datatrail.core.model import EventType
from datatrail.core.results import LineageColumns, LineageJson
from datatrail.core.roles import Grant, Principal
from datatrail.core.times import stored_time
from datatrail.events import build_dataset_event, build_run_event, dataset_facets
from datatrail.security.guard import GuardedStore
from datatrail.server import create_app
from datatrail.server.marquez import (
    _quoted,
    answer_json,
    to_marquez,
    version_columns,
    version_graph,
    version_json,
)
from datatrail.server.routes.lineage import encode
from datatrail.store.sql.columncache import stored_iso
from datatrail.store.sql.nodecache import (
    CACHE_ENV,
    MAX_GAP,
    NodeCache,
    Touched,
    cache_bytes,
    named_datasets,
    node_bytes,
    run_key,
    version_key,
)
from datatrail.store.sql.store import SqlStore

RUNS = 80
DATASETS = 16


def _dataset(i: int) -> tuple[str, str]:
    return ("team-a" if i % 4 else "team-b"), f"ds{i % DATASETS:02d}"


def pipeline(trail: datatrail.Trail) -> None:
    """Run i writes the next version of dataset i mod 16 and reads 2 of the 16 written before it;
    every 7th run's output carries check results, run 30 fails and the last run is still going."""
    rng = random.Random(5)
    events = []
    for i in range(1, RUNS + 1):
        picks = sorted(rng.sample(range(max(1, i - DATASETS), i), min(2, i - 1)))
        state = EventType.FAIL if i == 30 else EventType.START if i == RUNS else EventType.COMPLETE
        namespace, name = _dataset(i)
        event = build_run_event(state, str(uuid.UUID(int=i)), namespace, f"job{i % 5}")
        event["eventTime"] = f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}.{i * 1000:06d}Z"
        event["inputs"] = [{"namespace": _dataset(p)[0], "name": _dataset(p)[1]} for p in picks]
        output: dict[str, Any] = {"namespace": namespace, "name": name}
        if i % 7 == 0:
            output["facets"] = {
                "dataQualityAssertions": {
                    "_producer": "https://example.com/tests",
                    "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DataQualityAssertionsDatasetFacet.json",
                    "assertions": [
                        {"assertion": "not_null", "success": i % 2 == 0, "column": "x"},
                        {"assertion": "unique", "success": True, "column": "x"},
                    ],
                }
            }
        event["outputs"] = [output]
        events.append(event)
    for result in trail.ingest_many(events):
        assert not isinstance(result, Exception), result


def last_version(trail: datatrail.Trail) -> tuple[str, str, int]:
    namespace, name = _dataset(RUNS - 1)
    version = trail.dataset_lineage(namespace, name, selector="latest", direction="upstream", depth=0)
    [node] = version.nodes.values()
    return namespace, name, int(node.data["version"])


def test_version_graph_is_the_reference_shape_and_the_data_the_stores(trail: datatrail.Trail) -> None:
    pipeline(trail)
    namespace, name, number = last_version(trail)
    seen_checks = False
    for direction in ("upstream", "downstream", "both"):
        for depth in (1, 4, 20):
            graph = trail.dataset_lineage(namespace, name, selector="1", direction=direction, depth=depth)
            graph_up = trail.dataset_lineage(namespace, name, selector=str(number), direction=direction, depth=depth)
            for g in (graph, graph_up):
                assert version_graph(g) == to_marquez(g, fold=False)
                # Edges sorted by integer rank come out in the order of the sorted id pairs.
                assert list(g.edges) == sorted(set(g.edges)) and all(s in g.nodes and t in g.nodes for s, t in g.edges)
    graph = trail.dataset_lineage(namespace, name, selector=str(number), direction="upstream", depth=20)
    assert len(graph.nodes) > 40 and len(graph.edges) > 60
    # Every node's data is what the store's own reads say about it.
    for node in graph.nodes.values():
        d = node.data
        if node.type == "version":
            v = trail.get(f"{d['namespace']}:{d['name']}@{d['version']}")
            assert (d["digest"], d["size"], d["created_by"]) == (
                None if v.digest is None else str(v.digest),
                v.size,
                v.created_by,
            )
            assert stored_time(d["created_at"]) == v.created_at and d["created_at"].endswith("+00:00")
            if "checks" in d:
                seen_checks = True
                assert d["checks"]["total"] == 2
        else:
            run = trail.get_run(d["id"])
            assert d["state"] == run.state and (d["namespace"], d["job"]) == (run.namespace, run.job)
            assert stored_time(d["started_at"]) == run.started_at
            assert stored_time(d["ended_at"]) == run.ended_at
    assert seen_checks


def test_the_endpoint_answers_the_reference_json_and_audits_once(trail: datatrail.Trail) -> None:
    pipeline(trail)
    namespace, name, number = last_version(trail)
    with TestClient(create_app(trail.uri), raise_server_exceptions=False) as client:
        for direction in ("upstream", "downstream", "both"):
            for depth in (2, 20):
                node_id = f"dataset:{namespace}:{name}#{number if direction == 'upstream' else 1}"
                before = len(trail.audit_entries(action="dataset.lineage", limit=10_000))
                answer = client.get(
                    "/api/v1/lineage", params={"nodeId": node_id, "direction": direction, "depth": depth}
                )
                assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
                after = len(trail.audit_entries(action="dataset.lineage", limit=10_000))
                assert after == before + 1  # one audit entry per request, as before
                graph = trail.dataset_lineage(
                    namespace, name, selector=node_id.rpartition("#")[2], direction=direction, depth=depth
                )
                reference = to_marquez(graph, fold=False)
                assert answer.json() == reference
                # The bytes are those FastAPI's JSONResponse writes (compact, UTF-8), but for key order.
                assert json.loads(bytes(JSONResponse(jsonable_encoder(reference)).body)) == json.loads(answer.content)
        # Folded graphs, runs and jobs go through the same encoder.
        for params in (
            {"nodeId": f"dataset:{namespace}:{name}", "depth": 3},
            {"nodeId": f"dataset:{namespace}:{name}", "direction": "upstream", "depth": 3},
            {"nodeId": f"run:{uuid.UUID(int=RUNS - 1)}", "depth": 3},
            {"nodeId": f"job:{namespace}:job{(RUNS - 1) % 5}", "depth": 2},
        ):
            answer = client.get("/api/v1/lineage", params=params)
            assert answer.status_code == 200, answer.text
            assert answer.json()["graph"], params


def test_hidden_nodes_stay_hidden_in_the_fast_answer(trail: datatrail.Trail) -> None:
    pipeline(trail)
    namespace, name, number = last_version(trail)
    assert namespace == "team-a"  # what the reader may see; team-b is hidden from it
    reader = trail.scoped(Principal("reader", grants=(Grant("viewer", "team-a"),)), "test")
    graph = reader.dataset_lineage(namespace, name, selector=str(number), direction="upstream", depth=20)
    answer = version_graph(graph)
    assert answer == to_marquez(graph, fold=False)
    hidden = [n for n in answer["graph"] if n["data"] == {"redacted": True}]
    assert hidden and all(n["id"].startswith("hidden:") for n in hidden)
    assert "team-b" not in json.dumps(answer)
    assert encode(answer) == json.dumps(answer, separators=(",", ":"), ensure_ascii=False).encode()


def test_times_sqlite_does_not_hold_as_usual_are_formatted_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rows are changed below behind the store's back (no event): no walk may be kept between answers.
    monkeypatch.setenv(CACHE_ENV, "0")
    with datatrail.init(tmp_path, f"sqlite:///{tmp_path / 'trail.db'}") as trail:
        pipeline(trail)
        namespace, name, number = last_version(trail)
        graph = trail.dataset_lineage(namespace, name, selector=str(number), direction="upstream", depth=50)
        runs = sorted(n.data["id"] for n in graph.nodes.values() if n.type == "run")[:3]
        texts = ["2026-01-01T00:00:01+02:00", "2026-01-01 00:00:02+00:00", "2026-01-01 00:00:03"]
        odd = dict(zip(runs, texts, strict=True))
        with sqlite3.connect(tmp_path / "trail.db") as db:  # as an older writer might have left them
            for run_id, text in odd.items():
                db.execute("UPDATE runs SET started_at = ? WHERE run_id = ?", (text, run_id))
        graph = trail.dataset_lineage(namespace, name, selector=str(number), direction="upstream", depth=50)
        assert [graph.nodes[f"run:{r}"].data["started_at"] for r in runs] == [
            "2025-12-31T22:00:01+00:00",  # in UTC, as every lineage time
            "2026-01-01T00:00:02+00:00",
            "2026-01-01T00:00:03+00:00",
        ]
        assert all(graph.nodes[f"run:{r}"].data["started_at"] == stored_iso(text) for r, text in odd.items())
        # The nodes' JSON as SQLite writes it gives these rows, and a size that is not an integer, to Python.
        with sqlite3.connect(tmp_path / "trail.db") as db:
            last = "(SELECT max(id) FROM versions)"  # the start version
            db.execute(f"UPDATE versions SET size = 1e20, created_at = '2026-01-01 00:00:04' WHERE id = {last}")
        kw: dict[str, Any] = {"direction": "upstream", "depth": 50}
        joined = joined_bytes(trail, namespace, name, str(number), **kw)
        assert joined == reference_bytes(trail, namespace, name, str(number), **kw)
        assert b'"size":1e+20,"created_at":"2026-01-01T00:00:04+00:00"' in joined
        assert b'"started_at":"2025-12-31T22:00:01+00:00"' in joined


def test_edges_sorted_by_rank_are_the_sorted_id_pairs() -> None:
    """``LineageColumns.result()`` sorts integers standing for the id pairs; the order is the id pairs'
    own, whatever the row order says, and an edge given twice is one edge."""
    rng = random.Random(3)
    for _ in range(50):
        ids = [f"version:ns:{rng.choice('ab')}{rng.randrange(30)}@{i}" for i in range(40)]
        ids += [f"run:{uuid.UUID(int=rng.getrandbits(128))}" for _ in range(30)]
        rng.shuffle(ids)
        types: list[Any] = ["version" if nid.startswith("version:") else "run" for nid in ids]
        edges = [(rng.randrange(70), rng.randrange(70)) for _ in range(300)]
        columns = LineageColumns(ids, types, [0] * 70, [{} for _ in ids], [o for o, _ in edges], [d for _, d in edges])
        result = columns.result()
        assert list(result.edges) == sorted({(ids[o], ids[d]) for o, d in edges})
        assert list(result.nodes) == ids and LineageColumns.of(result).result() == result


def test_columns_are_the_graph_and_shape_the_reference_answer(trail: datatrail.Trail) -> None:
    """The columnar path (``Trail.dataset_lineage_columns``, ``version_columns``) against the reference
    (``Trail.dataset_lineage``, ``to_marquez``): same nodes, data, edges and answer; one audit entry."""
    pipeline(trail)
    namespace, name, number = last_version(trail)
    for direction in ("upstream", "downstream", "both"):
        for depth in (0, 1, 4, 20):
            for selector in ("1", str(number)):
                before = len(trail.audit_entries(action="dataset.lineage", limit=10_000))
                columns = trail.dataset_lineage_columns(
                    namespace, name, selector=selector, direction=direction, depth=depth
                )
                assert len(trail.audit_entries(action="dataset.lineage", limit=10_000)) == before + 1
                graph = trail.dataset_lineage(namespace, name, selector=selector, direction=direction, depth=depth)
                result = columns.result()
                assert result.nodes == graph.nodes and result.edges == graph.edges
                assert version_columns(columns) == to_marquez(graph, fold=False)
    as_of = "2026-01-01T00:00:40Z"  # a past graph: later runs and versions left out, as the reference
    columns = trail.dataset_lineage_columns(
        namespace, name, selector="1", direction="downstream", depth=20, as_of=as_of
    )
    graph = trail.dataset_lineage(namespace, name, selector="1", direction="downstream", depth=20, as_of=as_of)
    now = trail.dataset_lineage(namespace, name, selector="1", direction="downstream", depth=20)
    assert version_columns(columns) == to_marquez(graph, fold=False) and 1 < len(graph.nodes) < len(now.nodes)
    # A reader who may not see team-b: the same placeholders as the reference.
    reader = trail.scoped(Principal("reader", grants=(Grant("viewer", "team-a"),)), "test")
    columns = reader.dataset_lineage_columns(namespace, name, selector=str(number), direction="upstream", depth=20)
    graph = reader.dataset_lineage(namespace, name, selector=str(number), direction="upstream", depth=20)
    answer = version_columns(columns)
    assert answer == to_marquez(graph, fold=False)
    assert any(n["data"] == {"redacted": True} for n in answer["graph"]) and "team-b" not in json.dumps(answer)


# ------------------------------------------------------------ the node cache (round three)


def node_cache(trail: datatrail.Trail) -> NodeCache:
    """The SQL store's cache of lineage nodes under ``trail`` (its guard, the embedded store's full store)."""
    store: Any = trail._store
    while not isinstance(store, SqlStore):
        store = store.inner if isinstance(store, GuardedStore) else store.target()
    cache: NodeCache = store._reads.nodes
    return cache


def reference_bytes(trail: datatrail.Trail, namespace: str, name: str, selector: str, **kw: Any) -> bytes:
    """The answer's bytes as round two's route made them: columns, ``version_columns``, orjson."""
    return encode(version_columns(trail.dataset_lineage_columns(namespace, name, selector=selector, **kw)))


def joined_bytes(trail: datatrail.Trail, namespace: str, name: str, selector: str, **kw: Any) -> bytes:
    """The answer's bytes as the route now joins them from the cached nodes (and keeps them)."""
    found = answer_json(trail.dataset_lineage_json(namespace, name, selector=selector, **kw))
    assert found is not None
    return found


@pytest.mark.sql_store
def test_cached_nodes_give_the_reference_bytes_and_the_endpoint_audits_each_request(
    trail: datatrail.Trail,
) -> None:
    pipeline(trail)
    namespace, name, number = last_version(trail)
    cache = node_cache(trail)
    for direction in ("upstream", "downstream", "both"):
        for depth in (0, 2, 20):
            selector = str(number) if direction == "upstream" else "1"
            reference = reference_bytes(trail, namespace, name, selector, direction=direction, depth=depth)
            hits = cache.hits
            first = joined_bytes(trail, namespace, name, selector, direction=direction, depth=depth)
            again = joined_bytes(trail, namespace, name, selector, direction=direction, depth=depth)
            assert first == again == reference
            assert cache.hits > hits and again is first  # the second answer was the kept walk and its bytes
    assert 0 < cache.size <= cache.limit
    # A walk not asked before, over nodes that are all kept: only the walk itself is new.
    reference = reference_bytes(trail, namespace, name, str(number), direction="upstream", depth=19)
    misses = cache.misses  # (the reference's columns are kept too: a walk of their own)
    joined = joined_bytes(trail, namespace, name, str(number), direction="upstream", depth=19)
    assert joined == reference
    assert cache.misses == misses + 1
    # Through the endpoint: the same bytes, whether the server's cache is cold or warm; one audit entry each.
    with TestClient(create_app(trail.uri), raise_server_exceptions=False) as client:
        node_id = f"dataset:{namespace}:{name}#{number}"
        reference = reference_bytes(trail, namespace, name, str(number), direction="upstream", depth=20)
        for _ in range(2):
            before = len(trail.audit_entries(action="dataset.lineage", limit=10_000))
            answer = client.get("/api/v1/lineage", params={"nodeId": node_id, "direction": "upstream", "depth": 20})
            assert answer.status_code == 200 and answer.content == reference
            assert len(trail.audit_entries(action="dataset.lineage", limit=10_000)) == before + 1


@pytest.mark.sql_store
def test_a_new_event_is_in_the_next_answer(trail: datatrail.Trail) -> None:
    """New nodes, and new data of a node already kept (a run that ends), are in the answer right
    after they are stored; asOf still shows the past."""
    pipeline(trail)
    namespace, name, number = last_version(trail)
    kw: dict[str, Any] = {"direction": "both", "depth": 20}
    run_id = str(uuid.UUID(int=RUNS + 1))
    start = build_run_event(EventType.START, run_id, namespace, "job-new")
    start["eventTime"] = "2026-01-01T05:00:00Z"
    start["inputs"] = [{"namespace": namespace, "name": name}]
    trail.ingest(start)
    running = f'"data":{{"id":"{run_id}","namespace":"{namespace}","job":"job-new","state":"RUNNING"'.encode()
    warm = joined_bytes(trail, namespace, name, str(number), **kw)
    assert warm == reference_bytes(trail, namespace, name, str(number), **kw) and running in warm
    assert joined_bytes(trail, namespace, name, str(number), **kw) == warm  # from the cache
    end = build_run_event(EventType.COMPLETE, run_id, namespace, "job-new")
    end["eventTime"] = "2026-01-01T06:00:00Z"
    end["outputs"] = [{"namespace": namespace, "name": "ds-new"}]
    trail.ingest(end)
    after = joined_bytes(trail, namespace, name, str(number), **kw)
    assert after == reference_bytes(trail, namespace, name, str(number), **kw) != warm
    assert running not in after and running.replace(b"RUNNING", b"COMPLETE") in after
    assert b'"id":"dataset:team-a:ds-new#1"' in after
    # asOf between the two events: the kept COMPLETE run shows as it was then, and no ds-new.
    as_of = "2026-01-01T05:30:00Z"
    past = joined_bytes(trail, namespace, name, str(number), as_of=as_of, **kw)
    assert past == reference_bytes(trail, namespace, name, str(number), as_of=as_of, **kw)
    assert running in past and b"ds-new" not in past
    assert joined_bytes(trail, namespace, name, str(number), **kw) == after  # and the present again


@pytest.mark.sql_store
def test_an_event_stored_by_another_process_is_in_the_next_answer(trail: datatrail.Trail) -> None:
    """Each server worker has its own store and cache: one that did not store the event learns of it
    from the database (the largest event id), not from its own writes."""
    pipeline(trail)
    namespace, name, number = last_version(trail)
    kw: dict[str, Any] = {"direction": "downstream", "depth": 20}
    with datatrail.connect(trail.uri) as other:  # a second store on the same database, as another worker
        before = joined_bytes(trail, namespace, name, str(number), **kw)
        assert joined_bytes(trail, namespace, name, str(number), **kw) is before  # kept
        event = build_run_event(EventType.COMPLETE, str(uuid.UUID(int=RUNS + 7)), namespace, "job-elsewhere")
        event["eventTime"] = "2026-01-01T07:00:00Z"
        event["inputs"] = [{"namespace": namespace, "name": name}]
        event["outputs"] = [{"namespace": namespace, "name": "ds-elsewhere"}]
        other.ingest(event)
        after = joined_bytes(trail, namespace, name, str(number), **kw)
        assert after == reference_bytes(trail, namespace, name, str(number), **kw) != before
        assert b"ds-elsewhere" in after and b"job-elsewhere" in after


@pytest.mark.sql_store
def test_hidden_nodes_stay_hidden_when_the_cache_holds_them(trail: datatrail.Trail) -> None:
    """An admin's answer fills the cache with every node; a reader who may not see team-b still gets
    exactly the reference's answer (placeholders, opaque ids), and the admin everything again."""
    pipeline(trail)
    namespace, name, number = last_version(trail)
    kw: dict[str, Any] = {"direction": "upstream", "depth": 20}
    full = joined_bytes(trail, namespace, name, str(number), **kw)
    assert b"team-b" in full
    reader = trail.scoped(Principal("reader", grants=(Grant("viewer", "team-a"),)), "test")
    hits = node_cache(trail).hits
    hidden = joined_bytes(reader, namespace, name, str(number), **kw)
    assert node_cache(trail).hits > hits  # answered from the cache
    graph = reader.dataset_lineage(namespace, name, selector=str(number), **kw)
    assert (
        hidden == encode(to_marquez(graph, fold=False)) == reference_bytes(reader, namespace, name, str(number), **kw)
    )
    assert b"team-b" not in hidden and b'"data":{"redacted":true}' in hidden
    assert joined_bytes(trail, namespace, name, str(number), **kw) == full


def test_odd_names_are_written_as_orjson_writes_them(trail: datatrail.Trail) -> None:
    """Quotes, backslashes, ':', '@', '#' and non-ASCII in namespaces, names and jobs: the joined answer
    is byte for byte the encoded reference."""
    names = ['say "hi"', "back\\slash", "a:b@c#d", "größe ✓", "emoji 🙂"]
    events = []
    for i, odd in enumerate(names, start=1):
        event = build_run_event(EventType.COMPLETE, str(uuid.UUID(int=1000 + i)), 'ns:\\odd"', f"job {odd}")
        event["eventTime"] = f"2026-02-01T00:00:0{i}Z"
        event["inputs"] = [{"namespace": 'ns:\\odd"', "name": names[i - 2]}] if i > 1 else []
        event["outputs"] = [{"namespace": 'ns:\\odd"', "name": odd}]
        events.append(event)
    for result in trail.ingest_many(events):
        assert not isinstance(result, Exception), result
    for odd in names:
        for direction in ("upstream", "downstream"):
            kw: dict[str, Any] = {"direction": direction, "depth": 10}
            reference = reference_bytes(trail, 'ns:\\odd"', odd, "1", **kw)
            assert joined_bytes(trail, 'ns:\\odd"', odd, "1", **kw) == reference
            graph = trail.dataset_lineage('ns:\\odd"', odd, selector="1", **kw)
            assert json.loads(reference) == to_marquez(graph, fold=False)
            # The HTTP store's way (columns from its wire result, then JSON) and back gives the same.
            columns = trail.dataset_lineage_columns('ns:\\odd"', odd, selector="1", **kw)
            assert version_json(LineageJson.of(columns)) == reference
            assert encode(version_columns(LineageJson.of(columns).columns())) == reference
    # Names with a control character are refused at ingest; ids that need escapes are quoted one by one.
    odd_ids = ["a\tb", 'q"', "back\\", "plain", "\x7f\u2028"]
    assert _quoted(odd_ids) == [orjson.dumps(k) for k in odd_ids]
    assert _quoted(["plain", "größe"]) == [orjson.dumps(k) for k in ("plain", "größe")]


def test_the_cache_is_bounded_by_bytes_least_recently_used_first_out(monkeypatch: pytest.MonkeyPatch) -> None:
    def node(i: int) -> tuple[str, str, bytes]:
        return (f"version:ns:d@{i:02d}", "ns", b'{"x":%02d}' % i)  # each the same size

    one = node_bytes(node(1))
    cache = NodeCache(10 * one)
    cache.store((1, 0), {})  # nothing to keep before a stamp is taken
    assert cache.take((1, 0), [version_key(1)]) == [None]
    cache.store((1, 0), {version_key(i): node(i) for i in range(8)})
    assert cache.take((1, 0), [version_key(0)]) == [node(0)]  # 0 is now the most recently used
    cache.store((1, 0), {version_key(i): node(i) for i in range(8, 14)})
    assert cache.size <= cache.limit and len(cache) == 10
    kept = cache.take((1, 0), [version_key(i) for i in range(14)])
    assert [i for i, n in enumerate(kept) if n is None] == [1, 2, 3, 4]  # the least recently used went first
    cache.store((2, 0), {run_key(1): node(99)})  # read under another stamp than the cache's: not kept
    assert cache.take((1, 0), [run_key(1)]) == [None] and len(cache) == 10
    assert cache.take((2, 0), [version_key(0)]) == [None] and len(cache) == 0 and cache.size == 0  # a new stamp
    cache.store((2, 0), {("walk", 1): node(5)}, size=lambda _: cache.limit + 1)  # larger than the bound
    assert cache.take((2, 0), [("walk", 1)]) == [None] and cache.size == 0
    assert NodeCache(0).take((1, 0), [1]) == [None]
    monkeypatch.setenv(CACHE_ENV, "0.5")
    assert cache_bytes() == 512 * 1024
    monkeypatch.setenv(CACHE_ENV, "lots")
    with pytest.raises(InvalidInput, match="DATATRAIL_LINEAGE_CACHE_MB='lots': give megabytes"):
        cache_bytes()


@pytest.mark.sql_store
def test_a_store_without_a_cache_answers_the_same(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, "0")
    with datatrail.init(workdir) as trail:
        pipeline(trail)
        namespace, name, number = last_version(trail)
        kw: dict[str, Any] = {"direction": "both", "depth": 20}
        assert joined_bytes(trail, namespace, name, str(number), **kw) == reference_bytes(
            trail, namespace, name, str(number), **kw
        )
        assert len(node_cache(trail)) == 0


# ------------------------------------------------------------ targeted invalidation (round four)

ASSERTIONS = {
    "_producer": "https://example.com/tests",
    "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DataQualityAssertionsDatasetFacet.json",
    "assertions": [{"assertion": "positive", "success": False, "column": "x"}],
}


class Walks:
    """The walks a test keeps asking for, each answer checked byte for byte against the same answer
    from a store on the same database with no cache (and against round two's reference path)."""

    def __init__(self, trail: datatrail.Trail, fresh: datatrail.Trail) -> None:
        self.trail, self.fresh = trail, fresh
        namespace, name, number = last_version(trail)
        self.start = (namespace, name)
        # (selector, direction, depth): from the last version up and both ways, from version 1 down.
        self.walks = [
            (str(number), "upstream", 20),
            (str(number), "upstream", 3),
            ("1", "downstream", 20),
            (str(number), "both", 4),
            ("1", "both", 20),
        ]

    def answers(self, reader: datatrail.Trail | None = None) -> dict[tuple[str, str, int], bytes]:
        out = {}
        who = reader or self.trail
        for selector, direction, depth in self.walks:
            kw: dict[str, Any] = {"direction": direction, "depth": depth}
            got = joined_bytes(who, *self.start, selector, **kw)
            fresh = (
                joined_bytes(self.fresh, *self.start, selector, **kw)
                if reader is None
                else reference_bytes(who, *self.start, selector, **kw)
            )
            assert got == fresh == reference_bytes(who, *self.start, selector, **kw), (selector, direction, depth)
            out[(selector, direction, depth)] = got
        assert len(node_cache(self.fresh)) == 0
        return out


def run_event(i: int, job: str, state: EventType = EventType.COMPLETE, minute: int = 0) -> dict[str, Any]:
    event = build_run_event(state, str(uuid.UUID(int=i)), "team-a", job)
    event["eventTime"] = f"2026-01-01T{6 + minute // 60:02d}:{minute % 60:02d}:00Z"
    return event


def version_key_of(trail: datatrail.Trail, node: dict[str, Any]) -> str:
    """The stored key of the version a lineage node's data describes."""
    return trail.get(f"{node['namespace']}:{node['name']}@{node['version']}").key


def dataset_entry(node: dict[str, Any], facets: dict[str, Any]) -> dict[str, Any]:
    return {"namespace": node["namespace"], "name": node["name"], "facets": facets}


def dataset_event(node: dict[str, Any], facets: dict[str, Any]) -> dict[str, Any]:
    """A DatasetEvent (no run) naming the dataset ``node`` names, with ``facets``."""
    return {
        "eventTime": "2026-01-01T10:00:00Z",
        "producer": "https://example.com/tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": dataset_entry(node, facets),
    }


def walk_nodes(trail: datatrail.Trail, walks: Walks, kind: str) -> list[dict[str, Any]]:
    """The data of the nodes of one kind in the upstream walk of depth 20 (sorted by id)."""
    graph = trail.dataset_lineage(*walks.start, selector=walks.walks[0][0], direction="upstream", depth=20)
    return [n.data for _, n in sorted(graph.nodes.items()) if n.type == kind]


@pytest.mark.sql_store
def test_each_event_forgets_only_what_it_touched_and_answers_stay_exact(
    trail: datatrail.Trail, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After each kind of event, every kept walk's answer is byte for byte the answer of a store with no
    cache; the walks the event cannot have changed are kept (the same bytes object)."""
    pipeline(trail)
    monkeypatch.setenv(CACHE_ENV, "0")
    with datatrail.connect(trail.uri) as fresh:
        walks = Walks(trail, fresh)
        cache = node_cache(trail)
        up20 = walks.walks[0]
        before = walks.answers()
        advances = cache.advances

        # 1. An unrelated event (a job in another namespace): everything kept, the same answers.
        other = build_run_event(EventType.COMPLETE, str(uuid.UUID(int=900)), "team-z", "elsewhere")
        other["inputs"] = [{"namespace": "team-z", "name": "src"}]
        other["outputs"] = [{"namespace": "team-z", "name": "dst"}]
        trail.ingest(other)
        after = walks.answers()
        assert all(after[w] is before[w] for w in walks.walks)  # no walk read again
        assert cache.advances == advances + 1

        # 2. A new reader of a version in the upstream walk (downstream of that version): the upstream
        # walks keep their shape, that version's data is read again (the same bytes: the answer stays).
        read = walk_nodes(trail, walks, "version")[0]
        key = trail.get(f"{read['namespace']}:{read['name']}@{read['version']}").key
        reader = run_event(901, "reader")
        reader["inputs"] = [
            {"namespace": read["namespace"], "name": read["name"], "facets": {"version": {"datasetVersion": key}}}
        ]
        reader["outputs"] = [{"namespace": "team-a", "name": "read-out"}]
        trail.ingest(reader)
        before, after = after, walks.answers()
        assert after[up20] is before[up20]

        # 3. The same version gets a failed check (data only): the walk keeps its shape, the node is new.
        checker = run_event(902, "checker", minute=1)
        checker["inputs"] = [
            {
                "namespace": read["namespace"],
                "name": read["name"],
                "facets": {"version": {"datasetVersion": key}, "dataQualityAssertions": ASSERTIONS},
            }
        ]
        trail.ingest(checker)
        before, after = after, walks.answers()
        assert after[up20] != before[up20] and b'"checks":{"failed":1' in after[up20]

        # 4. A run in the upstream walk reads one more dataset: the walk grows upstream.
        grown = walk_nodes(trail, walks, "run")[0]
        again = build_run_event(EventType.COMPLETE, grown["id"], grown["namespace"], grown["job"])
        again["eventTime"] = "2026-01-01T07:00:00Z"
        again["inputs"] = [{"namespace": "team-a", "name": "extra-source"}]
        trail.ingest(again)
        before, after = after, walks.answers()
        assert b"extra-source" in after[up20] and b"extra-source" not in before[up20]

        # 4b. The same run reads a version already in the walk: only a new edge between two of its nodes.
        versions = walk_nodes(trail, walks, "version")
        extra = versions[len(versions) // 2]
        extra_key = trail.get(f"{extra['namespace']}:{extra['name']}@{extra['version']}").key
        edge = build_run_event(EventType.COMPLETE, grown["id"], grown["namespace"], grown["job"])
        edge["eventTime"] = "2026-01-01T07:30:00Z"
        version_facet = {"version": {"datasetVersion": extra_key}}
        edge["inputs"] = [{"namespace": extra["namespace"], "name": extra["name"], "facets": version_facet}]
        trail.ingest(edge)
        before, after = after, walks.answers()
        assert after[up20].count(b'"origin":') > before[up20].count(b'"origin":')

        # 5. A new reader of version 1: the walk from it grows downstream.
        first = trail.get(f"{walks.start[0]}:{walks.start[1]}@1")
        down = run_event(903, "down", minute=2)
        down["inputs"] = [
            {"namespace": first.namespace, "name": first.name, "facets": {"version": {"datasetVersion": first.key}}}
        ]
        down["outputs"] = [{"namespace": "team-a", "name": "down-out"}]
        trail.ingest(down)
        before, after = after, walks.answers()
        assert b"down-out" in after[("1", "downstream", 20)] and b"down-out" not in before[("1", "downstream", 20)]

        # 6. The run still going ends (a run state change of a node in the walks).
        last = build_run_event(EventType.COMPLETE, str(uuid.UUID(int=RUNS)), _dataset(RUNS)[0], f"job{RUNS % 5}")
        last["eventTime"] = "2026-01-01T08:00:00Z"
        trail.ingest(last)
        before, after = after, walks.answers()
        assert after != before

        # 7. An event stored through another store on the same database (another worker).
        with datatrail.connect(trail.uri) as worker:
            ended = build_run_event(EventType.COMPLETE, grown["id"], grown["namespace"], grown["job"])
            ended["eventTime"] = "2026-01-01T09:00:00Z"
            worker.ingest(ended)
        before, after = after, walks.answers()
        assert after[up20] != before[up20] and b"09:00:00" in after[up20]

        # 8. A dataset in the walk becomes a model (a new version of it says so): every version shows it.
        model = run_event(904, "trainer", minute=4)
        model["outputs"] = [
            {
                "namespace": read["namespace"],
                "name": read["name"],
                "facets": dataset_facets(VersionInfo(key="model-v1", kind="model")),
            }
        ]
        trail.ingest(model)
        before, after = after, walks.answers()
        assert b'"kind":"model"' in after[up20] and b'"kind":"model"' not in before[up20]

        # 9. A reader who may not see team-b, after all this: the reference's placeholders.
        restricted = trail.scoped(Principal("reader", grants=(Grant("viewer", "team-a"),)), "test")
        hidden = walks.answers(restricted)
        assert b"team-b" not in hidden[up20] and b'"data":{"redacted":true}' in hidden[up20]

        # Events that name no run (round six): no walk changes shape; the versions of the datasets they
        # name are read again (the same bytes: the answers stay), or show what the event changed.
        # 10. A tag, and a new version of a dataset in the walks (`datatrail add`): every answer kept.
        advances = cache.advances
        trail.tag(f"{read['namespace']}:{read['name']}@{read['version']}", "gold")
        before, after = after, walks.answers()
        assert all(after[w] is before[w] for w in walks.walks) and cache.advances == advances + 1
        trail.ingest(build_dataset_event(read["namespace"], read["name"], VersionInfo(key="added-v1", size=5)))
        before, after = after, walks.answers()
        assert all(after[w] is before[w] for w in walks.walks) and cache.advances == advances + 2

        misses = [cache.misses]

        def answers_after() -> dict[tuple[str, str, int], bytes]:
            """The answers after an event that names no run: only the versions of the datasets it named
            (and the walks holding them) were read again, not everything (a whole miss: some 170 nodes)."""
            answers = walks.answers()
            assert cache.misses - misses[0] < 20
            misses[0] = cache.misses
            return answers

        # 11. A dataset event through another store on the same database fills a version's missing size.
        versions = [v for v in walk_nodes(trail, walks, "version") if v["name"] != read["name"]]
        names = sorted({(v["namespace"], v["name"]) for v in versions})
        assert len(names) >= 4
        sized = next(v for v in versions if (v["namespace"], v["name"]) == names[0])
        with datatrail.connect(trail.uri) as worker:
            worker.ingest(
                dataset_event(sized, dataset_facets(VersionInfo(key=version_key_of(trail, sized), size=4242)))
            )
        before, after = after, answers_after()
        assert b'"size":4242' in after[up20] and b'"size":4242' not in before[up20]

        # 12. A JobEvent declaring an output version it saw earlier: the version's creation moves back.
        dated = next(v for v in versions if (v["namespace"], v["name"]) == names[1])
        declared = {
            "eventTime": "2025-12-31T00:00:00Z",
            "producer": "https://example.com/tests",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
            "job": {"namespace": "team-z", "name": "declared"},
            "outputs": [dataset_entry(dated, {"version": {"datasetVersion": version_key_of(trail, dated)}})],
        }
        trail.ingest(declared)
        before, after = after, answers_after()
        assert b'"created_at":"2025-12-31T00:00:00' in after[up20] and b"2025-12-31" not in before[up20]

        # 13. Symlinks. A name linked to a dataset outside the walks is given again with symlinks naming a
        # dataset in them (stored under that one: its link stays) and a version making it a model; then
        # another name linked to it, named alone, fills a size (the store follows the link).
        linked = next(v for v in versions if (v["namespace"], v["name"]) == names[2])

        def symlinks(namespace: str, name: str) -> dict[str, Any]:
            return {"symlinks": {"identifiers": [{"namespace": namespace, "name": name, "type": "TABLE"}]}}

        alias = {"namespace": "team-z", "name": "/files/linked"}
        trail.ingest(dataset_event(alias, symlinks("team-z", "elsewhere")))
        before, after = after, answers_after()
        facets = {
            **dataset_facets(VersionInfo(key="linked-v1", kind="model")),
            **symlinks(linked["namespace"], linked["name"]),
        }
        trail.ingest(dataset_event(alias, facets))
        before, after = after, answers_after()
        kinds = {v["kind"] for v in walk_nodes(trail, walks, "version") if v["name"] == linked["name"]}
        assert kinds == {"model"} and after[up20] != before[up20]
        other = {"namespace": "team-z", "name": "/files/other"}
        trail.ingest(dataset_event(other, symlinks(linked["namespace"], linked["name"])))
        before, after = after, answers_after()
        trail.ingest(dataset_event(other, dataset_facets(VersionInfo(key=version_key_of(trail, linked), size=777))))
        before, after = after, answers_after()
        assert b'"size":777' in after[up20] and b'"size":777' not in before[up20]

        # 14. A dataset event with check results on a version in the walks; a rename of a dataset in them.
        checked = next(v for v in versions if (v["namespace"], v["name"]) == names[3])
        facets = {"version": {"datasetVersion": version_key_of(trail, checked)}, "dataQualityAssertions": ASSERTIONS}
        trail.ingest(dataset_event(checked, facets))
        before, after = after, answers_after()
        assert after[up20].count(b'"checks":{"failed":1') > before[up20].count(b'"checks":{"failed":1')
        renamed = {
            "lifecycleStateChange": "RENAME",
            "previousIdentifier": {k: checked[k] for k in ("namespace", "name")},
        }
        trail.ingest(dataset_event({"namespace": "team-z", "name": "renamed"}, {"lifecycleStateChange": renamed}))
        before, after = after, answers_after()

        # 15. A reader who may not see team-b, after all of them: the reference's placeholders.
        hidden = walks.answers(restricted)
        assert b"team-b" not in hidden[up20] and b'"data":{"redacted":true}' in hidden[up20]


def test_the_cache_moves_on_by_what_events_touched_or_forgets_everything() -> None:
    """advance: the events' touched nodes go, the rest stays; an older snapshot reads nothing and changes
    nothing; a new epoch, a stamp whose event is not the same, a gap of more than MAX_GAP events or
    anything the store cannot bound (since says None) forget it all."""

    def node(i: int) -> tuple[str, str, bytes]:
        return (f"version:ns:d@{i}", "ns", b"{}")

    def touched(runs: frozenset[int] = frozenset(), changed: frozenset[int] = frozenset()) -> Touched:
        return Touched(runs, frozenset(), frozenset(), changed)

    cache = NodeCache(1 << 20)
    asked: list[tuple[int, int]] = []

    def since(result: Touched | None) -> Callable[[int, int], Touched | None]:
        def ask(after: int, upto: int) -> Touched | None:
            asked.append((after, upto))
            return result

        return ask

    def mark(event_id: int) -> str | None:
        return f"hash{event_id}"

    cache.advance((5, 0), since(touched()), mark)  # the first stamp: nothing to forget, nothing asked
    assert asked == [] and cache.stamp == (5, 0) and cache.mark == "hash5"
    cache.store((5, 0), {version_key(1): node(1), version_key(2): node(2), run_key(1): node(3)})
    cache.advance((7, 0), since(touched(runs=frozenset({1}), changed=frozenset({2}))), mark)
    assert asked == [(5, 7)] and cache.stamp == (7, 0)
    assert cache.take((7, 0), [version_key(1), version_key(2), run_key(1)]) == [node(1), None, None]
    cache.advance((6, 0), since(touched()), mark)  # an older snapshot: nothing read, nothing changed
    assert cache.take((6, 0), [version_key(1)]) == [None] and cache.stamp == (7, 0)
    assert cache.take((7, 0), [version_key(1)]) == [node(1)]
    cache.advance((8, 0), since(touched()), lambda event_id: "another database")  # the stamp's event changed
    assert asked == [(5, 7)] and len(cache) == 0 and cache.stamp == (8, 0)
    cache.store((8, 0), {version_key(1): node(1)})
    cache.advance((9 + MAX_GAP, 0), since(touched()), mark)  # too many events to read: all forgotten
    assert asked == [(5, 7)] and len(cache) == 0 and cache.stamp == (9 + MAX_GAP, 0)
    cache.store(cache.stamp, {version_key(1): node(1)})
    cache.advance((cache.stamp[0] + 1, 0), since(None), mark)  # anything may have changed (a payload unparsed)
    assert len(cache) == 0
    cache.store(cache.stamp, {version_key(1): node(1)})
    cache.advance((cache.stamp[0] + 1, 99), since(touched()), mark)  # another file (a restore)
    assert cache.take(cache.stamp, [version_key(1)]) == [None] and len(cache) == 0 and cache.stamp[1] == 99


def test_events_that_name_no_run_name_the_datasets_they_may_change() -> None:
    """named_datasets: each dataset entry's name and its symlinks' names, from a DatasetEvent or a
    JobEvent's inputs and outputs; a payload naming a run, or one ingest would not take: None."""
    link = {"identifiers": [{"namespace": "hive://ms", "name": "db.t", "type": "TABLE"}]}
    added = build_dataset_event("team-a", "d1", VersionInfo(key="k1"))
    added["dataset"]["facets"]["symlinks"] = link
    job = {
        "eventTime": "2026-01-01T10:00:00Z",
        "producer": "https://example.com/tests",
        "job": {"namespace": "team-a", "name": "declared"},
        "inputs": [{"namespace": "team-a", "name": "in"}],
        "outputs": [{"namespace": "team-b", "name": "out"}],
    }
    payloads = [json.dumps(added), json.dumps(job)]
    assert named_datasets(payloads) == {("team-a", "d1"), ("hive://ms", "db.t"), ("team-a", "in"), ("team-b", "out")}
    assert named_datasets([]) == set()
    run = build_run_event(EventType.COMPLETE, str(uuid.UUID(int=1)), "team-a", "job")
    assert named_datasets([*payloads, json.dumps(run)]) is None
    assert named_datasets([*payloads, "not json"]) is None
    assert named_datasets([*payloads, json.dumps({"dataset": {"namespace": "team-a"}})]) is None
