"""The classification applier: tags facets become classifications, and new profiles are redacted.

Runs inside the ingest transaction after :mod:`facet_map` (so the event's column
lineage is already in ``column_edges``). A ``tags`` facet naming a
classification (``pii``, ``classification=phi``…) on the dataset or on a schema
field classifies that column (``*`` for the whole dataset); repeats change
nothing. A version written by this event whose columns are classified —
directly or inherited from upstream — has its stored profile, its quality
metrics and the profile facets inside the stored raw event reduced to counts,
so no raw value of a classified column is kept.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from datatrail.core.changes import canonical_json
from datatrail.core.privacy import classified_columns, redact_profile, redact_quality_metrics
from datatrail.store.sql import tables as t
from datatrail.store.sql.applied import Applied
from datatrail.store.sql.classifications import effective_classifications


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def apply(applied: Applied) -> None:
    rows: list[dict[str, Any]] = []
    for touched in applied.datasets:
        for column, labels in classified_columns(touched.change.facets).items():
            rows.extend(
                {
                    "dataset_id": touched.dataset_id,
                    "column_name": column,
                    "label": label,
                    "source": "tags",
                    "event_id": applied.event_id,
                    "created_at": applied.changes.event_time,
                }
                for label in sorted(labels)
            )
    applied.insert_ignore(t.classifications, rows)
    tx = applied.tx
    if rows:
        tx.put(("classified",), True)
    described = [
        (d, d.version_id) for d in applied.datasets if d.version_id is not None and d.change.version is not None
    ]
    if not described:
        return  # no version with a profile or statistics to redact
    anything = tx.get(("classified",))
    if anything is None:
        anything = tx.execute(select(t.classifications.c.dataset_id).limit(1)).first() is not None
        tx.put(("classified",), anything)  # true until the transaction ends: it holds the write lock
    if not anything:
        return  # nothing is classified anywhere: no lineage to walk (the common case)
    redacted: dict[tuple[str, str], dict[str, set[str]]] = {}
    v = t.versions.c
    for touched, version_id in described:
        classified = effective_classifications(tx, version_id)
        if not classified:
            continue
        row = tx.execute(select(v.profile, v.stats).where(v.id == touched.version_id)).first()
        if row is None:
            continue
        fill: dict[str, Any] = {}
        if row.profile is not None:
            fill["profile"] = redact_profile(_json(row.profile), classified)
        stats = _json(row.stats)
        if isinstance(stats, dict):
            fill["stats"] = {
                k: redact_quality_metrics(m, classified) if isinstance(m, dict) else m for k, m in stats.items()
            }
        if fill:
            tx.execute(t.versions.update().where(v.id == touched.version_id).values(**fill))
            tx.put(("vfill", touched.version_id), False)  # facet_map.py must read them again (PostgreSQL)
        redacted[(touched.change.namespace, touched.change.name)] = classified
    if redacted:
        _redact_event(applied, redacted)


def _redact_event(applied: Applied, redacted: dict[tuple[str, str], dict[str, set[str]]]) -> None:
    """Reduce the classified columns' statistics in the stored raw event (its hash, the idempotency key, stays)."""
    e = t.events.c
    payload = applied.tx.execute(select(e.payload).where(e.id == applied.event_id)).scalar()
    if payload is None:
        return
    event = json.loads(payload)
    items = [event.get("dataset"), *(event.get("inputs") or ()), *(event.get("outputs") or ())]
    for item in items:
        if not isinstance(item, dict):
            continue
        classified = redacted.get((item.get("namespace"), item.get("name")))  # type: ignore[arg-type]
        if not classified:
            continue
        for key in ("facets", "inputFacets", "outputFacets"):
            facets = item.get(key)
            if not isinstance(facets, dict):
                continue
            own = facets.get("datatrail_profile")
            if isinstance(own, dict) and isinstance(own.get("profile"), dict):
                own["profile"] = redact_profile(own["profile"], classified)
            dq = facets.get("dataQualityMetrics")
            if isinstance(dq, dict):
                facets["dataQualityMetrics"] = redact_quality_metrics(dq, classified)
    applied.tx.execute(t.events.update().where(e.id == applied.event_id).values(payload=canonical_json(event)))
