"""The value types of events: what an OpenLineage event is, and what it changes in a store.

``events.py`` builds and parses events; these are the values it produces and
the store consumes, so the store depends on this module, not on the parser.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from datatrail.core.canonical import canonical_json
from datatrail.core.model import Digest, FileEntry, RunState

Event = dict[str, Any]
"""An OpenLineage event (spec 2-0-2) as parsed JSON."""


@dataclass(frozen=True)
class VersionInfo:
    """What datatrail knows of a version when it is written."""

    key: str
    digest: Digest | None = None
    size: int | None = None
    uri: str | None = None
    format: str | None = None
    files: tuple[FileEntry, ...] | None = None
    created_by: str | None = None
    host: str | None = None
    message: str | None = None
    kind: str = "dataset"
    properties: dict[str, Any] = field(default_factory=dict)
    profile: dict[str, Any] | None = None  # profiling.py's profile of tabular data


@dataclass(frozen=True)
class DatasetChange:
    namespace: str
    name: str
    role: str  # "input", "output" or "static"
    version: VersionInfo | None = None
    aliases: tuple[str, ...] = ()
    kind: str = "dataset"
    checks: tuple[dict[str, Any], ...] = ()  # check results (datatrail_checks / dataQualityAssertions)
    # Every facet of the dataset in the event, verbatim (store appliers map the standard ones).
    facets: dict[str, Any] = field(default_factory=dict)
    # The facets of the input/output entry (inputFacets / outputFacets), verbatim.
    io_facets: dict[str, Any] = field(default_factory=dict)
    # The name its ``symlinks`` facet gives it that stands for it everywhere (a Spark path's Hive table):
    # the store records the dataset under that name and this one as a link to it (as Marquez does).
    canonical: tuple[str, str] | None = None
    # Every name of the dataset its symlinks facet gives (its own included): each leads to the same dataset.
    names: tuple[tuple[str, str], ...] = ()
    # An output the run only names (START, RUNNING, FAIL, ABORT) without content datatrail hashed: no version.
    planned: bool = False


@dataclass(frozen=True)
class RunChange:
    run_id: str
    namespace: str
    job: str
    state: RunState
    event_time: datetime
    job_type: str | None = None
    user: str | None = None
    host: str | None = None
    command: str | None = None
    cwd: str | None = None
    params: dict[str, Any] | None = None
    metrics: dict[str, list[tuple[int, Any]]] | None = None
    code: dict[str, Any] | None = None
    error: str | None = None
    parent_run_id: str | None = None
    workflow: str | None = None
    # When the run started, as its facets tell (nominalTime, the scheduler's facets): used while no START or
    # RUNNING event of it is stored.
    started_hint: datetime | None = None
    # The run's and the job's facets, verbatim (store appliers map the standard ones).
    run_facets: dict[str, Any] = field(default_factory=dict)
    job_facets: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Changes:
    """What one event changes, independent of any store."""

    event_type: str
    event_time: datetime
    actor: str
    run: RunChange | None
    datasets: tuple[DatasetChange, ...]


def event_hash(event: Event) -> str:
    return hashlib.sha256(canonical_json(event).encode()).hexdigest()


__all__ = ["Changes", "DatasetChange", "Event", "RunChange", "VersionInfo", "canonical_json", "event_hash"]
