"""Marquez's namespace list and namespace, its raw events, sources and tags, and the UI's home page, over a
store of ``--datasets`` datasets (issue 22 item 5): this code against a baseline ``datatrail`` (``--base``, e.g.
another checkout's ``.venv/bin/datatrail``), each over its own copy of one synthetic PostgreSQL store, in
the same run.

The store is list_pages.py's (namespace ``perf``, datasets ``d0`` … ``d<N-1>``, every thousandth hidden,
built by SQL) with ``--jobs`` jobs in a namespace ``etl`` of their own and ``--events`` raw events (Marquez's
``/api/v1/events/lineage``) and a check result on every thousandth version, at revision 0010 (the
baseline's schema); a copy of it is upgraded by this code (its migration timed). Each page is asked of this
code ``--repeats`` times and of the baseline ``--base-repeats`` times (the baseline reads every dataset per
answer; with ``--every-dataset`` sources and tags, which both read every dataset, ``--base-repeats`` times of
each), the answers compared (the same bytes), the medians printed with their ratio and each server's CPU
per answer. Then EXPLAIN (ANALYZE, BUFFERS) of the namespace list's statement on this code's copy.

    python benchmarks/namespace_pages.py --base /work/main/.venv/bin/datatrail [--datasets 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import fmt_seconds, note, quick, report, scratch
from list_pages import NS, build, cpu_seconds, served, upgraded
from pg_scale import Client
from tests import pgserver
from tests.migrate import upgrade

PAGES = (
    ("namespace list, /api/v1/namespaces", "/api/v1/namespaces"),
    ("one namespace, /api/v1/namespaces/{ns}", f"/api/v1/namespaces/{NS}"),
    ("jobs' namespace", "/api/v1/namespaces/etl"),
    ("raw events /api/v1/events/lineage, newest first", "/api/v1/events/lineage?limit=100"),
    ("raw events, oldest first from 100", "/api/v1/events/lineage?sortDirection=asc&limit=100&offset=100"),
    ("raw events after a time", "/api/v1/events/lineage?after=2026-01-01T12:00:00Z&limit=100"),
)
# Pages that look up every dataset's latest version on both sides (not changed yet; minutes at 20,000 datasets):
# asked ``--base-repeats`` times, with ``--every-dataset``.
EVERY_DATASET = (
    ("Marquez sources, /api/v1/sources", "/api/v1/sources"),
    ("Marquez tags, /api/v1/tags", "/api/v1/tags"),
)
# A stored event's payload, as ingest keeps it: one run writing one dataset (about 400 bytes).
PAYLOAD = (
    "json_build_object('eventType', 'COMPLETE', 'eventTime', to_char(t AT TIME ZONE 'UTC',"
    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'producer', 'https://example.com/bench', 'schemaURL',"
    " 'https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent', 'run', json_build_object('runId',"
    " md5(g::text)), 'job', json_build_object('namespace', 'etl', 'name', 'job' || (g %% 1000)), 'inputs',"
    " json_build_array(), 'outputs', json_build_array(json_build_object('namespace', 'perf', 'name', 'd' || g)))::text"
)


def at_0010(uri: str, jobs: int, events: int) -> None:
    """``base`` upgraded to revision 0010 (its counts backfilled) with ``jobs`` jobs in namespace ``etl``,
    ``events`` raw events (one a minute from 2026-01-01) and a check result on every thousandth version
    (every other one failed: the home page's failing versions), stored by SQL."""
    import psycopg
    from sqlalchemy import create_engine

    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("INSERT INTO namespaces (name, created_at) VALUES ('etl', now())")
        conn.execute(
            "INSERT INTO jobs (namespace_id, name, type, created_at)"
            " SELECT n.id, 'job' || g, 'BATCH', now() - g * interval '1 minute'"
            " FROM namespaces n, generate_series(0, %s - 1) g WHERE n.name = 'etl'",
            (jobs,),
        )
        conn.execute(
            "INSERT INTO events (event_hash, event_type, event_time, run_id, payload, received_at)"
            f" SELECT md5(g::text) || md5(g::text), 'COMPLETE', t, md5(g::text), {PAYLOAD}, t"
            " FROM generate_series(0, %s - 1) g, LATERAL (SELECT timestamptz '2026-01-01 00:00Z'"
            " + g * interval '1 minute' AS t) s",
            (events,),
        )
        conn.execute(
            "INSERT INTO check_results (version_id, event_id, position, rule, severity, success, checked_at)"
            " SELECT id, id, 0, 'not_null', 'error', id % 2000 <> 0, now() FROM versions WHERE id % 1000 = 0"
        )
    engine = create_engine(uri.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        upgrade(conn, "0010")
    engine.dispose()
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def timed(uri: str, pid: int, path: str, repeats: int) -> tuple[float, float, bytes]:
    """The median time and mean server CPU of ``repeats`` GETs after one untimed warm-up, and the answer.
    A connection of its own: the server closes one left idle while the other server answers."""
    c = Client(uri)
    _, body = c.get(path)
    times, cpu = [], 0.0
    for _ in range(repeats):
        before = cpu_seconds(pid)
        times.append(c.get(path)[0])
        cpu += cpu_seconds(pid) - before
    return statistics.median(times), cpu / repeats, body


def compare(servers: dict[str, tuple[str, int]], repeats: dict[str, int], every_dataset: bool) -> None:
    once = dict.fromkeys(repeats, min(repeats.values()))
    pages = [(label, path, repeats) for label, path in PAGES]
    pages.append(("UI home page, /", "/", repeats))
    pages += [(label, path, once) for label, path in EVERY_DATASET if every_dataset]
    for label, path, asked in pages:
        found = {name: timed(uri, pid, path, asked[name]) for name, (uri, pid) in servers.items()}
        ours, ours_cpu, body = found["ours"]
        where = f"{label} (load {os.getloadavg()[0]:.1f}"
        if "base" not in found:
            note(f"{where}): {fmt_seconds(ours)}, server CPU {fmt_seconds(ours_cpu)}; no --base")
            continue
        base, base_cpu, base_body = found["base"]
        same = base_body == body if path == "/" else json.loads(base_body) == json.loads(body)
        report(
            f"Marquez namespace page, {where}, answers {'equal' if same else 'DIFFER'})",
            fmt_seconds(ours),
            "baseline",
            fmt_seconds(base),
            base / ours,
            1.0,
        )
        note(f"server CPU per answer: {fmt_seconds(ours_cpu)}, baseline {fmt_seconds(base_cpu)}")


# The raw events' statements (reads.py's event_page): the count, and the newest page.
EVENT_STATEMENTS = {
    "raw events, the count": "SELECT count(*) FROM events",
    "raw events after a time, the count": "SELECT count(*) FROM events WHERE event_time >= '2026-01-01T12:00:00Z'",
    "raw events, the newest page": "SELECT id, payload FROM events ORDER BY id DESC LIMIT 100",
}


def explain(uri: str) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the namespace list's and the raw events' statements, as reads.py
    writes them."""
    import psycopg
    from sqlalchemy.dialects import postgresql

    from datatrail.store.sql.reads import namespaces_query

    sql = str(namespaces_query(None).compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    with psycopg.connect(uri) as conn:
        for label, statement in {"the namespace list": sql, **EVENT_STATEMENTS}.items():
            conn.execute(statement).fetchall()  # warm
            note(f"EXPLAIN ANALYZE, {label}:")
            for (line,) in conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}").fetchall():
                print(f"      {line}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=int, default=2000 if quick() else 1_000_000)
    ap.add_argument("--jobs", type=int, default=100 if quick() else 10_000)
    ap.add_argument("--events", type=int, default=300 if quick() else 100_000)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--base-repeats", type=int, default=1)
    ap.add_argument("--every-dataset", action="store_true", help="time sources and tags too (slow on both sides)")
    ap.add_argument("--base", type=Path, help="the baseline's datatrail executable (its own checkout and venv)")
    args = ap.parse_args()
    pg = pgserver.start()
    try:
        base_uri = build(pg, args.datasets)
        t0 = time.perf_counter()
        at_0010(base_uri, args.jobs, args.events)
        took = time.perf_counter() - t0
        note(f"{args.jobs:,} jobs and {args.events:,} events added and revision 0010 applied in {took:.1f} s")
        new = upgraded(pg)
        repeats = {"ours": args.repeats, "base": args.base_repeats}
        with scratch("namespace-pages-") as folder:
            with served(Path(sys.executable).with_name("datatrail"), new, folder / "ours") as ours:
                servers = {"ours": (ours.uri, ours.process.pid)}
                if args.base is None:
                    compare(servers, repeats, args.every_dataset)
                else:
                    with served(args.base, base_uri, folder / "base") as base:
                        servers["base"] = (base.uri, base.process.pid)
                        compare(servers, repeats, args.every_dataset)
        explain(new)
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
