"""Graphviz DOT: ``datatrail lineage REF --format dot | dot -Tsvg > lineage.svg``."""

from __future__ import annotations

from datatrail.viz.nodes import MARKS, Drawable, kind_of, mark_notes, marks_of

SHAPES = {"dataset": "ellipse", "model": "hexagon", "run": "box"}
# Outline colour and fill per mark, strongest first.
STYLES = {
    "failed": ("#c62828", "#fde2e2"),
    "checks": ("#e65100", "#fff1e0"),
    "drift": ("#6a1b9a", "#f3e5f5"),
}


def to_dot(graph: Drawable) -> str:
    """The graph in DOT, left to right: ellipses for datasets, hexagons for models, boxes for runs.

    Failed runs, versions with failed checks and drift alerts get a coloured
    outline and fill, and a second line in their label. Every string is quoted
    and escaped, so any dataset name is safe.

    >>> from datatrail.core.results import LineageNode
    >>> from datatrail.lineage import Graph
    >>> n = LineageNode('version:default:a"b@1', "version", 0, {"namespace": "default", "name": 'a"b', "version": 1})
    >>> print(to_dot(Graph(n.id, "upstream", 1, {n.id: n}, ())))
    digraph lineage {
      rankdir=LR;
      node [fontname="Helvetica", fontsize=11];
      "version:default:a\\"b@1" [label="a\\"b@1", shape=ellipse, peripheries=2];
    }
    <BLANKLINE>
    """
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=11];']
    for n in sorted(graph.nodes.values(), key=lambda n: n.id):
        label = "\n".join([graph.label(n.id), *mark_notes(n)])
        attrs = [f"label={quote(label)}", f"shape={SHAPES[kind_of(n)]}"]
        marks = marks_of(n)
        if marks:
            color, fill = STYLES[marks[0]]
            attrs.append(f'color="{color}", penwidth=2, style=filled, fillcolor="{fill}"')
            attrs.append(f"tooltip={quote(', '.join(MARKS[m] for m in marks))}")
        if n.id == graph.root:
            attrs.append("peripheries=2")
        lines.append(f"  {quote(n.id)} [{', '.join(attrs)}];")
    lines.extend(f"  {quote(s)} -> {quote(t)};" for s, t in graph.edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def quote(text: str) -> str:
    r"""A DOT quoted string: backslashes and quotes escaped, line breaks as ``\n``.

    >>> print(quote('say "hi"\nC:\\temp'))
    "say \"hi\"\nC:\\temp"
    """
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n") + '"'
