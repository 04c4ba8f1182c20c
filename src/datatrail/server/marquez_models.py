"""datatrail's values in Marquez's JSON shapes, for the Marquez-compatible ``/api/v1`` read API.

Marquez's objects (``openapi.yml`` of MarquezProject/marquez, and its ``service/models``) are
camelCase: a dataset is ``{"id": {"namespace", "name"}, "type", "physicalName", "sourceName",
"fields", "tags", "facets", "currentVersion", "lastModifiedAt", …}``, a job ``{"id", "type",
"inputs", "outputs", "latestRun", "location", "parentJobName", …}``, a run ``{"id", "state":
NEW|RUNNING|COMPLETED|FAILED|ABORTED, "jobVersion", "inputDatasetVersions", …}``. datatrail's own
facts (a version's number, digest and size, a dataset's kind…) are further camelCase fields
of the same objects, so Marquez clients and datatrail's read the same answer.

Marquez identifies dataset and job versions by UUID; datatrail derives them (uuid5) from what
identifies the version, so they are stable without being stored: :func:`version_uuid`,
:func:`job_version_uuid`.

Each function reads through the request's :class:`~datatrail.service.Trail` (its grants and
read audit apply) and returns plain JSON.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from datatrail.core.errors import NotFound
from datatrail.core.model import Dataset, Ref, Run, RunState, Version
from datatrail.core.results import DatasetDetails, JobSummary, NamespaceSummary
from datatrail.core.times import iso
from datatrail.service import Trail

# uuid5 namespace of the dataset and job version ids shown to Marquez clients (never change it:
# clients keep these ids).
VERSION_NAMESPACE = uuid.UUID("0b6f3c8e-5a1d-5e2f-8c47-2d9a61f0e3b5")
DEFAULT_OWNER = "anonymous"  # Marquez's owner of namespaces created by OpenLineage events
DEFAULT_SOURCE = "default"  # Marquez's source of datasets without a dataSource facet
JOB_TYPES = {"BATCH": "BATCH", "STREAM": "STREAM", "STREAMING": "STREAM", "SERVICE": "SERVICE"}
STATES = {
    RunState.RUNNING: "RUNNING",
    RunState.COMPLETE: "COMPLETED",
    RunState.FAIL: "FAILED",
    RunState.ABORT: "ABORTED",
}


def run_state(state: RunState | str | None) -> str:
    """Marquez's run state (NEW, RUNNING, COMPLETED, FAILED, ABORTED) of a datatrail run state.

    >>> run_state("START"), run_state(RunState.COMPLETE), run_state(None)
    ('RUNNING', 'COMPLETED', 'NEW')
    """
    try:
        return STATES[RunState.stored(state)] if state is not None else "NEW"
    except ValueError:
        return "NEW"


_NAMESPACE_BYTES = VERSION_NAMESPACE.bytes


def uuid5_text(name: str) -> str:
    """``str(uuid.uuid5(VERSION_NAMESPACE, name))``, without building a ``UUID`` (a graph names thousands).

    >>> uuid5_text("dataset\x1fwarehouse") == str(uuid.uuid5(VERSION_NAMESPACE, "dataset\x1fwarehouse"))
    True
    """
    b = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8"), usedforsecurity=False).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50  # version 5
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def version_uuid(namespace: str, name: str, number: int) -> str:
    """The stable UUID of version ``number`` of a dataset (Marquez's dataset version id).

    >>> version_uuid("warehouse", "public.orders", 2) == version_uuid("warehouse", "public.orders", 2)
    True
    """
    return uuid5_text("\x1f".join(("dataset", namespace, name, str(number))))


def job_version_uuid(namespace: str, name: str, run: Run) -> str:
    """The stable UUID of the job version a run ran: the job with the datasets it read and wrote, as Marquez
    versions jobs (Marquez adds the code location; datatrail keeps a job's latest location only, which would
    change the id of every past version)."""
    inputs = sorted({f"{v.namespace}:{v.name}" for v in run.inputs})
    outputs = sorted({f"{v.namespace}:{v.name}" for v in run.outputs})
    parts = ("job", namespace, name, "\x1e".join(inputs), "\x1e".join(outputs))
    return uuid5_text("\x1f".join(parts))


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return len(text) == 36


def facet_values(facets: dict[str, Any] | None) -> dict[str, Any]:
    """Stored facets (each ``{"time", "value"}``, the latest event's) as OpenLineage facets."""
    out: dict[str, Any] = {}
    for key, facet in (facets or {}).items():
        if isinstance(facet, dict) and set(facet) == {"time", "value"}:
            out[key] = facet["value"]
        else:
            out[key] = facet
    return out


def _tag_names(facet: Any) -> list[str]:
    """The names of an OpenLineage ``tags`` facet's tags (``key``, or ``key:value`` when the value says more)."""
    names: list[str] = []
    items = facet.get("tags") if isinstance(facet, dict) else None
    for tag in items if isinstance(items, list) else ():
        if isinstance(tag, dict) and isinstance(tag.get("key"), str):
            value = tag.get("value")
            names.append(tag["key"] if value in (None, "", True, "true") else f"{tag['key']}:{value}")
    return sorted(set(names))


def _description(facets: dict[str, Any]) -> str | None:
    doc = facets.get("documentation")
    text = doc.get("description") if isinstance(doc, dict) else None
    return text if isinstance(text, str) else None


def _fields(schema: Any, labels: dict[str, list[str]]) -> list[dict[str, Any]]:
    """OpenLineage schema fields as Marquez's ``fields`` (``tags`` are the column's classification labels)."""
    out: list[dict[str, Any]] = []
    for f in schema if isinstance(schema, list) else ():
        if not isinstance(f, dict) or not isinstance(f.get("name"), str):
            continue
        out.append(
            {
                "name": f["name"],
                "type": str(f.get("type") or "UNKNOWN"),
                "tags": sorted(labels.get(f["name"], [])),
                "description": f.get("description") if isinstance(f.get("description"), str) else None,
            }
        )
    return out


def _profile_fields(profile: dict[str, Any] | None, labels: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Fields from a datatrail profile (data added with ``datatrail add``: no schema facet)."""
    schema = [
        {"name": c.get("name"), "type": c.get("type") or c.get("dtype")}
        for c in (profile or {}).get("columns") or ()
        if isinstance(c, dict)
    ]
    return _fields(schema, labels)


class Facts:
    """What a Marquez dataset or version shows beyond datatrail's Version: schema, facets, labels.

    Read once per version per request; a listing's page of datasets is read at once (:meth:`of`)."""

    def __init__(self, trail: Trail, version: Version | None) -> None:
        self.facets: dict[str, Any] = {}
        self.fields: list[dict[str, Any]] = []
        self.lifecycle: str | None = None
        if version is None:
            return
        described = trail.catalog.describe(version)
        labels = trail.catalog.classifications(version)
        profile = None if described.get("schema") else trail.catalog.profile(version)
        self._fill(described, labels, profile)

    @classmethod
    def of(cls, details: DatasetDetails) -> Facts:
        """The facts of a dataset's latest version as :meth:`Reads.dataset_page_details` read them."""
        facts = cls.__new__(cls)
        facts.facets, facts.fields, facts.lifecycle = {}, [], None
        if details.latest is not None:
            facts._fill(details.described, details.classifications, details.profile)
        return facts

    def _fill(self, described: dict[str, Any], labels: dict[str, list[str]], profile: dict[str, Any] | None) -> None:
        self.facets = facet_values(described.get("facets"))
        self.lifecycle = described.get("lifecycle")
        if described.get("schema"):
            self.fields = _fields(described["schema"], labels)
        else:
            self.fields = _profile_fields(profile, labels)

    @property
    def source_name(self) -> str:
        source = self.facets.get("dataSource")
        name = source.get("name") if isinstance(source, dict) else None
        return name if isinstance(name, str) and name else DEFAULT_SOURCE

    @property
    def source_uri(self) -> str | None:
        source = self.facets.get("dataSource")
        uri = source.get("uri") if isinstance(source, dict) else None
        return uri if isinstance(uri, str) else None

    @property
    def dataset_type(self) -> str:
        kind = self.facets.get("datasetType")
        text = kind.get("datasetType") if isinstance(kind, dict) else None
        return "STREAM" if isinstance(text, str) and text.upper() in ("STREAM", "TOPIC") else "DB_TABLE"

    @property
    def tags(self) -> list[str]:
        return _tag_names(self.facets.get("tags"))


# ------------------------------------------------------------ datasets and versions


def _latest(trail: Trail, d: Dataset) -> Version | None:
    if d.latest is None:
        return None
    try:
        return trail.catalog.lookup(Ref(d.namespace, d.name, str(d.latest)))
    except NotFound:
        return None


def dataset(trail: Trail, d: Dataset) -> dict[str, Any]:
    """Marquez's Dataset, with datatrail's ``kind``, ``versionCount`` and ``latestVersion`` (a number)."""
    current = _latest(trail, d)
    return _dataset(d, current, Facts(trail, current))


def dataset_of(details: DatasetDetails) -> dict[str, Any]:
    """:func:`dataset` of what :meth:`Reads.dataset_page_details` read (the same answer, no read of its own)."""
    return _dataset(details.dataset, details.latest, Facts.of(details))


def _dataset(d: Dataset, current: Version | None, facts: Facts) -> dict[str, Any]:
    created = iso(d.created_at) or (iso(current.created_at) if current else None)
    updated = iso(current.created_at) if current else created
    return {
        "id": {"namespace": d.namespace, "name": d.name},
        "type": facts.dataset_type,
        "name": d.name,
        "physicalName": d.name,
        "createdAt": created,
        "updatedAt": updated,
        "namespace": d.namespace,
        "sourceName": facts.source_name,
        "fields": facts.fields,
        "tags": facts.tags,
        "lastModifiedAt": updated if current else None,
        "lastLifecycleState": facts.lifecycle,
        "description": d.description or _description(facts.facets),
        "currentVersion": version_uuid(d.namespace, d.name, current.number) if current else None,
        "columnLineage": None,
        "facets": facts.facets,
        "deleted": False,
        # datatrail's
        "kind": d.kind,
        "versionCount": d.version_count,
        "latestVersion": d.latest,
    }


def find_dataset(trail: Trail, namespace: str, name: str) -> Dataset:
    for d in trail.datasets(namespace, name=name):
        return d
    msg = f"no dataset named {name!r} in namespace {namespace!r}"
    raise NotFound(msg)


def find_version(trail: Trail, namespace: str, name: str, selector: str) -> Version:
    """A version by its UUID (Marquez's id), number, ``latest``, alias, ``sha256:PREFIX`` or ``datasetVersion``."""
    if is_uuid(selector):
        wanted = selector.lower()
        for v in trail.catalog.dataset_versions(namespace, name):
            if version_uuid(v.namespace, v.name, v.number) == wanted:
                return v
        # Not one of datatrail's ids: it may be a producer's datasetVersion that is a UUID.
    return trail.catalog.find(namespace, name, selector)


def version(trail: Trail, v: Version, *, description: str | None = None, with_run: bool = True) -> dict[str, Any]:
    """Marquez's DatasetVersion, with datatrail's number, digest, size, format… (``versionNumber``…)."""
    facts = Facts(trail, v)
    vid = version_uuid(v.namespace, v.name, v.number)
    created_by_run = None
    if with_run and v.run_id:
        try:
            created_by_run = run(trail, trail.catalog.get_run(v.run_id))
        except NotFound:  # hidden from the caller, or gone
            created_by_run = None
    return {
        "id": {"namespace": v.namespace, "name": v.name, "version": vid},
        "type": facts.dataset_type,
        "name": v.name,
        "physicalName": v.name,
        "createdAt": iso(v.created_at),
        "version": vid,
        "namespace": v.namespace,
        "sourceName": facts.source_name,
        "fields": facts.fields,
        "tags": facts.tags,
        "lifecycleState": facts.lifecycle,
        "description": description or _description(facts.facets) or "",
        "currentSchemaVersion": None,
        "createdByRun": created_by_run,
        "facets": facts.facets,
        # datatrail's
        **version_extras(v),
    }


def version_extras(v: Version) -> dict[str, Any]:
    """datatrail's own facts of a version, in camelCase."""
    return {
        "versionNumber": v.number,
        "ref": v.ref,
        "kind": v.kind,
        "digest": str(v.digest) if v.digest else None,
        "size": v.size,
        "uri": v.uri,
        "format": v.format,
        "fileCount": v.file_count,
        "createdBy": v.created_by,
        "host": v.host,
        "message": v.message,
        "runId": v.run_id,
        "aliases": list(v.aliases),
        "properties": v.properties,
    }


def version_ref(v: Version) -> dict[str, Any]:
    """A version named from a run or a job: ``{"namespace", "name", "version": UUID, "versionNumber"}``."""
    return {
        "namespace": v.namespace,
        "name": v.name,
        "version": version_uuid(v.namespace, v.name, v.number),
        "versionNumber": v.number,
    }


# ------------------------------------------------------------ runs and jobs


def _nominal(facets: dict[str, Any]) -> tuple[str | None, str | None]:
    nominal = facets.get("nominalTime")
    if not isinstance(nominal, dict):
        return None, None
    start, end = nominal.get("nominalStartTime"), nominal.get("nominalEndTime")
    return (start if isinstance(start, str) else None), (end if isinstance(end, str) else None)


def _duration(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return int((end - start).total_seconds() * 1000)


def location_of(facets: dict[str, Any]) -> str | None:
    """The job's code location: the ``sourceCodeLocation`` facet's url."""
    found = facets.get("sourceCodeLocation")
    url = found.get("url") if isinstance(found, dict) else None
    return url if isinstance(url, str) else None


def run(trail: Trail, r: Run) -> dict[str, Any]:
    """Marquez's Run, with datatrail's user, host, command, params, metrics, code, error…"""
    facets = facet_values(r.facets)
    start, end = _nominal(facets)
    created = iso(r.started_at) or iso(r.ended_at)
    return {
        "id": r.id,
        "createdAt": created,
        "updatedAt": iso(r.ended_at) or created,
        "nominalStartTime": start,
        "nominalEndTime": end,
        "state": run_state(r.state),
        "startedAt": iso(r.started_at),
        "endedAt": iso(r.ended_at),
        "durationMs": _duration(r.started_at, r.ended_at),
        "args": {k: v if isinstance(v, str) else str(v) for k, v in r.params.items()},
        "jobVersion": {
            "namespace": r.namespace,
            "name": r.job,
            "version": job_version_uuid(r.namespace, r.job, r),
        },
        "inputDatasetVersions": [{"datasetVersionId": version_ref(v), "facets": {}} for v in r.inputs],
        "outputDatasetVersions": [{"datasetVersionId": version_ref(v), "facets": {}} for v in r.outputs],
        "context": {},
        "facets": facets,
        # datatrail's
        "namespace": r.namespace,
        "jobName": r.job,
        "user": r.user,
        "host": r.host,
        "command": r.command,
        "cwd": r.cwd,
        "params": r.params,
        "metrics": r.metrics,
        "code": r.code,
        "error": r.error,
        "parentRunId": r.parent_run_id,
        "workflow": r.workflow,
    }


def _job_type(j: JobSummary, facets: dict[str, Any]) -> str:
    found = facets.get("jobType")
    processing = found.get("processingType") if isinstance(found, dict) else None
    for text in (processing, j.type):
        if isinstance(text, str) and text.upper() in JOB_TYPES:
            return JOB_TYPES[text.upper()]
    return "BATCH"


def _dataset_ids(versions: Iterable[Version]) -> list[dict[str, str]]:
    seen = sorted({(v.namespace, v.name) for v in versions})
    return [{"namespace": ns, "name": n} for ns, n in seen]


def _get_run(trail: Trail, run_id: str | None) -> Run | None:
    if run_id is None:
        return None
    try:
        return trail.catalog.get_run(run_id)
    except NotFound:
        return None


def job(trail: Trail, j: JobSummary) -> dict[str, Any]:
    """Marquez's Job: inputs and outputs are those of its latest run, with datatrail's ``kind`` and ``runCount``."""
    latest = _get_run(trail, j.latest_run)
    parent = _get_run(trail, latest.parent_run_id) if latest is not None else None
    return _job(trail, j, latest, parent)


def jobs(trail: Trail, found: list[JobSummary]) -> list[dict[str, Any]]:
    """:func:`job` of each, the same answers: the latest runs, then their parents, each read at once."""
    latest = _runs(trail, [j.latest_run for j in found if j.latest_run is not None])
    parents = _runs(trail, [r.parent_run_id for r in latest.values() if r.parent_run_id is not None])
    out = []
    for j in found:
        run = latest.get(j.latest_run) if j.latest_run is not None else None
        parent = parents.get(run.parent_run_id) if run is not None and run.parent_run_id is not None else None
        out.append(_job(trail, j, run, parent))
    return out


def _runs(trail: Trail, ids: list[str]) -> dict[str, Run]:
    """Runs by id as :func:`_get_run` reads each: whole ids at once, anything else (a prefix…) alone."""
    whole = [i for i in ids if is_uuid(i) and i == i.lower()]
    found = {r.id: r for r in trail.catalog.runs_by_id(whole)}
    alone = set(ids) - set(whole)
    for other in dict.fromkeys(i for i in ids if i in alone):
        run = _get_run(trail, other)
        if run is not None:
            found[other] = run
    return found


def _job(trail: Trail, j: JobSummary, latest: Run | None, parent: Run | None) -> dict[str, Any]:
    facets = facet_values(j.facets)
    location = location_of(facets)
    parent_name = parent.job if parent is not None else None
    created = iso(j.created_at)
    shaped_latest = run(trail, latest) if latest is not None else None
    return {
        "id": {"namespace": j.namespace, "name": j.name},
        "type": _job_type(j, facets),
        "name": j.name,
        "simpleName": j.name.rsplit(".", 1)[-1] if parent_name else j.name,
        "parentJobName": parent_name,
        "parentJobUuid": None,
        "createdAt": created,
        "updatedAt": (shaped_latest or {}).get("updatedAt") or created,
        "namespace": j.namespace,
        "inputs": _dataset_ids(latest.inputs) if latest is not None else [],
        "outputs": _dataset_ids(latest.outputs) if latest is not None else [],
        "location": location,
        "description": _description(facets),
        "latestRun": shaped_latest,
        "latestRuns": [shaped_latest] if shaped_latest is not None else [],
        "facets": facets,
        "currentVersion": shaped_latest["jobVersion"]["version"] if shaped_latest is not None else None,
        "labels": [],
        "tags": _tag_names(facets.get("tags")),
        # datatrail's
        "kind": j.type,
        "runCount": j.run_count,
    }


def job_tags(j: JobSummary) -> list[str]:
    return _tag_names(facet_values(j.facets).get("tags"))


def find_job(trail: Trail, namespace: str, name: str) -> JobSummary:
    for j in trail.jobs(namespace, name=name):
        return j
    msg = f"no job named {name!r} in namespace {namespace!r}"
    raise NotFound(msg)


def job_runs(trail: Trail, j: JobSummary, limit: int) -> list[Run]:
    """The job's latest ``limit`` runs, newest first."""
    return [r for r in trail.runs(j.name, limit=limit) if r.namespace == j.namespace]


def job_versions(trail: Trail, j: JobSummary, runs: int = 1000) -> list[dict[str, Any]]:
    """Marquez's JobVersions of a job, newest first: one per distinct inputs and outputs of its runs."""
    location = location_of(facet_values(j.facets))
    found: dict[str, dict[str, Any]] = {}
    for r in job_runs(trail, j, runs):  # newest first
        vid = job_version_uuid(j.namespace, j.name, r)
        entry = found.get(vid)
        if entry is None:
            found[vid] = entry = {
                "id": {"namespace": j.namespace, "name": j.name, "version": vid},
                "name": j.name,
                "version": vid,
                "createdAt": iso(r.started_at) or iso(r.ended_at),
                "namespace": j.namespace,
                "inputs": _dataset_ids(r.inputs),
                "outputs": _dataset_ids(r.outputs),
                "location": location,
                "context": {},
                "latestRun": run(trail, r),
                "facets": facet_values(j.facets),
                "runCount": 0,
            }
        entry["runCount"] += 1
        entry["createdAt"] = iso(r.started_at) or iso(r.ended_at) or entry["createdAt"]  # the oldest run's
    return list(found.values())


def namespace(found: NamespaceSummary) -> dict[str, Any]:
    """Marquez's Namespace, with datatrail's numbers of ``datasets`` and ``jobs``; its times are the first and
    last its datasets and jobs were recorded."""
    return {
        "name": found.name,
        "createdAt": iso(found.created_at),
        "updatedAt": iso(found.updated_at),
        "ownerName": DEFAULT_OWNER,
        "description": None,
        "isHidden": False,
        "datasets": found.datasets,
        "jobs": found.jobs,
    }


def source_of(name: str, uri: str | None, created: str | None) -> dict[str, Any]:
    scheme = urlsplit(uri).scheme if uri else ""
    return {
        "type": scheme.upper() or "DEFAULT",
        "name": name,
        "createdAt": created,
        "updatedAt": created,
        "connectionUrl": uri or "",
        "description": None,
    }


def fill_graph(trail: Trail, shaped: dict[str, Any]) -> dict[str, Any]:
    """A folded lineage graph's ``DATASET`` and ``JOB`` nodes with Marquez's Dataset and Job as ``data``
    (keeping datatrail's ``versions`` and ``runs``); placeholders of hidden nodes stay as they are.

    Each is its own ``GET …/datasets/{name}`` or ``GET …/jobs/{name}``'s answer, read for the whole graph
    at once: the datasets by :meth:`Reads.dataset_details`, the jobs by :meth:`Reads.jobs_by_name` and
    their latest runs and those runs' parents by :func:`jobs` (a few statements per 500 nodes)."""
    datasets: list[dict[str, Any]] = []
    job_nodes: list[dict[str, Any]] = []
    for node in shaped["graph"]:
        data = node["data"]
        if data.get("redacted") or node["type"] not in ("DATASET", "JOB"):
            continue
        (datasets if node["type"] == "DATASET" else job_nodes).append(node)
    keys = [(node["data"]["namespace"], node["data"]["name"]) for node in datasets]
    details = {(x.dataset.namespace, x.dataset.name): x for x in trail.catalog.dataset_details(keys)}
    for node, key in zip(datasets, keys, strict=True):
        if key in details:
            node["data"] = {**dataset_of(details[key]), "versions": node["data"].get("versions", [])}
    named = {
        (j.namespace, j.name): j
        for j in trail.catalog.jobs_by_name([(n["data"]["namespace"], n["data"]["name"]) for n in job_nodes])
    }
    found = [
        (node, named[key]) for node in job_nodes if (key := (node["data"]["namespace"], node["data"]["name"])) in named
    ]
    for (node, _), shaped_job in zip(found, jobs(trail, [j for _, j in found]), strict=True):
        node["data"] = {**shaped_job, "runs": node["data"].get("runs", [])}
    return shaped
