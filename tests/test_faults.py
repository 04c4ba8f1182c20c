"""Faults around the store: the server killed and restarted under load, PostgreSQL restarted, a full disk.

Everything runs for real: `datatrail serve` processes killed with SIGKILL and
started again on the same port, the suite's PostgreSQL server stopped and
started (tests/pgserver.py), and a SQLite store on a small tmpfs file system
filled to the last byte (when the test may mount one; otherwise SQLite's
``max_page_count`` makes it return the same SQLITE_FULL).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.core.errors import StoreUnavailable
from datatrail.store.http import HttpStore
from datatrail.store.sql import engine as engine_module
from datatrail.store.sql.store import SqlStore
from tests import httpserver
from tests.conftest import write
from tests.pgserver import PgServer, free_port

PRODUCER = "https://example.com/tests/faults"
RUN_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
runner = CliRunner()


def run_event(client: int, i: int, state: str, run_id: str) -> dict[str, Any]:
    return {
        "eventType": state,
        "eventTime": f"2024-05-01T{10 if state == 'START' else 11}:{i // 60:02d}:{i % 60:02d}+00:00",
        "producer": PRODUCER,
        "schemaURL": RUN_SCHEMA,
        "run": {"runId": run_id, "facets": {}},
        "job": {"namespace": "faults", "name": f"job-{client}", "facets": {}},
        "inputs": [],
        "outputs": [{"namespace": "faults", "name": f"out-{client}-{i}", "facets": {}}] if state != "START" else [],
    }


def serve(store: str, port: int, folder: Path) -> subprocess.Popen[bytes]:
    """`datatrail serve` on a given port (so a restarted server is found at the same address)."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")}
    env["DATATRAIL_LOG_LEVEL"] = "warning"
    with (folder / "server.log").open("ab") as log:
        return subprocess.Popen(
            [str(httpserver.DATATRAIL), "--store", store, "serve", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=folder,
        )


def wait_ready(uri: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        try:
            if httpx.get(f"{uri}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    msg = "the server did not come up"
    raise AssertionError(msg)


class Clients:
    """Threads that each send START and COMPLETE events for their runs, retrying through outages."""

    def __init__(self, uri: str, clients: int, runs: int) -> None:
        self.acked: dict[str, str] = {}  # run id -> the last state acknowledged
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._send, args=(uri, c, runs)) for c in range(clients)]

    def _send(self, uri: str, client: int, runs: int) -> None:
        # 12 retries with exponential back-off: about 13 minutes at most, far more than a restart takes.
        store = HttpStore(uri, retries=12)
        try:
            for i in range(runs):
                run_id = str(uuid.uuid4())
                for state in ("START", "COMPLETE"):
                    store.ingest(run_event(client, i, state, run_id), "ignored", "lineage.ingest")
                    with self.lock:
                        self.acked[run_id] = state
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            store.close()

    def __enter__(self) -> Clients:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for t in self.threads:
            t.join(timeout=600)

    def count(self) -> int:
        with self.lock:
            return len(self.acked)


def assert_each_delivered_once(store_uri: str, acked: dict[str, str], clients: int, runs: int) -> None:
    store = SqlStore(store_uri)
    try:
        assert store.check_integrity() == []
        stored = store.list_runs(limit=100_000)
        assert len(stored) == clients * runs == len(acked)
        assert {r.id: r.state.value for r in stored} == acked
        with store.engine.connect() as conn:
            events = conn.exec_driver_sql("SELECT count(*) FROM events").scalar_one()
            audit = conn.exec_driver_sql("SELECT count(*) FROM audit").scalar_one()
        assert events == audit == 2 * clients * runs  # one delivery of each: retries stored nothing twice
        for r in stored:
            assert len(r.outputs) == 1
    finally:
        store.close()


@pytest.mark.slow
def test_server_killed_and_restarted_while_clients_send(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'trail.db'}"
    SqlStore(store, create=True).close()
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    proc = serve(store, port, tmp_path)
    wait_ready(uri, proc)
    clients, runs = 4, 25
    try:
        with Clients(uri, clients, runs) as load:
            for restart in range(3):
                target = (restart + 1) * clients * runs // 5
                deadline = time.monotonic() + 120
                while load.count() < target and time.monotonic() < deadline:
                    time.sleep(0.01)
                proc.send_signal(signal.SIGKILL)  # under ingest load, mid-transaction or not
                proc.wait()
                time.sleep(0.3)  # clients meet a closed port for a while
                proc = serve(store, port, tmp_path)
                wait_ready(uri, proc)
        assert load.errors == []
    finally:
        proc.terminate()
        proc.wait(10)
    assert_each_delivered_once(store, load.acked, clients, runs)


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_restart_under_load_is_503_then_recovers(pg_server: PgServer, pg_uri: str, tmp_path: Path) -> None:
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    proc = serve(pg_uri, port, tmp_path)
    wait_ready(uri, proc)
    direct = SqlStore(pg_uri)  # an embedded user of the same database, across the restart
    clients, runs = 3, 20
    try:
        with Clients(uri, clients, runs) as load:
            deadline = time.monotonic() + 120
            while load.count() < clients * 3 and time.monotonic() < deadline and not load.errors:
                time.sleep(0.01)
            pg_server.halt()
            try:
                # While PostgreSQL is down: 503 with a reason and Retry-After, from the same server process.
                response = httpx.post(f"{uri}/api/v1/lineage", json=run_event(9, 0, "START", str(uuid.uuid4())))
                assert response.status_code == 503, response.text
                assert response.json()["error"] == "store_unavailable"
                assert response.headers["Retry-After"]
                assert httpx.get(f"{uri}/healthz").status_code == 503
                with pytest.raises(StoreUnavailable, match="unavailable"):
                    direct.list_datasets()
                time.sleep(1.0)
            finally:
                pg_server.resume()
        assert load.errors == []
        assert proc.poll() is None  # never restarted
        assert httpx.get(f"{uri}/healthz").status_code == 200
        assert [d.name for d in direct.list_datasets("faults")]  # the pool reconnects by itself
    finally:
        direct.close()
        proc.terminate()
        proc.wait(10)
    assert_each_delivered_once(pg_uri, load.acked, clients, runs)


# ---------------------------------------------------------------- a full disk


def row_counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


@contextmanager
def small_disk(path: Path, kib: int) -> Iterator[bool]:
    """A tmpfs of ``kib`` KiB at ``path``; False when this process may not mount one."""
    path.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(path)], capture_output=True, check=False
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path, slack: int) -> Path:
    """Fill the file system but ``slack`` bytes (room to open the store, not to write much)."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - slack))
    return filler


def test_disk_full_is_a_clear_error_and_work_resumes(
    workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(1500):  # a manifest of 1,500 rows: far more than the space left
        write(workdir / "tree" / f"part-{i % 10}" / f"file-{i:05d}.txt", f"{i}\n")
    with small_disk(tmp_path / "disk", 1024) as real:
        db = tmp_path / "disk" / "trail.db"
        datatrail.init(workdir, f"sqlite:///{db}").close()
        write(workdir / "small.txt", "x\n")
        assert runner.invoke(app, ["add", "small.txt"]).exit_code == 0
        if real:
            filler = fill(db.parent, 128 * 1024)
        else:
            # SQLite's own limit on the file's size gives the same SQLITE_FULL as a full disk.
            configure = engine_module._configure_sqlite

            def limited(engine: Any) -> None:
                configure(engine)

                @engine_module.event.listens_for(engine, "connect")
                def _limit(dbapi_conn: Any, _record: Any) -> None:
                    pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
                    dbapi_conn.execute(f"PRAGMA max_page_count = {pages + 4}")

            monkeypatch.setattr(engine_module, "_configure_sqlite", limited)
        before = row_counts(db)
        result = runner.invoke(app, ["add", "tree", "--no-cache"])
        assert result.exit_code == 3, (result.stdout, result.stderr, result.exception)
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("error: the disk holding the store is full (database or disk is full)")
        assert "free space and retry" in result.stderr
        assert row_counts(db) == before  # no partial transaction
        if real:
            # Not a byte left: even opening the store (its -shm file) fails, with the same advice.
            filler.unlink()
            filler = fill(db.parent, 0)
            result = runner.invoke(app, ["ls"])
            assert result.exit_code == 3, (result.stdout, result.stderr)
            assert result.stderr.count("\n") == 1 and "disk" in result.stderr and "is full" in result.stderr
            assert "free space and retry" in result.stderr
        # Space comes back: the same command works, and the store is sound.
        if real:
            filler.unlink()
        else:
            monkeypatch.setattr(engine_module, "_configure_sqlite", configure)
        result = runner.invoke(app, ["add", "tree"])
        assert result.exit_code == 0, result.stderr
        assert result.stdout.startswith("tree@1 ")
        assert runner.invoke(app, ["fsck"]).exit_code == 0
        assert row_counts(db)["version_files"] == 1500


# ---------------------------------------------------------------- durability setting


def test_power_loss_durability_setting(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`DATATRAIL_SQLITE_SYNC=FULL` makes every commit sync the WAL (docs/reliability.md)."""

    def level() -> int:
        store = SqlStore(f"sqlite:///{workdir / '.datatrail' / 'trail.db'}")
        try:
            with store.engine.connect() as conn:
                return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())
        finally:
            store.close()

    datatrail.init(workdir).close()
    assert level() == 1  # NORMAL
    monkeypatch.setenv("DATATRAIL_SQLITE_SYNC", "full")
    assert level() == 2  # FULL
    write(workdir / "a.txt", "a\n")
    assert runner.invoke(app, ["add", "a.txt"]).exit_code == 0
    monkeypatch.setenv("DATATRAIL_SQLITE_SYNC", "sometimes")
    result = runner.invoke(app, ["ls"])
    assert result.exit_code == 2
    assert (
        result.stderr == "error: invalid DATATRAIL_SQLITE_SYNC='SOMETIMES': use NORMAL (the default), FULL or EXTRA\n"
    )
