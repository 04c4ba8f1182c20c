"""Mermaid flowcharts, for Markdown that GitHub, GitLab and many wikis draw."""

from __future__ import annotations

from datatrail.viz.nodes import Drawable, kind_of, mark_notes, marks_of

# Mermaid's entity codes (#name; or #number;), '#' first so the others stay intact.
_ESCAPES = (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("&", "#amp;"), ("`", "#96;"))
CLASSES = {
    "failed": "fill:#fde2e2,stroke:#c62828,stroke-width:3px",
    "checks": "fill:#fff1e0,stroke:#e65100,stroke-width:3px",
    "drift": "fill:#f3e5f5,stroke:#6a1b9a,stroke-width:3px",
}


def to_mermaid(graph: Drawable) -> str:
    """A ``flowchart LR``: stadiums for datasets, hexagons for models, rectangles for runs.

    Nodes are ``n0``, ``n1``… in id order. Marked nodes (failed run, failed
    checks, drift alert) get a class, styled by a ``classDef``, and a note in
    their label; labels are escaped with Mermaid's entity codes.

    >>> from datatrail.core.results import LineageNode
    >>> from datatrail.lineage import Graph
    >>> r = LineageNode("run:1", "run", 1, {"id": "1", "job": "<b>", "state": "FAIL"})
    >>> print(to_mermaid(Graph(r.id, "upstream", 1, {r.id: r}, ())))
    flowchart LR
      n0["run #lt;b#gt; [FAIL] 1"]
      classDef failed fill:#fde2e2,stroke:#c62828,stroke-width:3px
      class n0 failed
    <BLANKLINE>
    """
    ids = {nid: f"n{i}" for i, nid in enumerate(sorted(graph.nodes))}
    lines = ["flowchart LR"]
    marked: dict[str, list[str]] = {}
    for nid, short in ids.items():
        node = graph.nodes[nid]
        text = escape(" · ".join([graph.label(nid), *mark_notes(node)]))
        kind = kind_of(node)
        if kind == "run":
            lines.append(f'  {short}["{text}"]')
        elif kind == "model":
            lines.append(f'  {short}{{{{"{text}"}}}}')
        else:
            lines.append(f'  {short}(["{text}"])')
        marks = marks_of(node)
        if marks:
            marked.setdefault(marks[0], []).append(short)
    lines.extend(f"  {ids[s]} --> {ids[t]}" for s, t in graph.edges if s in ids and t in ids)
    for mark, shorts in marked.items():
        lines.append(f"  classDef {mark} {CLASSES[mark]}")
        lines.append(f"  class {','.join(shorts)} {mark}")
    return "\n".join(lines) + "\n"


def escape(text: str) -> str:
    """Text safe inside a quoted Mermaid label: entity codes for ``# " < > & `` and a backtick, one line.

    >>> escape('a "b" <c>')
    'a #quot;b#quot; #lt;c#gt;'
    """
    for raw, code in _ESCAPES:
        text = text.replace(raw, code)
    return " ".join(text.splitlines())
