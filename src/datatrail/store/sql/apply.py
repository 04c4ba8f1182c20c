"""Applying one event's changes inside its write transaction: namespaces, datasets, versions, jobs, runs.

Everything runs through the transaction (transaction.py), which remembers the
ids it has looked up and holds back the writes nothing reads back. Derived
state does not depend on the order events arrive in (see
docs/architecture.md): creation times move back to the earliest event, a run's
state only moves forward, an alias follows the latest event that set it, and a
version first seen as a bare reference is completed, never changed. Then the
appliers (appliers.py) add everything else the event carries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite

from datatrail.core.changes import Changes, DatasetChange, RunChange, VersionInfo
from datatrail.core.errors import Conflict
from datatrail.core.model import Ref, RunState
from datatrail.core.times import stored_time
from datatrail.core.touches import Check, Touch
from datatrail.store.sql import tables as t
from datatrail.store.sql.applied import Applied, Touched
from datatrail.store.sql.appliers import APPLIERS
from datatrail.store.sql.statements import (
    ABSENT,
    ANY_LINK,
    DS_FIND,
    DS_INSERT,
    DS_INSERT_WITH_ID,
    EARLIER_CREATED,
    JOB_FIND,
    JOB_INSERT,
    JOB_INSERT_WITH_ID,
    JOB_RUN_COUNTED,
    NS_DATASETS_COUNTED,
    NS_FIND,
    NS_INSERT,
    NS_JOB_COUNTED,
    PLANNED_ANY,
    PLANNED_INSERT,
    RUN_FIELDS,
    RUN_FIND,
    RUN_INSERT,
    RUN_INSERT_WITH_PK,
    RUN_IO_INSERT,
    RUN_UPDATE,
    VERSION_AT,
    VERSION_BY_KEY,
    VERSION_INSERT,
    VERSION_INSERT_WITH_ID,
    IdRow,
    RunRow,
    version_row,
)
from datatrail.store.sql.transaction import Tx


class Written(NamedTuple):
    """A version an event wrote: its id, whether it is new, and its ref (for the audit entry)."""

    id: int
    new: bool
    ref: str


def apply_changes(tx: Tx, changes: Changes, event_id: int = 0, check: Check | None = None) -> list[Written]:
    """Apply an event's changes; the versions it wrote. ``check`` is asked about a run stored under another job."""
    run_pk = _apply_run(tx, changes.run, check) if changes.run else None
    written: list[Written] = []
    io_rows: list[dict[str, Any]] = []
    rows: list[Touched] = []
    for ds in changes.datasets:
        if check is not None and ds.role == "input" and not check.allows("write", ds.namespace):
            _must_exist(tx, ds, changes.event_time, check)
        ds_id, stored_ns, stored_name = _identity(tx, ds, changes.event_time)
        if ds.planned:
            # Named, not (yet) produced: no version, `latest` stays; a COMPLETE naming it makes the version.
            if run_pk is not None:
                tx.defer(PLANNED_INSERT, "planned_outputs", {"run_pk": run_pk, "dataset_id": ds_id})
                tx.put(("planned", ds_id), True)
            rows.append(Touched(ds, ds_id, None))
            continue
        info = ds.version
        if info is None and ds.role == "output" and changes.run is not None:
            info = VersionInfo(key=f"run:{changes.run.run_id}")
        if info is None and ds.role == "input":
            vid = _version_at(tx, ds_id, changes.event_time)
            if vid is None and changes.run is not None and (changes.run.state.finished or not _announced(tx, ds_id)):
                # A source nobody reported writing (a Spark or dbt source table):
                # it gets one version, "observed", so lineage reaches it. Not from a START or
                # RUNNING when a run has named it as its output: that writer's COMPLETE may still
                # be on the way (dbt-ol sends every model's START before the COMPLETEs).
                vid, _, _ = _upsert_version(tx, ds_id, VersionInfo(key=t.OBSERVED), None, changes)
            if vid is not None and run_pk is not None:
                io_rows.append({"run_pk": run_pk, "direction": t.INPUT, "version_id": vid})
            if vid is not None and ds.checks and (changes.run is None or changes.run.state.finished):
                # What a test run found on the version it read (`dbt test`'s dataQualityAssertions),
                # from its ending: dbt-ol repeats the results in the START.
                _add_checks(tx, vid, event_id, ds.checks, changes)
            rows.append(Touched(ds, ds_id, vid))
            continue
        if info is None:
            rows.append(Touched(ds, ds_id, None))
            continue
        producer = run_pk if ds.role == "output" else None
        vid, new, number = _upsert_version(tx, ds_id, info, producer, changes)
        if run_pk is not None:
            direction = t.OUTPUT if ds.role == "output" else t.INPUT
            io_rows.append({"run_pk": run_pk, "direction": direction, "version_id": vid})
        for alias in ds.aliases:
            _set_alias(tx, ds_id, alias, vid, changes)
        if ds.checks:
            _add_checks(tx, vid, event_id, ds.checks, changes)
        rows.append(Touched(ds, ds_id, vid))
        written.append(Written(vid, new, str(Ref(stored_ns, stored_name, str(number)))))  # as stored
    for row in io_rows:
        tx.defer(RUN_IO_INSERT, "run_io", row)

    def dataset_of(namespace: str, name: str) -> int:
        # A RENAME's previous name, as a hidden placeholder when it is not stored yet: so the result does not
        # depend on which event arrives first. Admission lets only writers of its namespace name it.
        return _dataset_id(tx, namespace, name, "dataset", changes.event_time)

    applied = Applied(tx, changes, event_id, run_pk, tuple(rows), dataset_of=dataset_of)
    for applier in APPLIERS:
        applier(applied)
    return written


