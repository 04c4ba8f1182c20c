"""The lineage graph object returned by :meth:`Trail.lineage`."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from datatrail.store.base import LineageNode


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
        lines = ["digraph lineage {", "  rankdir=LR;"]
        for n in sorted(self.nodes.values(), key=lambda n: n.id):
            shape = "box" if n.type == "run" else "ellipse"
            lines.append(f"  {_q(n.id)} [label={_q(self.label(n.id))}, shape={shape}];")
        lines.extend(f"  {_q(s)} -> {_q(t)};" for s, t in self.edges)
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self) -> str:
        ids = {nid: f"n{i}" for i, nid in enumerate(sorted(self.nodes))}
        lines = ["flowchart LR"]
        for nid, short in ids.items():
            text = self.label(nid).replace('"', "#quot;")
            lines.append(f'  {short}["{text}"]' if self.nodes[nid].type == "run" else f'  {short}(["{text}"])')
        lines.extend(f"  {ids[s]} --> {ids[t]}" for s, t in self.edges)
        return "\n".join(lines) + "\n"

    def to_tree(self) -> str:
        """The graph as an indented tree from the root, following the query's direction."""
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
        return "\n".join(lines)


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
