"""Templates and the helpers they use: page URLs, sizes, times, histograms.

Autoescape is on for every template, so whatever was ingested (a dataset named
``<img src=x onerror=alert(1)>``) is rendered as text.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChainableUndefined, Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from datatrail.core import text
from datatrail.core.limits import MAX_EVENT_DEPTH, bounded
from datatrail.core.times import stored_time
from datatrail.server.ui import auth

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def seg(value: str) -> str:
    """One path segment: every reserved character percent-encoded (``raw/penguins`` → ``raw%2Fpenguins``)."""
    return quote(value, safe="")


def namespace_url(namespace: str) -> str:
    return f"/namespaces/{seg(namespace)}"


def dataset_url(namespace: str, name: str) -> str:
    return f"/datasets/{seg(namespace)}/{seg(name)}"


def version_url(namespace: str, name: str, number: int | str) -> str:
    return f"{dataset_url(namespace, name)}/versions/{seg(str(number))}"


def diff_url(namespace: str, name: str, a: int | str, b: int | str) -> str:
    return f"{dataset_url(namespace, name)}/diff?{urlencode({'a': a, 'b': b})}"


def job_url(namespace: str, name: str) -> str:
    return f"/jobs/{seg(namespace)}/{seg(name)}"


def run_url(run_id: str) -> str:
    return f"/runs/{seg(run_id)}"


def environment_url(environment: str) -> str:
    return f"/environments/{seg(environment)}"


def with_query(path: str, **params: Any) -> str:
    """``path`` with the non-empty ``params`` as its query string."""
    kept = {k: v for k, v in params.items() if v is not None and v != ""}
    return f"{path}?{urlencode(kept)}" if kept else path


def node_url(node_id: str, data: dict[str, Any]) -> str:
    """The page of a lineage node: a run, a version, or at dataset level a job or a dataset."""
    if data.get("redacted"):  # hidden from this reader: no page to link to
        return ""
    if node_id.startswith("job:"):
        return job_url(data["namespace"], data["job"])
    if node_id.startswith("run:"):
        return run_url(str(data.get("id") or node_id[4:]))
    if "version" in data:
        return version_url(data["namespace"], data["name"], data["version"])
    return dataset_url(data["namespace"], data["name"])


def size(value: int | None) -> str:
    """Bytes in binary units: ``1536`` → ``1.5 KiB``."""
    if value is None:
        return "—"
    step = 1024.0
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < step or unit == "TiB":
            return f"{int(amount)} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= step
    return f"{value} B"  # pragma: no cover - the loop always returns


def when(value: Any) -> str:
    """A time as ``2026-11-29 10:51:07 UTC`` (seconds are enough on a page)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = stored_time(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
        return f"{text} UTC" if value.utcoffset() is not None and not value.utcoffset() else text
    return str(value)


def number(value: Any) -> str:
    """A count of things (rows, files, runs): thousands grouped, as everywhere in datatrail (core.text)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return text.quantity(value)
    return stat(value)


def stat(value: Any) -> str:
    """A value from the data or a statistic of it: a year stays ``2007``, floats keep 4 significant digits."""
    if value is None:
        return "—"
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return text.value(value, width=10_000)


def figure(value: Any, data: bool) -> str:
    """A figure of a diff: a :func:`stat` of the data when ``data``, else a :func:`number` (a count)."""
    return stat(value) if data else number(value)


def as_json(value: Any) -> str:
    """Compact, readable JSON of a parameter or property value (shown as text).

    A value stored before events were bounded is cut at ``MAX_EVENT_DEPTH`` levels.
    """
    if isinstance(value, str):
        return value
    return json.dumps(bounded(value, MAX_EVENT_DEPTH), sort_keys=True, default=str)


def histogram_svg(histogram: dict[str, Any] | None, width: int = 240, height: int = 60) -> Markup:
    """A profile histogram as server-side SVG bars (no JavaScript, no inline style).

    Every value in it is a number formatted here, so the markup holds nothing ingested.
    """
    if not histogram or not histogram.get("counts"):
        return Markup("")
    counts = [int(c) for c in histogram["counts"]]
    edges = [float(e) for e in histogram.get("edges") or []]
    top = max(counts) or 1
    bar = width / len(counts)
    parts = [
        f'<svg class="histogram" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' role="img" aria-label="histogram of {len(counts)} bins">'
    ]
    for i, count in enumerate(counts):
        h = 0.0 if count == 0 else max(1.0, (height - 2) * count / top)
        lo = f"{edges[i]:.4g}" if i < len(edges) else "?"
        hi = f"{edges[i + 1]:.4g}" if i + 1 < len(edges) else "?"
        parts.append(
            f'<rect x="{i * bar + 0.5:.1f}" y="{height - h:.1f}" width="{max(bar - 1, 1):.1f}" height="{h:.1f}">'
            f"<title>[{lo}, {hi}): {count:,}</title></rect>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def json_script(value: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>`` or ``&`` can end the element."""
    text = json.dumps(value, separators=(",", ":"), default=str)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=ChainableUndefined,  # profiles from other producers lack keys
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        size=size,
        when=when,
        number=number,
        stat=stat,
        figure=figure,
        count=text.count,
        as_json=as_json,
        histogram=histogram_svg,
    )
    env.globals.update(
        namespace_url=namespace_url,
        dataset_url=dataset_url,
        version_url=version_url,
        diff_url=diff_url,
        job_url=job_url,
        run_url=run_url,
        environment_url=environment_url,
        node_url=node_url,
        with_query=with_query,
        json_script=json_script,
    )
    return env


ENV = _environment()


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The template filled in, with what every page shows (the signed-in principal, auth state)."""
    context.setdefault("title", "datatrail")
    context["ui"] = auth.page_context(request)
    html = ENV.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status)
