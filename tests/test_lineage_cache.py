"""The in-process lineage columns kept between calls (store/sql/columncache.py, issue 22 item 1).

``Trail.dataset_lineage_columns`` and ``Trail.dataset_lineage`` keep each walk's columns in the
store's node cache, under its stamp and its invalidation rules. Every answer here is compared with
the answer of a store on the same database with the cache off (``DATATRAIL_LINEAGE_CACHE_MB=0``),
after each kind of event, on SQLite (the embedded store's quick path and the full store) and on
PostgreSQL; and what a caller does to an answer never reaches the next one.
"""

from __future__ import annotations

import gc
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import pytest

import datatrail
from datatrail.backup import create_backup, restore_backup
from datatrail.core.changes import VersionInfo
from datatrail.core.model import EventType
from datatrail.core.results import LineageColumns
from datatrail.core.roles import Grant, Principal
from datatrail.events import build_dataset_event, build_run_event, dataset_facets
from datatrail.security.guard import GuardedStore, redact_columns
from datatrail.store.sql import lineage
from datatrail.store.sql.columncache import KeptColumns
from datatrail.store.sql.lineage import _columns_walk_bytes, _found, _kept_columns, _load, _Reader, _refresh_columns
from datatrail.store.sql.nodecache import CACHE_ENV, KeptWalk, NodeCache
from datatrail.store.sql.quick import EmbeddedStore
from datatrail.store.sql.store import SqlStore
from tests.test_lineage_response import ASSERTIONS, RUNS, _dataset, dataset_event, last_version, pipeline, run_event


def kept_cache(trail: datatrail.Trail) -> NodeCache:
    """The node cache the lineage calls of ``trail`` use (its guard's store, the embedded store's own
    while it answers on its quick connection, else the full store's)."""
    store: Any = trail._store
    while isinstance(store, GuardedStore):
        store = store.inner
    if isinstance(store, EmbeddedStore) and store._real is None:
        assert store._nodes is not None, "ask for a walk first"
        return store._nodes
    while not isinstance(store, SqlStore):
        store = store.target()
    cache: NodeCache = store._reads.nodes
    return cache


def edge_pairs(columns: LineageColumns) -> list[tuple[str, str]]:
    """The edges as sorted pairs of node ids (the columns' edges come in no particular order)."""
    return sorted((columns.ids[o], columns.ids[d]) for o, d in zip(columns.origins, columns.destinations, strict=True))


def same(got: LineageColumns, want: LineageColumns) -> None:
    """The same rows in the same order (ids, types, depths, data) and the same edges."""
    assert got.ids == want.ids
    assert got.types == want.types
    assert got.depths == want.depths
    assert got.data == want.data
    assert edge_pairs(got) == edge_pairs(want)


class Readers:
    """The walks a test keeps asking for, through readers with the cache (``cached``) and one with it
    off (``plain``), each answer of the first compared with the second's."""

    def __init__(self, trail: datatrail.Trail, cached: list[datatrail.Trail], plain: datatrail.Trail) -> None:
        self.trail, self.cached, self.plain = trail, cached, plain
        namespace, name, number = last_version(trail)
        self.start = (namespace, name)
        self.walks: list[tuple[str, Any, int]] = [
            (str(number), "upstream", 20),
            (str(number), "upstream", 3),
            ("1", "downstream", 20),
            (str(number), "both", 4),
            ("1", "both", 20),
        ]

    def columns(self, who: datatrail.Trail, selector: str, direction: Any, depth: int) -> LineageColumns:
        return who.dataset_lineage_columns(*self.start, selector=selector, direction=direction, depth=depth)

    def check(self) -> dict[tuple[str, str, int], LineageColumns]:
        """Every walk through every cached reader, twice (the second from the cache), is the plain
        reader's answer; the graph (``Trail.dataset_lineage``) too. Returns the plain answers."""
        out = {}
        for walk in self.walks:
            want = self.columns(self.plain, *walk)
            for reader in self.cached:
                hits = kept_cache(reader).hits
                for _ in range(2):
                    same(self.columns(reader, *walk), want)
                assert kept_cache(reader).hits > hits, "the second answer was the kept walk"
                selector, direction, depth = walk
                graph = reader.dataset_lineage(*self.start, selector=selector, direction=direction, depth=depth)
                assert graph.nodes == want.result().nodes and graph.edges == want.result().edges
            out[walk] = want
        assert kept_cache(self.plain).limit == 0 and len(kept_cache(self.plain)) == 0
        return out


