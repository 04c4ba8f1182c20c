"""The web UI at ``/``: server-rendered pages (Jinja2, autoescaped), a little CSS, and the lineage graph.

:func:`install` adds the pages, the static files and the security headers to
the application::

    app = create_app("sqlite:///trail.db")   # calls datatrail.server.ui.install(app)

Every page but the interactive lineage graph works with JavaScript off. Every
response carries a Content-Security-Policy that allows scripts only from the
server itself (no inline script, no handler attributes), and everything
ingested is rendered as text. ``hooks.py`` holds the functions that access
control, deployments, drift histories and column lineage plug into.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from datatrail.server.ui import environments, graph, pages
from datatrail.server.ui.auth import RawPagePath, SecurityHeaders
from datatrail.server.ui.render import STATIC
from datatrail.viz.html import STATIC_DIR

__all__ = ["install"]


def viz_static() -> Path:
    """The folder of lineage.js and lineage.css (``datatrail.viz.html.STATIC_DIR``)."""
    return STATIC_DIR
    return Path(STATIC_DIR)


def install(app: FastAPI) -> None:
    """Serve the UI from ``app``: pages at ``/``, files under ``/static``, headers on every response."""
    app.include_router(graph.router)
    app.include_router(pages.router)
    app.include_router(environments.router)
    app.mount("/static/viz", StaticFiles(directory=viz_static(), check_dir=False), name="viz-static")
    app.mount("/static/ui", StaticFiles(directory=STATIC), name="ui-static")
    app.add_middleware(RawPagePath)
    app.add_middleware(SecurityHeaders)
