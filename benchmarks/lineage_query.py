"""Lineage: an upstream query of depth 50 on a wide graph of 1,000,000 nodes in SQLite.

The store is made by the real schema (``SqlStore(uri, create=True)`` runs the
migrations), then filled by bulk inserts straight into its tables: N versions
and N runs, run i producing version i and reading ``--inputs`` distinct versions
drawn from the ``--window`` versions before it. With the defaults (500,000 of
each, 3 inputs, window 1,000) that is 1,000,000 nodes and 2,000,000 edges
(500,000 outputs + 1,500,000 inputs): two parents per node on average. The
built file is kept under .bench/ so that reruns skip the build.

Contender: ``SqlStore.lineage([version], "upstream", depth)`` from the last
version, the store's own traversal (nodes with their data, and edges).
Baseline: a plain recursive CTE over run_io whose UNION deduplicates on
(node, depth), with the same depth rule, returning node ids only. Both must
reach the same set of nodes; the benchmark checks that before it times them.

    python benchmarks/lineage_query.py [--versions N] [--depth D] [--repeats R]
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, fmt_seconds, median, note, quick, report, verdict

from datatrail.core.limits import graph_limit
from datatrail.store.sql import lineage as sql_lineage
from datatrail.store.sql import tables as t
from datatrail.store.sql.engine import HEAD
from datatrail.store.sql.store import SqlStore

BUILD_FORMAT = 1  # bump when the generated graph changes, so cached files are rebuilt
CREATED = "2024-01-01 00:00:00.000000"
TARGET_MS = 50.0
TARGET_RATIO = 20.0

# Upstream walk, bipartite, deduplicated by UNION on the whole row (kind, id, depth):
# a version reaches its producing run one step further (depth + 1), a run reaches
# its inputs at its own depth, exactly the depth rule of SqlStore.lineage.
BASELINE_CTE = """
WITH RECURSIVE walk(kind, id, depth) AS (
    SELECT 0, :start, 0
    UNION
    SELECT 1, io.run_pk, w.depth + 1 FROM walk w
      JOIN run_io io ON io.version_id = w.id AND io.direction = 1
     WHERE w.kind = 0 AND w.depth < :depth
    UNION
    SELECT 0, io.version_id, w.depth FROM walk w
      JOIN run_io io ON io.run_pk = w.id AND io.direction = 0
     WHERE w.kind = 1
)
SELECT DISTINCT kind, id FROM walk
"""


def _insert(db: sqlite3.Connection, table: object, columns: list[str], rows: object) -> None:
    name = table.name  # type: ignore[attr-defined]
    known = set(table.c.keys())  # type: ignore[attr-defined]
    assert set(columns) <= known, set(columns) - known
    marks = ", ".join("?" * len(columns))
    quoted = ", ".join(f'"{c}"' for c in columns)
    db.executemany(f"INSERT INTO {name} ({quoted}) VALUES ({marks})", rows)  # type: ignore[arg-type]


def run_uuid(i: int) -> str:
    return f"{i:08x}-0000-4000-8000-{i:012x}"


def build(path: Path, n: int, inputs: int, window: int, seed: int = 2) -> None:
    """Create the store with the real schema, then bulk-load the graph."""
    tmp = path.with_suffix(".building")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    SqlStore(f"sqlite:///{tmp}", create=True).close()
    t0 = time.perf_counter()
    rng = random.Random(seed)
    n_datasets = max(1, min(5000, n // 100))
    n_jobs = max(1, min(1000, n // 500))
    db = sqlite3.connect(tmp, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("BEGIN")
    _insert(db, t.namespaces, ["id", "name", "created_at"], [(1, "default", CREATED)])
    _insert(
        db,
        t.datasets,
        ["id", "namespace_id", "name", "kind", "created_at"],
        ((d, 1, f"bench/ds{d:05d}", "dataset", CREATED) for d in range(1, n_datasets + 1)),
    )
    _insert(
        db,
        t.jobs,
        ["id", "namespace_id", "name", "type", "created_at"],
        ((j, 1, f"job{j:04d}", "transform", CREATED) for j in range(1, n_jobs + 1)),
    )
    # Run i (pk i) produces version i (id i); versions of a dataset are numbered in order.
    _insert(
        db,
        t.runs,
        ["pk", "run_id", "job_id", "state", "state_time", "started_at", "ended_at", "params"],
        ((i, run_uuid(i), (i - 1) % n_jobs + 1, "COMPLETE", CREATED, CREATED, CREATED, "{}") for i in range(1, n + 1)),
    )
    _insert(
        db,
        t.versions,
        ["id", "dataset_id", "number", "version_key", "digest", "size", "created_at", "run_pk", "properties"],
        (
            (
                i,
                (i - 1) % n_datasets + 1,
                (i - 1) // n_datasets + 1,
                f"sha256:{i:064x}",
                f"sha256:{i:064x}",
                i,
                CREATED,
                i,
                "{}",
            )
            for i in range(1, n + 1)
        ),
    )

    def io_rows() -> object:
        for i in range(1, n + 1):
            lo = max(1, i - window)
            pool = i - lo  # versions lo .. i-1
            picks = sorted(rng.sample(range(lo, i), min(inputs, pool))) if pool else []
            for v in picks:
                yield (i, t.INPUT, v)
            yield (i, t.OUTPUT, i)

    _insert(db, t.run_io, ["run_pk", "direction", "version_id"], io_rows())
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    os.replace(tmp, path)
    for p in (Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    note(f"built {path.name} in {time.perf_counter() - t0:.1f} s")


def baseline(store: SqlStore, start: int, depth: int) -> set[tuple[int, int]]:
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(BASELINE_CTE.replace(":start", "?", 1).replace(":depth", "?", 1), (start, depth))
        return {(int(k), int(i)) for k, i in cur.fetchall()}
    finally:
        raw.close()


def walk_only(store: SqlStore, start: int, depth: int) -> set[tuple[int, int]]:
    """The traversal alone, without fetching node data or mapping edges: the part the CTE does."""
    with store.engine.connect() as conn:
        reader = sql_lineage._Reader.of(conn)
        try:
            # as the columnar path walks, within the graphs' limit (DATATRAIL_LINEAGE_MAX_NODES)
            found = sql_lineage._walk(reader, [start], True, depth, edges=False, room=graph_limit())
        finally:
            reader.close()
    return {(0, v) for v in found.versions} | {(1, r) for r in found.runs}


def node_ids(store: SqlStore, pairs: set[tuple[int, int]]) -> set[str]:
    """The store's node ids (version:ns:name@n, run:uuid) of (kind, id) pairs; untimed."""
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        out: set[str] = set()
        versions = [i for k, i in pairs if k == 0]
        runs = [i for k, i in pairs if k == 1]
        for chunk in range(0, len(versions), 900):
            ids = versions[chunk : chunk + 900]
            cur.execute(
                "SELECT n.name, d.name, v.number FROM versions v JOIN datasets d ON d.id = v.dataset_id"
                f" JOIN namespaces n ON n.id = d.namespace_id WHERE v.id IN ({','.join('?' * len(ids))})",
                ids,
            )
            out.update(f"version:{ns}:{name}@{num}" for ns, name, num in cur.fetchall())
        for chunk in range(0, len(runs), 900):
            ids = runs[chunk : chunk + 900]
            cur.execute(f"SELECT run_id FROM runs WHERE pk IN ({','.join('?' * len(ids))})", ids)
            out.update(f"run:{r}" for (r,) in cur.fetchall())
        return out
    finally:
        raw.close()


