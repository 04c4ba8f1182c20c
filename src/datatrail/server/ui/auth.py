"""The UI's session (a token in an HttpOnly cookie), its security headers and raw-path routing."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datatrail.core.errors import DatatrailError
from datatrail.core.limits import MAX_ID_LENGTH
from datatrail.server import access
from datatrail.server.state import state
from datatrail.server.ui import hooks

COOKIE = "datatrail_token"
MAX_FORM = 16 * 1024

CSP = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none';"
    " form-action 'self'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}
# FastAPI's interactive API docs load Swagger UI from a CDN with an inline script.
CSP_EXEMPT = ("/docs", "/docs/oauth2-redirect")

# Pages whose path segments are percent-encoded values (namespaces and names hold '/').
RAW_PREFIXES = ("/namespaces/", "/datasets/", "/jobs/", "/runs/", "/environments/")


def secure(headers: MutableHeaders, path: str) -> None:
    """Add the security headers an answer to ``path`` lacks (:class:`SecurityHeaders`, the ingest front)."""
    exempt = path in CSP_EXEMPT
    for key, value in HEADERS.items():
        if key not in headers and not (exempt and key == "content-security-policy"):
            headers[key] = value


_NAMES = frozenset(key.encode("latin-1") for key in HEADERS)
_RAW = {
    exempt: [
        (key.encode("latin-1"), value.encode("latin-1"))
        for key, value in HEADERS.items()
        if not (exempt and key == "content-security-policy")
    ]
    for exempt in (False, True)
}


def secure_raw(raw: list[tuple[bytes, bytes]], path: str) -> None:
    """:func:`secure` on an answer's raw headers (lower-case names, as Starlette keeps them): the same headers
    in the same order. An answer that has none of them (every ingest answer) takes the encoded list at once:
    ``MutableHeaders`` looks each one up and encodes it, a few microseconds of every request."""
    if any(name in _NAMES for name, _ in raw):
        secure(MutableHeaders(raw=raw), path)
    else:
        raw.extend(_RAW[path in CSP_EXEMPT])


class SecurityHeaders:
    """Every response gets the Content-Security-Policy, nosniff and no framing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                secure(MutableHeaders(scope=message), path)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RawPagePath:
    """Route the UI's entity pages on the undecoded path, like ``/api/v1``: ``%2F`` stays in its segment."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(RAW_PREFIXES):
            raw = scope.get("raw_path")
            if raw:
                scope = {**scope, "path": raw.decode("latin-1").split("?", 1)[0]}
        await self.app(scope, receive, send)


def session_principal(request: Request) -> str | None:
    """The principal whose token (the login cookie) ``server/access.py`` accepted for this request, or None.

    The token was checked there, under the bad-token limiter, once per request.
    """
    principal = getattr(request.state, "access_principal", None)
    return None if principal is None or principal is access.OPEN else str(principal.name)


def needs_login(request: Request) -> bool:
    """True when the server asks for a token and the request has no valid one."""
    server = state(request)
    if not hooks.auth_enabled(server):
        return False
    principal = session_principal(request)
    request.state.principal = principal
    return principal is None


def login_target(request: Request) -> str:
    """Where the login page sends the browser back to: this page."""
    path = request.url.path
    query = request.url.query
    return "/login?next=" + quote(path + (f"?{query}" if query else ""), safe="")


def safe_next(target: str | None) -> str:
    """A local path to go to after login; anything else (``//evil``, ``https://…``, too long) goes home."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target if len(target) <= MAX_ID_LENGTH else "/"


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (small; the login form) as a dict."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            break
    parsed = parse_qs(body[:MAX_FORM].decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def page_context(request: Request) -> dict[str, Any]:
    """What the page header shows: who is signed in, whether login exists, whether the audit link does."""
    server = state(request)
    principal = getattr(request.state, "principal", None)
    try:
        return {
            "auth": hooks.auth_enabled(server),
            "principal": principal,
            "admin": hooks.is_admin(server, principal),
        }
    except DatatrailError:  # the store is down: the error page still renders
        return {"auth": False, "principal": None, "admin": False}
