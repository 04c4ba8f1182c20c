"""The hand-off between processes of one store (store/sql/handoff.py), SQLite and PostgreSQL.

With ``$DATATRAIL_WRITER_HANDOFF=1`` (``datatrail serve --workers N`` sets it) the
first process to store an event leads, and the others send it their parsed
events: each still gets its own answer, only after the leader's commit, and a
leader that dies loses and doubles nothing. Two stores opened on one file in this
process play two processes (each has its own engine, lock and writer thread);
the last tests use a real ``datatrail serve --workers 2`` and kill its leader.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from datatrail.core.chain import verify_chain
from datatrail.core.errors import Conflict, InvalidInput
from datatrail.store.sql.handoff import ENV, socket_name, store_socket_name
from datatrail.store.sql.store import SqlStore
from tests import httpserver
from tests.test_ingest_memory import bad_deploy, run_event
from tests.test_ingest_soon import committers

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the hand-off uses Linux abstract sockets")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store: a SQLite file, or a PostgreSQL database of the harness's server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'trail.db'}"
    return str(request.getfixturevalue("pg_uri"))


@pytest.fixture
def two(uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SqlStore, SqlStore]]:
    """A leader (it stored the first event) and a follower of one store."""
    monkeypatch.setenv(ENV, "1")
    leader = SqlStore(uri, create=True)
    follower = SqlStore(uri)
    try:
        leader.ingest(run_event("ns", "job", "first"), "ada", "lineage.ingest")
        yield leader, follower
    finally:
        follower.close()
        leader.close()


def test_a_followers_events_are_stored_by_the_leader_with_their_own_answers(two: tuple[SqlStore, SqlStore]) -> None:
    leader, follower = two
    by_leader, by_follower = committers(leader), committers(follower)
    e = run_event("ns", "job", "a")
    first = follower.ingest(e, "bob", "lineage.ingest")
    soon = follower.ingest_soon(run_event("ns", "job", "b", minute=1), "bob", "lineage.ingest", detail=False)
    assert soon is not None  # a follower always hands over: its future is the leader's answer
    second = soon.result(30)
    again = follower.ingest(e, "bob", "lineage.ingest")
    assert [v.name for v, new in first.versions] == ["a"] and first.versions[0][1] and not first.duplicate
    assert second.versions == () and not second.duplicate and second.event_id == first.event_id + 1
    assert again.duplicate and again.event_id == first.event_id
    assert by_follower == [] and len(by_leader) == 3  # the follower never wrote: the leader did, each time
    assert [d.name for d in follower.list_datasets()] == ["a", "b", "first"]
    rows = list(leader.audit_rows()[1])
    assert [r["actor"] for r in rows] == ["ada", "bob", "bob"] and verify_chain(rows).ok


def test_a_group_of_both_processes_fails_only_its_bad_events(two: tuple[SqlStore, SqlStore]) -> None:
    leader, follower = two
    first = run_event("ns", "job", "a")
    moved = run_event("ns", "other-job", "b", run_id=first["run"]["runId"])  # a stored run never changes job
    with leader._db.writers:  # the leader is busy: everything queues into one group
        futures = [
            follower.ingest_soon(e, "bob", "lineage.ingest")
            for e in (first, bad_deploy("fresh"), run_event("fresh", "deploy", "c", minute=1), moved)
        ]
        deadline = time.monotonic() + 30
        while len(leader._ingest._queue) < 4 and time.monotonic() < deadline:
            time.sleep(0.005)  # the follower's events cross the socket
        own = leader.ingest_soon(run_event("ns", "job", "d", minute=2), "ada", "lineage.ingest")  # queued too
        assert own is not None and not any(f is None or f.done() for f in futures)
        assert len(leader._ingest._queue) == 5
    outcomes = [f.exception(30) for f in futures if f is not None]
    assert outcomes[0] is None and outcomes[2] is None and own.exception(30) is None
    assert isinstance(outcomes[1], InvalidInput) and "environment" in str(outcomes[1])
    assert isinstance(outcomes[3], Conflict)
    names = {(d.namespace, d.name) for d in leader.list_datasets()}
    assert names == {("ns", "first"), ("ns", "a"), ("fresh", "c"), ("ns", "d")}
    assert leader.check_integrity() == []


def test_an_event_that_does_not_parse_is_refused_through_its_future(two: tuple[SqlStore, SqlStore]) -> None:
    leader, follower = two
    bad = run_event("ns", "job", "a")
    bad["eventTime"] = "yesterday"
    future = follower.ingest_soon(bad, "bob", "lineage.ingest")  # parsed by the leader
    assert future is not None and isinstance(future.exception(30), InvalidInput)
    assert "eventTime" in str(future.exception())
    with pytest.raises(InvalidInput, match="eventTime"):
        follower.ingest(bad, "bob", "lineage.ingest")
    assert [d.name for d in leader.list_datasets()] == ["first"] and len(list(leader.audit_rows()[1])) == 1


def test_a_follower_that_takes_no_answers_is_cut_off_and_the_leader_goes_on(
    two: tuple[SqlStore, SqlStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from datatrail.store.sql import handoff

    leader, _ = two
    monkeypatch.setattr(handoff, "SEND_TIMEOUT_S", 1)
    bounded = handoff._bounded_sends

    def small_buffer(sock: socket.socket) -> socket.socket:  # a full buffer after a few answers, not thousands
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        return bounded(sock)

    monkeypatch.setattr(handoff, "_bounded_sends", small_buffer)
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # a follower that sends and never reads
    name = store_socket_name(leader.uri)
    assert name is not None
    stuck.connect(name)
    count = 600  # answers of ~100 bytes each: far more than the leader's buffer holds
    frames = b"".join(
        handoff._frame((i, handoff.Sent(run_event("ns", "job", f"s{i}"), "bob", "lineage.ingest", False, None)))
        for i in range(count)
    )
    sender = threading.Thread(target=stuck.sendall, args=(frames,))
    sender.start()
    sender.join(120)
    # Every event is stored, and the leader's writer is free for the next one (not blocked on the send).
    deadline = time.monotonic() + 120
    while len(leader.list_datasets()) < count + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(leader.list_datasets()) == count + 1
    assert not leader.ingest(run_event("ns", "job", "after"), "ada", "lineage.ingest").duplicate
    # The stuck follower was cut off: once it reads, what was sent ends, and its socket is closed.
    stuck.settimeout(60)
    while stuck.recv(1 << 20):
        pass
    stuck.close()


def test_a_new_leader_is_elected_when_the_leader_closes(uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "1")
    a, b, c = SqlStore(uri, create=True), SqlStore(uri), SqlStore(uri)
    try:
        by_b = committers(b)
        a.ingest(run_event("ns", "job", "a"), "ada", "lineage.ingest")
        b.ingest(run_event("ns", "job", "b"), "ada", "lineage.ingest")
        assert by_b == []
        a.close()
        # The leader has gone: b stores its event itself (sent before b saw the link close, or after),
        # and its next event finds nobody leading: b leads, and stores c's event too.
        b.ingest(run_event("ns", "job", "c"), "ada", "lineage.ingest")
        b.ingest(run_event("ns", "job", "c2"), "ada", "lineage.ingest")
        c.ingest(run_event("ns", "job", "d"), "ada", "lineage.ingest")
        assert len(by_b) == 3 and b._ingest._handoff is not None and b._ingest._handoff.leading
        assert [d.name for d in c.list_datasets()] == ["a", "b", "c", "c2", "d"]
    finally:
        c.close()
        b.close()


def test_without_the_setting_each_process_writes_for_itself(uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    a, b = SqlStore(uri, create=True), SqlStore(uri)
    try:
        by_a, by_b = committers(a), committers(b)
        a.ingest(run_event("ns", "job", "a"), "ada", "lineage.ingest")
        b.ingest(run_event("ns", "job", "b"), "ada", "lineage.ingest")
        assert len(by_a) == len(by_b) == 1 and a._ingest._handoff is None
    finally:
        b.close()
        a.close()


def test_a_postgresql_database_is_named_by_its_identity_never_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER"):
        monkeypatch.delenv(var, raising=False)
    name = store_socket_name("postgresql://ada:secret@db.example:5432/trail")
    assert name is not None and name.startswith(b"\0datatrail-writer-") and b"secret" not in name
    assert store_socket_name("postgresql+psycopg://ada:other@db.example/trail") == name  # 5432: the default port
    assert store_socket_name("postgresql://ada@db.example:5432/trail?sslmode=require") == name
    others = [
        "postgresql://ada@db.example:5433/trail",
        "postgresql://ada@db.example:5432/trail2",
        "postgresql://bob@db.example:5432/trail",
        "postgresql://ada@db2.example:5432/trail",
    ]
    assert len({store_socket_name(u) for u in others} | {name}) == len(others) + 1
    # What the URI leaves out, libpq takes from its environment: so does the name.
    monkeypatch.setenv("PGHOST", "db.example")
    monkeypatch.setenv("PGUSER", "ada")
    assert store_socket_name("postgresql:///trail") == name
    sqlite = tmp_path / "trail.db"
    assert store_socket_name(f"sqlite:///{sqlite}") == socket_name(sqlite) != name
    assert store_socket_name("mysql://ada@db.example/trail") is None


# ------------------------------------------------------------ a real server


def workers(server: httpserver.Server) -> list[psutil.Process]:
    """The server's uvicorn worker processes (multiprocessing's resource tracker is not one)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = [
            p
            for p in psutil.Process(server.process.pid).children()
            if "spawn_main" in " ".join(p.cmdline()) and "resource_tracker" not in " ".join(p.cmdline())
        ]
        if len(found) == 2:
            return found
        time.sleep(0.05)
    raise AssertionError("the server did not start two workers")


