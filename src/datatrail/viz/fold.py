"""The dataset-level view: versions folded into their datasets, runs into their jobs."""

from __future__ import annotations

from typing import Any, Literal

from datatrail.core.errors import InvalidInput
from datatrail.core.results import LineageNode
from datatrail.lineage import Graph

Level = Literal["version", "dataset"]
LEVELS: tuple[Level, ...] = ("version", "dataset")


def at_level(graph: Graph, level: str) -> Graph:
    """``graph`` as is for ``version``, folded for ``dataset``."""
    if level == "version":
        return graph
    if level == "dataset":
        return fold_datasets(graph)

    msg = f"unknown level {level!r}: use version or dataset"
    raise InvalidInput(msg)


def fold_datasets(graph: Graph) -> Graph:
    """One node per dataset (``dataset:<ns>:<name>``) and per job (``job:<ns>:<name>``).

    A dataset node keeps its versions' numbers, the latest one's digest, and the
    marks of any version (failed checks add up, a drift alert anywhere shows); a
    job node keeps its run ids, a count per state, and ``state`` FAIL if any run
    failed, else the latest run's state. Edges between folded nodes are kept
    once; a job that rewrites a dataset it reads makes a cycle, which the
    layout handles.

    >>> from datatrail.core.results import LineageNode
    >>> a1 = LineageNode("version:default:a@1", "version", 0, {"namespace": "default", "name": "a", "version": 1})
    >>> a2 = LineageNode("version:default:a@2", "version", 0, {"namespace": "default", "name": "a", "version": 2})
    >>> sorted(fold_datasets(Graph(a2.id, "upstream", 1, {a1.id: a1, a2.id: a2}, ())).nodes)
    ['dataset:default:a']
    """
    if is_folded(graph):
        return graph
    into: dict[str, str] = {}
    versions: dict[str, list[LineageNode]] = {}
    runs: dict[str, list[LineageNode]] = {}
    hidden: dict[str, LineageNode] = {}
    for nid, node in graph.nodes.items():
        d = node.data
        if d.get("redacted"):  # a placeholder the reader may not see stays one node (security/guard.py)
            hidden[nid] = node
            into[nid] = nid
            continue
        if node.type == "run":
            key = f"job:{d.get('namespace', 'default')}:{d.get('job', '?')}"
            runs.setdefault(key, []).append(node)
        else:
            key = f"dataset:{d.get('namespace', 'default')}:{d.get('name', nid)}"
            versions.setdefault(key, []).append(node)
        into[nid] = key
    nodes: dict[str, LineageNode] = dict(hidden)
    for key, members in versions.items():
        nodes[key] = LineageNode(key, "version", min(n.depth for n in members), _dataset_data(members))
    for key, members in runs.items():
        nodes[key] = LineageNode(key, "run", min(n.depth for n in members), _job_data(members))
    edges: dict[tuple[str, str], None] = {}
    for s, t in graph.edges:
        a, b = into.get(s), into.get(t)
        if a is not None and b is not None and a != b:
            edges[(a, b)] = None
    root = into.get(graph.root, graph.root)
    return Graph(root, graph.direction, graph.depth, nodes, tuple(sorted(edges)))


def is_folded(graph: Graph) -> bool:
    """Whether ``graph`` is a dataset-level view already (its redacted placeholders aside)."""
    levels = {n.data.get("level") for n in graph.nodes.values() if not n.data.get("redacted")}
    return levels == {"dataset"}


def _dataset_data(members: list[LineageNode]) -> dict[str, Any]:
    members = sorted(members, key=lambda n: _int(n.data.get("version")))
    latest = members[-1].data
    failed = sum(_int(_dict(n.data.get("checks")).get("failed")) for n in members)
    drift = any(_dict(n.data.get("drift")).get("alert") for n in members)
    out: dict[str, Any] = {
        "level": "dataset",
        "namespace": latest.get("namespace", "default"),
        "name": latest.get("name"),
        "kind": latest.get("kind"),
        "versions": [n.data.get("version") for n in members],
        "latest": latest.get("version"),
        "digest": latest.get("digest"),
    }
    if failed:
        out["checks"] = {"failed": failed}
    if drift:
        out["drift"] = {"alert": True}
    return out


def _job_data(members: list[LineageNode]) -> dict[str, Any]:
    members = sorted(members, key=lambda n: (str(n.data.get("started_at") or ""), n.id))
    states: dict[str, int] = {}
    for n in members:
        state = str(n.data.get("state"))
        states[state] = states.get(state, 0) + 1
    latest = members[-1].data
    return {
        "level": "dataset",
        "namespace": latest.get("namespace", "default"),
        "job": latest.get("job"),
        "runs": [n.data.get("id") for n in members],
        "states": states,
        "state": "FAIL" if "FAIL" in states else latest.get("state"),
    }


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
