"""OpenLineage ingest: events per second into one `datatrail serve` from 8 concurrent clients.

The server is a real `datatrail serve` process (uvicorn) over a fresh SQLite
store, and over a fresh PostgreSQL database when `initdb`/`pg_ctl` are found
(the test harness's tests/pgserver.py starts a throwaway server). Eight client
processes each send their share of events over keep-alive HTTP connections:
START and COMPLETE of runs that read two datasets and write one, the shape the
Spark and Airflow integrations send. Two modes: one event per request
(POST /api/v1/lineage, what openlineage-python's HttpTransport does), and
batches of 100 (POST /api/v1/lineage/batch). The figure is events stored per
second of wall-clock time, checked afterwards by counting the stored events.

Reference from the issue: MLflow's tracking API logs about 41 runs/s into
SQLite on this machine. Targets (issue 22, item 2): one event per request at
least 1,500 events/s on SQLite and 1,000 on PostgreSQL; batches at least
3,000 on both; the openlineage-python client's own transport 1,000.

    python benchmarks/ingest.py [--events N] [--clients C] [--workers W] [--server-env NAME=VALUE]
        [--batches 1 100] [--no-postgres | --no-sqlite]

With 2 workers the workers hand their events to one of them, whose
transactions hold the events of both (store/sql/handoff.py, SQLite and PostgreSQL);
``--server-env DATATRAIL_WRITER_HANDOFF=0`` measures each worker storing its own.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import resource
import sqlite3
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import note, quick, report, scratch
from tests import httpserver

TARGET = 1000.0


def target(label: str, batch: int) -> float:
    """The issue's target for this store and mode, in events per second (issue 22, item 2)."""
    if batch == 1:
        return 1500.0 if label == "SQLite" else 1000.0
    return 3000.0 if batch > 1 else TARGET


