"""What a lineage node looks like in a picture: its kind (the shape) and its marks (the warnings)."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from datatrail.core.results import LineageNode


class Drawable(Protocol):
    """What the text renderers read of a lineage graph (:class:`datatrail.lineage.Graph` is one)."""

    @property
    def root(self) -> str: ...

    @property
    def nodes(self) -> dict[str, LineageNode]: ...

    @property
    def edges(self) -> tuple[tuple[str, str], ...]: ...

    def label(self, node_id: str) -> str: ...


Kind = Literal["dataset", "model", "run", "group"]
Mark = Literal["failed", "checks", "drift"]

# What each mark means, for legends.
MARKS: dict[str, str] = {
    "failed": "failed run",
    "checks": "failed checks",
    "drift": "drift alert",
}
KINDS: dict[str, str] = {
    "dataset": "dataset version",
    "model": "model version",
    "run": "run",
    "group": "collapsed group",
}


def kind_of(node: LineageNode) -> Kind:
    """``run`` for runs (and jobs), ``model`` for versions of a model, else ``dataset``.

    >>> kind_of(LineageNode("run:1", "run", 1, {"state": "COMPLETE"}))
    'run'
    """
    if node.type == "run":
        return "run"
    return "model" if node.data.get("kind") == "model" else "dataset"


def marks_of(node: LineageNode) -> tuple[Mark, ...]:
    """The warnings a node carries: a failed run, failed checks, a drift alert.

    >>> marks_of(LineageNode("v", "version", 0, {"checks": {"failed": 2}, "drift": {"alert": True}}))
    ('checks', 'drift')
    """
    d = node.data
    out: list[Mark] = []
    if node.type == "run" and d.get("state") == "FAIL":
        out.append("failed")
    if _number(_dict(d.get("checks")).get("failed")) > 0:
        out.append("checks")
    if _dict(d.get("drift")).get("alert"):
        out.append("drift")
    return tuple(out)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def mark_notes(node: LineageNode) -> list[str]:
    """Short words for a node's marks, to add to its label (a failed run's label says FAIL already).

    >>> mark_notes(LineageNode("v", "version", 0, {"checks": {"failed": 2}}))
    ['failed checks: 2']
    """
    notes = []
    for mark in marks_of(node):
        if mark == "checks":
            notes.append(f"failed checks: {_number(node.data['checks']['failed']):g}")
        elif mark == "drift":
            notes.append("drift alert")
    return notes


def short_label(graph: Drawable, node_id: str) -> str:
    """A node's label for the interactive viewer: the name, without what its details show.

    A version is ``[namespace:]name@N`` (no digest), a run ``job 1a2b3c4d``, a folded job
    ``job (3 runs)``, a folded dataset ``name (2 versions)``, with a state only when it is not
    COMPLETE; hidden nodes keep :meth:`Graph.label`. The full label is the node's tooltip.

    >>> from datatrail.lineage import Graph
    >>> run = LineageNode("run:1a2b3c4d-0", "run", 1, {"id": "1a2b3c4d-0", "job": "clean", "state": "COMPLETE"})
    >>> short_label(Graph(run.id, "both", 1, {run.id: run}, ()), run.id)
    'clean 1a2b3c4d'
    """
    node = graph.nodes[node_id]
    d = node.data
    if d.get("redacted"):
        return graph.label(node_id)
    ns = "" if d.get("namespace", "default") == "default" else f"{d['namespace']}:"
    if d.get("level") == "dataset":  # folded: a job and its runs, a dataset and its versions
        if node.type == "run":
            state, n = d.get("state"), len(d.get("runs") or ())
            flag = f" [{state}]" if state and state != "COMPLETE" else ""
            return f"{ns}{d.get('job')}{flag} ({n} run{'s' if n != 1 else ''})"
        n = len(d.get("versions") or ())
        return f"{ns}{d.get('name')} ({n} version{'s' if n != 1 else ''})"
    if node.type == "run" and "job" in d and "id" in d:
        state = d.get("state")
        return f"{d['job']} {str(d['id'])[:8]}" + (f" [{state}]" if state and state != "COMPLETE" else "")
    if node.type == "version" and "name" in d and "version" in d:
        return f"{ns}{d['name']}@{d['version']}"
    return graph.label(node_id)
