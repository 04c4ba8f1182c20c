"""Ingest into the SQL store: OpenLineage events to rows, in as few round trips as possible.

:class:`IngestMixin` is mixed into :class:`~datatrail.store.sql.store.SqlStore`,
which provides the transactions (``_write``) and the reads. An event is parsed
and hashed before the write lock (:class:`_Incoming`), then stored with its
derived state and its audit entry in the caller's transaction (``_ingest_in``);
see docs/architecture.md, "Few round trips per event", for the memory of ids,
the deferred writes, the batch prefetch and the group commit.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, Connection, DateTime, Integer, String, any_, bindparam, func, or_, select, text
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import DBAPIError

from datatrail.core.chain import GENESIS, entry_content, entry_hash
from datatrail.core.changes import Changes, Event, RunChange, VersionInfo, canonical_json
from datatrail.core.errors import DatatrailError, InvalidInput, NotFound, StoreUnavailable
from datatrail.core.model import Ref, RunState
from datatrail.core.results import IngestResult
from datatrail.core.times import stored_time
from datatrail.events import parse_event
from datatrail.store.sql import tables as t
from datatrail.store.sql.appliers import Applied, Touched, appliers
from datatrail.store.sql.prepared import Prepared, pipelined
from datatrail.store.sql.security import with_origin
from datatrail.store.sql.txcache import Known, Tx, tx_of

_RANK = {RunState.START: 0, RunState.RUNNING: 1}
OBSERVED = "observed"  # the version key of a dataset first seen as an unversioned input


# The statements ingest runs for every event, compiled once (see prepared.py), each with
# the tables whose deferred writes it must see (see txcache.py).
_EVENTS, _NAMESPACES, _DATASETS = frozenset({"events"}), frozenset({"namespaces"}), frozenset({"datasets"})
_JOBS, _RUNS, _VERSIONS, _AUDIT = (frozenset({n}) for n in ("jobs", "runs", "versions", "audit"))
_EVENT_BY_HASH = Prepared(select(t.events.c.id).where(t.events.c.event_hash == bindparam("h")), reads=_EVENTS)


def _insert_new(table: Any, values: dict[str, Any], key: list[Any], returning: list[Any]) -> Prepared:
    """INSERT … ON CONFLICT (key) DO NOTHING [RETURNING …]: a row that exists already returns nothing."""
    per_dialect = {
        mod.dialect.name: mod.insert(table).values(values).on_conflict_do_nothing(index_elements=key)
        for mod in (sqlite_dialect, pg_dialect)
    }
    if returning:
        per_dialect = {name: stmt.returning(*returning) for name, stmt in per_dialect.items()}
    return Prepared(table.insert(), dialects=dict(per_dialect), reads=frozenset({table.name}))


_EVENT_INSERT = _insert_new(
    t.events,
    {c: bindparam(c) for c in ("event_hash", "event_type", "event_time", "run_id", "payload", "received_at")},
    [t.events.c.event_hash],
    [t.events.c.id],
)
_NS_FIND = Prepared(
    select(t.namespaces.c.id, t.namespaces.c.created_at).where(t.namespaces.c.name == bindparam("n")), reads=_NAMESPACES
)
_NS_INSERT = Prepared(
    t.namespaces.insert().values(name=bindparam("n"), created_at=bindparam("w")).returning(t.namespaces.c.id),
    reads=_NAMESPACES,
)
_DS_FIND = Prepared(
    select(t.datasets.c.id, t.datasets.c.created_at).where(
        t.datasets.c.namespace_id == bindparam("ns"), t.datasets.c.name == bindparam("n")
    ),
    reads=_DATASETS,
)
_DS_INSERT = Prepared(
    t.datasets.insert()
    .values(namespace_id=bindparam("ns"), name=bindparam("n"), kind=bindparam("k"), created_at=bindparam("w"))
    .returning(t.datasets.c.id),
    reads=_DATASETS,
)
_JOB_FIND = Prepared(
    select(t.jobs.c.id, t.jobs.c.type, t.jobs.c.created_at).where(
        t.jobs.c.namespace_id == bindparam("ns"), t.jobs.c.name == bindparam("n")
    ),
    reads=_JOBS,
)
_JOB_INSERT = Prepared(
    t.jobs.insert()
    .values(namespace_id=bindparam("ns"), name=bindparam("n"), type=bindparam("k"), created_at=bindparam("w"))
    .returning(t.jobs.c.id),
    reads=_JOBS,
)
_RUN_FIND = Prepared(select(t.runs).where(t.runs.c.run_id == bindparam("r")), reads=_RUNS)
_VERSION_BY_KEY = Prepared(
    select(t.versions).where(t.versions.c.dataset_id == bindparam("d"), t.versions.c.version_key == bindparam("k")),
    reads=_VERSIONS,
)
_VERSION_AT = Prepared(
    select(t.versions.c.id)
    .where(t.versions.c.dataset_id == bindparam("d"), t.versions.c.created_at <= bindparam("w"))
    .order_by(t.versions.c.number.desc())
    .limit(1),
    reads=_VERSIONS,
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
_VERSION_INSERT = _insert_new(
    t.versions,
    {c: _NEXT_NUMBER if c == "number" else bindparam(c) for c in _VERSION_COLUMNS},
    [t.versions.c.dataset_id, t.versions.c.version_key],
    [t.versions.c.id, t.versions.c.number],
)
_RUN_FIELDS = ("user", "host", "command", "cwd", "code", "error", "parent_run_id", "workflow")
_RUN_INSERT = Prepared(
    t.runs.insert()
    .values(
        {
            c: bindparam(c)
            for c in ("run_id", "job_id", "state", "state_time", "started_at", "ended_at", "params", *_RUN_FIELDS)
        }
    )
    .returning(t.runs.c.pk),
    reads=frozenset(),
)
PG_WRITE_LOCK = Prepared(select(func.pg_advisory_xact_lock(7274002)), reads=frozenset())
AUDIT_LAST = Prepared(select(t.audit.c.seq, t.audit.c.hash).order_by(t.audit.c.seq.desc()).limit(1), reads=_AUDIT)
# Written later, in one executemany per batch (Tx.defer): nothing in ingest reads them back.
_RUN_IO_INSERT = _insert_new(
    t.run_io, {c: bindparam(c) for c in ("run_pk", "direction", "version_id")}, list(t.run_io.primary_key), []
)
_RUN_UPDATABLE = ("state", "state_time", "started_at", "ended_at", "params", *_RUN_FIELDS)
# Each column keeps its value where the parameter is NULL (ingest never clears a run's field).
_RUN_UPDATE = Prepared(
    t.runs.update()
    .where(t.runs.c.pk == bindparam("run_pk"))
    .values({c: func.coalesce(bindparam(c, type_=t.runs.c[c].type), t.runs.c[c]) for c in _RUN_UPDATABLE})
)
_AUDIT_INSERT = Prepared(
    t.audit.insert().values(
        {
            c: bindparam(c)
            for c in ("seq", "time", "actor", "action", "target", "outcome", "details", "event_id", "prev_hash", "hash")
        }
    )
)


@dataclass(frozen=True)
class _Incoming:
    """An event parsed, in canonical form and hashed: the work done before taking the write lock."""

    changes: Changes
    payload: str
    digest: str
    origin: str | None = None  # where the event came from, for its audit entry

    @classmethod
    def of(cls, event: Event, actor: str, origin: str | None = None) -> _Incoming:
        changes = parse_event(event, actor)
        payload = canonical_json(event)
        return cls(changes, payload, hashlib.sha256(payload.encode()).hexdigest(), origin)


class _Pending:
    """One caller's event in a group commit, and what became of it."""

    __slots__ = ("action", "detail", "done", "error", "item", "result")

    def __init__(self, item: _Incoming, action: str, detail: bool) -> None:
        self.item, self.action, self.detail = item, action, detail
        self.done = False
        self.result: IngestResult | None = None
        self.error: BaseException | None = None

    def finish(self, result: IngestResult | None = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.done = result, error, True


class _RunRow(NamedTuple):
    """What ingest reads of a run to apply the next event of it (see txcache.py)."""

    pk: int
    state: str
    state_time: datetime | None
    started_at: datetime | None
    params: Any


_ABSENT = object()  # remembered: no such row (yet)
# What _prefetch asks, pipelined, on PostgreSQL (lists travel as arrays).
_PG_EVENTS_STORED = Prepared(
    select(t.events.c.event_hash, t.events.c.id).where(
        t.events.c.event_hash == any_(bindparam("hashes", type_=pg_dialect.ARRAY(String)))
    ),
    reads=_EVENTS,
)
_PG_EVENT_IDS = Prepared(
    select(func.nextval(func.pg_get_serial_sequence("events", "id"))).select_from(
        func.generate_series(1, bindparam("n", type_=Integer))
    ),
    reads=frozenset(),
)
_PG_RUNS = Prepared(
    select(t.runs.c.run_id, *(t.runs.c[k] for k in _RunRow._fields)).where(
        t.runs.c.run_id == any_(bindparam("ids", type_=pg_dialect.ARRAY(String)))
    ),
    reads=_RUNS,
)
_EVENT_INSERT_WITH_ID = Prepared(
    t.events.insert().values(
        {c: bindparam(c) for c in ("id", "event_hash", "event_type", "event_time", "run_id", "payload", "received_at")}
    ),
    reads=frozenset(),  # _prefetch found the hash new, under the write lock
)
# For each (dataset, time) pair, the version current then: what _VERSION_AT asks once per pair.
_PG_VERSIONS_AT = Prepared(
    text(
        "SELECT p.i, v.id, v.number"
        " FROM unnest(CAST(:ds AS bigint[]), CAST(:ws AS timestamptz[])) WITH ORDINALITY AS p(d, w, i)"
        " LEFT JOIN LATERAL (SELECT id, number FROM versions WHERE dataset_id = p.d AND created_at <= p.w"
        " ORDER BY number DESC LIMIT 1) v ON true"
    )
    .bindparams(
        bindparam("ds", type_=pg_dialect.ARRAY(BigInteger)),
        bindparam("ws", type_=pg_dialect.ARRAY(DateTime(timezone=True))),
    )
    .columns(i=BigInteger, id=BigInteger, number=Integer),
    reads=_VERSIONS,
)


class AuditHead(NamedTuple):
    seq: int
    hash: str


def _write_error(exc: DBAPIError) -> DatatrailError:
    return DatatrailError(f"could not write to the store: {str(exc.orig).strip().splitlines()[0]}")


class _IdRow(NamedTuple):
    """A namespace, dataset or job row as ingest remembers it (see txcache.py)."""

    id: int
    created_at: datetime | None
    type: str | None = None  # jobs only


def _keep_earliest(conn: Connection, table: Any, pk: Any, row: Any, when: datetime) -> datetime:
    """Move ``created_at`` back to ``when`` if an earlier event arrives late (order independence).

    Returns the creation time now known. The update is conditional, so a
    remembered time later than the database's changes nothing.
    """
    created = stored_time(row.created_at)
    if created is None or when < created:
        conn.execute(
            table.update()
            .where(pk == row.id, or_(table.c.created_at.is_(None), table.c.created_at > when))
            .values(created_at=when)
        )
        return when
    return created


class IngestMixin:
    """Ingest of :class:`~datatrail.store.sql.store.SqlStore` (which provides what is declared here)."""

    dialect: str
    _write: Any
    _version_by_id: Any
    _writers: threading.RLock

    def _init_ingest(self) -> None:
        self._known = Known()  # committed namespace, dataset and job ids (see txcache.py)
        self._queue: list[_Pending] = []  # events waiting for the next group commit (see ingest)
        self._queue_lock = threading.Lock()

    def ingest(
        self, event: Event, actor: str, action: str, *, detail: bool = True, origin: str | None = None
    ) -> IngestResult:
        """Store an event and apply it; without ``detail`` the result lists no versions (cheaper).

        Group commit: threads of this process that ingest at the same time (the
        server's request threads) queue their events; whichever gets the write
        lock next stores every queued event in one transaction and hands each
        caller its own result. A group that fails for any reason but the store
        being down is stored again one event per transaction, so an event only
        ever fails for its own reason.
        """
        pending = _Pending(_Incoming.of(event, actor, origin), action, detail)
        with self._queue_lock:
            self._queue.append(pending)
        with self._writers:
            if not pending.done:
                with self._queue_lock:
                    group, self._queue = self._queue, []
                self._ingest_group(group)
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def _ingest_group(self, group: list[_Pending]) -> None:
        try:
            if len(group) > 1:
                try:
                    with self._write() as conn:
                        self._prefetch(conn, [p.item for p in group])
                        results = [self._ingest_in(conn, p.item, p.action, p.detail) for p in group]
                    for p, result in zip(group, results, strict=True):
                        p.finish(result)
                    return
                except StoreUnavailable as exc:
                    for p in group:
                        p.finish(error=exc)
                    return
                except Exception:  # rolled back: each event again, alone, for its own outcome
                    pass
            for p in group:
                try:
                    with self._write() as conn:
                        # One pipelined round trip for four lookups: little on loopback, a lot over a network.
                        self._prefetch(conn, [p.item])
                        p.finish(self._ingest_in(conn, p.item, p.action, p.detail))
                except DBAPIError as exc:
                    p.finish(error=_write_error(exc))
                except Exception as exc:  # handed to the caller, raised in its own thread
                    p.finish(error=exc)
        finally:
            for p in group:  # never leave a caller waiting, whatever happened
                if not p.done:
                    p.finish(error=DatatrailError("the event was not stored; retry"))

    def ingest_many(
        self, events: Sequence[Event], actor: str, action: str, *, origin: str | None = None
    ) -> list[IngestResult | DatatrailError]:
        """Store many events in one transaction (one commit: the server's batch endpoint).

        Each event gets its result, or the error that refused it (an invalid event is
        skipped, inside a savepoint, and the others are stored). A store failure
        rolls back the whole batch and raises: the client retries, and the repeats
        are no-ops.
        """
        out: list[IngestResult | DatatrailError] = []
        parsed: list[tuple[int, _Incoming]] = []
        for i, raw in enumerate(events):
            try:  # parsed and hashed before taking the write lock
                parsed.append((i, _Incoming.of(raw, actor, origin)))
                out.append(DatatrailError("not stored"))
            except DatatrailError as exc:
                out.append(exc)
        try:
            try:
                # Nearly every batch is valid: store it without a savepoint per event.
                with self._write() as conn:
                    self._prefetch(conn, [item for _, item in parsed])
                    for i, item in parsed:
                        out[i] = self._ingest_in(conn, item, action, detail=False)
                return out
            except (InvalidInput, NotFound):
                pass  # rolled back; again, with each event in its own savepoint
            tx: Tx
            with self._write() as conn:
                self._prefetch(conn, [item for _, item in parsed])
                tx = tx_of(conn)
                for i, item in parsed:
                    mark = tx.mark()
                    try:
                        with conn.begin_nested():
                            out[i] = self._ingest_in(conn, item, action, detail=False)
                    except (InvalidInput, NotFound) as exc:
                        tx.undo(mark)
                        out[i] = exc
        except DBAPIError as exc:
            raise _write_error(exc) from exc
        return out

    def _prefetch(self, conn: Connection, items: Sequence[_Incoming]) -> None:
        """Look up, in one round trip, what the events would each ask for one by one.

        Which events are stored already (and ids for the others, so their rows
        can be written later in one go), their runs, and the version current for
        each input at its event's time: four queries, pipelined. Only worth it
        where a statement is a network round trip (PostgreSQL); the answers go
        into the transaction's memory (txcache.py), which each event then reads
        and keeps up to date with its own writes.
        """
        if self.dialect != "postgresql" or not items:
            return
        tx = tx_of(conn)
        digests = sorted({item.digest for item in items})
        batch = [item.changes for item in items]
        run_ids = sorted({c.run.run_id for c in batch if c.run is not None})
        pairs: set[tuple[int, datetime]] = set()
        for c in batch:
            for ds in c.datasets:
                if ds.role != "input" or ds.version is not None:
                    continue
                ns = tx.get(("ns", ds.namespace))
                known = tx.get(("ds", ns.id, ds.name)) if ns is not None else None
                if known is not None:  # a dataset not seen yet has no version to find
                    pairs.add((int(known.id), c.event_time))
        ordered = sorted(pairs)
        with pipelined(conn):
            stored_q = _PG_EVENTS_STORED.send(conn, hashes=digests)
            # An id for every event: those of repeats are left unused, as a conflicting INSERT leaves them.
            ids_q = _PG_EVENT_IDS.send(conn, n=len(digests))
            runs_q = _PG_RUNS.send(conn, ids=run_ids) if run_ids else None
            versions_q = (
                _PG_VERSIONS_AT.send(conn, ds=[d for d, _ in ordered], ws=[w for _, w in ordered]) if ordered else None
            )
        stored = {row.event_hash: row.id for row in stored_q.all()}
        for digest in digests:
            tx.put(("event", digest), stored.get(digest, _ABSENT))
        tx.put(("ids", "events"), tuple(sorted(int(row[0]) for row in ids_q.all())))
        if runs_q is not None:
            found = {row.run_id: row for row in runs_q.all()}
            for run_id in run_ids:
                row = found.get(run_id)
                tx.put(("run", run_id), _RunRow(*row[1:]) if row is not None else _ABSENT)
        if versions_q is not None:
            for (d, w), row in zip(ordered, sorted(versions_q.all(), key=lambda r: r.i), strict=True):
                tx.put(("vat", d, w), (row.id, row.number or 0))

    def _version_at(self, conn: Connection, ds_id: int, when: datetime) -> int | None:
        """The dataset's version current at ``when``: the highest number created at or before it."""
        tx = tx_of(conn)
        known = tx.get(("vat", ds_id, when))
        if known is None:
            return _VERSION_AT.scalar(conn, d=ds_id, w=when)  # type: ignore[no-any-return]
        best, number = known  # as the batch began; then what the batch itself wrote
        for vid, n, created in tx.get(("vers", ds_id)) or ():
            if created <= when and n > number:
                best, number = vid, n
        return best  # type: ignore[no-any-return]

    def _touched_version(self, conn: Connection, ds_id: int, vid: int, number: int, created: datetime) -> None:
        """Remember a version this transaction created or dated earlier (for :meth:`_version_at`)."""
        tx = tx_of(conn)
        tx.put(("vers", ds_id), (*(tx.get(("vers", ds_id)) or ()), (vid, number, created)))

    def _ingest_in(self, conn: Connection, item: _Incoming, action: str, detail: bool) -> IngestResult:
        """One event inside the caller's write transaction: raw event, derived state, audit entry."""
        changes, digest = item.changes, item.digest
        run_id = changes.run.run_id if changes.run else None
        tx = tx_of(conn)
        seen = tx.get(("event", digest))
        if seen is not None and seen is not _ABSENT:  # the same event again (a client retry): nothing to do
            return IngestResult(int(seen), True, (), run_id)
        row = {
            "event_hash": digest,
            "event_type": changes.event_type,
            "event_time": changes.event_time,
            "run_id": run_id,
            "payload": item.payload,
            "received_at": datetime.now(UTC),
        }
        event_id = tx.take_id("events") if seen is _ABSENT else None
        if event_id is not None:  # known new, with an id reserved by _prefetch: written with the batch
            tx.defer(conn, _EVENT_INSERT_WITH_ID, "events", {"id": event_id, **row})
        else:
            inserted = _EVENT_INSERT.scalar(conn, **row)
            if inserted is None:
                return IngestResult(int(_EVENT_BY_HASH.scalar(conn, h=digest)), True, (), run_id)
            event_id = int(inserted)
        tx.put(("event", digest), event_id)
        written = self._apply(conn, changes, event_id)
        targets = [ref for _, _, ref in written] or ([f"run:{run_id}"] if run_id else [])
        # An event that names datasets but no version of them (classify, facets) targets the datasets.
        targets = targets or [str(Ref(d.namespace, d.name)) for d in changes.datasets]
        self._append_audit(
            conn,
            actor=changes.actor,
            action=action,
            target=", ".join(targets)[:2000] if targets else None,
            details=with_origin({"event": digest, "new": [ref for _, new, ref in written if new]}, item.origin),
            event_id=event_id,
        )
        # Read inside the transaction, after every change of this event.
        result = [(self._version_by_id(vid, conn), new) for vid, new, _ in written] if detail else []
        return IngestResult(event_id, False, tuple(result), run_id)

    def _apply(self, conn: Connection, changes: Changes, event_id: int = 0) -> list[tuple[int, bool, str]]:
        """Apply an event's changes; the versions it wrote, as (id, whether new, ref)."""
        run_pk = self._apply_run(conn, changes.run) if changes.run else None
        touched: list[tuple[int, bool, str]] = []
        io_rows: list[dict[str, Any]] = []
        rows: list[Touched] = []
        for ds in changes.datasets:
            ds_id = self._dataset_id(conn, ds.namespace, ds.name, ds.kind, changes.event_time)
            info = ds.version
            if info is None and ds.role == "output" and changes.run is not None:
                info = VersionInfo(key=f"run:{changes.run.run_id}")
            if info is None and ds.role == "input":
                vid = self._version_at(conn, ds_id, changes.event_time)
                if vid is None and run_pk is not None:
                    # A source nobody reported writing (a Spark or dbt source table):
                    # it gets one version, "observed", so lineage reaches it.
                    vid, _, _ = self._upsert_version(conn, ds_id, VersionInfo(key=OBSERVED), None, changes)
                if vid is not None and run_pk is not None:
                    io_rows.append({"run_pk": run_pk, "direction": t.INPUT, "version_id": vid})
                rows.append(Touched(ds, ds_id, vid))
                continue
            if info is None:
                rows.append(Touched(ds, ds_id, None))
                continue
            producer = run_pk if ds.role == "output" else None
            vid, new, number = self._upsert_version(conn, ds_id, info, producer, changes)
            if run_pk is not None:
                direction = t.OUTPUT if ds.role == "output" else t.INPUT
                io_rows.append({"run_pk": run_pk, "direction": direction, "version_id": vid})
            for alias in ds.aliases:
                self._set_alias(conn, ds_id, alias, vid, changes)
            if ds.checks:
                self._add_checks(conn, vid, event_id, ds.checks, changes)
            rows.append(Touched(ds, ds_id, vid))
            touched.append((vid, new, str(Ref(ds.namespace, ds.name, str(number)))))
        tx = tx_of(conn)
        for row in io_rows:
            tx.defer(conn, _RUN_IO_INSERT, "run_io", row)
        applied = Applied(
            conn,
            self.dialect,
            changes,
            event_id,
            run_pk,
            tuple(rows),
            dataset_of=lambda namespace, name: self._dataset_id(conn, namespace, name, "dataset", changes.event_time),
        )
        for applier in appliers():
            applier(applied)
        return touched

    def _namespace_id(self, conn: Connection, name: str, when: datetime) -> int:
        tx = tx_of(conn)
        key = ("ns", name)
        row = tx.get(key) or _NS_FIND.first(conn, n=name)
        if row is None:
            row = _IdRow(int(_NS_INSERT.scalar(conn, n=name, w=when)), when)
        else:
            row = _IdRow(int(row.id), _keep_earliest(conn, t.namespaces, t.namespaces.c.id, row, when))
        tx.put(key, row)
        return row.id

    def _dataset_id(self, conn: Connection, namespace: str, name: str, kind: str, when: datetime) -> int:
        nid = self._namespace_id(conn, namespace, when)
        tx = tx_of(conn)
        key = ("ds", nid, name)
        row = tx.get(key) or _DS_FIND.first(conn, ns=nid, n=name)
        if row is None:
            row = _IdRow(int(_DS_INSERT.scalar(conn, ns=nid, n=name, k=kind, w=when)), when)
        else:
            row = _IdRow(int(row.id), _keep_earliest(conn, t.datasets, t.datasets.c.id, row, when))
        tx.put(key, row)
        return row.id

    def _upsert_version(
        self, conn: Connection, ds_id: int, info: VersionInfo, run_pk: int | None, changes: Changes
    ) -> tuple[int, bool, int]:
        # Insert first (one round trip for the common case, a new version); a known key inserts nothing.
        created = _VERSION_INSERT.first(
            conn,
            dataset_id=ds_id,
            version_key=info.key,
            digest=str(info.digest) if info.digest else None,
            size=info.size,
            uri=info.uri,
            format=info.format,
            file_count=len(info.files) if info.files is not None else None,
            created_at=changes.event_time,
            created_by=info.created_by or changes.actor,
            host=info.host,
            message=info.message,
            run_pk=run_pk,
            properties=info.properties or {},
            profile=info.profile,
        )
        if created is None:
            row = _VERSION_BY_KEY.first(conn, d=ds_id, k=info.key)
            self._complete_version(conn, ds_id, row, info, run_pk, changes)
            return int(row.id), False, int(row.number)
        vid, number = int(created.id), int(created.number)
        self._touched_version(conn, ds_id, vid, number, changes.event_time)
        if info.files:
            conn.execute(
                t.version_files.insert(),
                [{"version_id": vid, "path": f.path, "size": f.size, "sha256": f.digest.hex} for f in info.files],
            )
        if info.kind != "dataset":
            conn.execute(t.datasets.update().where(t.datasets.c.id == ds_id).values(kind=info.kind))
        return vid, True, number

    def _complete_version(
        self, conn: Connection, ds_id: int, row: Any, info: VersionInfo, run_pk: int | None, changes: Changes
    ) -> None:
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
            self._touched_version(conn, ds_id, int(row.id), int(row.number), changes.event_time)
        if fill:
            conn.execute(t.versions.update().where(v.id == row.id).values(**fill))
        if "file_count" in fill and info.files:
            conn.execute(
                t.version_files.insert(),
                [{"version_id": row.id, "path": f.path, "size": f.size, "sha256": f.digest.hex} for f in info.files],
            )
        if info.kind != "dataset":
            conn.execute(t.datasets.update().where(t.datasets.c.id == ds_id).values(kind=info.kind))

    def _add_checks(
        self, conn: Connection, vid: int, event_id: int, checks: tuple[dict[str, Any], ...], changes: Changes
    ) -> None:
        conn.execute(
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

    def _set_alias(self, conn: Connection, ds_id: int, alias: str, vid: int, changes: Changes) -> None:
        a = t.aliases.c
        current = conn.execute(select(a.updated_at).where(a.dataset_id == ds_id, a.alias == alias)).first()
        if current is None:
            conn.execute(
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
            conn.execute(
                t.aliases.update()
                .where(a.dataset_id == ds_id, a.alias == alias)
                .values(version_id=vid, updated_at=changes.event_time, updated_by=changes.actor)
            )

    def _apply_run(self, conn: Connection, rc: RunChange) -> int:
        nid = self._namespace_id(conn, rc.namespace, rc.event_time)
        j = t.jobs.c
        tx = tx_of(conn)
        key = ("job", nid, rc.job)
        job = tx.get(key) or _JOB_FIND.first(conn, ns=nid, n=rc.job)
        if job is None:
            job_id = int(_JOB_INSERT.scalar(conn, ns=nid, n=rc.job, k=rc.job_type, w=rc.event_time))
            tx.put(key, _IdRow(job_id, rc.event_time, rc.job_type))
        else:
            job_id = int(job.id)
            created = _keep_earliest(conn, t.jobs, j.id, job, rc.event_time)
            kind = job.type
            if rc.job_type and job.type != rc.job_type:
                conn.execute(t.jobs.update().where(j.id == job_id).values(type=rc.job_type))
                kind = rc.job_type
            tx.put(key, _IdRow(job_id, created, kind))
        cached = tx.get(("run", rc.run_id))
        row = _RUN_FIND.first(conn, r=rc.run_id) if cached is None else (None if cached is _ABSENT else cached)
        finished = rc.state.finished
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
            run_pk = _RUN_INSERT.scalar(
                conn,
                run_id=rc.run_id,
                job_id=job_id,
                state=rc.state.value,
                state_time=rc.event_time,
                started_at=rc.event_time,
                ended_at=rc.event_time if finished else None,
                params=rc.params or {},
                **{k: fields.get(k) for k in _RUN_FIELDS},
            )
            tx.put(("run", rc.run_id), _RunRow(run_pk, rc.state.value, rc.event_time, rc.event_time, rc.params or {}))
        else:
            run_pk = row.pk
            old = RunState(row.state)
            old_time = stored_time(row.state_time) or rc.event_time
            if old.finished:
                # A finished run never returns to RUNNING; between two endings the later one wins.
                take = finished and rc.event_time > old_time
            else:
                take = finished or _RANK[rc.state] >= _RANK[old]
            if take:
                fields.update(state=rc.state.value, state_time=rc.event_time)
                if finished:
                    fields["ended_at"] = rc.event_time
            started = stored_time(row.started_at)
            if started is None or rc.event_time < started:
                fields["started_at"] = rc.event_time
            if rc.params:
                fields["params"] = {**(row.params or {}), **rc.params}
            if fields:
                tx.defer(conn, _RUN_UPDATE, "runs", {"run_pk": run_pk, **fields})
            tx.put(
                ("run", rc.run_id),
                _RunRow(
                    run_pk,
                    fields.get("state", row.state),
                    fields.get("state_time", row.state_time),
                    fields.get("started_at", row.started_at),
                    fields.get("params", row.params),
                ),
            )
        if rc.metrics:
            m = t.run_metrics
            rows = [
                {"run_pk": run_pk, "key": k, "step": step, "value": value, "logged_at": rc.event_time}
                for k, series in rc.metrics.items()
                for step, value in series
            ]
            conn.execute(m.delete().where(m.c.run_pk == run_pk, m.c.key.in_(list(rc.metrics))))
            conn.execute(m.insert(), rows)
        return int(run_pk)

    def _append_audit(
        self,
        conn: Connection,
        *,
        actor: str,
        action: str,
        target: str | None,
        details: dict[str, Any],
        event_id: int | None,
        outcome: str = "allowed",
    ) -> None:
        tx = tx_of(conn)
        # The write lock is held: the head read once stays the head for the whole transaction.
        last = tx.get(("audit",)) or AUDIT_LAST.first(conn)
        seq, prev = (int(last.seq) + 1, last.hash) if last else (1, GENESIS)
        when = datetime.now(UTC)
        digest = entry_hash(prev, entry_content(seq, when.isoformat(), actor, action, target, outcome, details))
        tx.defer(
            conn,
            _AUDIT_INSERT,
            "audit",
            dict(
                seq=seq,
                time=when,
                actor=actor,
                action=action,
                target=target,
                outcome=outcome,
                details=details,
                event_id=event_id,
                prev_hash=prev,
                hash=digest,
            ),
        )
        tx.put(("audit",), AuditHead(seq, digest))