def _announced(tx: Tx, ds_id: int) -> bool:
    """Whether a run has named the dataset as an output it will write (a planned output)."""
    if tx.get(("planned", ds_id)):  # deferred in this transaction, not in the table yet
        return True
    known = tx.get(("announced", ds_id))  # PostgreSQL: asked by prefetch.py with the version current then
    if known is not None:
        return bool(known)
    # A prepared statement: a SQLAlchemy select here was built, cache-keyed and compiled per output, and
    # flushed every deferred write of the group before it (it may read any table); this reads one.
    return tx.first(PLANNED_ANY, d=ds_id) is not None


def _must_exist(tx: Tx, ds: DatasetChange, when: datetime, check: Check) -> None:
    """A reader's input names a dataset and version already stored (the one current at ``when`` when it names
    none): only a writer may create one."""
    nid = tx.get(("ns", ds.namespace)) or tx.first(NS_FIND, n=ds.namespace)
    dataset = None if nid is None else tx.get(("ds", nid.id, ds.name)) or tx.first(DS_FIND, ns=nid.id, n=ds.name)
    found: Any = None
    if dataset is not None and ds.version is not None:
        found = tx.first(VERSION_BY_KEY, d=dataset.id, k=ds.version.key)
    elif dataset is not None:
        found = _version_at(tx, int(dataset.id), when)
    if found is None:
        check.refuse(Touch(ds.namespace, "write", "inputs (not stored yet)"))


def _keep_earliest(tx: Tx, table: Table, row: Any, when: datetime) -> datetime:
    """Move ``created_at`` back to ``when`` if an earlier event arrives late (order independence).

    Returns the creation time now known. The update is conditional, so a
    remembered time later than the database's changes nothing.
    """
    created = stored_time(row.created_at)
    if created is None or when < created:
        # Nothing in ingest reads created_at back: written with the transaction's other deferred writes.
        tx.defer(EARLIER_CREATED[table.name], table.name, {"i": row.id, "w": when})
        return when
    return created


def _namespace_id(tx: Tx, name: str, when: datetime) -> int:
    key = ("ns", name)
    row = tx.get(key) or tx.first(NS_FIND, n=name)
    if row is None:
        row = IdRow(int(tx.scalar(NS_INSERT, n=name, w=when)), when)
    else:
        row = IdRow(int(row.id), _keep_earliest(tx, t.namespaces, row, when))
    tx.put(key, row)
    return row.id


