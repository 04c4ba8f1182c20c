"""Looking up, in one round trip, what a transaction's events would each ask for one by one (PostgreSQL).

Which events are stored already, their runs (with their facets), every dataset
the events name by (namespace, name) with the version current for each input at
its event's time (where there is none, whether a run announced the dataset as
its output) and, for each version an event writes, the dataset's highest
version number and the version of that key; ids reserved for new events, runs
and versions, and for the datasets, jobs and observed versions found missing
(the jobs this process does not remember are looked up too); and whether the
store has dataset links. Sent with the write lock (database.py) in
one round trip. Only worth it where a statement is a network round trip; the
answers go into the transaction's memory (transaction.py), which each event
then reads and keeps up to date with its own writes (apply.py): with the lock
held nobody else writes, so a dataset, job, run or version found new is written
later with its reserved id, in the transaction's deferred writes, instead of
by an INSERT … RETURNING of its own."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String, any_, bindparam, select, text
from sqlalchemy.dialects import postgresql as pg_dialect

from datatrail.store.sql import tables as t
from datatrail.store.sql.incoming import Incoming
from datatrail.store.sql.prepared import Prepared
from datatrail.store.sql.statements import (
    ABSENT,
    ANY_LINK,
    DATASETS,
    EVENTS,
    JOBS,
    NAMESPACES,
    RUNS,
    VERSIONS,
    IdRow,
    RunRow,
    version_row,
)
from datatrail.store.sql.transaction import Tx

# Lists travel as arrays. Each hash is looked up by its own index scan: psycopg prepares a statement
# run often, and the plan PostgreSQL keeps for ``event_hash = ANY(…)`` on the writer's connection is
# the one made while the table was small, a scan of every event.
_EVENTS_STORED = Prepared(
    text(
        "SELECT h.event_hash, e.id FROM unnest(CAST(:hashes AS text[])) AS h(event_hash)"
        " JOIN LATERAL (SELECT id FROM events WHERE event_hash = h.event_hash LIMIT 1) e ON true"
    )
    .bindparams(bindparam("hashes", type_=pg_dialect.ARRAY(String)))
    .columns(event_hash=String, id=BigInteger),
    reads=EVENTS,
)
_RUNS = Prepared(
    select(t.runs.c.run_id, *(t.runs.c[k] for k in RunRow._fields), t.runs.c.facets).where(
        t.runs.c.run_id == any_(bindparam("ids", type_=pg_dialect.ARRAY(String)))
    ),
    reads=RUNS,
)
# Each name looked up by its own index scan (LATERAL … LIMIT 1: planned as a subquery, both columns of
# the unique index bound): as plain joins, a store whose statistics are not yet analyzed (a fresh one,
# minutes of ingest) is planned to scan every dataset of the namespace for each name.
_NAMES = (
    " LEFT JOIN LATERAL (SELECT id, created_at FROM namespaces WHERE name = p.ns LIMIT 1) n ON true"
    " LEFT JOIN LATERAL (SELECT id, created_at FROM datasets WHERE namespace_id = n.id AND name = p.name LIMIT 1) d"
    " ON true"
)
_WHEN = DateTime(timezone=True)
_NAMED: dict[str, Any] = {"nid": BigInteger, "ncreated": _WHEN, "did": BigInteger, "dcreated": _WHEN}
# For each (namespace, dataset, time), the dataset's ids and the version current then: what
# NS_FIND, DS_FIND and VERSION_AT ask once per name, for names this process knows or not.
_VERSIONS_AT = Prepared(
    text(
        "SELECT p.i, n.id AS nid, n.created_at AS ncreated, d.id AS did, d.created_at AS dcreated, v.id, v.number,"
        # No version then: apply.py asks whether a run announced the dataset as its output (_announced).
        " CASE WHEN v.id IS NULL AND d.id IS NOT NULL"
        " THEN EXISTS (SELECT 1 FROM planned_outputs o WHERE o.dataset_id = d.id) END AS announced"
        " FROM unnest(CAST(:nss AS text[]), CAST(:names AS text[]), CAST(:ws AS timestamptz[]))"
        " WITH ORDINALITY AS p(ns, name, w, i)" + _NAMES + " LEFT JOIN LATERAL (SELECT id, number FROM versions"
        " WHERE dataset_id = d.id AND created_at <= p.w ORDER BY number DESC LIMIT 1) v ON true"
    )
    .bindparams(
        bindparam("nss", type_=pg_dialect.ARRAY(String)),
        bindparam("names", type_=pg_dialect.ARRAY(String)),
        bindparam("ws", type_=pg_dialect.ARRAY(DateTime(timezone=True))),
    )
    .columns(i=BigInteger, **_NAMED, id=BigInteger, number=Integer, announced=Boolean),
    reads=VERSIONS | DATASETS | NAMESPACES | frozenset({"planned_outputs"}),
)
# For each (namespace, dataset, version key) an event writes: the dataset's ids, its highest version
# number and the version of that key, if any (what VERSION_INSERT and VERSION_BY_KEY would ask); and
# ids reserved for what is found missing, so that apply.py writes it with the deferred writes instead
# of an INSERT … RETURNING round trip each: the dataset (of a namespace stored already) and the
# observed version of a source (every input names its dataset here, with that key).
_VERSION_KEYS = Prepared(
    text(
        "SELECT p.i, n.id AS nid, n.created_at AS ncreated, d.id AS did, d.created_at AS dcreated, m.top,"
        " CASE WHEN d.id IS NULL AND n.id IS NOT NULL"
        " THEN nextval(pg_get_serial_sequence('datasets', 'id')) END AS new_ds,"
        " CASE WHEN v.id IS NULL AND p.k = :observed"
        " THEN nextval(pg_get_serial_sequence('versions', 'id')) END AS new_v, "
        + ", ".join(f'v."{c.name}"' for c in t.versions.c)
        + " FROM unnest(CAST(:nss AS text[]), CAST(:names AS text[]), CAST(:keys AS text[]))"
        " WITH ORDINALITY AS p(ns, name, k, i)" + _NAMES + " LEFT JOIN LATERAL"
        " (SELECT max(number) AS top FROM versions WHERE dataset_id = d.id) m ON true"
        " LEFT JOIN LATERAL (SELECT * FROM versions WHERE dataset_id = d.id AND version_key = p.k LIMIT 1) v ON true"
    )
    .bindparams(
        bindparam("nss", type_=pg_dialect.ARRAY(String)),
        bindparam("names", type_=pg_dialect.ARRAY(String)),
        bindparam("keys", type_=pg_dialect.ARRAY(String)),
        bindparam("observed", t.OBSERVED),
    )
    .columns(
        i=BigInteger,
        **_NAMED,
        top=Integer,
        new_ds=BigInteger,
        new_v=BigInteger,
        **{c.name: c.type for c in t.versions.c},
    ),
    reads=VERSIONS | DATASETS | NAMESPACES,
)

# For each (namespace, job) this process does not remember: the job's ids and type, or an id reserved
# for it when its namespace is stored (what JOB_FIND and JOB_INSERT would ask).
_JOBS = Prepared(
    text(
        "SELECT p.i, n.id AS nid, n.created_at AS ncreated, j.id, j.type, j.created_at,"
        " CASE WHEN j.id IS NULL AND n.id IS NOT NULL THEN nextval(pg_get_serial_sequence('jobs', 'id')) END AS new_job"
        " FROM unnest(CAST(:nss AS text[]), CAST(:names AS text[])) WITH ORDINALITY AS p(ns, name, i)"
        " LEFT JOIN LATERAL (SELECT id, created_at FROM namespaces WHERE name = p.ns LIMIT 1) n ON true"
        " LEFT JOIN LATERAL (SELECT id, type, created_at FROM jobs"
        " WHERE namespace_id = n.id AND name = p.name LIMIT 1) j ON true"
    )
    .bindparams(
        bindparam("nss", type_=pg_dialect.ARRAY(String)),
        bindparam("names", type_=pg_dialect.ARRAY(String)),
    )
    .columns(
        i=BigInteger, nid=BigInteger, ncreated=_WHEN, id=BigInteger, type=String, created_at=_WHEN, new_job=BigInteger
    ),
    reads=JOBS | NAMESPACES,
)


# Ids for the rows the transaction may write, from each table's sequence: n[k] of table t[k] (column c[k]).
_RESERVE = Prepared(
    text(
        "SELECT u.t, nextval(pg_get_serial_sequence(u.t, u.c)) AS id"
        " FROM unnest(CAST(:ts AS text[]), CAST(:cs AS text[]), CAST(:ns AS int[])) AS u(t, c, n)"
        " CROSS JOIN LATERAL generate_series(1, u.n)"
    )
    .bindparams(
        bindparam("ts", type_=pg_dialect.ARRAY(String)),
        bindparam("cs", type_=pg_dialect.ARRAY(String)),
        bindparam("ns", type_=pg_dialect.ARRAY(Integer)),
    )
    .columns(t=String, id=BigInteger),
    reads=frozenset(),
)


def _remembered_job(tx: Tx, namespace: str, name: str) -> bool:
    ns = tx.get(("ns", namespace))
    return ns is not None and tx.get(("job", int(ns.id), name)) is not None


def prefetch(tx: Tx, items: Sequence[Incoming]) -> None:
    """Put into the transaction's memory what ``items`` will look up (nothing to do but on PostgreSQL)."""
    with tx.pipelined():
        read = send_prefetch(tx, items)
    if read is not None:
        read()