PRODUCER = "https://github.com/datatrail/benchmarks"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def events_for(client: int, count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count // 2):
        run_id = str(uuid.uuid4())
        for state, second in (("START", 0), ("COMPLETE", 1)):
            k = client * 1_000_000 + i
            out.append(
                {
                    "eventType": state,
                    "eventTime": f"2026-01-01T{(k // 3600) % 24:02d}:{(k // 60) % 60:02d}:{k % 60:02d}.{second}Z",
                    "producer": PRODUCER,
                    "schemaURL": SCHEMA,
                    "run": {"runId": run_id, "facets": {}},
                    "job": {"namespace": "bench", "name": f"job{k % 200}", "facets": {}},
                    "inputs": [
                        {"namespace": "warehouse", "name": f"src.t{k % 500}"},
                        {"namespace": "warehouse", "name": f"src.t{(k + 17) % 500}"},
                    ],
                    "outputs": [{"namespace": "warehouse", "name": f"out.t{k % 300}"}] if state == "COMPLETE" else [],
                }
            )
    return out


def ol_events_for(client: int, count: int) -> list[Any]:
    """The same events as :func:`events_for`, as openlineage-python's RunEvent objects."""
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState

    out = []
    for raw in events_for(client, count):
        out.append(
            RunEvent(
                eventType=RunState[raw["eventType"]],
                eventTime=raw["eventTime"],
                run=Run(runId=raw["run"]["runId"]),
                job=Job(namespace=raw["job"]["namespace"], name=raw["job"]["name"]),
                producer=PRODUCER,
                inputs=[InputDataset(namespace=d["namespace"], name=d["name"]) for d in raw["inputs"]],
                outputs=[OutputDataset(namespace=d["namespace"], name=d["name"]) for d in raw["outputs"]],
            )
        )
    return out


def ol_client(uri: str, client_no: int, count: int, ready: Any, go: Any) -> None:
    """The real openlineage-python client with datatrail's batching transport (datatrail.interop.ol_transport)."""
    from openlineage.client import OpenLineageClient

    from datatrail.interop.ol_transport import DatatrailConfig, DatatrailTransport

    events = ol_events_for(client_no, count)
    client = OpenLineageClient(transport=DatatrailTransport(DatatrailConfig(url=uri, batch_size=100)))
    ready.release()
    go.wait()
    for event in events:
        client.emit(event)
    client.close()


def client(uri: str, events: list[dict[str, Any]], batch: int, ready: Any, go: Any) -> None:
    """One client: its requests' bodies encoded up front, sent over one keep-alive connection.

    The clients share the server's two cores, so they are kept as light as
    possible (the standard library's http.client rather than httpx, which costs
    the machine about twice the CPU per request): the figure is the server's.
    """
    host, port = uri.removeprefix("http://").split(":")
    if batch <= 1:
        path, bodies = "/api/v1/lineage", [json.dumps(e).encode() for e in events]
    else:
        path = "/api/v1/lineage/batch"
        bodies = [json.dumps(events[i : i + batch]).encode() for i in range(0, len(events), batch)]
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("GET", "/healthz")
    conn.getresponse().read()
    # Connected again once every client is ready: on a loaded machine starting the others can take longer
    # than the server keeps an idle connection (uvicorn: 5 s), which it then resets under the first POST.
    conn.close()
    ready.release()
    go.wait()
    headers = {"Content-Type": "application/json"}
    for body in bodies:
        conn.request("POST", path, body, headers)
        response = conn.getresponse()
        answer = response.read()
        if response.status >= 300:
            raise SystemExit(f"{path} answered {response.status}: {answer[:300]!r}")
    conn.close()


def run_once(uri: str, clients: int, per_client: int, batch: int) -> float:
    """Wall-clock seconds for the clients to send their events (``batch`` 0: openlineage-python, batched)."""
    ctx = mp.get_context("spawn")
    ready, go = ctx.Semaphore(0), ctx.Event()
    if batch == 0:
        procs = [ctx.Process(target=ol_client, args=(uri, c, per_client, ready, go)) for c in range(clients)]
    else:
        work = [events_for(c, per_client) for c in range(clients)]
        procs = [ctx.Process(target=client, args=(uri, work[c], batch, ready, go)) for c in range(clients)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    t0 = time.perf_counter()
    go.set()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"a client failed with exit code {p.exitcode}")
    return time.perf_counter() - t0


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        parents[int(entry)] = int(fields[1])
        used[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    tree, grew = {pid}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in tree} - tree
        grew = bool(more)
        tree |= more
    return sum(used.get(p, 0.0) for p in tree)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def count_events(store: str) -> int:
    if store.startswith("sqlite:///"):
        with sqlite3.connect(store.removeprefix("sqlite:///")) as db:
            return int(db.execute("SELECT count(*) FROM events").fetchone()[0])
    import psycopg

    with psycopg.connect(store.replace("postgresql+psycopg://", "postgresql://")) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
        assert row is not None
        return int(row[0])


def bench(label: str, store: str, folder: Path, args: argparse.Namespace) -> list[bool]:
    results = []
    for batch in args.batches:
        env = dict(item.split("=", 1) for item in args.server_env)
        server = httpserver.start(folder / f"{label}-{batch}", "--workers", str(args.workers), store=store, env=env)
        try:
            server.wait_ready()
            before = count_events(server.store)
            server_cpu, client_cpu = tree_cpu(server.process.pid), children_cpu()
            try:
                seconds = run_once(server.uri, args.clients, args.events // args.clients, batch)
            except BaseException:
                _log_tail(server.log)  # the scratch folder, and the log with it, is removed on the way out
                raise
            server_cpu, client_cpu = tree_cpu(server.process.pid) - server_cpu, children_cpu() - client_cpu
            stored = count_events(server.store) - before
        finally:
            server.stop()
        expected = args.clients * (args.events // args.clients // 2) * 2
        if stored != expected:
            _log_tail(server.log)
            raise SystemExit(f"{stored} events stored, {expected} sent")
        rate = stored / seconds
        mode = {0: "openlineage-python + DatatrailTransport", 1: "one event per request"}.get(
            batch, f"batches of {batch}"
        )
        ok = report(
            f"ingest {label}, {mode} ({stored:,} events, {args.clients} clients, {args.workers} workers)",
            f"{rate:,.0f} events/s",
            "the target",
            f"{target(label, batch):,.0f} events/s",
            rate / target(label, batch),
            1.0,
        )
        results.append(ok)
        # CPU per event does not depend on what else the machine runs (the rate does): the capacity
        # figure is what this machine's cores would ingest at that cost, with the clients on them too.
        per_server, per_client = server_cpu / stored * 1e6, client_cpu / stored * 1e6
        cores = os.cpu_count() or 1
        print(
            f"  CPU per event: server {per_server:,.0f} µs, clients {per_client:,.0f} µs; "
            f"{cores} cores at that cost: {cores * 1e6 / (per_server + per_client):,.0f} events/s "
            f"(server alone: {cores * 1e6 / per_server:,.0f}); load average {os.getloadavg()[0]:.1f}"
        )
        store = _fresh(store, label, folder, batch)
    return results


def _log_tail(log: Path, lines: int = 40) -> None:
    """The end of the server's log, on stderr: why clients failed (a worker restarted by uvicorn's
    supervisor says "Child process [...] died")."""
    try:
        tail = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError as e:
        print(f"  (no server log: {e})", file=sys.stderr)
        return
    print(f"  the server's log ({log.name}), last {len(tail)} lines:", *tail, sep="\n    ", file=sys.stderr)


def _fresh(store: str, label: str, folder: Path, batch: int) -> str:
    """A new empty store for the next mode (so both start from the same state)."""
    if store.startswith("sqlite:///"):
        return f"sqlite:///{folder / f'{label}-next-{batch}.db'}"
    return store  # PostgreSQL: the next mode adds to the same database


def main() -> None:
    q = quick()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=400 if q else 8000, help="events in all (START + COMPLETE)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes of the server")
    ap.add_argument("--no-postgres", action="store_true", help="only SQLite")
    ap.add_argument("--no-sqlite", action="store_true", help="only PostgreSQL")
    ap.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="for the server, e.g. DATATRAIL_WRITER_HANDOFF=0 (each worker stores its own events)",
    )
    ap.add_argument(
        "--batches",
        type=int,
        nargs="+",
        default=[1, 100],
        help="events per request: 1 (single endpoint) or more; 0: the real openlineage-python client"
        " with datatrail's batching transport (batches of 100)",
    )
    args = ap.parse_args()
    with scratch("ingest-") as folder:
        if not args.no_sqlite:
            bench("SQLite", f"sqlite:///{folder / 'trail.db'}", folder, args)
        if not args.no_postgres:
            try:
                from tests import pgserver

                pg = pgserver.start(durable=True)  # fsync on, as in production
            except Exception as exc:  # PostgreSQL is optional for the benchmark
                note(f"no PostgreSQL server could be started ({exc}); SQLite only")
                return
            try:
                import psycopg

                with psycopg.connect(pg.uri, autocommit=True) as conn:
                    conn.execute("CREATE DATABASE bench_ingest")
                bench("PostgreSQL", pg.database_uri("bench_ingest"), folder, args)
            finally:
                pg.stop()


if __name__ == "__main__":
    main()
