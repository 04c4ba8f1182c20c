"""What stores answer: values shared by every backend, the service layer and the pictures."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from datatrail.core.gcpause import paused_gc
from datatrail.core.model import Dataset, Version

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
class LineageColumns:
    """A :class:`LineageResult` as columns, for graphs of tens of thousands of nodes: row ``i`` is the
    node ``ids[i]`` of type ``types[i]`` at ``depths[i]`` steps with ``data[i]``; edge ``j`` goes from
    row ``origins[j]`` to row ``destinations[j]`` (in no particular order). No object per node or edge
    but its data, so an answer can be shaped from it in one pass (``server/marquez.py``).
    """

    ids: list[str]
    types: list[Literal["version", "run"]]
    depths: list[int]
    data: list[dict[str, Any]]
    origins: list[int]
    destinations: list[int]

    @classmethod
    def of(cls, result: LineageResult) -> LineageColumns:
        """The columns of a result (a backend that has no columnar path: the HTTP store)."""
        rows = {nid: i for i, nid in enumerate(result.nodes)}
        nodes = list(result.nodes.values())
        edges = [(rows[s], rows[t]) for s, t in result.edges if s in rows and t in rows]
        return cls(
            [n.id for n in nodes],
            [n.type for n in nodes],
            [n.depth for n in nodes],
            [n.data for n in nodes],
            [s for s, _ in edges],
            [t for _, t in edges],
        )

    def result(self) -> LineageResult:
        """The same graph as a :class:`LineageResult`, the reference shape.

        Its edges are sorted as integers, not as pairs of strings (148,000 edges on a depth-50 graph):
        each row stands for its rank among the sorted node ids, an edge for ``rank(origin) * n +
        rank(destination)``, so the integers sort as the id pairs would. The cyclic collector is paused
        meanwhile (core/gcpause.py): a node and a pair of strings per edge, none in a cycle, set it off
        again and again over everything the process holds.
        """
        with paused_gc():
            nodes = {
                nid: LineageNode(nid, kind, depth, data)
                for nid, kind, depth, data in zip(self.ids, self.types, self.depths, self.data, strict=True)
            }
            names = sorted(nodes)
            n = len(names)
            rank = {nid: i for i, nid in enumerate(names)}
            ranks = [rank[nid] for nid in self.ids]
            keys = sorted({ranks[o] * n + ranks[d] for o, d in zip(self.origins, self.destinations, strict=True)})
            return LineageResult(nodes, tuple([(names[k // n], names[k % n]) for k in keys]))


REDACTED_JSON = b'{"redacted":true}'
"""The data of a node hidden from the reader, as JSON (``security/guard.py``)."""


@dataclass(frozen=True)
class LineageJson:
    """:class:`LineageColumns` with each row's data as JSON bytes, and its namespace beside it: what
    ``GET /api/v1/lineage`` needs to join an answer of thousands of nodes from bytes (the SQL store
    keeps each node's bytes in a cache, ``store/sql/nodecache.py``). A hidden row's data is
    :data:`REDACTED_JSON` and its id opaque.
    """

    ids: list[str]
    types: list[Literal["version", "run"]]
    namespaces: list[str]
    data: list[bytes]
    origins: list[int]
    destinations: list[int]
    # What a caller makes of this graph and keeps as long as the store keeps the graph (the route's
    # joined answer: a redacted graph is a new object, so only an unredacted one is ever kept here).
    derived: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)
    # The same graph before some rows' data changed, for a caller that can patch what it derived from
    # it: that graph's ``derived`` and each changed row with its data then (emptied once used).
    before: list[tuple[dict[str, bytes], list[tuple[int, bytes]]]] = field(
        default_factory=list, compare=False, repr=False
    )

    @classmethod
    def of(cls, columns: LineageColumns) -> LineageJson:
        """The same graph from columns (a backend without a cache: the HTTP store)."""
        return cls(
            list(columns.ids),
            list(columns.types),
            [str(d.get("namespace", "")) for d in columns.data],
            [orjson.dumps(d) for d in columns.data],
            list(columns.origins),
            list(columns.destinations),
        )

    def columns(self) -> LineageColumns:
        """The same graph as columns (depths are not carried: 0)."""
        return LineageColumns(
            list(self.ids),
            list(self.types),
            [0] * len(self.ids),
            [orjson.loads(d) for d in self.data],
            list(self.origins),
            list(self.destinations),
        )


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
class SearchHit:
    """A dataset or job search found (:meth:`~datatrail.store.base.Reads.search`): Marquez's search result."""

    type: str  # DATASET or JOB
    namespace: str
    name: str
    updated_at: datetime | None  # when the dataset or job was first recorded (Marquez's updatedAt, as before)


@dataclass(frozen=True)
class NamespaceSummary:
    """A namespace that lists a dataset or has a job: how many of each, and when the first and the latest
    of them were recorded (None without any)."""

    name: str
    datasets: int
    jobs: int
    created_at: datetime | None
    updated_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "datasets": self.datasets,
            "jobs": self.jobs,
            "created_at": self.created_at.isoformat() if self.created_at is not None else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at is not None else None,
        }


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
    description: str | None = None  # the documentation facet's

    @property
    def sql(self) -> str | None:
        """The query of the job's ``sql`` facet, if a producer sent one."""
        value = (self.facets.get("sql") or {}).get("value")
        query = value.get("query") if isinstance(value, dict) else None
        return query if isinstance(query, str) else None

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
            "description": self.description,
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
class LatestVersion:
    """The latest version of a dataset, with how its latest check evaluation went (0 and 0: never checked)."""

    version: Version
    checks_failed: int = 0
    checks_total: int = 0


@dataclass(frozen=True)
class DatasetDetails:
    """A listed dataset with what a full view of it shows, read for a whole page at once
    (:meth:`~datatrail.store.base.Reads.dataset_page_details`): its latest version and, of that version,
    what :meth:`~datatrail.store.base.Reads.describe` and :meth:`~datatrail.store.base.Reads.classifications`
    answer, and its profile when no schema was reported (None otherwise). Without a version: None, ``{}``,
    ``{}``, None."""

    dataset: Dataset
    latest: Version | None
    described: dict[str, Any]
    classifications: dict[str, list[str]]
    profile: dict[str, Any] | None


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

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON: the form the API serves and the chain verification reads."""
        return {
            "seq": self.seq,
            "time": self.time.isoformat() if isinstance(self.time, datetime) else self.time,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class BackupInfo:
    """A checked copy of a store: where it is, its size in bytes and its schema revision."""

    path: Path
    size: int
    revision: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"path": os.fspath(self.path), "size": self.size, "revision": self.revision}
