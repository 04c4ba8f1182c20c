"""``GET /api/v1/column-lineage``: column-level lineage in Marquez's graph shape."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from datatrail.core.errors import InvalidInput
from datatrail.core.limits import MAX_ID_LENGTH
from datatrail.core.results import ColumnLineageResult
from datatrail.server.marquez import NODE_ID_RULE, split_job_id, split_node_id
from datatrail.server.marquez_models import version_uuid
from datatrail.server.routes import Actor, call
from datatrail.server.routes.lineage import MAX_DEPTH, MAX_JOB_RUNS, dataset_exists, job_exists
from datatrail.server.state import API
from datatrail.service import Trail

router = APIRouter(prefix=API, tags=["lineage"])

FIELD_RULE = (
    "a column nodeId is datasetField:<namespace>:<name>[#<version>]:<field> (the field follows the last ':'),"
    f" a dataset nodeId for all of its columns, or a job nodeId for its outputs' columns; {NODE_ID_RULE}"
)


def _column_graph(trail: Trail, node_id: str, direction: Any, depth: int) -> dict[str, Any]:
    field: str | None = None
    if node_id.startswith("datasetField:"):
        rest, sep, field = node_id.removeprefix("datasetField:").rpartition(":")
        if not sep or not rest or not field:
            msg = f"invalid nodeId {node_id!r}: {FIELD_RULE}"
            raise InvalidInput(msg)
        node_id = f"dataset:{rest}"
    elif node_id.startswith("job:"):
        return _job_columns(trail, node_id, direction, depth)
    elif not node_id.startswith("dataset:"):
        msg = f"invalid nodeId {node_id!r}: {FIELD_RULE}"
        raise InvalidInput(msg)
    namespace, name, selector = split_node_id(node_id, dataset_exists(trail))
    if selector is None:
        start = [(v, field) for v in trail.catalog.dataset_versions(namespace, name)]
    else:
        start = [(trail.get(f"{namespace}:{name}@{selector}"), field)]
    result = trail.catalog.columns_of(start, direction=direction, depth=depth)
    return to_marquez_columns(result, fold=selector is None)


def _job_columns(trail: Trail, node_id: str, direction: Any, depth: int) -> dict[str, Any]:
    """From every column of the versions the job's latest run wrote (Marquez: the job's output fields)."""
    namespace, name = split_job_id(node_id, job_exists(trail))
    runs = [r for r in trail.runs(name, limit=MAX_JOB_RUNS) if r.namespace == namespace]
    start = [(v, None) for v in runs[0].outputs] if runs else []
    result = trail.catalog.columns_of(start, direction=direction, depth=depth)
    return to_marquez_columns(result, fold=True)


def _first(transformations: Any, key: str) -> str | None:
    """Marquez's one transformation per input field: the first of the producer's, if any."""
    for item in transformations if isinstance(transformations, list) else ():
        if isinstance(item, dict) and isinstance(item.get(key), str):
            return str(item[key])
    return None


def to_marquez_columns(result: ColumnLineageResult, *, fold: bool) -> dict[str, Any]:
    """Column nodes as Marquez's ``DATASET_FIELD`` graph, folded to dataset fields when ``fold``."""
    nodes: dict[str, dict[str, Any]] = {}
    keys: dict[str, str] = {}
    for nid, d in result.nodes.items():
        if d.get("redacted"):  # a column the caller may not see: a placeholder (security/guard.py)
            keys[nid] = nid
            nodes[nid] = {
                "id": nid,
                "type": "DATASET_FIELD",
                "data": {"redacted": True, "versions": [], "inputFields": []},
                "inEdges": [],
                "outEdges": [],
            }
            continue
        where = f"{d['namespace']}:{d['name']}" if fold else f"{d['namespace']}:{d['name']}#{d['version']}"
        key = f"datasetField:{where}:{d['column']}"
        keys[nid] = key
        entry = nodes.setdefault(
            key,
            {
                "id": key,
                "type": "DATASET_FIELD",
                "data": {
                    "namespace": d["namespace"],
                    "dataset": d["name"],
                    "datasetVersion": None if fold else version_uuid(d["namespace"], d["name"], d["version"]),
                    "field": d["column"],
                    "fieldType": None,
                    "transformationDescription": None,
                    "transformationType": None,
                    "versions": [],
                    "inputFields": [],
                },
                "inEdges": [],
                "outEdges": [],
            },
        )
        if d["version"] not in entry["data"]["versions"]:
            entry["data"]["versions"].append(d["version"])
    seen: set[tuple[str, str]] = set()
    for source, target, transformations in result.edges:
        origin, destination = keys[source], keys[target]
        if (origin, destination) in seen or origin == destination:
            continue
        seen.add((origin, destination))
        edge = {"origin": origin, "destination": destination}
        nodes[origin]["outEdges"].append(edge)
        nodes[destination]["inEdges"].append(edge)
        src = result.nodes[source]
        if src.get("redacted"):
            continue
        nodes[destination]["data"]["inputFields"].append(
            {
                "namespace": src["namespace"],
                "dataset": src["name"],
                "datasetVersion": version_uuid(src["namespace"], src["name"], src["version"]),
                "field": src["column"],
                "transformationDescription": _first(transformations, "description"),
                "transformationType": _first(transformations, "subtype") or _first(transformations, "type"),
                "version": src["version"],
                "transformations": transformations,
            }
        )
    for entry in nodes.values():
        entry["data"]["versions"].sort()
    return {"graph": [nodes[k] for k in sorted(nodes)]}


@router.get("/column-lineage", summary="Column-level lineage around a dataset field or all of a dataset's fields")
async def get_column_lineage(
    request: Request,
    _: Actor,
    node_id: Annotated[
        str,
        Query(
            alias="nodeId",
            max_length=MAX_ID_LENGTH,
            description=(
                "datasetField:<namespace>:<name>[#<version>]:<field>, dataset:<namespace>:<name>[#<version>]"
                " or job:<namespace>:<name>"
            ),
        ),
    ],
    direction: Annotated[
        str | None, Query(max_length=16, description="datatrail's: upstream, downstream or both")
    ] = None,
    depth: Annotated[int, Query(ge=0, le=MAX_DEPTH)] = 20,
    with_downstream: Annotated[
        bool | None, Query(alias="withDownstream", description="Marquez's: false is upstream, true both ways")
    ] = None,
) -> dict[str, Any]:
    """Marquez's shape with ``DATASET_FIELD`` nodes; each node's ``inputFields`` name the columns it is
    computed from, with the producer's transformations. Without ``#<version>`` versions are folded.
    Upstream only unless ``withDownstream=true`` (Marquez's) or ``direction`` (datatrail's) says otherwise."""
    if direction is not None and with_downstream is not None:
        msg = "give withDownstream (Marquez's) or direction (datatrail's), not both"
        raise InvalidInput(msg)
    if direction is not None and direction not in ("upstream", "downstream", "both"):
        msg = f"invalid direction {direction[:16]!r}: use upstream, downstream or both"
        raise InvalidInput(msg)
    way = direction or ("both" if with_downstream else "upstream")
    out: dict[str, Any] = await call(request, _column_graph, node_id, way, depth)
    return out
