"""Ingest remembers namespace, dataset and job ids between events (store/sql/transaction.py).

What it remembers must never outlive what the database holds: ids created by
an event whose savepoint rolled back, ids of a store replaced by a restore, and
rows written by another process meanwhile.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datatrail.core.errors import InvalidInput
from datatrail.store.sql.store import SqlStore


def run_event(namespace: str, job: str, output: str, *, minute: int = 0, run_id: str | None = None) -> dict[str, Any]:
    """A COMPLETE run writing ``output`` without a version facet: a new version per run."""
    return {
        "eventType": "COMPLETE",
        "eventTime": f"2026-03-01T10:{minute:02d}:00+00:00",
        "producer": "https://example.com/tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id or str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": namespace, "name": job, "facets": {}},
        "inputs": [],
        "outputs": [{"namespace": namespace, "name": output}],
    }


def bad_deploy(namespace: str) -> dict[str, Any]:
    """Valid enough to write its namespace, job and run, refused later by the deployment applier."""
    event = run_event(namespace, "deploy", "never")
    event["run"]["facets"]["datatrail_deployment"] = {
        "_producer": "https://example.com/tests",
        "_schemaURL": "https://example.com/tests#X",
        "environment": 7,
    }
    return event


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    uri = f"sqlite:///{tmp_path / 'trail.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_uri")
    s = SqlStore(uri, create=True)
    try:
        yield s
    finally:
        s.close()


def integrity(store: SqlStore) -> list[str]:
    return store.check_integrity()


def test_a_refused_event_in_a_batch_leaves_no_remembered_id(store: SqlStore) -> None:
    # Event 1 creates namespace "fresh" and its job inside a savepoint that rolls back;
    # event 2 names the same namespace and must create it again, not reuse the lost id.
    out = store.ingest_many(
        [run_event("seen", "j", "a"), bad_deploy("fresh"), run_event("fresh", "deploy", "b", minute=1)],
        "ada",
        "ingest",
    )
    assert not isinstance(out[0], Exception) and not isinstance(out[2], Exception)
    assert isinstance(out[1], InvalidInput) and "environment" in str(out[1])
    names = {(d.namespace, d.name) for d in store.list_datasets()}
    assert names == {("seen", "a"), ("fresh", "b")}
    assert {(j.namespace, j.name) for j in store.list_jobs()} == {("seen", "j"), ("fresh", "deploy")}
    assert integrity(store) == []
    # Later transactions use the ids the batch committed.
    store.ingest(run_event("fresh", "deploy", "b", minute=2), "ada", "ingest")
    assert [v.number for v in store.list_versions("fresh", "b")] == [1, 2]
    assert integrity(store) == []


def test_a_refused_single_event_leaves_no_remembered_id(store: SqlStore) -> None:
    with pytest.raises(InvalidInput):
        store.ingest(bad_deploy("gone"), "ada", "ingest")
    store.ingest(run_event("gone", "deploy", "x"), "ada", "ingest")
    assert [(d.namespace, d.name) for d in store.list_datasets()] == [("gone", "x")]
    assert integrity(store) == []


def test_a_late_earlier_event_still_moves_creation_times_back(store: SqlStore) -> None:
    store.ingest(run_event("ns", "job", "out", minute=30), "ada", "ingest")
    store.ingest(run_event("ns", "job", "out", minute=10), "ada", "ingest")  # arrives late, happened first
    (dataset,) = store.list_datasets()
    assert dataset.created_at.minute == 10
    (job,) = store.list_jobs()
    assert job.created_at is not None and job.created_at.minute == 10


def test_rows_written_by_another_store_object_are_found(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'trail.db'}"
    first, second = SqlStore(uri, create=True), SqlStore(uri)
    try:
        first.ingest(run_event("ns", "job", "out"), "ada", "ingest")
        second.ingest(run_event("ns", "job", "out", minute=1), "bob", "ingest")  # knows nothing yet
        first.ingest(run_event("ns", "job", "out", minute=2), "ada", "ingest")
        assert [v.number for v in first.list_versions("ns", "out")] == [1, 2, 3]
        assert len(first.list_datasets()) == 1 and integrity(first) == []
    finally:
        first.close()
        second.close()


def test_a_restore_makes_the_store_forget_what_it_remembered(tmp_path: Path) -> None:
    from datatrail.store.sql.backup import copy_database, restore_database

    live = tmp_path / "trail.db"
    store = SqlStore(f"sqlite:///{live}", create=True)
    try:
        store.ingest(run_event("old", "job", "kept"), "ada", "ingest")
        copy_database(live, tmp_path / "backup.db")
        # After the backup: a namespace and dataset the restore will take away.
        store.ingest(run_event("lost", "job2", "dropped"), "ada", "ingest")
        restore_database(tmp_path / "backup.db", live)
        # "lost" must be created again, with a new id, not the remembered one.
        store.ingest(run_event("lost", "job2", "again"), "ada", "ingest")
        assert {(d.namespace, d.name) for d in store.list_datasets()} == {("old", "kept"), ("lost", "again")}
        assert integrity(store) == []
    finally:
        store.close()


def test_deferred_writes_go_out_before_a_statement_that_reads_their_table(store: SqlStore) -> None:
    from sqlalchemy import func, select

    from datatrail.store.sql import tables as t
    from datatrail.store.sql.statements import AUDIT_LAST, NS_FIND

    with store._db.write() as tx:
        store._audit.append(tx, actor="ada", action="test.one", target=None, details={}, event_id=None)
        assert tx.first(NS_FIND, n="nowhere") is None  # reads namespaces only: the entry still waits
        assert AUDIT_LAST.first(tx.conn) is None  # (asked past the transaction object)
        assert tx.first(AUDIT_LAST).seq == 1  # reads the audit table: the entry went out first
        store._audit.append(tx, actor="ada", action="test.two", target=None, details={}, event_id=None)
        assert tx.execute(select(func.count()).select_from(t.audit)).scalar() == 2  # SQLAlchemy: may read anything
    assert [e.action for e in store.audit_log()] == ["test.two", "test.one"]


def io_event(
    state: str, run_id: str, minute: int, *, inputs: tuple[str, ...] = (), outputs: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "eventType": state,
        "eventTime": f"2026-03-01T10:{minute:02d}:00+00:00",
        "producer": "https://example.com/tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": {}},
        "job": {"namespace": "ns", "name": f"job-{run_id[-2:]}", "facets": {}},
        "inputs": [{"namespace": "ns", "name": n} for n in inputs],
        "outputs": [{"namespace": "ns", "name": n} for n in outputs],
    }


def rid(n: int) -> str:
    return str(uuid.UUID(int=n))


# Already stored before the batch: x has version 1 (10:05) and an unrelated dataset.
BEFORE = [io_event("COMPLETE", rid(1), 5, outputs=("x",)), io_event("COMPLETE", rid(2), 6, outputs=("other",))]
BATCH = [
    io_event("START", rid(3), 20, inputs=("x",)),  # x@1 (stored before the batch)
    io_event("COMPLETE", rid(4), 15, outputs=("x",)),  # x@2, created 10:15
    io_event("COMPLETE", rid(3), 21, inputs=("x",), outputs=("y",)),  # x@2 now: written in this batch
    io_event("COMPLETE", rid(5), 1, outputs=("x",)),  # x@3 but created 10:01, before x@1
    io_event("START", rid(6), 3, inputs=("x",)),  # x@3: the late version is current at 10:03
    io_event("COMPLETE", rid(4), 15, outputs=("x",)),  # a repeat inside the batch: nothing new
    io_event("RUNNING", rid(3), 22, inputs=("x",)),  # after COMPLETE: the run stays COMPLETE
    io_event("START", rid(7), 30, inputs=("y", "brand-new")),  # y@1; brand-new gets an observed version
    io_event("COMPLETE", rid(1), 5, outputs=("x",)),  # a repeat of an event stored before the batch
]


def state_of(store: SqlStore) -> Any:
    runs = {}
    for run in store.list_runs(limit=100):
        full = store.get_run(run.id)
        runs[run.id] = (
            full.state.value,
            full.started_at,
            full.ended_at,
            sorted((v.name, v.number) for v in full.inputs),
            sorted((v.name, v.number) for v in full.outputs),
        )
    versions = {
        d.name: [(v.number, v.created_at, v.created_by) for v in store.list_versions(d.namespace, d.name)]
        for d in store.list_datasets()
    }
    audit = [(r["seq"], r["action"], r["target"]) for r in store.audit_rows()[1]]
    return runs, versions, audit


def test_a_postgresql_batch_gives_the_state_of_one_event_at_a_time(tmp_path: Path, pg_uri: str) -> None:
    from datatrail.core.chain import verify_chain

    results = []
    for uri, batched in ((f"sqlite:///{tmp_path / 'one.db'}", False), (pg_uri, True)):
        store = SqlStore(uri, create=True)
        try:
            store.ingest_many(BEFORE, "ada", "ingest")
            if batched:
                out = store.ingest_many(BATCH, "ada", "ingest")
                assert [isinstance(r, Exception) for r in out] == [False] * len(BATCH)
                assert [r.duplicate for r in out if not isinstance(r, Exception)][5::3] == [True, True]
            else:
                for event in BATCH:
                    store.ingest(event, "ada", "ingest")
            assert verify_chain(store.audit_rows()[1]).ok
            assert store.check_integrity() == []
            results.append(state_of(store))
        finally:
            store.close()
    one_at_a_time, batch = results
    runs = batch[0]
    assert runs[rid(3)][0] == "COMPLETE" and runs[rid(3)][3] == [("x", 1), ("x", 2), ("x", 3)]
    assert runs[rid(6)][3] == [("x", 3)] and runs[rid(7)][3] == [("brand-new", 1), ("y", 1)]
    assert batch == one_at_a_time


def ingest_together(store: SqlStore, events: list[dict[str, Any]]) -> list[Any]:
    """Ingest from one thread per event, all queued while the write lock is held: one group commit."""
    results: list[Any] = [None] * len(events)

    def call(i: int) -> None:
        try:
            results[i] = store.ingest(events[i], f"user{i}", "lineage.ingest")
        except Exception as exc:  # the caller's own outcome, checked below
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(events))]
    with store._db.writers:
        for th in threads:
            th.start()
        deadline = time.monotonic() + 30
        while len(store._ingest._queue) < len(events) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(store._ingest._queue) == len(events)
    for th in threads:
        th.join(30)
    return results


def count_transactions(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    opened = [0]
    write = store._db.write

    def counted(first: Any = None) -> Any:
        opened[0] += 1
        return write(first)

    monkeypatch.setattr(store._db, "write", counted)
    return opened


def test_concurrent_callers_share_one_transaction(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from datatrail.core.chain import verify_chain

    events = [run_event("ns", "job", f"out{i}", minute=i) for i in range(6)]
    events.append(dict(events[0]))  # the same event from a second caller: a duplicate
    opened = count_transactions(store, monkeypatch)
    results = ingest_together(store, events)
    assert opened == [1]
    assert all(not isinstance(r, Exception) for r in results)
    assert sorted(r.duplicate for r in results) == [False] * 6 + [True]
    assert results[0].event_id == results[6].event_id
    assert sorted(d.name for d in store.list_datasets()) == [f"out{i}" for i in range(6)]
    rows = list(store.audit_rows()[1])
    assert len(rows) == 6 and verify_chain(rows).ok
    assert {r["actor"] for r in rows} <= {f"user{i}" for i in range(7)}


def test_a_bad_event_in_a_group_fails_alone(store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    events = [run_event("ns", "job", "a"), bad_deploy("fresh"), run_event("fresh", "deploy", "b", minute=1)]
    opened = count_transactions(store, monkeypatch)
    results = ingest_together(store, events)
    assert opened == [1 + len(events)]  # the group rolled back, then one transaction per event
    assert isinstance(results[1], InvalidInput) and "environment" in str(results[1])
    assert not isinstance(results[0], Exception) and not isinstance(results[2], Exception)
    assert {(d.namespace, d.name) for d in store.list_datasets()} == {("ns", "a"), ("fresh", "b")}
    assert store.check_integrity() == []


@pytest.mark.parametrize("callers", [1, 3])
def test_a_caller_is_answered_only_once_its_event_is_committed(store: SqlStore, callers: int) -> None:
    """Whoever stores a caller's event (the writer thread, alone or in a group) answers after COMMIT.

    Answered earlier, a caller could read right after its write and not find it, and a failed
    commit would have been reported as stored (seen as a lost audit entry under load).
    """
    from sqlalchemy import event

    answered = threading.Event()
    seen_at_commit: list[bool] = []

    def on_commit(_conn: Any) -> None:
        if threading.current_thread().name == "datatrail-writer":
            answered.wait(0.3)  # a caller answered before the commit would show up here
            seen_at_commit.append(answered.is_set())

    event.listen(store._db.engine, "commit", on_commit)
    try:
        events = [run_event("ns", "job", f"c{i}", minute=i) for i in range(callers)]

        def call(e: dict[str, Any]) -> None:
            store.ingest(e, "ada", "lineage.ingest")
            answered.set()

        threads = [threading.Thread(target=call, args=(e,)) for e in events]
        with store._db.writers:  # another transaction runs: the callers hand over to the writer thread
            for th in threads:
                th.start()
            deadline = time.monotonic() + 30
            while len(store._ingest._queue) < callers and time.monotonic() < deadline:
                time.sleep(0.005)
        for th in threads:
            th.join(30)
    finally:
        event.remove(store._db.engine, "commit", on_commit)
    assert seen_at_commit and not any(seen_at_commit)
    assert sorted(d.name for d in store.list_datasets()) == [f"c{i}" for i in range(callers)]


def test_a_lone_caller_stores_its_event_itself(store: SqlStore) -> None:
    result = store.ingest(run_event("ns", "job", "alone"), "ada", "lineage.ingest")
    assert not result.duplicate
    assert store._ingest._writer is None  # no hand-over to the writer thread when nobody else writes


def test_callers_that_find_a_writer_busy_hand_over_to_the_writer_thread(store: SqlStore) -> None:
    events = [run_event("ns", "job", f"w{i}", minute=i) for i in range(4)]
    results = ingest_together(store, events)
    assert all(not isinstance(r, Exception) for r in results)
    writer = store._ingest._writer
    assert writer is not None and writer.is_alive()
    store.close()
    assert not writer.is_alive()  # close stops it


def test_close_stores_what_is_queued_first(tmp_path: Path) -> None:
    from datatrail.core.chain import verify_chain

    uri = f"sqlite:///{tmp_path / 'trail.db'}"
    store = SqlStore(uri, create=True)
    events = [run_event("ns", "job", f"q{i}", minute=i) for i in range(5)]
    results: list[Any] = [None] * len(events)

    def call(i: int) -> None:
        try:
            results[i] = store.ingest(events[i], f"user{i}", "lineage.ingest")
        except Exception as exc:  # the caller's own outcome, checked below
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(events))]
    closer = threading.Thread(target=store.close)
    with store._db.writers:  # another transaction runs: the callers queue for the writer
        for th in threads:
            th.start()
        deadline = time.monotonic() + 30
        while len(store._ingest._queue) < len(events) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert len(store._ingest._queue) == len(events)
        closer.start()  # the server shuts down with events queued
        while not store._ingest._closing and time.monotonic() < deadline:
            time.sleep(0.005)
    closer.join(30)
    for th in threads:
        th.join(30)
    assert not closer.is_alive()
    assert all(not isinstance(r, Exception) and not r.duplicate for r in results)
    again = SqlStore(uri)
    try:
        assert sorted(d.name for d in again.list_datasets()) == [f"q{i}" for i in range(5)]
        rows = list(again.audit_rows()[1])
        assert len(rows) == 5 and verify_chain(rows).ok
        assert again.check_integrity() == []
    finally:
        again.close()


def test_the_memory_of_ids_is_bounded() -> None:
    from datatrail.store.sql.transaction import Known

    known = Known(limit=100)
    for i in range(1000):
        known.learn({("ds", 1, f"d{i}"): i})
    assert 75 <= len(known.rows) <= 100
    assert ("ds", 1, "d999") in known.rows and ("ds", 1, "d0") not in known.rows
