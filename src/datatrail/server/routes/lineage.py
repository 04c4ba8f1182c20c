"""``/api/v1/lineage``: OpenLineage ingest (one event, a batch) and the lineage graph."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from datatrail.core.errors import DatatrailError, InvalidInput, NotFound
from datatrail.core.gcpause import paused_gc
from datatrail.core.limits import MAX_ID_LENGTH, MAX_RESPONSE_DEPTH, MAX_TIME_LENGTH, bounded, exceeds
from datatrail.core.model import Ref
from datatrail.core.results import IngestResult
from datatrail.server import marquez_models as mq
from datatrail.server.body import read_json
from datatrail.server.errors import PayloadTooLarge, error_code
from datatrail.server.marquez import (
    answer_json,
    fold_columns,
    split_job_id,
    split_node_id,
    to_marquez,
    version_columns,
    version_graph,
)
from datatrail.server.routes import Actor, call
from datatrail.server.state import API, state
from datatrail.service import Trail

router = APIRouter(prefix=API, tags=["lineage"])
MAX_DEPTH = 100
MAX_JOB_RUNS = 1000  # a job's lineage starts from what its latest runs read and wrote
BATCH_NOT_A_LIST = "a batch is a JSON array of events; send one event to /api/v1/lineage"

# POST /lineage and /lineage/batch are answered by server/fastpath.py, in the same steps;
# these routes give the OpenAPI schema (and answer if the fast path is not installed).


def ingest_one(trail: Trail, event: Any, actor: str | None) -> dict[str, Any]:
    """One event, the answer of ``POST /lineage``."""
    return ingest_answer(trail.ingest(event, actor=actor or "openlineage", detail=False))


def ingest_answer(result: IngestResult) -> dict[str, Any]:
    """The answer of ``POST /lineage`` for a stored event."""
    return {"stored": not result.duplicate, "duplicate": result.duplicate, "run_id": result.run_id}


@router.post("/lineage", status_code=201, summary="Ingest one OpenLineage event")
async def post_lineage(request: Request, principal: Actor) -> dict[str, Any]:
    """One RunEvent, DatasetEvent or JobEvent (spec 2-0-2 or 1.x); 201 once stored, also for a repeat."""
    event = await read_json(request, state(request).max_body)
    out: dict[str, Any] = await call(request, ingest_one, event, principal)
    return out


def ingest_batch(trail: Trail, events: list[Any], actor: str | None) -> dict[str, Any]:
    """A batch, the answer of ``POST /lineage/batch``."""
    failed: list[dict[str, Any]] = []
    stored = duplicates = 0
    # One transaction for the batch; bad events are reported and skipped, and a store
    # failure stops the batch (5xx: the client retries, and repeats are no-ops).
    for index, result in enumerate(trail.ingest_many(events, actor=actor or "openlineage")):
        if isinstance(result, DatatrailError):
            failed.append({"index": index, "error": error_code(result), "detail": result.message})
        elif result.duplicate:
            duplicates += 1
        else:
            stored += 1
    return {"received": len(events), "stored": stored, "duplicates": duplicates, "failed": failed}


def checked_batch(body: Any, most: int) -> list[Any]:
    """The events of a batch request's body: a JSON array of at most ``most`` events."""
    if not isinstance(body, list):
        raise InvalidInput(BATCH_NOT_A_LIST)
    if len(body) > most:
        msg = f"a batch holds at most {most} events, not {len(body)}; split it"
        raise PayloadTooLarge(msg)
    return body


@router.post(
    "/lineage/batch",
    status_code=201,
    summary="Ingest a JSON array of OpenLineage events",
    responses={200: {"description": "Some events failed; `failed` lists them by index with the reason"}},
)
async def post_lineage_batch(request: Request, principal: Actor) -> JSONResponse:
    """Stores the valid events; 201 when all were stored, 200 with ``failed`` (index, error, detail) otherwise."""
    server = state(request)
    events = checked_batch(await read_json(request, server.max_body), server.max_batch)
    report: dict[str, Any] = await call(request, ingest_batch, events, principal)
    return JSONResponse(report, status_code=200 if report["failed"] else 201)


