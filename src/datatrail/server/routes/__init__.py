"""The routes, one module per noun, and what they share: path decoding, paging, the actor."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any
from urllib.parse import unquote as _unquote

from fastapi import Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from datatrail.core.errors import InvalidInput
from datatrail.core.limits import MAX_RESPONSE_DEPTH, bounded
from datatrail.server.access import request_actor, request_trail
from datatrail.service import Trail

MAX_LIMIT = 1000


def unquote(value: str) -> str:
    """A path parameter as sent: routes see the raw path, so each segment is decoded here once.

    Names are stored NFC-normalised, so a name sent in NFD (as macOS spells file names) finds them too.
    """
    try:
        decoded = _unquote(value, errors="strict")
    except UnicodeDecodeError:
        msg = f"the path segment {value!r} is not UTF-8 once percent-decoded; percent-encode names as UTF-8"
        raise InvalidInput(msg) from None
    return unicodedata.normalize("NFC", decoded)


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
    return request_actor(request)


Actor = Annotated[str | None, Depends(actor)]


async def call(request: Request, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking Trail method in the thread pool (opening the store first, if need be).

    The answer nests at most ``MAX_RESPONSE_DEPTH`` deep: facets stored before events
    were bounded (``MAX_EVENT_DEPTH``) are cut there, so every answer can be serialized.
    """

    def run() -> Any:
        # The shared Trail seen through the request's principal: access control and read audit.
        trail: Trail = request_trail(request)
        return bounded(fn(trail, *args, **kwargs), MAX_RESPONSE_DEPTH)

    return await run_in_threadpool(run)
