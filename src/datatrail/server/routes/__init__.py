"""The routes, one module per noun, and what they share: path decoding, paging, the actor."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote as _unquote

from fastapi import Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from datatrail.server.state import state
from datatrail.service import Trail

MAX_LIMIT = 1000


def unquote(value: str) -> str:
    """A path parameter as sent: routes see the raw path, so each segment is decoded here once."""
    return _unquote(value, errors="strict")


class Page:
    """``limit`` (1..1000, default 100) and ``offset`` (>= 0) of a listing."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset

    def apply(self, items: list[Any], key: str) -> dict[str, Any]:
        return {key: items[self.offset : self.offset + self.limit], "total": len(items)}


Paging = Annotated[Page, Depends()]


def actor(request: Request) -> str | None:
    """The principal of the request's token (None when the server needs none); 401 without one."""
    return state(request).principal(request)


Actor = Annotated[str | None, Depends(actor)]


async def call(request: Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking Trail method in the thread pool (opening the store first, if need be)."""

    def run() -> Any:
        trail: Trail = state(request).trail
        return fn(trail, *args, **kwargs)

    return await run_in_threadpool(run)
