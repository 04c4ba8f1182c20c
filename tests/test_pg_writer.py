"""PostgreSQL's write transactions on the connection a store keeps for them (store/sql/database.py).

A write transaction costs two round trips: BEGIN, the advisory lock, the audit
head and prefetch.py's lookups in one, the deferred writes and COMMIT in the
other (no pool checkout and pre-ping, no round trip of its own for BEGIN). The
kept connection outlives a refused event and a restart of PostgreSQL.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import pq
from sqlalchemy import event

from datatrail.core.errors import InvalidInput
from datatrail.store.sql.store import SqlStore
from tests.pgserver import PgServer
from tests.test_ingest_memory import bad_deploy, io_event, rid, run_event, state_of

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(pg_uri: str) -> Iterator[SqlStore]:
    s = SqlStore(pg_uri)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def trace(store: SqlStore) -> Iterator[Any]:
    """A file that libpq's protocol trace of the store's connections goes to."""
    with tempfile.TemporaryFile("w+") as file:
        yield traced(store, file)
        store._db._drop_writer_connection()  # no traced connection outlives the file
        store._db.engine.dispose()


def traced(store: SqlStore, trace: Any) -> Any:
    """Trace the store's connections opened from now on into ``trace``."""

    @event.listens_for(store._db.engine, "connect")
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.pgconn.trace(trace.fileno())
        dbapi_conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    store._db._drop_writer_connection()  # the next write connects, traced
    store._db.engine.dispose()
    return trace


def messages(trace: Any, start: int) -> Counter[str]:
    """The client's protocol messages in the trace from ``start``, by type."""
    trace.flush()
    os.fsync(trace.fileno())
    trace.seek(start)
    found: Counter[str] = Counter()
    for line in trace:
        parts = line.split("\t")
        if len(parts) > 2 and parts[0] == "F":
            found[parts[2].strip()] += 1
    return found


def test_an_event_costs_two_round_trips(store: SqlStore, trace: Any) -> None:
    store.ingest(run_event("ns", "job", "out"), "ada", "lineage.ingest", detail=False)  # the names are stored
    trace.seek(0, os.SEEK_END)
    start = trace.tell()
    result = store.ingest(run_event("ns", "job", "out", minute=1), "ada", "lineage.ingest", detail=False)
    sent = messages(trace, start)
    assert not result.duplicate
    # Two round trips (a Sync ends each pipeline), no simple-protocol ping, BEGIN among the statements.
    assert sent["Sync"] == 2, sent
    assert sent["Query"] == 0, sent
    assert [d.name for d in store.list_datasets()] == ["out"]
    # A late earlier reader of a source: no version current then, none announced, its observed one dated back.
    store.ingest(io_event("START", rid(1), 30, inputs=("src",)), "ada", "lineage.ingest", detail=False)
    trace.seek(0, os.SEEK_END)  # libpq writes at the file's offset, which it shares with this file object
    start = trace.tell()
    store.ingest(io_event("START", rid(0x101), 10, inputs=("src",)), "ada", "lineage.ingest", detail=False)  # job-01
    sent = messages(trace, start)
    assert sent["Sync"] == 2, sent
    (version,) = store.list_versions("ns", "src")
    assert version.created_at.minute == 10


def test_new_datasets_jobs_and_observed_versions_cost_no_round_trip(store: SqlStore, trace: Any) -> None:
    store.ingest(io_event("COMPLETE", rid(1), 5, outputs=("x",)), "ada", "lineage.ingest")  # namespace, job-01
    trace.seek(0, os.SEEK_END)
    start = trace.tell()
    event = io_event("COMPLETE", rid(0x201), 6, inputs=("new-src", "x"), outputs=("new-out",))  # job-01
    store.ingest(event, "ada", "lineage.ingest", detail=False)
    sent = messages(trace, start)
    # Their ids were reserved by the prefetch: the rows go with the COMMIT (six round trips before).
    assert sent["Sync"] == 2, sent
    assert [v.number for v in store.list_versions("ns", "new-out")] == [1]
    assert sorted(d.name for d in store.list_datasets()) == ["new-out", "new-src", "x"]
    (observed,) = store.list_versions("ns", "new-src")
    assert observed.created_at.minute == 6
    run = store.get_run(rid(0x201))
    assert sorted(f"{v.name}@{v.number}" for v in run.inputs) == ["new-src@1", "x@1"]
    # A new job too (two round trips of its own before).
    trace.seek(0, os.SEEK_END)
    start = trace.tell()
    store.ingest(io_event("START", rid(0x402), 7, inputs=("new-src",)), "ada", "lineage.ingest", detail=False)
    assert messages(trace, start)["Sync"] == 2
    run = store.get_run(rid(0x402))
    assert (run.job, run.state.value) == ("job-02", "RUNNING")
    # Ids reserved and not used (the dataset asked under two keys) leave no row behind either.
    again = io_event("COMPLETE", rid(0x301), 8, inputs=("new-src",), outputs=("new-src2",))
    store.ingest(again, "ada", "lineage.ingest")
    assert sorted(d.name for d in store.list_datasets()) == ["new-out", "new-src", "new-src2", "x"]


