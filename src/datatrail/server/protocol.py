"""The HTTP/1.1 connection of ``datatrail serve``: uvicorn's, refusing bad requests in the JSON error shape,
each answer's head and body in one write.

uvicorn's parser answers a request it cannot parse (a bad request line or
header, an invalid chunked body, a request target past the 65,535 bytes its
URL parser reads) with a plain-text ``400 Invalid HTTP request received.``
before the application sees it. :class:`HttpProtocol` answers these as every
other error is answered (``{"error", "detail"}``, ``server/errors.py``): 400
``invalid_http`` with the parser's reason, 414 ``uri_too_long``, 431
``request_header_fields_too_large``. It also bounds what a request's head may
hold while it arrives: uvicorn keeps a request target and header fields of
any length in memory until they end.

uvicorn writes a response's status line and headers when the application sends
``http.response.start``, and the body in a second write when it sends
``http.response.body``: two loopback sends per request, each waking the client,
which then reads twice. For the one-event ingest requests that was the largest
single cost of a worker that hands its events to another (docs/benchmarks.md,
"Round eight: SQLite and the request's CPU"). So the request cycles write
through :class:`HeldHead`: the head of a response that declares its
``Content-Length`` is held back and written with the first part of its body.
Everything else (a chunked or streamed body, HEAD, 204, ``100 Continue``) is
written as uvicorn writes it, and so is every byte: only the number of writes
changes.

    >>> # uvicorn.run(app, http="datatrail.server.protocol:HttpProtocol")
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from datatrail.core.errors import DatatrailError
from datatrail.server.errors import InvalidHttp, RequestHeaderFieldsTooLarge, UriTooLong, error_code

MAX_TARGET = 65_535  # the most httptools.parse_url reads
MAX_FIELDS = 100
MAX_FIELD_BYTES = 65_536  # names and values together
# A head still arriving past this cannot fit the limits above (a request line of a method, the
# target and a version; each field's ": " and CRLF): refused before the field that is too long ends.
MAX_HEAD = 1024 + MAX_TARGET + MAX_FIELD_BYTES + 4 * MAX_FIELDS
LINGER = 2.0  # seconds a refused connection waits for the client to close its end (see HttpProtocol._close)


# uvicorn's own methods this protocol calls or extends: none is public API, so `datatrail serve`
# uses this protocol only where they all exist (see :func:`compatible`).
UVICORN_METHODS = (
    "_unset_keepalive_if_required",
    "_should_upgrade",
    "handle_websocket_upgrade",
    "_unsupported_upgrade_warning",
    "on_message_begin",
    "on_url",
    "on_header",
    "on_headers_complete",
    "on_message_complete",
    "on_response_complete",
    "_start_asgi_task",
)


def compatible() -> bool:
    """Whether the installed uvicorn has every method :class:`HttpProtocol` relies on (tested with 0.55)."""
    return all(callable(getattr(HttpToolsProtocol, name, None)) for name in UVICORN_METHODS)


class _Refused(Exception):
    """Raised in a parser callback: the parser stops, and its error carries this as ``__context__``."""

    def __init__(self, error: DatatrailError) -> None:
        super().__init__(error.message)
        self.error = error


def answer(error: DatatrailError, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The whole response refusing a request with ``error``: JSON, then the connection closes."""
    body = json.dumps({"error": error_code(error), "detail": error.message}).encode()
    head = [STATUS_LINE[error.http_status]]
    for name, value in [
        *default_headers,
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"connection", b"close"),
    ]:
        head += [name, b": ", value, b"\r\n"]
    return b"".join([*head, b"\r\n", body])


def refusal(exc: httptools.HttpParserError) -> DatatrailError:
    """What the parser's error means for the client: ours when a callback refused, else ``invalid_http``."""
    cause = exc.__context__
    if isinstance(cause, _Refused):
        return cause.error
    # A callback's own error (the URL parser's, in uvicorn's on_headers_complete) says more than
    # "`on_headers_complete` callback error".
    reason = str(cause) if isinstance(cause, httptools.HttpParserError) else str(exc)
    return InvalidHttp(
        f"the request is not valid HTTP/1.1 ({reason or 'unparsable'}); fix the client or proxy that sent it"
    )


