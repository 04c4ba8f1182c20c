"""What the importers and exporters share: the import summary, stable ids, the upstream walk."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from datatrail.core.changes import Event
from datatrail.core.model import Ref, Run, Version
from datatrail.events import parse_event

if TYPE_CHECKING:
    from datatrail.service import Trail

# uuid5 namespace of the run ids datatrail derives from another tool's records.
ID_NAMESPACE = uuid.UUID("6c1f3b0e-4d7a-5b8e-9f21-0a7d3c5e9b14")


def stable_uuid(*parts: str) -> str:
    """The same UUID for the same parts, on every machine (so re-imports are idempotent)."""
    return str(uuid.uuid5(ID_NAMESPACE, "\x1f".join(parts)))


def iso(value: datetime | float | int | None) -> str:
    """An ISO 8601 UTC time from a datetime or seconds since the epoch (now when None)."""
    if value is None:
        return datetime.now(UTC).isoformat()
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    return datetime.fromtimestamp(float(value), UTC).isoformat()


def safe_job_name(text: str) -> str:
    """A job name from another tool's stage or experiment name ('@', ':' and '/' become '.')."""
    out = "".join("." if c in "@:/" else c for c in text).strip(" .")
    return out or "job"


@dataclass
class ImportSummary:
    """What an import read and what it added to the store."""

    source: str
    events: int = 0
    new_events: int = 0
    new_versions: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "events": self.events,
            "new_events": self.new_events,
            "duplicate_events": self.events - self.new_events,
            "new_versions": self.new_versions,
            "runs": self.runs,
            "skipped": self.skipped,
        }


def check_events(events: Iterable[Event], actor: str) -> None:
    """Validate every event before any is stored (InvalidInput names the first bad one)."""
    for event in events:
        parse_event(event, actor)


def ingest_all(trail: Trail, events: list[Event], summary: ImportSummary, action: str) -> ImportSummary:
    """Ingest events in order, counting what was new; each event is its own transaction."""
    check_events(events, trail.user)
    for event in events:
        result = trail.ingest(event, action=action)
        summary.events += 1
        if not result.duplicate:
            summary.new_events += 1
        summary.new_versions += [v.ref for v, new in result.versions if new and v.ref not in summary.new_versions]
        if result.run_id and not result.duplicate and result.run_id not in summary.runs:
            summary.runs.append(result.run_id)
    return summary


@dataclass
class Upstream:
    """A version with everything upstream of it: the versions and the runs that made them."""

    root: Version
    versions: dict[str, Version]
    runs: dict[str, Run]


def version_id(v: Version) -> str:
    """``namespace:name@number``: a version's qualified name in every export."""
    return f"{v.namespace}:{v.name}@{v.number}"


def walk_upstream(trail: Trail, ref: str | Ref | Version, depth: int | None = None) -> Upstream:
    """The version ``ref`` names and everything it came from (``depth`` runs back; None: all)."""
    root = trail.get(ref)
    versions: dict[str, Version] = {version_id(root): root}
    runs: dict[str, Run] = {}
    frontier = [root]
    level = 0
    while frontier and (depth is None or level < depth):
        level += 1
        nxt: list[Version] = []
        for v in frontier:
            if v.run_id is None or v.run_id in runs:
                continue
            run = trail.get_run(v.run_id)
            runs[run.id] = run
            for item in (*run.inputs, *run.outputs):
                key = version_id(item)
                if key not in versions:
                    versions[key] = item
                    if item in run.inputs:
                        nxt.append(item)
        frontier = nxt
    return Upstream(root, versions, runs)