def test_a_refused_event_leaves_no_transaction_and_no_lock_behind(store: SqlStore, pg_uri: str) -> None:
    store.ingest(run_event("ns", "job", "a"), "ada", "lineage.ingest")
    kept = store._db._writer_conn
    with pytest.raises(InvalidInput, match="environment"):
        store.ingest(bad_deploy("fresh"), "ada", "lineage.ingest")  # refused inside the transaction
    assert store._db._writer_conn is kept  # rolled back, and kept
    with psycopg.connect(pg_uri) as other:
        database = pg_uri.rsplit("/", 1)[1]
        states = other.execute(
            "SELECT state FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (database,)
        ).fetchall()
        assert states and all(state == "idle" for (state,) in states)
        assert other.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone() == (0,)
    assert not store.ingest(run_event("ns", "job", "b"), "ada", "lineage.ingest").duplicate
    assert [d.name for d in store.list_datasets()] == ["a", "b"]
    assert store.check_integrity() == []


def test_a_restart_of_postgresql_costs_no_write(store: SqlStore, pg_server: PgServer) -> None:
    store.ingest(run_event("ns", "job", "before"), "ada", "lineage.ingest")
    kept = store._db._writer_conn
    pg_server.halt()  # closes every connection: the kept one is broken, and does not know it yet
    pg_server.resume()
    # The first round trip finds it broken: the transaction starts again on a new connection.
    assert not store.ingest(run_event("ns", "job", "after"), "ada", "lineage.ingest").duplicate
    assert store._db._writer_conn is not kept
    assert [d.name for d in store.list_datasets()] == ["after", "before"]
    assert store.check_integrity() == []


# Readers of a source nobody reported writing, arriving out of order: its one "observed" version is dated
# by the earliest reader, moved back among the deferred writes (no round trip of its own under the lock).
LATE_READERS = [
    [io_event("START", rid(1), 30, inputs=("src",))],  # src@1 observed, created 10:30
    [
        io_event("START", rid(2), 10, inputs=("src",)),  # none current at 10:10: the observed one, moved back
        io_event("START", rid(3), 20, inputs=("src",)),  # src@1, now current at 10:20 (this batch moved it)
        io_event("COMPLETE", rid(2), 11, inputs=("src",), outputs=("out",)),
    ],
    [io_event("START", rid(4), 5, inputs=("src", "out"))],  # src@1 moved to 10:05; out@2 observed (none then)
]


def test_late_readers_of_a_source_give_the_state_of_one_event_at_a_time(tmp_path: Path, pg_uri: str) -> None:
    states = []
    for uri, batched in ((f"sqlite:///{tmp_path / 'one.db'}", False), (pg_uri, True)):
        store = SqlStore(uri, create=True)
        try:
            for group in LATE_READERS:
                if batched:
                    assert not any(isinstance(r, Exception) for r in store.ingest_many(group, "ada", "ingest"))
                else:
                    for e in group:
                        store.ingest(e, "ada", "ingest")
            assert store.check_integrity() == []
            states.append(state_of(store))
        finally:
            store.close()
    one_at_a_time, batched_state = states
    runs, versions, _ = batched_state
    assert [(n, created.minute) for n, created, _ in versions["src"]] == [(1, 5)]
    assert runs[rid(3)][3] == [("src", 1)] and runs[rid(4)][3] == [("out", 2), ("src", 1)]
    assert batched_state == one_at_a_time