def _dataset_id(tx: Tx, namespace: str, name: str, kind: str, when: datetime) -> int:
    nid = _namespace_id(tx, namespace, when)
    key = ("ds", nid, name)
    row = tx.get(key)
    if row is None and not tx.get(("no-ds", nid, name)):  # PostgreSQL: prefetch.py found it is not stored
        row = tx.first(DS_FIND, ns=nid, n=name)
    if row is None:
        reserved = tx.take_id("datasets") if tx.get(("no-ds", nid, name)) else None
        if reserved is not None:  # new, with an id reserved by prefetch.py (the write lock is held): written later
            tx.defer(DS_INSERT_WITH_ID, "datasets", {"id": reserved, "ns": nid, "n": name, "k": kind, "w": when})
            row = IdRow(reserved, when)
        else:
            row = IdRow(int(tx.scalar(DS_INSERT, ns=nid, n=name, k=kind, w=when)), when)
        tx.defer(NS_DATASETS_COUNTED, "namespaces", {"ns": nid, "by": 1})  # listed: deleted_at is NULL
        tx.put(("announced", row.id), False)  # no run announced it but this transaction's (see _announced)
        if tx.dialect == "postgresql":  # a new dataset: every version of it is in this transaction's memory
            tx.put(("vtop", row.id), 0)
            tx.put(("vall", row.id), True)
    else:
        row = IdRow(int(row.id), _keep_earliest(tx, t.datasets, row, when))
    tx.put(key, row)
    return row.id


def _identity(tx: Tx, ds: DatasetChange, when: datetime) -> tuple[int, str, str]:
    """The dataset an event's entry names, with the (namespace, name) it is stored under: the name its
    symlinks choose, or the dataset a link points to.

    A dataset named before its symlinks were known keeps what it had; from then on its name leads to
    the dataset the links chose.
    """
    if ds.names:
        target = ds.canonical or (ds.namespace, ds.name)
        ds_id = _dataset_id(tx, *target, ds.kind, when)
        for namespace, name in ds.names:
            if (namespace, name) != target and tx.get(("link", namespace, name)) != ds_id:
                tx.execute(_link_insert(tx.dialect), {"namespace": namespace, "name": name, "dataset_id": ds_id})
                tx.put(("link", namespace, name), ds_id)
                tx.put(("links?",), True)
        return ds_id, *target
    if tx.get(("links?",)) is None:  # once per transaction: a store without links pays one query
        tx.put(("links?",), tx.first(ANY_LINK) is not None)  # on PostgreSQL prefetch.py asked it already
    if tx.get(("links?",)):
        key = ("link", ds.namespace, ds.name)
        linked = tx.get(key)
        if linked is None:
            dl = t.dataset_links.c
            linked = tx.execute(select(dl.dataset_id).where(dl.namespace == ds.namespace, dl.name == ds.name)).scalar()
            tx.put(key, linked or 0)
        if linked:
            d, n = t.datasets.c, t.namespaces.c
            stored: Any = tx.execute(
                select(n.name, d.name).join(t.namespaces, n.id == d.namespace_id).where(d.id == int(linked))
            ).one()
            return int(linked), stored[0], stored[1]
    return _dataset_id(tx, ds.namespace, ds.name, ds.kind, when), ds.namespace, ds.name


def _link_insert(dialect: str) -> Any:
    mod = postgresql if dialect == "postgresql" else sqlite
    return mod.insert(t.dataset_links).on_conflict_do_nothing()


def _version_at(tx: Tx, ds_id: int, when: datetime) -> int | None:
    """The dataset's version current at ``when``: the highest number created at or before it."""
    known = tx.get(("vat", ds_id, when))
    if known is None and tx.get(("vall", ds_id)):  # PostgreSQL: a dataset new in this transaction
        known = (None, 0)
    if known is None:
        return tx.scalar(VERSION_AT, d=ds_id, w=when)  # type: ignore[no-any-return]
    best, number = known  # as the batch began (prefetch.py); then what the batch itself wrote
    for vid, n, created in tx.get(("vers", ds_id)) or ():
        if created <= when and n > number:
            best, number = vid, n
    return best  # type: ignore[no-any-return]


def _touched_version(tx: Tx, ds_id: int, vid: int, number: int, created: datetime) -> None:
    """Remember a version this transaction created or dated earlier (for :func:`_version_at`)."""
    tx.put(("vers", ds_id), (*(tx.get(("vers", ds_id)) or ()), (vid, number, created)))