def send_prefetch(tx: Tx, items: Sequence[Incoming]) -> Callable[[], None] | None:
    """Send the lookups of :func:`prefetch` (in the caller's pipeline); the function returned reads their
    answers into the transaction's memory. None: nothing to look up (or not PostgreSQL).

    :meth:`~.database.Database.write` sends them in its first round trip, with the write lock."""
    if tx.dialect != "postgresql" or not items:
        return None
    digests = sorted({item.digest for item in items})
    batch = [item.changes for item in items]
    run_ids = sorted({c.run.run_id for c in batch if c.run is not None})
    at: set[tuple[str, str, datetime]] = set()
    keys: set[tuple[str, str, str]] = set()
    new_keys = 0  # versions the batch may write: an id reserved for each
    for c in batch:
        for ds in c.datasets:
            if ds.planned:
                continue
            ns, name = (ds.canonical or (ds.namespace, ds.name)) if ds.names else (ds.namespace, ds.name)
            key = ds.version.key if ds.version is not None else None
            if key is None and ds.role == "input":
                at.add((ns, name, c.event_time))
                key = t.OBSERVED  # the version a source nobody reported writing gets
            elif key is None and c.run is not None:
                key = f"run:{c.run.run_id}"  # apply.py's key for an output without a version facet
            else:
                new_keys += key is not None
            if key is not None:
                keys.add((ns, name, key))
    new_keys += sum(1 for _, _, key in keys if key.startswith("run:"))
    ordered, wanted = sorted(at), sorted(keys)
    stored_q = tx.send(_EVENTS_STORED, hashes=digests)
    # An id for every event, run and version that may be new: those of repeats are left unused, as a
    # conflicting INSERT leaves them.
    reserve = [("events", "id", len(digests)), ("runs", "pk", len(run_ids)), ("versions", "id", 0)]
    runs_q = tx.send(_RUNS, ids=run_ids) if run_ids else None
    jobs = sorted({(c.run.namespace, c.run.job) for c in batch if c.run is not None})
    jobs = [(ns, name) for ns, name in jobs if not _remembered_job(tx, ns, name)]
    jobs_q = tx.send(_JOBS, nss=[j[0] for j in jobs], names=[j[1] for j in jobs]) if jobs else None
    at_q = (
        tx.send(_VERSIONS_AT, nss=[p[0] for p in ordered], names=[p[1] for p in ordered], ws=[p[2] for p in ordered])
        if ordered
        else None
    )
    keys_q = (
        tx.send(_VERSION_KEYS, nss=[p[0] for p in wanted], names=[p[1] for p in wanted], keys=[p[2] for p in wanted])
        if wanted
        else None
    )
    reserve[2] = ("versions", "id", new_keys)
    ids_q = tx.send(_RESERVE, ts=[r[0] for r in reserve], cs=[r[1] for r in reserve], ns=[r[2] for r in reserve])
    links_q = tx.send(ANY_LINK) if tx.get(("links?",)) is None else None  # what apply.py asks each transaction

    def named(ns: str, name: str, row: Any) -> int | None:
        """The dataset's id, its namespace's and its own remembered (or marked as not stored yet)."""
        if row.nid is None:
            return None
        if tx.get(("ns", ns)) is None:
            tx.put(("ns", ns), IdRow(int(row.nid), row.ncreated))
        if row.did is None:
            tx.put(("no-ds", int(row.nid), name), True)  # apply.py inserts it without asking first
            return None
        if tx.get(("ds", int(row.nid), name)) is None:
            tx.put(("ds", int(row.nid), name), IdRow(int(row.did), row.dcreated))
        return int(row.did)

    def read() -> None:
        stored = {row.event_hash: row.id for row in stored_q.all()}
        for digest in digests:
            tx.put(("event", digest), stored.get(digest, ABSENT))
        ids: dict[str, list[int]] = {"events": [], "runs": [], "versions": [], "datasets": [], "jobs": []}
        for row in ids_q.all():
            ids[row.t].append(int(row.id))
        if runs_q is not None:
            found = {row.run_id: row for row in runs_q.all()}
            for run_id in run_ids:
                row = found.get(run_id)
                tx.put(("run", run_id), RunRow(*row[1:-1]) if row is not None else ABSENT)
                if row is not None:  # what facet_map.py merges the run's facets into
                    tx.put(("facets", "runs", int(row.pk)), dict(row.facets or {}))
        if at_q is not None:
            for (ns, name, w), row in zip(ordered, sorted(at_q.all(), key=lambda r: r.i), strict=True):
                d = named(ns, name, row)
                if d is not None:
                    tx.put(("vat", d, w), (row.id, row.number or 0))
                    if row.announced is not None:  # planned outputs are never deleted; this transaction's
                        tx.put(("announced", d), bool(row.announced))  # own are in its memory ("planned")
        if keys_q is not None:
            for (ns, name, key), row in zip(wanted, sorted(keys_q.all(), key=lambda r: r.i), strict=True):
                d = named(ns, name, row)
                if d is not None:
                    tx.put(("vtop", d), int(row.top or 0))
                    tx.put(("vkey", d, key), ABSENT if row.id is None else version_row(*row[8:]))
                if row.new_ds is not None:  # a name asked with several keys reserves several: one is used
                    ids["datasets"].append(int(row.new_ds))
                if row.new_v is not None:
                    ids["versions"].append(int(row.new_v))
        if jobs_q is not None:
            for (ns, name), row in zip(jobs, sorted(jobs_q.all(), key=lambda r: r.i), strict=True):
                if row.nid is None:
                    continue
                if tx.get(("ns", ns)) is None:
                    tx.put(("ns", ns), IdRow(int(row.nid), row.ncreated))
                if row.id is not None:
                    tx.put(("job", int(row.nid), name), IdRow(int(row.id), row.created_at, row.type))
                else:
                    tx.put(("no-job", int(row.nid), name), True)  # apply.py inserts it without asking first
                    ids["jobs"].append(int(row.new_job))
        for table, reserved in ids.items():
            if reserved:
                tx.put(("ids", table), tuple(sorted(reserved)))
        if links_q is not None:
            tx.put(("links?",), bool(links_q.all()))

    return read
