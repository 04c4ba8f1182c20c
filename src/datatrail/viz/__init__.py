"""Lineage pictures: a layered layout, and DOT, Mermaid, SVG and standalone HTML renderings.

>>> from datatrail.viz import layout_graph, render_svg        # doctest: +SKIP
>>> g = trail.lineage("clean/penguins")                       # doctest: +SKIP
>>> render_svg(g).startswith("<svg")                          # doctest: +SKIP
True

The modules load on first use, like the top-level package, so that the CLI
imports only what a format needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datatrail.viz.dot import to_dot
    from datatrail.viz.fold import at_level, fold_datasets
    from datatrail.viz.html import graph_payload, render_html
    from datatrail.viz.layout import Box, Group, Layout, Route, layout_graph
    from datatrail.viz.mermaid import to_mermaid
    from datatrail.viz.svg import render_svg

_WHERE = {
    "to_dot": "dot",
    "fold_datasets": "fold",
    "at_level": "fold",
    "graph_payload": "html",
    "render_html": "html",
    "Box": "layout",
    "Group": "layout",
    "Layout": "layout",
    "Route": "layout",
    "layout_graph": "layout",
    "to_mermaid": "mermaid",
    "render_svg": "svg",
}

__all__ = [
    "Box",
    "Group",
    "Layout",
    "Route",
    "at_level",
    "fold_datasets",
    "graph_payload",
    "layout_graph",
    "render_html",
    "render_svg",
    "to_dot",
    "to_mermaid",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"datatrail.viz.{_WHERE[name]}"), name)
    msg = f"module 'datatrail.viz' has no attribute {name!r}"
    raise AttributeError(msg)