def handoff_sockets(store: str) -> list[int]:
    """Inodes of the store's hand-off sockets: the leader's listening one and one per follower connected."""
    named = store_socket_name(store)
    assert named is not None
    name = "@" + named[1:].decode()
    lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    return [int(parts[6]) for parts in (line.split() for line in lines) if len(parts) > 7 and parts[7] == name]


def leader_of(server: httpserver.Server, procs: list[psutil.Process]) -> psutil.Process:
    """The worker that holds the listening hand-off socket."""
    inodes = {f"socket:[{i}]" for i in handoff_sockets(server.store)}
    for proc in procs:
        for fd in Path(f"/proc/{proc.pid}/fd").iterdir():
            try:
                if os.readlink(fd) in inodes:
                    return proc
            except OSError:
                continue
    raise AssertionError("no worker holds the hand-off socket")


def post(conn: http.client.HTTPConnection, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    conn.request("POST", "/api/v1/lineage", json.dumps(event), {"Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


@pytest.fixture
def server(tmp_path: Path, uri: str) -> Iterator[httpserver.Server]:
    srv = httpserver.start(tmp_path / "srv", "--workers", "2", store=uri)
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def send_from(uri: str, events: list[dict[str, Any]], acknowledged: list[str], refused: list[int]) -> None:
    """Send each event once on a keep-alive connection (a new one after an error); note what was answered 201."""
    host, port = uri.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    for event in events:
        try:
            status, _ = post(conn, event)
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            continue  # not acknowledged: the client would retry; this one does not
        if status == 201:
            acknowledged.append(event["run"]["runId"])
        else:
            refused.append(status)
    conn.close()


def stored_runs(store: str) -> list[str]:
    if store.startswith("sqlite:///"):
        with sqlite3.connect(store.removeprefix("sqlite:///")) as db:
            return [row[0] for row in db.execute("SELECT run_id FROM events")]
    with psycopg.connect(store) as conn:
        return [row[0] for row in conn.execute("SELECT run_id FROM events")]


def test_two_workers_share_one_writer_and_answer_each_event(server: httpserver.Server) -> None:
    events = [[run_event("ns", f"job{c}", f"out{c}-{i}", minute=i % 60) for i in range(40)] for c in range(4)]
    acknowledged: list[str] = []
    refused: list[int] = []
    threads = [threading.Thread(target=send_from, args=(server.uri, e, acknowledged, refused)) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert refused == [] and len(acknowledged) == 160
    # One worker leads and the other is connected to it: a listening socket and an accepted one. The
    # kernel may have given every connection to one worker: new connections reach the other in the end.
    host, port = server.uri.removeprefix("http://").split(":")
    for i in range(300):
        if len(handoff_sockets(server.store)) >= 2:
            break
        send_from(server.uri, [run_event("ns", "more", f"more-{i}")], acknowledged, refused)
    assert len(handoff_sockets(server.store)) >= 2
    assert refused == [] and sorted(stored_runs(server.store)) == sorted(acknowledged)
    # A bad event answers 4xx through either worker.
    for _ in range(4):  # new connections: the kernel gives them to both workers
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        status, body = post(conn, bad_deploy("fresh"))
        assert status == 400 and "environment" in body["detail"] and "Traceback" not in json.dumps(body)
        conn.close()


def test_killing_the_leader_loses_and_doubles_no_acknowledged_event(server: httpserver.Server) -> None:
    procs = workers(server)
    host, port = server.uri.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    assert post(conn, run_event("ns", "job", "warm"))[0] == 201
    conn.close()
    clients = 6
    events = [[run_event("ns", f"job{c}", f"out{c}-{i}", minute=i % 60) for i in range(150)] for c in range(clients)]
    acknowledged: list[str] = []
    refused: list[int] = []
    threads = [threading.Thread(target=send_from, args=(server.uri, e, acknowledged, refused)) for e in events]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    leader = leader_of(server, procs)
    os.kill(leader.pid, signal.SIGKILL)  # mid-load, with events in its queue and the follower's in flight
    for t in threads:
        t.join(180)
    assert not any(t.is_alive() for t in threads)
    runs = stored_runs(server.store)
    assert len(runs) == len(set(runs))  # nothing doubled
    assert set(acknowledged) <= set(runs)  # nothing acknowledged is lost
    assert refused == [] and len(acknowledged) > 200
    # The server goes on: a new event is stored (by the worker left, or by uvicorn's new one).
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    assert post(conn, run_event("ns", "job", "after"))[0] == 201
    conn.close()
    if server.store.startswith("sqlite:///"):
        with sqlite3.connect(server.store.removeprefix("sqlite:///")) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = SqlStore(server.store)
    try:
        assert store.check_integrity() == []  # the audit chain and every derived row agree
    finally:
        store.close()
