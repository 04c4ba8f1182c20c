"""A layered (Sugiyama) layout of a lineage graph, left to right, in pure Python.

The steps, per connected component (components are stacked top to bottom):

1. cycles are broken by reversing the back edges of a depth-first search, so a
   graph that is not a DAG still gets a layout (its reversed edges run right to
   left) instead of a hang;
2. layers by longest path from the sources, then each node that has more edges
   out than in moves right next to its nearest child (shorter edges);
3. edges spanning several layers get a dummy node in each layer between;
4. crossings are reduced by barycenter sweeps, down and up, keeping the best
   order seen (crossings counted exactly, in O(E log V) per pair of layers);
5. vertical positions: each node pulled towards the mean of its neighbours,
   layer by layer, then the layer packed in order with its minimum gaps (a
   least-squares fit, by pool-adjacent-violators), a few rounds.

>>> from datatrail.lineage import Graph
>>> from datatrail.core.results import LineageNode
>>> run = LineageNode("run:1", "run", 1, {"id": "1", "job": "clean", "state": "COMPLETE"})
>>> raw = LineageNode("version:default:raw@1", "version", 1, {"namespace": "default", "name": "raw", "version": 1})
>>> g = Graph(raw.id, "downstream", 1, {raw.id: raw, run.id: run}, ((raw.id, run.id),))
>>> lay = layout_graph(g)
>>> lay.boxes[raw.id].x + lay.boxes[raw.id].w < lay.boxes[run.id].x
True
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from datatrail.viz.groups import Collapsed, Group, collapse
from datatrail.viz.nodes import Kind, Mark, kind_of, marks_of

if TYPE_CHECKING:
    from datatrail.lineage import Graph

__all__ = ["Box", "Group", "Layout", "Route", "layout_graph"]

NODE_H = 34.0
ROW_GAP = 14.0
DUMMY_GAP = 8.0
LAYER_GAP = 64.0
COMPONENT_GAP = 36.0
MARGIN = 16.0
CHAR_W = 7.0
PAD_X = 14.0
MIN_W = 72.0
MAX_W = 280.0
MAX_CHARS = int((MAX_W - 2 * PAD_X) / CHAR_W)


@dataclass(frozen=True)
class Box:
    """A node's rectangle (top-left ``x``, ``y``), its layer, and the text drawn in it."""

    id: str
    kind: Kind
    label: str
    text: str  # the label, shortened to fit the box
    marks: tuple[Mark, ...]
    layer: int
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass(frozen=True)
class Route:
    """An edge drawn as a polyline from its source box's right side to its target's left side.

    ``reversed`` edges closed a cycle: they were laid out backwards, so their
    points run right to left.
    """

    source: str
    target: str
    points: tuple[tuple[float, float], ...]
    reversed: bool = False


@dataclass(frozen=True)
class Layout:
    """Where everything goes: boxes by node id (groups included), edge routes, and the size."""

    boxes: dict[str, Box]
    routes: tuple[Route, ...]
    groups: dict[str, Group]
    owner: dict[str, str]  # a collapsed node's id -> its group's id
    width: float
    height: float
    layers: int
    columns: tuple[tuple[float, float], ...] = ()  # each layer's left x and width


def layout_graph(
    graph: Graph,
    *,
    collapse_over: int = 12,
    expanded: Collection[str] = (),
    sweeps: int = 12,
    label: Callable[[str], str] | None = None,
) -> Layout:
    """Lay ``graph`` out left to right; more than ``collapse_over`` siblings become one group box.

    ``expanded`` names groups (``group:out:<id>`` or ``group:in:<id>``) to leave
    open; ``sweeps`` = 0 keeps the graph's own node order within each layer; ``label(node_id)``
    gives the text of a box (default: ``graph.label``).
    """
    folded = _collapse(graph, collapse_over, expanded)
    labels: dict[str, str] = {}
    for nid in folded.nodes:
        group = folded.groups.get(nid)
        labels[nid] = _group_label(group) if group else (label or graph.label)(nid)
    widths = {nid: _width(label) for nid, label in labels.items()}
    placed = _place(list(folded.nodes), list(folded.edges), widths, sweeps)
    boxes: dict[str, Box] = {}
    for nid, (layer, x, y) in placed.positions.items():
        group = folded.groups.get(nid)
        if group is not None:
            kind: Kind = "group"
            marks = _group_marks(graph, group)
        else:
            node = graph.nodes[nid]
            kind, marks = kind_of(node), marks_of(node)
        w = widths[nid]
        boxes[nid] = Box(nid, kind, labels[nid], _shorten(labels[nid]), marks, layer, x, y, w, NODE_H)
    return Layout(
        boxes, placed.routes, folded.groups, folded.owner, placed.width, placed.height, placed.layers, placed.columns
    )


