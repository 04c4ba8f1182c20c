"""``GET /api/v1/events``: the stored raw OpenLineage events, oldest first, paged by id."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from datatrail.core.limits import MAX_EVENT_DEPTH, MAX_INT, bounded
from datatrail.core.times import parse_time
from datatrail.server.routes import MAX_LIMIT, Actor, OptionalName, OptionalTime, call
from datatrail.server.state import API

router = APIRouter(prefix=API, tags=["events"])


@router.get("/events", summary="Stored raw events (id above after_id), oldest first; page on with the last id")
async def list_events(
    request: Request,
    _: Actor,
    since: OptionalTime = None,
    namespace: OptionalName = None,
    after_id: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = MAX_LIMIT,
) -> dict[str, Any]:
    when = parse_time(since, "since") if since is not None else None
    items = await call(request, lambda t: t.catalog.events(when, namespace, after_id, limit))
    # Each event as it could be ingested again: one stored before the depth limit is cut at it.
    return {"events": [{"id": i, "event": bounded(e, MAX_EVENT_DEPTH)} for i, e in items]}
