"""The SQL store: SQLite (embedded) and PostgreSQL, through SQLAlchemy Core."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, event, func, select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from datatrail.core.chain import GENESIS, row_hash
from datatrail.core.errors import DatatrailError, InvalidInput, NotFound, StoreUnavailable
from datatrail.core.model import Dataset, Digest, FileEntry, Ref, Run, RunState, Version
from datatrail.core.privacy import redact_profile
from datatrail.core.results import AuditEntry, CheckResult, ColumnLineageResult, Direction, JobSummary, LineageResult
from datatrail.core.times import stored_time, utc
from datatrail.store.sql import tables as t
from datatrail.store.sql import txcache
from datatrail.store.sql.column_lineage import column_traverse
from datatrail.store.sql.engine import WRITE_OPTION, ensure_schema, make_engine, sqlite_path
from datatrail.store.sql.facet_map import RENAMED_AWAY
from datatrail.store.sql.faults import known_fault
from datatrail.store.sql.fsck import structural_problems
from datatrail.store.sql.ingest import AUDIT_LAST, PG_WRITE_LOCK, AuditHead, IngestMixin
from datatrail.store.sql.lineage import traverse
from datatrail.store.sql.ml import MLReads
from datatrail.store.sql.prepared import pipelined
from datatrail.store.sql.rows import json_value as _json
from datatrail.store.sql.rows import version_from_row
from datatrail.store.sql.security import SecurityStore, audit_entry, effective_classifications
from datatrail.store.sql.txcache import flush_deferred
from datatrail.store.sql.writelock import WriterLock
from datatrail.store.wire import audit_to_wire


def _flush_before_execute(conn: Connection, *_: Any) -> None:
    flush_deferred(conn)


class _NoFileLock:
    """PostgreSQL: its advisory lock orders writers (see SqlStore._write)."""

    @contextmanager
    def held(self) -> Iterator[None]:
        yield

    def close(self) -> None:
        return None


_NO_FILE_LOCK = _NoFileLock()


def _event_namespaces(event: dict[str, Any]) -> set[str]:
    """The namespaces an event names: its job's and its datasets'."""
    items = [event.get("job"), event.get("dataset"), *(event.get("inputs") or ()), *(event.get("outputs") or ())]
    return {item["namespace"] for item in items if isinstance(item, dict) and isinstance(item.get("namespace"), str)}


class SqlStore(IngestMixin, MLReads, SecurityStore):
    """A datatrail store in SQLite or PostgreSQL.

    >>> store = SqlStore("sqlite:////tmp/example-trail.db", create=True)  # doctest: +SKIP
    """

    def __init__(self, uri: str, *, create: bool = False) -> None:
        self.uri = uri
        self.engine = make_engine(uri, create=create)
        try:
            ensure_schema(self.engine)
        except BaseException:
            self.engine.dispose()  # a refused store must not leak a pooled connection
            raise
        self.dialect = self.engine.dialect.name
        # Writers of this process take turns here before the database lock: a waiting
        # thread wakes the moment the lock is free, where SQLite's busy handler would
        # poll it with growing sleeps (the server's threads all write through one store).
        self._writers = threading.RLock()
        # ... and writers of all processes on a lock file, which hands over at once (writelock.py).
        path = sqlite_path(uri)
        self._file_lock = WriterLock(path) if path is not None else _NO_FILE_LOCK
        self._init_ingest()
        # Deferred writes reach the database before any statement SQLAlchemy runs in their transaction.
        event.listen(self.engine, "before_execute", _flush_before_execute)

    def close(self) -> None:
        self.engine.dispose()
        self._file_lock.close()

    def prepare(self) -> None:
        return None  # opened in __init__

    @property
    def accounts(self) -> SqlStore:
        """Users and tokens live in the store's own tables."""
        return self

    # ------------------------------------------------------------ transactions

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with (
                self._writers,
                self._file_lock.held(),
                self.engine.connect().execution_options(**{WRITE_OPTION: True}) as conn,
            ):
                with conn.begin():
                    head: Any = None
                    if self.dialect == "postgresql":
                        # One writer at a time keeps version numbers and the audit chain gapless.
                        # The audit head is read in the same round trip, by a statement that
                        # starts (and takes its snapshot) once the lock is held.
                        with pipelined(conn):
                            PG_WRITE_LOCK.run(conn)
                            head = AUDIT_LAST.first(conn) or AuditHead(0, GENESIS)
                    else:
                        # A restore writes a new epoch into the file header: forget the ids it replaced.
                        self._known.check_epoch(int(conn.exec_driver_sql("PRAGMA user_version").scalar() or 0))
                    tx = txcache.begin(conn, self._known)
                    if head is not None:
                        tx.put(("audit",), head)
                    try:
                        yield conn
                        tx.flush(conn)  # the deferred writes, before the commit
                    finally:
                        txcache.end(conn)
                tx.committed()
        except DatatrailError:
            raise
        except OperationalError as exc:
            known = known_fault(exc)
            if known is not None:
                raise known from exc
            msg = f"the store is unavailable: {str(exc.orig).strip().splitlines()[0]}; retry later"
            raise StoreUnavailable(msg) from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            conn = self.engine.connect()
        except OperationalError as exc:
            msg = f"the store is unavailable: {str(exc.orig).strip().splitlines()[0]}; retry later"
            raise StoreUnavailable(msg) from exc
        with conn:
            try:
                yield conn
            except DBAPIError as exc:
                broken = known_fault(exc)
                if broken is not None:
                    raise broken from exc
                if isinstance(exc, OperationalError):
                    # The connection broke under a read (the database restarted): retry later.
                    msg = f"the store is unavailable: {str(exc.orig).strip().splitlines()[0]}; retry later"
                    raise StoreUnavailable(msg) from exc
                raise

    # ------------------------------------------------------------ reads

    def _version_select(self) -> Any:
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

    def _to_versions(self, conn: Connection, rows: Sequence[Any]) -> list[Version]:
        ids = [r.id for r in rows]
        names: dict[int, list[str]] = {}
        for i in range(0, len(ids), 500):
            for a in conn.execute(
                select(t.aliases.c.version_id, t.aliases.c.alias).where(t.aliases.c.version_id.in_(ids[i : i + 500]))
            ):
                names.setdefault(a.version_id, []).append(a.alias)
        return [version_from_row(r, names.get(r.id, [])) for r in rows]

    def _version_by_id(self, vid: int | None, conn: Connection | None = None) -> Version:
        if conn is None:
            with self._read() as c:
                return self._version_by_id(vid, c)
        rows = conn.execute(self._version_select().where(t.versions.c.id == vid)).all()
        return self._to_versions(conn, rows)[0]

    def _dataset_row(self, conn: Connection, namespace: str, name: str) -> Any:
        d, n = t.datasets.c, t.namespaces.c
        row = conn.execute(
            select(d.id, d.kind, d.lifecycle, d.facets)
            .join(t.namespaces, n.id == d.namespace_id)
            .where(n.name == namespace, d.name == name)
        ).first()
        if row is None:
            where = "" if namespace == "default" else f" in namespace {namespace!r}"
            msg = f"no dataset named {name!r}{where}; `datatrail ls` lists the datasets"
            raise NotFound(msg)
        return row

    def list_datasets(self, namespace: str | None = None) -> list[Dataset]:
        d, n, v = t.datasets.c, t.namespaces.c, t.versions.c
        q = (
            select(
                n.name.label("namespace"),
                d.name,
                d.kind,
                d.description,
                d.created_at,
                func.count(v.id).label("version_count"),
                func.max(v.number).label("latest"),
            )
            .select_from(t.datasets)
            .join(t.namespaces, n.id == d.namespace_id)
            .outerjoin(t.versions, v.dataset_id == d.id)
            .where(d.deleted_at.is_(None))
            .group_by(n.name, d.id, d.name, d.kind, d.description, d.created_at)
            .order_by(n.name, d.name)
        )
        if namespace is not None:
            q = q.where(n.name == namespace)
        with self._read() as conn:
            return [
                Dataset(
                    r.namespace, r.name, r.kind, r.description, stored_time(r.created_at), r.version_count, r.latest
                )
                for r in conn.execute(q)
            ]

    def resolve(self, ref: Ref) -> Version:
        v = t.versions.c
        with self._read() as conn:
            ds = self._dataset_row(conn, ref.namespace, ref.name)
            sel = ref.selector
            q = self._version_select().where(v.dataset_id == ds.id)
            if sel is None or sel == "latest":
                q = q.order_by(v.number.desc()).limit(1)
            elif sel.isdigit():
                q = q.where(v.number == int(sel))
            elif sel.startswith("sha256:"):
                q = q.where(v.digest.like(sel.replace("%", "").replace("_", "") + "%")).limit(2)
            else:
                alias_vid = (
                    select(t.aliases.c.version_id)
                    .where(t.aliases.c.dataset_id == ds.id, t.aliases.c.alias == sel)
                    .scalar_subquery()
                )
                q = q.where(v.id == alias_vid)
            rows = conn.execute(q).all()
            if len(rows) > 1:
                msg = f"ref {str(ref)!r} is ambiguous: several versions match; give more hex digits"
                raise InvalidInput(msg)
            if not rows:
                what = "has no versions" if sel in (None, "latest") else f"has no version {sel!r}"
                msg = f"dataset {ref.name!r} {what}; `datatrail versions {ref.name}` lists them"
                moved = (_json(ds.facets) or {}).get("renamedTo") if ds.lifecycle == RENAMED_AWAY else None
                if isinstance(moved, dict) and isinstance(moved.get("value"), dict):
                    to = moved["value"]
                    msg = (
                        f"dataset {ref.name!r} {what}: it was renamed to {to.get('name')!r}"
                        f" in namespace {to.get('namespace')!r}; use that name"
                    )
                raise NotFound(msg)
            return self._to_versions(conn, rows)[0]

    def find_version(self, namespace: str, name: str, version_key: str) -> Version | None:
        d, n, v = t.datasets.c, t.namespaces.c, t.versions.c
        with self._read() as conn:
            rows = conn.execute(
                self._version_select().where(n.name == namespace, d.name == name, v.version_key == version_key)
            ).all()
            return self._to_versions(conn, rows)[0] if rows else None

    def list_versions(self, namespace: str, name: str) -> list[Version]:
        with self._read() as conn:
            ds = self._dataset_row(conn, namespace, name)
            rows = conn.execute(
                self._version_select().where(t.versions.c.dataset_id == ds.id).order_by(t.versions.c.number)
            ).all()
            return self._to_versions(conn, rows)

    def manifest(self, version: Version) -> list[FileEntry]:
        f = t.version_files.c
        with self._read() as conn:
            rows = conn.execute(select(f.path, f.size, f.sha256).where(f.version_id == version.id).order_by(f.path))
            return [FileEntry(r.path, r.size, Digest.sha256(r.sha256)) for r in rows]

    def _run_select(self) -> Any:
        r, j, n = t.runs.c, t.jobs.c, t.namespaces.c
        return (
            select(t.runs, j.name.label("job"), n.name.label("namespace"))
            .join(t.jobs, j.id == r.job_id)
            .join(t.namespaces, n.id == j.namespace_id)
        )

    def _to_run(self, conn: Connection, row: Any, with_io: bool) -> Run:
        metrics: dict[str, Any] = {}
        inputs: list[Version] = []
        outputs: list[Version] = []
        if with_io:
            m = t.run_metrics.c
            for mr in conn.execute(select(m.key, m.value).where(m.run_pk == row.pk).order_by(m.key, m.step)):
                metrics[mr.key] = mr.value
            io = t.run_io.c
            rows = conn.execute(
                self._version_select()
                .add_columns(io.direction)
                .join(t.run_io, io.version_id == t.versions.c.id)
                .where(io.run_pk == row.pk)
                .order_by(t.datasets.c.name)
            ).all()
            for version, r in zip(self._to_versions(conn, rows), rows, strict=True):
                (outputs if r.direction == t.OUTPUT else inputs).append(version)
        return Run(
            id=row.run_id,
            namespace=row.namespace,
            job=row.job,
            state=RunState(row.state),
            started_at=stored_time(row.started_at),
            ended_at=stored_time(row.ended_at),
            user=row.user,
            host=row.host,
            command=row.command,
            cwd=row.cwd,
            params=row.params or {},
            metrics=metrics,
            code=row.code or {},
            error=row.error,
            parent_run_id=row.parent_run_id,
            workflow=row.workflow,
            inputs=tuple(inputs),
            outputs=tuple(outputs),
            facets=_json(row.facets) or {},
        )

    def get_run(self, run_id: str) -> Run:
        with self._read() as conn:
            if len(run_id) < 36:
                rows = conn.execute(
                    self._run_select().where(t.runs.c.run_id.like(run_id.replace("%", "") + "%")).limit(2)
                ).all()
            else:
                rows = conn.execute(self._run_select().where(t.runs.c.run_id == run_id)).all()
            if len(rows) > 1:
                msg = f"run id prefix {run_id!r} is ambiguous; give more characters"
                raise InvalidInput(msg)
            if not rows:
                msg = f"no run with id {run_id!r}; `datatrail runs` lists them"
                raise NotFound(msg)
            return self._to_run(conn, rows[0], with_io=True)

    def list_runs(self, job: str | None = None, limit: int = 100) -> list[Run]:
        q = self._run_select().order_by(t.runs.c.started_at.desc()).limit(limit)
        if job is not None:
            q = q.where(t.jobs.c.name == job)
        with self._read() as conn:
            return [self._to_run(conn, row, with_io=True) for row in conn.execute(q).all()]

    def list_jobs(self, namespace: str | None = None) -> list[JobSummary]:
        j, n, r = t.jobs.c, t.namespaces.c, t.runs.c
        q = (
            select(
                n.name.label("namespace"),
                j.id,
                j.name,
                j.type,
                j.created_at,
                j.facets,
                func.count(r.pk).label("run_count"),
                func.max(r.started_at).label("last_start"),
            )
            .select_from(t.jobs)
            .join(t.namespaces, n.id == j.namespace_id)
            .outerjoin(t.runs, r.job_id == j.id)
            .group_by(n.name, j.id, j.name, j.type, j.created_at)
            .order_by(n.name, j.name)
        )
        if namespace is not None:
            q = q.where(n.name == namespace)
        with self._read() as conn:
            rows = conn.execute(q).all()
            latest: dict[int, tuple[str, str]] = {}
            for row in conn.execute(select(r.job_id, r.run_id, r.state, r.started_at).order_by(r.started_at)):
                latest[row.job_id] = (row.run_id, row.state)
        return [
            JobSummary(
                row.namespace,
                row.name,
                row.type,
                stored_time(row.created_at),
                row.run_count,
                latest[row.id][0] if row.id in latest else None,
                latest[row.id][1] if row.id in latest else None,
                _json(row.facets) or {},
            )
            for row in rows
        ]

    def profile(self, version: Version) -> dict[str, Any] | None:
        with self._read() as conn:
            value = conn.execute(select(t.versions.c.profile).where(t.versions.c.id == version.id)).scalar()
            # Classified columns (and those inheriting a classification) keep only counts.
            classified = effective_classifications(conn, version.id) if version.id is not None else {}
        return redact_profile(json.loads(value) if isinstance(value, str) else value, classified)

    def check_results(self, version: Version) -> list[CheckResult]:
        c = t.check_results.c
        with self._read() as conn:
            rows = conn.execute(
                select(t.check_results).where(c.version_id == version.id).order_by(c.checked_at, c.event_id, c.position)
            ).all()
        return [
            CheckResult(
                rule=r.rule,
                name=r.name,
                column=r.column_name,
                severity=r.severity,
                success=bool(r.success),
                observed=r.observed,
                expected=r.expected,
                message=r.message,
                checked_at=stored_time(r.checked_at),
                checked_by=r.checked_by,
            )
            for r in rows
        ]

    def lineage(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageResult:
        ids = [v.id for v in start if v.id is not None and (as_of is None or v.created_at <= as_of)]
        with self._read() as conn:
            return traverse(conn, ids, direction, depth, as_of)

    def column_lineage(
        self, start: Sequence[tuple[Version, str | None]], direction: Direction, depth: int
    ) -> ColumnLineageResult:
        with self._read() as conn:
            return column_traverse(conn, [(v.id, c) for v, c in start if v.id is not None], direction, depth)

    def describe(self, version: Version) -> dict[str, Any]:
        v, d = t.versions.c, t.datasets.c
        with self._read() as conn:
            row = conn.execute(
                select(v.schema, v.stats, d.facets, d.lifecycle)
                .join(t.datasets, d.id == v.dataset_id)
                .where(v.id == version.id)
            ).first()
        if row is None:
            msg = f"no version {version.ref}"
            raise NotFound(msg)
        return {
            "schema": _json(row.schema),
            "stats": _json(row.stats),
            "facets": _json(row.facets) or {},
            "lifecycle": row.lifecycle,
        }

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        a = t.audit.c
        with self._read() as conn:
            rows = conn.execute(select(t.audit).order_by(a.seq.desc()).limit(limit)).all()
        return [audit_entry(r) for r in rows]

    def events(
        self, since: datetime | None = None, namespace: str | None = None, after_id: int = 0, limit: int = 1000
    ) -> list[tuple[int, dict[str, Any]]]:
        e = t.events.c
        out: list[tuple[int, dict[str, Any]]] = []
        with self._read() as conn:
            while len(out) < limit:
                q = select(e.id, e.payload).where(e.id > after_id).order_by(e.id).limit(max(limit, 500))
                if since is not None:
                    q = q.where(e.event_time >= utc(since))
                rows = conn.execute(q).all()
                for row in rows:
                    after_id = int(row.id)
                    event = json.loads(row.payload)
                    if namespace is None or namespace in _event_namespaces(event):
                        out.append((after_id, event))
                        if len(out) == limit:
                            break
                if len(rows) < max(limit, 500):
                    break
        return out

    def check_integrity(self) -> list[str]:
        """Problems found in the audit chain, the file and the event/version/run links; empty when sound."""
        problems: list[str] = []
        with self._read() as conn:
            prev = GENESIS
            for r in conn.execute(select(t.audit).order_by(t.audit.c.seq)):
                row = audit_to_wire(audit_entry(r))
                if row["prev_hash"] != prev or row["hash"] != row_hash(row):
                    problems.append(f"audit entry {r.seq} does not match the hash chain")
                prev = row["hash"]
            if self.dialect == "sqlite":
                ok = conn.execute(text("PRAGMA integrity_check")).scalar()
                if ok != "ok":
                    problems.append(f"sqlite integrity check: {ok}")
            problems.extend(structural_problems(conn, self.dialect))
        return problems
