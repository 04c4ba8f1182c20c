"""``/api/v1/search``: datasets and jobs whose name or namespace matches the query, in Marquez's shape."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from datatrail.core.errors import InvalidInput
from datatrail.core.limits import MAX_OFFSET
from datatrail.core.patterns import matches  # noqa: F401  (here since the start; tests import it from here)
from datatrail.core.times import iso
from datatrail.server.routes import MAX_LIMIT, Actor, OptionalName, call
from datatrail.server.state import API
from datatrail.service import Trail

router = APIRouter(prefix=API, tags=["search"])


def _search(
    trail: Trail,
    q: str,
    kind: str | None = None,
    namespace: str | None = None,
    sort: str = "name",
    before: str | None = None,
    after: str | None = None,
) -> list[dict[str, Any]]:
    hits: list[dict[str, Any]] = []
    if kind in (None, "dataset"):
        hits += [
            {
                "type": "DATASET",
                "name": d.name,
                "updatedAt": iso(d.created_at),
                "namespace": d.namespace,
                "nodeId": f"dataset:{d.namespace}:{d.name}",
            }
            for d in trail.datasets(namespace, match=q)
        ]
    if kind in (None, "job"):
        hits += [
            {
                "type": "JOB",
                "name": j.name,
                "updatedAt": iso(j.created_at),
                "namespace": j.namespace,
                "nodeId": f"job:{j.namespace}:{j.name}",
            }
            for j in trail.jobs(namespace, match=q)
        ]
    if before is not None:
        hits = [h for h in hits if h["updatedAt"] is not None and h["updatedAt"][:10] < before]
    if after is not None:
        hits = [h for h in hits if h["updatedAt"] is not None and h["updatedAt"][:10] > after]
    hits.sort(key=lambda h: (h["name"].casefold(), h["namespace"], h["type"]))
    if sort == "updated_at":
        hits.sort(key=lambda h: h["updatedAt"] or "", reverse=True)
    return hits


DAY = Annotated[str | None, Query(max_length=10, pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD")]


@router.get(
    "/search",
    summary="Datasets and jobs whose name or namespace matches q (Marquez's SearchResultList; % and _ are wildcards)",
)
async def search(
    request: Request,
    _: Actor,
    q: Annotated[str, Query(min_length=1, max_length=1024)],
    filter: Annotated[str | None, Query(max_length=16, description="dataset or job")] = None,
    sort: Literal["name", "updated_at", "NAME", "UPDATED_AT"] = "name",
    namespace: OptionalName = None,
    before: DAY = None,
    after: DAY = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    kind = filter.lower() if filter else None
    if kind not in (None, "dataset", "job"):
        msg = f"invalid filter {filter!r}: use dataset or job"
        raise InvalidInput(msg)
    hits = await call(request, _search, q, kind, namespace, sort.lower(), before, after)
    return {"totalCount": len(hits), "results": hits[offset : offset + limit]}