def _known_version(tx: Tx, ds_id: int, key: str) -> Any:
    """PostgreSQL: the version of ``key`` as prefetch.py found it (then kept up to date), ABSENT when there
    is none, or None when it was not looked up."""
    if tx.get(("vtop", ds_id)) is None:
        return None
    found = tx.get(("vkey", ds_id, key))
    return ABSENT if found is None and tx.get(("vall", ds_id)) else found


def _upsert_version(
    tx: Tx, ds_id: int, info: VersionInfo, run_pk: int | None, changes: Changes
) -> tuple[int, bool, int]:
    values = {
        "dataset_id": ds_id,
        "version_key": info.key,
        "digest": str(info.digest) if info.digest else None,
        "size": info.size,
        "uri": info.uri,
        "format": info.format,
        "file_count": len(info.files) if info.files is not None else None,
        "created_at": changes.event_time,
        "created_by": info.created_by or changes.actor,
        "host": info.host,
        "message": info.message,
        "run_pk": run_pk,
        "properties": info.properties or {},
        "profile": info.profile,
    }
    known = _known_version(tx, ds_id, info.key)
    vid = tx.take_id("versions") if known is ABSENT else None
    if vid is not None:  # new, with an id reserved by prefetch.py (the write lock is held): written later
        number = int(tx.get(("vtop", ds_id))) + 1
        tx.defer(VERSION_INSERT_WITH_ID, "versions", {"id": vid, "number": number, **values})
    else:
        # Insert first (one round trip for the common case, a new version); a known key inserts nothing.
        created = None if known is not None and known is not ABSENT else tx.first(VERSION_INSERT, **values)
        if created is None:
            cached = known is not None and known is not ABSENT
            row = known if cached else tx.first(VERSION_BY_KEY, d=ds_id, k=info.key)
            if cached and tx.get(("vfill", int(row.id))) is None:  # as prefetch.py read it, for facet_map.py
                tx.put(("vfill", int(row.id)), (row.schema, row.stats))
            _complete_version(tx, ds_id, row, info, run_pk, changes)
            return int(row.id), False, int(row.number)
        vid, number = int(created.id), int(created.number)
    top = tx.get(("vtop", ds_id))
    if top is not None:  # PostgreSQL: what prefetch.py found, kept up to date
        tx.put(("vkey", ds_id, info.key), version_row(id=vid, number=number, schema=None, stats=None, **values))
        tx.put(("vtop", ds_id), max(int(top), number))
        tx.put(("vfill", vid), (None, None))  # its schema and statistics, for facet_map.py
    _touched_version(tx, ds_id, vid, number, changes.event_time)
    if info.files:
        tx.execute(
            t.version_files.insert(),
            [{"version_id": vid, "path": f.path, "size": f.size, "sha256": f.digest.hex} for f in info.files],
        )
    if info.kind != "dataset":
        tx.execute(t.datasets.update().where(t.datasets.c.id == ds_id).values(kind=info.kind))
    return vid, True, number


def _complete_version(tx: Tx, ds_id: int, row: Any, info: VersionInfo, run_pk: int | None, changes: Changes) -> None:
    """Add what a later-arriving event knows about an existing version.

    Events arrive in any order: a bare reference (an input's datasetVersion)
    may create the row before the event that describes the version. Missing
    fields are filled in, known ones never change (a version is immutable),
    and the earliest event time is the creation time, so the result does not
    depend on arrival order.
    """
    v = t.versions.c
    known = {
        "digest": str(info.digest) if info.digest else None,
        "size": info.size,
        "uri": info.uri,
        "format": info.format,
        "file_count": len(info.files) if info.files is not None else None,
        "created_by": info.created_by,
        "host": info.host,
        "message": info.message,
        "run_pk": run_pk,
    }
    fill: dict[str, Any] = {k: val for k, val in known.items() if val is not None and getattr(row, k) is None}
    if info.profile is not None and row.profile is None:
        fill["profile"] = info.profile
    if info.properties and not row.properties:
        fill["properties"] = info.properties
    created = stored_time(row.created_at)
    if created is None or changes.event_time < created:
        fill["created_at"] = changes.event_time
        _touched_version(tx, ds_id, int(row.id), int(row.number), changes.event_time)
    if fill.keys() == {"created_at"}:  # a late earlier event (ingest reads it back from memory): deferred
        tx.defer(EARLIER_CREATED["versions"], "versions", {"i": row.id, "w": changes.event_time})
    elif fill:
        tx.execute(t.versions.update().where(v.id == row.id).values(**fill))
    if "file_count" in fill and info.files:
        tx.execute(
            t.version_files.insert(),
            [{"version_id": row.id, "path": f.path, "size": f.size, "sha256": f.digest.hex} for f in info.files],
        )
    if info.kind != "dataset":
        tx.execute(t.datasets.update().where(t.datasets.c.id == ds_id).values(kind=info.kind))
    if tx.get(("vtop", ds_id)) is not None:  # PostgreSQL: the version as it is now, for the next event
        tx.put(("vkey", ds_id, info.key), row._replace(**fill))


