"""Column-level lineage: a walk over ``column_edges``, level by level.

A node is one column of one version; an edge goes from an input column to the
output column computed from it (the data's direction), with the producer's
transformations. The output column ``*`` stands for the whole output (columns
used to filter, join or group it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from datatrail.core.errors import GraphTooLarge
from datatrail.core.limits import graph_limit
from datatrail.core.results import ColumnLineageResult, Direction
from datatrail.store.sql import tables as t

ColumnKey = tuple[int, str]


def column_traverse(
    conn: Connection,
    start: Sequence[tuple[int, str | None]],
    direction: Direction,
    depth: int,
) -> ColumnLineageResult:
    """Columns within ``depth`` steps of the start (version id, column or None for every column);
    GraphTooLarge as soon as a level takes them past ``graph_limit()``."""
    e = t.column_edges.c
    limit = graph_limit()
    whole = [vid for vid, col in start if col is None]
    reached: dict[ColumnKey, int] = {(vid, col): 0 for vid, col in start if col is not None}
    if whole:
        for query in (
            select(e.output_version_id, e.output_column).where(e.output_version_id.in_(whole)),
            select(e.input_version_id, e.input_column).where(e.input_version_id.in_(whole)),
        ):
            for vid, col in conn.execute(query):
                reached.setdefault((int(vid), str(col)), 0)
    edges: dict[tuple[ColumnKey, ColumnKey], Any] = {}
    ways = ("upstream", "downstream") if direction == "both" else (direction,)
    for way in ways:
        frontier = [k for k, d in reached.items() if d == 0]
        for level in range(1, depth + 1):
            if len(reached) > limit:  # the columns within level - 1 steps (both ways: the way before too)
                raise GraphTooLarge.at(limit, depth, level - 2)
            if not frontier:
                break
            near_v, near_c, far_v, far_c = (
                (e.output_version_id, e.output_column, e.input_version_id, e.input_column)
                if way == "upstream"
                else (e.input_version_id, e.input_column, e.output_version_id, e.output_column)
            )
            wanted = set(frontier)
            rows = conn.execute(
                select(near_v, near_c, far_v, far_c, e.transformations).where(
                    near_v.in_(sorted({v for v, _ in frontier}))
                )
            ).all()
            nxt: list[ColumnKey] = []
            for nv, nc, fv, fc, transformations in rows:
                here, there = (int(nv), str(nc)), (int(fv), str(fc))
                if here not in wanted:
                    continue
                edge = (there, here) if way == "upstream" else (here, there)
                edges[edge] = transformations
                if there not in reached:
                    reached[there] = level
                    nxt.append(there)
            frontier = nxt
    if len(reached) > limit:
        raise GraphTooLarge.at(limit, depth, depth - 1)
    names = _version_names(conn, sorted({v for v, _ in reached}))
    nodes = {}
    for (vid, col), dep in reached.items():
        ns, name, number = names[vid]
        nodes[f"column:{ns}:{name}@{number}#{col}"] = {
            "namespace": ns,
            "name": name,
            "version": number,
            "column": col,
            "depth": dep,
        }

    def nid(key: ColumnKey) -> str:
        ns, name, number = names[key[0]]
        return f"column:{ns}:{name}@{number}#{key[1]}"

    out = tuple(sorted((nid(a), nid(b), tr) for (a, b), tr in edges.items()))
    return ColumnLineageResult(nodes, out)


def _version_names(conn: Connection, ids: list[int]) -> dict[int, tuple[str, str, int]]:
    v, d, n = t.versions.c, t.datasets.c, t.namespaces.c
    if not ids:
        return {}
    rows = conn.execute(
        select(v.id, n.name, d.name, v.number)
        .join(t.datasets, d.id == v.dataset_id)
        .join(t.namespaces, n.id == d.namespace_id)
        .where(v.id.in_(ids))
    ).all()
    return {int(r[0]): (r[1], r[2], int(r[3])) for r in rows}
