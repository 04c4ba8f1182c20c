"""Column classifications (pii, phi…): reading them from OpenLineage tags, and redacting profiles.

A classified column's profile keeps its counts (nulls, distinct values, NaNs)
and loses everything made of its values: min, max, mean, std, quantiles,
histogram, top values and text lengths. ``*`` classifies every column.

>>> p = {"columns": [{"name": "email", "min": "a@x", "null_count": 0, "top_values": [{"value": "a@x", "count": 2}]}]}
>>> redact_profile(p, {"email": {"pii"}})["columns"][0]
{'name': 'email', 'null_count': 0, 'classified': ['pii'], 'redacted': True}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from datatrail.core.errors import InvalidInput

ALL_COLUMNS = "*"
# Tag keys that name a classification in their value (classification=pii) …
_KEY_HOLDS_LABEL = {"classification", "classifications", "sensitivity", "privacy", "datatrail.classification"}
# … and tag keys that are the classification themselves (pii=true).
LABELS = {"pii", "phi", "pci", "sensitive", "confidential", "secret", "personal"}
_FALSE = {"false", "no", "0", "none", "off"}
_LABEL = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
# Counts survive redaction; everything else in a column's profile is made of values.
_KEEP = (
    "name",
    "type",
    "nullable",
    "null_count",
    "null_fraction",
    "distinct_count",
    "distinct_approximate",
    "nan_count",
)


def check_label(label: str) -> str:
    value = (label or "").strip().lower()
    if not _LABEL.match(value):
        msg = f"invalid classification {label!r}: use a short lower-case word such as pii, phi or confidential"
        raise InvalidInput(msg)
    return value


def labels_from_tag(tag: Mapping[str, Any]) -> str | None:
    """The classification an OpenLineage tag names, or None (``{"key": "pii", "value": "true"}``,
    ``{"key": "classification", "value": "PII"}``)."""
    key = str(tag.get("key") or "").strip().lower()
    value = str(tag.get("value") if tag.get("value") is not None else "").strip().lower()
    if key in _KEY_HOLDS_LABEL and value and _LABEL.match(value):
        return value
    if key in LABELS and value not in _FALSE:
        return key
    return None


def classified_columns(facets: Mapping[str, Any]) -> dict[str, set[str]]:
    """Column → classifications named by a dataset's ``tags`` facet (a tag's ``field``, else the whole
    dataset as ``*``) and by ``tags`` on the ``schema`` facet's fields (nested fields as ``a.b``)."""
    found: dict[str, set[str]] = {}
    tags = facets.get("tags")
    if isinstance(tags, Mapping):
        for tag in tags.get("tags") or ():
            if isinstance(tag, Mapping) and (label := labels_from_tag(tag)):
                column = tag.get("field") or ALL_COLUMNS
                found.setdefault(str(column), set()).add(label)
    schema = facets.get("schema")
    if isinstance(schema, Mapping):
        _schema_tags(schema.get("fields") or (), "", found)
    return found


def _schema_tags(fields: Iterable[Any], prefix: str, found: dict[str, set[str]]) -> None:
    for f in fields:
        if not isinstance(f, Mapping) or not isinstance(f.get("name"), str):
            continue
        name = prefix + f["name"]
        for tag in f.get("tags") or ():
            if isinstance(tag, Mapping) and (label := labels_from_tag(tag)):
                found.setdefault(name, set()).add(label)
        if f.get("fields"):
            _schema_tags(f["fields"], name + ".", found)


def redact_column(column: Mapping[str, Any], labels: Iterable[str]) -> dict[str, Any]:
    out = {k: column[k] for k in _KEEP if k in column}
    out["classified"] = sorted(set(labels))
    out["redacted"] = True
    return out


def redact_profile(profile: Mapping[str, Any] | None, classified: Mapping[str, set[str]]) -> dict[str, Any] | None:
    """The profile with every classified column reduced to its counts (``*`` covers all columns)."""
    if profile is None or not classified:
        return dict(profile) if profile is not None else None
    everything = classified.get(ALL_COLUMNS, set())
    columns = []
    for column in profile.get("columns") or ():
        labels = set(classified.get(column.get("name"), set())) | everything
        columns.append(redact_column(column, labels) if labels else column)
    return {**profile, "columns": columns}


def redact_quality_metrics(metrics: Mapping[str, Any], classified: Mapping[str, set[str]]) -> dict[str, Any]:
    """A ``dataQualityMetrics`` facet with the value statistics of classified columns removed."""
    everything = ALL_COLUMNS in classified
    out = dict(metrics)
    cols = metrics.get("columnMetrics")
    if isinstance(cols, Mapping):
        out["columnMetrics"] = {
            name: (
                {k: v for k, v in m.items() if k in ("nullCount", "distinctCount", "count")}
                if (everything or name in classified) and isinstance(m, Mapping)
                else m
            )
            for name, m in cols.items()
        }
    return out


