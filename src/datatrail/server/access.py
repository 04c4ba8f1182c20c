"""Who a request is, from its Bearer token alone; cross-site and guessing protections.

:class:`AccessMiddleware` runs before every route:

- A request that changes something (POST, PUT, PATCH, DELETE) with an ``Origin``
  header naming another site is refused (403), and one to ``/api/v1`` must send
  ``Content-Type: application/json`` (415): a browser cannot send that cross-site
  without a CORS preflight, which this server never grants.
- Once the store has a user (or the server has API keys), every route but
  ``/healthz``, the static files and the UI's login needs a valid token: API
  routes answer 401 without one, UI pages send the browser to the login page.
  The token is checked against the store on every request (no cache), so a
  revoked token fails at once. Headers such as ``X-User`` are never read.
- Guessing is limited (:func:`check_token`, shared with the UI's login): a client
  (IP address) that presented too many different bad tokens, or any client while the
  server saw too many overall, gets 429 with ``Retry-After`` for its bad tokens, and
  its tokens that could be guessed (anything but a user's token, whose secret has 256
  random bits) are not compared until then. A valid user's token is always accepted.
  The client address is the TCP peer; ``datatrail serve --trusted-proxy`` names the
  proxies whose ``X-Forwarded-For`` is believed instead.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from datatrail.core.errors import DatatrailError
from datatrail.core.roles import Principal
from datatrail.core.tokens import parse_token
from datatrail.security.limiter import fingerprint
from datatrail.server.errors import Unauthorized, error_code, error_response
from datatrail.server.state import API, ServerState
from datatrail.service import Trail

SAFE = ("GET", "HEAD", "OPTIONS")
PUBLIC = ("/healthz", "/login", "/logout", "/static/")
PROTECTED = (API + "/", API, "/openapi.json", "/docs", "/redoc")
COOKIE = "datatrail_token"  # the UI's login cookie (server/ui/auth.py)
OPEN = Principal("anonymous", unrestricted=True)
NEED_TOKEN = "this server needs a valid API token: send `Authorization: Bearer <token>` (`datatrail token create`)"


OPEN_RECHECK_S = 1.0  # while a store has no user, how long "no user" is trusted before asking again


def known_auth_required(server: ServerState) -> bool | None:
    """Whether requests need a token, when that is known without asking the store."""
    if server.api_keys or server.users_exist:
        return True
    return False if time.monotonic() < server.open_until else None


def auth_required(server: ServerState) -> bool:
    """Whether requests need a token: API keys are configured, or the store has a user.

    Users are never removed, so once one exists the answer stays true. Until
    then the store is asked at most once a second (the question cost as much
    as the ingest of an event): the first user created from another process
    locks the server within a second.
    """
    known = known_auth_required(server)
    if known is not None:
        return known
    if server.trail.security.has_users():
        server.users_exist = True
        return True
    server.open_until = time.monotonic() + OPEN_RECHECK_S
    return False


def authenticate(server: ServerState, token: str) -> Principal | None:
    """The principal a token belongs to (a user's token, or one of the legacy API keys); None if refused."""
    token = token.strip()
    for key, name in server.api_keys.items():
        if hmac.compare_digest(key.encode(), token.encode()):
            return Principal(name, unrestricted=True)
    return server.trail.security.authenticate(token)


@dataclass(frozen=True)
class TokenCheck:
    """What a presented token came to: its principal, or None and how long guessing is limited (0: not)."""

    principal: Principal | None
    retry_after: int = 0


def check_token(server: ServerState, client: str, token: str, action: str, target: str) -> TokenCheck:
    """Authenticate ``token`` from ``client`` under the bad-token limiter; audit a refusal as ``action``.

    A user's token (``dtk_…``, 256 random bits) is always compared, so a valid one is
    accepted even from a limited client: guessing one is hopeless anyway. Anything
    else (an API key, which people choose) is not compared while the client or the
    server is limited. A refused token is counted and audited (without the token)
    once per client and window, and not at all while limited, so refusals cannot
    flood the audit log.
    """
    wait = server.limiter.retry_after(client)
    if wait and parse_token(token) is None:
        return TokenCheck(None, wait)
    principal = authenticate(server, token)
    if principal is not None:
        return TokenCheck(principal)
    if server.limiter.failed(client, fingerprint(token)) and not wait:
        server.trail.security.record_refusal(action, target[:300], client)
    return TokenCheck(None, wait)


def too_many(wait: int) -> JSONResponse:
    """429 for a bad token while guessing is limited."""
    detail = (
        f"too many bad tokens were sent from this address (or to this server); wait {wait} s"
        " and send a valid token (a user's token is always accepted)"
    )
    return error_response(429, "too_many_requests", detail, {"Retry-After": str(wait)})


def principal_named(server: ServerState, name: str | None) -> Principal | None:
    if name is None:
        return None
    if name in server.api_keys.values():
        return Principal(name, unrestricted=True)
    return server.trail.security.principal_named(name)


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _same_origin(origin: str, request: Request) -> bool:
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return bool(parts.scheme in ("http", "https") and parts.netloc and parts.netloc.lower() == host.lower())


def _json_type(value: str | None) -> bool:
    kind = (value or "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


class AccessMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = await refusal(Request(scope))
        if refused is not None:
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def refusal(request: Request) -> Response | None:
    """The answer that refuses an HTTP request (403, 415, 401, 429, 503), or None: it may go on.

    Records who the request is in ``request.state`` (``access_principal``, ``access_origin``).
    :class:`AccessMiddleware` asks it for every request, the ingest routes' front (server/fastpath.py) for theirs.
    """
    scope = request.scope
    method, path = scope["method"], scope["path"]
    refused = _cross_site(request, method, path)
    if refused is None and not path.startswith(PUBLIC):
        try:
            refused = await _authenticate(request, scope, method, path)
        except DatatrailError as exc:  # the store is down, say: the same answer a route would give
            headers = {"Retry-After": "5"} if exc.http_status == 503 else None
            refused = error_response(exc.http_status, error_code(exc), exc.message, headers)
    return refused


def _cross_site(request: Request, method: str, path: str) -> Response | None:
    if method in SAFE:
        return None
    origin = request.headers.get("origin")
    if origin is not None and not _same_origin(origin, request):
        detail = f"cross-site request refused: Origin {origin[:200]!r} is not this server"
        return error_response(403, "forbidden", detail)
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    if path.startswith(API + "/") and has_body and not _json_type(request.headers.get("content-type")):
        detail = "send the body as JSON with `Content-Type: application/json`"
        return error_response(415, "unsupported_media_type", detail)
    return None


async def _authenticate(request: Request, scope: Scope, method: str, path: str) -> Response | None:
    server: ServerState = scope["app"].state.server
    state = scope.setdefault("state", {})
    state["access_origin"] = client_ip(scope)
    state["access_principal"] = None
    required = known_auth_required(server)
    if required is None:  # the store is asked, in the thread pool (it may block)
        required = await run_in_threadpool(auth_required, server)
    if not required:
        state["access_principal"] = OPEN
        return None
    bearer = _bearer(request)
    # The login cookie is accepted for reading only: a write always needs the header.
    token = bearer or (request.cookies.get(COOKIE) if method in SAFE else None)
    protected = path.startswith(PROTECTED)
    if token is None:
        return error_response(401, "unauthorized", NEED_TOKEN, {"WWW-Authenticate": "Bearer"}) if protected else None
    client = client_ip(scope)
    check = await run_in_threadpool(check_token, server, client, token, "auth.token", f"{method} {path}")
    if check.principal is None:
        if not protected and bearer is None:
            return None  # a stale login cookie: the UI page sends the browser to log in
        if check.retry_after:
            return too_many(check.retry_after)
        detail = "the token is not valid (unknown, expired or revoked); ask an admin for a new one"
        return error_response(401, "unauthorized", detail, {"WWW-Authenticate": "Bearer"})
    state["access_principal"] = check.principal
    return None


def request_trail(request: Request) -> Trail:
    """The Trail for this request: the shared one seen through the request's principal (401 if none)."""
    server = request.app.state.server
    principal = getattr(request.state, "access_principal", None)
    if principal is None:
        if not auth_required(server):
            principal = OPEN
        else:
            raise Unauthorized(NEED_TOKEN)
    origin = getattr(request.state, "access_origin", None) or client_ip(request.scope)
    scoped: Trail = server.trail.scoped(principal, origin)
    return scoped


def request_actor(request: Request) -> str | None:
    """The name writes are recorded under: the token's principal, or None on a server without users."""
    principal = getattr(request.state, "access_principal", None)
    if principal is None:
        server = request.app.state.server
        if server.api_keys or server.users_exist:
            raise Unauthorized(NEED_TOKEN)
        return None
    return None if principal is OPEN else str(principal.name)
