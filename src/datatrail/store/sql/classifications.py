"""The classifications a version's columns carry: its dataset's own, and those flowing down its lineage.

One walk (:func:`_effective`) answers both ways of asking: :func:`effective_classifications` reads what
it needs of one version as it goes (a few statements per version upstream), and
:func:`effective_classifications_of` first reads, level by level, everything upstream of many versions
(a page of a listing) in a few statements per level, then walks each version over what it read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy import select

from datatrail.core.privacy import ALL_COLUMNS
from datatrail.store.sql import tables as t
from datatrail.store.sql.queries import among, batch_size
from datatrail.store.sql.transaction import Executes

MAX_PROPAGATION = 50  # upstream steps followed to find inherited classifications
CHUNK = 500  # ids per IN (...) list


class _Source(Protocol):
    """What the walk reads of a version: its row, its dataset's own labels, its run's inputs, column edges."""

    def row(self, vid: int) -> Any: ...

    def labels(self, dataset_id: int) -> Iterable[tuple[str, str]]: ...

    def inputs(self, run_pk: int) -> list[int]: ...

    def edges(self, vid: int, iv: int) -> list[tuple[str, str]]: ...


def anything_classified(db: Executes) -> bool:
    return db.execute(select(t.classifications.c.dataset_id).limit(1)).first() is not None


def effective_classifications(db: Executes, version_id: int) -> dict[str, set[str]]:
    """Direct classifications of the version's dataset, plus those flowing down from its producing run's
    inputs: along column lineage where the run reported it, else by column name (or ``*`` for every
    column when the name is not among the version's columns, or they are unknown)."""
    if not anything_classified(db):
        return {}  # nothing is classified anywhere
    return _effective(_Reading(db), version_id, {}, 0)


def effective_classifications_of(db: Executes, version_ids: Sequence[int]) -> dict[int, dict[str, set[str]]]:
    """:func:`effective_classifications` of each version, the same answers, read in a number of statements
    that grows with the depth of the lineage walked (at most ``MAX_PROPAGATION`` levels), not the versions."""
    if not version_ids or not anything_classified(db):
        return {vid: {} for vid in version_ids}
    source = _Prefetched(db, version_ids)
    return {vid: _effective(source, vid, {}, 0) for vid in version_ids}


def _columns(profile: Any, schema: Any) -> set[str] | None:
    value = json.loads(profile) if isinstance(profile, str) else profile
    if isinstance(value, dict) and isinstance(value.get("columns"), list):
        return {str(c.get("name")) for c in value["columns"] if isinstance(c, dict)}
    fields = json.loads(schema) if isinstance(schema, str) else schema
    if isinstance(fields, list) and fields:
        return {str(f.get("name")) for f in fields if isinstance(f, dict)}
    return None


def _effective(source: _Source, vid: int, memo: dict[int, dict[str, set[str]]], depth: int) -> dict[str, set[str]]:
    if vid in memo:
        return memo[vid]
    memo[vid] = {}  # a cycle (which lineage should not have) ends here
    row = source.row(vid)
    if row is None:
        return {}
    out: dict[str, set[str]] = {}
    for column, label in source.labels(row.dataset_id):
        out.setdefault(column, set()).add(label)
    if row.run_pk is not None and depth < MAX_PROPAGATION:
        inputs = [iv for iv in source.inputs(row.run_pk) if iv != vid]
        columns = _columns(row.profile, row.schema)
        for iv in inputs:
            upstream = _effective(source, iv, memo, depth + 1)
            if not upstream:
                continue
            edges = source.edges(vid, iv)
            if edges:
                everything = upstream.get(ALL_COLUMNS, set())
                for output_column, input_column in edges:
                    labels = upstream.get(input_column, set()) | everything
                    if labels and output_column != ALL_COLUMNS:
                        out.setdefault(output_column, set()).update(labels)
                continue
            for column, labels in upstream.items():
                same = column if columns is not None and (column in columns or column == ALL_COLUMNS) else ALL_COLUMNS
                out.setdefault(same, set()).update(labels)
    memo[vid] = out
    return out


_VERSION_ROWS = select(
    t.versions.c.id, t.versions.c.dataset_id, t.versions.c.run_pk, t.versions.c.profile, t.versions.c.schema
)


class _Reading:
    """Reads each thing as the walk asks for it."""

    def __init__(self, db: Executes) -> None:
        self.db = db

    def row(self, vid: int) -> Any:
        return self.db.execute(_VERSION_ROWS.where(t.versions.c.id == vid)).first()

    def labels(self, dataset_id: int) -> Iterable[tuple[str, str]]:
        c = t.classifications.c
        return [
            (r.column_name, r.label)
            for r in self.db.execute(select(c.column_name, c.label).where(c.dataset_id == dataset_id))
        ]

    def inputs(self, run_pk: int) -> list[int]:
        io = t.run_io.c
        query = select(io.version_id).where(io.run_pk == run_pk, io.direction == t.INPUT)
        return [r.version_id for r in self.db.execute(query)]

    def edges(self, vid: int, iv: int) -> list[tuple[str, str]]:
        ce = t.column_edges.c
        query = select(ce.output_column, ce.input_column).where(ce.output_version_id == vid, ce.input_version_id == iv)
        return [(e.output_column, e.input_column) for e in self.db.execute(query)]


def _chunks(db: Executes, ids: Iterable[int]) -> Iterable[list[int]]:
    items = sorted(set(ids))
    step = batch_size(db, len(items), CHUNK)
    for i in range(0, len(items), step):
        yield items[i : i + step]


class _Prefetched:
    """Everything the walks from ``version_ids`` may ask for, read level by level upstream (``IN`` lists)."""

    def __init__(self, db: Executes, version_ids: Sequence[int]) -> None:
        v, c, io, ce = t.versions.c, t.classifications.c, t.run_io.c, t.column_edges.c
        self.rows: dict[int, Any] = {}
        self.run_inputs: dict[int, list[int]] = {}
        self.column_edges: dict[tuple[int, int], list[tuple[str, str]]] = {}
        self.dataset_labels: dict[int, list[tuple[str, str]]] = {}
        frontier = set(version_ids)
        for level in range(MAX_PROPAGATION + 1):
            found: list[Any] = []
            for ids in _chunks(db, frontier):
                found += db.execute(_VERSION_ROWS.where(among(db, v.id, ids))).all()
            for row in found:
                self.rows[row.id] = row
            produced = [row for row in found if row.run_pk is not None]
            if level == MAX_PROPAGATION or not produced:
                break  # a walk reads no inputs at the last level
            for pks in _chunks(db, {row.run_pk for row in produced} - set(self.run_inputs)):
                query = select(io.run_pk, io.version_id).where(among(db, io.run_pk, pks), io.direction == t.INPUT)
                for pk in pks:
                    self.run_inputs[pk] = []
                for r in db.execute(query):
                    self.run_inputs[r.run_pk].append(r.version_id)
            for ids in _chunks(db, (row.id for row in produced)):
                query = select(ce.output_version_id, ce.input_version_id, ce.output_column, ce.input_column)
                for e in db.execute(query.where(among(db, ce.output_version_id, ids))):
                    pair = (e.output_version_id, e.input_version_id)
                    self.column_edges.setdefault(pair, []).append((e.output_column, e.input_column))
            frontier = {iv for row in produced for iv in self.run_inputs[row.run_pk]} - set(self.rows)
            if not frontier:
                break
        for ids in _chunks(db, (row.dataset_id for row in self.rows.values())):
            for r in db.execute(select(c.dataset_id, c.column_name, c.label).where(among(db, c.dataset_id, ids))):
                self.dataset_labels.setdefault(r.dataset_id, []).append((r.column_name, r.label))

    def row(self, vid: int) -> Any:
        return self.rows.get(vid)

    def labels(self, dataset_id: int) -> Iterable[tuple[str, str]]:
        return self.dataset_labels.get(dataset_id, ())

    def inputs(self, run_pk: int) -> list[int]:
        return self.run_inputs.get(run_pk, [])

    def edges(self, vid: int, iv: int) -> list[tuple[str, str]]:
        return self.column_edges.get((vid, iv), [])
