"""A store used for a year: a PostgreSQL store grown to N events, then everyday reads timed against targets.

A throw-away PostgreSQL server (the test harness's tests/pgserver.py, fsync on)
and a real `datatrail serve` (two workers). ``--clients`` client processes send
``--events`` events through the real ingest path, ``POST /api/v1/lineage/batch``
in batches of 100: the START and COMPLETE of runs (half the events) of one of
1,000 jobs, each run writing a version of dataset ``d<k>`` (one dataset per five
runs, so 10M events make 1M datasets with 5 versions each and 5M runs) from two
of the 1,000 datasets written before it, as in issue 22: before the last
``LAG`` runs, so that their writers' runs are stored first (the clients move in
step, each at most a few batches ahead of the slowest, see ``client``), and
the graph's chains are as deep as the runs. The ingest rate is printed per
tenth of the run, and the last tenth against the first (target: within 20%,
>= 0.8x).

Then each read, the median of ``--repeats``, against its target (100 ms for
search, a list page and the UI's dataset page; the others are printed against
100 ms too, for scale): search, Marquez's list page at offsets 0 / middle / end,
keyset pages (``cursor``) at the start and the middle, Marquez's jobs page (offsets 0 and 500), the UI's dataset and
lineage pages, the lineage API upstream at depth 20 and 50, the audit API (all
entries, and one dataset's) and the UI's audit page; finally the size on disk
per event (``pg_database_size`` / events) and the biggest tables.

``--data DIR`` keeps the PostgreSQL data folder: a later run over the same DIR
adds events up to ``--events`` (0 more: only measures), so a big store is built
once and measured again after a change.

    python benchmarks/pg_scale.py [--events 10000000] [--clients 4] [--repeats 5] [--data DIR]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import pwd
import random
import statistics
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import fmt_seconds, note, quick, report, scratch
from tests import httpserver, pgserver

PRODUCER = "https://github.com/datatrail/benchmarks"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
NS = "perf"
BATCH = 100
TARGET_MS = 100.0
START = datetime(2025, 1, 1, tzinfo=UTC)


LAG = 1000
"""A run reads datasets written 1,000 to 1,999 runs before it: the 1,000 runs just before it may still be
on their way (four clients, batches of 50 runs, at most four rounds apart)."""


def datasets_for(events: int) -> int:
    """Datasets of a store of ``events`` events: one per five runs (two events per run)."""
    return max(1, events // 10)


def run_events(i: int, total_datasets: int, facets: bool = False) -> list[dict[str, Any]]:
    """The START and COMPLETE of run ``i``: writes a version of d<i mod D> from two of the 1,000 datasets
    written before the last :data:`LAG` runs (none for the first runs)."""
    rng = random.Random(i)
    k = i % total_datasets
    inputs = []
    if i > LAG:
        back = sorted({LAG + rng.randrange(0, min(i - LAG, 1000)) for _ in range(2)})
        inputs = [{"namespace": NS, "name": f"d{(i - b) % total_datasets}"} for b in back]
    run_id = run_uuid(i)
    job = {"namespace": NS, "name": f"job{i % 1000}", "facets": {}}
    t0 = START + timedelta(seconds=i)
    schema = {
        "_producer": PRODUCER,
        "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
        "fields": [
            {"name": "id", "type": "BIGINT"},
            {"name": "customer", "type": "VARCHAR"},
            {"name": "amount", "type": "DECIMAL(12,2)"},
            {"name": "created_at", "type": "TIMESTAMP"},
        ],
    }
    run_facets = {
        "nominalTime": {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet",
            "nominalStartTime": t0.isoformat().replace("+00:00", "Z"),
        }
    }
    out = []
    for state, delta in (("START", 0.0), ("COMPLETE", 0.5)):
        out.append(
            {
                "eventType": state,
                "eventTime": (t0 + timedelta(seconds=delta)).isoformat().replace("+00:00", "Z"),
                "producer": PRODUCER,
                "schemaURL": SCHEMA,
                "run": {"runId": run_id, "facets": run_facets if facets else {}},
                "job": job,
                "inputs": inputs,
                "outputs": [{"namespace": NS, "name": f"d{k}", "facets": {"schema": schema} if facets else {}}]
                if state == "COMPLETE"
                else [],
            }
        )
    return out


def run_uuid(i: int) -> str:
    """Run ``i``'s runId (the same in every session, so a resumed build can tell which runs are stored)."""
    rng = random.Random(i)
    if i > LAG:  # run_events draws the inputs first
        for _ in range(2):
            rng.randrange(0, min(i - LAG, 1000))
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def client(
    uri: str,
    number: int,
    clients: int,
    first_run: int,
    runs: int,
    total_runs: int,
    stored: frozenset[int],
    done: Any,
    sent: Any,
    go: Any,
    until: float,
    facets: bool,
) -> None:
    """Runs first_run + number, + clients, … in batches of 50 runs (100 events), over one keep-alive connection,
    leaving out those already ``stored``. Batch ``b`` waits until every client has sent its batch ``b - ahead``:
    a run's inputs (``LAG`` runs back or more) are then stored before it."""
    host, port = uri.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    headers = {"Content-Type": "application/json"}
    total_datasets = datasets_for(2 * total_runs)
    mine = range(first_run + number, first_run + runs, clients)
    ahead = max(1, LAG // (clients * BATCH // 2) - 1)
    go.wait()
    for b, start in enumerate(range(0, len(mine), BATCH // 2)):
        while min(done) < b - ahead:
            if time.time() > until:
                break
            time.sleep(0.005)
        if time.time() > until:
            break
        todo = [i for i in mine[start : start + BATCH // 2] if i not in stored]
        body = [e for i in todo for e in run_events(i, total_datasets, facets)]
        if not body:
            done[number] = b + 1
            continue
        conn.request("POST", "/api/v1/lineage/batch", json.dumps(body).encode(), headers)
        response = conn.getresponse()
        answer = response.read()
        if response.status >= 300:
            raise SystemExit(f"/api/v1/lineage/batch answered {response.status}: {answer[:300]!r}")
        with sent.get_lock():
            sent.value += len(body)
        done[number] = b + 1
    done[number] = 1 << 62  # finished: never holds the others back
    conn.close()


def resume_point(db: str, have: int) -> tuple[int, frozenset[int]]:
    """Where a build over ``--data`` goes on: the first run not completed, and the completed runs after it.

    A build stopped by ``--minutes`` leaves each client a few batches from the others, so the stored
    runs are every run up to some point, then some of the next few thousand: those are looked up by
    their runIds (``run_uuid``) around ``have / 2``."""
    import psycopg

    if have == 0:
        return 0, frozenset()
    middle = have // 2
    window = range(max(0, middle - 4 * LAG), middle + 4 * LAG)
    ids = {run_uuid(i): i for i in window}
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT run_id FROM runs WHERE state = 'COMPLETE' AND run_id = ANY(%s)", (list(ids),)
        ).fetchall()
    complete = {ids[r[0]] for r in rows}
    first = next(i for i in window if i not in complete)
    if window.start > 0 and first == window.start:
        raise SystemExit(f"run {first:,} is not stored: this --data store was not built by this workload")
    return first, frozenset(i for i in complete if i > first)


def ingest(uri: str, db: str, args: argparse.Namespace, have: int, want: int) -> list[float]:
    """Send events ``have``..``want`` (until ``--minutes`` are up); the rate of each tenth, printed as it goes."""
    first_run, stored = resume_point(db, have)
    total_runs = want // 2
    runs = total_runs - first_run
    if first_run != have // 2 or stored:
        note(f"resuming at run {first_run:,} ({len(stored):,} runs after it already stored)")
    ctx = mp.get_context("spawn")
    sent, go = ctx.Value("q", 0), ctx.Event()
    done = ctx.Array("q", args.clients, lock=False)
    until = time.time() + args.minutes * 60 if args.minutes else float("inf")
    procs = [
        ctx.Process(
            target=client,
            args=(uri, c, args.clients, first_run, runs, total_runs, stored, done, sent, go, until, args.facets),
        )
        for c in range(args.clients)
    ]
    for p in procs:
        p.start()
    total = runs * 2 - len(stored) * 2
    marks = [total * (d + 1) // 10 for d in range(10)]
    rates: list[float] = []
    t0 = last_t = time.perf_counter()
    last_n = 0
    go.set()
    while marks:
        time.sleep(0.2)
        n = sent.value
        if n >= marks[0]:
            now = time.perf_counter()
            rate = (n - last_n) / (now - last_t)
            rates.append(rate)
            load = os.getloadavg()[0]
            note(
                f"ingest {n * 100 // total:3d}%: {have + n:>12,} events, {rate:,.0f} events/s"
                f" (this tenth), {now - t0:,.0f} s so far, load {load:.1f}"
            )
            last_n, last_t = n, now
            while marks and n >= marks[0]:
                marks.pop(0)
        if all(p.exitcode is not None for p in procs) and sent.value < (marks[0] if marks else 0):
            if time.time() > until and all(p.exitcode == 0 for p in procs):
                note(f"--minutes {args.minutes} are up: stopped after {have + sent.value:,} events")
                break
            raise SystemExit(f"the clients stopped after {sent.value:,} of {total:,} events")
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"a client failed with exit code {p.exitcode}")
    elapsed = time.perf_counter() - t0
    done = sent.value
    note(f"ingested {done:,} events in {elapsed:,.0f} s: {done / elapsed:,.0f} events/s overall")
    return rates


# ------------------------------------------------------------------ reads


class Client:
    def __init__(self, uri: str) -> None:
        host, port = uri.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=600)

    def get(self, path: str, allowed: tuple[int, ...] = (200,)) -> tuple[float, bytes]:
        t0 = time.perf_counter()
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        took = time.perf_counter() - t0
        if response.status not in allowed:
            raise SystemExit(f"GET {path} answered {response.status}: {body[:300]!r}")
        return took, body


def timed_get(c: Client, path: str, repeats: int) -> tuple[float, bytes]:
    """The median time of ``repeats`` GETs after one untimed warm-up, and the last answer."""
    _, body = c.get(path)
    times = []
    for _ in range(repeats):
        took, body = c.get(path)
        times.append(took)
    return statistics.median(times), body


def line(what: str, seconds: float, target_ms: float = TARGET_MS, scale_only: bool = False) -> bool:
    ms = seconds * 1000
    if scale_only:
        note(f"{what}: {fmt_seconds(seconds)} (no target; {target_ms:g} ms for scale)")
        return True
    return report(what, fmt_seconds(seconds), "the target", f"{target_ms:g} ms", target_ms / ms, 1.0)


def graph_line(what: str, took: float, body: bytes) -> None:
    """A lineage graph's time and size, or its refusal (413: more nodes than ``DATATRAIL_LINEAGE_MAX_NODES``)."""
    answer = json.loads(body)
    if "graph" in answer:
        line(f"{what} ({len(answer['graph']):,} nodes)", took, scale_only=True)
    else:
        note(f"{what}: refused in {fmt_seconds(took)}: {answer.get('detail')}")


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def measure(uri: str, d: int, late: str, repeats: int) -> None:
    """The reads over a store of ``d`` datasets d0 … d<d-1>; ``late``: the version written last (``name#number``)."""
    late_version = late
    late = late.partition("#")[0]
    c = Client(uri)
    mid = d // 2
    name = f"d{min(9999, d - 1)}"
    for query in ("d9999", "d4242", "d12345"):
        took, body = timed_get(c, f"/api/v1/search?q={query}", repeats)
        total = json.loads(body)["totalCount"]
        line(f"search q={query} ({total:,} hits, first 100)", took)
    ds = f"/api/v1/namespaces/{NS}/datasets"
    for label, offset in (("0", 0), ("middle", mid), ("end", max(0, d - 100))):
        took, _ = timed_get(c, f"{ds}?limit=100&offset={offset}", repeats)
        line(f"Marquez list page, offset {label} ({offset:,} of {d:,} datasets)", took)
    for label, offset in (("0", 0), ("middle", mid), ("end", max(0, d - 100))):
        took, _ = timed_get(c, f"/api/v1/dataset-page?namespace={NS}&limit=100&offset={offset}", repeats)
        line(f"the same page's rows alone (store API, no Marquez shaping), offset {label}", took)
    took, body = timed_get(c, f"{ds}?limit=100", repeats)
    answer = json.loads(body)
    cursor = answer.get("nextCursor")
    if cursor is None:
        note("keyset pages: the list has no nextCursor (this version has no keyset paging)")
    else:
        walk = []
        for _ in range(max(repeats, 5)):
            t, body = c.get(f"{ds}?limit=100&cursor={q(cursor)}")
            walk.append(t)
            cursor = json.loads(body).get("nextCursor") or cursor
        line("keyset list pages 2.., walking from the first", statistics.median(walk))
        deep = _cursor_at(f"d{mid}")
        if deep is not None:
            took, _ = timed_get(c, f"{ds}?limit=100&cursor={q(deep)}", repeats)
            line(f"keyset list page in the middle (after d{mid})", took)
    for label, offset in (("0", 0), ("middle", 500)):
        took, body = timed_get(c, f"/api/v1/namespaces/{NS}/jobs?limit=100&offset={offset}", repeats)
        jobs = json.loads(body)["totalCount"]
        line(f"Marquez jobs page, offset {label} ({offset:,} of {jobs:,} jobs)", took)
    for n in (name, f"d{mid}"):
        took, _ = timed_get(c, f"/datasets/{NS}/{n}", repeats)
        line(f"UI dataset page {n}", took)
    took, _ = timed_get(c, f"/datasets/{NS}/{name}/lineage", repeats)
    line(f"UI lineage page {name}", took, scale_only=True)
    slow: dict[str, float] = {}
    for depth in (20, 50):
        # Timed once each (a big graph takes long): Marquez's graph (every node filled with its Dataset or
        # Job), and the version-level graph of the newest version (the traversal, not filled).
        graphs = (("Marquez graph", f"dataset:{NS}:{late}"), ("version graph", f"dataset:{NS}:{late_version}"))
        for label, node in graphs:
            if slow.get(label, 0.0) > 60:
                note(f"lineage API, {label}, depth {depth}: not timed (depth 20 took {slow[label]:.0f} s)")
                continue
            took, body = c.get(f"/api/v1/lineage?nodeId={q(node)}&direction=upstream&depth={depth}", (200, 413))
            slow[label] = took
            graph_line(f"lineage API, {label} upstream of {late}, depth {depth}", took, body)
        # Marquez's own graph, as its web UI asks for it (no direction: everything connected), timed once.
        if slow.get("connected", 0.0) > 60:
            note(
                f"lineage API, Marquez's connected graph, depth {depth}: not timed (depth 20: {slow['connected']:.0f}s)"
            )
            continue
        took, body = c.get(f"/api/v1/lineage?nodeId={q(f'dataset:{NS}:{late}')}&depth={depth}", (200, 413))
        slow["connected"] = took
        graph_line(f"lineage API, Marquez's connected graph of {late} (no direction), depth {depth}", took, body)
    took, _ = timed_get(c, "/api/v1/audit?limit=100", repeats)
    line("audit API, newest 100 entries", took, scale_only=True)
    took, body = timed_get(c, f"/api/v1/audit?limit=100&dataset={q(f'{NS}:{name}')}", repeats)
    found = len(json.loads(body)["entries"])
    line(f"audit API, the entries of {NS}:{name} ({found} found)", took, scale_only=True)
    took, _ = timed_get(c, "/audit", repeats)
    line("UI audit page (200 entries)", took, scale_only=True)


def old_search(trail: Any, q: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """The search route before issue 22's item 6 (the baseline): every match of every kind, sorted here."""
    from datatrail.core.times import iso

    hits = [
        {"type": "DATASET", "name": d.name, "updatedAt": iso(d.created_at), "namespace": d.namespace}
        for d in trail.datasets(None, match=q)
    ]
    hits += [
        {"type": "JOB", "name": j.name, "updatedAt": iso(j.created_at), "namespace": j.namespace}
        for j in trail.jobs(None, match=q)
    ]
    hits.sort(key=lambda h: (h["name"].casefold(), h["namespace"], h["type"]))
    return len(hits), hits[:limit]


def old_job_page(trail: Any, offset: int, grouped: bool = True) -> int:
    """The jobs page's store read before (the baselines): the page's runs counted by a join and GROUP BY,
    which PostgreSQL answers by a hash join over every run of the store (``grouped``), or by a correlated
    count on ``ix_runs_job`` per job (before revision 0009 kept the count on the job's row)."""
    from sqlalchemy import func, select

    from datatrail.store.sql import reads
    from datatrail.store.sql import tables as t

    db = trail.catalog._store._db
    j, n = t.jobs.c, t.namespaces.c
    with db.read() as conn:
        ns_id = conn.execute(select(n.id).where(n.name == NS)).scalar()
        total = int(conn.execute(select(func.count()).select_from(t.jobs).where(j.namespace_id == ns_id)).scalar_one())
        ids = [
            r.id
            for r in conn.execute(
                select(j.id).where(j.namespace_id == ns_id).order_by(j.name).limit(100).offset(offset)
            )
        ]
        r = t.runs.c
        columns = (n.name, j.id, j.name, j.type, j.created_at, j.facets, j.description)
        base = select(*columns).select_from(t.jobs).join(t.namespaces, n.id == j.namespace_id).where(j.id.in_(ids))
        if grouped:
            q = base.add_columns(func.count(r.pk)).outerjoin(t.runs, r.job_id == j.id).group_by(*columns[:5])
        else:
            counted = select(func.count()).where(r.job_id == j.id).correlate(t.jobs).scalar_subquery()
            q = base.add_columns(counted)
        conn.execute(q).all()
        reads._latest_runs(conn, ids)
    return total


def timed(fn: Any, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def before_after(uri: str, repeats: int, late: str) -> None:
    """Search and the jobs page in process, the code before issue 22's item 5/6 changes against now, in
    this run; and which index answers search's LIKE (EXPLAIN)."""
    from sqlalchemy import text

    import datatrail

    trail = datatrail.connect(uri.replace("postgresql://", "postgresql+psycopg://"))
    try:
        for query in ("d9999", "d1", "job1"):
            total = trail.catalog.search(query, limit=100)[1]
            old = timed(lambda: old_search(trail, query, 100), repeats)  # noqa: B023
            new = timed(lambda: trail.catalog.search(query, limit=100), repeats)  # noqa: B023
            report(
                f"search q={query} ({total:,} hits) in process, a page in SQL",
                fmt_seconds(new),
                "every match fetched",
                fmt_seconds(old),
                old / new,
                1.0,
            )
        for offset in (0, 500):
            counted = timed(lambda: old_job_page(trail, offset, grouped=False), repeats)  # noqa: B023
            new = timed(lambda: trail.catalog.job_page(NS, limit=100, offset=offset), repeats)  # noqa: B023
            report(
                f"jobs page store read, offset {offset}, run counts on the job rows",
                fmt_seconds(new),
                "counted in ix_runs_job",
                fmt_seconds(counted),
                counted / new,
                1.0,
            )
            old = timed(lambda: old_job_page(trail, offset), repeats)  # noqa: B023
            new = timed(lambda: trail.catalog.job_page(NS, limit=100, offset=offset), repeats)  # noqa: B023
            report(
                f"jobs page store read, offset {offset}, run counts on the job rows (a page in SQL)",
                fmt_seconds(new),
                "GROUP BY over every run",
                fmt_seconds(old),
                old / new,
                1.0,
            )
        marquez_shaping(trail, repeats, late)
        with trail.catalog._store._db.read() as conn:
            plan = (
                conn.execute(
                    text("EXPLAIN SELECT count(*) FROM datasets WHERE name ILIKE '%d9999%' AND NOT name ~ '[^ -~]'")
                )
                .scalars()
                .all()
            )
        used = [row.strip() for row in plan if "Index" in row]
        note(f"search's LIKE on PostgreSQL: {used[0] if used else 'no index (a scan): ' + plan[0].strip()}")
    finally:
        trail.close()


def marquez_shaping(trail: Any, repeats: int, late: str) -> None:
    """Round eight's encoding of Marquez's answers, in process, against what it replaced, in this run: the jobs
    page by ``json_body`` (orjson where it writes the same bytes) against FastAPI's encoder, and the folded
    graph upstream of ``late``'s dataset (the newest version's) at depth 20 cut where producers' values sit
    against ``bounded`` over the whole answer (both give the same answer: asserted here); round nine's fold
    of that graph from the walk's columns against round eight's from a LineageNode per node (at the deepest
    depth up to 20 that ``DATATRAIL_LINEAGE_MAX_NODES`` lets through)."""
    import copy

    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse

    from datatrail.core.limits import MAX_RESPONSE_DEPTH, bounded
    from datatrail.server import marquez_models as mq
    from datatrail.server.marquez import to_marquez
    from datatrail.server.routes import json_body
    from datatrail.server.routes.lineage import _cut

    found, total = trail.catalog.job_page(NS, limit=100)
    page = {"jobs": mq.jobs(trail, found), "totalCount": total}
    standard = bytes(JSONResponse(jsonable_encoder(bounded(page, MAX_RESPONSE_DEPTH))).body)
    assert json_body(page) == standard
    old = timed(lambda: JSONResponse(jsonable_encoder(bounded(page, MAX_RESPONSE_DEPTH))).body, repeats)
    new = timed(lambda: json_body(page), repeats)
    report(
        "Marquez jobs page (100 jobs) encoded", fmt_seconds(new), "FastAPI's encoder", fmt_seconds(old), old / new, 1.0
    )
    from datatrail.core.errors import GraphTooLarge
    from datatrail.core.gcpause import paused_gc
    from datatrail.lineage import Graph
    from datatrail.server.marquez import fold_columns
    from datatrail.server.routes.lineage import encode

    name, depth = late.partition("#")[0], 20
    try:
        trail.dataset_lineage(NS, name, direction="upstream", depth=depth)
    except GraphTooLarge as exc:  # the deepest graph the limit (DATATRAIL_LINEAGE_MAX_NODES) lets through
        note(f"Marquez graph upstream of {name}: {exc.message}")
        depth = exc.fits if exc.fits is not None and exc.fits >= 0 else 0
    columns = trail.dataset_lineage_columns(NS, name, selector=None, direction="upstream", depth=depth)

    def objects() -> Any:  # round eight's fold: a LineageNode per walked version and run, then to_marquez
        result = columns.result()
        return to_marquez(Graph("", "upstream", depth, result.nodes, result.edges), fold=True)

    assert encode(objects()) == encode(fold_columns(columns))
    with paused_gc():  # as the route folds
        old = timed(objects, repeats)
        new = timed(lambda: fold_columns(columns), repeats)
    walked = len(columns.ids)
    report(
        f"Marquez graph upstream, depth {depth} ({walked:,} versions and runs walked) folded from the walk's columns",
        f"{new / walked * 1e6:.2f} us/node",
        "a LineageNode each, to_marquez",
        f"{old / walked * 1e6:.2f} us/node",
        old / new,
        1.0,
    )
    answer = mq.fill_graph(trail, fold_columns(columns))
    assert bounded(copy.deepcopy(answer), MAX_RESPONSE_DEPTH) == _cut(copy.deepcopy(answer))
    old = timed(lambda: bounded(answer, MAX_RESPONSE_DEPTH), repeats)
    new = timed(lambda: _cut(answer), repeats)
    nodes = len(answer["graph"])
    report(
        f"Marquez graph ({nodes:,} nodes) cut to the depth limit",
        fmt_seconds(new),
        "the whole walked",
        fmt_seconds(old),
        old / new,
        1.0,
    )


def _cursor_at(name: str) -> str | None:
    """The keyset cursor just after ``name`` (the benchmark jumps to the middle; clients only follow nextCursor)."""
    try:
        from datatrail.server.routes import encode_cursor
    except ImportError:  # a tree from before keyset paging
        return None
    return encode_cursor(name)


def curve(uri: str) -> None:
    """The ingest rate per tenth of the stored events, from their received_at (a store grown in several
    sessions over --data shows the pause between two sessions as a slow tenth)."""
    import psycopg

    with psycopg.connect(uri) as conn:
        rows = conn.execute(
            "SELECT tenth, count(*), extract(epoch FROM max(received_at) - min(received_at)), max(id)"
            " FROM (SELECT id, received_at, ntile(10) OVER (ORDER BY id) AS tenth FROM events) e"
            " GROUP BY tenth ORDER BY tenth"
        ).fetchall()
    rates = [int(n) / float(s) for _, n, s, _ in rows if s]
    for (tenth, n, s, last), rate in zip(rows, rates, strict=False):
        note(f"stored tenth {tenth:2d}: events up to id {int(last):,}, {int(n):,} in {float(s):,.0f} s, {rate:,.0f}/s")
    if len(rates) >= 2:
        report(
            "ingest rate from received_at, the last tenth of the store against the first",
            f"{rates[-1]:,.0f} events/s",
            "first tenth",
            f"{rates[0]:,.0f} events/s",
            rates[-1] / rates[0],
            0.8,
        )


def sizes(uri: str, events: int) -> None:
    import psycopg

    with psycopg.connect(uri) as conn:
        total = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        stored = conn.execute("SELECT count(*) FROM events").fetchone()
        assert total is not None and stored is not None
        n = int(stored[0])
        size = int(total[0])
        note(f"size on disk: {size / 2**30:.2f} GiB for {n:,} events: {size / n:,.0f} bytes per event")
        rows = conn.execute(
            "SELECT relname, pg_total_relation_size(c.oid) FROM pg_class c"
            " JOIN pg_namespace s ON s.oid = c.relnamespace"
            " WHERE s.nspname = 'public' AND c.relkind = 'r' ORDER BY 2 DESC LIMIT 8"
        ).fetchall()
        note(", ".join(f"{r[0]} {int(r[1]) / n:,.0f} B/event" for r in rows))
        if n != events:
            note(f"(the store holds {n:,} events, {events:,} were asked for)")


# ------------------------------------------------------------------ the PostgreSQL server


def kept_server(folder: Path) -> pgserver.PgServer:
    """A PostgreSQL server whose data stays in ``folder`` (made on the first run, durable: fsync on)."""
    bindir = pgserver.find_bindir()
    folder.mkdir(parents=True, exist_ok=True)
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        pw = pwd.getpwnam(user)
        os.chown(folder, pw.pw_uid, pw.pw_gid)
    os.chmod(folder, 0o700)
    server = pgserver.PgServer(bindir, folder / "data", pgserver.free_port(), user, folder, durable=True)
    if not (server.datadir / "PG_VERSION").exists():
        server._run("initdb", "-D", str(server.datadir), "-U", "datatrail", "--auth=trust", "-E", "UTF8")
    server.resume()
    return server


def count(uri: str) -> int:
    import psycopg

    with psycopg.connect(uri) as conn:
        if conn.execute("SELECT to_regclass('public.events')").fetchone() == (None,):
            return 0
        row = conn.execute("SELECT count(*) FROM events").fetchone()
        assert row is not None
        return int(row[0])


def analyze(uri: str) -> tuple[int, str]:
    """VACUUM ANALYZE after the ingest (as autovacuum would, in time); the number of datasets, and the
    newest version as ``name#number`` (the deepest upstream: the newest dataset may be one only read so far)."""
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        row = conn.execute("SELECT count(*) FROM datasets").fetchone()
        newest = conn.execute(
            "SELECT d.name, v.number FROM versions v JOIN datasets d ON d.id = v.dataset_id ORDER BY v.id DESC LIMIT 1"
        ).fetchone()
        assert row is not None and newest is not None
        return int(row[0]), f"{newest[0]}#{newest[1]}"


def database(pg: pgserver.PgServer) -> str:
    import psycopg

    with psycopg.connect(pg.uri, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = 'pg_scale'").fetchone() is None:
            conn.execute("CREATE DATABASE pg_scale")
    return pg.database_uri("pg_scale")


@contextmanager
def running(args: argparse.Namespace) -> Iterator[pgserver.PgServer]:
    if args.data is not None:
        pg = kept_server(Path(args.data).resolve())
        try:
            yield pg
        finally:
            pg.halt()
    else:
        pg = pgserver.start(durable=True)
        try:
            yield pg
        finally:
            pg.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--events", type=int, default=2000 if quick() else 10_000_000, help="events in the store at the end"
    )
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2, help="uvicorn worker processes of the server")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats of each read (the median is printed)")
    ap.add_argument("--data", help="keep PostgreSQL's data here, and add to what an earlier run left")
    ap.add_argument("--minutes", type=float, help="stop the ingest after this long (then measure what is there)")
    ap.add_argument("--no-measure", action="store_true", help="only ingest (measure in a later run over --data)")
    ap.add_argument("--facets", action="store_true", help="events carry a schema facet and a nominalTime run facet")
    args = ap.parse_args()
    with scratch("pg-scale-") as folder:
        with running(args) as pg:
            session(pg, folder, args)


def session(pg: pgserver.PgServer, folder: Path, args: argparse.Namespace) -> None:
    """A server over the store: ingest up to --events, then the reads and the size."""
    store = database(pg).replace("postgresql://", "postgresql+psycopg://")
    server = httpserver.start(folder / "serve", "--workers", str(args.workers), store=store)
    try:
        server.wait_ready(timeout=3600)  # a migration over a big store builds indexes first
        uri = pg.database_uri("pg_scale")
        have = count(uri)
        want = args.events - args.events % 2
        if want > have:
            rates = ingest(server.uri, uri, args, have, want)
            if len(rates) >= 2:
                report(
                    "ingest rate, the last tenth against the first",
                    f"{rates[-1]:,.0f} events/s",
                    "first tenth",
                    f"{rates[0]:,.0f} events/s",
                    rates[-1] / rates[0],
                    0.8,
                )
        events = count(uri)
        if args.no_measure:
            note(f"{events:,} events stored; --no-measure: no reads timed")
            return
        d, late = analyze(uri)
        note(f"reads over {events:,} events, {d:,} datasets, load {os.getloadavg()[0]:.1f}")
        curve(uri)
        measure(server.uri, d, late, args.repeats)
        before_after(uri, args.repeats, late)
        sizes(uri, events)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
