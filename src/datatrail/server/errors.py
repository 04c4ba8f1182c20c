"""The one place that maps errors to HTTP statuses: every error is ``{"error", "detail"}`` JSON.

A :class:`~datatrail.core.errors.DatatrailError` answers its ``http_status``; request
validation errors answer 400; anything unexpected answers 500 with no stack
trace (the trace goes to the server log).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from datatrail.core.errors import DatatrailError

log = logging.getLogger("datatrail.server")


class PayloadTooLarge(DatatrailError):
    """A request body (after decompression) larger than the server accepts."""

    http_status = 413


class UnsupportedMediaType(DatatrailError):
    """A body in an encoding or content type the server does not read."""

    http_status = 415


class InvalidHttp(DatatrailError):
    """A request that is not HTTP/1.1 (refused by the connection's parser, ``server/protocol.py``)."""

    http_status = 400


class UriTooLong(DatatrailError):
    """A request target (path and query) longer than the server reads."""

    http_status = 414


class RequestHeaderFieldsTooLarge(DatatrailError):
    """More header fields, or more bytes of them, than the server reads."""

    http_status = 431


class Unauthorized(DatatrailError):
    """No valid ``Authorization: Bearer <token>`` header."""

    http_status = 401


def error_code(exc: Exception) -> str:
    """``NotFound`` → ``not_found``: the class name in snake case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def error_response(status: int, error: str, detail: Any, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status, headers=headers)


async def _datatrail_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DatatrailError)
    if exc.http_status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc.message)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    if exc.http_status == 503:
        headers = {"Retry-After": "5"}
    return error_response(exc.http_status, error_code(exc), exc.message, headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    # Only location and message: the raw input and context may not be JSON, and may be large.
    problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
    return error_response(400, "invalid_input", problems)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    names = {404: "not_found", 405: "method_not_allowed"}
    return error_response(exc.status_code, names.get(exc.status_code, "http_error"), exc.detail, exc.headers)


async def _client_gone(request: Request, exc: Exception) -> JSONResponse:
    # The connection ended before the body did (the client left, or server/protocol.py refused
    # the rest of the request): not a bug, and no one reads this answer.
    log.info("%s %s: the connection ended before the request's body", request.method, request.url.path)
    return error_response(400, "client_disconnected", "the connection ended before the request's body; send it again")


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return error_response(500, "internal", f"unexpected {type(exc).__name__}; see the server log")


async def respond(request: Request, exc: Exception) -> JSONResponse:
    """The answer the handlers below give ``exc`` (for a route answered outside FastAPI's routing)."""
    if isinstance(exc, DatatrailError):
        return await _datatrail_error(request, exc)
    if isinstance(exc, ClientDisconnect):
        return await _client_gone(request, exc)
    return await unexpected(request, exc)


def install(app: FastAPI) -> None:
    app.add_exception_handler(DatatrailError, _datatrail_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, unexpected)
