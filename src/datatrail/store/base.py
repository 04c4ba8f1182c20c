"""The store protocol: what the service layer needs from any backend.

Backends: :class:`datatrail.store.sql.store.SqlStore` (SQLite, PostgreSQL) and
:class:`datatrail.store.http.HttpStore` (a remote ``datatrail serve``).
The service layer depends on this protocol only; a store is chosen by URI in
:func:`datatrail.store.open_store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from datatrail.events import Event
from datatrail.ml.records import Deployment, DriftRecord
from datatrail.model import Dataset, FileEntry, Ref, Run, Version

Direction = Literal["upstream", "downstream", "both"]


@dataclass(frozen=True)
class IngestResult:
    """What an ingested event did: the versions it touched and whether each is new."""

    event_id: int | None
    duplicate: bool
    versions: tuple[tuple[Version, bool], ...]
    run_id: str | None = None


@dataclass(frozen=True)
class LineageNode:
    """A version or a run in a lineage result.

    ``id`` is ``version:<namespace>:<name>@<number>`` or ``run:<uuid>``; ``depth``
    counts steps (version to producing run to its inputs) from the start.
    """

    id: str
    type: Literal["version", "run"]
    depth: int
    data: dict[str, Any]


@dataclass(frozen=True)
class LineageResult:
    """Versions and runs reached from the start, with the edges between them.

    Edges follow the data: (input version, run) and (run, output version).
    """

    nodes: dict[str, LineageNode]
    edges: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ColumnLineageResult:
    """Columns of versions and the edges between them (input column → output column).

    A node id is ``column:<namespace>:<name>@<number>#<column>``; its data holds
    namespace, name, version, column and depth. Each edge is (source, target,
    transformations), the transformations as the producer's columnLineage facet
    gave them (or None). The column ``*`` is the whole output dataset.
    """

    nodes: dict[str, dict[str, Any]]
    edges: tuple[tuple[str, str, Any], ...]


@dataclass(frozen=True)
class JobSummary:
    """A job with its type and its runs: how many and the latest one's id and state."""

    namespace: str
    name: str
    type: str | None
    created_at: Any
    run_count: int
    latest_run: str | None = None
    latest_state: str | None = None
    # sourceCodeLocation, sourceCode, sql, documentation, ownership, tags…: each {"time", "value"}.
    facets: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        created = self.created_at.isoformat() if self.created_at is not None else None
        return {
            "namespace": self.namespace,
            "name": self.name,
            "type": self.type,
            "created_at": created,
            "run_count": self.run_count,
            "latest_run": self.latest_run,
            "latest_state": self.latest_state,
            "facets": self.facets,
        }


@dataclass(frozen=True)
class CheckResult:
    """The stored outcome of one validation rule on one version (see ``checks.py``)."""

    rule: str
    name: str | None
    column: str | None
    severity: str
    success: bool
    observed: Any
    expected: str | None
    message: str | None
    checked_at: Any
    checked_by: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "name": self.name,
            "column": self.column,
            "severity": self.severity,
            "success": self.success,
            "observed": self.observed,
            "expected": self.expected,
            "message": self.message,
            "checked_at": self.checked_at.isoformat() if self.checked_at is not None else None,
            "checked_by": self.checked_by,
        }


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time: Any
    actor: str
    action: str
    target: str | None
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


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
