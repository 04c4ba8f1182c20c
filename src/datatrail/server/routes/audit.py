"""``/api/v1/audit``: the audit log, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from datatrail.server.routes import Actor, OptionalId, OptionalName, OptionalTime, call
from datatrail.server.state import API
from datatrail.service import Trail
from datatrail.store.wire import audit_to_wire

router = APIRouter(prefix=API, tags=["audit"])


@router.get("/audit", summary="Audit entries, newest first: of a dataset, a user, an action (or `x.*`), since a time")
async def audit(
    request: Request,
    _: Actor,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    dataset: OptionalId = None,
    user: OptionalName = None,
    action: OptionalName = None,
    since: OptionalTime = None,
) -> dict[str, Any]:
    def entries(t: Trail) -> list[dict[str, Any]]:
        found = t.audit_entries(dataset=dataset, user=user, action=action, since=since, limit=limit)
        return [audit_to_wire(e) for e in found]

    return {"entries": await call(request, entries)}


@router.get("/integrity", summary="Problems in the store's audit hash chain; empty when sound")
async def integrity(request: Request, _: Actor) -> dict[str, Any]:
    return {"problems": await call(request, lambda t: t.check_store())}
