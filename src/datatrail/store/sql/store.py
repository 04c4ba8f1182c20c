"""The SQL store: SQLite (embedded) and PostgreSQL, through SQLAlchemy Core, built from parts.

Each part implements one protocol of the store contract (store/base.py) over
the one :class:`~datatrail.store.sql.database.Database` they share: the reads
(reads.py, ml.py), ingest (ingest.py), the audit log (audit.py), and users,
tokens and grants (users.py). :class:`SqlStore` hands each call to its part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine

from datatrail.core.chain import Checkpoint
from datatrail.core.changes import Event
from datatrail.core.errors import DatatrailError
from datatrail.core.model import Dataset, FileEntry, Ref, Run, Version
from datatrail.core.records import ContentLocation, Deployment, DriftRecord
from datatrail.core.results import (
    AuditEntry,
    CheckResult,
    ColumnLineageResult,
    DatasetDetails,
    Direction,
    IngestResult,
    JobSummary,
    LatestVersion,
    LineageColumns,
    LineageJson,
    LineageResult,
    NamespaceSummary,
    SearchHit,
)
from datatrail.core.touches import Check
from datatrail.store.base import Accounts, Store
from datatrail.store.sql.audit import AuditTables
from datatrail.store.sql.database import Database
from datatrail.store.sql.ingest import Ingest
from datatrail.store.sql.locations import LocationTables
from datatrail.store.sql.ml import MLReads
from datatrail.store.sql.reads import CatalogReads
from datatrail.store.sql.users import GrantTables, UserTables


class SqlStore(Store):
    """A datatrail store in SQLite or PostgreSQL.

    >>> store = SqlStore("sqlite:////tmp/example-trail.db", create=True)  # doctest: +SKIP
    """

    def __init__(self, uri: str, *, create: bool = False) -> None:
        self._db = Database(uri, create=create)
        self._audit = AuditTables(self._db)
        self._reads = CatalogReads(self._db)
        self._ml = MLReads(self._db)
        self._ingest = Ingest(self._db, self._audit)
        self._users = UserTables(self._db, self._audit)
        self._grants = GrantTables(self._db, self._audit)
        self._locations = LocationTables(self._db, self._audit)

    @property
    def uri(self) -> str:
        return self._db.uri

    @property
    def engine(self) -> Engine:
        return self._db.engine

    @property
    def dialect(self) -> str:
        return self._db.dialect

    @property
    def accounts(self) -> Accounts:
        """Users and tokens live in the store's own tables."""
        return self._users

    def close(self) -> None:
        self._ingest.close()  # the events queued for the writer are stored first
        self._db.close()

    # ------------------------------------------------------------ Reads

    def list_datasets(
        self, namespace: str | None = None, *, name: str | None = None, match: str | None = None
    ) -> list[Dataset]:
        return self._reads.list_datasets(namespace, name=name, match=match)

    def dataset_page(
        self, namespace: str, *, limit: int, offset: int = 0, after: str | None = None
    ) -> tuple[list[Dataset], int]:
        return self._reads.dataset_page(namespace, limit=limit, offset=offset, after=after)

    def dataset_page_details(
        self, namespace: str, *, limit: int, offset: int = 0, after: str | None = None
    ) -> tuple[list[DatasetDetails], int]:
        return self._reads.dataset_page_details(namespace, limit=limit, offset=offset, after=after)

    def dataset_details(self, keys: Sequence[tuple[str, str]]) -> list[DatasetDetails]:
        return self._reads.dataset_details(keys)

    def resolve(self, ref: Ref) -> Version:
        return self._reads.resolve(ref)

    def versions_by_number(self, keys: Sequence[tuple[str, str, int]]) -> list[Version]:
        return self._reads.versions_by_number(keys)

    def find_version(self, namespace: str, name: str, version_key: str) -> Version | None:
        return self._reads.find_version(namespace, name, version_key)

    def list_versions(self, namespace: str, name: str) -> list[Version]:
        return self._reads.list_versions(namespace, name)

    def latest_versions(self, limit: int | None = None, *, failing: bool = False) -> list[LatestVersion]:
        return self._reads.latest_versions(limit, failing=failing)

    def versions_at(self, uri: str, digest: str | None = None) -> list[Version]:
        return self._reads.versions_at(uri, digest)

    def manifest(self, version: Version) -> list[FileEntry]:
        return self._reads.manifest(version)

    def profile(self, version: Version) -> dict[str, Any] | None:
        return self._reads.profile(version)

    def check_results(self, version: Version) -> list[CheckResult]:
        return self._reads.check_results(version)

    def describe(self, version: Version) -> dict[str, Any]:
        return self._reads.describe(version)

    def classifications(self, version: Version) -> dict[str, list[str]]:
        return self._reads.classifications(version)

    def get_run(self, run_id: str, visible: Callable[[str], bool] | None = None) -> Run:
        return self._reads.get_run(run_id, visible)

    def runs_by_id(self, run_ids: Sequence[str]) -> list[Run]:
        return self._reads.runs_by_id(run_ids)

    def list_runs(self, job: str | None = None, limit: int = 100) -> list[Run]:
        return self._reads.list_runs(job, limit)

    def list_jobs(
        self, namespace: str | None = None, *, name: str | None = None, match: str | None = None
    ) -> list[JobSummary]:
        return self._reads.list_jobs(namespace, name=name, match=match)

    def jobs_by_name(self, keys: Sequence[tuple[str, str]]) -> list[JobSummary]:
        return self._reads.jobs_by_name(keys)

    def list_namespaces(self, name: str | None = None) -> list[NamespaceSummary]:
        return self._reads.list_namespaces(name)

    def job_page(self, namespace: str, *, limit: int, offset: int = 0) -> tuple[list[JobSummary], int]:
        return self._reads.job_page(namespace, limit=limit, offset=offset)

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
        return self._reads.search(
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

    def lineage(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageResult:
        return self._reads.lineage(start, direction, depth, as_of)

    def connected(self, start: Sequence[Version], depth: int, as_of: datetime | None = None) -> LineageResult:
        return self._reads.connected(start, depth, as_of)

    def lineage_columns(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageColumns:
        return self._reads.lineage_columns(start, direction, depth, as_of)

    def lineage_json(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageJson:
        return self._reads.lineage_json(start, direction, depth, as_of)

    def column_lineage(
        self, start: Sequence[tuple[Version, str | None]], direction: Direction, depth: int
    ) -> ColumnLineageResult:
        return self._reads.column_lineage(start, direction, depth)

    def event_page(
        self, since: datetime | None, until: datetime | None, *, limit: int, offset: int = 0, newest_first: bool = True
    ) -> tuple[list[dict[str, Any]], int]:
        return self._reads.event_page(since, until, limit=limit, offset=offset, newest_first=newest_first)

    def events(
        self, since: datetime | None = None, namespace: str | None = None, after_id: int = 0, limit: int = 1000
    ) -> list[tuple[int, dict[str, Any]]]:
        return self._reads.events(since, namespace, after_id, limit)

    def deployments(
        self,
        namespace: str | None = None,
        name: str | None = None,
        *,
        environment: str | None = None,
        active: bool = False,
    ) -> list[Deployment]:
        return self._ml.deployments(namespace, name, environment=environment, active=active)

    def drift_reports(
        self,
        *,
        environment: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        limit: int = 1000,
    ) -> list[DriftRecord]:
        return self._ml.drift_reports(environment=environment, namespace=namespace, name=name, limit=limit)

    def evaluations(self, version: Version) -> list[Run]:
        return self._ml.evaluations(version)

    # ------------------------------------------------------------ Writes

    def ingest(
        self,
        event: Event,
        actor: str,
        action: str,
        *,
        detail: bool = True,
        origin: str | None = None,
        check: Check | None = None,
    ) -> IngestResult:
        return self._ingest.ingest(event, actor, action, detail=detail, origin=origin, check=check)

    def ingest_soon(
        self,
        event: Event,
        actor: str,
        action: str,
        *,
        detail: bool = True,
        origin: str | None = None,
    ) -> Future[IngestResult] | None:
        return self._ingest.submit(event, actor, action, detail=detail, origin=origin)

    def ingest_many(
        self,
        events: Sequence[Event],
        actor: str,
        action: str,
        *,
        origin: str | None = None,
        check: Check | None = None,
    ) -> list[IngestResult | DatatrailError]:
        return self._ingest.ingest_many(events, actor, action, origin=origin, check=check)

    def prepare(self) -> None:
        self._ingest.prepare()
        # The reads by which `add` finds its dataset once the digest is known (Recorder.identify),
        # built and cached by SQLAlchemy now: a key that no version has finds nothing.
        self._reads.find_version("", "", "")
        self._reads.versions_at("", "")

    # ------------------------------------------------------------ AuditLog

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        return self._audit.audit_log(limit)

    def audit_entries(
        self,
        *,
        dataset: Ref | None = None,
        user: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        return self._audit.audit_entries(dataset=dataset, user=user, action=action, since=since, limit=limit)

    def audit_rows(self) -> tuple[Checkpoint | None, Iterator[dict[str, Any]]]:
        return self._audit.audit_rows()

    def audit_head(self) -> Checkpoint | None:
        return self._audit.audit_head()

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
        self._audit.record_access(
            actor=actor, action=action, target=target, outcome=outcome, origin=origin, details=details
        )

    def record_accesses(self, *, actor: str, action: str, targets: Sequence[str], origin: str | None = None) -> None:
        self._audit.record_accesses(actor=actor, action=action, targets=targets, origin=origin)

    def check_integrity(self) -> list[str]:
        return self._audit.check_integrity()

    # ------------------------------------------------------------ Grants

    def add_grant(self, user: str, role: str, pattern: str, *, actor: str, origin: str | None = None) -> bool:
        return self._grants.add_grant(user, role, pattern, actor=actor, origin=origin)

    def remove_grant(self, user: str, role: str, pattern: str, *, actor: str, origin: str | None = None) -> None:
        self._grants.remove_grant(user, role, pattern, actor=actor, origin=origin)

    # ------------------------------------------------------------ Locations

    def content_locations(self, version: Version) -> list[ContentLocation]:
        return self._locations.content_locations(version)

    def record_content_location(
        self, versions: Sequence[Version], remote: str, url: str, *, actor: str, origin: str | None = None
    ) -> int:
        return self._locations.record_content_location(versions, remote, url, actor=actor, origin=origin)

    def forget_content_location(
        self, versions: Sequence[Version], url: str, *, actor: str, origin: str | None = None
    ) -> int:
        return self._locations.forget_content_location(versions, url, actor=actor, origin=origin)
