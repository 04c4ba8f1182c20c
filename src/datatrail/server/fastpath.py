"""The lean path of ``POST /api/v1/lineage`` and ``POST /api/v1/lineage/batch``.

OpenLineage producers send one event per request (openlineage-python's
HttpTransport, Airflow), so what a request costs outside the store bounds
ingest. FastAPI's routing (a match against every route), its dependency
resolution (the actor, a plain function, is itself a hop to the thread pool),
the validation of the returned dict and anyio's thread-pool hop cost more CPU
than storing the event. :class:`IngestFastPath` is the innermost middleware:
access control (``server/access.py``: cross-site refusals, 415, tokens, 401,
429), the security headers and the raw-path routing have run when it sees a
request, and it answers the two ingest routes itself, with the same steps in
the same order as the FastAPI routes in ``routes/lineage.py`` (which stay for
the OpenAPI schema and for every other method): the actor (401), the body
(415, 413, 400), the batch's shape (400, 413), then the service call in a
thread — or, for a single event of an admin while the store is storing, the
event queued for the store's writer thread from the loop (``Trail.ingest_soon``)
— and errors through ``server/errors.py`` (``{"error", "detail"}``, no stack
trace). Every other request passes through untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from datatrail.core.limits import MAX_RESPONSE_DEPTH, bounded
from datatrail.server import errors
from datatrail.server.access import refusal, request_actor, request_trail
from datatrail.server.body import decode_json, read_body
from datatrail.server.routes.lineage import checked_batch, ingest_answer, ingest_batch, ingest_one
from datatrail.server.state import API, ServerState
from datatrail.server.ui.auth import secure_raw
from datatrail.service import Trail


class JSONBody(Response):
    """A JSON answer encoded by orjson: the same compact bytes as FastAPI's for these answers."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


async def parse_json(request: Request, limit: int) -> Any:
    """The body as JSON: orjson first; a body it refuses is decoded again by the standard library."""
    body = await read_body(request, limit)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        # NaN, nesting past 1024, lone surrogates, integers past 64 bits, invalid JSON: the
        # standard library decides, so the answer (value or message) is exactly read_json's.
        return decode_json(body)


async def _in_thread(request: Request, fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``fn(trail, *args)`` on the server's ingest threads, with the request's scoped Trail."""
    server: ServerState = request.app.state.server

    def run() -> dict[str, Any]:
        trail: Trail = request_trail(request)
        answer: dict[str, Any] = bounded(fn(trail, *args), MAX_RESPONSE_DEPTH)
        return answer

    return await asyncio.get_running_loop().run_in_executor(server.ingest_threads, run)


async def post_lineage(request: Request) -> Response:
    server: ServerState = request.app.state.server
    principal = request_actor(request)
    event = await parse_json(request, server.max_body)
    if server.opened and getattr(request.state, "access_principal", None) is not None:
        # Queued for the store's writer thread from here: no hop to a thread that would only wait for it.
        # The event is parsed and hashed on the loop (CPU work either way), never a blocking store call.
        future = request_trail(request).ingest_soon(event, actor=principal or "openlineage", detail=False)
        if future is not None:
            answer = ingest_answer(await asyncio.wrap_future(future))
            return JSONBody(bounded(answer, MAX_RESPONSE_DEPTH), status_code=201)
    return JSONBody(await _in_thread(request, ingest_one, event, principal), status_code=201)


async def post_lineage_batch(request: Request) -> Response:
    server: ServerState = request.app.state.server
    principal = request_actor(request)
    events = checked_batch(await parse_json(request, server.max_body), server.max_batch)
    report = await _in_thread(request, ingest_batch, events, principal)
    return JSONBody(report, status_code=200 if report["failed"] else 201)


ROUTES: dict[str, Callable[[Request], Awaitable[Response]]] = {
    API + "/lineage": post_lineage,
    API + "/lineage/batch": post_lineage_batch,
}


class IngestFastPath:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = ROUTES.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await route(request)
        except Exception as exc:  # the answer FastAPI's exception handlers give (server/errors.py)
            response = await errors.respond(request, exc)
        await response(scope, receive, send)


def front_path(scope: Scope) -> str:
    """The path the middleware stack routes a request on: undecoded under ``/api/v1/`` (RawPathMiddleware)."""
    path: str = scope["path"]
    raw = scope.get("raw_path")
    if raw and path.startswith(API + "/"):
        path = raw.decode("latin-1").split("?", 1)[0]
    return path


async def answer(path: str, scope: Scope, receive: Receive, send: Send) -> None:
    """An ingest request (``path`` in :data:`ROUTES`), answered by one layer doing what the middleware stack does.

    The application (server/app.py) calls it in place of its middleware stack while that stack holds
    only datatrail's own layers, whose steps it takes in their order: the undecoded path
    (:func:`front_path`), access control (``server/access.py``: 403, 415, 401, 429, 503), the route
    (errors through ``server/errors.py``) and the security headers (``server/ui/auth.py``) on the
    answer. An error outside the route answers as Starlette's ServerErrorMiddleware does (the 500
    handler's answer, then raised for the server's log). Each layer crossed cost a call, and most a
    wrapped ``send``: about a sixth of a request's CPU in a worker that hands its events on.
    """
    if path != scope["path"]:
        scope = {**scope, "path": path}
    request = Request(scope, receive)
    try:
        response = await refusal(request)
    except Exception as exc:  # ServerErrorMiddleware: the 500 handler's answer, then raised again
        await (await errors.respond(request, exc))(scope, receive, send)
        raise
    if response is None:
        try:
            response = await ROUTES[path](request)
        except Exception as exc:  # the answer FastAPI's exception handlers give (server/errors.py)
            response = await errors.respond(request, exc)
    secure_raw(response.raw_headers, path)
    await response(scope, receive, send)