class HeldHead:
    """One request cycle's transport: the head of a fixed-length answer waits for its body.

    The cycle writes the head as soon as its response has started; if the
    response has a length and a body to come, the head is kept and prefixed to
    the next write. Closing the transport writes a held head first (an
    application that fails after starting its answer: the client sees what
    uvicorn alone would have sent). Every other attribute is the transport's.
    """

    __slots__ = ("_cycle", "_head_seen", "_held", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self._transport = transport
        self._cycle = cycle
        self._held: bytes | None = None
        self._head_seen = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + bytes(data))
            return
        cycle = self._cycle
        if not self._head_seen and cycle.response_started:  # the first write once started is the head
            self._head_seen = True
            body_follows = cycle.expected_content_length > 0 and cycle.scope["method"] != "HEAD"
            if cycle.chunked_encoding is False and body_follows:
                self._held = bytes(data)
                return
        self._transport.write(data)

    def close(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing malformed and oversized requests with a JSON answer,
    each answer in one write (see the module docstring)."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        cycle.transport = HeldHead(cycle.transport, cycle)  # type: ignore[assignment]
        super()._start_asgi_task(cycle, app)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._heads = 0  # heads read whole on this connection
        self._head_bytes = 0
        self._fields = 0
        self._field_bytes = 0
        self._refused = False
        self._pending: bytes | None = None

    def data_received(self, data: bytes) -> None:
        if self._refused:  # the rest of a refused request, or whatever follows it: never parsed
            return
        self._unset_keepalive_if_required()
        in_head, heads = self._in_head, self._heads
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            self.refuse(refusal(exc))
            return
        if in_head and self._heads == heads:
            # All of ``data`` is the head still arriving. A read in which a request ends is not
            # counted (the next head's first bytes in it go uncounted: at most one read more).
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD:
                self.refuse(self._too_many_field_bytes())

    def _too_many_field_bytes(self) -> RequestHeaderFieldsTooLarge:
        return RequestHeaderFieldsTooLarge(
            f"the request's header fields are more than {MAX_FIELD_BYTES:,} bytes; send fewer or shorter ones"
        )

    # Parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._fields = 0
        self._field_bytes = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_TARGET:
            msg = (
                f"the request target (path and query) is longer than {MAX_TARGET:,} bytes;"
                " ask for less in one request (fewer or shorter parameters)"
            )
            raise _Refused(UriTooLong(msg))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._fields += 1
        self._field_bytes += len(name) + len(value)
        if self._fields > MAX_FIELDS:
            msg = f"the request has more than {MAX_FIELDS} header fields; send fewer"
            raise _Refused(RequestHeaderFieldsTooLarge(msg))
        if self._field_bytes > MAX_FIELD_BYTES:
            raise _Refused(self._too_many_field_bytes())

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._heads += 1
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True
        super().on_message_complete()

    def refuse(self, error: DatatrailError) -> None:
        """Answer ``error`` and close, once the requests before the refused one are answered."""
        self._refused = True
        self.flow.resume_reading()  # what the client still sends is read and dropped (see _close)
        prefix = f"{self.client[0]}:{self.client[1]} - " if self.client else ""
        self.logger.warning("%srefused a request: %s", prefix, error.message)
        response = answer(error, self.server_state.default_headers)
        earlier = bool(self.pipeline)  # requests parsed before this one, queued behind a running one
        cycle = self.cycle
        if cycle is not None and cycle.more_body and not cycle.response_complete:
            # The refused part is this request's body: its application gets a disconnect, its answer is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
            queued = [entry for entry in self.pipeline if entry[0] is cycle]
            if queued:
                self.pipeline.remove(queued[0])
                earlier = True  # it waited for a running request
            elif cycle.response_started:  # an answer is under way: it cannot be followed by another
                self._close(b"")
                return
        elif cycle is not None and not cycle.response_complete:
            earlier = True  # a whole request is still being answered
        if earlier:
            self._pending = response  # sent by on_response_complete after the last earlier answer
            return
        self._close(response)

    def _close(self, response: bytes) -> None:
        """Send ``response``, then end the connection without a reset.

        Closing a socket with unread bytes (the rest of a long request line, a body) sends
        a TCP reset, and a client may lose the answer to it. So the answer is followed by
        our end of the stream, and the socket closes when the client ends its own (uvicorn's
        ``eof_received``), or after ``LINGER`` seconds; what arrives meanwhile is dropped.
        """
        if self.transport.is_closing():  # the client went away: no one to answer
            return
        self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER, self.transport.close)
        else:  # TLS has no half-close
            self.transport.close()

    def on_response_complete(self) -> None:
        if self._pending is not None and not self.pipeline:
            self.server_state.total_requests += 1
            self._close(self._pending)
            return
        super().on_response_complete()
