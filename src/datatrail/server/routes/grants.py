"""``/api/v1/grants``: give and take back roles, for admins and (inside their namespaces) owners.

Users and tokens are made where the store is (`datatrail user`, `datatrail token`);
grants can also be given through the server, so an owner of ``team-*`` can let a
colleague read ``team-x`` without access to the database. Each change is audited.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from datatrail.core.errors import InvalidInput
from datatrail.server.body import read_json
from datatrail.server.routes import Actor, call
from datatrail.server.state import API, state

router = APIRouter(prefix=API + "/grants", tags=["grants"])


async def _grant_body(request: Request) -> tuple[str, str, str]:
    body = await read_json(request, state(request).max_body)
    fields = ("user", "role", "pattern")
    if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in fields):
        msg = 'the body is {"user": "...", "role": "viewer|editor|owner", "pattern": "namespace or glob"}'
        raise InvalidInput(msg)
    return body["user"], body["role"], body["pattern"]


@router.post("", status_code=201, summary="Give a user a role on the namespaces matching a pattern")
async def add_grant(request: Request, _: Actor) -> dict[str, Any]:
    user, role, pattern = await _grant_body(request)
    added = await call(request, lambda t: t.grant(user, role, pattern))
    return {"user": user, "role": role, "pattern": pattern, "added": added}


@router.post("/revoke", summary="Take a grant back (the same user, role and pattern)")
async def remove_grant(request: Request, _: Actor) -> dict[str, Any]:
    user, role, pattern = await _grant_body(request)
    await call(request, lambda t: t.revoke(user, role, pattern))
    return {"user": user, "role": role, "pattern": pattern, "revoked": True}
