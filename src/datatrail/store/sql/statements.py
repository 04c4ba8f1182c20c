"""The statements a write runs for every event, compiled once (see prepared.py), and the rows it remembers.

Each statement names the tables whose deferred writes it must see (see
transaction.py); the row types are what a transaction remembers of a
namespace, dataset, job or run between events.
"""

from __future__ import annotations

from collections import namedtuple
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Table, bindparam, exists, func, or_, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.sql import ClauseElement

from datatrail.store.sql import tables as t
from datatrail.store.sql.prepared import Prepared

EVENTS, NAMESPACES, DATASETS = frozenset({"events"}), frozenset({"namespaces"}), frozenset({"datasets"})
JOBS, RUNS, VERSIONS, AUDIT = (frozenset({n}) for n in ("jobs", "runs", "versions", "audit"))
ABSENT = object()  # remembered: no such row (yet)


class IdRow(NamedTuple):
    """A namespace, dataset or job row as a transaction remembers it."""

    id: int
    created_at: datetime | None
    type: str | None = None  # jobs only


# A version as a transaction remembers it (PostgreSQL, prefetch.py): every column of `versions`.
_VersionRow = namedtuple("_VersionRow", tuple(c.name for c in t.versions.c))  # type: ignore[misc]


def version_row(*values: Any, **named: Any) -> Any:
    """A version row: its columns in table order, or by name."""
    return _VersionRow(*values, **named)


class RunRow(NamedTuple):
    """What ingest reads of a run to apply the next event of it."""

    pk: int
    state: str
    state_time: datetime | None
    started_at: datetime | None
    params: Any
    job_id: int  # a run never changes job (apply.py refuses an event that would move it)
    start_seen: bool | None  # a START or RUNNING event of it is stored (None: stored before revision 0006)
    start_hint: datetime | None  # the earliest start its ending events' facets tell (events.started_hint)


def insert_new(
    table: Table, values: dict[str, Any], key: list[Any], returning: list[Any], parents: frozenset[str] = frozenset()
) -> Prepared:
    """INSERT … ON CONFLICT (key) DO NOTHING [RETURNING …]: a row that exists already returns nothing.

    ``parents``: the tables its foreign keys point to, whose deferred rows must be written first.
    """
    per_dialect: dict[str, ClauseElement] = {}
    for mod in (sqlite_dialect, pg_dialect):
        stmt = mod.insert(table).values(values).on_conflict_do_nothing(index_elements=key)
        per_dialect[mod.dialect.name] = stmt.returning(*returning) if returning else stmt
    return Prepared(table.insert(), dialects=per_dialect, reads=frozenset({table.name}) | parents)


# Taken first in every PostgreSQL write transaction: one writer at a time.
PG_WRITE_LOCK = Prepared(select(func.pg_advisory_xact_lock(7274002)), reads=frozenset())
AUDIT_LAST = Prepared(select(t.audit.c.seq, t.audit.c.hash).order_by(t.audit.c.seq.desc()).limit(1), reads=AUDIT)
# PostgreSQL's write transactions ask both once the lock is held, in one statement (database.py): the chain's
# head (None, None for an empty chain) and whether the store has any dataset link (apply.py's "links?").
_LAST = t.audit.c.seq.desc()
AUDIT_HEAD_AND_LINKS = Prepared(
    select(
        select(t.audit.c.seq).order_by(_LAST).limit(1).scalar_subquery().label("seq"),
        select(t.audit.c.hash).order_by(_LAST).limit(1).scalar_subquery().label("hash"),
        exists(select(t.dataset_links.c.name)).label("links"),
    ),
    reads=AUDIT | frozenset({"dataset_links"}),
)