def dataset_exists(trail: Trail) -> Callable[[str, str], bool]:
    """Whether a dataset exists: a point lookup of its latest version, and for a dataset
    without versions (rare) the namespace's list, fetched once."""
    known: dict[str, set[str]] = {}

    def exists(namespace: str, name: str) -> bool:
        try:
            trail.catalog.lookup(Ref(namespace, name))
        except (NotFound, InvalidInput):
            if namespace not in known:
                known[namespace] = {d.name for d in trail.datasets(namespace)}
            return name in known[namespace]
        return True

    return exists


def job_exists(trail: Trail) -> Callable[[str, str], bool]:
    """Whether a job exists: the namespace's list of jobs, fetched once."""
    known: dict[str, set[str]] = {}

    def exists(namespace: str, name: str) -> bool:
        if namespace not in known:
            known[namespace] = {j.name for j in trail.jobs(namespace)}
        return name in known[namespace]

    return exists


def _graph(
    trail: Trail, node_id: str, direction: Any | None, depth: int, as_of: str | None = None
) -> dict[str, Any] | bytes:
    """The answer. A version-level graph (a run's, a version's) holds only the fields the store's
    traversal gives, so it nests five deep at most; a folded one carries stored facets, and is cut
    at ``MAX_RESPONSE_DEPTH`` like every other answer (``routes.call``)."""
    if node_id.startswith("run:"):
        return version_graph(trail.run_lineage(node_id, direction=direction or "both", depth=depth))
    if node_id.startswith("job:"):
        namespace, name = split_job_id(node_id, job_exists(trail))
        if direction is None:  # Marquez's graph: everything connected, whichever the direction
            graph = trail.catalog.connected_lineage(namespace, name, kind="job", depth=depth, runs=MAX_JOB_RUNS)
        else:
            graph = trail.job_lineage(namespace, name, direction=direction, depth=depth, runs=MAX_JOB_RUNS)
        return _cut(mq.fill_graph(trail, to_marquez(graph, fold=True)))
    namespace, name, version = split_node_id(node_id, dataset_exists(trail))
    if version is None and direction is None:
        graph = trail.catalog.connected_lineage(namespace, name, depth=depth, as_of=as_of)
        return _cut(mq.fill_graph(trail, to_marquez(graph, fold=True)))
    if version is not None:  # version-level: joined from each node's JSON, kept by the store between answers
        found = trail.dataset_lineage_json(
            namespace, name, selector=version, direction=direction or "both", depth=depth, as_of=as_of
        )
        joined = answer_json(found)
        return joined if joined is not None else version_columns(found.columns())
    columns = trail.dataset_lineage_columns(
        namespace, name, selector=None, direction=direction or "both", depth=depth, as_of=as_of
    )
    return _cut(mq.fill_graph(trail, fold_columns(columns)))


# The fields of a folded graph's node data (marquez_models: dataset_of, _job, run; marquez.to_marquez) that
# hold only names, numbers and lists or dicts of them, a few levels deep whatever was stored: Marquez's ids,
# schema fields, tags, versions, runs, a run's job version, dataset versions and args (each a str).
_SHALLOW = frozenset(
    {
        "id",
        "fields",
        "tags",
        "versions",
        "runs",
        "inputs",
        "outputs",
        "labels",
        "latestRun",
        "latestRuns",
        "jobVersion",
        "inputDatasetVersions",
        "outputDatasetVersions",
        "args",
        "context",
    }
)
_DATA_LEVEL = 4  # {"graph": [{"data": {…}}]}: the answer 1, the list 2, a node 3, its data 4
_RUN_LEVEL = 6  # a job's latest run, deepest as latestRuns[0]


def _fits(part: dict[str, Any], level: int) -> bool:
    """Whether what a node's ``part`` (at ``level``) holds beyond :data:`_SHALLOW` (facets, a run's params,
    metrics, code, error: what producers sent) nests within ``MAX_RESPONSE_DEPTH`` where it sits."""
    room = MAX_RESPONSE_DEPTH - level
    for key in part.keys() - _SHALLOW:
        value = part[key]
        if isinstance(value, (dict, list, tuple)) and exceeds(value, room):
            return False
    return True