def _add_checks(tx: Tx, vid: int, event_id: int, checks: tuple[dict[str, Any], ...], changes: Changes) -> None:
    tx.execute(
        t.check_results.insert(),
        [
            {
                "version_id": vid,
                "event_id": event_id,
                "position": i,
                "rule": c["rule"],
                "name": c.get("name"),
                "column_name": c.get("column"),
                "severity": c["severity"],
                "success": c["success"],
                "observed": c.get("observed"),
                "expected": c.get("expected"),
                "message": c.get("message"),
                "checked_at": changes.event_time,
                "checked_by": c.get("checked_by") or changes.actor,
            }
            for i, c in enumerate(checks)
        ],
    )


def _set_alias(tx: Tx, ds_id: int, alias: str, vid: int, changes: Changes) -> None:
    a = t.aliases.c
    current = tx.execute(select(a.updated_at).where(a.dataset_id == ds_id, a.alias == alias)).first()
    if current is None:
        tx.execute(
            t.aliases.insert().values(
                dataset_id=ds_id,
                alias=alias,
                version_id=vid,
                updated_at=changes.event_time,
                updated_by=changes.actor,
            )
        )
    elif stored_time(current.updated_at) <= changes.event_time:  # type: ignore[operator]
        # The latest event wins, whatever order events arrive in.
        tx.execute(
            t.aliases.update()
            .where(a.dataset_id == ds_id, a.alias == alias)
            .values(version_id=vid, updated_at=changes.event_time, updated_by=changes.actor)
        )


def _job_id(tx: Tx, nid: int, rc: RunChange) -> int:
    key = ("job", nid, rc.job)
    new = tx.get(("no-job", nid, rc.job))  # PostgreSQL: prefetch.py found it is not stored
    job = tx.get(key) or (None if new else tx.first(JOB_FIND, ns=nid, n=rc.job))
    if job is None:
        reserved = tx.take_id("jobs") if new else None
        if reserved is not None:  # with an id reserved by prefetch.py (the write lock is held): written later
            values = {"id": reserved, "ns": nid, "n": rc.job, "k": rc.job_type, "w": rc.event_time}
            tx.defer(JOB_INSERT_WITH_ID, "jobs", values)
            job_id = reserved
        else:
            job_id = int(tx.scalar(JOB_INSERT, ns=nid, n=rc.job, k=rc.job_type, w=rc.event_time))
        tx.defer(NS_JOB_COUNTED, "namespaces", {"ns": nid})
        tx.put(key, IdRow(job_id, rc.event_time, rc.job_type))
        return job_id
    job_id = int(job.id)
    created = _keep_earliest(tx, t.jobs, job, rc.event_time)
    kind = job.type
    if rc.job_type and job.type != rc.job_type:
        tx.execute(t.jobs.update().where(t.jobs.c.id == job_id).values(type=rc.job_type))
        kind = rc.job_type
    tx.put(key, IdRow(job_id, created, kind))
    return job_id


def _moved(tx: Tx, rc: RunChange, job_id: int, check: Check | None) -> Conflict:
    """Why an event that names another job for a stored run is refused; first, whether it may touch that run."""
    j, n = t.jobs.c, t.namespaces.c
    query = select(n.name.label("ns"), j.name.label("job")).join(t.namespaces, n.id == j.namespace_id)
    row = tx.execute(query.where(j.id == job_id)).one()
    if check is not None and not check.allows("write", row.ns):  # Forbidden, not a Conflict saying where it is
        check.refuse(Touch(row.ns, "write", f"run {rc.run_id}, as stored"))
    msg = (
        f"run {rc.run_id} belongs to job {row.ns}:{row.job}, not {rc.namespace}:{rc.job}: a run never changes job"
        " or namespace; give this run its own runId"
    )
    return Conflict(msg)


