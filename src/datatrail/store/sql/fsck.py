"""Checks of a SQL store (`datatrail fsck`): the audit chain, the file, and the links every write makes together.

:func:`integrity_problems` recomputes the audit hash chain, runs SQLite's own
``PRAGMA integrity_check``, then the structural checks. Each finds what a
half-applied write, a hand-edited database or a damaged file would leave
behind: a version without the audit entry that created it, an event without
its audit entry, a gap in version numbers, a manifest shorter than its file
count, a lineage edge that points at nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Connection, func, or_, select, text

from datatrail.core.chain import GENESIS, row_hash
from datatrail.core.model import Ref
from datatrail.store.sql import tables as t
from datatrail.store.sql.queries import audit_entry
from datatrail.store.wire import audit_to_wire

_SHOW = 5  # at most this many examples per kind of problem


def _listed(what: str, items: list[str]) -> str:
    shown = ", ".join(items[:_SHOW])
    more = f" and {len(items) - _SHOW} more" if len(items) > _SHOW else ""
    return f"{what}: {shown}{more}"


def integrity_problems(conn: Connection, dialect: str) -> Iterator[str]:
    """Yield one line per entry that breaks the audit chain, then per problem of the file and its links."""
    prev = GENESIS
    for r in conn.execute(select(t.audit).order_by(t.audit.c.seq)):
        row = audit_to_wire(audit_entry(r))
        if row["prev_hash"] != prev or row["hash"] != row_hash(row):
            yield f"audit entry {r.seq} does not match the hash chain"
        prev = row["hash"]
    if dialect == "sqlite":
        ok = conn.execute(text("PRAGMA integrity_check")).scalar()
        if ok != "ok":
            yield f"sqlite integrity check: {ok}"
    yield from structural_problems(conn, dialect)


def structural_problems(conn: Connection, dialect: str) -> Iterator[str]:
    """Yield one line per kind of broken link; nothing when the store is sound."""
    if dialect == "sqlite":
        bad_fk = conn.execute(text("PRAGMA foreign_key_check")).all()
        if bad_fk:
            yield _listed("rows whose foreign key points at nothing", sorted({f"{r[0]} row {r[1]}" for r in bad_fk}))

    ev, au = t.events.c, t.audit.c
    no_audit = conn.execute(
        select(ev.id).outerjoin(t.audit, au.event_id == ev.id).where(au.seq.is_(None)).order_by(ev.id)
    ).all()
    if no_audit:
        yield _listed("events without their audit entry", [f"event {r.id}" for r in no_audit])
    no_event = conn.execute(
        select(au.seq)
        .outerjoin(t.events, ev.id == au.event_id)
        .where(au.event_id.is_not(None), ev.id.is_(None))
        .order_by(au.seq)
    ).all()
    if no_event:
        yield _listed("audit entries whose event is missing", [f"entry {r.seq}" for r in no_event])

    # Each ingest lists the versions it created in its audit entry's details["new"].
    created: set[str] = set()
    for (details,) in conn.execute(select(au.details).where(au.event_id.is_not(None))):
        if isinstance(details, dict):
            created.update(str(ref) for ref in details.get("new") or ())
    v, d, n = t.versions.c, t.datasets.c, t.namespaces.c
    unaudited: list[str] = []
    for row in conn.execute(
        select(n.name.label("namespace"), d.name, v.number, v.version_key)
        .select_from(t.versions)
        .join(t.datasets, d.id == v.dataset_id)
        .join(t.namespaces, n.id == d.namespace_id)
        .order_by(n.name, d.name, v.number)
    ):
        ref = str(Ref(row.namespace, row.name, str(row.number)))
        if row.version_key != t.OBSERVED and ref not in created:
            unaudited.append(ref)
    if unaudited:
        yield _listed("versions without the event and audit entry that created them", unaudited)

    gaps = conn.execute(
        select(d.name, func.count(v.id).label("count"), func.max(v.number).label("top"))
        .select_from(t.versions)
        .join(t.datasets, d.id == v.dataset_id)
        .group_by(d.id, d.name)
        .having(func.count(v.id) != func.max(v.number))
    ).all()
    if gaps:
        yield _listed("datasets whose version numbers have gaps", [f"{r.name} ({r.count} of {r.top})" for r in gaps])

    f = t.version_files.c
    counted = select(f.version_id, func.count().label("files")).group_by(f.version_id).subquery()
    short = conn.execute(
        select(d.name, v.number, v.file_count, counted.c.files)
        .select_from(t.versions)
        .join(t.datasets, d.id == v.dataset_id)
        .outerjoin(counted, counted.c.version_id == v.id)
        .where(v.file_count.is_not(None), func.coalesce(counted.c.files, 0) != v.file_count)
    ).all()
    if short:
        yield _listed(
            "directory versions whose manifest does not hold every file",
            [f"{r.name}@{r.number} ({r.files or 0} of {r.file_count})" for r in short],
        )

    # The totals of list pages (revisions 0009, 0010) against the rows they count.
    n, j = t.namespaces.c, t.jobs.c
    listed = select(func.count()).where(d.namespace_id == n.id, d.deleted_at.is_(None)).scalar_subquery()
    jobs = select(func.count()).where(j.namespace_id == n.id).scalar_subquery()
    miscounted = conn.execute(
        select(n.name, n.dataset_count, listed.label("datasets"), n.job_count, jobs.label("jobs"))
        .where(or_(n.dataset_count != listed, n.job_count != jobs))
        .order_by(n.name)
    ).all()
    if miscounted:
        yield _listed(
            "namespaces whose counts of datasets or jobs differ from their rows",
            [
                f"{r.name} ({r.dataset_count} of {r.datasets} datasets, {r.job_count} of {r.jobs} jobs)"
                for r in miscounted
            ],
        )
    runs = select(func.count()).where(t.runs.c.job_id == j.id).scalar_subquery()
    unmatched = conn.execute(select(j.name, j.run_count, runs.label("runs")).where(j.run_count != runs)).all()
    if unmatched:
        yield _listed(
            "jobs whose run_count differs from their runs", [f"{r.name} ({r.run_count} of {r.runs})" for r in unmatched]
        )

    io, r = t.run_io.c, t.runs.c
    dangling = conn.execute(
        select(io.run_pk, io.version_id)
        .outerjoin(t.runs, r.pk == io.run_pk)
        .outerjoin(t.versions, v.id == io.version_id)
        .where((r.pk.is_(None)) | (v.id.is_(None)))
    ).all()
    if dangling:
        yield _listed(
            "lineage edges (run_io) pointing at a missing run or version",
            [f"run {e.run_pk} - version {e.version_id}" for e in dangling],
        )
    orphans = conn.execute(
        select(v.id).outerjoin(t.runs, r.pk == v.run_pk).where(v.run_pk.is_not(None), r.pk.is_(None))
    ).all()
    if orphans:
        yield _listed("versions whose producing run is missing", [f"version id {o.id}" for o in orphans])
