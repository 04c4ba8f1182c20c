"""The store protocol: what the service layer needs from any backend.

Backends: :class:`datatrail.store.sql.store.SqlStore` (SQLite, PostgreSQL) and
:class:`datatrail.store.http.HttpStore` (a remote ``datatrail serve``).
The service layer depends on this protocol only; a store is chosen by URI in
:func:`datatrail.store.open_store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from datatrail.core.changes import Event
from datatrail.core.model import Dataset, FileEntry, Ref, Run, Version
from datatrail.core.records import Deployment, DriftRecord
from datatrail.core.results import (
    AuditEntry,
    CheckResult,
    ColumnLineageResult,
    Direction,
    IngestResult,
    JobSummary,
    LineageResult,
)

__all__ = [
    "AuditEntry",
    "CheckResult",
    "ColumnLineageResult",
    "Direction",
    "IngestResult",
    "JobSummary",
    "LineageResult",
    "Store",
]


class Store(Protocol):
    """A datatrail store. Every write is :meth:`ingest`; everything else reads."""

    uri: str

    def ingest(self, event: Event, actor: str, action: str, *, detail: bool = True) -> IngestResult:
        """Store the event, update derived state and append the audit entry, atomically.

        Without ``detail`` the result's ``versions`` is empty (the server's OpenLineage
        ingest needs only whether the event was new)."""
        ...

    def prepare(self) -> None:
        """Load what writes need (drivers, schema check) now, e.g. while a big file hashes."""
        ...

    def list_datasets(self, namespace: str | None = None) -> list[Dataset]: ...

    def resolve(self, ref: Ref) -> Version:
        """The version a ref names; NotFound if none."""
        ...

    def find_version(self, namespace: str, name: str, version_key: str) -> Version | None: ...

    def list_versions(self, namespace: str, name: str) -> list[Version]: ...

    def manifest(self, version: Version) -> list[FileEntry]: ...

    def profile(self, version: Version) -> dict[str, Any] | None:
        """The version's profile (schema, statistics, quality metrics), or None if it has none."""
        ...

    def check_results(self, version: Version) -> list[CheckResult]:
        """Every stored check result on the version, oldest first."""
        ...

    def get_run(self, run_id: str) -> Run: ...

    def list_runs(self, job: str | None = None, limit: int = 100) -> list[Run]: ...

    def list_jobs(self, namespace: str | None = None) -> list[JobSummary]: ...

    def lineage(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageResult:
        """Versions and runs within ``depth`` steps; with ``as_of``, the graph as it was then."""
        ...

    def column_lineage(
        self, start: Sequence[tuple[Version, str | None]], direction: Direction, depth: int
    ) -> ColumnLineageResult:
        """Columns reached from (version, column) pairs; a None column starts from every column of the version."""
        ...

    def describe(self, version: Version) -> dict[str, Any]:
        """What producers told about a version beyond its content: ``schema`` (the schema facet's
        fields), ``stats`` (dataQualityMetrics, outputStatistics), and its dataset's ``facets``
        (dataSource, ownership, tags, symlinks…; each ``{"time", "value"}``) and ``lifecycle``."""
        ...

    def audit_log(self, limit: int = 100) -> list[AuditEntry]: ...

    # ML lifecycle (docs/ml.md): derived from deploy and monitor runs.

    def deployments(
        self,
        namespace: str | None = None,
        name: str | None = None,
        *,
        environment: str | None = None,
        active: bool = False,
    ) -> list[Deployment]:
        """Deployments, newest first; ``active`` keeps those still live."""
        ...

    def drift_reports(
        self,
        *,
        environment: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        limit: int = 1000,
    ) -> list[DriftRecord]:
        """Stored drift reports, oldest first; ``name`` is the current version's dataset."""
        ...

    def evaluations(self, version: Version) -> list[Run]:
        """Runs of job type ``evaluate`` that read the version, oldest first."""
        ...

    def events(
        self, since: datetime | None = None, namespace: str | None = None, after_id: int = 0, limit: int = 1000
    ) -> list[tuple[int, dict[str, Any]]]:
        """Stored raw events as (id, event), oldest first: ids above ``after_id``, at most ``limit``.

        ``since`` keeps events whose eventTime is at or after it; ``namespace`` those
        naming it (the job's or any dataset's namespace). Page on with the last id.
        """
        ...

    def close(self) -> None: ...
