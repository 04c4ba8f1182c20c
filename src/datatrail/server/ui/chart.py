"""The drift history chart: server-side SVG, one line per feature, batch by batch.

Drawn from a :class:`~datatrail.ml.lifecycle.DriftHistory` (its records' stored
reports): the x axis is the batch (oldest first), the y axis the column's drift
score (PSI for numeric columns, Jensen-Shannon distance for categorical ones),
the thresholds are dashed lines, drifted batches are shaded and every point
has a tooltip. Colours come from CSS classes (the UI's policy allows no inline
style), and every piece of text is escaped here, so a feature named
``<script>…`` is drawn as those characters.
"""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup, escape

from datatrail.core.text import count
from datatrail.ml.lifecycle import DriftHistory

SERIES_CLASSES = 10  # .c0 … .c9 in ui.css; more features reuse the colours in turn
# (threshold key, the column kind it bounds, its label)
BOUNDS = (("psi", "numeric", "PSI"), ("js", "categorical", "JS"))

WIDTH, LEFT, RIGHT, TOP, BOTTOM = 720, 56, 16, 16, 56
PLOT_HEIGHT = 240
LEGEND_ROW, LEGEND_COLUMNS, LEGEND_TEXT = 18, 3, 28  # characters of a name shown in the legend


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def _nice_top(value: float) -> float:
    """The y axis' top: the smallest of 1, 2, 2.5, 5 times 10^k at or above ``value``."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _short(name: str) -> str:
    return name if len(name) <= LEGEND_TEXT else name[: LEGEND_TEXT - 1] + "…"


def series(history: DriftHistory) -> dict[str, Any]:
    """The chart's data: features (first seen first), per batch their scores, kinds and drift, the bounds."""
    features = history.features()
    kinds: dict[str, str] = {}
    batches: list[dict[str, Any]] = []
    for record in history.records:
        columns = {c["name"]: c for c in record.report.get("columns", [])}
        for name, column in columns.items():
            kinds.setdefault(name, str(column.get("kind") or "other"))
        scores = {}
        for name in features:
            score = columns.get(name, {}).get("score")
            ok = isinstance(score, int | float) and not isinstance(score, bool) and math.isfinite(score)
            scores[name] = float(score) if ok else None
        drifted = {name for name, c in columns.items() if c.get("drifted")}
        batches.append(
            {
                "time": record.created_at,
                "current": record.current,
                "drifted": record.drifted,
                "scores": scores,
                "drifted_columns": drifted,
                "thresholds": dict(record.report.get("thresholds") or {}),
            }
        )
    bounds = []
    for key, kind, label in BOUNDS:
        if kind not in kinds.values():
            continue
        values = [b["thresholds"].get(key) for b in batches]
        if all(isinstance(v, int | float) and math.isfinite(v) for v in values) and values:
            bounds.append({"key": key, "label": label, "levels": [float(v) for v in values]})
    return {"features": features, "kinds": kinds, "batches": batches, "bounds": bounds}


