"""``/api/v1/audit``: the audit log, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from datatrail.core.errors import InvalidInput
from datatrail.server.routes import Actor, call
from datatrail.server.state import API
from datatrail.service import Trail
from datatrail.store.wire import audit_to_wire

router = APIRouter(prefix=API, tags=["audit"])


@router.get("/audit", summary="The latest audit entries, newest first")
async def audit(request: Request, _: Actor, limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> dict[str, Any]:
    return {"entries": await call(request, lambda t: [audit_to_wire(e) for e in t.store.audit_log(limit)])}


def _integrity(trail: Trail) -> list[str]:
    check = getattr(trail.store, "check_integrity", None)
    if check is None:
        msg = "this store cannot check its own integrity"
        raise InvalidInput(msg)
    problems: list[str] = check()
    return problems


@router.get("/integrity", summary="Problems in the store's audit hash chain; empty when sound")
async def integrity(request: Request, _: Actor) -> dict[str, Any]:
    return {"problems": await call(request, _integrity)}
