"""The lineage page: the interactive graph (datatrail.viz) with expansion, depth and path controls.

The graph around a dataset, a version, a job or a run is the union of an
upstream walk ``up`` steps deep and a downstream walk ``down`` steps deep, so
each side expands on its own ("more upstream" reloads with ``up + 1``).
``from`` and ``to`` name two nodes whose connecting path is highlighted, by
the server in the node list (no JavaScript needed) and by ``lineage-ui.js`` in
the picture. Without JavaScript the page still lists every node with links.
"""

from __future__ import annotations

from collections import deque
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from datatrail.core.errors import NotFound
from datatrail.core.results import Direction, LineageNode
from datatrail.lineage import Graph
from datatrail.server.ui.pages import _decode, _find_dataset, page
from datatrail.server.ui.render import (
    dataset_url,
    job_url,
    namespace_url,
    node_url,
    run_url,
    version_url,
    with_query,
)
from datatrail.service import Trail
from datatrail.viz.fold import fold_datasets
from datatrail.viz.html import graph_payload

router = APIRouter(include_in_schema=False)

MAX_DEPTH = 20
DEFAULT_DEPTH = 2
Depth = Annotated[int, Query(ge=0, le=MAX_DEPTH)]
Level = Annotated[str | None, Query(pattern="^(version|dataset)$")]


def merge(up: Graph | None, down: Graph | None, root: str, depth: int) -> Graph:
    """One graph of the nodes and edges of an upstream and a downstream walk."""
    nodes: dict[str, LineageNode] = {}
    edges: set[tuple[str, str]] = set()
    for graph in (g for g in (up, down) if g is not None):
        for nid, node in graph.nodes.items():
            if nid not in nodes or node.depth < nodes[nid].depth:
                nodes[nid] = node
        edges.update(graph.edges)
    return Graph(root, "both", depth, nodes, tuple(sorted(edges)))


def shortest_path(graph: Graph, start: str, end: str) -> list[str]:
    """The nodes of a shortest path from ``start`` to ``end``: along the data flow either way, else undirected."""
    if start not in graph.nodes or end not in graph.nodes:
        return []
    forward: dict[str, list[str]] = {}
    backward: dict[str, list[str]] = {}
    for s, t in graph.edges:
        forward.setdefault(s, []).append(t)
        backward.setdefault(t, []).append(s)
    undirected = {n: forward.get(n, []) + backward.get(n, []) for n in graph.nodes}
    for links in (forward, backward, undirected):
        found = _bfs(links, start, end)
        if found:
            return found
    return []


def _bfs(links: dict[str, list[str]], start: str, end: str) -> list[str]:
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == end:
            path = [node]
            while (before := previous[path[-1]]) is not None:
                path.append(before)
            return path[::-1]
        for nxt in sorted(links.get(node, ())):
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return []


def _level_graph(graph: Graph, level: str) -> Graph:
    """The dataset-level view (versions folded into datasets, runs into jobs) or the graph as is."""
    if level != "dataset":
        return graph

    folded: Graph = fold_datasets(graph)
    return folded


def _interactive(graph: Graph, level: str, chosen: bool) -> dict[str, Any]:
    """What lineage.js draws: both levels of the version-level ``graph``, laid out here, in Python.

    Unless the address ``chosen`` the level, the viewer may open on the dataset level when the
    versions would be too small to read fitted (``auto_level``).
    """
    payload: dict[str, Any] = graph_payload(graph, level=level, href=lambda n: node_url(n.id, n.data))
    payload["auto_level"] = not chosen
    return payload


def _node_entry(graph: Graph, nid: str) -> dict[str, Any]:
    node = graph.nodes[nid]
    data = node.data
    if data.get("redacted"):  # hidden from this reader (security/guard.py): type only
        return {
            "id": nid,
            "type": node.type,
            "label": "(hidden)",
            "namespace": None,
            "state": None,
            "kind": None,
            "url": "",
            "lineage": "",
            "depth": node.depth,
        }
    if nid.startswith("job:"):
        here = job_url(data["namespace"], data["job"]) + "/lineage"
        label = f"job {data.get('job')} ({len(data.get('runs') or ())} runs)"
    elif node.type == "run":
        here = run_url(str(data.get("id") or nid[4:])) + "/lineage"
        label = f"{data.get('job')} {str(data.get('id', ''))[:8]}"
    elif "version" in data:
        here = with_query(dataset_url(data["namespace"], data["name"]) + "/lineage", version=data["version"])
        label = f"{data['name']}@{data['version']}"
    else:
        here = dataset_url(data["namespace"], data["name"]) + "/lineage"
        label = str(data["name"])
    return {
        "id": nid,
        "type": node.type,
        "label": label,
        "namespace": data.get("namespace"),
        "state": data.get("state"),
        "kind": data.get("kind"),
        "url": node_url(nid, data),
        "lineage": here,
        "depth": node.depth,
    }


