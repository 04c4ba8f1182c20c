"""uvicorn's HTTP protocol, with an answer's head and body sent in one write.

uvicorn writes a response's status line and headers when the application sends
``http.response.start``, and the body in a second write when it sends
``http.response.body``: two loopback sends per request, each waking the client,
which then reads twice. For the one-event ingest requests that was the largest
single cost of a worker that hands its events to another (docs/benchmarks.md,
"Round eight: SQLite and the request's CPU"). :class:`OneWriteProtocol` is
uvicorn's httptools protocol whose request cycles write through
:class:`HeldHead`: the head of a response that declares its ``Content-Length``
is held back and written with the first part of its body. Everything else
(a chunked or streamed body, HEAD, 204, ``100 Continue``) is written as
uvicorn writes it, and so is every byte: only the number of writes changes.
``datatrail serve`` runs it (``uvicorn.run(http=PROTOCOL)``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

PROTOCOL = "datatrail.server.protocol:OneWriteProtocol"


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


class OneWriteProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose responses go out in one write (see the module docstring)."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        cycle.transport = HeldHead(cycle.transport, cycle)  # type: ignore[assignment]
        super()._start_asgi_task(cycle, app)
