"""``/api/v1/namespaces``: namespaces, their datasets and versions, their jobs and runs.

Each path parameter is one percent-encoded value: ``s3://bucket`` is sent as
``s3%3A%2F%2Fbucket`` and ``raw/penguins`` as ``raw%2Fpenguins``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from datatrail.core.errors import NotFound
from datatrail.core.model import Version
from datatrail.server.routes import Actor, Page, Paging, call, unquote
from datatrail.server.state import API
from datatrail.service import Trail
from datatrail.store.wire import file_to_wire, run_to_wire, version_to_wire

router = APIRouter(prefix=API + "/namespaces", tags=["namespaces"])


def _namespaces(trail: Trail) -> list[dict[str, Any]]:
    counts: dict[str, dict[str, Any]] = {}
    for d in trail.datasets():
        counts.setdefault(d.namespace, {"name": d.namespace, "datasets": 0, "jobs": 0})["datasets"] += 1
    for j in trail.jobs():
        counts.setdefault(j.namespace, {"name": j.namespace, "datasets": 0, "jobs": 0})["jobs"] += 1
    return [counts[k] for k in sorted(counts)]


@router.get("", summary="Namespaces with their numbers of datasets and jobs")
async def list_namespaces(request: Request, _: Actor, page: Paging) -> dict[str, Any]:
    return page.apply(await call(request, _namespaces), "namespaces")


@router.get("/{namespace}/datasets", summary="The datasets of a namespace")
async def list_datasets(request: Request, namespace: str, _: Actor, page: Paging) -> dict[str, Any]:
    found = await call(request, lambda t: [d.to_dict() for d in t.datasets(unquote(namespace))])
    return page.apply(found, "datasets")


def _named(items: Any, what: str, namespace: str, name: str) -> dict[str, Any]:
    """The ``to_dict()`` of the item called ``name``; NotFound otherwise."""
    for item in items:
        if item.name == name:
            out: dict[str, Any] = item.to_dict()
            return out
    msg = f"no {what} named {name!r} in namespace {namespace!r}"
    raise NotFound(msg)


def _dataset(trail: Trail, namespace: str, name: str) -> dict[str, Any]:
    return _named(trail.datasets(namespace), "dataset", namespace, name)


@router.get("/{namespace}/datasets/{name}", summary="One dataset")
async def get_dataset(request: Request, namespace: str, name: str, _: Actor) -> dict[str, Any]:
    out: dict[str, Any] = await call(request, _dataset, unquote(namespace), unquote(name))
    return out


@router.get("/{namespace}/datasets/{name}/versions", summary="The versions of a dataset, oldest first")
async def list_versions(request: Request, namespace: str, name: str, _: Actor, page: Paging) -> dict[str, Any]:
    ns, n = unquote(namespace), unquote(name)
    found = await call(request, lambda t: [version_to_wire(v) for v in t.catalog.dataset_versions(ns, n)])
    return page.apply(found, "versions")


def find_version(trail: Trail, namespace: str, name: str, selector: str) -> Version:
    """A version by number, ``latest``, alias, ``sha256:PREFIX`` or the producer's ``datasetVersion``."""
    return trail.catalog.find(namespace, name, selector)


@router.get("/{namespace}/datasets/{name}/versions/{version}", summary="One version")
async def get_version(request: Request, namespace: str, name: str, version: str, _: Actor) -> dict[str, Any]:
    ns, n, sel = unquote(namespace), unquote(name), unquote(version)
    out: dict[str, Any] = await call(request, lambda t: version_to_wire(find_version(t, ns, n, sel)))
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


@router.get("/{namespace}/jobs", summary="The jobs of a namespace")
async def list_jobs(request: Request, namespace: str, _: Actor, page: Paging) -> dict[str, Any]:
    found = await call(request, lambda t: [j.to_dict() for j in t.jobs(unquote(namespace))])
    return page.apply(found, "jobs")


def _job(trail: Trail, namespace: str, name: str) -> dict[str, Any]:
    return _named(trail.jobs(namespace), "job", namespace, name)


@router.get("/{namespace}/jobs/{job}", summary="One job")
async def get_job(request: Request, namespace: str, job: str, _: Actor) -> dict[str, Any]:
    out: dict[str, Any] = await call(request, _job, unquote(namespace), unquote(job))
    return out


def _job_runs(trail: Trail, namespace: str, name: str, page: Page) -> dict[str, Any]:
    _job(trail, namespace, name)
    runs = [r for r in trail.runs(name, limit=page.offset + page.limit) if r.namespace == namespace]
    return {"runs": [run_to_wire(r) for r in runs[page.offset :]], "total": None}


@router.get("/{namespace}/jobs/{job}/runs", summary="The runs of a job, newest first")
async def list_job_runs(request: Request, namespace: str, job: str, _: Actor, page: Paging) -> dict[str, Any]:
    out: dict[str, Any] = await call(request, _job_runs, unquote(namespace), unquote(job), page)
    return out
