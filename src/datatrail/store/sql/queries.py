"""Versions, runs and audit entries from rows, as the reads and the writes' answers both build them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY

from datatrail.core.model import Run, Version
from datatrail.core.results import AuditEntry
from datatrail.core.times import stored_time
from datatrail.store.sql import tables as t
from datatrail.store.sql.rows import no_dataset, planned, run_from_row, version_from_row
from datatrail.store.sql.transaction import Executes


def among(db: Any, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN values``. On PostgreSQL ``column = ANY(:array)``: one parameter, so one statement text
    for any number of values (SQLAlchemy renders and psycopg parses an ``IN`` list of 500 placeholders
    anew for every length, and PostgreSQL plans each text again); the same rows. ``db``: a read's
    ``Connection`` or a write's :class:`~datatrail.store.sql.transaction.Tx`."""
    dialect = getattr(db, "dialect", None)
    name = dialect if isinstance(dialect, str) else getattr(dialect, "name", None)
    found: ColumnElement[bool]
    if name == "postgresql":
        found = column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    else:
        found = column.in_(values)
    return found


def batch_size(db: Any, count: int, size: int = 500) -> int:
    """How many values one statement's :func:`among` takes: all ``count`` on PostgreSQL (one array), ``size``
    elsewhere (SQLite's ``IN`` list, a parameter each)."""
    dialect = getattr(db, "dialect", None)
    name = dialect if isinstance(dialect, str) else getattr(dialect, "name", None)
    return max(count, 1) if name == "postgresql" else size


def version_select() -> Select[Any]:
    """The columns :func:`~datatrail.store.sql.rows.version_from_row` reads, joined."""
    v, d, n = t.versions.c, t.datasets.c, t.namespaces.c
    return (
        select(
            v.id,
            v.number,
            v.version_key,
            v.digest,
            v.size,
            v.uri,
            v.format,
            v.file_count,
            v.created_at,
            v.created_by,
            v.host,
            v.message,
            v.properties,
            d.name.label("dataset"),
            d.kind,
            n.name.label("namespace"),
            t.runs.c.run_id,
        )
        .select_from(t.versions)
        .join(t.datasets, d.id == v.dataset_id)
        .join(t.namespaces, n.id == d.namespace_id)
        .outerjoin(t.runs, t.runs.c.pk == v.run_pk)
    )


def to_versions(db: Executes, rows: Sequence[Any]) -> list[Version]:
    """Versions of rows of :func:`version_select`, with their aliases."""
    ids = [r.id for r in rows]
    names: dict[int, list[str]] = {}
    step = batch_size(db, len(ids))
    for i in range(0, len(ids), step):
        a_ = t.aliases.c
        for a in db.execute(select(a_.version_id, a_.alias).where(among(db, a_.version_id, ids[i : i + step]))):
            names.setdefault(a.version_id, []).append(a.alias)
    return [version_from_row(r, names.get(r.id, [])) for r in rows]


def version_by_id(db: Executes, vid: int) -> Version:
    rows = db.execute(version_select().where(t.versions.c.id == vid)).all()
    return to_versions(db, rows)[0]


def dataset_row(db: Executes, namespace: str, name: str) -> Any:
    """The dataset's id, kind, lifecycle and facets; NotFound if there is no such dataset."""
    d, n, dl = t.datasets.c, t.namespaces.c, t.dataset_links.c
    query = select(d.id, d.kind, d.lifecycle, d.facets).join(t.namespaces, n.id == d.namespace_id)
    row = db.execute(query.where(n.name == namespace, d.name == name)).first()
    if row is None:  # another name of a dataset (its symlinks): the dataset it names
        linked = select(dl.dataset_id).where(dl.namespace == namespace, dl.name == name).scalar_subquery()
        row = db.execute(query.where(d.id == linked)).first()
    if row is None:
        raise no_dataset(namespace, name)
    return row


def run_select() -> Select[Any]:
    """Runs with their job and namespace names, as :func:`to_run` reads them."""
    r, j, n = t.runs.c, t.jobs.c, t.namespaces.c
    return (
        select(t.runs, j.name.label("job"), n.name.label("namespace"))
        .join(t.jobs, j.id == r.job_id)
        .join(t.namespaces, n.id == j.namespace_id)
    )


