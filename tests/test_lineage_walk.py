"""The walk without its edges (issue 22, item 1, round six): ``traverse_columns`` walks the nodes only
and reads the edges after the walk in one statement (``_Reader.edges``); the old path kept each edge
the walk saw in a set. On random graphs (runs reading 0-3 and writing 1-2 datasets, some still
running, two namespaces), from single versions and from several at once, every direction, depths from
0 to beyond the graph, now and as of a past time: the same nodes, depths, data and edges as the old
path, and edges that are exactly the run_io rows between two reached nodes. SQLite (through
SQLAlchemy and through the standard library's connection, the embedded store's fast path) and
PostgreSQL.
"""

from __future__ import annotations

import random
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import datatrail
from datatrail.core.model import EventType
from datatrail.core.results import Direction, LineageColumns
from datatrail.events import build_run_event
from datatrail.store.sql.lineage import _found, _load, _Reader, traverse, traverse_columns, traverse_sqlite
from datatrail.store.sql.store import SqlStore


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_uri(request: pytest.FixtureRequest, workdir: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{workdir / 'trail.db'}"
    return str(request.getfixturevalue("pg_uri"))


def random_events(seed: int, runs: int) -> list[dict[str, Any]]:
    """Run i reads 0-3 of the datasets written so far and writes 1-2 (a new version of each); every
    9th run is still going (START only). Each event a minute after the one before."""
    rng = random.Random(seed)
    written: list[tuple[str, str]] = []
    events = []
    for i in range(1, runs + 1):
        namespace = rng.choice(("team-a", "team-b"))
        event_type = EventType.START if i % 9 == 0 else EventType.COMPLETE
        event = build_run_event(event_type, str(uuid.UUID(int=seed * 1_000_000 + i)), namespace, f"job{i % 4}")
        event["eventTime"] = f"2026-0{1 + seed % 9}-01T{i // 60:02d}:{i % 60:02d}:00Z"
        reads = rng.sample(written, min(len(written), rng.randrange(4)))
        writes = {(rng.choice(("team-a", "team-b")), f"ds{rng.randrange(12):02d}") for _ in range(rng.randrange(1, 3))}
        event["inputs"] = [{"namespace": ns, "name": name} for ns, name in reads]
        event["outputs"] = [{"namespace": ns, "name": name} for ns, name in sorted(writes)]
        written.extend(w for w in sorted(writes) if w not in written)
        events.append(event)
    return events


def old_path(store: SqlStore, start: Sequence[int], direction: Direction, depth: int, as_of: datetime | None) -> Any:
    """The columns as the walk made them before: each edge kept by the walk as it went."""
    with store.engine.connect() as conn:
        reader = _Reader.of(conn)
        try:
            return _load(reader, _found(reader, start, direction, depth, as_of, edges=True), as_of).columns
        finally:
            reader.close()


def pairs(columns: LineageColumns) -> list[tuple[str, str]]:
    return sorted((columns.ids[o], columns.ids[d]) for o, d in zip(columns.origins, columns.destinations, strict=True))


def test_edges_read_after_the_walk_are_the_walks_own(sql_uri: str, workdir: Path) -> None:
    with datatrail.init(workdir, sql_uri) as trail:
        for seed in (1, 2):
            for result in trail.ingest_many(random_events(seed, 70)):
                assert not isinstance(result, Exception), result
    store = SqlStore(sql_uri)
    try:
        with store.engine.connect() as conn:
            vids = [int(v) for (v,) in conn.exec_driver_sql("SELECT id FROM versions ORDER BY id")]
            edges = conn.exec_driver_sql("SELECT run_pk, direction, version_id FROM run_io")
            run_io = [(int(pk), int(io), int(vid)) for pk, io, vid in edges]
            run_ids = dict(conn.exec_driver_sql("SELECT pk, run_id FROM runs").all())
            named = "SELECT v.id, n.name, d.name, v.number FROM versions v JOIN datasets d ON d.id = v.dataset_id"
            named += " JOIN namespaces n ON n.id = d.namespace_id"
            version_ids = {v: f"version:{ns}:{name}@{number}" for v, ns, name, number in conn.exec_driver_sql(named)}
        rng = random.Random(7)
        starts = [[v] for v in rng.sample(vids, 8)] + [rng.sample(vids, 3), vids[:1] + vids[-1:]]
        past = datetime(2026, 2, 1, 0, 40, tzinfo=UTC)  # seed 1's first 40 runs only
        seen_edges = 0
        for start in starts:
            for direction in ("upstream", "downstream", "both"):
                for depth in (0, 1, 2, 5, 200):
                    for as_of in (None, past):
                        old = old_path(store, start, direction, depth, as_of)
                        with store.engine.connect() as conn:
                            new = traverse_columns(conn, start, direction, depth, as_of)
                        assert (new.ids, new.types, new.depths, new.data) == (old.ids, old.types, old.depths, old.data)
                        assert pairs(new) == pairs(old) and len(set(pairs(new))) == len(new.origins)
                        # Exactly the run_io rows between two reached nodes, in the direction data flows.
                        rows = {nid: i for i, nid in enumerate(new.ids)}
                        expected = []
                        for pk, io, vid in run_io:
                            run, version = rows.get(f"run:{run_ids[pk]}"), rows.get(version_ids[vid])
                            if run is not None and version is not None:
                                expected.append((version, run) if io == 0 else (run, version))
                        assert sorted(expected) == sorted(zip(new.origins, new.destinations, strict=True))
                        with store.engine.connect() as conn:
                            assert traverse(conn, start, direction, depth, as_of) == new.result()
                        seen_edges += len(new.origins)
                        if sql_uri.startswith("sqlite"):
                            db = sqlite3.connect(sql_uri.removeprefix("sqlite:///"), isolation_level=None)
                            try:
                                db.execute("BEGIN")
                                fast = traverse_sqlite(db, start, direction, depth, as_of)
                                db.execute("ROLLBACK")
                                # Nothing left behind: the rows' tables are gone with the call.
                                assert db.execute("SELECT count(*) FROM temp.sqlite_master").fetchone()[0] == 0
                            finally:
                                db.close()
                            assert fast == new
        assert seen_edges > 1000  # the graphs are not trivial
    finally:
        store.close()
