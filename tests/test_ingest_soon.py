"""``Ingest.submit`` (``Store.ingest_soon``): an event queued for the store's writer thread, answered by a future.

The server's ingest route calls it from its event loop (server/fastpath.py), so
the caller must never take the write lock, and the future must say exactly what
``ingest`` would have returned or raised, only once the event is committed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from datatrail.core.chain import verify_chain
from datatrail.core.errors import Conflict, InvalidInput
from datatrail.store.sql.store import SqlStore
from tests.test_ingest_memory import bad_deploy, run_event


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    uri = f"sqlite:///{tmp_path / 'trail.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_uri")
    s = SqlStore(uri, create=True)
    try:
        yield s
    finally:
        s.close()


def committers(store: SqlStore) -> list[str]:
    """The names of the threads that commit a write transaction from now on."""
    from sqlalchemy import event

    names: list[str] = []
    event.listen(store._db.engine, "commit", lambda _conn: names.append(threading.current_thread().name))
    return names


@contextmanager
def busy(store: SqlStore) -> Iterator[None]:
    """Another transaction runs and a caller waits for the writer with its event: ingest_soon queues."""
    waiting = threading.Thread(target=store.ingest, args=(run_event("ns", "job", "other"), "bob", "lineage.ingest"))
    with store._db.writers:
        waiting.start()
        deadline = time.monotonic() + 30
        while not store._ingest._queue and time.monotonic() < deadline:
            time.sleep(0.005)
        yield
    waiting.join(30)


def test_nothing_is_queued_while_nobody_stores(store: SqlStore) -> None:
    # ingest in a thread stores it at once, without a hand-over: the caller is told to do that.
    assert store.ingest_soon(run_event("ns", "job", "a"), "ada", "lineage.ingest") is None
    assert store._ingest._queue == [] and store.list_datasets() == []


def submit(store: SqlStore, event: dict[str, Any], detail: bool = True) -> Any:
    future = store.ingest_soon(event, "ada", "lineage.ingest", detail=detail)
    assert future is not None
    return future


def test_the_future_holds_what_ingest_would_return(store: SqlStore) -> None:
    threads = committers(store)
    e = run_event("ns", "job", "a")
    with busy(store):
        first_future = submit(store, e, detail=False)
    first = first_future.result(30)
    with busy(store):
        again_future = submit(store, e)
    again = again_future.result(30)
    assert not first.duplicate and first.versions == ()
    # The same event from ingest: the same answer as the queued repeat (a duplicate of the first).
    repeat = store.ingest(e, "ada", "lineage.ingest", detail=False)
    assert again.duplicate and repeat.duplicate and again.event_id == repeat.event_id == first.event_id
    assert [d.name for d in store.list_datasets()] == ["a", "other"]
    # Only the writer thread committed the queued events; the caller never took the write lock.
    assert threads[:2] == ["datatrail-writer", "datatrail-writer"]
    rows = list(store.audit_rows()[1])
    assert len(rows) == 3 and {r["actor"] for r in rows} == {"ada", "bob"} and verify_chain(rows).ok


def test_an_event_that_does_not_parse_raises_at_once_and_nothing_is_queued(store: SqlStore) -> None:
    bad = run_event("ns", "job", "a")
    bad["eventTime"] = "yesterday"
    with busy(store), pytest.raises(InvalidInput, match="eventTime"):
        store.ingest_soon(bad, "ada", "lineage.ingest")
    assert store._ingest._queue == [] and [d.name for d in store.list_datasets()] == ["other"]
    assert len(list(store.audit_rows()[1])) == 1


def test_events_refused_in_the_transaction_fail_alone_through_their_futures(store: SqlStore) -> None:
    first = run_event("ns", "job", "a")
    moved = run_event("ns", "other-job", "b", run_id=first["run"]["runId"])  # a stored run never changes job
    with busy(store):  # all four are queued and stored as one group
        futures = [
            submit(store, e) for e in (first, bad_deploy("fresh"), run_event("fresh", "deploy", "c", minute=1), moved)
        ]
        assert not any(f.done() for f in futures)
    outcomes = [f.exception(30) for f in futures]
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], InvalidInput) and "environment" in str(outcomes[1])
    assert isinstance(outcomes[3], Conflict)
    assert {(d.namespace, d.name) for d in store.list_datasets()} == {("ns", "a"), ("ns", "other"), ("fresh", "c")}
    assert store.check_integrity() == []


def test_a_future_is_answered_only_once_its_event_is_committed(store: SqlStore) -> None:
    from sqlalchemy import event

    done_at_commit: list[bool] = []
    futures: list[Any] = []

    def on_commit(_conn: Any) -> None:
        time.sleep(0.05)  # a future answered before the commit would be done by now
        done_at_commit.append(any(f.done() for f in futures))

    event.listen(store._db.engine, "commit", on_commit)
    try:
        with busy(store):
            futures.extend(submit(store, run_event("ns", "job", f"c{i}", minute=i)) for i in range(3))
        assert all(not f.result(30).duplicate for f in futures)
    finally:
        event.remove(store._db.engine, "commit", on_commit)
    assert done_at_commit and not any(done_at_commit)


def test_close_stores_what_was_submitted_and_later_callers_store_their_own(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'trail.db'}"
    store = SqlStore(uri, create=True)
    closer = threading.Thread(target=store.close)
    with busy(store):  # the events wait in the queue
        futures = [submit(store, run_event("ns", "job", f"q{i}", minute=i)) for i in range(4)]
        closer.start()  # the server shuts down with events queued
        deadline = time.monotonic() + 30
        while not store._ingest._closing and time.monotonic() < deadline:
            time.sleep(0.005)
    closer.join(30)
    assert not closer.is_alive()
    assert all(not f.result(0).duplicate for f in futures)
    # Submitted after close: no writer thread any more, so the caller stores it before returning.
    late = submit(store, run_event("ns", "job", "late"))
    assert late.done() and not late.result(0).duplicate
    again = SqlStore(uri)
    try:
        assert sorted(d.name for d in again.list_datasets()) == ["late", "other", "q0", "q1", "q2", "q3"]
        rows = list(again.audit_rows()[1])
        assert len(rows) == 6 and verify_chain(rows).ok
    finally:
        again.close()
