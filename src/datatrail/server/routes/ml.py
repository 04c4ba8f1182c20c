"""``/api/v1/deployments``, ``/api/v1/drift`` and ``/api/v1/evaluations``: the ML lifecycle's reads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from datatrail.core.limits import MAX_INT
from datatrail.core.model import Ref, validate_name, validate_namespace
from datatrail.server.routes import MAX_LIMIT, Actor, NameParam, OptionalName, call
from datatrail.server.state import API
from datatrail.store.wire import run_to_wire

router = APIRouter(prefix=API, tags=["ml"])


@router.get("/deployments", summary="Which version is live in which environment, since when and by whom")
async def deployments(
    request: Request,
    _: Actor,
    namespace: OptionalName = None,
    name: OptionalName = None,
    environment: OptionalName = None,
    active: bool = False,
) -> dict[str, Any]:
    items = await call(
        request,
        lambda t: t.catalog.deployments(namespace, name, environment=environment, active=active),
    )
    return {"deployments": [d.to_dict() for d in items]}


@router.get("/drift", summary="Stored drift reports, oldest first (the data of the drift history chart)")
async def drift(
    request: Request,
    _: Actor,
    environment: OptionalName = None,
    namespace: OptionalName = None,
    name: OptionalName = None,
    limit: Annotated[int, Query(ge=1, le=10 * MAX_LIMIT)] = 1000,
) -> dict[str, Any]:
    items = await call(
        request,
        lambda t: t.catalog.drift_reports(environment=environment, namespace=namespace, name=name, limit=limit),
    )
    return {"reports": [r.to_dict() for r in items]}


@router.get("/evaluations", summary="The evaluate runs that read one version (a model or a dataset)")
async def evaluations(
    request: Request,
    _: Actor,
    namespace: NameParam,
    name: NameParam,
    version: Annotated[int, Query(ge=1, le=MAX_INT)],
) -> dict[str, Any]:
    ref = Ref(validate_namespace(namespace), validate_name(name, "OpenLineage dataset name"), str(version))
    runs = await call(request, lambda t: t.catalog.evaluations(ref))
    return {"runs": [run_to_wire(r) for r in runs]}