def main() -> None:
    q = quick()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--versions", type=int, default=2000 if q else 500_000, help="versions (and as many runs)")
    ap.add_argument("--inputs", type=int, default=3, help="inputs per run")
    ap.add_argument(
        "--window", type=int, default=50 if q else 1000, help="inputs come from this many previous versions"
    )
    ap.add_argument("--depth", type=int, default=10 if q else 50)
    ap.add_argument("--repeats", type=int, default=2 if q else 7)
    ap.add_argument("--baseline-repeats", type=int, default=1 if q else 3)
    ap.add_argument("--db", type=Path, default=None, help="where to keep the built store (default: .bench/)")
    args = ap.parse_args()

    n = args.versions
    path = args.db or BENCH_DIR / f"lineage-v{n}-i{args.inputs}-w{args.window}-r{HEAD}-f{BUILD_FORMAT}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        build(path, n, args.inputs, args.window)
    store = SqlStore(f"sqlite:///{path}")
    try:
        with store.engine.connect() as conn:
            edges = conn.exec_driver_sql("SELECT count(*) FROM run_io").scalar()
        start = store.find_version(
            "default", f"bench/ds{(n - 1) % max(1, min(5000, n // 100)) + 1:05d}", f"sha256:{n:064x}"
        )
        assert start is not None and start.id == n, "the built store does not have the expected last version"
        note(f"graph: {n:,} versions + {n:,} runs, {edges:,} edges; upstream depth {args.depth} from {start.ref}")

        result = store.lineage([start], "upstream", args.depth)  # warm-up, and the node set to check
        base_pairs = baseline(store, n, args.depth)
        base_ids = node_ids(store, base_pairs)
        if base_ids != set(result.nodes):
            only_ours, only_base = set(result.nodes) - base_ids, base_ids - set(result.nodes)
            raise SystemExit(
                f"node sets differ: {len(only_ours)} only in datatrail, {len(only_base)} only in the CTE"
                f" (e.g. {sorted(only_ours)[:3]} / {sorted(only_base)[:3]})"
            )
        versions = sum(1 for node in result.nodes.values() if node.type == "version")
        note(
            f"both reach {len(result.nodes):,} nodes ({versions:,} versions, {len(result.nodes) - versions:,} runs),"
            f" datatrail also returns {len(result.edges):,} edges and every node's data"
        )

        ours = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            store.lineage([start], "upstream", args.depth)
            ours.append(time.perf_counter() - t0)
        if walk_only(store, n, args.depth) != base_pairs:
            raise SystemExit("the traversal alone reaches other nodes than the CTE")
        walks = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            walk_only(store, n, args.depth)
            walks.append(time.perf_counter() - t0)
        theirs = []
        for _ in range(args.baseline_repeats):
            t0 = time.perf_counter()
            baseline(store, n, args.depth)
            theirs.append(time.perf_counter() - t0)
    finally:
        store.close()

    ours_s, theirs_s, walk_s = median(ours), median(theirs), median(walks)
    note(f"median of {len(ours)} (datatrail) and {len(theirs)} (CTE) warm runs; datatrail min {fmt_seconds(min(ours))}")
    note(
        f"breakdown: the level-by-level walk alone (node ids and depths, what the CTE returns) takes"
        f" {fmt_seconds(walk_s)}, {theirs_s / walk_s:.1f}x faster than the CTE; the other"
        f" {fmt_seconds(max(0.0, ours_s - walk_s))} fetch the nodes' rows and build the result's Python objects"
    )
    report(
        f"lineage upstream depth {args.depth}, {2 * n:,} nodes",
        fmt_seconds(ours_s),
        "recursive CTE",
        fmt_seconds(theirs_s),
        theirs_s / ours_s,
        TARGET_RATIO,
    )
    ok = ours_s * 1000 < TARGET_MS
    print(
        f"lineage upstream depth {args.depth}, {2 * n:,} nodes: datatrail {ours_s * 1000:.1f} ms"
        f" (target < {TARGET_MS:g} ms) {verdict(ok)}",
        flush=True,
    )


if __name__ == "__main__":
    main()
