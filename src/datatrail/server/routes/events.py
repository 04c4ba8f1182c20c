"""``GET /api/v1/events``: the stored raw OpenLineage events, oldest first, paged by id."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from datatrail.core.errors import InvalidInput
from datatrail.server.routes import MAX_LIMIT, Actor, call
from datatrail.server.state import API

router = APIRouter(prefix=API, tags=["events"])


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        msg = f"invalid since {value!r}: give an ISO 8601 time such as 2024-05-01T12:00:00Z"
        raise InvalidInput(msg) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@router.get("/events", summary="Stored raw events (id above after_id), oldest first; page on with the last id")
async def list_events(
    request: Request,
    _: Actor,
    since: str | None = None,
    namespace: str | None = None,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = MAX_LIMIT,
) -> dict[str, Any]:
    when = _since(since)
    items = await call(request, lambda t: t.store.events(when, namespace, after_id, limit))
    return {"events": [{"id": i, "event": e} for i, e in items]}