def drift_chart(history: DriftHistory, first: int = 1) -> Markup:
    """The history as an inline ``<svg>`` line chart (empty markup when there is no batch).

    ``first`` is the number of its first batch (a long history is shown from a later batch).
    """
    data = series(history)
    batches, features = data["batches"], data["features"]
    if not batches:
        return Markup("")
    n = len(batches)
    plot_w = WIDTH - LEFT - RIGHT
    step = plot_w / n
    top_value = max(
        [s for b in batches for s in b["scores"].values() if s is not None]
        + [v for bound in data["bounds"] for v in bound["levels"]]
        + [0.0]
    )
    y_top = _nice_top(top_value * 1.05)
    legend_rows = math.ceil(len(features) / LEGEND_COLUMNS)
    height = TOP + PLOT_HEIGHT + BOTTOM + legend_rows * LEGEND_ROW + 8
    base = TOP + PLOT_HEIGHT

    def x(i: int) -> float:
        return LEFT + step * (i + 0.5)

    def y(value: float) -> float:
        return base - PLOT_HEIGHT * min(max(value, 0.0), y_top) / y_top

    label = f"drift score of {count(len(features), 'feature')} over {count(n, 'batch')}"
    out = [
        f'<svg class="drift-chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}"'
        f' role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
    ]
    # Drifted batches: a shaded band behind the lines.
    for i, b in enumerate(batches):
        if b["drifted"]:
            names = ", ".join(sorted(b["drifted_columns"])) or "schema or missing values"
            out.append(
                f'<rect class="drifted-batch" x="{_fmt(LEFT + step * i)}" y="{TOP}" width="{_fmt(step)}"'
                f' height="{PLOT_HEIGHT}"><title>batch {first + i} drifted: {escape(names)}</title></rect>'
            )
    # Axes, grid and tick labels.
    for k in range(5):
        value = y_top * k / 4
        yy = _fmt(y(value))
        out.append(f'<line class="grid" x1="{LEFT}" y1="{yy}" x2="{WIDTH - RIGHT}" y2="{yy}"/>')
        out.append(f'<text class="tick" x="{LEFT - 6}" y="{yy}" text-anchor="end" dy="0.32em">{value:.3g}</text>')
    out.append(f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}"/>')
    out.append(f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}"/>')
    every = max(1, math.ceil(n / 20))
    for i, b in enumerate(batches):
        if i % every and i != n - 1:
            continue
        cls = "tick drifted" if b["drifted"] else "tick"
        out.append(
            f'<text class="{cls}" x="{_fmt(x(i))}" y="{base + 16}" text-anchor="middle">{first + i}'
            f"<title>{escape(b['current'])} at {escape(b['time'].strftime('%Y-%m-%d %H:%M:%S'))}</title></text>"
        )
    out.append(
        f'<text class="axis-label" x="{_fmt(LEFT + plot_w / 2)}" y="{base + 36}" text-anchor="middle">'
        "batch (oldest first; shaded: drift)</text>"
    )
    out.append(
        f'<text class="axis-label" x="14" y="{_fmt(TOP + PLOT_HEIGHT / 2)}" text-anchor="middle"'
        f' transform="rotate(-90 14 {_fmt(TOP + PLOT_HEIGHT / 2)})">score (PSI numeric, JS categorical)</text>'
    )
    # Thresholds: dashed, one per kind of score shown.
    for k, bound in enumerate(data["bounds"]):
        values = bound["levels"]
        if len(set(values)) == 1:
            points: list[tuple[float, float]] = [(LEFT, y(values[0])), (WIDTH - RIGHT, y(values[0]))]
        else:
            points = [(x(i), y(v)) for i, v in enumerate(values)]
        path = " ".join(f"{_fmt(px)},{_fmt(py)}" for px, py in points)
        text = f"{bound['label']} bound {values[-1]:g}"
        out.append(
            f'<polyline class="threshold threshold-{bound["key"]}" points="{path}">'
            f"<title>{escape(text)}</title></polyline>"
        )
        # Two bounds may lie close together: label the first at the right end, the second at the left.
        (lx, ly), anchor, dx = (points[-1], "end", -4) if k % 2 == 0 else (points[0], "start", 4)
        out.append(
            f'<text class="threshold-label" x="{_fmt(lx + dx)}" y="{_fmt(ly - 4)}" text-anchor="{anchor}">'
            f"{escape(text)}</text>"
        )
    # One path per feature; a batch without a score breaks the line.
    for j, name in enumerate(features):
        cls = f"c{j % SERIES_CLASSES}"
        commands, pen_down, dots = [], False, []
        for i, b in enumerate(batches):
            score = b["scores"][name]
            if score is None:
                pen_down = False
                continue
            commands.append(f"{'L' if pen_down else 'M'}{_fmt(x(i))},{_fmt(y(score))}")
            pen_down = True
            hit = name in b["drifted_columns"]
            tip = f"{name} · batch {first + i}: {score:.4g}{' (drift)' if hit else ''}"
            dots.append(
                f'<circle class="point {cls}{" hit" if hit else ""}" cx="{_fmt(x(i))}" cy="{_fmt(y(score))}"'
                f' r="{4.5 if hit else 3}"><title>{escape(tip)}</title></circle>'
            )
        out.append(
            '<g class="feature">'
            f'<path class="series {cls}" d="{" ".join(commands)}"><title>{escape(name)}</title></path>'
            + "".join(dots)
            + "</g>"
        )
    # The legend, below the plot.
    column_w = (WIDTH - LEFT - RIGHT) / LEGEND_COLUMNS
    for j, name in enumerate(features):
        row, col = divmod(j, LEGEND_COLUMNS)
        x0 = LEFT + col * column_w
        ly = base + BOTTOM + row * LEGEND_ROW
        cls = f"c{j % SERIES_CLASSES}"
        out.append(
            f'<g class="legend-item"><line class="series {cls}" x1="{_fmt(x0)}" y1="{ly}" x2="{_fmt(x0 + 18)}"'
            f' y2="{ly}"/><text class="legend" x="{_fmt(x0 + 24)}" y="{ly}" dy="0.32em">{escape(_short(name))}'
            f"<title>{escape(name)} ({escape(data['kinds'].get(name, 'other'))})</title></text></g>"
        )
    out.append("</svg>")
    return Markup("".join(out))
