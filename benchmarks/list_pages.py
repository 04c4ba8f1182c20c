"""Marquez's list pages of a namespace of ``--datasets`` datasets (issue 22 item 5): this code against a
baseline ``datatrail`` (``--base``, e.g. another checkout's ``.venv/bin/datatrail``), each over its own copy
of one synthetic PostgreSQL store, in the same run.

The store is built by SQL, not by ingest (a million datasets in a minute): namespace ``perf`` with datasets
``d0`` … ``d<N-1>`` of one version each, every thousandth hidden (``deleted_at``, as a DROP leaves it), at
revision 0009; VACUUM ANALYZE. A copy of it is upgraded by this code (its migration timed); a ``datatrail
serve`` of each code answers over its copy (the baseline over the 0009 one). Each page is asked of both in
turn, ``--repeats`` times, the answers compared (the same bytes but for the timing), the medians printed
with their ratio. Then EXPLAIN (ANALYZE, BUFFERS) of the page's statements on this code's copy.

    python benchmarks/list_pages.py --base /work/main/.venv/bin/datatrail [--datasets 1000000] [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import fmt_seconds, note, quick, report, scratch
from pg_scale import Client
from tests import httpserver, pgserver
from tests.migrate import upgrade

NS = "perf"
HIDDEN_EVERY = 1000
PAGE = "SELECT id, name, kind, description, created_at FROM datasets WHERE namespace_id = {ns} AND deleted_at IS NULL"


def build(pg: pgserver.PgServer, n: int) -> str:
    """The synthetic store at revision 0009 (the baseline's schema), as a database named ``base``."""
    import psycopg
    from sqlalchemy import create_engine

    with psycopg.connect(pg.uri, autocommit=True) as conn:
        conn.execute("CREATE DATABASE base")
    uri = pg.database_uri("base")
    engine = create_engine(uri.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        upgrade(conn, "0009")
    engine.dispose()
    t0 = time.perf_counter()
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("INSERT INTO namespaces (name, created_at) VALUES (%s, now())", (NS,))
        conn.execute(
            "INSERT INTO datasets (namespace_id, name, kind, created_at, deleted_at)"
            " SELECT n.id, 'd' || g, 'dataset', now(), CASE WHEN g %% %s = 7 THEN now() END"
            " FROM namespaces n, generate_series(0, %s - 1) g WHERE n.name = %s",
            (HIDDEN_EVERY, n, NS),
        )
        conn.execute(
            "INSERT INTO versions (dataset_id, number, version_key, digest, size, uri, format, created_at)"
            " SELECT id, 1, digest, digest, 1000, 's3://perf/' || name, 'parquet', now()"
            " FROM (SELECT id, name, 'sha256:' || md5(name) || md5(name) AS digest FROM datasets) d"
        )
        conn.execute("VACUUM ANALYZE")
    note(f"built {n:,} datasets and versions by SQL in {time.perf_counter() - t0:.0f} s")
    return uri


def upgraded(pg: pgserver.PgServer) -> str:
    """A copy of ``base`` upgraded by this code (the migration's time printed)."""
    import psycopg

    from datatrail.store.sql.store import SqlStore

    with psycopg.connect(pg.uri, autocommit=True) as conn:
        conn.execute("CREATE DATABASE new TEMPLATE base")
    uri = pg.database_uri("new")
    t0 = time.perf_counter()
    SqlStore(uri.replace("postgresql://", "postgresql+psycopg://")).close()
    note(f"this code's migration of the copy to head: {time.perf_counter() - t0:.2f} s")
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE namespaces")
    return uri


@contextmanager
def served(exe: Path, store: str, folder: Path) -> Iterator[httpserver.Server]:
    """``datatrail serve`` (its default: one process) of the executable ``exe`` over ``store``."""
    folder.mkdir(parents=True)
    port = pgserver.free_port()
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(exe),
                "--store",
                store.replace("postgresql://", "postgresql+psycopg://"),
                "serve",
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=folder,
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")},
                "DATATRAIL_LOG_LEVEL": "warning",
            },
        )
    server = httpserver.Server(f"http://127.0.0.1:{port}", store, process, log)
    try:
        server.wait_ready(timeout=600)
        yield server
    finally:
        server.stop()