def _cut(answer: dict[str, Any]) -> dict[str, Any]:
    """``bounded(answer, MAX_RESPONSE_DEPTH)`` (as ``routes.call`` cuts every answer) of a folded graph,
    without walking all of it: only what producers sent is measured, where it sits, and a node holding
    anything too deep is cut as the whole answer's ``bounded`` cuts it (the same bytes)."""
    graph = answer["graph"]
    for i, node in enumerate(graph):
        data = node["data"]
        run = data.get("latestRun")
        if not (_fits(data, _DATA_LEVEL) and (not isinstance(run, dict) or _fits(run, _RUN_LEVEL))):
            graph[i] = bounded(node, MAX_RESPONSE_DEPTH, at=3)
    return answer


# orjson writes what json.dumps would (compact, UTF-8), ten times as fast on a 2 MB graph; times and
# dataclasses go through FastAPI's encoder as in every other answer.
_ORJSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def encode(answer: Any) -> bytes:
    """``answer`` as JSON bytes, as FastAPI's JSON answers hold it."""
    try:
        return orjson.dumps(answer, default=jsonable_encoder, option=_ORJSON)
    except orjson.JSONEncodeError:  # what orjson does not write (an integer beyond 64 bits): the standard way
        return bytes(JSONResponse(jsonable_encoder(answer)).body)


def _graph_json(trail: Trail, node_id: str, direction: Any | None, depth: int, as_of: str | None) -> bytes:
    with paused_gc():  # thousands of nodes, no cycles (core/gcpause.py)
        answer = _graph(trail, node_id, direction, depth, as_of)
        return answer if isinstance(answer, bytes) else encode(answer)


@router.get(
    "/lineage",
    summary="The lineage graph around a dataset or one of its versions",
    response_class=Response,
    responses={
        200: {
            "content": {"application/json": {}},
            "description": '{"graph": [{"id", "type", "data", "inEdges", "outEdges"}]}',
        }
    },
)
async def get_lineage(
    request: Request,
    _: Actor,
    node_id: Annotated[
        str,
        Query(
            alias="nodeId",
            max_length=MAX_ID_LENGTH,
            description="dataset:<namespace>:<name>[#<version>], job:<namespace>:<name> or run:<id>",
        ),
    ],
    direction: Annotated[
        str | None,
        Query(max_length=16, description="upstream, downstream or both; none: Marquez's graph (all connected)"),
    ] = None,
    depth: Annotated[int, Query(ge=0, le=MAX_DEPTH)] = 20,
    as_of: Annotated[
        str | None,
        Query(
            alias="asOf",
            max_length=MAX_TIME_LENGTH,
            description="ISO 8601 time: the graph as it was then (dataset nodeIds)",
        ),
    ] = None,
) -> Response:
    """Marquez's shape. Without ``#<version>`` the graph starts from every version of the dataset and
    is folded to datasets and jobs; with one, it is the version-level graph (versions and runs).
    A job starts from the versions its runs read and wrote (folded); a run from its own (not folded).
    Without ``direction``, a dataset's or job's graph is Marquez's: everything connected to it, whichever
    the direction; with one, what is upstream and/or downstream of it (version-level graphs: ``both``).
    With ``asOf``, runs started and versions created after that time are left out."""
    if direction is not None and direction not in ("upstream", "downstream", "both"):
        msg = f"invalid direction {direction[:16]!r}: use upstream, downstream or both (or none, for Marquez's graph)"
        raise InvalidInput(msg)
    if as_of is not None and not node_id.startswith("dataset:"):
        msg = "asOf applies to dataset nodeIds (dataset:<namespace>:<name>[#<version>])"
        raise InvalidInput(msg)
    # Encoded in the thread pool, beside the query: a graph of thousands of nodes is megabytes of JSON.
    body: bytes = await call(request, _graph_json, node_id, direction, depth, as_of)
    return Response(body, media_type="application/json")
