"""Apache Atlas v2 (and Microsoft Purview) entities: the body of ``POST /api/atlas/v2/entity/bulk``.

Every version is a ``DataSet`` entity and every run a ``Process`` entity whose
``inputs`` and ``outputs`` refer to the versions by their unique attribute
``qualifiedName`` (``namespace:name@number`` for a version,
``namespace:job@run-id`` for a run). Only attributes of Atlas's built-in
``Referenceable``/``Asset`` types are set; the digest, uri and the rest travel
as ``customAttributes`` (strings), which Atlas and Purview keep as they are.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from datatrail.core.model import Ref, Run, Version
from datatrail.interop.common import version_id, walk_upstream

if TYPE_CHECKING:
    from datatrail.service import Trail

MAX_RUNS = 100_000  # per job: the most one listing returns (the server's limit)


def _custom(pairs: dict[str, Any]) -> dict[str, str]:
    return {
        k: v if isinstance(v, str) else json.dumps(v, sort_keys=True)
        for k, v in pairs.items()
        if v is not None and v != {}
    }


def _ref(type_name: str, qualified_name: str) -> dict[str, Any]:
    return {"typeName": type_name, "uniqueAttributes": {"qualifiedName": qualified_name}}


def run_name(run: Run) -> str:
    return f"{run.namespace}:{run.job}@{run.id}"


def _dataset(v: Version, guid: str) -> dict[str, Any]:
    return {
        "typeName": "DataSet",
        "guid": guid,
        "attributes": {
            "qualifiedName": version_id(v),
            "name": v.ref,
            "description": v.message or f"{v.kind} version {v.number} of {v.name}",
            "owner": v.created_by,
        },
        "customAttributes": _custom(
            {
                "datatrail.kind": v.kind,
                "datatrail.namespace": v.namespace,
                "datatrail.dataset": v.name,
                "datatrail.version": str(v.number),
                "datatrail.digest": str(v.digest) if v.digest else None,
                "datatrail.size": str(v.size) if v.size is not None else None,
                "datatrail.uri": v.uri,
                "datatrail.format": v.format,
                "datatrail.createdAt": v.created_at.isoformat(),
            }
        ),
    }


def _process(run: Run, guid: str) -> dict[str, Any]:
    return {
        "typeName": "Process",
        "guid": guid,
        "attributes": {
            "qualifiedName": run_name(run),
            "name": f"{run.job} {run.id[:8]}",
            "description": f"run {run.id} of job {run.job} ({run.state.value})",
            "owner": run.user,
            "inputs": [_ref("DataSet", version_id(v)) for v in run.inputs],
            "outputs": [_ref("DataSet", version_id(v)) for v in run.outputs],
        },
        "customAttributes": _custom(
            {
                "datatrail.runId": run.id,
                "datatrail.job": run.job,
                "datatrail.state": run.state.value,
                "datatrail.command": run.command,
                "datatrail.params": run.params,
                "datatrail.commit": run.code.get("commit"),
                "datatrail.startedAt": run.started_at.isoformat() if run.started_at else None,
                "datatrail.endedAt": run.ended_at.isoformat() if run.ended_at else None,
            }
        ),
    }


def _body(versions: list[Version], runs: list[Run]) -> dict[str, Any]:
    seen = {version_id(v): v for v in versions}
    for run in runs:  # a run's versions are part of the body, so every reference resolves
        for v in (*run.inputs, *run.outputs):
            seen.setdefault(version_id(v), v)
    entities = [_dataset(v, f"-{i}") for i, v in enumerate(seen.values(), start=1)]
    entities += [_process(r, f"-{len(entities) + i}") for i, r in enumerate(runs, start=1)]
    return {"entities": entities}


def export_atlas(trail: Trail, ref: str | Ref | Version | None = None) -> dict[str, Any]:
    """Atlas entities for ``ref`` and its upstream lineage, or (``ref`` None) for the whole store.

    >>> body = export_atlas(trail, "clean/penguins")          # doctest: +SKIP
    >>> [e["typeName"] for e in body["entities"]]              # doctest: +SKIP
    ['DataSet', 'DataSet', 'Process']
    """
    if ref is not None:
        up = walk_upstream(trail, ref)
        return _body(list(up.versions.values()), list(up.runs.values()))
    versions = [v for d in trail.datasets() for v in trail.versions(str(Ref(d.namespace, d.name)))]
    found = {r.id: r for j in trail.jobs() for r in trail.runs(j.name, min(max(j.run_count, 1), MAX_RUNS))}
    runs = sorted(found.values(), key=lambda r: (r.started_at is None, r.started_at, r.id))
    return _body(versions, runs)
