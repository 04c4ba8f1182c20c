"""OpenLineage facets for profiles and check results, both ways.

A profile goes out as the standard ``schema`` and ``dataQualityMetrics``
facets (for any OpenLineage consumer) beside ``datatrail_profile`` (the whole
profile); check results as the standard ``dataQualityAssertions`` facet beside
``datatrail_checks`` (with observed values, who and when). Parsing prefers
datatrail's own facets and falls back to the standard ones, so profiles and
assertions sent by other producers are kept too. No pyarrow here: this module
is on the path of every event.
"""

from __future__ import annotations

import json
from typing import Any

from datatrail.core.errors import InvalidInput

OL = "https://openlineage.io/spec/facets/{version}/{name}.json#/$defs/{name}"
OWN = "https://github.com/datatrail/datatrail/blob/main/spec/facets/1-0-0/{name}.json#/$defs/{name}"
SEVERITIES = ("error", "warn")


def _base(producer: str, url: str) -> dict[str, Any]:
    return {"_producer": producer, "_schemaURL": url}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def profile_facets(profile: dict[str, Any], producer: str, size: int | None, file_count: int | None) -> dict[str, Any]:
    """``schema``, ``dataQualityMetrics`` and ``datatrail_profile`` facets for one profile."""
    columns = profile.get("columns", [])
    fields = [{"name": c["name"], "type": c["type"], "ordinal_position": i} for i, c in enumerate(columns, start=1)]
    metrics: dict[str, Any] = {}
    for c in columns:
        m: dict[str, Any] = {"nullCount": c["null_count"], "count": profile["row_count"] - c["null_count"]}
        if c.get("distinct_count") is not None:
            m["distinctCount"] = c["distinct_count"]
        for key in ("min", "max"):
            if _number(c.get(key)):
                m[key] = c[key]
        if _number(c.get("mean")):
            m["sum"] = c["mean"] * m["count"]
        if c.get("quantiles"):
            m["quantiles"] = {str(int(k[1:]) / 100): v for k, v in c["quantiles"].items() if _number(v)}
        metrics[c["name"]] = m
    dq: dict[str, Any] = {"rowCount": profile["row_count"], "columnMetrics": metrics}
    if size is not None:
        dq["bytes"] = size
    if file_count is not None:
        dq["fileCount"] = file_count
    return {
        "schema": {**_base(producer, OL.format(version="1-2-0", name="SchemaDatasetFacet")), "fields": fields},
        "dataQualityMetrics": {
            **_base(producer, OL.format(version="1-0-0", name="DataQualityMetricsDatasetFacet")),
            **dq,
        },
        "datatrail_profile": {**_base(producer, OWN.format(name="DatatrailProfileFacet")), "profile": profile},
    }


def _named(column: Any) -> bool:
    return isinstance(column, dict) and isinstance(column.get("name"), str)


def parse_profile(facets: dict[str, Any], where: str) -> dict[str, Any] | None:
    """A profile from ``datatrail_profile``, else a partial one from ``schema`` and ``dataQualityMetrics``."""
    own = facets.get("datatrail_profile")
    if isinstance(own, dict):
        profile = own.get("profile")
        columns = profile.get("columns") if isinstance(profile, dict) else None
        if not isinstance(profile, dict) or not isinstance(columns, list) or not all(_named(c) for c in columns):
            msg = f"invalid event: {where}.facets.datatrail_profile.profile must be an object with a 'columns' array"
            raise InvalidInput(msg)
        return profile
    schema = facets.get("schema")
    dq = facets.get("dataQualityMetrics")
    if not isinstance(schema, dict) and not isinstance(dq, dict):
        return None
    fields = schema.get("fields") if isinstance(schema, dict) else None
    metrics = dq.get("columnMetrics") if isinstance(dq, dict) else None
    metrics = metrics if isinstance(metrics, dict) else {}
    names = [f.get("name") for f in fields if isinstance(f, dict)] if isinstance(fields, list) else list(metrics)
    types = {f.get("name"): f.get("type") for f in fields if isinstance(f, dict)} if isinstance(fields, list) else {}
    row_count = dq.get("rowCount") if isinstance(dq, dict) else None
    columns = []
    for name in names:
        if not isinstance(name, str):
            continue
        m: dict[str, Any] = metrics[name] if isinstance(metrics.get(name), dict) else {}
        columns.append(
            {
                "name": name,
                "type": types.get(name),
                "null_count": m.get("nullCount"),
                "distinct_count": m.get("distinctCount"),
                "min": m.get("min"),
                "max": m.get("max"),
            }
        )
    return {"row_count": row_count if isinstance(row_count, int) else None, "columns": columns, "partial": True}


def check_facets(results: list[dict[str, Any]], producer: str) -> dict[str, Any]:
    """``dataQualityAssertions`` and ``datatrail_checks`` facets for check results."""
    assertions = []
    for r in results:
        a: dict[str, Any] = {"assertion": r["rule"], "success": r["success"], "severity": r["severity"]}
        if r.get("column") is not None:
            a["column"] = r["column"]
        if r.get("name"):
            a["name"] = r["name"]
        if r.get("expected") is not None:
            a["expected"] = str(r["expected"])
        if r.get("observed") is not None:
            a["actual"] = json.dumps(r["observed"]) if not isinstance(r["observed"], str) else r["observed"]
        assertions.append(a)
    return {
        "dataQualityAssertions": {
            **_base(producer, OL.format(version="1-1-0", name="DataQualityAssertionsDatasetFacet")),
            "assertions": assertions,
        },
        "datatrail_checks": {**_base(producer, OWN.format(name="DatatrailChecksFacet")), "results": results},
    }


def parse_checks(facets: dict[str, Any], where: str) -> tuple[dict[str, Any], ...]:
    """Check results from ``datatrail_checks``, else from the standard ``dataQualityAssertions``."""
    own = facets.get("datatrail_checks")
    if isinstance(own, dict):
        items, source = own.get("results"), "datatrail_checks.results"
    elif isinstance(facets.get("dataQualityAssertions"), dict):
        items, source = facets["dataQualityAssertions"].get("assertions"), "dataQualityAssertions.assertions"
    else:
        return ()
    if not isinstance(items, list):
        msg = f"invalid event: {where}.facets.{source} must be an array"
        raise InvalidInput(msg)
    out = []
    for i, item in enumerate(items):
        rule = item.get("rule", item.get("assertion")) if isinstance(item, dict) else None
        if not isinstance(rule, str) or not isinstance(item.get("success"), bool):
            msg = f"invalid event: {where}.facets.{source}[{i}] needs a string rule/assertion and a boolean success"
            raise InvalidInput(msg)
        assert isinstance(item, dict)
        severity = item.get("severity") if item.get("severity") in SEVERITIES else "error"
        column = item.get("column")
        out.append(
            {
                "rule": rule[:200],
                "name": item.get("name") if isinstance(item.get("name"), str) else None,
                "column": column if isinstance(column, str) else None,
                "severity": severity,
                "success": item["success"],
                "observed": item.get("observed", item.get("actual")),
                "expected": None if item.get("expected") is None else str(item["expected"]),
                "message": item.get("message") if isinstance(item.get("message"), str) else None,
                "checked_by": item.get("checked_by") if isinstance(item.get("checked_by"), str) else None,
            }
        )
    return tuple(out)