def _apply_run(tx: Tx, rc: RunChange, check: Check | None = None) -> int:
    job_id = _job_id(tx, _namespace_id(tx, rc.namespace, rc.event_time), rc)
    cached = tx.get(("run", rc.run_id))
    row = tx.first(RUN_FIND, r=rc.run_id) if cached is None else (None if cached is ABSENT else cached)
    finished = rc.state.finished
    # started_at is the earliest event's time. A run known only by its ending shows the start its facets
    # tell (start_hint, the earliest events.started_hint) until a START or RUNNING event of it arrives
    # (start_seen): each is a min or an or, so arrival order does not matter (queries.to_run reads them).
    seen = not finished
    fields: dict[str, Any] = {
        k: val
        for k, val in {
            "user": rc.user,
            "host": rc.host,
            "command": rc.command,
            "cwd": rc.cwd,
            "code": rc.code,
            "error": rc.error,
            "parent_run_id": rc.parent_run_id,
            "workflow": rc.workflow,
        }.items()
        if val is not None
    }
    if row is None:
        values = {
            "run_id": rc.run_id,
            "job_id": job_id,
            "state": rc.state.value,
            "state_time": rc.event_time,
            "started_at": rc.event_time,
            "start_seen": seen,
            "start_hint": rc.started_hint,
            "ended_at": rc.event_time if finished else None,
            "params": rc.params or {},
            **{k: fields.get(k) for k in RUN_FIELDS},
        }
        run_pk = tx.take_id("runs") if cached is ABSENT else None
        if run_pk is not None:  # new, with a key reserved by prefetch.py (the write lock is held): written later
            tx.defer(RUN_INSERT_WITH_PK, "runs", {"pk": run_pk, **values})
            tx.put(("facets", "runs", run_pk), {})  # what facet_map.py merges the run's facets into
        else:
            run_pk = tx.scalar(RUN_INSERT, **values)
        row = RunRow(
            run_pk, rc.state.value, rc.event_time, rc.event_time, rc.params or {}, job_id, seen, rc.started_hint
        )
        tx.put(("run", rc.run_id), row)
        tx.defer(JOB_RUN_COUNTED, "jobs", {"job_id": job_id})
    else:
        if int(row.job_id) != job_id:
            raise _moved(tx, rc, int(row.job_id), check)
        run_pk = row.pk
        old = RunState.stored(row.state)
        old_time = stored_time(row.state_time) or rc.event_time
        if old.finished:
            # A finished run never returns to RUNNING; between two endings the later one wins.
            take = finished and rc.event_time > old_time
        else:
            take = finished or rc.event_time >= old_time
        if take:
            fields.update(state=rc.state.value, state_time=rc.event_time)
            if finished:
                fields["ended_at"] = rc.event_time
        started = stored_time(row.started_at)
        if started is None or rc.event_time < started:
            fields["started_at"] = rc.event_time
        if seen and row.start_seen is False:
            fields["start_seen"] = True
        hint = stored_time(row.start_hint)
        if rc.started_hint is not None and (hint is None or rc.started_hint < hint):
            fields["start_hint"] = rc.started_hint
        if rc.params:
            fields["params"] = {**(row.params or {}), **rc.params}
        if fields:
            tx.defer(RUN_UPDATE, "runs", {"run_pk": run_pk, **fields})
        tx.put(
            ("run", rc.run_id),
            RunRow(
                run_pk,
                fields.get("state", row.state),
                fields.get("state_time", row.state_time),
                fields.get("started_at", row.started_at),
                fields.get("params", row.params),
                int(row.job_id),
                fields.get("start_seen", row.start_seen),
                fields.get("start_hint", row.start_hint),
            ),
        )
    if rc.metrics:
        m = t.run_metrics
        rows = [
            {"run_pk": run_pk, "key": k, "step": step, "value": value, "logged_at": rc.event_time}
            for k, series in rc.metrics.items()
            for step, value in series
        ]
        tx.execute(m.delete().where(m.c.run_pk == run_pk, m.c.key.in_(list(rc.metrics))))
        tx.execute(m.insert(), rows)
    return int(run_pk)