def _collapse(graph: Graph, over: int, expanded: Collection[str]) -> Collapsed:
    """Fan-outs folded into groups, again on the folded graph (the outputs of 30 grouped runs, say)."""
    types: dict[str, str] = {nid: n.type for nid, n in graph.nodes.items()}
    folded = collapse(list(graph.nodes), graph.edges, types, over=over, keep={graph.root}, expanded=expanded)
    for _ in range(2):
        if not folded.groups:
            break
        keep = {graph.root, *folded.groups}
        again = collapse(folded.nodes, folded.edges, types, over=over, keep=keep, expanded=expanded)
        if not again.groups:
            break
        folded = Collapsed(again.nodes, again.edges, {**folded.groups, **again.groups}, {**folded.owner, **again.owner})
    return folded


def _group_label(group: Group) -> str:
    noun = "runs" if group.member_type == "run" else "versions"
    return f"{len(group.members)} {noun} (+)"


def _group_marks(graph: Graph, group: Group) -> tuple[Mark, ...]:
    found = {m for member in group.members for m in marks_of(graph.nodes[member])}
    return tuple(m for m in ("failed", "checks", "drift") if m in found)


def _width(label: str) -> float:
    return max(MIN_W, min(MAX_W, len(label) * CHAR_W + 2 * PAD_X))


def _shorten(label: str) -> str:
    return label if len(label) <= MAX_CHARS else label[: MAX_CHARS - 1] + "…"


# ---------------------------------------------------------------- the layout proper


@dataclass(frozen=True)
class _Placed:
    positions: dict[str, tuple[int, float, float]]  # id -> (layer, x, y)
    routes: tuple[Route, ...]
    width: float
    height: float
    layers: int
    columns: tuple[tuple[float, float], ...]


def _place(nodes: list[str], edges: list[tuple[str, str]], widths: dict[str, float], sweeps: int) -> _Placed:
    index = {n: i for i, n in enumerate(nodes)}
    pairs = [(index[s], index[t]) for s, t in edges]
    comps = _components(len(nodes), pairs)
    # Each component: its layers and, per layer, the order and y of its items.
    laid = [_lay_component(members, pairs, sweeps) for members in comps]
    n_layers = max((c.n_layers for c in laid), default=0)
    col_w = [MIN_W] * n_layers
    for c in laid:
        for v, layer in c.layer_of.items():
            col_w[layer] = max(col_w[layer], widths[nodes[v]])
    col_x = []
    x = MARGIN
    for w in col_w:
        col_x.append(x)
        x += w + LAYER_GAP
    width = (x - LAYER_GAP + MARGIN) if n_layers else 2 * MARGIN
    positions: dict[str, tuple[int, float, float]] = {}
    routes: list[Route] = []
    top = MARGIN
    for c in laid:
        for v, layer in c.layer_of.items():
            w = widths[nodes[v]]
            positions[nodes[v]] = (layer, col_x[layer] + (col_w[layer] - w) / 2, top + c.y[v] - NODE_H / 2)
        for s, t, chain, rev in c.chains:
            s_layer, t_layer = c.layer_of[s], c.layer_of[t]
            ws, wt = widths[nodes[s]], widths[nodes[t]]
            pts = [(col_x[s_layer] + (col_w[s_layer] + ws) / 2, top + c.y[s])]
            for k, dy in enumerate(chain, start=s_layer + 1):
                pts.append((col_x[k], top + dy))
                pts.append((col_x[k] + col_w[k], top + dy))
            pts.append((col_x[t_layer] + (col_w[t_layer] - wt) / 2, top + c.y[t]))
            if rev:
                routes.append(Route(nodes[t], nodes[s], tuple(reversed(pts)), True))
            else:
                routes.append(Route(nodes[s], nodes[t], tuple(pts)))
        top += c.height + COMPONENT_GAP
    height = (top - COMPONENT_GAP + MARGIN) if laid else 2 * MARGIN
    columns = tuple(zip(col_x, col_w, strict=True))
    return _Placed(positions, tuple(routes), width, height, n_layers, columns)


def _components(n: int, pairs: list[tuple[int, int]]) -> list[list[int]]:
    """Weakly connected components, biggest first, each in node order."""
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for s, t in pairs:
        a, b = find(s), find(t)
        if a != b:
            parent[max(a, b)] = min(a, b)
    comps: dict[int, list[int]] = {}
    for v in range(n):
        comps.setdefault(find(v), []).append(v)
    return sorted(comps.values(), key=lambda c: (-len(c), c[0]))