def to_run(db: Executes, row: Any) -> Run:
    """The run of a row of :func:`run_select`, with its metrics, inputs and outputs."""
    metrics: dict[str, Any] = {}
    inputs: list[Version] = []
    outputs: list[Version] = []
    m = t.run_metrics.c
    for mr in db.execute(select(m.key, m.value).where(m.run_pk == row.pk).order_by(m.key, m.step)):
        metrics[mr.key] = mr.value
    io = t.run_io.c
    rows = db.execute(
        version_select()
        .add_columns(io.direction)
        .join(t.run_io, io.version_id == t.versions.c.id)
        .where(io.run_pk == row.pk)
        .order_by(t.datasets.c.name)
    ).all()
    for version, r in zip(to_versions(db, rows), rows, strict=True):
        (outputs if r.direction == t.OUTPUT else inputs).append(version)
    planned_outputs = planned(_planned(db, row.pk), outputs)
    return run_from_row(row, metrics, inputs, outputs, planned_outputs, _children(db, row.run_id))


def to_runs(db: Executes, rows: Sequence[Any]) -> list[Run]:
    """:func:`to_run` of each row, the same runs, read with one statement per kind of fact for all the
    rows (``IN`` lists of their keys) instead of five per run."""
    if not rows:
        return []
    r, m, io, p, d, n = t.runs.c, t.run_metrics.c, t.run_io.c, t.planned_outputs.c, t.datasets.c, t.namespaces.c
    pks, ids = [row.pk for row in rows], [row.run_id for row in rows]
    metrics: dict[int, dict[str, Any]] = {pk: {} for pk in pks}
    by_run = select(m.run_pk, m.key, m.value).where(among(db, m.run_pk, pks))
    for mr in db.execute(by_run.order_by(m.run_pk, m.key, m.step)):
        metrics[mr.run_pk][mr.key] = mr.value
    found = db.execute(
        version_select()
        .add_columns(io.direction, io.run_pk)
        .join(t.run_io, io.version_id == t.versions.c.id)
        .where(among(db, io.run_pk, pks))
        .order_by(io.run_pk, d.name)
    ).all()
    inputs: dict[int, list[Version]] = {pk: [] for pk in pks}
    outputs: dict[int, list[Version]] = {pk: [] for pk in pks}
    for version, vr in zip(to_versions(db, found), found, strict=True):
        (outputs if vr.direction == t.OUTPUT else inputs)[vr.run_pk].append(version)
    named: dict[int, list[tuple[str, str]]] = {pk: [] for pk in pks}
    for x in db.execute(
        select(p.run_pk, n.name.label("namespace"), d.name)
        .select_from(t.planned_outputs)
        .join(t.datasets, d.id == p.dataset_id)
        .join(t.namespaces, n.id == d.namespace_id)
        .where(among(db, p.run_pk, pks))
        .order_by(p.run_pk, n.name, d.name)
    ):
        named[x.run_pk].append((x.namespace, x.name))
    children: dict[str, list[str]] = {rid: [] for rid in ids}
    query = select(r.parent_run_id, r.run_id).where(among(db, r.parent_run_id, ids))
    for c in db.execute(query.order_by(r.parent_run_id, r.started_at, r.run_id)):
        children[c.parent_run_id].append(c.run_id)
    return [
        run_from_row(
            row,
            metrics[row.pk],
            inputs[row.pk],
            outputs[row.pk],
            planned(named[row.pk], outputs[row.pk]),
            tuple(children[row.run_id]),
        )
        for row in rows
    ]


def _children(db: Executes, run_id: str) -> tuple[str, ...]:
    """The ids of the runs whose parent is ``run_id``, oldest first."""
    r = t.runs.c
    query = select(r.run_id).where(r.parent_run_id == run_id).order_by(r.started_at, r.run_id)
    return tuple(db.execute(query).scalars())


def _planned(db: Executes, run_pk: int) -> list[tuple[str, str]]:
    """The outputs a run named (planned_outputs) by namespace and name; rows.planned drops those it produced."""
    p, d, n = t.planned_outputs.c, t.datasets.c, t.namespaces.c
    rows = db.execute(
        select(n.name.label("namespace"), d.name)
        .select_from(t.planned_outputs)
        .join(t.datasets, d.id == p.dataset_id)
        .join(t.namespaces, n.id == d.namespace_id)
        .where(p.run_pk == run_pk)
        .order_by(n.name, d.name)
    )
    return [(x.namespace, x.name) for x in rows]


def audit_entry(r: Any) -> AuditEntry:
    """The entry of a row of the ``audit`` table."""
    return AuditEntry(
        r.seq, stored_time(r.time), r.actor, r.action, r.target, r.outcome, r.details or {}, r.prev_hash, r.hash
    )
