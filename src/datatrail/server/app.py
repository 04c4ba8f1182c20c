"""The FastAPI application: :func:`create_app` over one store.

The application is stateless apart from its store connection, so several
processes (``--workers``, or several hosts behind a load balancer) can serve
one PostgreSQL store.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import cast

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from datatrail._version import __version__
from datatrail.config import locate
from datatrail.server import errors, fastpath, memory, ui
from datatrail.server.access import AccessMiddleware
from datatrail.server.body import DEFAULT_MAX_BODY
from datatrail.server.fastpath import IngestFastPath
from datatrail.server.routes import (
    audit,
    column_lineage,
    events,
    grants,
    health,
    lineage,
    marquez,
    namespaces,
    runs,
    search,
    store_api,
)
from datatrail.server.routes import ml as ml_routes
from datatrail.server.state import API, ServerState
from datatrail.server.ui.auth import RawPagePath, SecurityHeaders
from datatrail.store import Store


class RawPathMiddleware:
    """Route ``/api/v1/…`` on the undecoded path, so ``%2F`` inside a segment is not a separator.

    Namespaces and names hold slashes (``s3://bucket``, ``raw/penguins``): a
    client sends each path parameter percent-encoded, and the routes decode
    their parameters themselves (:func:`datatrail.server.routes.unquote`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(API + "/"):
            raw = scope.get("raw_path")
            if raw:
                scope = {**scope, "path": raw.decode("latin-1").split("?", 1)[0]}
        await self.app(scope, receive, send)


class DatatrailAPI(FastAPI):
    """FastAPI, with the two ingest routes answered in one layer (:func:`datatrail.server.fastpath.answer`).

    Only while its middleware stack is the one :func:`create_app` builds (Starlette's and
    FastAPI's outer layers doing nothing for these requests: no root path, no body limit of
    FastAPI's own, no debug, FastAPI's telemetry not configured); anything else added, and
    every request goes through the whole stack.
    """

    use_front = True  # False: every request goes through the whole stack (tests/test_ingest_fastpath.py compares)
    front = False  # whether POST /api/v1/lineage[/batch] skip the middleware stack (known once it is built)

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        own: list[object] = [RawPathMiddleware, SecurityHeaders, RawPagePath, AccessMiddleware, IngestFastPath]
        self.front = (
            self.use_front
            and [cast(object, m.cls) for m in self.user_middleware] == own
            and not self.root_path
            and not self.debug
            and getattr(self, "max_body_size", None) is None
            and self.exception_handlers.get(Exception) is errors.unexpected
        )
        return stack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front and scope["type"] == "http" and scope["method"] == "POST":
            path = fastpath.front_path(scope)
            if path in fastpath.ROUTES and not self._telemetry_on(scope):
                scope["app"] = self
                await fastpath.answer(path, scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _telemetry_on(self, scope: Scope) -> bool:
        """FastAPI's own test for its native telemetry (then the whole stack runs, as it wraps it)."""
        native = getattr(self, "_native_telemetry", None)
        return "fastapi.telemetry" in scope or (native is not None and bool(native.enabled()))


def parse_api_keys(text: str | None) -> dict[str, str]:
    """``name=token,other=token2`` (or bare tokens, named ``token-1``…) → {token: name}."""
    keys: dict[str, str] = {}
    for i, item in enumerate(filter(None, (p.strip() for p in (text or "").split(","))), 1):
        name, sep, token = item.partition("=")
        keys[token if sep else name] = name if sep else f"token-{i}"
    return keys


def create_app(
    store: Store | str,
    *,
    api_keys: Mapping[str, str] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    max_batch: int = 1000,
    long_running: bool = False,
) -> FastAPI:
    """The datatrail REST API over ``store`` (a URI, or a Store passed in).

    ``api_keys`` maps each accepted Bearer token to the name it acts as; with
    none, requests need no token. Request bodies may be gzip-encoded and are
    refused with 413 past ``max_body`` bytes after decompression. A
    ``long_running`` server (``datatrail serve``) trims its heap periodically
    (``server/memory.py``).

    >>> app = create_app("sqlite:////srv/trail.db")  # doctest: +SKIP
    >>> # uvicorn.run(app)
    """
    server = ServerState(store, api_keys=api_keys, max_body=max_body, max_batch=max_batch)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = []
        if long_running:  # the periodic trim, and the memory log when asked for (server/memory.py)
            tasks = [asyncio.create_task(memory.trim_periodically()), asyncio.create_task(memory.log_periodically())]
        yield
        for task in tasks:
            task.cancel()
        server.close()

    app = DatatrailAPI(
        lifespan=lifespan,
        title="datatrail",
        version=__version__,
        description="Dataset versions, runs and lineage; OpenLineage ingest.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.server = server
    errors.install(app)
    for module in (health, lineage, column_lineage, namespaces, runs, marquez, search, audit, events, store_api):
        app.include_router(module.router)
    app.include_router(ml_routes.router)
    app.include_router(grants.router)  # issue 6: owners grant through the server
    app.add_middleware(IngestFastPath)  # innermost: POST /api/v1/lineage[/batch] without the routing
    app.add_middleware(AccessMiddleware)  # tokens, cross-site refusals, 429 (server/access.py)
    ui.install(app)
    app.add_middleware(RawPathMiddleware)
    return app


def app_from_env() -> FastAPI:
    """The application ``datatrail serve`` runs in each worker, configured through the environment."""
    store = os.environ.get("DATATRAIL_SERVER_STORE") or os.environ.get("DATATRAIL_URI")
    if not store:
        store = locate().uri
    max_body = int(os.environ.get("DATATRAIL_SERVER_MAX_BODY", DEFAULT_MAX_BODY))
    memory.limit_arenas()  # before the worker's threads start
    memory.limit_sqlite()
    memory.limit_lineage_cache()  # before the store opens its cache
    keys = parse_api_keys(os.environ.get("DATATRAIL_API_KEYS"))
    return create_app(store, api_keys=keys, max_body=max_body, long_running=True)
