"""SVG drawn by datatrail itself from the layered layout: no Graphviz needed."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from datatrail.viz.fold import at_level
from datatrail.viz.layout import Box, Layout, layout_graph
from datatrail.viz.nodes import KINDS, MARKS

if TYPE_CHECKING:
    from datatrail.lineage import Graph

LEGEND_H = 44.0
# Characters XML 1.0 does not allow at all: dropped, so that any name gives a valid document.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

STYLE = """
text { font: 12px -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; fill: #1f2328; }
.edge { fill: none; stroke: #8c959f; stroke-width: 1.3; }
.edge.reversed { stroke-dasharray: 5 3; }
.node .shape { stroke: #57606a; stroke-width: 1.2; }
.dataset .shape { fill: #ddf4ff; }
.model .shape { fill: #fbefff; }
.run .shape { fill: #f6f8fa; }
.group .shape { fill: #ffffff; stroke-dasharray: 4 2; }
.group .behind { fill: #eaeef2; stroke: #8c959f; }
.root .shape { stroke: #0969da; stroke-width: 2.5; }
.failed .shape { stroke: #c62828; stroke-width: 2.5; fill: #fde2e2; }
.checks .shape { stroke: #e65100; stroke-width: 2.5; }
.drift .shape { stroke: #6a1b9a; stroke-width: 2.5; }
.badge, .legend .badge { font-size: 10px; font-weight: bold; fill: #ffffff; }
.badge-failed { fill: #c62828; } .badge-checks { fill: #e65100; } .badge-drift { fill: #6a1b9a; }
.legend text { font-size: 11px; fill: #57606a; }
"""
BADGES = {"failed": "✗", "checks": "!", "drift": "~"}


def render_svg(graph: Graph, layout: Layout | None = None, *, level: str = "version") -> str:
    """The lineage as a standalone SVG document, with a legend; every text is XML-escaped.

    ``level="dataset"`` folds versions into datasets and runs into jobs first;
    a ``layout`` given must be of the graph at that level.

    >>> svg = render_svg(trail.lineage("clean/penguins"))   # doctest: +SKIP
    >>> Path("lineage.svg").write_text(svg)                 # doctest: +SKIP
    """
    graph = at_level(graph, level)
    lay = layout if layout is not None else layout_graph(graph)
    width = max(lay.width, 560.0)
    height = lay.height + LEGEND_H
    out = [
        '<svg xmlns="http://www.w3.org/2000/svg" version="1.1"'
        f' width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}">',
        f"<title>{xml(f'lineage of {graph.root}')}</title>",
        f"<style>{STYLE}</style>",
        "<defs>",
        '<marker id="dt-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7"'
        ' orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8c959f"/></marker>',
        "</defs>",
        *legend(),
        f'<g transform="translate(0,{LEGEND_H:.0f})">',
    ]
    for route in lay.routes:
        cls = "edge reversed" if route.reversed else "edge"
        out.append(
            f'<path class="{cls}" d="{path_d(route.points)}" marker-end="url(#dt-arrow)">'
            f"<title>{xml(route.source)} → {xml(route.target)}</title></path>"
        )
    for box in lay.boxes.values():
        out.append(node(box, box.id == graph.root))
    out.append("</g></svg>")
    return "\n".join(out) + "\n"


def node(box: Box, root: bool) -> str:
    """One node: its shape, its text, badges for its marks, and a tooltip with the full label."""
    classes = ["node", box.kind, *box.marks, *(["root"] if root else [])]
    tip = box.label + "".join(f"\n{MARKS[m]}" for m in box.marks)
    parts = [f'<g class="{" ".join(classes)}" data-id={attr(box.id)}>', f"<title>{xml(tip)}</title>"]
    parts.append(shape(box.kind, box.x, box.y, box.w, box.h))
    parts.append(f'<text x="{box.cx:.1f}" y="{box.cy + 4:.1f}" text-anchor="middle">{xml(box.text)}</text>')
    for i, mark in enumerate(box.marks):
        bx, by = box.x + box.w - 6 - 15 * i, box.y + 2
        parts.append(f'<circle class="badge-{mark}" cx="{bx:.1f}" cy="{by:.1f}" r="7"/>')
        parts.append(f'<text class="badge" x="{bx:.1f}" y="{by + 3.5:.1f}" text-anchor="middle">{BADGES[mark]}</text>')
    parts.append("</g>")
    return "".join(parts)


def shape(kind: str, x: float, y: float, w: float, h: float) -> str:
    """Datasets are pills, models hexagons, runs rectangles, groups a stack of cards."""
    if kind == "dataset":
        return f'<rect class="shape" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{h / 2:.1f}"/>'
    if kind == "model":
        d = h / 2
        pts = [(x, y + d), (x + d, y), (x + w - d, y), (x + w, y + d), (x + w - d, y + h), (x + d, y + h)]
        return f'<polygon class="shape" points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in pts)}"/>'
    if kind == "group":
        return (
            f'<rect class="behind" x="{x + 6:.1f}" y="{y - 5:.1f}" width="{w:.1f}" height="{h:.1f}" rx="3"/>'
            f'<rect class="behind" x="{x + 3:.1f}" y="{y - 2.5:.1f}" width="{w:.1f}" height="{h:.1f}" rx="3"/>'
            f'<rect class="shape" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="3"/>'
        )
    return f'<rect class="shape" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="2"/>'


def legend() -> list[str]:
    out = ['<g class="legend">']
    x = 12.0
    for kind in ("dataset", "model", "run", "group"):
        out.append(f'<g class="node {kind}">{shape(kind, x, 12, 26, 16)}</g>')
        pad = 40 if kind == "group" else 32  # the cards behind a group stick out to the right
        out.append(f'<text x="{x + pad:.0f}" y="24">{xml(KINDS[kind])}</text>')
        x += pad + 14 + 6.5 * len(KINDS[kind])
    for mark, text in MARKS.items():
        out.append(f'<circle class="badge-{mark}" cx="{x + 7:.0f}" cy="20" r="7"/>')
        out.append(f'<text class="badge" x="{x + 7:.0f}" y="23.5" text-anchor="middle">{BADGES[mark]}</text>')
        out.append(f'<text x="{x + 19:.0f}" y="24">{xml(text)}</text>')
        x += 30 + 6.5 * len(text)
    out.append("</g>")
    return out


def path_d(points: tuple[tuple[float, float], ...]) -> str:
    """Straight through a layer, an S-curve between layers (horizontal at both ends)."""
    (x0, y0), rest = points[0], points[1:]
    d = [f"M{x0:.1f},{y0:.1f}"]
    px, py = x0, y0
    for x, y in rest:
        if abs(y - py) < 0.5:
            d.append(f"L{x:.1f},{y:.1f}")
        else:
            mid = (x - px) / 2
            d.append(f"C{px + mid:.1f},{py:.1f} {x - mid:.1f},{y:.1f} {x:.1f},{y:.1f}")
        px, py = x, y
    return " ".join(d)


def xml(text: str) -> str:
    """Text for an XML element: ``& < >`` escaped, characters XML forbids dropped."""
    text = _NOT_XML.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def attr(text: str) -> str:
    """A quoted XML attribute value."""
    return '"' + xml(text).replace('"', "&quot;").replace("\n", "&#10;") + '"'