Classified = Mapping[str, "set[str] | list[str]"]
"""Column → labels (``*``: every column)."""
_DRIFT_KEEP = ("name", "type", "kind", "missing", "psi", "ks", "ks_pvalue", "js", "chi2", "dof", "chi2_pvalue")


def _labels(classified: Classified, column: Any) -> set[str]:
    return set(classified.get(str(column), ())) | set(classified.get(ALL_COLUMNS, ()))


def _sets(classified: Classified) -> dict[str, set[str]]:
    return {k: set(v) for k, v in classified.items()}


def redact_checks(results: Iterable[Mapping[str, Any]], classified: Classified) -> list[dict[str, Any]]:
    """Check results (as dicts) with the observed values and messages of classified columns removed."""
    out = []
    for r in results:
        item = dict(r)
        if classified and r.get("column") is not None and _labels(classified, r.get("column")):
            item["observed"] = None
            item["message"] = None
            item["redacted"] = True
        out.append(item)
    return out


def redact_facets(facets: Mapping[str, Any], classified: Classified) -> dict[str, Any]:
    """A dataset's facets with the values of classified columns removed: ``dataQualityMetrics``,
    ``datatrail_profile`` and ``datatrail_checks`` (the facets that carry column values)."""
    if not classified:
        return dict(facets)
    out = dict(facets)
    sets = _sets(classified)
    dq = facets.get("dataQualityMetrics")
    if isinstance(dq, Mapping):
        out["dataQualityMetrics"] = redact_quality_metrics(dq, sets)
    own = facets.get("datatrail_profile")
    if isinstance(own, Mapping) and isinstance(own.get("profile"), Mapping):
        out["datatrail_profile"] = {**own, "profile": redact_profile(own["profile"], sets)}
    checks = facets.get("datatrail_checks")
    if isinstance(checks, Mapping) and isinstance(checks.get("results"), list):
        results = [r for r in checks["results"] if isinstance(r, Mapping)]
        out["datatrail_checks"] = {**checks, "results": redact_checks(results, classified)}
    return out


def redact_description(described: Mapping[str, Any], classified: Classified) -> dict[str, Any]:
    """What producers said of a version (``describe``), with the statistics of classified columns removed."""
    out = dict(described)
    stats = described.get("stats")
    if classified and isinstance(stats, Mapping):
        out["stats"] = redact_facets(stats, classified)
    return out


def redact_drift_column(column: Mapping[str, Any], classified: Classified) -> dict[str, Any]:
    """A drift report's column: for a classified one, only the distances between distributions, no values."""
    if not classified or not _labels(classified, column.get("name")):
        return dict(column)
    kept = {k: column[k] for k in _DRIFT_KEEP if k in column}
    return {**kept, "drifted": column.get("drifted"), "reasons": column.get("reasons"), "redacted": True}


def redact_drift_report(report: Mapping[str, Any], classified: Classified) -> dict[str, Any]:
    """A stored drift report (its ``columns``) with the classified columns reduced to distances."""
    columns = report.get("columns")
    if not classified or not isinstance(columns, list):
        return dict(report)
    return {**report, "columns": [redact_drift_column(c, classified) for c in columns if isinstance(c, Mapping)]}


def redact_event(event: Mapping[str, Any], classified_of: Any) -> dict[str, Any]:
    """A raw OpenLineage event with the column values of classified datasets removed from its facets.

    ``classified_of(namespace, name, version_key)`` gives the classifications of the dataset
    version an entry names (the key may be None).
    """
    out = dict(event)
    for key in ("inputs", "outputs"):
        items = event.get(key)
        if isinstance(items, list):
            out[key] = [_redact_entry(item, classified_of) for item in items]
    if isinstance(event.get("dataset"), Mapping):
        out["dataset"] = _redact_entry(event["dataset"], classified_of)
    return out


def _redact_entry(item: Any, classified_of: Any) -> Any:
    if not isinstance(item, Mapping) or not isinstance(item.get("namespace"), str):
        return item
    facets = item.get("facets") if isinstance(item.get("facets"), Mapping) else {}
    version = facets.get("version") if isinstance(facets, Mapping) else None
    key = version.get("datasetVersion") if isinstance(version, Mapping) else None
    classified = classified_of(item["namespace"], str(item.get("name", "")), key if isinstance(key, str) else None)
    if not classified:
        return item
    out = dict(item)
    if isinstance(item.get("facets"), Mapping):
        out["facets"] = redact_facets(item["facets"], classified)
    for io in ("inputFacets", "outputFacets"):
        if isinstance(item.get(io), Mapping):
            out[io] = redact_facets(item[io], classified)
    return out
