"""OpenLineage events: every write to datatrail is one.

``build_*`` functions make the events datatrail itself emits (spec 2-0-2 with
datatrail's own facets); :func:`parse_event` turns any event into
:class:`Changes`, the store-independent description of what it changes.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from datatrail._version import __version__
from datatrail.core.changes import Changes, DatasetChange, Event, RunChange, VersionInfo
from datatrail.core.errors import InvalidInput
from datatrail.core.limits import MAX_EVENT_DEPTH, too_deep
from datatrail.core.model import Digest, EventType, FileEntry, RunState, validate_name, validate_namespace
from datatrail.core.times import parse_time
from datatrail.facets import check_facets, parse_checks, parse_profile, profile_facets
from datatrail.hashing import manifest_digest

PRODUCER = f"https://github.com/datatrail/datatrail/tree/v{__version__}"
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
FACET_SCHEMA = "https://github.com/datatrail/datatrail/blob/main/spec/facets/1-0-0/{name}.json"
STD_FACET = "https://openlineage.io/spec/facets/1-0-1/{name}.json"

_HEX64 = re.compile(r"[0-9a-f]{64}")


def now() -> datetime:
    return datetime.now(UTC)


def _facet(name: str, schema_name: str, standard: bool = False, **fields: Any) -> dict[str, Any]:
    url = (STD_FACET if standard else FACET_SCHEMA).format(name=schema_name)
    return {"_producer": PRODUCER, "_schemaURL": f"{url}#/$defs/{schema_name}", **fields}


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
    if info.profile is not None:
        file_count = len(info.files) if info.files is not None else None
        facets.update(profile_facets(info.profile, PRODUCER, info.size, file_count))
    return facets


def build_check_event(namespace: str, name: str, version_key: str, results: list[dict[str, Any]]) -> Event:
    """A DatasetEvent recording check results on one version (``datatrail check``)."""
    facets = {
        "version": _facet("version", "DatasetVersionDatasetFacet", True, datasetVersion=version_key),
        **check_facets(results, PRODUCER),
    }
    return {
        "eventTime": now().isoformat(),
        "producer": PRODUCER,
        "schemaURL": f"{SPEC}#/$defs/DatasetEvent",
        "dataset": {"namespace": namespace, "name": name, "facets": facets},
    }


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
    event_type: EventType | RunState,
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
        # In UTC: SQLite keeps no offset, and times from producers in different zones must compare.
        return parse_time(value)
    except InvalidInput:
        msg = f"invalid event: {where} {value[:100]!r} is not an ISO 8601 date-time"
        raise InvalidInput(msg) from None


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        msg = f"invalid event: {where} must be an object"
        raise InvalidInput(msg)
    return value


def _facets(value: Any, where: str) -> dict[str, Any]:
    """An optional facets object: absent or null is empty, anything but an object is refused."""
    return {} if value is None else _obj(value, where)


MAX_EVENT_ITEMS = 10_000  # inputs, outputs or aliases in one event: more is a runaway producer


def _array(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        msg = f"invalid event: {where} must be an array"
        raise InvalidInput(msg)
    if len(value) > MAX_EVENT_ITEMS:
        msg = f"invalid event: {where} holds {len(value)} items, at most {MAX_EVENT_ITEMS} allowed; split the event"
        raise InvalidInput(msg)
    return value


def _parse_manifest(manifest: Any, digest: Digest | None, where: str) -> tuple[FileEntry, ...]:
    """The files of a ``datatrail_manifest`` facet, checked against the directory digest."""
    where = f"{where}.facets.datatrail_manifest.files"
    files = _obj(manifest, where.removesuffix(".files")).get("files")
    if not isinstance(files, list):
        msg = f"invalid event: {where} must be an array of [path, size, sha256] triples"
        raise InvalidInput(msg)
    entries: list[FileEntry] = []
    for i, item in enumerate(files):
        ok = isinstance(item, list) and len(item) == 3 and isinstance(item[0], str) and bool(item[0])
        ok = ok and _is_int(item[1]) and item[1] >= 0 and isinstance(item[2], str) and bool(_HEX64.fullmatch(item[2]))
        if not ok:
            msg = f"invalid event: {where}[{i}] must be [path, size >= 0, 64 lowercase hex digits], not {item!r}"
            raise InvalidInput(msg)
        entries.append(FileEntry(item[0], item[1], Digest.sha256(item[2])))
    if len({e.path for e in entries}) != len(entries):
        msg = f"invalid event: {where} lists a path more than once"
        raise InvalidInput(msg)
    if digest is not None and manifest_digest(entries) != digest:
        msg = f"invalid event: {where} does not match the digest {digest}; the manifest is damaged"
        raise InvalidInput(msg)
    return tuple(entries)


def _parse_metrics(facet: dict[str, Any]) -> dict[str, list[tuple[int, Any]]]:
    where = "run.facets.datatrail_metrics.metrics"
    out: dict[str, list[tuple[int, Any]]] = {}
    for key, series in _obj(facet.get("metrics", {}), where).items():
        pairs: list[Any] = series if isinstance(series, list) else [None]
        for p in pairs:
            if not (isinstance(p, list) and len(p) == 2 and _is_int(p[0]) and _is_number(p[1])):
                msg = f"invalid event: {where}.{key} must be an array of [step, number] pairs"
                raise InvalidInput(msg)
        out[str(key)] = [(p[0], p[1]) for p in pairs]
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite JSON number, or one of the strings recording a non-finite one."""
    if isinstance(value, str):
        return value in ("NaN", "Infinity", "-Infinity")
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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
        return VersionInfo(key=key, digest=digest, profile=parse_profile(facets, where))
    digest_text = dt.get("digest")
    digest = Digest.parse(digest_text) if isinstance(digest_text, str) else None
    manifest = facets.get("datatrail_manifest")
    files = _parse_manifest(manifest, digest, where) if manifest is not None else None
    at = f"{where}.facets.datatrail_version"
    size = dt.get("size")
    if size is not None and not (_is_int(size) and size >= 0):
        msg = f"invalid event: {at}.size must be a whole number of bytes, not {size!r}"
        raise InvalidInput(msg)
    return VersionInfo(
        key=key,
        digest=digest,
        size=size,
        uri=_text(dt, "uri", at),
        format=_text(dt, "format", at, 64),
        files=files,
        created_by=_text(dt, "createdBy", at),
        host=_text(dt, "host", at),
        message=_text(dt, "message", at),
        kind=_text(dt, "kind", at, 32) or "dataset",
        properties=_facets(dt.get("properties"), f"{at}.properties"),
        profile=parse_profile(facets, where),
    )


