"""The routes, one module per noun, and what they share: path decoding, paging, the actor."""

from __future__ import annotations

import base64
import binascii
import json
import unicodedata
from collections.abc import Callable
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import unquote as _unquote

import orjson
from fastapi import Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from datatrail.core.errors import InvalidInput
from datatrail.core.limits import (
    MAX_ID_LENGTH,
    MAX_OFFSET,
    MAX_RESPONSE_DEPTH,
    MAX_TIME_LENGTH,
    bounded,
    check_length,
    plain_json,
)
from datatrail.core.model import MAX_NAME_LENGTH
from datatrail.server.access import request_actor, request_trail
from datatrail.service import Trail

P = ParamSpec("P")
R = TypeVar("R")
MAX_LIMIT = 1000

# Free-text query parameters, each bounded (docs/security.md, "Limits"): a name or namespace,
# a composite id (a ref, a version selector or key, a nodeId), a time.
NameParam = Annotated[str, Query(max_length=MAX_NAME_LENGTH)]
OptionalName = Annotated[str | None, Query(max_length=MAX_NAME_LENGTH)]
IdParam = Annotated[str, Query(max_length=MAX_ID_LENGTH)]
OptionalId = Annotated[str | None, Query(max_length=MAX_ID_LENGTH)]
OptionalTime = Annotated[str | None, Query(max_length=MAX_TIME_LENGTH)]


def unquote(value: str) -> str:
    """A path parameter as sent: routes see the raw path, so each segment is decoded here once.

    Names are stored NFC-normalised, so a name sent in NFD (as macOS spells file names) finds them too.
    A segment longer than ``MAX_ID_LENGTH`` characters once decoded is refused (400).
    """
    try:
        decoded = _unquote(value, errors="strict")
    except UnicodeDecodeError:
        msg = f"the path segment {value!r} is not UTF-8 once percent-decoded; percent-encode names as UTF-8"
        raise InvalidInput(msg) from None
    return unicodedata.normalize("NFC", check_length(decoded, "a path segment", MAX_ID_LENGTH))


class Page:
    """``limit`` (1..1000, default 100) and ``offset`` (>= 0) of a listing."""

    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset

    def apply(self, items: list[Any], key: str) -> dict[str, Any]:
        return {key: items[self.offset : self.offset + self.limit], "total": len(items)}

    def slice(self, items: list[R]) -> list[R]:
        """The page of ``items`` (shape only these: Marquez's objects cost reads each)."""
        return items[self.offset : self.offset + self.limit]


Paging = Annotated[Page, Depends()]

# A keyset page's position: ``cursor`` is the ``nextCursor`` of the page before, opaque to clients.
CursorParam = Annotated[
    str | None,
    Query(max_length=4 * MAX_NAME_LENGTH, description="the nextCursor of the previous page (keyset paging)"),
]
CURSOR_VERSION = "k1"


def encode_cursor(name: str) -> str:
    """The opaque cursor of the page after the dataset ``name`` (URL-safe base64 of a small JSON array).

    >>> encode_cursor("d9"), decode_cursor(encode_cursor("raw/penguins ü"))
    ('WyJrMSIsImQ5Il0', 'raw/penguins ü')
    """
    raw = json.dumps([CURSOR_VERSION, name], separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The name a cursor of :func:`encode_cursor` holds; InvalidInput (400) for anything else."""
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        value = None
    if not (isinstance(value, list) and len(value) == 2 and value[0] == CURSOR_VERSION and isinstance(value[1], str)):
        msg = f"invalid cursor {cursor[:40]!r}: pass the nextCursor of the previous page unchanged, or no cursor"
        raise InvalidInput(msg)
    return str(value[1])


def actor(request: Request) -> str | None:
    """The principal of the request's token (None when the server needs none); 401 without one."""
    return request_actor(request)


Actor = Annotated[str | None, Depends(actor)]


async def call(request: Request, fn: Callable[Concatenate[Trail, P], R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a blocking Trail method in the thread pool (opening the store first, if need be).

    The answer nests at most ``MAX_RESPONSE_DEPTH`` deep: facets stored before events
    were bounded (``MAX_EVENT_DEPTH``) are cut there, so every answer can be serialized.
    """

    def run() -> R:
        # The shared Trail seen through the request's principal: access control and read audit.
        trail: Trail = request_trail(request)
        answer: R = bounded(fn(trail, *args, **kwargs), MAX_RESPONSE_DEPTH)
        return answer

    return await run_in_threadpool(run)


def json_body(answer: dict[str, Any] | list[Any]) -> bytes:
    """The bytes FastAPI answers for ``answer`` (``JSONResponse(jsonable_encoder(…))`` of it cut at
    ``MAX_RESPONSE_DEPTH``, as :func:`call` cuts), written by orjson when the answer holds only values both
    write alike (:func:`~datatrail.core.limits.plain_json`): a hundred Marquez jobs in well under a
    millisecond instead of some 50 ms of the encoder's walk. Return it as ``Response(body,
    media_type="application/json")``."""
    if plain_json(answer, MAX_RESPONSE_DEPTH):
        try:
            return orjson.dumps(answer)
        except orjson.JSONEncodeError:  # a str that is not UTF-8 (a lone surrogate): the standard way says so
            pass
    return bytes(JSONResponse(jsonable_encoder(bounded(answer, MAX_RESPONSE_DEPTH))).body)
