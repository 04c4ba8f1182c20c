"""Standard OpenLineage facets mapped onto the model, inside the ingest transaction.

- Dataset-level facets (``dataSource``, ``ownership``, ``tags``, ``symlinks``,
  ``documentation``, ``storage``, ``catalog``, ``datasetType``, ``hierarchy``,
  ``lifecycleStateChange``) and any custom facet (datatrail's own excepted) go
  to ``datasets.facets`` (``documentation``'s description is also the dataset's
  or job's ``description``); job facets (``sourceCodeLocation``, ``sourceCode``,
  ``sql``, ``jobType``, ``documentation``, ``ownership``, ``tags``…) to
  ``jobs.facets``; run facets (``nominalTime``, ``processing_engine``,
  ``errorMessage``, ``externalQuery``, ``tags``…) to ``runs.facets``. Each
  entry keeps the event time it comes from, and an entry is replaced only by a
  facet of the same name from a later event, so the result does not depend on
  arrival order.
- Version-level facets fill the version once (a version is immutable): the
  ``schema`` facet's fields go to ``versions.schema``; ``dataQualityMetrics``
  (dataset or input facet) and ``outputStatistics`` (output facet) to
  ``versions.stats``.
- ``columnLineage`` on an output becomes ``column_edges`` rows from the output
  version's columns to the input versions' columns. An input dataset resolves to
  the version this run read, else the latest version at the event's time. The
  facet's ``dataset`` list (columns that affect the whole output: filters, joins,
  grouping) is stored with the output column ``*``.
- ``lifecycleStateChange``: the latest state is ``datasets.lifecycle``; ``DROP``
  soft-deletes the dataset (``deleted_at``, hidden from lists, history kept) and a
  later ``CREATE``/``OVERWRITE`` brings it back. ``RENAME`` with a
  ``previousIdentifier`` links the two names: the previous dataset becomes
  ``RENAMED`` (hidden from lists like a dropped one, its history kept) with a
  ``renamedTo`` facet naming the new one, and looking up a version of the old
  name that does not exist says where it went. The same latest-wins rule holds
  on the previous dataset, so a later ``CREATE`` of the old name brings it back.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select

from datatrail.core.changes import canonical_json
from datatrail.core.errors import InvalidInput
from datatrail.core.model import validate_name, validate_namespace
from datatrail.core.times import stored_time
from datatrail.store.sql import tables as t
from datatrail.store.sql.applied import Applied, Touched
from datatrail.store.sql.rows import RENAMED_AWAY  # datatrail's, on the dataset under its previous name
from datatrail.store.sql.statements import NS_DATASETS_COUNTED, RUN_FACETS, VERSION_FILL, RunRow

# Facets of a dataset as a whole (not of one version).
DATASET_FACETS = frozenset(
    {
        "dataSource",
        "ownership",
        "tags",
        "symlinks",
        "documentation",
        "storage",
        "catalog",
        "datasetType",
        "hierarchy",
        "lifecycleStateChange",
    }
)
VERSION_FACETS = frozenset({"schema", "version", "columnLineage", "dataQualityMetrics", "dataQualityAssertions"})
# Run facets that are already columns of `runs` (or datatrail's own) are not repeated in runs.facets.
RUN_SKIP = frozenset({"parent"})
# A custom facet larger than this (Spark's logical plans, say) stays only in the raw event.
MAX_CUSTOM_FACET = 16_384
WHOLE_DATASET = "*"
DROPPED = "DROP"
RENAMED_FROM = "RENAME"  # the spec's state, on the dataset under its new name

HIDDEN = frozenset({DROPPED, RENAMED_AWAY})  # states that hide a dataset from lists


def apply(applied: Applied) -> None:
    changes = applied.changes
    when = changes.event_time
    for touched in applied.datasets:
        facets = touched.change.facets
        dataset_level = {k: v for k, v in facets.items() if _keep(k, v, standard=DATASET_FACETS)}
        if dataset_level:
            _merge_facets(applied, t.datasets, touched.dataset_id, dataset_level, when)
        lifecycle = facets.get("lifecycleStateChange")
        if isinstance(lifecycle, dict) and isinstance(lifecycle.get("lifecycleStateChange"), str):
            state = lifecycle["lifecycleStateChange"][:32]
            _set_lifecycle(applied, touched.dataset_id, state, when)
            if state == RENAMED_FROM:
                _rename(applied, touched, lifecycle.get("previousIdentifier"), when)
        if touched.version_id is not None:
            _fill_version(applied, touched)
    if changes.run is not None and applied.run_pk is not None:
        rc = changes.run
        job_facets = {k: v for k, v in rc.job_facets.items() if _keep(k, v)}
        if job_facets:
            run = applied.tx.get(("run", rc.run_id))  # as apply.py left it
            job_id = (
                run.job_id
                if isinstance(run, RunRow)
                else applied.tx.execute(select(t.runs.c.job_id).where(t.runs.c.pk == applied.run_pk)).scalar_one()
            )
            _merge_facets(applied, t.jobs, job_id, job_facets, when)
        run_facets = {k: v for k, v in rc.run_facets.items() if k not in RUN_SKIP and _keep(k, v)}
        if run_facets:
            _merge_facets(applied, t.runs, applied.run_pk, run_facets, when, key=t.runs.c.pk)
    _column_edges(applied)


def _keep(name: str, value: Any, standard: frozenset[str] | None = None) -> bool:
    """Whether a facet belongs in the derived facet map (datatrail's own facets have their own columns)."""
    if name.startswith("datatrail_") or not isinstance(value, dict):
        return False
    if standard is not None and name in VERSION_FACETS:
        return False
    if value.get("_deleted") is True:
        return True  # a deletion marker: the merge removes the facet
    if standard is not None and name in standard:
        return True
    return len(canonical_json(value)) <= MAX_CUSTOM_FACET


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _merge_facets(
    applied: Applied, table: Any, row_id: int, incoming: dict[str, Any], when: datetime, key: Any = None
) -> None:
    """Merge facets into ``table.facets``; per facet name, the one from the latest event wins."""
    key = table.c.id if key is None else key
    tx = applied.tx
    # PostgreSQL: a run's facets as prefetch.py read them (or apply.py inserted it), kept up to date below.
    cached = tx.get(("facets", table.name, row_id))
    if cached is None:
        row = tx.execute(select(table.c.facets).where(key == row_id)).first()
    current: dict[str, Any] = dict(cached) if cached is not None else dict(_loads(row.facets) or {}) if row else {}
    stamp = when.isoformat()
    changed = False
    for name, value in incoming.items():
        old = current.get(name)
        if isinstance(old, dict) and old.get("time", "") > stamp:
            continue
        entry = {"time": stamp, "value": None if value.get("_deleted") is True else value}
        if old != entry:
            current[name] = entry
            changed = True
    if not changed:
        return
    if cached is not None:  # a run's: no description, no facets_time
        tx.put(("facets", table.name, row_id), current)
        tx.defer(RUN_FACETS, table.name, {"run_pk": row_id, "facets": current})
        return
    values: dict[str, Any] = {"facets": current}
    if "documentation" in incoming and "description" in table.c:
        # The documentation facet is the dataset's or job's description (as in Marquez); the latest event wins.
        doc = (current.get("documentation") or {}).get("value")
        text = doc.get("description") if isinstance(doc, dict) else None
        values["description"] = text if isinstance(text, str) else None
    if "facets_time" in table.c:
        latest = max((e["time"] for e in current.values() if isinstance(e, dict) and "time" in e), default=stamp)
        values["facets_time"] = stored_time(latest)
    tx.execute(table.update().where(key == row_id).values(**values))


def _rename(applied: Applied, touched: Touched, previous: Any, when: datetime) -> None:
    """The dataset was renamed from ``previous``: that one is RENAMED, pointing here."""
    if previous is None:
        return  # a RENAME that does not say from what: only the facet is kept
    where = "lifecycleStateChange.previousIdentifier"
    if not (isinstance(previous, dict) and all(isinstance(previous.get(k), str) for k in ("namespace", "name"))):
        msg = f"invalid event: {where} must be {{namespace, name}}, the dataset's name before the rename"
        raise InvalidInput(msg)
    namespace = validate_namespace(previous["namespace"])
    name = validate_name(previous["name"], f"{where}.name")
    here = {"namespace": touched.change.namespace, "name": touched.change.name}
    if (namespace, name) == (here["namespace"], here["name"]) or applied.dataset_of is None:
        return
    previous_id = applied.dataset_of(namespace, name)
    _merge_facets(
        applied,
        t.datasets,
        previous_id,
        {"lifecycleStateChange": {"lifecycleStateChange": RENAMED_AWAY, "renamedTo": here}, "renamedTo": here},
        when,
    )
    _set_lifecycle(applied, previous_id, RENAMED_AWAY, when)


def _set_lifecycle(applied: Applied, dataset_id: int, state: str, when: datetime) -> None:
    """The latest lifecycle state wins (by event time); DROP hides the dataset, anything later shows it again."""
    d = t.datasets.c
    row = applied.tx.execute(select(d.facets, d.deleted_at, d.namespace_id).where(d.id == dataset_id)).first()
    facets = dict(_loads(row.facets) or {}) if row is not None else {}
    entry = facets.get("lifecycleStateChange")
    if isinstance(entry, dict) and entry.get("time", "") > when.isoformat():
        return
    hidden = state in HIDDEN
    applied.tx.execute(
        t.datasets.update().where(d.id == dataset_id).values(lifecycle=state, deleted_at=when if hidden else None)
    )
    if row is not None and (row.deleted_at is None) == hidden:  # listed before and not now, or the reverse
        applied.tx.defer(NS_DATASETS_COUNTED, "namespaces", {"ns": row.namespace_id, "by": -1 if hidden else 1})


def _fill_version(applied: Applied, touched: Touched) -> None:
    """Fill the version's schema and statistics from the first event that carries them."""
    v = t.versions.c
    facets, io = touched.change.facets, touched.change.io_facets
    schema = facets.get("schema")
    stats: dict[str, Any] = {}
    for source in (facets, io):
        if isinstance(source.get("dataQualityMetrics"), dict):
            stats["dataQualityMetrics"] = _strip(source["dataQualityMetrics"])
    if isinstance(io.get("outputStatistics"), dict):
        stats["outputStatistics"] = _strip(io["outputStatistics"])
    fields = schema.get("fields") if isinstance(schema, dict) else None
    if not isinstance(fields, list) and not stats:
        return
    tx = applied.tx
    # PostgreSQL: the version's schema and statistics as apply.py inserted or prefetch.py read them.
    cached = tx.get(("vfill", touched.version_id))
    if cached:
        schema_now, stats_now = cached
    else:
        row = tx.execute(select(v.schema, v.stats).where(v.id == touched.version_id)).first()
        assert row is not None
        schema_now, stats_now = row.schema, row.stats
    values: dict[str, Any] = {}
    if isinstance(fields, list) and schema_now is None:
        values["schema"] = fields
    if stats:
        current = dict(_loads(stats_now) or {})
        merged = {**stats, **current}  # what is there stays: the version is immutable
        if merged != current:
            values["stats"] = merged
    if values and cached:
        tx.put(("vfill", touched.version_id), (values.get("schema", schema_now), values.get("stats", stats_now)))
        tx.defer(VERSION_FILL, "versions", {"version_id": touched.version_id, **values})
    elif values:
        tx.execute(t.versions.update().where(v.id == touched.version_id).values(**values))


def _strip(facet: dict[str, Any]) -> dict[str, Any]:
    return {k: val for k, val in facet.items() if not k.startswith("_")}


def _column_edges(applied: Applied) -> None:
    inputs = {
        (x.change.namespace, x.change.name): x.version_id
        for x in applied.datasets
        if x.change.role == "input" and x.version_id is not None
    }
    rows: list[dict[str, Any]] = []
    for touched in applied.datasets:
        facet = touched.change.facets.get("columnLineage")
        if touched.version_id is None or not isinstance(facet, dict):
            continue
        fields = facet.get("fields")
        pairs: list[tuple[str, Any, Any]] = []
        if isinstance(fields, dict):
            for column, spec in fields.items():
                if isinstance(spec, dict) and isinstance(spec.get("inputFields"), list):
                    legacy = {k: spec[k] for k in ("transformationType", "transformationDescription") if k in spec}
                    pairs.extend((column, item, legacy) for item in spec["inputFields"])
        if isinstance(facet.get("dataset"), list):
            pairs.extend((WHOLE_DATASET, item, {}) for item in facet["dataset"])
        for column, item, legacy in pairs:
            if not isinstance(item, dict):
                continue
            ns, name, field = item.get("namespace"), item.get("name"), item.get("field")
            if not (isinstance(ns, str) and isinstance(name, str) and isinstance(field, str)):
                continue
            source = inputs.get((ns, name)) or _version_at(applied, ns, name)
            if source is None:
                continue
            transformations = item.get("transformations")
            if not isinstance(transformations, list):
                transformations = [legacy] if legacy else None
            rows.append(
                {
                    "output_version_id": touched.version_id,
                    "output_column": column[:1000],
                    "input_version_id": source,
                    "input_column": field[:1000],
                    "transformations": transformations
                    if isinstance(transformations, list)
                    else ([legacy] if legacy else None),
                    "run_pk": applied.run_pk,
                }
            )
    unique = {(r["output_version_id"], r["output_column"], r["input_version_id"], r["input_column"]): r for r in rows}
    applied.insert_ignore(t.column_edges, list(unique.values()))


def _version_at(applied: Applied, namespace: str, name: str) -> int | None:
    """The latest version of a dataset at the event's time, else its latest version."""
    v, d, n = t.versions.c, t.datasets.c, t.namespaces.c
    base = (
        select(v.id)
        .join(t.datasets, d.id == v.dataset_id)
        .join(t.namespaces, n.id == d.namespace_id)
        .where(n.name == namespace, d.name == name)
        .order_by(v.number.desc())
        .limit(1)
    )
    found = applied.tx.execute(base.where(v.created_at <= applied.changes.event_time)).scalar()
    if found is None:
        found = applied.tx.execute(base).scalar()
    return None if found is None else int(found)
