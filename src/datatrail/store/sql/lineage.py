"""Lineage traversal inside the database, level by level, never revisiting a node.

The visited set lives in a temporary table; each level is one
``INSERT … SELECT`` joining the previous level with ``run_io``, so the work is
proportional to the nodes reached, not to the paths leading to them (a
recursive CTE keyed on (node, depth) revisits a node once per depth it is
reached at).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text

from datatrail.store.base import Direction, LineageNode, LineageResult

VERSION, RUN = 0, 1
_INPUT, _OUTPUT = 0, 1

_CREATE = {
    "sqlite": [
        "CREATE TEMP TABLE IF NOT EXISTS dt_visit (kind INTEGER, id INTEGER, depth INTEGER,"
        " PRIMARY KEY (kind, id)) WITHOUT ROWID",
        "CREATE INDEX IF NOT EXISTS temp.dt_visit_depth ON dt_visit (depth, kind)",
    ],
    "postgresql": [
        "CREATE TEMP TABLE IF NOT EXISTS dt_visit (kind SMALLINT, id BIGINT, depth INTEGER, PRIMARY KEY (kind, id))",
        "CREATE INDEX IF NOT EXISTS dt_visit_depth ON dt_visit (depth, kind)",
    ],
}

# One step upstream: a version's producing run (io direction OUTPUT), then that
# run's inputs (direction INPUT). Downstream swaps the two directions.
_STEP = (
    "INSERT INTO dt_visit (kind, id, depth) SELECT :to_kind, io.{to_col}, :depth"
    " FROM dt_visit f JOIN run_io io ON io.{from_col} = f.id AND io.direction = :dir"
    " WHERE f.kind = :from_kind AND f.depth = :prev ON CONFLICT DO NOTHING"
)


def traverse(conn: Connection, start_ids: Sequence[int], direction: Direction, depth: int) -> LineageResult:
    """Versions and runs within ``depth`` steps of ``start_ids``, with their edges."""
    for stmt in _CREATE[conn.dialect.name]:
        conn.execute(text(stmt))
    found: dict[tuple[int, int], int] = {}
    directions = ["upstream", "downstream"] if direction == "both" else [direction]
    for d in directions:
        conn.execute(text("DELETE FROM dt_visit"))
        conn.execute(
            text("INSERT INTO dt_visit (kind, id, depth) VALUES (:k, :i, 0)"),
            [{"k": VERSION, "i": i} for i in start_ids],
        )
        _walk(conn, d, depth)
        for kind, node, dep in conn.execute(text("SELECT kind, id, depth FROM dt_visit")):
            key = (kind, node)
            if key not in found or dep < found[key]:
                found[key] = dep
    conn.execute(text("DELETE FROM dt_visit"))
    conn.execute(
        text("INSERT INTO dt_visit (kind, id, depth) VALUES (:k, :i, :d)"),
        [{"k": k, "i": i, "d": dep} for (k, i), dep in found.items()],
    )
    nodes = _load_nodes(conn)
    edges = _load_edges(conn)
    conn.execute(text("DELETE FROM dt_visit"))
    conn.commit()
    return LineageResult(nodes, edges)


def _walk(conn: Connection, direction: str, depth: int) -> None:
    up = direction == "upstream"
    to_run = text(_STEP.format(to_col="run_pk", from_col="version_id"))
    to_version = text(_STEP.format(to_col="version_id", from_col="run_pk"))
    for level in range(1, depth + 1):
        # A run sits at the level of the step it starts.
        r = conn.execute(
            to_run,
            {"to_kind": RUN, "depth": level, "dir": _OUTPUT if up else _INPUT, "from_kind": VERSION, "prev": level - 1},
        )
        if r.rowcount == 0:
            break
        conn.execute(
            to_version,
            {"to_kind": VERSION, "depth": level, "dir": _INPUT if up else _OUTPUT, "from_kind": RUN, "prev": level},
        )


def _load_nodes(conn: Connection) -> dict[str, LineageNode]:
    nodes: dict[str, LineageNode] = {}
    self_ids: dict[int, str] = {}
    rows: Any = conn.execute(
        text(
            "SELECT f.id, f.depth, v.number, v.digest, v.size, v.created_at, d.name, d.kind, n.name"
            " FROM dt_visit f JOIN versions v ON v.id = f.id JOIN datasets d ON d.id = v.dataset_id"
            " JOIN namespaces n ON n.id = d.namespace_id WHERE f.kind = 0"
        )
    )
    for vid, dep, number, digest, size, created_at, name, kind, ns in rows:
        nid = f"version:{ns}:{name}@{number}"
        self_ids[vid] = nid
        nodes[nid] = LineageNode(
            nid,
            "version",
            dep,
            {
                "namespace": ns,
                "name": name,
                "version": number,
                "kind": kind,
                "digest": digest,
                "size": size,
                "created_at": str(created_at),
            },
        )
    rows = conn.execute(
        text(
            "SELECT f.id, f.depth, r.run_id, r.state, r.started_at, r.ended_at, j.name, n.name"
            " FROM dt_visit f JOIN runs r ON r.pk = f.id JOIN jobs j ON j.id = r.job_id"
            " JOIN namespaces n ON n.id = j.namespace_id WHERE f.kind = 1"
        )
    )
    for _pk, dep, run_id, state, started, ended, job, ns in rows:
        nid = f"run:{run_id}"
        nodes[nid] = LineageNode(
            nid,
            "run",
            dep,
            {
                "id": run_id,
                "namespace": ns,
                "job": job,
                "state": state,
                "started_at": str(started),
                "ended_at": str(ended) if ended else None,
            },
        )
    return nodes


def _load_edges(conn: Connection) -> tuple[tuple[str, str], ...]:
    rows: Any = conn.execute(
        text(
            "SELECT r.run_id, io.direction, n.name, d.name, v.number FROM run_io io"
            " JOIN dt_visit fr ON fr.kind = 1 AND fr.id = io.run_pk"
            " JOIN dt_visit fv ON fv.kind = 0 AND fv.id = io.version_id"
            " JOIN runs r ON r.pk = io.run_pk JOIN versions v ON v.id = io.version_id"
            " JOIN datasets d ON d.id = v.dataset_id JOIN namespaces n ON n.id = d.namespace_id"
        )
    )
    edges = []
    for run_id, direction, ns, name, number in rows:
        run, version = f"run:{run_id}", f"version:{ns}:{name}@{number}"
        edges.append((version, run) if direction == _INPUT else (run, version))
    edges.sort()
    return tuple(edges)