def pages(n: int) -> list[tuple[str, str]]:
    ds = f"/api/v1/namespaces/{NS}/datasets?limit=100"

    def after(name: str) -> str:
        from datatrail.server.routes import encode_cursor

        return urllib.parse.quote(encode_cursor(name), safe="")

    mid = n // 2
    return [
        ("offset 0", ds),
        (f"offset {mid:,} (middle)", f"{ds}&offset={mid}"),
        (f"offset {n - n // HIDDEN_EVERY - 100:,} (end)", f"{ds}&offset={n - n // HIDDEN_EVERY - 100}"),
        ("keyset, second page", f"{ds}&cursor={after('d10098')}"),
        (f"keyset, after d{mid}", f"{ds}&cursor={after(f'd{mid}')}"),
        ("jobs page (no jobs)", f"/api/v1/namespaces/{NS}/jobs?limit=100"),
    ]


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def compare(servers: dict[str, tuple[Client, int]], n: int, repeats: int) -> None:
    """Each page asked of each server in turn; the medians, and each server's CPU per answer (robust to load)."""
    for label, path in pages(n):
        times: dict[str, list[float]] = {name: [] for name in servers}
        cpu: dict[str, float] = dict.fromkeys(servers, 0.0)
        answers = {name: c.get(path)[1] for name, (c, _) in servers.items()}  # warm each once
        for _ in range(repeats):
            for name, (c, pid) in servers.items():
                before = cpu_seconds(pid)
                times[name].append(c.get(path)[0])
                cpu[name] += cpu_seconds(pid) - before
        ours = statistics.median(times["ours"])
        total = json.loads(answers["ours"])["totalCount"]
        where = f"{label} (totalCount {total:,}, load {os.getloadavg()[0]:.1f}"
        if "base" not in servers:
            note(f"{where}): {fmt_seconds(ours)}, server CPU {fmt_seconds(cpu['ours'] / repeats)}; no --base")
            continue
        same = json.loads(answers["base"]) == json.loads(answers["ours"])
        base = statistics.median(times["base"])
        report(
            f"Marquez list page, {where}, answers {'equal' if same else 'DIFFER'})",
            fmt_seconds(ours),
            "baseline",
            fmt_seconds(base),
            base / ours,
            1.0,
        )
        ours_cpu, base_cpu = (fmt_seconds(cpu[name] / repeats) for name in ("ours", "base"))
        note(f"server CPU per answer: {ours_cpu}, baseline {base_cpu}")


def namespaces_once(ours: Client) -> None:
    """Marquez's namespace list (unchanged here: it still reads every dataset and job), timed once."""
    took, body = ours.get("/api/v1/namespaces")
    counts = [(x["name"], x["datasets"], x["jobs"]) for x in json.loads(body)["namespaces"]]
    note(f"Marquez namespace list {counts}, timed once: {fmt_seconds(took)}")


def explain(uri: str, n: int) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the page's statements, as reads.py writes them."""
    import psycopg

    with psycopg.connect(uri) as conn:
        row = conn.execute("SELECT id FROM namespaces WHERE name = %s", (NS,)).fetchone()
        assert row is not None
        page = PAGE.format(ns=int(row[0]))
        mid = n // 2
        statements = {
            "the total now (the namespace's row)": f"SELECT id, dataset_count FROM namespaces WHERE name = '{NS}'",
            "the total before (every listed dataset counted)": (
                f"SELECT count(*) FROM datasets WHERE namespace_id = {int(row[0])} AND deleted_at IS NULL"
            ),
            "keyset page after the middle": f"{page} AND name > 'd{mid}' ORDER BY name LIMIT 100",
            "offset page in the middle, before (OFFSET on the rows)": f"{page} ORDER BY name LIMIT 100 OFFSET {mid}",
            "offset page in the middle, now (the first name from the index)": (
                f"{page} AND name >= ({page.replace('id, name, kind, description, created_at', 'name')}"
                f" ORDER BY name OFFSET {mid} LIMIT 1) ORDER BY name LIMIT 100"
            ),
        }
        for label, sql in statements.items():
            conn.execute(sql).fetchall()  # warm
            plan = [r[0] for r in conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}").fetchall()]
            note(f"EXPLAIN ANALYZE, {label}:")
            for line in plan:
                print(f"      {line}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", type=int, default=2000 if quick() else 1_000_000)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--base", type=Path, help="the baseline's datatrail executable (its own checkout and venv)")
    args = ap.parse_args()
    pg = pgserver.start()
    try:
        build(pg, args.datasets)
        new = upgraded(pg)
        with scratch("list-pages-") as folder:
            with served(Path(sys.executable).with_name("datatrail"), new, folder / "ours") as ours:
                servers = {"ours": (Client(ours.uri), ours.process.pid)}
                if args.base is None:
                    compare(servers, args.datasets, args.repeats)
                else:
                    with served(args.base, pg.database_uri("base"), folder / "base") as base:
                        servers["base"] = (Client(base.uri), base.process.pid)
                        compare(servers, args.datasets, args.repeats)
                namespaces_once(servers["ours"][0])
        explain(new, args.datasets)
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
