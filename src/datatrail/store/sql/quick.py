"""The embedded store's fast path: SQLite without SQLAlchemy for the CLI's hottest questions.

Importing SQLAlchemy costs about 160 ms, more than everything else a re-add of
an unchanged 20,000-file tree does. :class:`EmbeddedStore` answers "is this
content already a version of that dataset?" with the standard library's
sqlite3 and opens the full :class:`SqlStore` only when something else is asked.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datatrail.core.canonical import GENESIS, entry_content, entry_hash
from datatrail.core.errors import DatatrailError, InvalidInput, NotFound, StoreNotFound, StoreUnavailable
from datatrail.core.model import Dataset, Digest, FileEntry, Ref, Run, Version
from datatrail.core.privacy import redact_description, redact_profile
from datatrail.core.times import stored_time
from datatrail.store.base import LOCATED, Store
from datatrail.store.delegate import DelegatingStore
from datatrail.store.sql.faults import fault_of, no_space_left
from datatrail.store.sql.locate import check_location
from datatrail.store.sql.pragmas import BUSY_TIMEOUT_S, sqlite_synchronous
from datatrail.store.sql.revisions import HEAD
from datatrail.store.sql.rows import (
    CHECK_COLUMNS,
    DATASET_COLUMNS,
    MIN_PREFIX,
    RUN_COLUMNS,
    SHOWN_CANDIDATES,
    VERSION_COLUMNS,
    ambiguous_ref,
    check_from_row,
    dataset_from_row,
    json_value,
    no_dataset,
    no_version,
    planned,
    run_from_row,
    run_prefix_error,
    version_from_row,
)
from datatrail.store.sql.writelock import WriterLock

if TYPE_CHECKING:  # annotations only: the record types a read does not return are not built (start-up)
    from datatrail.core.records import ContentLocation
    from datatrail.core.results import (
        CheckResult,
        DatasetDetails,
        Direction,
        JobSummary,
        LineageColumns,
        LineageResult,
        NamespaceSummary,
    )
    from datatrail.store.sql.nodecache import NodeCache

_Row = namedtuple("_Row", VERSION_COLUMNS)  # type: ignore[misc]
_RunRow = namedtuple("_RunRow", RUN_COLUMNS)  # type: ignore[misc]
_DatasetRow = namedtuple("_DatasetRow", DATASET_COLUMNS)  # type: ignore[misc]
_CheckRow = namedtuple("_CheckRow", CHECK_COLUMNS)  # type: ignore[misc]

# The statements below are those SqlStore's reads (reads.py, queries.py) compile to on SQLite,
# written out: building them needs SQLAlchemy. tests/test_quick_reads.py compares the answers.
_VERSIONS = (
    "SELECT v.id, v.number, v.version_key, v.digest, v.size, v.uri, v.format, v.file_count, v.created_at,"
    " v.created_by, v.host, v.message, v.properties, d.name, d.kind, n.name, r.run_id"
    " FROM versions v JOIN datasets d ON d.id = v.dataset_id JOIN namespaces n ON n.id = d.namespace_id"
    " LEFT JOIN runs r ON r.pk = v.run_pk"
)
_FIND = _VERSIONS + " WHERE n.name = ? AND d.name = ? AND v.version_key = ?"
_AT = _VERSIONS + f" WHERE (v.uri = ? OR v.digest = ?) AND d.deleted_at IS NULL ORDER BY v.id DESC LIMIT {LOCATED}"
_DATASETS = (
    "SELECT n.name, d.name, d.kind, d.description, d.created_at, count(v.id), max(v.number)"
    " FROM datasets d JOIN namespaces n ON n.id = d.namespace_id LEFT JOIN versions v ON v.dataset_id = d.id"
    " WHERE d.deleted_at IS NULL{where} GROUP BY n.name, d.id, d.name, d.kind, d.description, d.created_at"
    " ORDER BY n.name, d.name"
)
_DATASET = "SELECT d.id, d.kind, d.lifecycle, d.facets FROM datasets d JOIN namespaces n ON n.id = d.namespace_id"
_NAMED = _DATASET + " WHERE n.name = ? AND d.name = ?"
_LINKED = _DATASET + " WHERE d.id = (SELECT dataset_id FROM dataset_links WHERE namespace = ? AND name = ?)"
_RUNS = (
    "SELECT r.pk, r.run_id, r.job_id, r.state, r.state_time, r.started_at, r.ended_at, r.user, r.host, r.command,"
    " r.cwd, r.params, r.code, r.error, r.parent_run_id, r.workflow, r.facets, r.start_seen, r.start_hint,"
    " j.name, n.name"
    " FROM runs r JOIN jobs j ON j.id = r.job_id JOIN namespaces n ON n.id = j.namespace_id"
)
_RUN_IO = (
    _VERSIONS.replace(" FROM versions v", ", io.direction FROM versions v")
    + " JOIN run_io io ON io.version_id = v.id WHERE io.run_pk = ? ORDER BY d.name"
)
_JOBS = (
    "SELECT n.name, j.id, j.name, j.type, j.created_at, j.facets, j.description, j.run_count"
    " FROM jobs j JOIN namespaces n ON n.id = j.namespace_id{where} ORDER BY n.name, j.name"
)
# Each job's latest run, as ORDER BY started_at puts them (NULL first in SQLite), through ix_runs_job.
_LATEST_RUNS = (
    "SELECT j.id, r.run_id, r.state FROM jobs j JOIN runs r ON r.pk = (SELECT pk FROM runs"
    " WHERE job_id = j.id ORDER BY started_at DESC, pk DESC LIMIT 1)"
)
_PLANNED = (
    "SELECT n.name, d.name FROM planned_outputs p JOIN datasets d ON d.id = p.dataset_id"
    " JOIN namespaces n ON n.id = d.namespace_id WHERE p.run_pk = ? ORDER BY n.name, d.name"
)
_CHILDREN = "SELECT run_id FROM runs WHERE parent_run_id = ? ORDER BY started_at, run_id"
_CHECKS = "SELECT " + ", ".join(CHECK_COLUMNS) + " FROM check_results WHERE version_id = ?"
_LOCATIONS = (
    "SELECT c.remote, c.url, c.recorded_at, c.recorded_by FROM content_locations c"
    " JOIN versions v ON v.id = c.version_id WHERE v.dataset_id = ? AND v.number = ?"
    " ORDER BY c.recorded_at DESC, c.url"
)
_VERSION_ID = "SELECT id FROM versions WHERE dataset_id = ? AND number = ?"
_LOCATION_KNOWN = "SELECT remote FROM content_locations WHERE version_id = ? AND url = ?"
_LOCATION_INSERT = (
    "INSERT INTO content_locations (version_id, url, remote, recorded_at, recorded_by) VALUES (?, ?, ?, ?, ?)"
)
_LOCATION_UPDATE = "UPDATE content_locations SET remote = ?, recorded_at = ? WHERE version_id = ? AND url = ?"
_AUDIT_INSERT = (
    "INSERT INTO audit (seq, time, actor, action, target, outcome, details, event_id, prev_hash, hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class EmbeddedStore(DelegatingStore):
    """A SQLite store that defers SQLAlchemy until it is needed; otherwise a :class:`SqlStore`.

    The reads behind ``ls``, ``show``, ``versions``, ``runs`` and ``lineage`` and the audit
    entries they append are answered here with the standard library's sqlite3, giving what
    SqlStore gives; a read that would need more (a classified column to redact, a model
    card) opens the full store and asks it.
    """

    def __init__(self, uri: str, path: Path) -> None:
        self._uri = uri
        self._path = path
        self._real: Store | None = None
        self._db: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._writers = threading.Lock()
        # One thread at a time on the quick connection: its reads are transactions (BEGIN ... ROLLBACK),
        # and the thread that opens the full store closes it.
        self._reading = threading.RLock()
        self._lock = WriterLock(path)
        self._nodes: NodeCache | None = None  # lineage walks kept between calls (nodecache.py), once asked
        if not path.is_file():
            msg = f"no datatrail store at {str(path)!r}; run `datatrail init` to create one"
            raise StoreNotFound(msg)
        try:
            # Any thread may be the one that later swaps it for the full store (and closes it).
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60, check_same_thread=False)
            revision = db.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error:
            revision = None  # not a store yet, or not SQLite at all: SqlStore says which
        else:
            self._db = db
        if revision is None or revision[0] != HEAD:
            self.target()  # migrates, or refuses a newer store with a clear message

    @property
    def uri(self) -> str:
        return self._uri

    def target(self) -> Store:
        """The full SQL store, opened on first use (importing SQLAlchemy)."""
        if self._real is None:
            from datatrail.store.sql.store import SqlStore  # SQLAlchemy: only when the fast path is not enough

            real = SqlStore(self._uri)
            with self._reading, self._writers:
                if self._real is None:
                    self._real = real
                    self._close_quick()
                    return real
            real.close()  # another thread opened it meanwhile
        assert self._real is not None
        return self._real

    def prepare(self) -> None:
        self.target().prepare()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection | None]:
        """The quick connection inside one read transaction (one snapshot for every statement),
        held by this thread; None once the full store has replaced it."""
        with self._reading:
            db = self._db
            if db is None:
                yield None
                return
            try:
                db.execute("BEGIN")
                try:
                    yield db
                finally:
                    db.rollback()
            except sqlite3.Error as exc:
                raise self._fault(exc) from exc

    # ------------------------------------------------------------ reads

    def versions_by_number(self, keys: Sequence[tuple[str, str, int]]) -> list[Version]:
        return self.target().versions_by_number(keys)

    def find_version(self, namespace: str, name: str, version_key: str) -> Version | None:
        with self._read() as db:
            if db is not None:
                rows = [_Row(*r) for r in db.execute(_FIND, (namespace, name, version_key))]
                return self._versions(db, rows)[0] if rows else None
        return self.target().find_version(namespace, name, version_key)

    def versions_at(self, uri: str, digest: str | None = None) -> list[Version]:
        with self._read() as db:
            if db is not None:
                return self._versions(db, [_Row(*r) for r in db.execute(_AT, (uri, digest))])
        return self.target().versions_at(uri, digest)

    def list_datasets(
        self, namespace: str | None = None, *, name: str | None = None, match: str | None = None
    ) -> list[Dataset]:
        sql = _DATASETS.format(where="" if namespace is None else " AND n.name = ?")
        args = () if namespace is None else (namespace,)
        if name is None and match is None:  # the rest: the SQL store's reads
            with self._read() as db:
                if db is not None:
                    return [dataset_from_row(_DatasetRow(*r)) for r in db.execute(sql, args)]
        return self.target().list_datasets(namespace, name=name, match=match)

    def dataset_page(
        self, namespace: str, *, limit: int, offset: int = 0, after: str | None = None
    ) -> tuple[list[Dataset], int]:
        return self.target().dataset_page(namespace, limit=limit, offset=offset, after=after)

    def dataset_page_details(
        self, namespace: str, *, limit: int, offset: int = 0, after: str | None = None
    ) -> tuple[list[DatasetDetails], int]:
        return self.target().dataset_page_details(namespace, limit=limit, offset=offset, after=after)

    def dataset_details(self, keys: Sequence[tuple[str, str]]) -> list[DatasetDetails]:
        return self.target().dataset_details(keys)

    def resolve(self, ref: Ref) -> Version:
        with self._read() as db:
            if db is not None:
                ds = self._dataset(db, ref.namespace, ref.name)
                sel = ref.selector
                where, args = " WHERE v.dataset_id = ?", [ds[0]]
                if sel is None or sel == "latest":
                    where += " ORDER BY v.number DESC LIMIT 1"
                elif sel.isdigit():
                    where += " AND v.number = ?"
                    args.append(int(sel))
                elif sel.startswith("sha256:"):
                    where += " AND v.digest LIKE ? LIMIT 2"
                    args.append(sel.replace("%", "").replace("_", "") + "%")
                else:
                    where += " AND v.id = (SELECT version_id FROM aliases WHERE dataset_id = ? AND alias = ?)"
                    args += [ds[0], sel]
                rows = [_Row(*r) for r in db.execute(_VERSIONS + where, args)]
                if len(rows) > 1:
                    raise ambiguous_ref(ref)
                if not rows:
                    raise no_version(ref, ds[2], ds[3])
                return self._versions(db, rows)[0]
        return self.target().resolve(ref)

    def list_versions(self, namespace: str, name: str) -> list[Version]:
        with self._read() as db:
            if db is not None:
                ds = self._dataset(db, namespace, name)
                sql = _VERSIONS + " WHERE v.dataset_id = ? ORDER BY v.number"
                return self._versions(db, [_Row(*r) for r in db.execute(sql, (ds[0],))])
        return self.target().list_versions(namespace, name)

    def manifest(self, version: Version) -> list[FileEntry]:
        sql = "SELECT path, size, sha256 FROM version_files WHERE version_id = ? ORDER BY path"
        with self._read() as db:
            if db is not None:
                return [FileEntry(p, n, Digest.sha256(h)) for p, n, h in db.execute(sql, (version.id,))]
        return self.target().manifest(version)

    def profile(self, version: Version) -> dict[str, Any] | None:
        with self._read() as db:
            if db is not None and not _classified(db):
                row = db.execute("SELECT profile FROM versions WHERE id = ?", (version.id,)).fetchone()
                return redact_profile(json_value(row[0]) if row else None, {})
        return self.target().profile(version)  # redaction follows lineage: SqlStore's classifications.py

    def describe(self, version: Version) -> dict[str, Any]:
        sql = (
            "SELECT v.schema, v.stats, d.facets, d.lifecycle FROM versions v JOIN datasets d ON d.id = v.dataset_id"
            " WHERE v.id = ?"
        )
        with self._read() as db:
            if db is not None and not _classified(db):
                row = db.execute(sql, (version.id,)).fetchone()
                if row is None:
                    msg = f"no version {version.ref}"
                    raise NotFound(msg)
                schema, stats, facets, lifecycle = row
                described = {
                    "schema": json_value(schema),
                    "stats": json_value(stats),
                    "facets": json_value(facets) or {},
                    "lifecycle": lifecycle,
                }
                return redact_description(described, {})
        return self.target().describe(version)  # redaction follows lineage: SqlStore's classifications.py

    def check_results(self, version: Version) -> list[CheckResult]:
        sql = _CHECKS + " ORDER BY checked_at, event_id, position"
        with self._read() as db:
            if db is not None and not _classified(db):
                rows: list[Any] = [_CheckRow(*r) for r in db.execute(sql, (version.id,))]
                return [check_from_row(r, False, json_value(r.observed)) for r in rows]
        return self.target().check_results(version)

    def get_run(self, run_id: str, visible: Callable[[str], bool] | None = None) -> Run:
        if visible is not None:
            return self.target().get_run(run_id, visible)  # (a filtered lookup is the server's)
        if len(run_id) < MIN_PREFIX:
            raise run_prefix_error(run_id, None)
        with self._read() as db:
            if db is not None:
                if len(run_id) < 36:
                    prefix = run_id.replace("%", "").replace("_", "")
                    sql = _RUNS + f" WHERE r.run_id LIKE ? ORDER BY r.run_id LIMIT {SHOWN_CANDIDATES + 1}"
                    rows = db.execute(sql, (prefix + "%",))
                else:
                    rows = db.execute(_RUNS + " WHERE r.run_id = ?", (run_id,))
                found: list[Any] = [_RunRow(*r) for r in rows]
                if len(found) != 1:
                    raise run_prefix_error(run_id, [r.run_id for r in found])
                return self._run(db, found[0])
        return self.target().get_run(run_id, visible)

    def list_runs(self, job: str | None = None, limit: int = 100) -> list[Run]:
        where, args = ("", [limit]) if job is None else (" WHERE j.name = ?", [job, limit])
        with self._read() as db:
            if db is not None:
                sql = _RUNS + where + " ORDER BY r.started_at DESC LIMIT ?"
                return [self._run(db, row) for row in [_RunRow(*r) for r in db.execute(sql, args)]]
        return self.target().list_runs(job, limit)

    def list_jobs(
        self, namespace: str | None = None, *, name: str | None = None, match: str | None = None
    ) -> list[JobSummary]:
        sql = _JOBS.format(where="" if namespace is None else " WHERE n.name = ?")
        args = () if namespace is None else (namespace,)
        with self._read() as db:
            if db is not None and name is None and match is None:
                from datatrail.core.results import JobSummary  # start-up: built only when jobs are listed

                rows = db.execute(sql, args).fetchall()
                latest: dict[int, tuple[str, str]] = {}
                for job_id, run_id, state in db.execute(_LATEST_RUNS):
                    latest[job_id] = (run_id, state)
                return [
                    JobSummary(
                        ns,
                        name,
                        kind,
                        stored_time(created),
                        count,
                        latest[jid][0] if jid in latest else None,
                        latest[jid][1] if jid in latest else None,
                        json_value(facets) or {},
                        description,
                    )
                    for ns, jid, name, kind, created, facets, description, count in rows
                ]
        return self.target().list_jobs(namespace, name=name, match=match)

    def jobs_by_name(self, keys: Sequence[tuple[str, str]]) -> list[JobSummary]:
        return self.target().jobs_by_name(keys)

    def list_namespaces(self, name: str | None = None) -> list[NamespaceSummary]:
        return self.target().list_namespaces(name)

    def job_page(self, namespace: str, *, limit: int, offset: int = 0) -> tuple[list[JobSummary], int]:
        return self.target().job_page(namespace, limit=limit, offset=offset)

    def lineage(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageResult:
        return self.lineage_columns(start, direction, depth, as_of).result()

    def connected(self, start: Sequence[Version], depth: int, as_of: datetime | None = None) -> LineageResult:
        ids = [v.id for v in start if v.id is not None and (as_of is None or v.created_at <= as_of)]
        with self._read() as db:
            if db is not None:
                from datatrail.store.sql.lineage import traverse_connected_sqlite  # start-up: only lineage walks

                return traverse_connected_sqlite(db, ids, depth, as_of)
        return self.target().connected(start, depth, as_of)

    def lineage_columns(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageColumns:
        ids = [v.id for v in start if v.id is not None and (as_of is None or v.created_at <= as_of)]
        with self._read() as db:
            if db is not None:
                from datatrail.store.sql.lineage import traverse_sqlite  # start-up: only `lineage` walks
                from datatrail.store.sql.nodecache import NodeCache, cache_bytes  # start-up: as above

                if self._nodes is None:  # the walks kept between calls, as the full store keeps them
                    self._nodes = NodeCache(cache_bytes())
                return traverse_sqlite(db, ids, direction, depth, as_of, self._nodes)
        return self.target().lineage_columns(start, direction, depth, as_of)

    def _dataset(self, db: sqlite3.Connection, namespace: str, name: str) -> tuple[Any, ...]:
        row = db.execute(_NAMED, (namespace, name)).fetchone()
        if row is None:  # another name of a dataset (its symlinks): the dataset it names
            row = db.execute(_LINKED, (namespace, name)).fetchone()
        if row is None:
            raise no_dataset(namespace, name)
        return tuple(row)

    def _versions(self, db: sqlite3.Connection, rows: Sequence[Any]) -> list[Version]:
        aliases: dict[int, list[str]] = {}
        for i in range(0, len(rows), 500):
            chunk = [r.id for r in rows[i : i + 500]]
            marks = ",".join("?" * len(chunk))
            for vid, alias in db.execute(f"SELECT version_id, alias FROM aliases WHERE version_id IN ({marks})", chunk):
                aliases.setdefault(vid, []).append(alias)
        return [version_from_row(r, aliases.get(r.id, [])) for r in rows]

    def _run(self, db: sqlite3.Connection, row: Any) -> Run:
        metrics = {
            key: json_value(value)
            for key, value in db.execute(
                "SELECT key, value FROM run_metrics WHERE run_pk = ? ORDER BY key, step", (row.pk,)
            )
        }
        io = [(_Row(*r[:-1]), r[-1]) for r in db.execute(_RUN_IO, (row.pk,))]
        versions = self._versions(db, [r for r, _ in io])
        inputs = [v for v, (_, d) in zip(versions, io, strict=True) if d != _OUTPUT]
        outputs = [v for v, (_, d) in zip(versions, io, strict=True) if d == _OUTPUT]
        planned_outputs = planned(db.execute(_PLANNED, (row.pk,)), outputs)
        children = tuple(r for (r,) in db.execute(_CHILDREN, (row.run_id,)))
        return run_from_row(row, metrics, inputs, outputs, planned_outputs, children)

    # ------------------------------------------------------------ content locations (a push's note)

    def content_locations(self, version: Version) -> list[ContentLocation]:
        with self._read() as db:
            if db is not None:
                from datatrail.core.records import ContentLocation  # start-up: built only for a push's note

                dataset_id = self._dataset(db, version.namespace, version.name)[0]
                out = []
                for remote, url, recorded_at, recorded_by in db.execute(_LOCATIONS, (dataset_id, version.number)):
                    when = stored_time(recorded_at)
                    assert when is not None
                    out.append(
                        ContentLocation(version.namespace, version.name, version.number, remote, url, when, recorded_by)
                    )
                return out
        return self.target().content_locations(version)

    def record_content_location(
        self, versions: Sequence[Version], remote: str, url: str, *, actor: str, origin: str | None = None
    ) -> int:
        """As SqlStore's (store/sql/locations.py), on sqlite3: a push need not import SQLAlchemy.

        Every version already recorded at ``url`` under ``remote`` (a push that sent nothing new): known by
        a read, without a write transaction (nor its sync at commit)."""
        check_location(remote, url)
        if not versions or self._located(versions, remote, url):
            return 0
        with self._writers:
            if self._real is None:
                details = {"remote": remote, "url": url, "versions": [v.ref for v in versions]}
                if origin:
                    details["origin"] = origin
                target = versions[0].ref if len(versions) == 1 else None
                added = [0]
                now = _stored(datetime.now(UTC))

                def write(db: sqlite3.Connection) -> bool:
                    changed = False
                    for v in versions:
                        dataset_id = self._dataset(db, v.namespace, v.name)[0]
                        found = db.execute(_VERSION_ID, (dataset_id, v.number)).fetchone()
                        if found is None:
                            msg = f"{v.ref} does not exist in the store; `datatrail versions NAME` lists its versions"
                            raise NotFound(msg)
                        known = db.execute(_LOCATION_KNOWN, (found[0], url)).fetchone()
                        if known is None:
                            db.execute(_LOCATION_INSERT, (found[0], url, remote, now, actor))
                            added[0] += 1
                        elif known[0] != remote:
                            db.execute(_LOCATION_UPDATE, (remote, now, found[0], url))
                        changed = changed or known is None or known[0] != remote
                    return changed  # recorded meanwhile by another push: no entry, as for SqlStore

                with self._lock.held():
                    self._append([target], actor, "content.locate", "allowed", details, before=write)
                return added[0]
        return self._real.record_content_location(versions, remote, url, actor=actor, origin=origin)

    def _located(self, versions: Sequence[Version], remote: str, url: str) -> bool:
        """Whether every version is recorded at ``url`` under ``remote`` already (False when unsure)."""
        with self._read() as db:
            if db is None:
                return False
            for v in versions:
                try:
                    dataset_id = self._dataset(db, v.namespace, v.name)[0]
                except NotFound:
                    return False  # the write says so
                found = db.execute(_VERSION_ID, (dataset_id, v.number)).fetchone()
                known = db.execute(_LOCATION_KNOWN, (found[0], url)).fetchone() if found else None
                if known is None or known[0] != remote:
                    return False
        return True

    # ------------------------------------------------------------ the read audit

    def record_access(
        self,
        *,
        actor: str,
        action: str,
        target: str | None,
        outcome: str = "allowed",
        origin: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """One audit entry, chained as SqlStore's AuditTables.append chains it, in one serialised write."""
        clipped = target[:2000] if target else None
        entry = {**(details or {}), "origin": origin} if origin else (details or {})
        with self._writers:
            if self._real is None:
                with self._lock.held():
                    self._append([clipped], actor, action, outcome, entry)
                return
        self._real.record_access(
            actor=actor, action=action, target=target, outcome=outcome, origin=origin, details=details
        )

    def record_accesses(self, *, actor: str, action: str, targets: Sequence[str], origin: str | None = None) -> None:
        """An entry for each target, as :meth:`record_access` appends it, all in one serialised write."""
        if not targets:
            return
        entry = {"origin": origin} if origin else {}
        with self._writers:
            if self._real is None:
                with self._lock.held():
                    self._append([t[:2000] for t in targets], actor, action, "allowed", entry)
                return
        self._real.record_accesses(actor=actor, action=action, targets=targets, origin=origin)

    def _append(
        self,
        targets: Sequence[str | None],
        actor: str,
        action: str,
        outcome: str,
        details: dict[str, Any],
        *,
        before: Callable[[sqlite3.Connection], bool] | None = None,
    ) -> None:
        """Append an audit entry per target in a write transaction of their own, after ``before``'s writes
        in the same one (none when ``before`` says it wrote nothing)."""
        db = self._write_connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            if before is not None and not before(db):
                targets = ()
            last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (int(last[0]), last[1]) if last else (0, GENESIS)
            for target in targets:
                seq += 1
                when = datetime.now(UTC)
                content = entry_content(seq, when.isoformat(), actor, action, target, outcome, details)
                digest = entry_hash(prev, content)
                row = (seq, _stored(when), actor, action, target, outcome, json.dumps(details), None, prev)
                db.execute(_AUDIT_INSERT, (*row, digest))
                prev = digest
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:  # SQLite rolls back by itself on a full disk
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise self._fault(exc) from exc
            raise

    def _fault(self, exc: sqlite3.Error) -> Exception:
        """What a sqlite3 error means to the user, as SqlStore says it (store/sql/faults.py); else itself."""
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        known: DatatrailError | None = fault_of(detail)
        if known is None and no_space_left(str(self._path)):
            # Opening a WAL store's -shm file on a full disk is an I/O error, not SQLITE_FULL.
            msg = f"cannot use the store at {self._path}: its disk is full ({detail}); free space and retry"
            known = StoreUnavailable(msg)
        return known or exc

    def _write_connection(self) -> sqlite3.Connection:
        if self._writer is None:
            db = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            # As engine.py configures SqlStore's connections.
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            db.execute(f"PRAGMA synchronous = {sqlite_synchronous()}")
            self._writer = db
        return self._writer

    def _close_quick(self) -> None:
        for db in (self._db, self._writer):
            if db is not None:
                db.close()
        self._db = self._writer = None
        self._nodes = None  # the full store keeps its own
        self._lock.close()

    def close(self) -> None:
        self._close_quick()
        if self._real is not None:
            self._real.close()


_OUTPUT = 1  # run_io.direction of an output (tables.OUTPUT)


def _classified(db: sqlite3.Connection) -> bool:
    """Whether anything in the store is classified (then reads are redacted, by SqlStore)."""
    return db.execute("SELECT dataset_id FROM classifications LIMIT 1").fetchone() is not None


def _stored(when: datetime) -> str:
    """A UTC time as SQLAlchemy's SQLite DateTime stores it."""
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")


def sqlite_file(uri: str) -> Path:
    """The file of a ``sqlite:///path`` URI (``sqlite:////abs/path`` for an absolute one)."""
    rest = uri.removeprefix("sqlite:///").split("?", 1)[0] if uri.startswith("sqlite:///") else ""
    if not rest or rest == ":memory:":
        msg = f"invalid store URI {uri!r}: an embedded store needs a file, as in sqlite:///path/to/trail.db"
        raise InvalidInput(msg)
    return Path(rest)