def _text(obj: dict[str, Any], key: str, where: str, max_length: int | None = None) -> str | None:
    """An optional string field; the limits match the columns, so every store accepts the same events."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or (max_length is not None and len(value) > max_length):
        limit = f" of at most {max_length} characters" if max_length else ""
        msg = f"invalid event: {where}.{key} must be a string{limit}"
        raise InvalidInput(msg)
    return value


def _parse_dataset(raw: Any, role: str, where: str) -> DatasetChange:
    ds = _obj(raw, where)
    ns, name = ds.get("namespace"), ds.get("name")
    if not isinstance(ns, str) or not isinstance(name, str):
        msg = f"invalid event: {where} needs string 'namespace' and 'name'"
        raise InvalidInput(msg)
    facets = _facets(ds.get("facets"), f"{where}.facets")
    info = _parse_version(facets, where)
    aliases: tuple[str, ...] = ()
    alias_facet = facets.get("datatrail_alias")
    if isinstance(alias_facet, dict):
        names = _array(alias_facet.get("aliases"), f"{where}.facets.datatrail_alias.aliases")
        aliases = tuple(validate_name(a, "alias") for a in names)
        if info is None and isinstance(alias_facet.get("datasetVersion"), str):
            info = VersionInfo(key=alias_facet["datasetVersion"])
    namespace, name = validate_namespace(ns), validate_name(name, "OpenLineage dataset name")
    names = symlink_names(namespace, name, facets.get("symlinks"))
    return DatasetChange(
        namespace=namespace,
        name=name,
        canonical=None if names[0][1:] == (namespace, name) else names[0][1:],
        names=tuple(n[1:] for n in names) if len(names) > 1 else (),
        role=role,
        version=info,
        aliases=aliases,
        kind=info.kind if info else "dataset",
        checks=parse_checks(facets, where),
        facets=facets,
        io_facets=_io_facets(ds, role, where),
    )


def symlink_names(namespace: str, name: str, symlinks: Any) -> list[tuple[int, str, str]]:
    """Every name of a dataset, its own and those its ``symlinks`` facet gives, as (rank, namespace, name).

    The first is the name it is stored under: a ``TABLE`` identifier wins (a Spark path is its Hive
    table, as in Marquez); a ``LOCATION`` identifier never does while there is another name (it says
    where the data lies: PySpark autolog names a table and gives its folder as its location); among
    the rest (a file and its ``file://host`` form) the smallest (namespace, name), so that producers
    naming either side agree on one, whichever event comes first.

    >>> symlink_names("hdfs://nn", "/warehouse/db.db/t", {"identifiers": [
    ...     {"namespace": "hive://ms", "name": "db.t", "type": "TABLE"}]})
    [(0, 'hive://ms', 'db.t'), (1, 'hdfs://nn', '/warehouse/db.db/t')]
    >>> symlink_names("file:/wh", "spark_catalog.default.t", {"identifiers": [
    ...     {"namespace": "file", "name": "/wh/t", "type": "LOCATION"}]})
    [(1, 'file:/wh', 'spark_catalog.default.t'), (2, 'file', '/wh/t')]
    """
    items = symlinks.get("identifiers") if isinstance(symlinks, dict) else None
    names: list[tuple[int, str, str]] = [(1, namespace, name)]
    if not isinstance(items, list) or not items:  # most datasets: their own name only
        return names
    for item in items:
        if not isinstance(item, dict):
            continue
        ns, nm, kind = item.get("namespace"), item.get("name"), item.get("type")
        if isinstance(ns, str) and isinstance(nm, str) and ns and nm:
            try:
                ns, nm = validate_namespace(ns), validate_name(nm, "symlinks.identifiers name")
            except InvalidInput:
                continue  # a name datatrail cannot store is not a place to keep the dataset
            rank = {"TABLE": 0, "LOCATION": 2}.get(kind.upper(), 1) if isinstance(kind, str) else 1
            names.append((rank, ns, nm))
    unique = {(ns, nm): rank for rank, ns, nm in sorted(names, reverse=True)}  # the best rank of each name
    return sorted((rank, ns, nm) for (ns, nm), rank in unique.items())


def _io_facets(ds: dict[str, Any], role: str, where: str) -> dict[str, Any]:
    key = {"input": "inputFacets", "output": "outputFacets"}.get(role)
    return _facets(ds.get(key), f"{where}.{key}") if key else {}


def _check_depth(event: dict[str, Any]) -> None:
    """InvalidInput for an event nested deeper than MAX_EVENT_DEPTH: readers of it would fail."""
    path = too_deep(event, MAX_EVENT_DEPTH)
    if path is None:
        return
    keys = [str(p)[:40] for p in path[:4]]
    shown = ".".join(k if k.isprintable() else repr(k) for k in keys) + (".…" if len(path) > 4 else "")
    msg = f"invalid event: {shown} nests deeper than {MAX_EVENT_DEPTH} levels of objects and arrays; flatten that facet"
    raise InvalidInput(msg)


MAX_PRODUCER_LENGTH = 2048


def _check_producer(producer: Any) -> None:
    """``producer`` is required (the spec and Marquez refuse an event without it); ``schemaURL`` is not."""
    if producer is None:
        msg = (
            "invalid event: 'producer' is missing; the OpenLineage spec requires it: the URI of the code that"
            " emitted the event, e.g. https://github.com/OpenLineage/OpenLineage/tree/1.24.0/client/python"
        )
        raise InvalidInput(msg)
    if not isinstance(producer, str) or not producer.strip() or len(producer) > MAX_PRODUCER_LENGTH:
        msg = f"invalid event: 'producer' must be a non-empty URI string of at most {MAX_PRODUCER_LENGTH} characters"
        raise InvalidInput(msg)


def parse_event(event: Any, actor: str) -> Changes:
    """Validate an OpenLineage event and describe what it changes.

    ``eventTime`` and ``producer`` are required; ``schemaURL`` may be left out (Marquez accepts that too).
    An event nested deeper than ``MAX_EVENT_DEPTH`` (64) objects and arrays is refused,
    before anything is written.
    """
    ev = _obj(event, "the event")
    _check_depth(ev)
    event_time = _time(ev.get("eventTime"), "eventTime")
    if not any(kind in ev for kind in ("run", "dataset", "job")):
        msg = "invalid event: it has neither 'run' (RunEvent), 'dataset' (DatasetEvent) nor 'job' (JobEvent)"
        raise InvalidInput(msg)
    _check_producer(ev.get("producer"))
    if "run" in ev:
        return _parse_run_event(ev, event_time, actor)
    if "dataset" in ev:
        ds = _parse_dataset(ev["dataset"], "static", "dataset")
        return Changes("DATASET", event_time, actor, None, (ds,))
    if "job" in ev:
        return _parse_job_event(ev, event_time, actor)
    msg = "invalid event: it has neither 'run' (RunEvent), 'dataset' (DatasetEvent) nor 'job' (JobEvent)"
    raise InvalidInput(msg)


def _parse_job_event(ev: Event, event_time: datetime, actor: str) -> Changes:
    """A JobEvent declares a job and its datasets without a run: the datasets (and any versions) are recorded."""
    job = _obj(ev["job"], "job")
    ns, name = job.get("namespace"), job.get("name")
    if not isinstance(ns, str) or not isinstance(name, str) or not name:
        msg = "invalid event: job needs string 'namespace' and 'name'"
        raise InvalidInput(msg)
    validate_namespace(ns)
    validate_name(name, "OpenLineage job name")
    _facets(job.get("facets"), "job.facets")
    datasets = [
        _parse_dataset(d, "static", f"{key}[{i}]")
        for key in ("inputs", "outputs")
        for i, d in enumerate(_array(ev.get(key), key))
    ]
    return Changes("JOB", event_time, actor, None, tuple(datasets))


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
        event_type = EventType(state_text)
    except ValueError:
        msg = f"invalid event: eventType {state_text!r} is not START, RUNNING, COMPLETE, FAIL, ABORT or OTHER"
        raise InvalidInput(msg) from None
    state = event_type.state
    ns, name = job.get("namespace"), job.get("name")
    if not isinstance(ns, str) or not isinstance(name, str) or not name:
        msg = "invalid event: job needs string 'namespace' and 'name'"
        raise InvalidInput(msg)
    rf = _facets(run.get("facets"), "run.facets")
    jf = _facets(job.get("facets"), "job.facets")
    facts: dict[str, Any] = rf["datatrail_run"] if isinstance(rf.get("datatrail_run"), dict) else {}
    metrics = None
    if isinstance(rf.get("datatrail_metrics"), dict):
        metrics = _parse_metrics(rf["datatrail_metrics"])
    error = rf["errorMessage"].get("message") if isinstance(rf.get("errorMessage"), dict) else None
    if facts.get("params") is not None and not isinstance(facts["params"], dict):
        msg = "invalid event: run.facets.datatrail_run.params must be an object"
        raise InvalidInput(msg)
    parent = None
    if isinstance(rf.get("parent"), dict) and isinstance(rf["parent"].get("run"), dict):
        parent_id = rf["parent"]["run"].get("runId")
        try:
            parent = str(uuid.UUID(str(parent_id)))
        except ValueError:
            msg = f"invalid event: run.facets.parent.run.runId {parent_id!r} is not a UUID"
            raise InvalidInput(msg) from None
    job_type = (
        _text(jf["jobType"], "jobType", "job.facets.jobType", 64) if isinstance(jf.get("jobType"), dict) else None
    )
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
        started_hint=started_hint(rf) if state.finished else None,
        run_facets=rf,
        job_facets=jf,
    )
    datasets = [_parse_dataset(d, "input", f"inputs[{i}]") for i, d in enumerate(_array(ev.get("inputs"), "inputs"))]
    outputs = [_parse_dataset(d, "output", f"outputs[{i}]") for i, d in enumerate(_array(ev.get("outputs"), "outputs"))]
    if event_type is not EventType.COMPLETE:
        outputs = [replace(d, planned=True) if not _hashed(d) else d for d in outputs]
    return Changes(event_type.value, event_time, actor, change, (*datasets, *outputs))


def _hashed(ds: DatasetChange) -> bool:
    """Whether an output carries content datatrail hashed (``run.output``): a version before the run completes.

    Any other output of a START, RUNNING, FAIL or ABORT event is only *planned*: Airflow and Spark name a
    task's outputs when it starts, and a run that fails wrote nothing datatrail can vouch for.
    """
    return ds.version is not None and (ds.version.digest is not None or "datatrail_version" in ds.facets)


# Where producers say when a run started, in the order they are trusted: the scheduler's own record of the
# task instance or DAG run (Airflow's facets), then the scheduled time.
_START_FIELDS = (
    ("airflow", "taskInstance", "start_date"),
    ("airflowDagRun", "dagRun", "start_date"),
    ("nominalTime", "nominalStartTime"),
)


def started_hint(run_facets: dict[str, Any]) -> datetime | None:
    """When a run started, from its facets: for a run whose first (or only) event ended it.

    >>> started_hint({"nominalTime": {"nominalStartTime": "2026-01-02T03:04:05Z"}}).isoformat()
    '2026-01-02T03:04:05+00:00'
    """
    for path in _START_FIELDS:
        value: Any = run_facets
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str):
            try:
                return parse_time(value)
            except InvalidInput:
                continue
    return None
