"""The rest of Marquez's read API — runs by id, run facets, upstream run lineage, the raw lineage
events, sources and tags — and its write API, which datatrail answers with 405: what datatrail
knows comes from OpenLineage events (``POST /api/v1/lineage``), never from edits.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from datatrail.core.errors import DatatrailError, NotFound
from datatrail.core.limits import MAX_EVENT_DEPTH, MAX_OFFSET, bounded
from datatrail.core.model import Dataset, Run
from datatrail.core.times import iso, parse_time
from datatrail.server import marquez_models as mq
from datatrail.server.routes import MAX_LIMIT, Actor, OptionalTime, Page, Paging, call, unquote
from datatrail.server.routes.lineage import MAX_DEPTH
from datatrail.server.state import API
from datatrail.service import Trail

router = APIRouter(prefix=API, tags=["marquez"])


# ------------------------------------------------------------ runs


@router.get("/jobs/runs/{run_id}", summary="One run (Marquez's Run); a unique id prefix works")
async def get_run(request: Request, run_id: str, _: Actor) -> dict[str, Any]:
    rid = unquote(run_id)
    out: dict[str, Any] = await call(request, lambda t: mq.run(t, t.get_run(rid)))
    return out


def _run_facets(trail: Trail, run_id: str, kind: str) -> dict[str, Any]:
    found = trail.get_run(run_id)
    if kind == "run":
        return {"runId": found.id, "facets": mq.facet_values(found.facets)}
    job = mq.find_job(trail, found.namespace, found.job)
    return {"runId": found.id, "facets": mq.facet_values(job.facets)}


@router.get("/jobs/runs/{run_id}/facets", summary="The run's facets, or its job's (Marquez's FacetsResult)")
async def get_run_facets(
    request: Request, run_id: str, _: Actor, type: Literal["run", "job"] = "run"
) -> dict[str, Any]:
    out: dict[str, Any] = await call(request, _run_facets, unquote(run_id), type)
    return out


def _upstream(trail: Trail, run_id: str, depth: int) -> dict[str, Any]:
    """The run and the runs that produced what it read, ``depth`` steps up, in topological order upstream."""
    start = trail.get_run(run_id)
    seen = {start.id}
    queue: deque[tuple[Run, int]] = deque([(start, 0)])
    runs: list[dict[str, Any]] = []
    while queue:
        r, level = queue.popleft()
        runs.append(
            {
                "job": {
                    "namespace": r.namespace,
                    "name": r.job,
                    "version": mq.job_version_uuid(r.namespace, r.job, r),
                },
                "run": {
                    "id": r.id,
                    "start": iso(r.started_at),
                    "end": iso(r.ended_at),
                    "status": mq.run_state(r.state),
                },
                "inputs": [{**mq.version_ref(v), "producedByRunId": v.run_id} for v in r.inputs],
            }
        )
        if level >= depth:
            continue
        for v in r.inputs:
            if v.run_id is None or v.run_id in seen:
                continue
            seen.add(v.run_id)
            try:
                queue.append((trail.get_run(v.run_id), level + 1))
            except NotFound:  # a run the caller may not see
                continue
    return {"runs": runs}


@router.get("/runlineage/upstream", summary="A run and the runs upstream of it (Marquez's UpstreamRunLineage)")
async def get_run_lineage_upstream(
    request: Request,
    _: Actor,
    run_id: Annotated[str, Query(alias="runId", max_length=64)],
    depth: Annotated[int, Query(ge=0, le=MAX_DEPTH)] = 20,
) -> dict[str, Any]:
    out: dict[str, Any] = await call(request, _upstream, run_id, depth)
    return out


# ------------------------------------------------------------ raw events


def _lineage_events(
    trail: Trail, direction: str, before: str | None, after: str | None, limit: int, offset: int
) -> dict[str, Any]:
    start = parse_time(after, "after") if after else None
    end = parse_time(before, "before") if before else None
    kept, total = trail.catalog.event_page(start, end, limit=limit, offset=offset, newest_first=direction != "asc")
    return {"events": [bounded(e, MAX_EVENT_DEPTH) for e in kept], "totalCount": total}


@router.get("/events/lineage", summary="The stored OpenLineage events (Marquez's LineageEventList), newest first")
async def list_lineage_events(
    request: Request,
    _: Actor,
    sort_direction: Annotated[Literal["asc", "desc"], Query(alias="sortDirection")] = "desc",
    before: OptionalTime = None,
    after: OptionalTime = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    """Events as they were received, in event-id order (``asc``: oldest first); ``before`` and ``after``
    (ISO 8601) bound their ``eventTime``."""
    out: dict[str, Any] = await call(request, _lineage_events, sort_direction, before, after, limit, offset)
    return out


# ------------------------------------------------------------ sources and tags


_EVERY_PAGE = 500  # datasets read at once by _every_dataset


def _every_dataset(trail: Trail) -> Iterator[tuple[Dataset, mq.Facts]]:
    """Every listed dataset with the facts of its latest version, by namespace and name: a namespace's
    datasets read a page at a time with their latest versions (a few statements per page; a lookup, a
    describe and a classifications of each dataset cost seconds per thousand datasets)."""
    for summary in trail.catalog.namespaces():
        after: str | None = None
        while summary.datasets:
            found, _ = trail.catalog.dataset_page_details(summary.name, limit=_EVERY_PAGE, after=after)
            for details in found:
                yield details.dataset, mq.Facts.of(details)
            if len(found) < _EVERY_PAGE:
                break
            after = found[-1].dataset.name


def _sources(trail: Trail) -> list[dict[str, Any]]:
    """One source per dataSource facet name among the datasets (``default`` for those without one)."""
    found: dict[str, dict[str, Any]] = {}
    for d, facts in _every_dataset(trail):
        created = iso(d.created_at)
        entry = found.get(facts.source_name)
        if entry is None or (created and (entry["createdAt"] or created) > created):
            found[facts.source_name] = mq.source_of(facts.source_name, facts.source_uri, created)
    return [found[k] for k in sorted(found)]


@router.get("/sources", summary="The sources of the datasets (Marquez's SourceList), from their dataSource facets")
async def list_sources(request: Request, _: Actor, page: Paging) -> dict[str, Any]:
    found: list[dict[str, Any]] = await call(request, _sources)
    return {"sources": page.slice(found), "totalCount": len(found)}


def _source(trail: Trail, name: str) -> dict[str, Any]:
    for found in _sources(trail):
        if found["name"] == name:
            return found
    msg = f"no source {name!r}: sources are named by the dataSource facets of datasets (GET /api/v1/sources)"
    raise NotFound(msg)


@router.get("/sources/{source}", summary="One source (Marquez's Source)")
async def get_source(request: Request, source: str, _: Actor) -> dict[str, Any]:
    out: dict[str, Any] = await call(request, _source, unquote(source))
    return out


def _tags(trail: Trail, page: Page) -> dict[str, Any]:
    """Tags of datasets and jobs (their ``tags`` facets) and the classification labels of columns."""
    names: set[str] = set()
    for j in trail.jobs():
        names.update(mq.job_tags(j))
    for _, facts in _every_dataset(trail):
        names.update(facts.tags)
        for f in facts.fields:
            names.update(f["tags"])
    found = [{"name": n, "description": None} for n in sorted(names)]
    return {"tags": page.slice(found), "totalCount": len(found)}


@router.get("/tags", summary="Tags (Marquez's TagList): tags facets of datasets and jobs, and column classifications")
async def list_tags(request: Request, _: Actor, page: Paging) -> dict[str, Any]:
    out: dict[str, Any] = await call(request, _tags, page)
    return out


# ------------------------------------------------------------ Marquez's write API


class WriteNotSupported(DatatrailError):
    """A Marquez write endpoint: datatrail records what OpenLineage events say, never edits."""

    http_status = 405


SEND_EVENTS = (
    "datatrail records only what OpenLineage events report; send an OpenLineage event to POST /api/v1/lineage"
    " instead (docs/server.md, 'Marquez compatibility')"
)
WRITES: list[tuple[str, str, str]] = [
    ("PUT", "/namespaces/{namespace}", "a namespace exists as soon as an event names it"),
    ("DELETE", "/namespaces/{namespace}", "history is immutable; a lifecycleStateChange DROP facet hides a dataset"),
    ("PUT", "/sources/{source}", "a dataset's source is its dataSource facet"),
    ("PUT", "/namespaces/{namespace}/datasets/{dataset}", "a dataset is recorded by the events that read or write it"),
    ("DELETE", "/namespaces/{namespace}/datasets/{dataset}", "a lifecycleStateChange DROP facet hides a dataset"),
    ("POST", "/namespaces/{namespace}/datasets/{dataset}/tags/{tag}", "a dataset's tags are its tags facet"),
    (
        "POST",
        "/namespaces/{namespace}/datasets/{dataset}/fields/{field}/tags/{tag}",
        "a column's tags are its classification (datatrail classify) or the schema facet's",
    ),
    ("PUT", "/namespaces/{namespace}/jobs/{job}", "a job is recorded by its first run event"),
    ("DELETE", "/namespaces/{namespace}/jobs/{job}", "history is immutable"),
    ("POST", "/namespaces/{namespace}/jobs/{job}/runs", "a run is recorded by its START event"),
    ("POST", "/jobs/runs/{id}/start", "send a START event"),
    ("POST", "/jobs/runs/{id}/complete", "send a COMPLETE event"),
    ("POST", "/jobs/runs/{id}/fail", "send a FAIL event"),
    ("POST", "/jobs/runs/{id}/abort", "send an ABORT event"),
    ("PUT", "/tags/{tag}", "tags come from tags facets and column classifications"),
]


def _refuse(method: str, path: str, why: str) -> Any:
    async def refuse(request: Request, _: Actor) -> dict[str, Any]:
        msg = f"{method} {API}{path} (Marquez's write API) is not supported: {why}; {SEND_EVENTS}"
        raise WriteNotSupported(msg)

    refuse.__name__ = f"refuse_{method.lower()}_{path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}"
    return refuse


for _method, _path, _why in WRITES:
    router.add_api_route(
        _path,
        _refuse(_method, _path, _why),
        methods=[_method],
        status_code=405,
        summary=f"Marquez's {_method} {_path}: not supported, send OpenLineage events",
        responses={405: {"description": "Always: datatrail takes OpenLineage events (POST /api/v1/lineage)"}},
        include_in_schema=True,
    )
