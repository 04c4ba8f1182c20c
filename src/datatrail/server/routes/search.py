"""``/api/v1/search``: datasets and jobs whose name or namespace matches the query, in Marquez's shape."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from datatrail.core.errors import InvalidInput
from datatrail.core.limits import MAX_OFFSET
from datatrail.core.patterns import matches  # noqa: F401  (here since the start; tests import it from here)
from datatrail.core.results import SearchHit
from datatrail.core.times import iso
from datatrail.server.routes import MAX_LIMIT, Actor, OptionalName, call
from datatrail.server.state import API
from datatrail.service import Trail

router = APIRouter(prefix=API, tags=["search"])


def hit(h: SearchHit) -> dict[str, Any]:
    """A search hit as Marquez's SearchResult."""
    return {
        "type": h.type,
        "name": h.name,
        "updatedAt": iso(h.updated_at),
        "namespace": h.namespace,
        "nodeId": f"{h.type.lower()}:{h.namespace}:{h.name}",
    }


def search_page(
    trail: Trail,
    q: str,
    kind: str | None = None,
    namespace: str | None = None,
    sort: str = "name",
    before: date | None = None,
    after: date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> dict[str, Any]:
    """Marquez's SearchResultList of one page: the store matches, counts, sorts and pages."""
    found, total = trail.catalog.search(
        q, kind=kind, namespace=namespace, sort=sort, before=before, after=after, limit=limit, offset=offset
    )
    return {"totalCount": total, "results": [hit(h) for h in found]}


def _day(text: str | None, what: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        msg = f"invalid {what} {text!r}: use a date that exists, as YYYY-MM-DD"
        raise InvalidInput(msg) from None


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
    days = _day(before, "before"), _day(after, "after")
    return await call(request, search_page, q, kind, namespace, sort.lower(), *days, limit, offset)
