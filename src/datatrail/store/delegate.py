"""A store that hands every call to another one, chosen when first needed.

:class:`~datatrail.store.sql.quick.EmbeddedStore` is one: it answers the CLI's
hottest question itself and opens the full SQL store only for anything else.
Each method is written out (not a ``__getattr__``), so mypy checks this class
against the :class:`~datatrail.store.base.Store` contract like any backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: the embedded store's reads import no record types they do not return
    from collections.abc import Callable, Iterator, Sequence
    from concurrent.futures import Future
    from datetime import date, datetime

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


class DelegatingStore(ABC):
    """Every :class:`Store` method, forwarded to :meth:`target` (which subclasses define)."""

    @abstractmethod
    def target(self) -> Store:
        """The store every call goes to."""

    @property
    def uri(self) -> str:
        return self.target().uri

    @property
    def accounts(self) -> Accounts | None:
        return self.target().accounts

    def close(self) -> None:
        self.target().close()

    # Reads

    def list_datasets(
        self, namespace: str | None = None, *, name: str | None = None, match: str | None = None
    ) -> list[Dataset]:
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
        return self.target().resolve(ref)

    def versions_by_number(self, keys: Sequence[tuple[str, str, int]]) -> list[Version]:
        return self.target().versions_by_number(keys)

    def find_version(self, namespace: str, name: str, version_key: str) -> Version | None:
        return self.target().find_version(namespace, name, version_key)

    def list_versions(self, namespace: str, name: str) -> list[Version]:
        return self.target().list_versions(namespace, name)

    def latest_versions(self, limit: int | None = None, *, failing: bool = False) -> list[LatestVersion]:
        return self.target().latest_versions(limit, failing=failing)

    def versions_at(self, uri: str, digest: str | None = None) -> list[Version]:
        return self.target().versions_at(uri, digest)

    def manifest(self, version: Version) -> list[FileEntry]:
        return self.target().manifest(version)

    def profile(self, version: Version) -> dict[str, Any] | None:
        return self.target().profile(version)

    def check_results(self, version: Version) -> list[CheckResult]:
        return self.target().check_results(version)

    def describe(self, version: Version) -> dict[str, Any]:
        return self.target().describe(version)

    def classifications(self, version: Version) -> dict[str, list[str]]:
        return self.target().classifications(version)

    def get_run(self, run_id: str, visible: Callable[[str], bool] | None = None) -> Run:
        return self.target().get_run(run_id, visible)

    def runs_by_id(self, run_ids: Sequence[str]) -> list[Run]:
        return self.target().runs_by_id(run_ids)

    def list_runs(self, job: str | None = None, limit: int = 100) -> list[Run]:
        return self.target().list_runs(job, limit)

    def list_jobs(
        self, namespace: str | None = None, *, name: str | None = None, match: str | None = None
    ) -> list[JobSummary]:
        return self.target().list_jobs(namespace, name=name, match=match)

    def jobs_by_name(self, keys: Sequence[tuple[str, str]]) -> list[JobSummary]:
        return self.target().jobs_by_name(keys)

    def list_namespaces(self, name: str | None = None) -> list[NamespaceSummary]:
        return self.target().list_namespaces(name)

    def job_page(self, namespace: str, *, limit: int, offset: int = 0) -> tuple[list[JobSummary], int]:
        return self.target().job_page(namespace, limit=limit, offset=offset)

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
        return self.target().search(
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
        return self.target().lineage(start, direction, depth, as_of)

    def connected(self, start: Sequence[Version], depth: int, as_of: datetime | None = None) -> LineageResult:
        return self.target().connected(start, depth, as_of)

    def lineage_columns(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageColumns:
        return self.target().lineage_columns(start, direction, depth, as_of)

    def lineage_json(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageJson:
        return self.target().lineage_json(start, direction, depth, as_of)

    def column_lineage(
        self, start: Sequence[tuple[Version, str | None]], direction: Direction, depth: int
    ) -> ColumnLineageResult:
        return self.target().column_lineage(start, direction, depth)

    def event_page(
        self, since: datetime | None, until: datetime | None, *, limit: int, offset: int = 0, newest_first: bool = True
    ) -> tuple[list[dict[str, Any]], int]:
        return self.target().event_page(since, until, limit=limit, offset=offset, newest_first=newest_first)

    def events(
        self, since: datetime | None = None, namespace: str | None = None, after_id: int = 0, limit: int = 1000
    ) -> list[tuple[int, dict[str, Any]]]:
        return self.target().events(since, namespace, after_id, limit)

    def deployments(
        self,
        namespace: str | None = None,
        name: str | None = None,
        *,
        environment: str | None = None,
        active: bool = False,
    ) -> list[Deployment]:
        return self.target().deployments(namespace, name, environment=environment, active=active)

    def drift_reports(
        self,
        *,
        environment: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        limit: int = 1000,
    ) -> list[DriftRecord]:
        return self.target().drift_reports(environment=environment, namespace=namespace, name=name, limit=limit)

    def evaluations(self, version: Version) -> list[Run]:
        return self.target().evaluations(version)

    # Writes

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
        return self.target().ingest(event, actor, action, detail=detail, origin=origin, check=check)

    def ingest_soon(
        self,
        event: Event,
        actor: str,
        action: str,
        *,
        detail: bool = True,
        origin: str | None = None,
    ) -> Future[IngestResult] | None:
        return self.target().ingest_soon(event, actor, action, detail=detail, origin=origin)

    def ingest_many(
        self,
        events: Sequence[Event],
        actor: str,
        action: str,
        *,
        origin: str | None = None,
        check: Check | None = None,
    ) -> list[IngestResult | DatatrailError]:
        return self.target().ingest_many(events, actor, action, origin=origin, check=check)

    def prepare(self) -> None:
        self.target().prepare()

    # The audit log

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        return self.target().audit_log(limit)

    def audit_entries(
        self,
        *,
        dataset: Ref | None = None,
        user: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        return self.target().audit_entries(dataset=dataset, user=user, action=action, since=since, limit=limit)

    def audit_rows(self) -> tuple[Checkpoint | None, Iterator[dict[str, Any]]]:
        return self.target().audit_rows()

    def audit_head(self) -> Checkpoint | None:
        return self.target().audit_head()

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
        self.target().record_access(
            actor=actor, action=action, target=target, outcome=outcome, origin=origin, details=details
        )

    def record_accesses(self, *, actor: str, action: str, targets: Sequence[str], origin: str | None = None) -> None:
        self.target().record_accesses(actor=actor, action=action, targets=targets, origin=origin)

    def check_integrity(self) -> list[str]:
        return self.target().check_integrity()

    # Grants

    def add_grant(self, user: str, role: str, pattern: str, *, actor: str, origin: str | None = None) -> bool:
        return self.target().add_grant(user, role, pattern, actor=actor, origin=origin)

    def remove_grant(self, user: str, role: str, pattern: str, *, actor: str, origin: str | None = None) -> None:
        self.target().remove_grant(user, role, pattern, actor=actor, origin=origin)

    # Locations

    def content_locations(self, version: Version) -> list[ContentLocation]:
        return self.target().content_locations(version)

    def record_content_location(
        self, versions: Sequence[Version], remote: str, url: str, *, actor: str, origin: str | None = None
    ) -> int:
        return self.target().record_content_location(versions, remote, url, actor=actor, origin=origin)

    def forget_content_location(
        self, versions: Sequence[Version], url: str, *, actor: str, origin: str | None = None
    ) -> int:
        return self.target().forget_content_location(versions, url, actor=actor, origin=origin)


__all__ = ["DelegatingStore"]
