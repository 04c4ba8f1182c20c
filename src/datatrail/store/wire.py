"""The JSON shapes values take between a datatrail server and its HTTP store.

The server encodes with ``*_to_wire`` and :class:`~datatrail.store.http.HttpStore`
decodes with ``*_from_wire``; both sides import this one module so the two
cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from datatrail.core.model import Dataset, Digest, FileEntry, Run, RunState, Version
from datatrail.core.results import (
    AuditEntry,
    CheckResult,
    ColumnLineageResult,
    DatasetDetails,
    IngestResult,
    JobSummary,
    LatestVersion,
    LineageNode,
    LineageResult,
    NamespaceSummary,
)
from datatrail.core.times import stored_time


def version_to_wire(v: Version) -> dict[str, Any]:
    return {**v.to_dict(), "key": v.key}


def latest_to_wire(item: LatestVersion) -> dict[str, Any]:
    return {
        "version": version_to_wire(item.version),
        "checks_failed": item.checks_failed,
        "checks_total": item.checks_total,
    }


def latest_from_wire(d: dict[str, Any]) -> LatestVersion:
    return LatestVersion(version_from_wire(d["version"]), int(d["checks_failed"]), int(d["checks_total"]))


def version_from_wire(d: dict[str, Any]) -> Version:
    created = stored_time(d.get("created_at"))
    assert created is not None, "a version always has a creation time"
    return Version(
        namespace=d["namespace"],
        name=d["name"],
        number=int(d["version"]),
        digest=Digest.parse(d["digest"]) if d.get("digest") else None,
        size=d.get("size"),
        uri=d.get("uri"),
        format=d.get("format"),
        created_at=created,
        created_by=d.get("created_by"),
        host=d.get("host"),
        message=d.get("message"),
        kind=d.get("kind") or "dataset",
        file_count=d.get("file_count"),
        run_id=d.get("run_id"),
        aliases=tuple(d.get("aliases") or ()),
        properties=d.get("properties") or {},
        key=d.get("key"),
    )


def dataset_from_wire(d: dict[str, Any]) -> Dataset:
    return Dataset(
        d["namespace"],
        d["name"],
        d.get("kind") or "dataset",
        d.get("description"),
        stored_time(d.get("created_at")),
        int(d.get("version_count") or 0),
        d.get("latest"),
    )


def details_to_wire(x: DatasetDetails) -> dict[str, Any]:
    return {
        "dataset": x.dataset.to_dict(),
        "latest": version_to_wire(x.latest) if x.latest is not None else None,
        "described": x.described,
        "classifications": x.classifications,
        "profile": x.profile,
    }


def details_from_wire(d: dict[str, Any]) -> DatasetDetails:
    latest = d.get("latest")
    return DatasetDetails(
        dataset_from_wire(d["dataset"]),
        version_from_wire(latest) if latest is not None else None,
        d.get("described") or {},
        d.get("classifications") or {},
        d.get("profile"),
    )


def run_to_wire(r: Run) -> dict[str, Any]:
    out = r.to_dict()
    out["inputs"] = [version_to_wire(v) for v in r.inputs]
    out["outputs"] = [version_to_wire(v) for v in r.outputs]
    return out


def run_from_wire(d: dict[str, Any]) -> Run:
    return Run(
        id=d["id"],
        namespace=d["namespace"],
        job=d["job"],
        state=RunState.stored(d["state"]),
        started_at=stored_time(d.get("started_at")),
        ended_at=stored_time(d.get("ended_at")),
        user=d.get("user"),
        host=d.get("host"),
        command=d.get("command"),
        cwd=d.get("cwd"),
        params=d.get("params") or {},
        metrics=d.get("metrics") or {},
        code=d.get("code") or {},
        error=d.get("error"),
        parent_run_id=d.get("parent_run_id"),
        workflow=d.get("workflow"),
        inputs=tuple(version_from_wire(v) for v in d.get("inputs") or ()),
        outputs=tuple(version_from_wire(v) for v in d.get("outputs") or ()),
        facets=d.get("facets") or {},
        planned_outputs=tuple((p["namespace"], p["name"]) for p in d.get("planned_outputs") or ()),
        children=tuple(d.get("children") or ()),
    )


def file_to_wire(f: FileEntry) -> list[Any]:
    return [f.path, f.size, str(f.digest)]


def file_from_wire(item: list[Any]) -> FileEntry:
    return FileEntry(item[0], int(item[1]), Digest.parse(item[2]))


def namespace_from_wire(d: dict[str, Any]) -> NamespaceSummary:
    return NamespaceSummary(
        d["name"],
        int(d["datasets"]),
        int(d["jobs"]),
        stored_time(d.get("created_at")),
        stored_time(d.get("updated_at")),
    )


def job_from_wire(d: dict[str, Any]) -> JobSummary:
    return JobSummary(
        d["namespace"],
        d["name"],
        d.get("type"),
        stored_time(d.get("created_at")),
        int(d.get("run_count") or 0),
        d.get("latest_run"),
        d.get("latest_state"),
        d.get("facets") or {},
        d.get("description"),
    )


def lineage_to_wire(result: LineageResult) -> dict[str, Any]:
    return {
        "nodes": [{"id": n.id, "type": n.type, "depth": n.depth, "data": n.data} for n in result.nodes.values()],
        "edges": [list(e) for e in result.edges],
    }


def lineage_from_wire(d: dict[str, Any]) -> LineageResult:
    nodes = {n["id"]: LineageNode(n["id"], n["type"], int(n["depth"]), n["data"]) for n in d["nodes"]}
    return LineageResult(nodes, tuple((s, t) for s, t in d["edges"]))


def column_lineage_to_wire(result: ColumnLineageResult) -> dict[str, Any]:
    return {"nodes": result.nodes, "edges": [list(e) for e in result.edges]}


def column_lineage_from_wire(d: dict[str, Any]) -> ColumnLineageResult:
    return ColumnLineageResult(d["nodes"], tuple((s, t, tr) for s, t, tr in d["edges"]))


def ingest_to_wire(result: IngestResult) -> dict[str, Any]:
    return {
        "event_id": result.event_id,
        "duplicate": result.duplicate,
        "versions": [{"version": version_to_wire(v), "new": new} for v, new in result.versions],
        "run_id": result.run_id,
    }


def ingest_from_wire(d: dict[str, Any]) -> IngestResult:
    versions = tuple((version_from_wire(item["version"]), bool(item["new"])) for item in d.get("versions") or ())
    return IngestResult(d.get("event_id"), bool(d.get("duplicate")), versions, d.get("run_id"))


def audit_to_wire(e: AuditEntry) -> dict[str, Any]:
    return e.to_dict()


def audit_from_wire(d: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        d["seq"],
        stored_time(d.get("time")),
        d["actor"],
        d["action"],
        d.get("target"),
        d["outcome"],
        d.get("details") or {},
        d["prev_hash"],
        d["hash"],
    )


def check_from_wire(d: dict[str, Any]) -> CheckResult:
    return CheckResult(
        rule=d["rule"],
        name=d.get("name"),
        column=d.get("column"),
        severity=d["severity"],
        success=bool(d["success"]),
        observed=d.get("observed"),
        expected=d.get("expected"),
        message=d.get("message"),
        checked_at=stored_time(d.get("checked_at")),
        checked_by=d.get("checked_by"),
    )
