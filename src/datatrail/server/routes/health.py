"""``/healthz``: the process is up, and whether the store answers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from datatrail._version import __version__
from datatrail.server.routes import call

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, Any]:
    """200 with the version when the store answers; 503 (``store_unavailable``) when it does not."""
    await call(request, lambda trail: trail.store.audit_log(1))
    return {"status": "ok", "version": __version__}
