"""What changed between two versions: schema, row count, column statistics, files.

Works on what the store holds (profiles and manifests), so two versions are
compared without reading their data again.
"""

from __future__ import annotations

from typing import Any

from datatrail.model import FileEntry, Version

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
            if changes:
                out["columns"].append({"name": name, "changes": changes})
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
