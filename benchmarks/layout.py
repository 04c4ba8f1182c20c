"""Layout: a layered (Sugiyama) layout of a 1,000-node lineage graph, in pure Python.

The graph is shaped like real lineage: N versions and N runs, run i writing
version i and reading ``--inputs`` distinct versions drawn from the
``--window`` versions before it (run 0 reads nothing). With the defaults (500
of each, 3 inputs, window 50) that is 1,000 nodes and 1,997 edges.

Contender: ``datatrail.viz.layout_graph(graph, collapse_over=0)`` (every node
laid out, none folded into a group), best of ``--repeats``; the default call
(fan-outs collapsed) is timed too. Targets: under 2 s (the issue's budget),
printed as the ratio budget / time; and against grandalf's SugiyamaLayout (a
pure-Python Sugiyama implementation: ``init_all()`` then ``draw(3)``, same
boxes), when grandalf is installed (``benchmarks/run`` installs it into
.bench/venv; it is not a dependency of datatrail).

    python benchmarks/layout.py [--versions N] [--inputs K] [--window W] [--repeats R]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fmt_seconds, note, quick, report

from datatrail.core.results import LineageNode
from datatrail.lineage import Graph
from datatrail.viz.layout import layout_graph

BUDGET_S = 2.0


def make_graph(n: int, inputs: int, window: int, seed: int = 7) -> Graph:
    rnd = random.Random(seed)
    nodes: dict[str, LineageNode] = {}
    edges: list[tuple[str, str]] = []
    for i in range(n):
        vid = f"version:default:data/part-{i}@1"
        rid = f"run:{i:08x}-0000-4000-8000-{i:012x}"
        kind = "model" if i % 25 == 24 else "dataset"
        nodes[vid] = LineageNode(
            vid,
            "version",
            0,
            {
                "namespace": "default",
                "name": f"data/part-{i}",
                "version": 1,
                "kind": kind,
                "digest": f"sha256:{i:064x}",
            },
        )
        nodes[rid] = LineageNode(
            rid, "run", 0, {"id": rid[4:], "namespace": "default", "job": f"job{i % 13}", "state": "COMPLETE"}
        )
        lo = max(0, i - window)
        for j in rnd.sample(range(lo, i), min(inputs, i - lo)):
            edges.append((f"version:default:data/part-{j}@1", rid))
        edges.append((rid, vid))
    return Graph(f"version:default:data/part-{n - 1}@1", "upstream", n, nodes, tuple(edges))


def best_of(repeats: int, fn: object) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times)


def grandalf_layout(graph: Graph, widths: dict[str, float]) -> None:
    from grandalf.graphs import Edge, Vertex
    from grandalf.graphs import Graph as GGraph
    from grandalf.layouts import SugiyamaLayout

    class View:
        def __init__(self, w: float, h: float) -> None:
            self.w, self.h = w, h

    vertices = {nid: Vertex(nid) for nid in graph.nodes}
    for nid, v in vertices.items():
        v.view = View(widths[nid], 34.0)
    g = GGraph(list(vertices.values()), [Edge(vertices[s], vertices[t]) for s, t in graph.edges])
    for component in g.C:
        layout = SugiyamaLayout(component)
        layout.init_all()
        layout.draw(3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--versions", type=int, default=50 if quick() else 500)
    parser.add_argument("--inputs", type=int, default=3)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=1 if quick() else 5)
    args = parser.parse_args()

    graph = make_graph(args.versions, args.inputs, args.window)
    n = len(graph.nodes)
    lay = layout_graph(graph, collapse_over=0)
    note(
        f"graph: {n:,} nodes, {len(graph.edges):,} edges -> {lay.layers} layers, "
        f"{sum(len(r.points) - 2 for r in lay.routes) // 2:,} dummy nodes, {lay.width:,.0f} x {lay.height:,.0f} px"
    )
    ours = best_of(args.repeats, lambda: layout_graph(graph, collapse_over=0))
    collapsed = best_of(args.repeats, lambda: layout_graph(graph))
    note(f"default call (fan-outs of more than 12 collapsed): {fmt_seconds(collapsed)}")
    ok = report(f"layout {n:,} nodes", fmt_seconds(ours), "budget", fmt_seconds(BUDGET_S), BUDGET_S / ours, 1.0)
    try:
        import grandalf  # noqa: F401
    except ImportError:
        note("grandalf is not installed in this environment; skipping the grandalf comparison")
        return 0 if ok or quick() else 1
    widths = {nid: lay.boxes[nid].w for nid in graph.nodes}
    theirs = best_of(1, lambda: grandalf_layout(graph, widths))
    report(f"layout {n:,} nodes vs grandalf", fmt_seconds(ours), "grandalf", fmt_seconds(theirs), theirs / ours, 1.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