def _lineage(trail: Trail, what: str, ids: tuple[str, ...], options: dict[str, Any]) -> dict[str, Any]:
    up, down = options["up"], options["down"]
    if what == "dataset":
        namespace, name = _decode(*ids)
        _find_dataset(trail, namespace, name)
        version = options["version"]

        def make(direction: Direction, depth: int) -> Graph:
            return trail.dataset_lineage(namespace, name, selector=version, direction=direction, depth=depth)

        subject = f"{name}@{version}" if version else name
        back = dataset_url(namespace, name)
        base = back + "/lineage"
        crumbs = [(namespace, namespace_url(namespace)), (name, back)]
        if version:
            crumbs.append((f"@{version}", version_url(namespace, name, version)))
    elif what == "job":
        namespace, name = _decode(*ids)
        if not any(j.name == name for j in trail.jobs(namespace)):
            msg = f"no job named {name!r} in namespace {namespace!r}"
            raise NotFound(msg)

        def make(direction: Direction, depth: int) -> Graph:
            return trail.job_lineage(namespace, name, direction=direction, depth=depth)

        subject, back = f"job {name}", job_url(namespace, name)
        base = back + "/lineage"
        crumbs = [(namespace, namespace_url(namespace)), (f"job {name}", back)]
    else:
        (run_id,) = _decode(*ids)
        run = trail.get_run(run_id)

        def make(direction: Direction, depth: int) -> Graph:
            return trail.run_lineage(run.id, direction=direction, depth=depth)

        subject, back = f"run {run.job} {run.id[:8]}", run_url(run.id)
        base = back + "/lineage"
        crumbs = [
            (run.namespace, namespace_url(run.namespace)),
            (f"job {run.job}", job_url(run.namespace, run.job)),
            (f"run {run.id[:8]}", back),
        ]
    first = make("upstream", up)
    graph = merge(first, make("downstream", down), first.root, max(up, down))
    payload = _interactive(graph, options["level"], options["level_chosen"])
    graph = _level_graph(graph, options["level"])
    entries = [_node_entry(graph, nid) for nid in sorted(graph.nodes, key=lambda n: (graph.nodes[n].depth, n))]
    path = shortest_path(graph, options["from"], options["to"]) if options["from"] and options["to"] else []
    keep = {"version": options["version"], "level": options["level"] if options["level"] != "version" else None}
    keep_path = {"from": options["from"], "to": options["to"]}

    def link(**changes: Any) -> str:
        return with_query(base, **{**keep, "up": up, "down": down, **keep_path, **changes})

    return {
        "title": f"Lineage of {subject}",
        "subject": subject,
        "back": back,
        "crumbs": crumbs,
        "base": base,
        "root": graph.root,
        "up": up,
        "down": down,
        "level": options["level"],
        "version": options["version"],
        "nodes": entries,
        "edge_count": len(graph.edges),
        "path": path,
        "path_from": options["from"] or "",
        "path_to": options["to"] or "",
        "labels": {e["id"]: e["label"] for e in entries},
        "more_up": link(up=min(up + 1, MAX_DEPTH)),
        "more_down": link(down=min(down + 1, MAX_DEPTH)),
        "less_up": link(up=max(up - 1, 0)),
        "less_down": link(down=max(down - 1, 0)),
        "clear_path": link(**{"from": None, "to": None}),
        "payload": payload,
        "max_depth": MAX_DEPTH,
    }


def graph_options(
    up: Depth = DEFAULT_DEPTH,
    down: Depth = DEFAULT_DEPTH,
    level: Level = None,
    start: Annotated[str | None, Query(alias="from", max_length=4096)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=4096)] = None,
) -> dict[str, Any]:
    """The query parameters every lineage page takes: depths up and down, level, and a path's two ends."""
    return {
        "version": None,
        "up": up,
        "down": down,
        "level": level or "version",
        "level_chosen": level is not None,
        "from": start,
        "to": end,
    }


Options = Annotated[dict[str, Any], Depends(graph_options)]


@router.get("/datasets/{namespace}/{name}/lineage")
async def dataset_lineage(
    request: Request,
    namespace: str,
    name: str,
    options: Options,
    version: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    options = {**options, "version": version or None}
    return await page(request, "lineage.html", _lineage, "dataset", (namespace, name), options)


@router.get("/jobs/{namespace}/{name}/lineage")
async def job_lineage(request: Request, namespace: str, name: str, options: Options) -> Response:
    return await page(request, "lineage.html", _lineage, "job", (namespace, name), options)


@router.get("/runs/{run_id}/lineage")
async def run_lineage(request: Request, run_id: str, options: Options) -> Response:
    return await page(request, "lineage.html", _lineage, "run", (run_id,), options)
