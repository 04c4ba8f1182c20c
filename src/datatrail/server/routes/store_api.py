"""What :class:`~datatrail.store.http.HttpStore` needs beyond the public resources.

Writes carry the event, the actor and the action, like ``Store.ingest``. The action
must be one a client may ask for (:data:`~datatrail.core.actions.WRITE_ACTIONS`), and
on a server with users or API keys the actor is the token's principal, whatever the
body says.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field, StringConstraints

from datatrail.catalog import parse_as_of
from datatrail.core.actions import check_write_action
from datatrail.core.errors import InvalidInput
from datatrail.core.limits import MAX_OFFSET, MAX_TIME_LENGTH
from datatrail.core.model import MAX_NAME_LENGTH, MAX_VERSION, Ref, Version, validate_name, validate_namespace
from datatrail.core.results import Direction, LineageResult
from datatrail.server.body import read_json
from datatrail.server.routes import Actor, IdParam, NameParam, OptionalId, OptionalName, Paging, call
from datatrail.server.state import API, state
from datatrail.service import Trail
from datatrail.store.wire import (
    column_lineage_to_wire,
    details_to_wire,
    ingest_to_wire,
    latest_to_wire,
    lineage_to_wire,
    run_to_wire,
    version_to_wire,
)

MAX_RUN_ID = 64  # a run id is a UUID; longer text is no run's id
RunIds = Annotated[list[Annotated[str, StringConstraints(max_length=MAX_RUN_ID)]], Query(alias="id", max_length=100)]
Names = Annotated[list[Annotated[str, StringConstraints(max_length=MAX_NAME_LENGTH)]], Query(max_length=100)]

router = APIRouter(prefix=API, tags=["store"])
MAX_LOCATED = 10_000  # versions one POST /content-locations may name (a push of every version sends batches)


@router.post("/events", status_code=201, summary="Ingest one event as an actor and action (the HTTP store's write)")
async def post_event(request: Request, principal: Actor) -> dict[str, Any]:
    body = await read_json(request, state(request).max_body)
    if not isinstance(body, dict) or "event" not in body:
        msg = 'the body is {"event": {...}, "actor": "...", "action": "..."}'
        raise InvalidInput(msg)
    action = check_write_action(body.get("action") or "lineage.ingest")
    actor = principal or body.get("actor")
    if not isinstance(actor, str):
        msg = "actor must be a string: the name the write is recorded under"
        raise InvalidInput(msg)
    actor = validate_name(actor, "actor")
    out: dict[str, Any] = await call(
        request, lambda t: ingest_to_wire(t.ingest(body["event"], actor=actor, action=action))
    )
    return out


@router.get("/datasets", summary="Every dataset (of one namespace; the one named; those matching a search pattern)")
async def all_datasets(
    request: Request, _: Actor, namespace: OptionalName = None, name: OptionalName = None, match: OptionalName = None
) -> dict[str, Any]:
    found = await call(request, lambda t: [d.to_dict() for d in t.datasets(namespace, name=name, match=match)])
    return {"datasets": found}


@router.get("/dataset-page", summary="A page of a namespace's datasets by name (after a name), and their number")
async def dataset_page(
    request: Request, _: Actor, namespace: NameParam, page: Paging, after: OptionalName = None
) -> dict[str, Any]:
    def read(t: Trail) -> dict[str, Any]:
        found, total = t.catalog.dataset_page(namespace, limit=page.limit, offset=page.offset, after=after)
        return {"datasets": [d.to_dict() for d in found], "total": total}

    out: dict[str, Any] = await call(request, read)
    return out


@router.get(
    "/dataset-page-details",
    summary="A page of a namespace's datasets with their latest versions, facets, classifications and profiles",
)
async def dataset_page_details(
    request: Request, _: Actor, namespace: NameParam, page: Paging, after: OptionalName = None
) -> dict[str, Any]:
    def read(t: Trail) -> dict[str, Any]:
        found, total = t.catalog.dataset_page_details(namespace, limit=page.limit, offset=page.offset, after=after)
        return {"datasets": [details_to_wire(x) for x in found], "total": total}

    out: dict[str, Any] = await call(request, read)
    return out


@router.get("/dataset-details", summary="Datasets named by namespace and name (at most 100), with their details")
async def dataset_details(
    request: Request,
    _: Actor,
    namespace: Names,
    name: Names,
) -> dict[str, Any]:
    if len(namespace) != len(name):
        msg = "give one namespace per name: ?namespace=NS&name=NAME&namespace=NS2&name=NAME2…"
        raise InvalidInput(msg)
    keys = list(zip(namespace, name, strict=True))
    return {"datasets": await call(request, lambda t: [details_to_wire(x) for x in t.catalog.dataset_details(keys)])}


@router.get("/versions-by-number", summary="Versions named by namespace, dataset name and number (at most 100)")
async def versions_by_number(
    request: Request,
    _: Actor,
    namespace: Names,
    name: Names,
    number: Annotated[list[Annotated[int, Field(ge=1, le=MAX_VERSION)]], Query(max_length=100)],
) -> dict[str, Any]:
    if not len(namespace) == len(name) == len(number):
        msg = "give one namespace and number per name: ?namespace=NS&name=NAME&number=1&namespace=…"
        raise InvalidInput(msg)
    keys = list(zip(namespace, name, number, strict=True))
    return {"versions": await call(request, lambda t: [version_to_wire(v) for v in t.catalog.versions_by_number(keys)])}


@router.get(
    "/jobs-by-name", summary="Jobs named by namespace and name (at most 100), with their run counts and latest runs"
)
async def jobs_by_name(request: Request, _: Actor, namespace: Names, name: Names) -> dict[str, Any]:
    if len(namespace) != len(name):
        msg = "give one namespace per name: ?namespace=NS&name=NAME&namespace=NS2&name=NAME2…"
        raise InvalidInput(msg)
    keys = list(zip(namespace, name, strict=True))
    return {"jobs": await call(request, lambda t: [j.to_dict() for j in t.catalog.jobs_by_name(keys)])}


@router.get("/namespace-summaries", summary="Namespaces with their numbers of datasets and jobs, and their times")
async def namespace_summaries(request: Request, _: Actor, name: OptionalName = None) -> dict[str, Any]:
    return {"namespaces": await call(request, lambda t: [s.to_dict() for s in t.catalog.namespaces(name)])}


@router.get("/job-page", summary="A page of a namespace's jobs by name, and their number")
async def job_page(request: Request, _: Actor, namespace: NameParam, page: Paging) -> dict[str, Any]:
    def read(t: Trail) -> dict[str, Any]:
        found, total = t.catalog.job_page(namespace, limit=page.limit, offset=page.offset)
        return {"jobs": [j.to_dict() for j in found], "total": total}

    out: dict[str, Any] = await call(request, read)
    return out


@router.get("/runs-by-id", summary="The runs with these whole ids (at most 100), those that exist and may be seen")
async def runs_by_id(
    request: Request,
    _: Actor,
    run_id: RunIds,
) -> dict[str, Any]:
    return {"runs": await call(request, lambda t: [run_to_wire(r) for r in t.catalog.runs_by_id(run_id)])}


@router.get("/latest-versions", summary="The latest version of every dataset, newest first, with its check counts")
async def latest_versions(
    request: Request, _: Actor, limit: Annotated[int | None, Query(ge=1, le=MAX_OFFSET)] = None, failing: bool = False
) -> dict[str, Any]:
    def run(t: Trail) -> list[dict[str, Any]]:
        return [latest_to_wire(x) for x in t.catalog.latest_versions(limit, failing=failing)]

    return {"versions": await call(request, run)}


@router.get("/jobs", summary="Every job (of one namespace; the one named; those matching a search pattern)")
async def all_jobs(
    request: Request, _: Actor, namespace: OptionalName = None, name: OptionalName = None, match: OptionalName = None
) -> dict[str, Any]:
    return {"jobs": await call(request, lambda t: [j.to_dict() for j in t.jobs(namespace, name=name, match=match)])}


def _ref(namespace: str, name: str, selector: str | None) -> Ref:
    ns = validate_namespace(namespace)
    if selector is not None:
        Ref.check_selector(f"{name}@{selector}", selector)
    return Ref(ns, validate_name(name, "OpenLineage dataset name"), selector)


@router.get("/resolve", summary="The version a ref names")
async def resolve(
    request: Request, _: Actor, namespace: NameParam, name: NameParam, selector: OptionalId = None
) -> dict[str, Any]:
    ref = _ref(namespace, name, selector)
    out: dict[str, Any] = await call(request, lambda t: version_to_wire(t.catalog.lookup(ref)))
    return out


@router.get("/dataset-versions", summary="The versions of a dataset, oldest first (the HTTP store's listing)")
async def dataset_versions(
    request: Request, _: Actor, page: Paging, namespace: NameParam, name: NameParam
) -> dict[str, Any]:
    found = await call(request, lambda t: [version_to_wire(v) for v in t.catalog.dataset_versions(namespace, name)])
    return page.apply(found, "versions")


@router.get("/version-by-key", summary="The version of a dataset with this version key (digest), if any")
async def version_by_key(
    request: Request, _: Actor, namespace: NameParam, name: NameParam, key: IdParam
) -> dict[str, Any]:
    found = await call(request, lambda t: t.catalog.find_key(namespace, name, key))
    return {"version": version_to_wire(found) if found is not None else None}


@router.get("/versions-at", summary="Versions recorded at a location (URI) or, with a digest, of that content")
async def versions_at(request: Request, _: Actor, uri: IdParam, digest: OptionalId = None) -> dict[str, Any]:
    found = await call(request, lambda t: t.catalog.versions_at(uri, digest))
    return {"versions": [version_to_wire(v) for v in found]}


@router.get("/content-locations", summary="The remotes a push recorded as holding every object of a version")
async def content_locations(
    request: Request, _: Actor, namespace: NameParam, name: NameParam, version: Annotated[int, Query(ge=1)]
) -> dict[str, Any]:
    ref = _ref(namespace, name, str(version))
    found = await call(request, lambda t: [loc.to_dict() for loc in t.catalog.content_locations(ref)])
    return {"locations": found}


def _located_versions(trail: Trail, body: dict[str, Any]) -> list[Version]:
    items = body.get("versions")
    if not isinstance(items, list) or not items or len(items) > MAX_LOCATED:
        msg = f"versions is a list of 1 to {MAX_LOCATED} [namespace, name, version number]"
        raise InvalidInput(msg)
    versions = []
    for item in items:
        if not (
            isinstance(item, list) and len(item) == 3 and isinstance(item[2], int) and not isinstance(item[2], bool)
        ):
            msg = "versions is a list of [namespace, name, version number]"
            raise InvalidInput(msg)
        versions.append(trail.catalog.lookup(_ref(str(item[0]), str(item[1]), str(item[2]))))
    return versions


def _record_locations(trail: Trail, body: dict[str, Any], actor: str) -> int:
    versions = _located_versions(trail, body)
    remote, url = body.get("remote"), body.get("url")
    if not isinstance(remote, str) or not isinstance(url, str):
        msg = "remote and url are strings: the remote's name and its URL (without credentials)"
        raise InvalidInput(msg)
    return trail.recorder.record_locations(versions, remote, url, actor=actor)


def _forget_locations(trail: Trail, body: dict[str, Any], actor: str) -> int:
    versions = _located_versions(trail, body)
    url = body.get("url")
    if not isinstance(url, str):
        msg = "url is a string: the URL of the remote that no longer holds the versions"
        raise InvalidInput(msg)
    return trail.recorder.forget_locations(versions, url, actor=actor)


async def _locations_body(request: Request, principal: str | None, shape: str) -> tuple[dict[str, Any], str]:
    """The JSON object of a locations write and the actor it is recorded under (the token's, else the body's)."""
    body = await read_json(request, state(request).max_body)
    if not isinstance(body, dict):
        msg = f"the body is {shape}"
        raise InvalidInput(msg)
    actor = principal or body.get("actor")
    if not isinstance(actor, str):
        msg = "actor must be a string: the name the write is recorded under"
        raise InvalidInput(msg)
    return body, validate_name(actor, "actor")


@router.post("/content-locations", summary="Record that a remote holds every object of some versions (after a push)")
async def record_content_locations(request: Request, principal: Actor) -> dict[str, Any]:
    shape = '{"remote": "...", "url": "...", "versions": [[namespace, name, number], ...]}'
    body, actor = await _locations_body(request, principal, shape)
    added: int = await call(request, _record_locations, body, actor)
    return {"added": added}


@router.post(
    "/content-locations/forget",
    summary="Forget that a remote holds some versions (gc --remote collected some of their objects)",
)
async def forget_content_locations(request: Request, principal: Actor) -> dict[str, Any]:
    shape = '{"url": "...", "versions": [[namespace, name, number], ...]}'
    body, actor = await _locations_body(request, principal, shape)
    forgotten: int = await call(request, _forget_locations, body, actor)
    return {"forgotten": forgotten}


def _traverse(
    trail: Trail, start: list[Any], direction: Direction, depth: int, as_of: str | None = None
) -> dict[str, Any]:
    versions = []
    for item in start:
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[2], int)):
            msg = "start is a list of [namespace, name, version number]"
            raise InvalidInput(msg)
        versions.append(trail.catalog.lookup(_ref(item[0], item[1], str(item[2]))))
    graph = trail.catalog.versions_lineage(versions, direction=direction, depth=depth, as_of=parse_as_of(as_of))
    return lineage_to_wire(LineageResult(graph.nodes, graph.edges))


def _column_traverse(trail: Trail, start: list[Any], direction: Direction, depth: int) -> dict[str, Any]:
    pairs = []
    for item in start:
        if not (
            isinstance(item, list)
            and len(item) == 4
            and isinstance(item[2], int)
            and (item[3] is None or isinstance(item[3], str))
        ):
            msg = "start is a list of [namespace, name, version number, column or null]"
            raise InvalidInput(msg)
        pairs.append((trail.catalog.lookup(_ref(item[0], item[1], str(item[2]))), item[3]))
    return column_lineage_to_wire(trail.catalog.columns_of(pairs, direction=direction, depth=depth))


@router.post(
    "/column-lineage/traverse", summary="Columns reached from some versions' columns (the HTTP store's column lineage)"
)
async def column_traverse(
    request: Request,
    _: Actor,
    direction: Direction = "upstream",
    depth: Annotated[int, Query(ge=0, le=1000)] = 10,
) -> dict[str, Any]:
    start = await read_json(request, state(request).max_body)
    if not isinstance(start, list):
        msg = "the body is a JSON array of [namespace, name, version number, column or null]"
        raise InvalidInput(msg)
    out: dict[str, Any] = await call(request, _column_traverse, start, direction, depth)
    return out


@router.post("/lineage/traverse", summary="Versions and runs reached from some versions (the HTTP store's lineage)")
async def traverse(
    request: Request,
    _: Actor,
    direction: Direction = "upstream",
    depth: Annotated[int, Query(ge=0, le=1000)] = 10,
    as_of: Annotated[str | None, Query(alias="asOf", max_length=MAX_TIME_LENGTH)] = None,
) -> dict[str, Any]:
    start = await read_json(request, state(request).max_body)
    if not isinstance(start, list):
        msg = "the body is a JSON array of [namespace, name, version number]"
        raise InvalidInput(msg)
    out: dict[str, Any] = await call(request, _traverse, start, direction, depth, as_of)
    return out