@dataclass
class _Component:
    layer_of: dict[int, int]  # node -> layer
    n_layers: int
    y: dict[int, float]  # node -> centre y
    chains: list[tuple[int, int, list[float], bool]]  # (source, target, y of each dummy, reversed)
    height: float


def _lay_component(members: list[int], all_pairs: list[tuple[int, int]], sweeps: int) -> _Component:
    # Local ids 0..m-1 for the members, m… for dummies, so that per-node data lives in lists.
    m = len(members)
    local = {v: i for i, v in enumerate(members)}
    pairs = [(local[s], local[t]) for s, t in all_pairs if s in local]
    succ: list[list[int]] = [[] for _ in range(m)]
    for s, t in pairs:
        succ[s].append(t)
    back = _back_edges(m, succ)
    dag = [((t, s) if (s, t) in back else (s, t)) for s, t in pairs]
    layer = _layers(m, dag)
    n_layers = max(layer) + 1
    up: list[list[int]] = [[] for _ in range(m)]
    down: list[list[int]] = [[] for _ in range(m)]
    rows: list[list[int]] = [[] for _ in range(n_layers)]
    for v in range(m):
        rows[layer[v]].append(v)
    chains: list[tuple[int, int, list[int], bool]] = []
    for (s, t), original in zip(dag, pairs, strict=True):
        chain = []
        prev = s
        for k in range(layer[s] + 1, layer[t]):
            d = len(up)  # a dummy node on layer k
            up.append([prev])
            down.append([])
            down[prev].append(d)
            rows[k].append(d)
            chain.append(d)
            prev = d
        down[prev].append(t)
        up[t].append(prev)
        chains.append((s, t, chain, original != (s, t)))
    dummy = [False] * m + [True] * (len(up) - m)
    if sweeps > 0:
        rows = _order(rows, up, down, sweeps)
    y = _coordinates(rows, up, down, dummy)
    lo = min(y[v] - (0 if dummy[v] else NODE_H / 2) for row in rows for v in row)
    hi = max(y[v] + (0 if dummy[v] else NODE_H / 2) for row in rows for v in row)
    return _Component(
        {members[v]: layer[v] for v in range(m)},
        n_layers,
        {members[v]: y[v] - lo for v in range(m)},
        [(members[s], members[t], [y[d] - lo for d in chain], rev) for s, t, chain, rev in chains],
        hi - lo,
    )


def _back_edges(m: int, succ: list[list[int]]) -> set[tuple[int, int]]:
    """Edges that close a cycle in an iterative depth-first search, sources first."""
    has_pred = [False] * m
    for kids in succ:
        for t in kids:
            has_pred[t] = True
    starts = [v for v in range(m) if not has_pred[v]] + [v for v in range(m) if has_pred[v]]
    state = [0] * m  # 1 on the stack, 2 done
    back: set[tuple[int, int]] = set()
    for start in starts:
        if state[start]:
            continue
        state[start] = 1
        stack = [(start, iter(succ[start]))]
        while stack:
            v, it = stack[-1]
            for w in it:
                if state[w] == 0:
                    state[w] = 1
                    stack.append((w, iter(succ[w])))
                    break
                if state[w] == 1:
                    back.add((v, w))
            else:
                state[v] = 2
                stack.pop()
    return back


def _layers(m: int, dag: list[tuple[int, int]]) -> list[int]:
    """Longest path from the sources, then nodes with more children than parents pulled right."""
    succ: list[list[int]] = [[] for _ in range(m)]
    npred = [0] * m
    for s, t in dag:
        succ[s].append(t)
        npred[t] += 1
    remaining = list(npred)
    order = [v for v in range(m) if remaining[v] == 0]
    layer = [0] * m
    i = 0
    while i < len(order):
        v = order[i]
        i += 1
        for w in succ[v]:
            if layer[w] < layer[v] + 1:
                layer[w] = layer[v] + 1
            remaining[w] -= 1
            if remaining[w] == 0:
                order.append(w)
    for v in reversed(order):
        kids = succ[v]
        if kids and len(kids) > npred[v]:
            layer[v] = max(layer[v], min(layer[w] for w in kids) - 1)
    low = min(layer)
    return [k - low for k in layer]


