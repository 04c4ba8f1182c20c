"""The SQL store's reads of datasets, versions, runs, jobs, lineage and what producers said of them."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnClause, Connection, Select, and_, case, exists, func, literal_column, or_, select

from datatrail.core.errors import NotFound
from datatrail.core.model import Dataset, Digest, FileEntry, Ref, Run, Version
from datatrail.core.patterns import like_prefilter, matches
from datatrail.core.privacy import ALL_COLUMNS, redact_description, redact_event, redact_profile
from datatrail.core.results import (
    CheckResult,
    ColumnLineageResult,
    DatasetDetails,
    Direction,
    JobSummary,
    LatestVersion,
    LineageColumns,
    LineageJson,
    LineageResult,
    NamespaceSummary,
    SearchHit,
)
from datatrail.core.times import stored_time, utc
from datatrail.store.base import LOCATED
from datatrail.store.sql import tables as t
from datatrail.store.sql.classifications import CHUNK, effective_classifications, effective_classifications_of
from datatrail.store.sql.column_lineage import column_traverse
from datatrail.store.sql.database import Database
from datatrail.store.sql.lineage import traverse, traverse_columns, traverse_connected, traverse_json
from datatrail.store.sql.nodecache import NodeCache, cache_bytes
from datatrail.store.sql.queries import (
    among,
    batch_size,
    dataset_row,
    run_select,
    to_run,
    to_runs,
    to_versions,
    version_select,
)
from datatrail.store.sql.rows import (
    MIN_PREFIX,
    PREFIX_CANDIDATES,
    SHOWN_CANDIDATES,
    ambiguous_ref,
    check_from_row,
    dataset_from_row,
    json_value,
    no_version,
    run_prefix_error,
)
from datatrail.store.sql.search import search_page

# Names with a character outside printable ASCII (revision 0008 indexes them on PostgreSQL): search's prefilter
# keeps them all, as Unicode case folding may make them match an ASCII pattern (ß → ss) where ILIKE does not.
WIDE: ColumnClause[str] = literal_column("'[^ -~]'")
SQLITE_WIDE: ColumnClause[str] = literal_column("'*[^ -~]*'")  # the same rows, as a SQLite GLOB


def _event_namespaces(event: dict[str, Any]) -> set[str]:
    """The namespaces an event names: its job's and its datasets'."""
    items = [event.get("job"), event.get("dataset"), *(event.get("inputs") or ()), *(event.get("outputs") or ())]
    return {item["namespace"] for item in items if isinstance(item, dict) and isinstance(item.get("namespace"), str)}


class CatalogReads:
    """The store's :class:`~datatrail.store.base.Reads` of datasets, versions, runs and lineage (ml.py has the rest)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.nodes = NodeCache(cache_bytes())  # lineage nodes' JSON and walks between answers (nodecache.py)

    def list_datasets(
        self, namespace: str | None = None, *, name: str | None = None, match: str | None = None
    ) -> list[Dataset]:
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
        if name is not None:
            q = q.where(d.name == name)
        with self._db.read() as conn:
            if match is not None:
                q = self._prefiltered(conn, q, t.datasets, match)
            found = [dataset_from_row(r) for r in conn.execute(q)]
        if match is not None:
            found = [x for x in found if matches(match, x.name) or matches(match, x.namespace)]
        return found

    def _prefiltered(self, conn: Connection, q: Select[Any], table: Any, match: str) -> Select[Any]:
        """``q`` narrowed to rows whose name or namespace may match Marquez's pattern ``match`` (callers
        check each row with :func:`matches`). On PostgreSQL: the name by ILIKE, answered by the pg_trgm
        index (revision 0008); every name with a character outside printable ASCII, whose Unicode case
        folding ILIKE does not know (a partial index); every row of a namespace that matches (namespaces
        are few: each is checked here). SQLite: the same, with LIKE (case-insensitive for ASCII) and a GLOB
        for the names outside printable ASCII; no index answers it, but rows that cannot match are never
        made into objects, so a search's memory follows its matches, not the store's size."""
        like = like_prefilter(match)
        if like is None:
            return q
        n = t.namespaces.c
        ids = [r.id for r in conn.execute(select(n.id, n.name)) if matches(match, r.name)]
        if self._db.dialect == "postgresql":
            wanted = [table.c.name.ilike(like), table.c.name.op("~")(WIDE)]
        else:
            wanted = [table.c.name.like(like, escape="\\"), table.c.name.op("GLOB")(SQLITE_WIDE)]
        if ids:
            wanted.append(table.c.namespace_id.in_(ids))
        return q.where(or_(*wanted))

    def dataset_page(
        self, namespace: str, *, limit: int, offset: int = 0, after: str | None = None
    ) -> tuple[list[Dataset], int]:
        """A page of a namespace's datasets by name, as :meth:`list_datasets` orders them: ``offset`` rows
        skipped after the name ``after`` (keyset), ``limit`` kept; and how many datasets it lists in all
        (``namespaces.dataset_count``, kept by ingest). The database pages over the ``ix_datasets_listed``
        index (an offset skips names in the index alone); only the page's datasets have their versions
        counted."""
        with self._db.read() as conn:
            page, total, _ = _dataset_page(conn, namespace, limit, offset, after)
        return page, total

    def dataset_page_details(
        self, namespace: str, *, limit: int, offset: int = 0, after: str | None = None
    ) -> tuple[list[DatasetDetails], int]:
        """:meth:`dataset_page` with each dataset's latest version and what :meth:`describe`,
        :meth:`classifications` and :meth:`profile` answer for it, in one read transaction of a few
        statements for the whole page (``IN`` lists of the page's ids), whatever its size."""
        with self._db.read() as conn:
            page, total, ids = _dataset_page(conn, namespace, limit, offset, after)
            return _details(conn, page, ids), total

    def dataset_details(self, keys: Sequence[tuple[str, str]]) -> list[DatasetDetails]:
        """The listed datasets named by (namespace, name), in the order asked (a name no listed dataset has
        is left out), each with what :meth:`dataset_page_details` reads: ``IN`` lists, 500 names at a time."""
        d, n = t.datasets.c, t.namespaces.c
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], DatasetDetails] = {}
        with self._db.read() as conn:
            for chunk in _by_namespace(wanted, batch_size(conn, len(wanted), CHUNK)):
                rows = conn.execute(
                    select(d.id, n.name.label("namespace"), d.name, d.kind, d.description, d.created_at)
                    .join(t.namespaces, n.id == d.namespace_id)
                    .where(d.deleted_at.is_(None), *_named(conn, chunk))
                ).all()
                counts = _version_counts(conn, [r.id for r in rows])
                page = [
                    Dataset(
                        r.namespace,
                        r.name,
                        r.kind,
                        r.description,
                        stored_time(r.created_at),
                        *counts.get(r.id, (0, None)),
                    )
                    for r in rows
                ]
                for x in _details(conn, page, [r.id for r in rows]):
                    found[(x.dataset.namespace, x.dataset.name)] = x
        return [found[k] for k in wanted if k in found]

    def resolve(self, ref: Ref) -> Version:
        v = t.versions.c
        with self._db.read() as conn:
            ds = dataset_row(conn, ref.namespace, ref.name)
            sel = ref.selector
            q = version_select().where(v.dataset_id == ds.id)
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
                raise ambiguous_ref(ref)
            if not rows:
                raise no_version(ref, ds.lifecycle, ds.facets)
            return to_versions(conn, rows)[0]

    def versions_by_number(self, keys: Sequence[tuple[str, str, int]]) -> list[Version]:
        """:meth:`resolve` of each (namespace, name, number) by the dataset's own name, in ``IN`` lists of
        500 (a lineage walk names versions by their datasets' own names, never by a symlink)."""
        v = t.versions.c
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str, int], Version] = {}
        with self._db.read() as conn:
            for chunk in _by_namespace(wanted, batch_size(conn, len(wanted), CHUNK)):
                # Every wanted number of the chunk's datasets, through uq_versions_dataset_number; then the pairs.
                numbers = sorted({k[2] for k in chunk})
                rows = conn.execute(version_select().where(*_named(conn, chunk), among(conn, v.number, numbers))).all()
                for ver in to_versions(conn, [r for r in rows if (r.namespace, r.dataset, r.number) in chunk]):
                    found[(ver.namespace, ver.name, ver.number)] = ver
        return [found[k] for k in keys if k in found]

    def find_version(self, namespace: str, name: str, version_key: str) -> Version | None:
        d, n, v = t.datasets.c, t.namespaces.c, t.versions.c
        with self._db.read() as conn:
            rows = conn.execute(
                version_select().where(n.name == namespace, d.name == name, v.version_key == version_key)
            ).all()
            return to_versions(conn, rows)[0] if rows else None

    def list_versions(self, namespace: str, name: str) -> list[Version]:
        with self._db.read() as conn:
            ds = dataset_row(conn, namespace, name)
            rows = conn.execute(
                version_select().where(t.versions.c.dataset_id == ds.id).order_by(t.versions.c.number)
            ).all()
            return to_versions(conn, rows)

    def latest_versions(self, limit: int | None = None, *, failing: bool = False) -> list[LatestVersion]:
        v, d = t.versions.c, t.datasets.c
        q = version_select().where(d.deleted_at.is_(None)).order_by(v.created_at.desc(), v.id.desc())
        if limit is None and not failing:
            newest = select(v.dataset_id, func.max(v.number).label("number")).group_by(v.dataset_id).subquery()
            q = q.join(newest, and_(newest.c.dataset_id == v.dataset_id, newest.c.number == v.number))
        else:
            # A few versions: walked newest first (ix_versions_created), each kept if no later number of its
            # dataset exists (uq_versions_dataset_number); failing ones from the failed results
            # (ix_check_results_failed), kept if one is of its version's newest evaluation.
            newer = t.versions.alias("newer")
            q = q.where(~exists().where(newer.c.dataset_id == v.dataset_id, newer.c.number > v.number))
            if failing:
                c, f = t.check_results.c, t.check_results.alias("failed").c
                newest_event = select(func.max(c.event_id)).where(c.version_id == f.version_id).scalar_subquery()
                q = q.where(v.id.in_(select(f.version_id).where(~f.success, f.event_id == newest_event)))
            if limit is not None:
                q = q.limit(limit)
        with self._db.read() as conn:
            versions = to_versions(conn, conn.execute(q).all())
            ids = None if limit is None and not failing else [ver.id for ver in versions]
            checks = _check_counts(conn, ids) if versions else {}
        return [LatestVersion(ver, *checks.get(ver.id, (0, 0))) for ver in versions]

    def versions_at(self, uri: str, digest: str | None = None) -> list[Version]:
        v, d = t.versions.c, t.datasets.c
        where = v.uri == uri if digest is None else or_(v.uri == uri, v.digest == digest)
        with self._db.read() as conn:
            rows = conn.execute(
                version_select().where(where, d.deleted_at.is_(None)).order_by(v.id.desc()).limit(LOCATED)
            ).all()
            return to_versions(conn, rows)

    def manifest(self, version: Version) -> list[FileEntry]:
        f = t.version_files.c
        with self._db.read() as conn:
            rows = conn.execute(select(f.path, f.size, f.sha256).where(f.version_id == version.id).order_by(f.path))
            return [FileEntry(r.path, r.size, Digest.sha256(r.sha256)) for r in rows]

    def get_run(self, run_id: str, visible: Callable[[str], bool] | None = None) -> Run:
        with self._db.read() as conn:
            if len(run_id) < 36:
                if len(run_id) < MIN_PREFIX:
                    raise run_prefix_error(run_id, None)
                # Without a filter a few rows settle it (and name candidates); with one, every candidate it might keep.
                limit = SHOWN_CANDIDATES + 1 if visible is None else PREFIX_CANDIDATES + 1
                prefix = run_id.replace("%", "").replace("_", "")
                query = run_select().where(t.runs.c.run_id.like(prefix + "%")).order_by(t.runs.c.run_id)
                rows = conn.execute(query.limit(limit)).all()
            else:
                rows = conn.execute(run_select().where(t.runs.c.run_id == run_id)).all()
            if visible is not None and len(rows) <= PREFIX_CANDIDATES:
                rows = [r for r in rows if visible(r.namespace)]
            if len(rows) != 1:
                raise run_prefix_error(run_id, [r.run_id for r in rows])
            return to_run(conn, rows[0])

    def runs_by_id(self, run_ids: Sequence[str]) -> list[Run]:
        """:meth:`get_run` of each whole id, in a few statements for all of them (``IN`` lists)."""
        found: dict[str, Run] = {}
        wanted = list(dict.fromkeys(run_ids))
        if not wanted:  # a page of jobs whose latest runs have no parent: no transaction to open
            return []
        with self._db.read() as conn:
            step = batch_size(conn, len(wanted))
            for i in range(0, len(wanted), step):
                rows = conn.execute(run_select().where(among(conn, t.runs.c.run_id, wanted[i : i + step]))).all()
                found.update((run.id, run) for run in to_runs(conn, rows))
        return [found[rid] for rid in run_ids if rid in found]

    def list_runs(self, job: str | None = None, limit: int = 100) -> list[Run]:
        q = run_select().order_by(t.runs.c.started_at.desc()).limit(limit)
        if job is not None:
            q = q.where(t.jobs.c.name == job)
        with self._db.read() as conn:
            return [to_run(conn, row) for row in conn.execute(q).all()]

    def list_jobs(
        self, namespace: str | None = None, *, name: str | None = None, match: str | None = None
    ) -> list[JobSummary]:
        j, n = t.jobs.c, t.namespaces.c
        q = _jobs_query()
        if namespace is not None:
            q = q.where(n.name == namespace)
        if name is not None:
            q = q.where(j.name == name)
        with self._db.read() as conn:
            if match is not None:
                q = self._prefiltered(conn, q, t.jobs, match)
            rows = conn.execute(q).all()
            if match is not None:
                rows = [row for row in rows if matches(match, row.name) or matches(match, row.namespace)]
            latest = _latest_runs(conn, [row.id for row in rows])
        return [_job_summary(row, latest) for row in rows]

    def jobs_by_name(self, keys: Sequence[tuple[str, str]]) -> list[JobSummary]:
        """:meth:`list_jobs` of each (namespace, name), in the order asked: ``IN`` lists of 500 names, the
        runs counted and the latest run found through ``ix_runs_job`` as in :meth:`job_page`."""
        j, n = t.jobs.c, t.namespaces.c
        wanted = list(dict.fromkeys(keys))
        found: dict[tuple[str, str], JobSummary] = {}
        with self._db.read() as conn:
            for chunk in _by_namespace(wanted, batch_size(conn, len(wanted), CHUNK)):
                ids = [
                    r.id
                    for r in conn.execute(
                        select(j.id)
                        .join(t.namespaces, n.id == j.namespace_id)
                        .where(*_named(conn, chunk, t.jobs.c.name))
                    )
                ]
                rows = conn.execute(_page_jobs_query(conn, ids)).all() if ids else []
                latest = _latest_runs(conn, ids)
                found.update(((row.namespace, row.name), _job_summary(row, latest)) for row in rows)
        return [found[k] for k in keys if k in found]

    def list_namespaces(self, name: str | None = None) -> list[NamespaceSummary]:
        """The namespaces that list a dataset or have a job (or the one ``name``), by name: their numbers
        of each as ingest counts them on the namespace's row (revision 0010), and the first and last
        creation times among them, each a min() or max() read at one end of ``ix_datasets_created`` or
        ``ix_jobs_created`` (revision 0011): no dataset or job is read but those four per namespace."""
        with self._db.read() as conn:
            rows = conn.execute(namespaces_query(name)).all()
        out = []
        for r in sorted(rows, key=lambda r: r.name):  # Python's order, not the database's collation
            times = [x for x in map(stored_time, (r.d_first, r.d_last, r.j_first, r.j_last)) if x is not None]
            first, last = (min(times), max(times)) if times else (None, None)
            out.append(NamespaceSummary(r.name, int(r.dataset_count), int(r.job_count), first, last))
        return out

    def job_page(self, namespace: str, *, limit: int, offset: int = 0) -> tuple[list[JobSummary], int]:
        """A page of :meth:`list_jobs` of one namespace and how many jobs it has (``namespaces.job_count``,
        kept by ingest): the database pages by name (the ``uq_jobs_namespace_name`` index), and finds the
        latest run of the page's jobs only, each through the ``ix_runs_job`` index (never a scan of every
        run); each job's runs are counted on its row (``jobs.run_count``)."""
        j, n = t.jobs.c, t.namespaces.c
        with self._db.read() as conn:
            found = conn.execute(select(n.id, n.job_count).where(n.name == namespace)).first()
            if found is None:
                return [], 0
            total = int(found.job_count)
            q = select(j.id).where(j.namespace_id == found.id).order_by(j.name).limit(limit).offset(offset)
            ids = [r.id for r in conn.execute(q)]
            rows = conn.execute(_page_jobs_query(conn, ids)).all() if ids else []
            latest = _latest_runs(conn, ids)
        return [_job_summary(row, latest) for row in rows], total

    def search(
        self,
        q: str,
        *,
        kind: str | None = None,
        namespace: str | None = None,
        sort: str = "name",
        before: date | None = None,
        after: date | None = None,
        limit: int = 100,
        offset: int = 0,
        visible: Callable[[str], bool] | None = None,
    ) -> tuple[list[SearchHit], int]:
        """See :func:`~datatrail.store.sql.search.search_page`: the database matches, counts, sorts and pages."""
        with self._db.read() as conn:
            return search_page(
                conn,
                self._db.dialect,
                q,
                kind=kind,
                namespace=namespace,
                sort=sort,
                before=before,
                after=after,
                limit=limit,
                offset=offset,
                visible=visible,
            )

    def profile(self, version: Version) -> dict[str, Any] | None:
        with self._db.read() as conn:
            value = conn.execute(select(t.versions.c.profile).where(t.versions.c.id == version.id)).scalar()
            # Classified columns (and those inheriting a classification) keep only counts.
            classified = effective_classifications(conn, version.id) if version.id is not None else {}
        return redact_profile(json.loads(value) if isinstance(value, str) else value, classified)

    def check_results(self, version: Version) -> list[CheckResult]:
        c = t.check_results.c
        with self._db.read() as conn:
            rows = conn.execute(
                select(t.check_results).where(c.version_id == version.id).order_by(c.checked_at, c.event_id, c.position)
            ).all()
            classified = effective_classifications(conn, version.id) if rows and version.id is not None else {}
        # A classified column's observed values and messages are left out, as in profiles.
        cut = [r.column_name is not None and _is_classified(classified, r.column_name) for r in rows]
        return [check_from_row(r, hidden, r.observed) for r, hidden in zip(rows, cut, strict=True)]

    def describe(self, version: Version) -> dict[str, Any]:
        v, d = t.versions.c, t.datasets.c
        with self._db.read() as conn:
            row = conn.execute(
                select(v.schema, v.stats, d.facets, d.lifecycle)
                .join(t.datasets, d.id == v.dataset_id)
                .where(v.id == version.id)
            ).first()
            classified = effective_classifications(conn, version.id) if row is not None and version.id else {}
        if row is None:
            msg = f"no version {version.ref}"
            raise NotFound(msg)
        described = {
            "schema": json_value(row.schema),
            "stats": json_value(row.stats),
            "facets": json_value(row.facets) or {},
            "lifecycle": row.lifecycle,
        }
        # Statistics of classified columns keep their counts only, as in profiles (stored before, too).
        return redact_description(described, classified)

    def classifications(self, version: Version) -> dict[str, list[str]]:
        """Column → sorted labels of a version: its dataset's own, and those inherited from upstream."""
        if version.id is None:
            return {}
        with self._db.read() as conn:
            found = effective_classifications(conn, version.id)
        return {column: sorted(labels) for column, labels in sorted(found.items())}

    def lineage(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageResult:
        ids = [v.id for v in start if v.id is not None and (as_of is None or v.created_at <= as_of)]
        with self._db.read() as conn:
            return traverse(conn, ids, direction, depth, as_of, self.nodes)

    def connected(self, start: Sequence[Version], depth: int, as_of: datetime | None = None) -> LineageResult:
        ids = [v.id for v in start if v.id is not None and (as_of is None or v.created_at <= as_of)]
        with self._db.read() as conn:
            return traverse_connected(conn, ids, depth, as_of)

    def lineage_columns(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageColumns:
        ids = [v.id for v in start if v.id is not None and (as_of is None or v.created_at <= as_of)]
        with self._db.read() as conn:
            return traverse_columns(conn, ids, direction, depth, as_of, self.nodes)

    def lineage_json(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageJson:
        ids = [v.id for v in start if v.id is not None and (as_of is None or v.created_at <= as_of)]
        with self._db.read() as conn:
            return traverse_json(conn, ids, direction, depth, as_of, self.nodes)

    def column_lineage(
        self, start: Sequence[tuple[Version, str | None]], direction: Direction, depth: int
    ) -> ColumnLineageResult:
        with self._db.read() as conn:
            return column_traverse(conn, [(v.id, c) for v, c in start if v.id is not None], direction, depth)

    def event_page(
        self, since: datetime | None, until: datetime | None, *, limit: int, offset: int = 0, newest_first: bool = True
    ) -> tuple[list[dict[str, Any]], int]:
        """Counted and paged by the database, by id (a backward walk of the primary key for newest first,
        stopped at the page): only the page's events are read and parsed."""
        e = t.events.c
        where = []
        if since is not None:
            where.append(e.event_time >= utc(since))
        if until is not None:  # event_time is the payload's eventTime, parsed and in UTC (events.py)
            where.append(e.event_time < utc(until))
        order = e.id.desc() if newest_first else e.id
        with self._db.read() as conn:
            total = int(conn.execute(select(func.count()).select_from(t.events).where(*where)).scalar_one())
            q = select(e.id, e.payload).where(*where).order_by(order).limit(limit).offset(offset)
            rows = [(int(r.id), json.loads(r.payload)) for r in conn.execute(q)]
            return [event for _, event in _redacted(conn, rows)], total

    def events(
        self, since: datetime | None = None, namespace: str | None = None, after_id: int = 0, limit: int = 1000
    ) -> list[tuple[int, dict[str, Any]]]:
        e = t.events.c
        out: list[tuple[int, dict[str, Any]]] = []
        with self._db.read() as conn:
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
            return _redacted(conn, out)


def namespaces_query(name: str | None) -> Select[Any]:
    """:meth:`CatalogReads.list_namespaces`'s statement: each namespace's row and four index ends."""
    n, d, j = t.namespaces.c, t.datasets.c, t.jobs.c
    listed = (d.namespace_id == n.id, d.deleted_at.is_(None))
    own = j.namespace_id == n.id
    q = select(
        n.name,
        n.dataset_count,
        n.job_count,
        select(func.min(d.created_at)).where(*listed).scalar_subquery().label("d_first"),
        select(func.max(d.created_at)).where(*listed).scalar_subquery().label("d_last"),
        select(func.min(j.created_at)).where(own).scalar_subquery().label("j_first"),
        select(func.max(j.created_at)).where(own).scalar_subquery().label("j_last"),
    ).where(or_(n.dataset_count > 0, n.job_count > 0))
    return q if name is None else q.where(n.name == name)


def _dataset_page(
    conn: Connection, namespace: str, limit: int, offset: int, after: str | None
) -> tuple[list[Dataset], int, list[int]]:
    """The page of :meth:`CatalogReads.dataset_page`, its total, and the page's dataset ids."""
    d, n = t.datasets.c, t.namespaces.c
    # The total as ingest counted it (revision 0010), not a count of a million index entries per page.
    found = conn.execute(select(n.id, n.dataset_count).where(n.name == namespace)).first()
    if found is None:
        return [], 0, []
    ns_id, total = found.id, int(found.dataset_count)
    listed = [d.namespace_id == ns_id, d.deleted_at.is_(None)]
    if after is not None:
        listed.append(d.name > after)
    q = select(d.id, d.name, d.kind, d.description, d.created_at).where(*listed)
    if offset:
        # The page's first name found by skipping names in the index alone (an index-only scan of
        # ix_datasets_listed), then the page's rows from there: an OFFSET on the rows themselves reads
        # every skipped dataset's row. Past the end the first name is NULL and the page empty.
        first = select(d.name).where(*listed).order_by(d.name).offset(offset).limit(1).scalar_subquery()
        q = q.where(d.name >= first)
    rows = conn.execute(q.order_by(d.name).limit(limit)).all()
    counts = _version_counts(conn, [r.id for r in rows])
    page = [
        Dataset(namespace, r.name, r.kind, r.description, stored_time(r.created_at), *counts.get(r.id, (0, None)))
        for r in rows
    ]
    return page, total, [r.id for r in rows]


def _version_counts(conn: Connection, ids: list[int]) -> dict[int, tuple[int, Any]]:
    """Each dataset's number of versions and latest number."""
    v = t.versions.c
    if not ids:
        return {}
    return {
        r.dataset_id: (int(r.version_count), r.latest)
        for r in conn.execute(
            select(v.dataset_id, func.count(v.id).label("version_count"), func.max(v.number).label("latest"))
            .where(among(conn, v.dataset_id, ids))
            .group_by(v.dataset_id)
        )
    }


def _details(conn: Connection, page: list[Dataset], ids: list[int]) -> list[DatasetDetails]:
    """The details of datasets (``ids`` their row ids): latest versions, what ``describe`` answers,
    classifications and the profiles of those without a schema, with ``IN`` lists of the ids."""
    v, d = t.versions.c, t.datasets.c
    wanted = [(i, x.latest) for i, x in zip(ids, page, strict=True) if x.latest is not None]
    latest: dict[int, Version] = {}
    described: dict[int, Any] = {}
    if wanted:
        # The ids and the numbers as two IN lists (uq_versions_dataset_number), then the pairs: a row-value
        # IN list is planned by PostgreSQL as an OR of every pair, over a scan of every version.
        pairs = set(wanted)
        numbers = (
            among(conn, v.dataset_id, sorted({i for i, _ in wanted})),
            among(conn, v.number, sorted({n for _, n in wanted})),
        )
        rows = conn.execute(version_select().add_columns(v.dataset_id).where(*numbers)).all()
        rows = [r for r in rows if (r.dataset_id, r.number) in pairs]
        latest = {r.dataset_id: x for r, x in zip(rows, to_versions(conn, rows), strict=True)}
        vids = [x.id for x in latest.values() if x.id is not None]
        described = {
            r.id: r
            for r in conn.execute(
                select(v.id, v.schema, v.stats, d.facets, d.lifecycle)
                .join(t.datasets, d.id == v.dataset_id)
                .where(among(conn, v.id, vids))
            )
        }
    classified = effective_classifications_of(conn, [x.id for x in latest.values() if x.id is not None])
    bare = [vid for vid, r in described.items() if not json_value(r.schema)]
    profiles = {}
    if bare:
        profiles = {r.id: r.profile for r in conn.execute(select(v.id, v.profile).where(among(conn, v.id, bare)))}
    out = []
    for i, x in zip(ids, page, strict=True):
        version = latest.get(i)
        if version is None or version.id is None or version.id not in described:
            out.append(DatasetDetails(x, version, {}, {}, None))
            continue
        row, labels = described[version.id], classified.get(version.id, {})
        shown = {
            "schema": json_value(row.schema),
            "stats": json_value(row.stats),
            "facets": json_value(row.facets) or {},
            "lifecycle": row.lifecycle,
        }
        value = profiles.get(version.id)
        profile = redact_profile(json.loads(value) if isinstance(value, str) else value, labels)
        out.append(
            DatasetDetails(
                x,
                version,
                redact_description(shown, labels),
                {column: sorted(found) for column, found in sorted(labels.items())},
                profile if version.id in profiles else None,
            )
        )
    return out


def _job_columns() -> tuple[Any, ...]:
    """What a job summary reads of the job and its namespace, its number of runs included."""
    j = t.jobs.c
    return (
        t.namespaces.c.name.label("namespace"),
        j.id,
        j.name,
        j.type,
        j.created_at,
        j.facets,
        j.description,
        j.run_count,
    )


def _by_namespace(keys: Sequence[tuple[Any, ...]], size: int = CHUNK) -> list[set[Any]]:
    """Keys that start (namespace, name, …) in chunks of one namespace and at most :data:`CHUNK` keys: each
    chunk is read by ``namespace = ? AND name IN (…)``, through the (namespace, name) unique indexes (a
    row-value ``IN`` list is planned by PostgreSQL as an ``OR`` of every pair, over a scan)."""
    grouped: dict[str, list[tuple[Any, ...]]] = {}
    for key in keys:
        grouped.setdefault(key[0], []).append(key)
    return [set(found[i : i + size]) for found in grouped.values() for i in range(0, len(found), size)]


def _named(conn: Connection, chunk: set[Any], name: Any = None) -> tuple[Any, Any]:
    """The conditions of a chunk of :func:`_by_namespace`: its namespace, and its names (datasets' by default)."""
    column = t.datasets.c.name if name is None else name
    return t.namespaces.c.name == next(iter(chunk))[0], among(conn, column, sorted({k[1] for k in chunk}))


def _jobs_query() -> Select[Any]:
    """Jobs with their namespace's name and number of runs (counted by ingest on the job's row, revision
    0009: no run is read), by namespace and name."""
    j, n = t.jobs.c, t.namespaces.c
    return (
        select(*_job_columns()).select_from(t.jobs).join(t.namespaces, n.id == j.namespace_id).order_by(n.name, j.name)
    )


def _page_jobs_query(conn: Connection, ids: list[int]) -> Select[Any]:
    """:func:`_jobs_query` of the jobs ``ids``."""
    return _jobs_query().where(among(conn, t.jobs.c.id, ids))


def _job_summary(row: Any, latest: dict[int, tuple[str, str]]) -> JobSummary:
    return JobSummary(
        row.namespace,
        row.name,
        row.type,
        stored_time(row.created_at),
        row.run_count,
        latest[row.id][0] if row.id in latest else None,
        latest[row.id][1] if row.id in latest else None,
        json_value(row.facets) or {},
        row.description,
    )


def _latest_runs(conn: Connection, job_ids: list[int]) -> dict[int, tuple[str, str]]:
    """Each job's latest run (id, state): the last by start time, as ``ORDER BY started_at`` puts them
    (so where each engine puts NULL starts), the last stored among equal starts. One index probe
    (ix_runs_job) per job, in chunks, rather than every run of the store."""
    r = t.runs.c
    out: dict[int, tuple[str, str]] = {}
    j = t.jobs.c
    x = t.runs.alias("x").c
    last = (
        select(x.pk)
        .where(x.job_id == j.id)
        .order_by(x.started_at.desc(), x.pk.desc())
        .limit(1)
        .correlate(t.jobs)
        .scalar_subquery()
    )
    step = batch_size(conn, len(job_ids))
    for i in range(0, len(job_ids), step):
        q = select(j.id.label("job_id"), r.run_id, r.state).select_from(t.jobs).join(t.runs, r.pk == last)
        for row in conn.execute(q.where(among(conn, j.id, job_ids[i : i + step]))):
            out[row.job_id] = (row.run_id, row.state)
    return out


def _redacted(conn: Connection, events: list[tuple[int, dict[str, Any]]]) -> list[tuple[int, dict[str, Any]]]:
    """The events with the column values of classified datasets left out (when anything is classified)."""
    if not events or conn.execute(select(t.classifications.c.dataset_id).limit(1)).first() is None:
        return events  # nothing is classified anywhere: one query, then the events as stored
    v, d, n = t.versions.c, t.datasets.c, t.namespaces.c
    base = select(v.id).join(t.datasets, d.id == v.dataset_id).join(t.namespaces, n.id == d.namespace_id)
    known: dict[tuple[str, str, str | None], dict[str, set[str]]] = {}

    def classified_of(namespace: str, name: str, key: str | None) -> dict[str, set[str]]:
        if (namespace, name, key) not in known:
            q = base.where(n.name == namespace, d.name == name)
            # The version the entry names, else the dataset's latest.
            q = q.where(v.version_key == key) if key is not None else q.order_by(v.number.desc()).limit(1)
            vid = conn.execute(q).scalar()
            known[namespace, name, key] = effective_classifications(conn, int(vid)) if vid is not None else {}
        return known[namespace, name, key]

    return [(i, redact_event(event, classified_of)) for i, event in events]


def _is_classified(classified: dict[str, set[str]], column: str) -> bool:
    return column in classified or ALL_COLUMNS in classified


def _check_counts(conn: Connection, ids: list[int | None] | None) -> dict[int | None, tuple[int, int]]:
    """(failed, total) of each version's latest evaluation, its check results of the newest event: of
    the versions ``ids``, or of every version (None)."""
    c = t.check_results.c
    last = select(c.version_id, func.max(c.event_id).label("event_id")).group_by(c.version_id)
    counts = select(c.version_id, func.sum(case((c.success, 0), else_=1)).label("failed"), func.count().label("total"))
    if ids is not None:
        last, counts = last.where(among(conn, c.version_id, ids)), counts.where(among(conn, c.version_id, ids))
    newest = last.subquery()
    counts = counts.join(newest, and_(newest.c.version_id == c.version_id, newest.c.event_id == c.event_id))
    return {r.version_id: (int(r.failed), int(r.total)) for r in conn.execute(counts.group_by(c.version_id))}
