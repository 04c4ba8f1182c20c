"""Marquez's connected graph a step at a time, through a store's ``lineage`` walks (``Reads.connected``).

For the stores that cannot walk it at once: the HTTP store (each step is the server's walk) and the
guard of a caller who may not see everything (each step is redacted, and a hidden version is not
walked on from). The SQL stores walk it in the database (``store/sql/lineage.py``, ``_connected``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from datatrail.core.errors import GraphTooLarge
from datatrail.core.limits import graph_limit
from datatrail.core.results import LineageNode, LineageResult

if TYPE_CHECKING:
    from datatrail.core.model import Version
    from datatrail.store.base import Reads


def connected_steps(store: Reads, start: Sequence[Version], depth: int, as_of: datetime | None = None) -> LineageResult:
    """:meth:`Reads.connected` from ``store.lineage`` of depth 1 both ways per step, resolving each
    step's new versions (``versions_by_number``) to start the next; the limit checked after each step."""
    frontier = list(start)
    seen = {(v.namespace, v.name, v.number) for v in frontier}
    nodes: dict[str, LineageNode] = {}
    edges: set[tuple[str, str]] = set()
    limit = graph_limit()
    for step in range(max(depth, 1)):
        if not frontier:
            break
        try:  # each step's walk is bounded on its own, and the graph after each step
            result = store.lineage(frontier, "both", 1 if depth else 0, as_of)
        except GraphTooLarge as exc:  # the graph of ``step`` steps fitted (checked below)
            raise GraphTooLarge.at(limit, depth, step or exc.fits) from None
        for node_id, node in result.nodes.items():
            nodes.setdefault(node_id, LineageNode(node.id, node.type, node.depth + step, node.data))
        if len(nodes) > limit:
            raise GraphTooLarge.at(limit, depth, step)
        edges.update(result.edges)
        reached: list[tuple[str, str, int]] = []
        for node in result.nodes.values():
            d = node.data
            if node.type != "version" or d.get("redacted"):
                continue
            key = (d["namespace"], d["name"], int(d["version"]))
            if key in seen:
                continue
            seen.add(key)
            reached.append(key)
        frontier = store.versions_by_number(reached) if reached else []  # resolve of each, at once
    return LineageResult(nodes, tuple(sorted(edges)))
