"""``/api/v1/namespaces``: namespaces, their datasets and versions, their jobs, job versions and runs.

The paths and objects are Marquez's (``server/marquez_models.py``), with datatrail's own facts
as further fields; a version is addressed by Marquez's UUID as well as by datatrail's number,
``latest``, alias, digest prefix or ``datasetVersion``. The ``files``, ``profile``, ``facets`` and
``checks`` of a version are datatrail's own paths.

Each path parameter is one percent-encoded value: ``s3://bucket`` is sent as
``s3%3A%2F%2Fbucket`` and ``raw/penguins`` as ``raw%2Fpenguins``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from datatrail.core.errors import NotFound
from datatrail.core.model import Version
from datatrail.server import marquez_models as mq
from datatrail.server.routes import (
    Actor,
    CursorParam,
    Page,
    Paging,
    call,
    decode_cursor,
    encode_cursor,
    json_body,
    unquote,
)
from datatrail.server.state import API
from datatrail.service import Trail
from datatrail.store.wire import file_to_wire

router = APIRouter(prefix=API + "/namespaces", tags=["namespaces"])


def _namespaces(trail: Trail) -> list[dict[str, Any]]:
    """Every namespace (Marquez's Namespace, with ``datasets`` and ``jobs`` counts), by name: read from the
    namespaces' rows and index ends, not from every dataset and job."""
    return [mq.namespace(s) for s in trail.catalog.namespaces()]


@router.get("", summary="Namespaces (Marquez's NamespaceList), with their numbers of datasets and jobs")
async def list_namespaces(request: Request, _: Actor, page: Paging) -> dict[str, Any]:
    found = await call(request, _namespaces)
    return {"namespaces": page.slice(found), "totalCount": len(found)}


def _namespace(trail: Trail, name: str) -> dict[str, Any]:
    for found in trail.catalog.namespaces(name):
        return mq.namespace(found)
    msg = f"no namespace {name!r}: a namespace exists once an OpenLineage event or `datatrail add` names it"
    raise NotFound(msg)


@router.get("/{namespace}", summary="One namespace (Marquez's Namespace)")
async def get_namespace(request: Request, namespace: str, _: Actor) -> dict[str, Any]:
    out: dict[str, Any] = await call(request, _namespace, unquote(namespace))
    return out


# ------------------------------------------------------------ datasets and versions


def _datasets(trail: Trail, namespace: str, page: Page, after: str | None) -> dict[str, Any]:
    # One read for the page and everything its Datasets show: a few statements, not ten per dataset.
    found, total = trail.catalog.dataset_page_details(namespace, limit=page.limit, offset=page.offset, after=after)
    return {
        "datasets": [mq.dataset_of(x) for x in found],
        "totalCount": total,
        # datatrail's: the cursor of the next page (keyset paging), None after the last.
        "nextCursor": encode_cursor(found[-1].dataset.name) if len(found) == page.limit else None,
    }


@router.get(
    "/{namespace}/datasets",
    summary="The datasets of a namespace by name (Marquez's DatasetList); `cursor` pages by keyset",
)
async def list_datasets(
    request: Request, namespace: str, _: Actor, page: Paging, cursor: CursorParam = None
) -> dict[str, Any]:
    """Marquez's ``limit`` and ``offset`` page; the database pages, so a deep offset costs a walk of the
    index, not a read of every dataset. ``nextCursor`` (datatrail's) names where the next page starts:
    pass it as ``cursor`` to page by keyset, which costs the same at any depth and neither skips nor
    repeats a dataset when others are added meanwhile (``offset`` then counts from the cursor)."""
    after = decode_cursor(cursor) if cursor is not None else None
    out: dict[str, Any] = await call(request, _datasets, unquote(namespace), page, after)
    return out


@router.get("/{namespace}/datasets/{name}", summary="One dataset (Marquez's Dataset)")
async def get_dataset(request: Request, namespace: str, name: str, _: Actor) -> dict[str, Any]:
    ns, n = unquote(namespace), unquote(name)
    out: dict[str, Any] = await call(request, lambda t: mq.dataset(t, mq.find_dataset(t, ns, n)))
    return out


def _description(trail: Trail, namespace: str, name: str) -> str | None:
    """The dataset's description (None for one hidden from listings, whose history stays readable)."""
    try:
        return mq.find_dataset(trail, namespace, name).description
    except NotFound:
        return None


def _versions(trail: Trail, namespace: str, name: str, page: Page) -> dict[str, Any]:
    found = list(reversed(trail.catalog.dataset_versions(namespace, name)))  # newest first, as Marquez
    description = _description(trail, namespace, name)
    shaped = [mq.version(trail, v, description=description) for v in page.slice(found)]
    return {"versions": shaped, "totalCount": len(found)}


@router.get(
    "/{namespace}/datasets/{name}/versions",
    summary="The versions of a dataset, newest first (Marquez's DatasetVersionList)",
)
async def list_versions(request: Request, namespace: str, name: str, _: Actor, page: Paging) -> dict[str, Any]:
    out: dict[str, Any] = await call(request, _versions, unquote(namespace), unquote(name), page)
    return out


def find_version(trail: Trail, namespace: str, name: str, selector: str) -> Version:
    """A version by Marquez's UUID, number, ``latest``, alias, ``sha256:PREFIX`` or ``datasetVersion``."""
    return mq.find_version(trail, namespace, name, selector)


def _version(trail: Trail, namespace: str, name: str, selector: str) -> dict[str, Any]:
    v = find_version(trail, namespace, name, selector)
    return mq.version(trail, v, description=_description(trail, namespace, name))


@router.get(
    "/{namespace}/datasets/{name}/versions/{version}",
    summary="One version (Marquez's DatasetVersion) by UUID, number, latest, alias, digest prefix or datasetVersion",
)
async def get_version(request: Request, namespace: str, name: str, version: str, _: Actor) -> dict[str, Any]:
    out: dict[str, Any] = await call(request, _version, unquote(namespace), unquote(name), unquote(version))
    return out


@router.get("/{namespace}/datasets/{name}/versions/{version}/files", summary="The manifest of a directory version")
async def list_files(
    request: Request, namespace: str, name: str, version: str, _: Actor, page: Paging
) -> dict[str, Any]:
    ns, n, sel = unquote(namespace), unquote(name), unquote(version)
    found = await call(request, lambda t: [file_to_wire(f) for f in t.manifest(find_version(t, ns, n, sel))])
    return page.apply(found, "files")


@router.get("/{namespace}/datasets/{name}/versions/{version}/profile", summary="The profile of a version")
async def get_profile(request: Request, namespace: str, name: str, version: str, _: Actor) -> dict[str, Any]:
    ns, n, sel = unquote(namespace), unquote(name), unquote(version)
    return {"profile": await call(request, lambda t: t.profile(find_version(t, ns, n, sel)))}


@router.get(
    "/{namespace}/datasets/{name}/versions/{version}/facets",
    summary="What producers reported about a version: schema, statistics, dataset facets, lifecycle",
)
async def get_facets(request: Request, namespace: str, name: str, version: str, _: Actor) -> dict[str, Any]:
    ns, n, sel = unquote(namespace), unquote(name), unquote(version)
    out: dict[str, Any] = await call(request, lambda t: t.describe(find_version(t, ns, n, sel)))
    return out


@router.get("/{namespace}/datasets/{name}/versions/{version}/checks", summary="The check results of a version")
async def list_checks(request: Request, namespace: str, name: str, version: str, _: Actor) -> dict[str, Any]:
    ns, n, sel = unquote(namespace), unquote(name), unquote(version)
    found = await call(request, lambda t: [c.to_dict() for c in t.check_results(find_version(t, ns, n, sel))])
    return {"checks": found}


# ------------------------------------------------------------ jobs, job versions, runs


def _jobs(trail: Trail, namespace: str, page: Page) -> bytes:
    # The database pages; each job's latest run and its parent are read at once for the page; encoded
    # here, in the thread pool (json_body: the same bytes as FastAPI's encoder, some 50 ms sooner).
    found, total = trail.catalog.job_page(namespace, limit=page.limit, offset=page.offset)
    return json_body({"jobs": mq.jobs(trail, found), "totalCount": total})


@router.get("/{namespace}/jobs", summary="The jobs of a namespace (Marquez's JobList)", response_model=dict[str, Any])
async def list_jobs(request: Request, namespace: str, _: Actor, page: Paging) -> Response:
    body: bytes = await call(request, _jobs, unquote(namespace), page)
    return Response(body, media_type="application/json")


@router.get("/{namespace}/jobs/{job}", summary="One job (Marquez's Job): inputs and outputs of its latest run")
async def get_job(request: Request, namespace: str, job: str, _: Actor) -> dict[str, Any]:
    ns, n = unquote(namespace), unquote(job)
    out: dict[str, Any] = await call(request, lambda t: mq.job(t, mq.find_job(t, ns, n)))
    return out


def _job_versions(trail: Trail, namespace: str, name: str, page: Page) -> dict[str, Any]:
    found = mq.job_versions(trail, mq.find_job(trail, namespace, name))
    return {"versions": page.slice(found), "totalCount": len(found)}


@router.get(
    "/{namespace}/jobs/{job}/versions",
    summary="The versions of a job, newest first (Marquez's JobVersionList): one per inputs and outputs",
)
async def list_job_versions(request: Request, namespace: str, job: str, _: Actor, page: Paging) -> dict[str, Any]:
    out: dict[str, Any] = await call(request, _job_versions, unquote(namespace), unquote(job), page)
    return out


def _job_version(trail: Trail, namespace: str, name: str, version: str) -> dict[str, Any]:
    for found in mq.job_versions(trail, mq.find_job(trail, namespace, name)):
        if found["version"] == version.lower():
            return found
    msg = f"job {namespace}:{name} has no version {version!r}; list them at …/jobs/{{job}}/versions"
    raise NotFound(msg)


@router.get("/{namespace}/jobs/{job}/versions/{version}", summary="One version of a job (Marquez's JobVersion)")
async def get_job_version(request: Request, namespace: str, job: str, version: str, _: Actor) -> dict[str, Any]:
    ns, n, v = unquote(namespace), unquote(job), unquote(version)
    out: dict[str, Any] = await call(request, _job_version, ns, n, v)
    return out


def _job_runs(trail: Trail, namespace: str, name: str, page: Page) -> dict[str, Any]:
    j = mq.find_job(trail, namespace, name)
    runs = mq.job_runs(trail, j, page.offset + page.limit)
    return {
        "runs": [mq.run(trail, r) for r in runs[page.offset :]],
        "totalCount": j.run_count,
    }


@router.get("/{namespace}/jobs/{job}/runs", summary="The runs of a job, newest first (Marquez's RunList)")
async def list_job_runs(request: Request, namespace: str, job: str, _: Actor, page: Paging) -> dict[str, Any]:
    out: dict[str, Any] = await call(request, _job_runs, unquote(namespace), unquote(job), page)
    return out
