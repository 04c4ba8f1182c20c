"""The store contract: what the service layer needs from any backend, as small typed protocols.

Every backend implements every protocol, completely:
:class:`~datatrail.store.sql.store.SqlStore` (SQLite, PostgreSQL),
:class:`~datatrail.store.http.HttpStore` (a remote ``datatrail serve``),
:class:`~datatrail.store.sql.quick.EmbeddedStore` (SQLite, opened lazily) and
:class:`~datatrail.security.guard.GuardedStore` (any store seen through one
principal's grants). mypy checks each against :class:`Store`, and the contract
suite (``tests/test_store_contract.py``) runs over each. What a backend cannot do
is a typed optional capability (:attr:`Store.accounts`), never a probe for a
method. The service layer depends on these protocols only; a store is chosen by
URI in :func:`datatrail.store.open_store`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # annotations only: a read command imports this contract, not every record type
    from collections.abc import Callable, Iterator, Sequence
    from concurrent.futures import Future
    from datetime import date, datetime

    from datatrail.core.accounts import TokenInfo, UserInfo
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
    from datatrail.core.roles import Principal
    from datatrail.core.tokens import NewToken
    from datatrail.core.touches import Check

LOCATED = 100
"""The most versions :meth:`Reads.versions_at` answers."""


class Reads(Protocol):
    """Datasets, versions, runs, jobs and lineage, and what producers said of them."""

    def list_datasets(
        self, namespace: str | None = None, *, name: str | None = None, match: str | None = None
    ) -> list[Dataset]:
        """The datasets listed (not hidden) by namespace and name: of one namespace, the one ``name``, those
        whose name or namespace ``match`` Marquez's search pattern (``%`` any text, ``_`` one character)."""
        ...

    def dataset_page(
        self, namespace: str, *, limit: int, offset: int = 0, after: str | None = None
    ) -> tuple[list[Dataset], int]:
        """A page of :meth:`list_datasets` of one namespace, and how many it lists in all: ``offset``
        skipped after the name ``after`` (a keyset page: stable while datasets are added), ``limit`` kept."""
        ...

    def dataset_page_details(
        self, namespace: str, *, limit: int, offset: int = 0, after: str | None = None
    ) -> tuple[list[DatasetDetails], int]:
        """:meth:`dataset_page` with each dataset's latest version and what :meth:`describe`,
        :meth:`classifications` and (when no schema was reported) :meth:`profile` answer for it: a page of
        Marquez's datasets in a number of statements that does not grow with the page."""
        ...

    def dataset_details(self, keys: Sequence[tuple[str, str]]) -> list[DatasetDetails]:
        """The listed datasets named by (namespace, name), in the order asked (a name no listed dataset has
        is left out), each with what :meth:`dataset_page_details` reads for it: a lineage graph's datasets."""
        ...

    def resolve(self, ref: Ref) -> Version:
        """The version a ref names; NotFound if none."""
        ...

    def versions_by_number(self, keys: Sequence[tuple[str, str, int]]) -> list[Version]:
        """The versions named by (namespace, dataset name, number), in the order asked (one no version has is
        left out): what :meth:`resolve` answers for each, read at once (a lineage walk's frontier)."""
        ...

    def find_version(self, namespace: str, name: str, version_key: str) -> Version | None:
        """The version of a dataset with this key (its digest, or a producer's ``datasetVersion``), if any."""
        ...

    def list_versions(self, namespace: str, name: str) -> list[Version]: ...

    def latest_versions(self, limit: int | None = None, *, failing: bool = False) -> list[LatestVersion]:
        """The latest version of every dataset, newest first, with its latest check evaluation's counts
        (a listing, like :meth:`list_datasets`: no version's content or check details). ``limit``: only the
        first so many; ``failing``: only those whose latest evaluation has a failed check."""

    def versions_at(self, uri: str, digest: str | None = None) -> list[Version]:
        """Versions recorded at the location ``uri`` and, with ``digest``, versions of that content anywhere:
        newest first, at most :data:`LOCATED`, of datasets not deleted (how a path finds its dataset)."""
        ...

    def manifest(self, version: Version) -> list[FileEntry]: ...

    def profile(self, version: Version) -> dict[str, Any] | None:
        """The version's profile (schema, statistics, quality metrics), or None if it has none."""
        ...

    def check_results(self, version: Version) -> list[CheckResult]:
        """Every stored check result on the version, oldest first."""
        ...

    def describe(self, version: Version) -> dict[str, Any]:
        """What producers told about a version beyond its content: ``schema`` (the schema facet's
        fields), ``stats`` (dataQualityMetrics, outputStatistics), and its dataset's ``facets``
        (dataSource, ownership, tags, symlinks…; each ``{"time", "value"}``) and ``lifecycle``."""
        ...

    def classifications(self, version: Version) -> dict[str, list[str]]:
        """Column → sorted labels (pii, phi…) of a version: set on its dataset or inherited from upstream."""
        ...

    def get_run(self, run_id: str, visible: Callable[[str], bool] | None = None) -> Run:
        """The run with this id, or the one run whose id starts with it; NotFound, or InvalidInput if ambiguous.

        With ``visible`` (namespace → may the caller see it) only those runs count: a hidden run answers
        exactly as a missing one, and makes no prefix ambiguous."""
        ...

    def runs_by_id(self, run_ids: Sequence[str]) -> list[Run]:
        """The runs with these ids (whole ids, not prefixes), in the order asked; an id no run has is left out.
        What :meth:`get_run` answers for each, read at once for a page (each job's latest run)."""
        ...

    def list_runs(self, job: str | None = None, limit: int = 100) -> list[Run]: ...

    def list_jobs(
        self, namespace: str | None = None, *, name: str | None = None, match: str | None = None
    ) -> list[JobSummary]:
        """The jobs by namespace and name: of one namespace, the one ``name``, those matching ``match``."""
        ...

    def jobs_by_name(self, keys: Sequence[tuple[str, str]]) -> list[JobSummary]:
        """The jobs named by (namespace, name), in the order asked (a name no job has is left out): what
        :meth:`list_jobs` answers for each name, read at once (a lineage graph's jobs)."""
        ...

    def list_namespaces(self, name: str | None = None) -> list[NamespaceSummary]:
        """The namespaces that list a dataset or have a job (or the one ``name``), by name, with their
        numbers of each and the first and last times one was recorded: no dataset or job is read."""
        ...

    def job_page(self, namespace: str, *, limit: int, offset: int = 0) -> tuple[list[JobSummary], int]:
        """A page of :meth:`list_jobs` of one namespace (``offset`` skipped, ``limit`` kept), and how many
        jobs it has: the database pages, and reads runs for the page's jobs only."""
        ...

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
        """One page of the datasets (listed) and jobs whose name or namespace matches Marquez's pattern ``q``
        (:func:`~datatrail.core.patterns.matches`), and how many match: of one ``kind`` (dataset or job) and
        ``namespace`` if given, first recorded before the day ``before`` and after the day ``after`` (UTC);
        sorted by case-folded name, then namespace and type (``sort="name"``), or newest first
        (``"updated_at"``); ``offset`` skipped, ``limit`` kept. The database pages. With ``visible``
        (namespace → may the caller see it) only those namespaces count, in the page and in the total."""
        ...

    def lineage(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageResult:
        """Versions and runs within ``depth`` steps; with ``as_of``, the graph as it was then."""
        ...

    def connected(self, start: Sequence[Version], depth: int, as_of: datetime | None = None) -> LineageResult:
        """Marquez's connected graph: up to ``depth`` steps (at least one), each :meth:`lineage` of depth 1
        both ways from the versions the step before reached first; a node at the step that first reached
        it, the edges of every step's walk. GraphTooLarge once a step takes it past ``graph_limit()``."""
        ...

    def lineage_columns(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageColumns:
        """:meth:`lineage` as columns: the same graph, no object per node or edge (big answers)."""
        ...

    def lineage_json(
        self, start: Sequence[Version], direction: Direction, depth: int, as_of: datetime | None = None
    ) -> LineageJson:
        """:meth:`lineage_columns` with each node's data as JSON bytes (``GET /api/v1/lineage``'s
        answer is joined from them; the SQL store keeps them between calls)."""
        ...

    def column_lineage(
        self, start: Sequence[tuple[Version, str | None]], direction: Direction, depth: int
    ) -> ColumnLineageResult:
        """Columns reached from (version, column) pairs; a None column starts from every column of the version."""
        ...

    def event_page(
        self, since: datetime | None, until: datetime | None, *, limit: int, offset: int = 0, newest_first: bool = True
    ) -> tuple[list[dict[str, Any]], int]:
        """The stored raw events with an eventTime at or after ``since`` and before ``until``: ``limit`` of
        them from ``offset`` in the order they were stored (``newest_first``: the reverse), and how many
        there are; redacted as :meth:`events` redacts them."""
        ...

    def events(
        self, since: datetime | None = None, namespace: str | None = None, after_id: int = 0, limit: int = 1000
    ) -> list[tuple[int, dict[str, Any]]]:
        """Stored raw events as (id, event), oldest first: ids above ``after_id``, at most ``limit``.

        ``since`` keeps events whose eventTime is at or after it; ``namespace`` those
        naming it (the job's or any dataset's namespace). Page on with the last id. The column
        values of classified datasets are left out of the facets, as in profiles.
        """
        ...

    # The ML lifecycle (docs/ml.md): derived from deploy, evaluate and monitor runs.

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


class Writes(Protocol):
    """The one way to change a store: OpenLineage events, each applied in one transaction with its audit entry."""

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
        """Store the event, update derived state and append the audit entry, atomically.

        Without ``detail`` the result's ``versions`` is empty (the server's OpenLineage
        ingest needs only whether the event was new). ``origin`` (a client's address,
        ``local``) is recorded in the audit entry. ``check`` is asked, inside the
        transaction, about what only the store knows (the namespace of a run already
        stored under another job); it raises Forbidden to refuse the event. A run never
        changes job or namespace: such an event is refused (Conflict) either way."""
        ...

    def ingest_soon(
        self,
        event: Event,
        actor: str,
        action: str,
        *,
        detail: bool = True,
        origin: str | None = None,
    ) -> Future[IngestResult] | None:
        """:meth:`ingest` without waiting: the event queued for the store's own writer, and a future of
        what ``ingest`` returns or raises; None from a store that cannot queue without blocking (call
        ``ingest`` in a thread). An event that does not parse raises here. The caller (an event loop)
        never blocks on the store."""
        ...

    def ingest_many(
        self,
        events: Sequence[Event],
        actor: str,
        action: str,
        *,
        origin: str | None = None,
        check: Check | None = None,
    ) -> list[IngestResult | DatatrailError]:
        """Store many events, each with its result or the error (InvalidInput, NotFound…) that refused it.

        A store that can writes them in one transaction; an error of the store itself raises."""
        ...

    def prepare(self) -> None:
        """Load what writes need (drivers, schema check) now, e.g. while a big file hashes."""
        ...


class AuditLog(Protocol):
    """The hash-chained audit log of every read and write, and the store's own integrity."""

    def audit_log(self, limit: int = 100) -> list[AuditEntry]:
        """The newest entries, newest first."""
        ...

    def audit_entries(
        self,
        *,
        dataset: Ref | None = None,
        user: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Entries, newest first: of a dataset (any version), an actor, an action (or prefix ``x.*``), since a time."""
        ...

    def audit_rows(self) -> tuple[Checkpoint | None, Iterator[dict[str, Any]]]:
        """The chain oldest first, as :func:`~datatrail.core.chain.verify_chain` reads it, and the link it starts
        from: None for the first entry (a local store's whole chain), else the newest window's first link."""
        ...

    def audit_head(self) -> Checkpoint | None:
        """The newest entry's sequence number and hash; None when the log is empty."""
        ...

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
        """Append an entry for a read or a refused attempt (a remote store's server records its own: no-op there)."""
        ...

    def record_accesses(self, *, actor: str, action: str, targets: Sequence[str], origin: str | None = None) -> None:
        """:meth:`record_access` of each target (reads allowed), in that order, in one write: a page of a
        listing audited at once (a remote store's server records its own: no-op there)."""
        ...

    def check_integrity(self) -> list[str]:
        """Problems found in the store itself (`datatrail fsck`), one line each; empty when sound."""
        ...


class Grants(Protocol):
    """Roles of users on namespace patterns (changed through a server too)."""

    def add_grant(self, user: str, role: str, pattern: str, *, actor: str, origin: str | None = None) -> bool:
        """Give ``user`` ``role`` on ``pattern``; False if it had it already."""
        ...

    def remove_grant(self, user: str, role: str, pattern: str, *, actor: str, origin: str | None = None) -> None:
        """Take a grant back exactly as given; NotFound if there is none."""
        ...


class Accounts(Protocol):
    """Users and API tokens: managed where the store is (a SQL store), never through a server."""

    def has_users(self) -> bool: ...

    def add_user(self, name: str, *, admin: bool, actor: str, origin: str | None = None) -> UserInfo: ...

    def list_users(self) -> list[UserInfo]: ...

    def principal_named(self, name: str) -> Principal | None: ...

    def create_token(
        self,
        user: str,
        *,
        label: str | None,
        expires_at: datetime | None,
        actor: str,
        origin: str | None = None,
    ) -> tuple[TokenInfo, NewToken]:
        """A new token: the info to show and the secret to hand over once (only its hash is kept)."""
        ...

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]: ...

    def revoke_token(self, token_id: str, *, actor: str, origin: str | None = None) -> TokenInfo: ...

    def authenticate(self, text: str, now: datetime | None = None) -> Principal | None:
        """The principal a token's text belongs to; None for an unknown, expired or revoked token."""
        ...


class Locations(Protocol):
    """Which remote holds the bytes of which version (the store keeps metadata only: names and URLs)."""

    def content_locations(self, version: Version) -> list[ContentLocation]:
        """The remotes a push recorded as holding every object of the version, most recent first."""
        ...

    def record_content_location(
        self, versions: Sequence[Version], remote: str, url: str, *, actor: str, origin: str | None = None
    ) -> int:
        """Record that the remote ``remote`` at ``url`` (no credentials: InvalidInput) holds every object of
        ``versions``; the number newly recorded there (audited as ``content.locate``). A version recorded
        there already keeps its record (renamed if ``remote`` differs); when nothing changes, nothing is
        written and nothing audited (a push that sent nothing new)."""
        ...

    def forget_content_location(
        self, versions: Sequence[Version], url: str, *, actor: str, origin: str | None = None
    ) -> int:
        """Forget that ``url`` holds ``versions`` (``gc --remote`` removed some of their objects there);
        the number of records removed (audited as ``content.forget`` when any was)."""
        ...


class Store(Reads, Writes, AuditLog, Grants, Locations, Protocol):
    """A datatrail store: every protocol above, the URI it was opened with, and its optional accounts."""

    @property
    def uri(self) -> str: ...

    @property
    def accounts(self) -> Accounts | None:
        """Users and tokens of this store; None where they cannot be managed (through a server)."""
        ...

    def close(self) -> None: ...


__all__ = [
    "Accounts",
    "AuditEntry",
    "AuditLog",
    "CheckResult",
    "ColumnLineageResult",
    "Direction",
    "Grants",
    "IngestResult",
    "JobSummary",
    "LineageResult",
    "Locations",
    "Reads",
    "Store",
    "Writes",
]