def open_readers(trail: datatrail.Trail, monkeypatch: pytest.MonkeyPatch) -> Readers:
    """Readers on ``trail``'s database: ``trail`` itself (the full store, cache on), on SQLite an
    embedded store that only reads (its quick connection, cache on), and one with the cache off."""
    monkeypatch.setenv(CACHE_ENV, "64")
    monkeypatch.setattr(lineage, "KEEP_FROM_NODES", 0)  # these graphs are small: kept all the same
    cached = [trail]
    if trail.uri.startswith("sqlite:"):
        quick = datatrail.connect(trail.uri)
        assert isinstance(quick._store, EmbeddedStore)
        cached.append(quick)
    readers = Readers(trail, cached, trail)  # the plain reader comes next
    for reader in cached:  # each cache made now, under the setting of 64 MB
        readers.columns(reader, *readers.walks[0])
        assert kept_cache(reader).limit > 0
    monkeypatch.setenv(CACHE_ENV, "0")
    readers.plain = datatrail.connect(trail.uri)
    return readers


def close_readers(readers: Readers) -> None:
    for reader in [*readers.cached[1:], readers.plain]:
        reader.close()


@pytest.mark.sql_store
def test_kept_columns_are_the_uncached_answer_after_each_kind_of_event(
    trail: datatrail.Trail, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pipeline(trail)
    readers = open_readers(trail, monkeypatch)
    try:
        up20 = readers.walks[0]
        before = readers.check()

        # An unrelated run (another namespace): the answers stay.
        other = build_run_event(EventType.COMPLETE, str(uuid.UUID(int=900)), "team-z", "elsewhere")
        other["inputs"] = [{"namespace": "team-z", "name": "src"}]
        other["outputs"] = [{"namespace": "team-z", "name": "dst"}]
        trail.ingest(other)
        after = readers.check()
        assert all(edge_pairs(after[w]) == edge_pairs(before[w]) for w in readers.walks)

        # A new run inside the walk: a run of the upstream walk reads one more dataset (the walk grows).
        graph = trail.dataset_lineage(*readers.start, selector=up20[0], direction="upstream", depth=20)
        grown = next(n.data for _, n in sorted(graph.nodes.items()) if n.type == "run")
        again = build_run_event(EventType.COMPLETE, grown["id"], grown["namespace"], grown["job"])
        again["eventTime"] = "2026-01-01T07:00:00Z"
        again["inputs"] = [{"namespace": "team-a", "name": "extra-source"}]
        trail.ingest(again)
        before, after = after, readers.check()
        assert any("extra-source" in i for i in after[up20].ids) and len(after[up20].ids) > len(before[up20].ids)

        # A new reader of version 1 (the downstream walks grow) that writes a checked output.
        first = trail.get(f"{readers.start[0]}:{readers.start[1]}@1")
        down = run_event(903, "down", minute=2)
        down["inputs"] = [
            {"namespace": first.namespace, "name": first.name, "facets": {"version": {"datasetVersion": first.key}}}
        ]
        down["outputs"] = [{"namespace": "team-a", "name": "down-out", "facets": {"dataQualityAssertions": ASSERTIONS}}]
        trail.ingest(down)
        before, after = after, readers.check()
        assert any("down-out" in i for i in after[("1", "downstream", 20)].ids)

        # A run's COMPLETE changes a run node's state (the last run was still going).
        last = str(uuid.UUID(int=RUNS))

        def states() -> set[str]:
            return {d["state"] for walk in readers.walks for d in after[walk].data if d.get("id") == last}

        assert states() == {"RUNNING"}  # in some walks (those that reach it)
        ended = build_run_event(EventType.COMPLETE, last, _dataset(RUNS)[0], f"job{RUNS % 5}")
        ended["eventTime"] = "2026-01-01T08:00:00Z"
        trail.ingest(ended)
        before, after = after, readers.check()
        assert states() == {"COMPLETE"}

        # A dataset event (no run) fills a version's size; a tag; a new version of a dataset in the walk.
        node = next(d for d in after[up20].data if "digest" in d and d["name"] != readers.start[1])
        key = trail.get(f"{node['namespace']}:{node['name']}@{node['version']}").key
        trail.ingest(dataset_event(node, dataset_facets(VersionInfo(key=key, size=4242))))
        before, after = after, readers.check()
        assert any(d.get("size") == 4242 for d in after[up20].data)
        trail.tag(f"{node['namespace']}:{node['name']}@{node['version']}", "gold")
        readers.check()
        trail.ingest(build_dataset_event(node["namespace"], node["name"], VersionInfo(key="added-v1", size=5)))
        readers.check()

        # A failed check on a version in the walk, by a dataset event: its data gains the mark.
        checked = next(d for d in after[up20].data if "digest" in d and "checks" not in d)
        checked_key = trail.get(f"{checked['namespace']}:{checked['name']}@{checked['version']}").key
        facets = {"version": {"datasetVersion": checked_key}, "dataQualityAssertions": ASSERTIONS}
        trail.ingest(dataset_event(checked, facets))
        before, after = after, readers.check()
        assert sum("checks" in d for d in after[up20].data) > sum("checks" in d for d in before[up20].data)

        # A reader who may not see team-b: what the guard makes of the uncached answer, warm or cold.
        for reader in readers.cached:
            scoped = reader.scoped(Principal("reader", grants=(Grant("viewer", "team-a"),)), "test")
            for walk in readers.walks:
                want = redact_columns(after[walk], lambda ns: ns == "team-a")
                for _ in range(2):
                    got = readers.columns(scoped, *walk)
                    same(got, want)
                    assert not any(d.get("namespace") == "team-b" for d in got.data)
                    assert not any(":team-b:" in i for i in got.ids)
            assert any(d == {"redacted": True} for d in got.data)

        if not trail.uri.startswith("sqlite:"):
            return
        # A restore: the database goes back to a backup and takes as many new events as were stored
        # since (the same largest event id as the caches' stamps, other rows): a new epoch.
        backup = tmp_path / "backup.db"
        create_backup(trail.uri, backup)
        for i in range(3):
            trail.ingest(run_event(950 + i, f"late{i}", minute=10 + i))
        readers.check()
        restore_backup(trail.uri, backup)
        for i in range(3):
            late = run_event(960 + i, "restored", minute=20 + i)
            late["inputs"] = [{"namespace": node["namespace"], "name": node["name"]}]
            late["outputs"] = [{"namespace": readers.start[0], "name": readers.start[1]}]
            trail.ingest(late)
        after = readers.check()
        assert any("restored" in str(d.get("job")) for d in after[("1", "downstream", 20)].data)
    finally:
        close_readers(readers)


@pytest.mark.sql_store
def test_what_a_caller_does_to_an_answer_never_reaches_the_next(
    trail: datatrail.Trail, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline(trail)
    down = run_event(903, "down", minute=2)  # a checked output: data holding a dict of marks
    down["inputs"] = [{"namespace": _dataset(RUNS - 1)[0], "name": _dataset(RUNS - 1)[1]}]
    down["outputs"] = [{"namespace": "team-a", "name": "down-out", "facets": {"dataQualityAssertions": ASSERTIONS}}]
    trail.ingest(down)
    readers = open_readers(trail, monkeypatch)
    try:
        for reader in readers.cached:
            for walk in readers.walks:
                want = readers.columns(readers.plain, *walk)
                for _ in range(3):  # cold or kept as rows, made into dicts, kept as dicts
                    got = readers.columns(reader, *walk)
                    same(got, want)
                    for d in got.data:
                        for value in d.values():
                            if isinstance(value, dict):
                                value["failed"] = -1
                        d["namespace"] = "changed"
                        d["extra"] = True
                    got.ids.append("x")
                    got.ids[0] = "changed"
                    got.depths[0] = -1
                    got.origins.clear()
                    got.data.append({})
                assert any("checks" in d for d in want.data) or walk[1] == "upstream"
        assert kept_cache(readers.cached[0]).hits > 0
    finally:
        close_readers(readers)


def test_only_walks_of_keep_from_nodes_nodes_or_more_are_kept(
    trail: datatrail.Trail, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small walks are made again rather than kept: each kept walk costs every later call a check after new
    events (a server's readers asking for a small graph per new dataset filled the cache with thousands)."""
    pipeline(trail)
    readers = open_readers(trail, monkeypatch)
    try:
        for reader in readers.cached:
            cache = kept_cache(reader)
            for walk in readers.walks:
                size = len(readers.columns(readers.plain, *walk).ids)
                for bound, kept in ((size + 1, False), (size, True)):
                    cache.clear()
                    monkeypatch.setattr(lineage, "KEEP_FROM_NODES", bound)
                    first = readers.columns(reader, *walk)
                    hits = cache.hits
                    same(readers.columns(reader, *walk), first)
                    assert (cache.hits > hits) is kept, (walk, bound)
    finally:
        close_readers(readers)


def test_a_kept_walk_is_estimated_at_no_less_than_it_holds(tmp_path: Path) -> None:
    """The bytes the cache counts for a walk of columns, as rows and as dicts, against tracemalloc."""
    with datatrail.init(tmp_path, f"sqlite:///{tmp_path / 'trail.db'}") as trail:
        for seed in range(3):
            events = []
            for i in range(1, 301):
                event = build_run_event(EventType.COMPLETE, str(uuid.UUID(int=seed * 1000 + i)), "ns", f"job{i % 7}")
                event["inputs"] = [{"namespace": "ns", "name": f"d{seed}-{j}"} for j in (i - 1, i - 2, i // 3) if j > 0]
                event["outputs"] = [{"namespace": "ns", "name": f"d{seed}-{i}"}]
                events.append(event)
            assert not any(isinstance(r, Exception) for r in trail.ingest_many(events))
    store = SqlStore(f"sqlite:///{tmp_path / 'trail.db'}")
    try:
        with store.engine.connect() as conn:
            reader = _Reader.of(conn)
            start = [v.id for v in store.list_versions("ns", "d2-300") if v.id is not None]
            found = _found(reader, start, "upstream", 1000, None, edges=False)
            gc.collect()
            tracemalloc.start()
            try:
                base = tracemalloc.get_traced_memory()[0]
                loaded = _load(reader, found)
                kept = _kept_columns(loaded, "upstream")
                del loaded
                gc.collect()
                as_rows = tracemalloc.get_traced_memory()[0] - base
                estimate_rows = _columns_walk_bytes(kept)
                made = _refresh_columns(reader, kept)
                assert isinstance(made, KeptWalk) and isinstance(made.graph, KeptColumns)
                del kept
                gc.collect()
                as_dicts = tracemalloc.get_traced_memory()[0] - base
                estimate_dicts = _columns_walk_bytes(made)
            finally:
                tracemalloc.stop()
            reader.close()
    finally:
        store.close()
    assert len(made.graph.ids) == 600
    assert as_rows <= estimate_rows <= 2 * as_rows, (as_rows, estimate_rows)
    assert as_dicts <= estimate_dicts <= 2 * as_dicts, (as_dicts, estimate_dicts)
