"""What changed between two versions: schema, row count, column statistics, files.

Works on what the store holds (profiles and manifests), so two versions are
compared without reading their data again.
"""

from __future__ import annotations

import itertools
from typing import Any

from datatrail.core.model import FileEntry, Version

STATS = (
    "null_count",
    "null_fraction",
    "distinct_count",
    "min",
    "max",
    "mean",
    "std",
    "p5",
    "p25",
    "p50",
    "p75",
    "p95",
)
TABLE_STATS = ("row_count", "duplicate_rows", "missing_cells")


def _change(a: Any, b: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"a": a, "b": b}
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        out["change"] = b - a
        if a:
            out["relative"] = (b - a) / abs(a)
    return out


def _column_stats(column: dict[str, Any]) -> dict[str, Any]:
    stats = {k: column.get(k) for k in STATS[:7]}
    for k, v in (column.get("quantiles") or {}).items():
        stats[k] = v
    return stats


def _top_values(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    """How the most frequent values moved: values that appeared, disappeared or changed count."""
    top_a, top_b = a.get("top_values"), b.get("top_values")
    if not isinstance(top_a, list) or not isinstance(top_b, list):
        return None
    if max((t["count"] for t in (*top_a, *top_b)), default=0) <= 1:
        return None  # every value unique: the "top" values are arbitrary
    counts_a = {repr(t["value"]): t for t in top_a}
    counts_b = {repr(t["value"]): t for t in top_b}
    out = {
        "added": [counts_b[k] for k in counts_b if k not in counts_a],
        "removed": [counts_a[k] for k in counts_a if k not in counts_b],
        "changed": [
            {"value": counts_a[k]["value"], "a": counts_a[k]["count"], "b": counts_b[k]["count"]}
            for k in counts_a
            if k in counts_b and counts_a[k]["count"] != counts_b[k]["count"]
        ],
    }
    return out if any(out.values()) else None


def _mass(edges: list[float], counts: list[int], lo: float, hi: float) -> float:
    """The count a histogram holds between ``lo`` and ``hi`` (uniform within each bin)."""
    total = 0.0
    for left, right, count in zip(edges, edges[1:], counts, strict=False):
        width = right - left
        if width <= 0:
            total += count if lo <= left <= hi and (left < hi or hi == edges[-1]) else 0
            continue
        overlap = min(right, hi) - max(left, lo)
        if overlap > 0:
            total += count * overlap / width
    return total


def histogram_distance(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    """Total variation distance (0 same shape … 1 disjoint) of two histograms, rebinned on the union of edges."""
    edges_a, edges_b = a.get("edges") or [], b.get("edges") or []
    counts_a, counts_b = a.get("counts") or [], b.get("counts") or []
    n_a, n_b = sum(counts_a), sum(counts_b)
    if len(edges_a) < 2 or len(edges_b) < 2 or not n_a or not n_b:
        return None
    cuts = sorted({*edges_a, *edges_b})
    if len(cuts) < 2:
        return 0.0
    distance = 0.0
    for lo, hi in itertools.pairwise(cuts):
        distance += abs(_mass(edges_a, counts_a, lo, hi) / n_a - _mass(edges_b, counts_b, lo, hi) / n_b)
    return round(min(1.0, distance / 2), 6)


def _histogram(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any] | None:
    hist_a, hist_b = a.get("histogram"), b.get("histogram")
    if not isinstance(hist_a, dict) or not isinstance(hist_b, dict) or hist_a == hist_b:
        return None
    return {"a": hist_a, "b": hist_b, "distance": histogram_distance(hist_a, hist_b)}


def diff_versions(
    a: Version,
    b: Version,
    profile_a: dict[str, Any] | None,
    profile_b: dict[str, Any] | None,
    files_a: list[FileEntry],
    files_b: list[FileEntry],
) -> dict[str, Any]:
    """The differences from version ``a`` to version ``b`` as a JSON-ready dict.

    >>> diff_versions(v1, v2, p1, p2, [], [])["schema"]["added"]  # doctest: +SKIP
    [{'name': 'sex', 'type': 'string'}]
    """
    out: dict[str, Any] = {
        "a": {"ref": a.ref, "digest": str(a.digest) if a.digest else a.key},
        "b": {"ref": b.ref, "digest": str(b.digest) if b.digest else b.key},
        "same_content": a.digest is not None and a.digest == b.digest,
        "size": _change(a.size, b.size),
        "format": _change(a.format, b.format) if a.format != b.format else None,
        "profiled": profile_a is not None and profile_b is not None,
        "schema": None,
        "table": {},
        "columns": [],
        "files": None,
    }
    if profile_a is not None and profile_b is not None:
        cols_a = {c["name"]: c for c in profile_a.get("columns", [])}
        cols_b = {c["name"]: c for c in profile_b.get("columns", [])}
        out["schema"] = {
            "added": [{"name": n, "type": cols_b[n].get("type")} for n in cols_b if n not in cols_a],
            "removed": [{"name": n, "type": cols_a[n].get("type")} for n in cols_a if n not in cols_b],
            "retyped": [
                {"name": n, "a": cols_a[n].get("type"), "b": cols_b[n].get("type")}
                for n in cols_a
                if n in cols_b and cols_a[n].get("type") != cols_b[n].get("type")
            ],
        }
        out["table"] = {k: _change(profile_a.get(k), profile_b.get(k)) for k in TABLE_STATS}
        for name in (n for n in cols_a if n in cols_b):
            sa, sb = _column_stats(cols_a[name]), _column_stats(cols_b[name])
            changes = {k: _change(sa[k], sb.get(k)) for k in sa if sa[k] != sb.get(k)}
            changes.update({k: _change(None, v) for k, v in sb.items() if k not in sa and v is not None})
            entry: dict[str, Any] = {"name": name, "changes": changes}
            top = _top_values(cols_a[name], cols_b[name])
            if top is not None:
                entry["top_values"] = top
            histogram = _histogram(cols_a[name], cols_b[name])
            if histogram is not None:
                entry["histogram"] = histogram
            if changes or top is not None or histogram is not None:
                out["columns"].append(entry)
    if a.is_directory or b.is_directory:
        by_a = {f.path: f for f in files_a}
        by_b = {f.path: f for f in files_b}
        out["files"] = {
            "added": sorted(p for p in by_b if p not in by_a),
            "removed": sorted(p for p in by_a if p not in by_b),
            "changed": sorted(p for p in by_a if p in by_b and by_a[p].digest != by_b[p].digest),
            "unchanged": sum(1 for p in by_a if p in by_b and by_a[p].digest == by_b[p].digest),
        }
    return out
