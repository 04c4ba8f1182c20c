"""Request bodies: gzip or plain, bounded in size after decompression, parsed as JSON."""

from __future__ import annotations

import json
import zlib
from typing import Any

from fastapi import Request

from datatrail.core.errors import InvalidInput
from datatrail.server.errors import PayloadTooLarge, UnsupportedMediaType

DEFAULT_MAX_BODY = 10 * 1024 * 1024


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body is larger than {limit} bytes (after decompression); send less at once")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, decompressed; PayloadTooLarge as soon as it passes ``limit`` bytes."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip"):
        msg = f"Content-Encoding {encoding!r} is not supported; send gzip or an uncompressed body"
        raise UnsupportedMediaType(msg)
    gzipped = encoding != "identity"
    declared = request.headers.get("content-length", "")
    if not gzipped and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    inflater = zlib.decompressobj(wbits=31) if gzipped else None
    parts: list[bytes] = []
    total = 0
    try:
        async for chunk in request.stream():
            if inflater is None:
                data = chunk
            else:
                # max_length bounds the memory a gzip bomb can take: at most limit + 1 bytes are inflated.
                data = inflater.decompress(inflater.unconsumed_tail + chunk, limit + 1 - total)
                while inflater.unconsumed_tail and total + len(data) <= limit:
                    data += inflater.decompress(inflater.unconsumed_tail, limit + 1 - total - len(data))
            total += len(data)
            if total > limit:
                raise _too_large(limit)
            parts.append(data)
        if inflater is not None:
            data = inflater.flush()
            total += len(data)
            if total > limit:
                raise _too_large(limit)
            parts.append(data)
            if not inflater.eof:
                msg = "the gzip body is truncated; send the whole stream"
                raise InvalidInput(msg)
    except zlib.error as exc:
        msg = f"the body is not valid gzip ({exc}); compress it with gzip or drop Content-Encoding"
        raise InvalidInput(msg) from None
    return b"".join(parts)


def _no_constant(name: str) -> Any:
    msg = f"the body holds {name}, which JSON does not allow; send the number as a string"
    raise InvalidInput(msg)


async def read_json(request: Request, limit: int) -> Any:
    return decode_json(await read_body(request, limit))


def decode_json(body: bytes) -> Any:
    """A body as JSON (the standard library's rules); InvalidInput saying what is wrong otherwise."""
    try:
        return json.loads(body, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        msg = f"the body is not valid JSON: {exc}"
        raise InvalidInput(msg) from None
    except RecursionError:
        msg = "the body's JSON is nested too deeply; no OpenLineage event needs that"
        raise InvalidInput(msg) from None
