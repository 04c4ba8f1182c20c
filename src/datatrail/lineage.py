"""The lineage graph object returned by :meth:`Trail.lineage`."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from datatrail.core.text import count

if TYPE_CHECKING:  # annotations only (start-up: a read builds the results' types for lineage only)
    from datatrail.core.results import LineageNode


@dataclass(frozen=True)
class Graph:
    """Versions and runs around a root version, with data-flow edges.

    >>> g = trail.lineage("clean/penguins")   # doctest: +SKIP
    >>> g.to_json()["nodes"][0]["type"]       # doctest: +SKIP
    'version'
    """

    root: str
    direction: str
    depth: int
    nodes: dict[str, LineageNode]
    edges: tuple[tuple[str, str], ...]

    def parents(self, node_id: str) -> list[str]:
        return sorted(s for s, t in self.edges if t == node_id)

    def children(self, node_id: str) -> list[str]:
        return sorted(t for s, t in self.edges if s == node_id)

    def label(self, node_id: str) -> str:
        node = self.nodes[node_id]
        d = node.data
        if d.get("redacted"):  # a node the reader may not see (security/guard.py)
            return f"(hidden {node.type})"
        if d.get("level") == "dataset":  # folded by datatrail.viz.fold_datasets
            return _folded_label(node)
        if node.type == "run":
            return f"run {d['job']} [{d['state']}] {d['id'][:8]}"
        ns = "" if d["namespace"] == "default" else f"{d['namespace']}:"
        digest = f" {d['digest'][:19]}" if d.get("digest") else ""
        kind = " (model)" if d.get("kind") == "model" else ""
        return f"{ns}{d['name']}@{d['version']}{digest}{kind}"

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "direction": self.direction,
            "depth": self.depth,
            "nodes": [
                {"id": n.id, "type": n.type, "depth": n.depth, "data": n.data}
                for n in sorted(self.nodes.values(), key=lambda n: (n.depth, n.id))
            ],
            "edges": [{"source": s, "target": t} for s, t in self.edges],
        }

    def to_dot(self) -> str:
        """Graphviz DOT (see :func:`datatrail.viz.dot.to_dot`)."""
        from datatrail.viz.dot import to_dot  # start-up: a lineage read loads the renderers it prints with

        return to_dot(self)

    def to_mermaid(self) -> str:
        """A Mermaid flowchart (see :func:`datatrail.viz.mermaid.to_mermaid`)."""
        from datatrail.viz.mermaid import to_mermaid  # start-up: a lineage read loads the renderers it prints with

        return to_mermaid(self)

    def to_tree(self) -> str:
        """The graph as an indented tree from the root, following the query's direction."""
        return "\n".join(self.tree_lines())

    def tree_lines(self) -> list[str]:
        """The lines of :meth:`to_tree` (a label never splits a line, whatever it holds)."""
        up = self.direction != "downstream"
        nxt: dict[str, list[str]] = defaultdict(list)
        for s, t in self.edges:
            if up:
                nxt[t].append(s)
            else:
                nxt[s].append(t)
        lines = [self.label(self.root)]
        seen = {self.root}

        def walk(node: str, prefix: str) -> None:
            kids = sorted(nxt.get(node, []))
            for i, kid in enumerate(kids):
                last = i == len(kids) - 1
                arrow = "<- " if up else "-> "
                again = kid in seen
                lines.append(
                    f"{prefix}{'└── ' if last else '├── '}{arrow}{self.label(kid)}{' (see above)' if again else ''}"
                )
                if not again:
                    seen.add(kid)
                    walk(kid, prefix + ("    " if last else "│   "))

        if self.direction == "both":
            for label, follow_up in (("upstream", True), ("downstream", False)):
                up = follow_up
                nxt.clear()
                for s, t in self.edges:
                    (nxt[t] if up else nxt[s]).append(s if up else t)
                lines.append(f"{label}:")
                walk(self.root, "  ")
        else:
            walk(self.root, "")
        return lines


def _folded_label(node: LineageNode) -> str:
    d = node.data
    ns = "" if d.get("namespace") == "default" else f"{d.get('namespace')}:"
    if node.type == "run":
        n = len(d.get("runs") or ())
        return f"job {ns}{d.get('job')} [{d.get('state')}] ({count(n, 'run')})"
    n = len(d.get("versions") or ())
    kind = " (model)" if d.get("kind") == "model" else ""
    return f"{ns}{d.get('name')} ({count(n, 'version')}){kind}"