# Whether the store has any dataset link (asked once per transaction; a store without links skips them).
ANY_LINK = Prepared(select(t.dataset_links.c.name).limit(1), reads=frozenset({"dataset_links"}))
EVENT_BY_HASH = Prepared(select(t.events.c.id).where(t.events.c.event_hash == bindparam("h")), reads=EVENTS)
_EVENT_COLUMNS = ("event_hash", "event_type", "event_time", "run_id", "payload", "received_at")
EVENT_INSERT = insert_new(t.events, {c: bindparam(c) for c in _EVENT_COLUMNS}, [t.events.c.event_hash], [t.events.c.id])
EVENT_INSERT_WITH_ID = Prepared(
    t.events.insert().values({c: bindparam(c) for c in ("id", *_EVENT_COLUMNS)}),
    reads=frozenset(),  # prefetch found the hash new, under the write lock
    rank=0,
)
NS_FIND = Prepared(
    select(t.namespaces.c.id, t.namespaces.c.created_at).where(t.namespaces.c.name == bindparam("n")), reads=NAMESPACES
)
NS_INSERT = Prepared(
    t.namespaces.insert().values(name=bindparam("n"), created_at=bindparam("w")).returning(t.namespaces.c.id),
    reads=NAMESPACES,
)
DS_FIND = Prepared(
    select(t.datasets.c.id, t.datasets.c.created_at).where(
        t.datasets.c.namespace_id == bindparam("ns"), t.datasets.c.name == bindparam("n")
    ),
    reads=DATASETS,
)
DS_INSERT_WITH_ID = Prepared(
    t.datasets.insert().values(
        id=bindparam("id"),
        namespace_id=bindparam("ns"),
        name=bindparam("n"),
        kind=bindparam("k"),
        created_at=bindparam("w"),
    ),
    reads=frozenset(),  # prefetch found the name new, under the write lock
    rank=1,  # before the versions that refer to it
)
DS_INSERT = Prepared(
    t.datasets.insert()
    .values(namespace_id=bindparam("ns"), name=bindparam("n"), kind=bindparam("k"), created_at=bindparam("w"))
    .returning(t.datasets.c.id),
    reads=DATASETS,
)


def earlier_created(table: Table) -> Prepared:
    """Move a row's ``created_at`` back to ``w`` when it is later (or unknown): an earlier event came late."""
    c = table.c
    return Prepared(
        table.update()
        .where(c.id == bindparam("i"), or_(c.created_at.is_(None), c.created_at > bindparam("w")))
        .values(created_at=bindparam("w")),
        reads=frozenset({table.name}),
    )


EARLIER_CREATED = {table.name: earlier_created(table) for table in (t.namespaces, t.datasets, t.jobs, t.versions)}
JOB_FIND = Prepared(
    select(t.jobs.c.id, t.jobs.c.type, t.jobs.c.created_at).where(
        t.jobs.c.namespace_id == bindparam("ns"), t.jobs.c.name == bindparam("n")
    ),
    reads=JOBS,
)
JOB_INSERT_WITH_ID = Prepared(
    t.jobs.insert().values(
        id=bindparam("id"),
        namespace_id=bindparam("ns"),
        name=bindparam("n"),
        type=bindparam("k"),
        created_at=bindparam("w"),
    ),
    reads=frozenset(),  # prefetch found the name new, under the write lock
    rank=1,  # before the runs that refer to it
)
JOB_INSERT = Prepared(
    t.jobs.insert()
    .values(namespace_id=bindparam("ns"), name=bindparam("n"), type=bindparam("k"), created_at=bindparam("w"))
    .returning(t.jobs.c.id),
    reads=JOBS,
)
RUN_FIND = Prepared(select(t.runs).where(t.runs.c.run_id == bindparam("r")), reads=RUNS)
VERSION_BY_KEY = Prepared(
    select(t.versions).where(t.versions.c.dataset_id == bindparam("d"), t.versions.c.version_key == bindparam("k")),
    reads=VERSIONS,
)
VERSION_AT = Prepared(
    select(t.versions.c.id)
    .where(t.versions.c.dataset_id == bindparam("d"), t.versions.c.created_at <= bindparam("w"))
    .order_by(t.versions.c.number.desc())
    .limit(1),
    reads=VERSIONS,
)
_VERSION_COLUMNS = (
    "dataset_id",
    "number",
    "version_key",
    "digest",
    "size",
    "uri",
    "format",
    "file_count",
    "created_at",
    "created_by",
    "host",
    "message",
    "run_pk",
    "properties",
    "profile",
)
_NEXT_NUMBER = (
    select(func.coalesce(func.max(t.versions.c.number), 0) + 1)
    .where(t.versions.c.dataset_id == bindparam("dataset_id"))
    .scalar_subquery()
)
VERSION_INSERT = insert_new(
    t.versions,
    {c: _NEXT_NUMBER if c == "number" else bindparam(c) for c in _VERSION_COLUMNS},
    [t.versions.c.dataset_id, t.versions.c.version_key],
    [t.versions.c.id, t.versions.c.number],
    DATASETS,  # a dataset new in this transaction may wait among the deferred writes (apply.py)
)
RUN_FIELDS = ("user", "host", "command", "cwd", "code", "error", "parent_run_id", "workflow")
_RUN_COLUMNS = (
    "run_id",
    "job_id",
    "state",
    "state_time",
    "started_at",
    "start_seen",
    "start_hint",
    "ended_at",
    "params",
    *RUN_FIELDS,
)
RUN_INSERT = Prepared(
    t.runs.insert().values({c: bindparam(c) for c in _RUN_COLUMNS}).returning(t.runs.c.pk),
    reads=JOBS,  # a job new in this transaction may wait among the deferred writes (apply.py)
)

