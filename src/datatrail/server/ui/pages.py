"""The pages of the web UI: home, search, namespaces, datasets, versions, diffs, jobs, runs, audit, login.

Each page gathers what it shows in one function run in the thread pool (the
same Trail methods the API routes call) and renders one template. Every page
works without JavaScript; only the lineage graph (``graph.py``) uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from datatrail.core.errors import DatatrailError, InvalidInput, NotFound
from datatrail.core.model import Dataset, Version
from datatrail.server import access
from datatrail.server.routes import call, unquote
from datatrail.server.routes.namespaces import find_version
from datatrail.server.routes.search import search_page
from datatrail.server.state import state
from datatrail.server.ui import auth, hooks
from datatrail.server.ui.render import render
from datatrail.service import Trail

router = APIRouter(include_in_schema=False)

MAX_FILES = 500
MAX_RESULTS = 200
HOME_ROWS = 10


async def page(
    request: Request,
    template: str,
    fn: Callable[..., dict[str, Any]],
    *args: Any,
    admin_only: bool = False,
) -> Response:
    """Render ``template`` with what ``fn(trail, *args)`` gathers; a DatatrailError becomes an error page.

    Everything that may touch the store (the login check, the page's reads through
    the request's Trail, the header's account state) runs in the thread pool.
    """

    def gate() -> Response | None:
        if auth.needs_login(request):
            return RedirectResponse(auth.login_target(request), status_code=303)
        if admin_only and not hooks.is_admin(state(request), getattr(request.state, "principal", None)):
            return error_page(request, 403, "the audit log is for administrators")
        return None

    try:
        refused = await run_in_threadpool(gate)
        if refused is not None:
            return refused
        context = await call(request, fn, *args)
        response: Response = await run_in_threadpool(lambda: render(request, template, **context))
    except DatatrailError as exc:
        return await run_in_threadpool(error_page, request, exc.http_status, exc.message)
    return response


def error_page(request: Request, status: int, message: str) -> Response:
    titles = {400: "Bad request", 403: "Forbidden", 404: "Not found", 413: "Too large", 503: "Store unavailable"}
    title = titles.get(status, "Error")
    return render(request, "error.html", status=status, title=title, heading=title, message=message)


def _decode(*values: str) -> tuple[str, ...]:
    try:
        return tuple(unquote(v) for v in values)
    except UnicodeDecodeError:
        msg = "the address is not valid UTF-8 once percent-decoded"
        raise InvalidInput(msg) from None


# ------------------------------------------------------------------ home and search


def _namespaces(trail: Trail) -> list[dict[str, Any]]:
    """Each namespace with its numbers of datasets and jobs (as ingest counts them), by name."""
    return [{"name": s.name, "datasets": s.datasets, "jobs": s.jobs} for s in trail.catalog.namespaces()]


def _home(trail: Trail) -> dict[str, Any]:
    return {
        "namespaces": _namespaces(trail),
        "overview": trail.overview(HOME_ROWS),
        "runs": trail.runs(None, HOME_ROWS),
        "title": "datatrail",
    }


@router.get("/")
async def home(request: Request) -> Response:
    return await page(request, "home.html", _home)


def _search_page(trail: Trail, q: str) -> dict[str, Any]:
    found = search_page(trail, q, limit=MAX_RESULTS) if q else {"totalCount": 0, "results": []}
    return {"q": q, "hits": found["results"], "total": found["totalCount"], "title": f"Search: {q}"}


@router.get("/search")
async def search(request: Request, q: Annotated[str, Query(max_length=1024)] = "") -> Response:
    return await page(request, "search.html", _search_page, q.strip())


# ------------------------------------------------------------------ namespaces, datasets, versions


def _namespace(trail: Trail, raw: str) -> dict[str, Any]:
    (namespace,) = _decode(raw)
    datasets, jobs = trail.datasets(namespace), trail.jobs(namespace)
    if not datasets and not jobs:
        msg = f"no namespace {namespace!r}: it holds no dataset and no job"
        raise NotFound(msg)
    return {"namespace": namespace, "datasets": datasets, "jobs": jobs, "title": f"Namespace {namespace}"}


@router.get("/namespaces/{namespace}")
async def namespace_page(request: Request, namespace: str) -> Response:
    return await page(request, "namespace.html", _namespace, namespace)


def _find_dataset(trail: Trail, namespace: str, name: str) -> Dataset:
    for dataset in trail.datasets(namespace, name=name):
        return dataset
    msg = f"no dataset named {name!r} in namespace {namespace!r}"
    raise NotFound(msg)


def _version_details(trail: Trail, version: Version) -> dict[str, Any]:
    """Schema, profile and check results of a version; for a model, its card (as ``datatrail show``)."""
    profile = trail.profile(version)
    # Without a profile, the schema a producer reported (the schema facet) is what there is to show.
    reported = None if profile is not None else trail.describe(version).get("schema")
    return {
        "profile": profile,
        "columns": (profile or {}).get("columns") or [],
        "reported_schema": [f for f in reported if isinstance(f, dict)] if isinstance(reported, list) else [],
        "checks": trail.check_results(version),
        "card": trail.model_card(version) if version.kind == "model" else None,
    }


def _dataset(trail: Trail, raw_ns: str, raw_name: str) -> dict[str, Any]:
    namespace, name = _decode(raw_ns, raw_name)
    dataset = _find_dataset(trail, namespace, name)
    versions = list(reversed(trail.catalog.dataset_versions(namespace, name)))
    latest = versions[0] if versions else None
    return {
        "dataset": dataset,
        "versions": versions,
        "latest": latest,
        **(
            _version_details(trail, latest)
            if latest
            else {"profile": None, "columns": [], "reported_schema": [], "checks": [], "card": None}
        ),
        "access": hooks.access_entries(trail, namespace, name),
        "deployments": hooks.deployments(trail, namespace, name),
        "title": f"{name} · {namespace}",
    }


@router.get("/datasets/{namespace}/{name}")
async def dataset_page(request: Request, namespace: str, name: str) -> Response:
    return await page(request, "dataset.html", _dataset, namespace, name)


def _version(trail: Trail, raw_ns: str, raw_name: str, raw_sel: str) -> dict[str, Any]:
    namespace, name, selector = _decode(raw_ns, raw_name, raw_sel)
    _find_dataset(trail, namespace, name)
    version = find_version(trail, namespace, name, selector)
    numbers = [v.number for v in trail.catalog.dataset_versions(namespace, name)]
    near = trail.dataset_lineage(namespace, name, selector=str(version.number), direction="both", depth=1)
    root = f"version:{namespace}:{name}@{version.number}"
    producers = [near.nodes[n] for n in near.parents(root) if n in near.nodes]
    readers = [near.nodes[n] for n in near.children(root) if n in near.nodes]
    files = trail.manifest(version)
    return {
        "version": version,
        "numbers": numbers,
        **_version_details(trail, version),
        "files": files[:MAX_FILES],
        "file_total": len(files),
        "producers": producers,
        "readers": readers,
        "column_edges": hooks.column_lineage(trail, version),
        "title": f"{version.ref}",
    }


@router.get("/datasets/{namespace}/{name}/versions/{version}")
async def version_page(request: Request, namespace: str, name: str, version: str) -> Response:
    return await page(request, "version.html", _version, namespace, name, version)


def _diff(trail: Trail, raw_ns: str, raw_name: str, a: str | None, b: str | None) -> dict[str, Any]:
    namespace, name = _decode(raw_ns, raw_name)
    _find_dataset(trail, namespace, name)
    versions = trail.catalog.dataset_versions(namespace, name)
    if not versions:
        msg = f"{name!r} has no versions to compare"
        raise NotFound(msg)
    vb = find_version(trail, namespace, name, b) if b else versions[-1]
    if a:
        va = find_version(trail, namespace, name, a)
    else:
        older = [v for v in versions if v.number < vb.number]
        va = older[-1] if older else vb
    return {
        "namespace": namespace,
        "name": name,
        "a": va,
        "b": vb,
        "numbers": [v.number for v in versions],
        "diff": trail.diff(va, vb),
        "title": f"Diff {name} @{va.number} → @{vb.number}",
    }


@router.get("/datasets/{namespace}/{name}/diff")
async def diff_page(
    request: Request,
    namespace: str,
    name: str,
    a: Annotated[str | None, Query(max_length=200)] = None,
    b: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    return await page(request, "diff.html", _diff, namespace, name, a or None, b or None)


# ------------------------------------------------------------------ jobs and runs


def _job(trail: Trail, raw_ns: str, raw_name: str) -> dict[str, Any]:
    namespace, name = _decode(raw_ns, raw_name)
    for job in trail.jobs(namespace):
        if job.name == name:
            runs = [r for r in trail.runs(name, 200) if r.namespace == namespace]
            return {"job": job, "runs": runs, "title": f"Job {name}"}
    msg = f"no job named {name!r} in namespace {namespace!r}"
    raise NotFound(msg)


@router.get("/jobs/{namespace}/{name}")
async def job_page(request: Request, namespace: str, name: str) -> Response:
    return await page(request, "job.html", _job, namespace, name)


def _run(trail: Trail, raw_id: str) -> dict[str, Any]:
    (run_id,) = _decode(raw_id)
    run = trail.get_run(run_id)
    code = dict(run.code)
    environment = code.pop("environment", None)
    return {"run": run, "code": code, "environment": environment, "title": f"Run {run.job} {run.id[:8]}"}


@router.get("/runs/{run_id}")
async def run_page(request: Request, run_id: str) -> Response:
    return await page(request, "run.html", _run, run_id)


# ------------------------------------------------------------------ audit and login


def _audit(trail: Trail, limit: int, verify: bool) -> dict[str, Any]:
    problems: list[str] | None = None
    if verify:
        problems = trail.check_store()
    return {"entries": trail.audit_entries(limit=limit), "limit": limit, "problems": problems, "title": "Audit log"}


@router.get("/audit")
async def audit_page(
    request: Request, limit: Annotated[int, Query(ge=1, le=10_000)] = 200, verify: bool = False
) -> Response:
    return await page(request, "audit.html", _audit, limit, verify, admin_only=True)


def _login_page(request: Request, target: str, failed: bool, wait: int = 0) -> Response:
    enabled = hooks.auth_enabled(state(request))
    status = 429 if wait else 401 if failed else 200
    response = render(
        request, "login.html", status=status, title="Sign in", enabled=enabled, next=target, failed=failed, wait=wait
    )
    if wait:
        response.headers["Retry-After"] = str(wait)
    return response


@router.get("/login")
async def login_form(request: Request, next: str = "/") -> Response:
    return await run_in_threadpool(_login_page, request, auth.safe_next(next), False)


def _check_login(request: Request, token: str) -> access.TokenCheck | None:
    """None when the server needs no token, else what ``token`` came to: the API's check, limiter and audit."""
    server = state(request)
    if not hooks.auth_enabled(server):
        return None
    if not token:
        return access.TokenCheck(None)
    return access.check_token(server, access.client_ip(request.scope), token, "auth.login", "POST /login")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await auth.read_form(request)
    target = auth.safe_next(form.get("next"))
    token = form.get("token", "").strip()
    check = await run_in_threadpool(_check_login, request, token)
    if check is None:
        return RedirectResponse(target, status_code=303)
    if check.principal is None:
        return await run_in_threadpool(_login_page, request, target, True, check.retry_after)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        auth.COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/", httponly=True, samesite="strict")
    return response
