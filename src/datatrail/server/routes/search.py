"""``/api/v1/search``: datasets and jobs whose namespace or name contains the query."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from datatrail.core.limits import MAX_OFFSET
from datatrail.server.routes import MAX_LIMIT, Actor, call
from datatrail.server.state import API
from datatrail.service import Trail

router = APIRouter(prefix=API, tags=["search"])


def _search(trail: Trail, q: str) -> list[dict[str, Any]]:
    needle = q.casefold()
    hits: list[dict[str, Any]] = [
        {"type": "DATASET", "namespace": d.namespace, "name": d.name, "nodeId": f"dataset:{d.namespace}:{d.name}"}
        for d in trail.datasets()
        if needle in d.name.casefold() or needle in d.namespace.casefold()
    ]
    hits += [
        {"type": "JOB", "namespace": j.namespace, "name": j.name, "nodeId": f"job:{j.namespace}:{j.name}"}
        for j in trail.jobs()
        if needle in j.name.casefold() or needle in j.namespace.casefold()
    ]
    return sorted(hits, key=lambda h: (h["name"].casefold(), h["namespace"], h["type"]))


@router.get("/search", summary="Datasets and jobs whose namespace or name contains q (case-insensitive)")
async def search(
    request: Request,
    _: Actor,
    q: Annotated[str, Query(min_length=1, max_length=1024)],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    hits = await call(request, _search, q)
    return {"results": hits[offset : offset + limit], "total": len(hits)}
