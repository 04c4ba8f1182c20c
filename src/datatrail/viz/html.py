"""One standalone interactive HTML file: the graph, its layout, and the viewer, nothing fetched.

The viewer is ``static/lineage.js`` with ``static/lineage.css``; it reads the
JSON of :func:`graph_payload` from ``<script type="application/json"
id="datatrail-graph">`` and draws into ``<div id="datatrail-lineage">``. The
web UI serves the same two files from its static folder (:data:`STATIC_DIR`)
under a strict Content-Security-Policy; the standalone file inlines them and
allows exactly those two inline blocks by their hashes.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Callable, Sequence
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datatrail.core.results import LineageNode
from datatrail.viz.fold import LEVELS, at_level, is_folded
from datatrail.viz.layout import Layout, layout_graph
from datatrail.viz.nodes import kind_of, marks_of, short_label

if TYPE_CHECKING:
    from datatrail.lineage import Graph

STATIC_DIR = Path(__file__).resolve().parent / "static"
PAYLOAD_FORMAT = "datatrail-lineage/1"

Href = Callable[[LineageNode], "str | None"]

PAGE_CSS = "html, body { height: 100%; margin: 0; } #datatrail-lineage { height: 100vh; }\n"


def graph_payload(
    graph: Graph,
    layout: Layout | None = None,
    *,
    level: str = "version",
    levels: Sequence[str] = LEVELS,
    href: Href | None = None,
    collapse_over: int = 12,
) -> dict[str, Any]:
    """What lineage.js draws: one view per level, each with its nodes, groups, routed edges and links.

    ``graph`` is the version-level graph (or one folded by
    :func:`~datatrail.viz.fold.fold_datasets`, which gives a single
    ``dataset`` view); ``layout``, if given, is the layout of ``graph`` itself
    (the other view is laid out here). ``level``
    is the view shown first. ``href(node)`` may give a same-site link for a
    node (``/datasets/…``), shown in its details panel.

    A view is ``{"root", "width", "height", "columns": [[x, w]…] per layer,
    "nodes": [{"id", "type", "kind", "label" (short), "title" (the full label), "marks", "depth", "data",
    "box": [x, y, w, h, layer] or null when folded into a group, "group",
    "href"}], "groups": [{"id", "parent", "direction", "members",
    "member_type", "label", "marks", "box"}], "edges": [{"source", "target",
    "points", "reversed"}] (between drawn boxes), "links": [[source,
    target]…] (every edge of the graph)}``.

    >>> payload = graph_payload(trail.lineage("clean/penguins"))   # doctest: +SKIP
    >>> sorted(payload["views"])                                   # doctest: +SKIP
    ['dataset', 'version']
    """
    chosen = list(dict.fromkeys([level, *levels]))
    if is_folded(graph):
        level, chosen = "dataset", ["dataset"]  # folded already: there is no version level to show
    views: dict[str, Any] = {}
    for name in chosen:
        g = at_level(graph, name)
        lay = (
            layout
            if layout is not None and g is graph
            else layout_graph(g, collapse_over=collapse_over, label=partial(short_label, g))
        )
        views[name] = _view(g, lay, href)
    return {
        "format": PAYLOAD_FORMAT,
        "root": graph.root,
        "direction": graph.direction,
        "depth": graph.depth,
        "level": level,
        "views": views,
    }


def _view(graph: Graph, lay: Layout, href: Href | None) -> dict[str, Any]:
    nodes = []
    for n in sorted(graph.nodes.values(), key=lambda n: (n.depth, n.id)):
        box = lay.boxes.get(n.id)
        nodes.append(
            {
                "id": n.id,
                "type": n.type,
                "kind": kind_of(n),
                "label": short_label(graph, n.id),
                "title": graph.label(n.id),
                "marks": list(marks_of(n)),
                "depth": n.depth,
                "data": n.data,
                "box": _box(box.x, box.y, box.w, box.h, box.layer) if box else None,
                "group": lay.owner.get(n.id),
                "href": href(n) if href else None,
            }
        )
    groups = []
    for g in lay.groups.values():
        b = lay.boxes[g.id]
        groups.append(
            {
                "id": g.id,
                "parent": g.parent,
                "direction": g.direction,
                "members": list(g.members),
                "member_type": g.member_type,
                "label": b.label,
                "marks": list(b.marks),
                "box": _box(b.x, b.y, b.w, b.h, b.layer),
            }
        )
    return {
        "root": graph.root,
        "width": round(lay.width, 1),
        "height": round(lay.height, 1),
        "columns": [[round(x, 1), round(w, 1)] for x, w in lay.columns],
        "nodes": nodes,
        "groups": groups,
        "edges": [
            {
                "source": r.source,
                "target": r.target,
                "points": [[round(x, 1), round(y, 1)] for x, y in r.points],
                "reversed": r.reversed,
            }
            for r in lay.routes
        ],
        "links": [[s, t] for s, t in graph.edges],
    }


def _box(x: float, y: float, w: float, h: float, layer: int) -> list[float | int]:
    return [round(x, 1), round(y, 1), round(w, 1), round(h, 1), layer]


def script_json(payload: dict[str, Any]) -> str:
    """The payload as JSON that is safe inside a ``<script>`` element (no ``<``, ``>`` or ``&`` left)."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


@cache
def static_text(name: str) -> str:
    """The text of a file of :data:`STATIC_DIR` (``lineage.js`` or ``lineage.css``)."""
    return (STATIC_DIR / name).read_text(encoding="utf-8")


def render_html(
    graph: Graph,
    layout: Layout | None = None,
    *,
    level: str = "version",
    title: str | None = None,
    href: Href | None = None,
) -> str:
    """A standalone HTML page with the interactive graph; it works offline, from disk.

    Pan by dragging, zoom with the wheel or the buttons, click a node for its
    details, expand collapsed groups, switch between the version and dataset
    levels, highlight a node's upstream or downstream. Nothing is fetched:
    the page's Content-Security-Policy allows no source but its own two
    inline blocks.

    >>> Path("lineage.html").write_text(render_html(trail.lineage("model")))  # doctest: +SKIP
    """
    payload = graph_payload(graph, layout, level=level, href=href)
    js = static_text("lineage.js")
    css = PAGE_CSS + static_text("lineage.css")
    if "</" in js or "</" in css:  # would end the inline element early
        msg = "lineage.js and lineage.css must not contain '</'"
        raise ValueError(msg)
    csp = (
        "default-src 'none'; "
        f"script-src '{_sha256(js)}'; style-src '{_sha256(css)}'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    heading = title or f"Lineage of {graph.root}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="datatrail">\n'
        f"<title>{html.escape(heading)}</title>\n"
        f"<style>{css}</style>\n"
        "</head>\n<body>\n"
        "<noscript><p>This page draws the lineage graph with JavaScript, which is off. "
        "<code>datatrail lineage REF --format svg</code> gives a static picture.</p></noscript>\n"
        f'<div id="datatrail-lineage" aria-label="{html.escape(heading)}"></div>\n'
        f'<script type="application/json" id="datatrail-graph">{script_json(payload)}</script>\n'
        f"<script>{js}</script>\n"
        "</body>\n</html>\n"
    )


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