# PostgreSQL: rows whose ids prefetch.py reserved, once it found them new under the write lock; deferred
# (Tx.defer), ranked before the rows that refer to them or update them.
VERSION_INSERT_WITH_ID = Prepared(
    t.versions.insert().values({c: bindparam(c) for c in ("id", *_VERSION_COLUMNS)}), reads=frozenset(), rank=2
)
RUN_INSERT_WITH_PK = Prepared(
    t.runs.insert().values({c: bindparam(c) for c in ("pk", *_RUN_COLUMNS)}), reads=frozenset(), rank=3
)
# A run's merged facets (facet_map.py), and a version's schema and statistics filled once (NULL: kept).
RUN_FACETS = Prepared(
    t.runs.update().where(t.runs.c.pk == bindparam("run_pk")).values(facets=bindparam("facets")), reads=frozenset()
)
VERSION_FILL = Prepared(
    t.versions.update()
    .where(t.versions.c.id == bindparam("version_id"))
    .values({c: func.coalesce(bindparam(c, type_=t.versions.c[c].type), t.versions.c[c]) for c in ("schema", "stats")}),
    reads=frozenset(),
)

# Written later, in one executemany per batch (Tx.defer): nothing in ingest reads them back.
RUN_IO_INSERT = insert_new(
    t.run_io, {c: bindparam(c) for c in ("run_pk", "direction", "version_id")}, list(t.run_io.primary_key), []
)
PLANNED_INSERT = insert_new(
    t.planned_outputs, {c: bindparam(c) for c in ("run_pk", "dataset_id")}, list(t.planned_outputs.primary_key), []
)
# Whether any run announced the dataset as a planned output (apply.py's _announced, once per output).
PLANNED_ANY = Prepared(
    select(t.planned_outputs.c.dataset_id).where(t.planned_outputs.c.dataset_id == bindparam("d")).limit(1),
    reads=frozenset({"planned_outputs"}),
)
_RUN_UPDATABLE = ("state", "state_time", "started_at", "start_seen", "start_hint", "ended_at", "params", *RUN_FIELDS)
# Each column keeps its value where the parameter is NULL (ingest never clears a run's field).
# A run stored: its job counts it (jobs.run_count, revision 0009).
JOB_RUN_COUNTED = Prepared(
    t.jobs.update().where(t.jobs.c.id == bindparam("job_id")).values(run_count=t.jobs.c.run_count + 1)
)
# A namespace's listed datasets and its jobs (namespaces.dataset_count, job_count, revision 0010): a dataset
# added, hidden or shown again, a job added. Under the write lock, in the transaction that changes the rows.
NS_DATASETS_COUNTED = Prepared(
    t.namespaces.update()
    .where(t.namespaces.c.id == bindparam("ns"))
    .values(dataset_count=t.namespaces.c.dataset_count + bindparam("by"))
)
NS_JOB_COUNTED = Prepared(
    t.namespaces.update().where(t.namespaces.c.id == bindparam("ns")).values(job_count=t.namespaces.c.job_count + 1)
)
RUN_UPDATE = Prepared(
    t.runs.update()
    .where(t.runs.c.pk == bindparam("run_pk"))
    .values({c: func.coalesce(bindparam(c, type_=t.runs.c[c].type), t.runs.c[c]) for c in _RUN_UPDATABLE})
)
AUDIT_INSERT = Prepared(
    t.audit.insert().values(
        {
            c: bindparam(c)
            for c in ("seq", "time", "actor", "action", "target", "outcome", "details", "event_id", "prev_hash", "hash")
        }
    )
)
