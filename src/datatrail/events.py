"""OpenLineage events: every write to datatrail is one.

``build_*`` functions make the events datatrail itself emits (spec 2-0-2 with
datatrail's own facets); :func:`parse_event` turns any event into
:class:`Changes`, the store-independent description of what it changes.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from datatrail._version import __version__
from datatrail.errors import InvalidInput
from datatrail.model import Digest, FileEntry, RunState, validate_name, validate_namespace

PRODUCER = f"https://github.com/datatrail/datatrail/tree/v{__version__}"
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
FACET_SCHEMA = "https://github.com/datatrail/datatrail/blob/main/spec/facets/1-0-0/{name}.json"
STD_FACET = "https://openlineage.io/spec/facets/1-0-1/{name}.json"

Event = dict[str, Any]


def now() -> datetime:
    return datetime.now(UTC)


def _facet(name: str, schema_name: str, standard: bool = False, **fields: Any) -> dict[str, Any]:
    url = (STD_FACET if standard else FACET_SCHEMA).format(name=schema_name)
    return {"_producer": PRODUCER, "_schemaURL": f"{url}#/$defs/{schema_name}", **fields}


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


@dataclass(frozen=True)
class DatasetChange:
    namespace: str
    name: str
    role: str  # "input", "output" or "static"
    version: VersionInfo | None = None
    aliases: tuple[str, ...] = ()
    kind: str = "dataset"


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


@dataclass(frozen=True)
class Changes:
    """What one event changes, independent of any store."""

    event_type: str
    event_time: datetime
    actor: str
    run: RunChange | None
    datasets: tuple[DatasetChange, ...]


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(event: Event) -> str:
    return hashlib.sha256(canonical_json(event).encode()).hexdigest()


# ---------------------------------------------------------------- building


def dataset_facets(info: VersionInfo) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "version": _facet("version", "DatasetVersionDatasetFacet", True, datasetVersion=info.key),
        "datatrail_version": _facet(
            "datatrail_version",
            "DatatrailVersionFacet",
            digest=str(info.digest) if info.digest else None,
            size=info.size,
            uri=info.uri,
            format=info.format,
            kind=info.kind,
            createdBy=info.created_by,
            host=info.host,
            message=info.message,
            fileCount=len(info.files) if info.files is not None else None,
            properties=info.properties,
        ),
    }
    if info.files is not None:
        facets["datatrail_manifest"] = _facet(
            "datatrail_manifest",
            "DatatrailManifestFacet",
            files=[[f.path, f.size, f.digest.hex] for f in info.files],
        )
    return facets


def build_dataset_event(namespace: str, name: str, info: VersionInfo, aliases: tuple[str, ...] = ()) -> Event:
    """A DatasetEvent registering one version (``datatrail add``)."""
    facets = dataset_facets(info)
    if aliases:
        facets["datatrail_alias"] = _facet(
            "datatrail_alias", "DatatrailAliasFacet", datasetVersion=info.key, aliases=list(aliases)
        )
    return {
        "eventTime": now().isoformat(),
        "producer": PRODUCER,
        "schemaURL": f"{SPEC}#/$defs/DatasetEvent",
        "dataset": {"namespace": namespace, "name": name, "facets": facets},
    }


def build_alias_event(namespace: str, name: str, version_key: str, alias: str) -> Event:
    """A DatasetEvent pointing an alias at a version (``datatrail tag``)."""
    facet = _facet("datatrail_alias", "DatatrailAliasFacet", datasetVersion=version_key, aliases=[alias])
    return {
        "eventTime": now().isoformat(),
        "producer": PRODUCER,
        "schemaURL": f"{SPEC}#/$defs/DatasetEvent",
        "dataset": {"namespace": namespace, "name": name, "facets": {"datatrail_alias": facet}},
    }


def build_run_event(
    event_type: RunState,
    run_id: str,
    namespace: str,
    job: str,
    *,
    run_facts: dict[str, Any] | None = None,
    inputs: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
    outputs: list[tuple[str, str, VersionInfo]] = (),  # type: ignore[assignment]
    metrics: dict[str, list[tuple[int, Any]]] | None = None,
    error: str | None = None,
    parent: tuple[str, str, str] | None = None,
    job_type: str | None = None,
) -> Event:
    """A RunEvent; ``inputs`` are (namespace, name, version key)."""
    run_facets: dict[str, Any] = {}
    if run_facts:
        run_facets["datatrail_run"] = _facet("datatrail_run", "DatatrailRunFacet", **run_facts)
    if metrics:
        run_facets["datatrail_metrics"] = _facet(
            "datatrail_metrics",
            "DatatrailMetricsFacet",
            metrics={k: [[s, v] for s, v in series] for k, series in metrics.items()},
        )
    if error is not None:
        run_facets["errorMessage"] = _facet(
            "errorMessage", "ErrorMessageRunFacet", True, message=error, programmingLanguage="python"
        )
    if parent is not None:
        p_run, p_ns, p_job = parent
        run_facets["parent"] = _facet(
            "parent", "ParentRunFacet", True, run={"runId": p_run}, job={"namespace": p_ns, "name": p_job}
        )
    job_facets: dict[str, Any] = {}
    if job_type:
        job_facets["jobType"] = _facet(
            "jobType", "JobTypeJobFacet", True, processingType="BATCH", integration="DATATRAIL", jobType=job_type
        )
    return {
        "eventType": event_type.value,
        "eventTime": now().isoformat(),
        "producer": PRODUCER,
        "schemaURL": f"{SPEC}#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": run_facets},
        "job": {"namespace": namespace, "name": job, "facets": job_facets},
        "inputs": [
            {
                "namespace": ns,
                "name": name,
                "facets": {"version": _facet("version", "DatasetVersionDatasetFacet", True, datasetVersion=key)},
            }
            for ns, name, key in inputs
        ],
        "outputs": [{"namespace": ns, "name": name, "facets": dataset_facets(info)} for ns, name, info in outputs],
    }


# ---------------------------------------------------------------- parsing


def _time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        msg = f"invalid event: {where} must be an ISO 8601 date-time string"
        raise InvalidInput(msg)
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        msg = f"invalid event: {where} {value!r} is not an ISO 8601 date-time"
        raise InvalidInput(msg) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        msg = f"invalid event: {where} must be an object"
        raise InvalidInput(msg)
    return value


def _parse_version(facets: dict[str, Any], where: str) -> VersionInfo | None:
    version = facets.get("version")
    if version is None:
        return None
    key = _obj(version, f"{where}.facets.version").get("datasetVersion")
    if not isinstance(key, str) or not key:
        msg = f"invalid event: {where}.facets.version.datasetVersion must be a non-empty string"
        raise InvalidInput(msg)
    dt = facets.get("datatrail_version")
    if not isinstance(dt, dict):
        digest = Digest.parse(key) if key.startswith("sha256:") and len(key) == 71 else None
        return VersionInfo(key=key, digest=digest)
    digest_text = dt.get("digest")
    files = None
    manifest = facets.get("datatrail_manifest")
    if isinstance(manifest, dict) and isinstance(manifest.get("files"), list):
        try:
            files = tuple(FileEntry(p, int(s), Digest.sha256(h)) for p, s, h in manifest["files"])
        except (TypeError, ValueError):
            msg = f"invalid event: {where}.facets.datatrail_manifest.files must be [path, size, sha256] triples"
            raise InvalidInput(msg) from None
    return VersionInfo(
        key=key,
        digest=Digest.parse(digest_text) if isinstance(digest_text, str) else None,
        size=dt.get("size"),
        uri=dt.get("uri"),
        format=dt.get("format"),
        files=files,
        created_by=dt.get("createdBy"),
        host=dt.get("host"),
        message=dt.get("message"),
        kind=dt.get("kind") or "dataset",
        properties=dt.get("properties") or {},
    )


def _parse_dataset(raw: Any, role: str, where: str) -> DatasetChange:
    ds = _obj(raw, where)
    ns, name = ds.get("namespace"), ds.get("name")
    if not isinstance(ns, str) or not isinstance(name, str):
        msg = f"invalid event: {where} needs string 'namespace' and 'name'"
        raise InvalidInput(msg)
    facets = _obj(ds.get("facets") or {}, f"{where}.facets")
    info = _parse_version(facets, where)
    aliases: tuple[str, ...] = ()
    alias_facet = facets.get("datatrail_alias")
    if isinstance(alias_facet, dict):
        aliases = tuple(validate_name(a, "alias") for a in alias_facet.get("aliases", []))
        if info is None and isinstance(alias_facet.get("datasetVersion"), str):
            info = VersionInfo(key=alias_facet["datasetVersion"])
    return DatasetChange(
        namespace=validate_namespace(ns),
        name=validate_name(name, "OpenLineage dataset name"),
        role=role,
        version=info,
        aliases=aliases,
        kind=info.kind if info else "dataset",
    )


def parse_event(event: Any, actor: str) -> Changes:
    """Validate an OpenLineage event and describe what it changes."""
    ev = _obj(event, "the event")
    event_time = _time(ev.get("eventTime"), "eventTime")
    if "run" in ev:
        return _parse_run_event(ev, event_time, actor)
    if "dataset" in ev:
        ds = _parse_dataset(ev["dataset"], "static", "dataset")
        return Changes("DATASET", event_time, actor, None, (ds,))
    msg = "invalid event: it has neither 'run' (RunEvent) nor 'dataset' (DatasetEvent)"
    raise InvalidInput(msg)


def _parse_run_event(ev: Event, event_time: datetime, actor: str) -> Changes:
    run = _obj(ev["run"], "run")
    job = _obj(ev.get("job"), "job")
    run_id = run.get("runId")
    try:
        run_id = str(uuid.UUID(str(run_id)))
    except ValueError:
        msg = f"invalid event: run.runId {run_id!r} is not a UUID"
        raise InvalidInput(msg) from None
    state_text = ev.get("eventType", "RUNNING") or "RUNNING"
    try:
        state = RunState(state_text)
    except ValueError:
        state = RunState.RUNNING if state_text == "OTHER" else None  # type: ignore[assignment]
        if state is None:
            msg = f"invalid event: eventType {state_text!r} is not START, RUNNING, COMPLETE, FAIL, ABORT or OTHER"
            raise InvalidInput(msg) from None
    ns, name = job.get("namespace"), job.get("name")
    if not isinstance(ns, str) or not isinstance(name, str) or not name:
        msg = "invalid event: job needs string 'namespace' and 'name'"
        raise InvalidInput(msg)
    rf = _obj(run.get("facets") or {}, "run.facets")
    jf = _obj(job.get("facets") or {}, "job.facets")
    facts: dict[str, Any] = rf["datatrail_run"] if isinstance(rf.get("datatrail_run"), dict) else {}
    metrics = None
    if isinstance(rf.get("datatrail_metrics"), dict):
        metrics = {
            str(k): [(int(s), v) for s, v in series] for k, series in rf["datatrail_metrics"].get("metrics", {}).items()
        }
    error = rf["errorMessage"].get("message") if isinstance(rf.get("errorMessage"), dict) else None
    parent = None
    if isinstance(rf.get("parent"), dict) and isinstance(rf["parent"].get("run"), dict):
        parent = rf["parent"]["run"].get("runId")
    job_type = jf["jobType"].get("jobType") if isinstance(jf.get("jobType"), dict) else None
    change = RunChange(
        run_id=run_id,
        namespace=validate_namespace(ns),
        job=validate_name(name, "OpenLineage job name"),
        state=state,
        event_time=event_time,
        job_type=job_type,
        user=facts.get("user"),
        host=facts.get("host"),
        command=facts.get("command"),
        cwd=facts.get("cwd"),
        params=facts.get("params"),
        metrics=metrics,
        code=facts.get("code"),
        error=error,
        parent_run_id=parent,
        workflow=facts.get("workflow"),
    )
    datasets = [_parse_dataset(d, "input", f"inputs[{i}]") for i, d in enumerate(ev.get("inputs") or [])] + [
        _parse_dataset(d, "output", f"outputs[{i}]") for i, d in enumerate(ev.get("outputs") or [])
    ]
    return Changes(state.value, event_time, actor, change, tuple(datasets))
