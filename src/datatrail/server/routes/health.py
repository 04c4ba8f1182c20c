"""``/healthz``: the process is up, and whether the store answers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from datatrail._version import __version__
from datatrail.server.state import state

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    """200 with the version when the store answers; 503 (``store_unavailable``) when it does not."""
    # Unauthenticated: it touches the store without a principal and returns nothing from it.
    await run_in_threadpool(lambda: state(request).trail.audit_checkpoint())
    return {"status": "ok", "version": __version__}