def _order(rows: list[list[int]], up: list[list[int]], down: list[list[int]], sweeps: int) -> list[list[int]]:
    """Barycenter sweeps from a depth-first order; the order with the fewest crossings wins."""
    rows = _dfs_order(rows, down)
    pos = [0] * len(up)

    def place(row: list[int]) -> None:
        for i, v in enumerate(row):
            pos[v] = i

    for row in rows:
        place(row)
    best = [list(r) for r in rows]
    best_cross = _crossings(rows, down, pos)
    stale = 0
    for i in range(sweeps):
        if best_cross == 0:
            break
        for k in range(1, len(rows)):
            rows[k] = _by_barycenter(rows[k], up, pos, len(rows[k - 1]))
            place(rows[k])
        for k in range(len(rows) - 2, -1, -1):
            rows[k] = _by_barycenter(rows[k], down, pos, len(rows[k + 1]))
            place(rows[k])
        cross = _crossings(rows, down, pos)
        if cross < best_cross:
            best, best_cross, stale = [list(r) for r in rows], cross, 0
        else:
            stale += 1
            if stale >= 3 and i >= 3:
                break
    return best


def _dfs_order(rows: list[list[int]], down: list[list[int]]) -> list[list[int]]:
    """Each layer in the order a depth-first walk from the first layer's nodes meets them."""
    seen = [-1] * len(down)
    count = 0
    for row in rows:
        for start in row:
            if seen[start] >= 0:
                continue
            stack = [start]
            while stack:
                v = stack.pop()
                if seen[v] >= 0:
                    continue
                seen[v] = count
                count += 1
                stack.extend(reversed(down[v]))
    return [sorted(row, key=seen.__getitem__) for row in rows]


def _by_barycenter(row: list[int], nbrs: list[list[int]], pos: list[int], fixed: int) -> list[int]:
    """The row sorted by the mean position of each node's neighbours in the fixed layer."""
    scale = (fixed - 1) / (len(row) - 1) if len(row) > 1 else 0.0
    keys = []
    for i, v in enumerate(row):
        around = nbrs[v]
        if around:
            total = 0
            for u in around:
                total += pos[u]
            keys.append((total / len(around), i, v))
        else:
            keys.append((i * scale, i, v))  # no neighbour there: stay about where it is
    keys.sort()
    return [v for _, _, v in keys]


def _crossings(rows: list[list[int]], down: list[list[int]], pos: list[int]) -> int:
    return sum(_layer_crossings(rows[k], len(rows[k + 1]), down, pos) for k in range(len(rows) - 1))


def _layer_crossings(top: list[int], size: int, down: list[list[int]], pos: list[int]) -> int:
    """Crossings between a layer and the next: inversions of the edge ends, counted with a Fenwick tree."""
    tree = [0] * (size + 1)
    total = 0
    seen = 0
    for v in top:
        ends = sorted(pos[w] for w in down[v])
        for e in ends:
            # Edges seen so far that end below e cross this one.
            i, below = e + 1, 0
            while i > 0:
                below += tree[i]
                i -= i & -i
            total += seen - below
        for e in ends:
            i = e + 1
            while i <= size:
                tree[i] += 1
                i += i & -i
            seen += 1
    return total


ROUNDS = 6


def _coordinates(rows: list[list[int]], up: list[list[int]], down: list[list[int]], dummy: list[bool]) -> list[float]:
    """Centre y of every item: pulled to its neighbours' mean, then packed in order with its gaps."""
    y = [0.0] * len(up)
    offsets = []
    for row in rows:
        offs = [0.0]
        for a, b in itertools.pairwise(row):
            da, db = dummy[a], dummy[b]
            gap = (0 if da else NODE_H / 2) + (0 if db else NODE_H / 2) + (DUMMY_GAP if da or db else ROW_GAP)
            offs.append(offs[-1] + gap)
        offsets.append(offs)
        for v, off in zip(row, offs, strict=True):
            y[v] = off
    nbrs = [u + d for u, d in zip(up, down, strict=True)]
    sweep = [*range(1, len(rows)), *range(len(rows) - 2, -1, -1)]
    for _ in range(ROUNDS):
        for k in sweep:
            _pack(rows[k], offsets[k], nbrs, y)
    return y


def _pack(row: list[int], offsets: list[float], nbrs: list[list[int]], y: list[float]) -> None:
    """The positions nearest the neighbours' means (least squares) that keep the row's order and gaps.

    Pool adjacent violators on (wanted y - offset), which must not decrease along the row.
    """
    sums: list[float] = []
    counts: list[int] = []
    for i, v in enumerate(row):
        around = nbrs[v]
        if around:
            total = 0.0
            for u in around:
                total += y[u]
            value = total / len(around) - offsets[i]
        else:
            value = y[v] - offsets[i]
        count = 1
        while sums and sums[-1] * count > value * counts[-1]:
            value += sums.pop()
            count += counts.pop()
        sums.append(value)
        counts.append(count)
    i = 0
    for total, count in zip(sums, counts, strict=True):
        mean = total / count
        for _ in range(count):
            y[row[i]] = mean + offsets[i]
            i += 1
