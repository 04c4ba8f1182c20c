"""The classifications a version's columns carry: its dataset's own, and those flowing down its lineage."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from datatrail.core.privacy import ALL_COLUMNS
from datatrail.store.sql import tables as t
from datatrail.store.sql.transaction import Executes

MAX_PROPAGATION = 50  # upstream steps followed to find inherited classifications


def effective_classifications(db: Executes, version_id: int) -> dict[str, set[str]]:
    """Direct classifications of the version's dataset, plus those flowing down from its producing run's
    inputs: along column lineage where the run reported it, else by column name (or ``*`` for every
    column when the name is not among the version's columns, or they are unknown)."""
    if db.execute(select(t.classifications.c.dataset_id).limit(1)).first() is None:
        return {}  # nothing is classified anywhere
    memo: dict[int, dict[str, set[str]]] = {}
    return _effective(db, version_id, memo, 0)


def _columns(profile: Any, schema: Any) -> set[str] | None:
    value = json.loads(profile) if isinstance(profile, str) else profile
    if isinstance(value, dict) and isinstance(value.get("columns"), list):
        return {str(c.get("name")) for c in value["columns"] if isinstance(c, dict)}
    fields = json.loads(schema) if isinstance(schema, str) else schema
    if isinstance(fields, list) and fields:
        return {str(f.get("name")) for f in fields if isinstance(f, dict)}
    return None


def _effective(db: Executes, vid: int, memo: dict[int, dict[str, set[str]]], depth: int) -> dict[str, set[str]]:
    if vid in memo:
        return memo[vid]
    memo[vid] = {}  # a cycle (which lineage should not have) ends here
    v, c, io = t.versions.c, t.classifications.c, t.run_io.c
    row = db.execute(select(v.dataset_id, v.run_pk, v.profile, v.schema).where(v.id == vid)).first()
    if row is None:
        return {}
    out: dict[str, set[str]] = {}
    for r in db.execute(select(c.column_name, c.label).where(c.dataset_id == row.dataset_id)):
        out.setdefault(r.column_name, set()).add(r.label)
    if row.run_pk is not None and depth < MAX_PROPAGATION:
        inputs = [
            r.version_id
            for r in db.execute(select(io.version_id).where(io.run_pk == row.run_pk, io.direction == t.INPUT))
            if r.version_id != vid
        ]
        columns = _columns(row.profile, row.schema)
        ce = t.column_edges.c
        for iv in inputs:
            upstream = _effective(db, iv, memo, depth + 1)
            if not upstream:
                continue
            edges = db.execute(
                select(ce.output_column, ce.input_column).where(ce.output_version_id == vid, ce.input_version_id == iv)
            ).all()
            if edges:
                everything = upstream.get(ALL_COLUMNS, set())
                for e in edges:
                    labels = upstream.get(e.input_column, set()) | everything
                    if labels and e.output_column != ALL_COLUMNS:
                        out.setdefault(e.output_column, set()).update(labels)
                continue
            for column, labels in upstream.items():
                same = column if columns is not None and (column in columns or column == ALL_COLUMNS) else ALL_COLUMNS
                out.setdefault(same, set()).update(labels)
    memo[vid] = out
    return out
