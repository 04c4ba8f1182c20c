"""``/api/v1/runs``: runs by id, and the latest runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from datatrail.server.routes import MAX_LIMIT, Actor, OptionalName, call, unquote
from datatrail.server.state import API
from datatrail.store.wire import run_to_wire

router = APIRouter(prefix=API + "/runs", tags=["runs"])


@router.get("", summary="The latest runs, of every job or of one")
async def list_runs(
    request: Request,
    _: Actor,
    job: OptionalName = None,
    limit: Annotated[int, Query(ge=1, le=100 * MAX_LIMIT)] = 100,
) -> dict[str, Any]:
    return {"runs": await call(request, lambda t: [run_to_wire(r) for r in t.runs(job, limit)])}


@router.get("/{run_id}", summary="One run, with its inputs, outputs, parameters and metrics")
async def get_run(request: Request, run_id: str, _: Actor) -> dict[str, Any]:
    out: dict[str, Any] = await call(request, lambda t: run_to_wire(t.get_run(unquote(run_id))))
    return out
