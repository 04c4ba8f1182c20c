"""server/protocol.py: an answer's head and body in one write, and every byte as uvicorn alone sends it.

A real uvicorn server (in a thread, on a loopback port) runs a small ASGI
application with either protocol; a raw socket sends each request and reads the
whole answer. The writes to each connection's real transport are counted on
the way through.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from datatrail.server.protocol import HttpProtocol
from tests.pgserver import free_port

WRITES: list[int] = []  # writes to the real transports of the server running now


def counting(base: type[HttpToolsProtocol]) -> type[HttpToolsProtocol]:
    class Counted(base):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: Any) -> None:
            write = transport.write

            def counted(data: bytes) -> None:
                WRITES.append(len(data))
                write(data)

            transport.write = counted  # the real transport still sends every byte
            super().connection_made(transport)

    return Counted


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    while (await receive()).get("more_body"):
        pass
    if path == "/json":
        body = b'{"stored":true}'
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif path == "/parts":  # a known length, in two parts
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"def"})
    elif path == "/stream":  # no length: chunked
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"def"})
    elif path == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/fails":  # started, then an error: the head, then the connection closed
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
        raise RuntimeError("fails after starting")


@contextmanager
def serving(protocol: type[HttpToolsProtocol]) -> Iterator[int]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=counting(protocol), log_level="critical")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=asyncio.run, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(20)


def exchange(port: int, request: bytes) -> bytes:
    """The request sent, and everything the server sends back until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return re.sub(rb"date: [^\r]*\r\n", b"", data)


REQUESTS = {
    "json": b"POST /json HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
    "head": b"HEAD /json HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "parts": b"GET /parts HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "stream": b"GET /stream HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "empty": b"GET /empty HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "fails": b"GET /fails HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    "continue": (
        b"POST /json HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
    ),
    "two": (  # keep-alive: two answers on one connection
        b"POST /json HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}"
        b"POST /json HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
    ),
}
# The writes each request takes with uvicorn's protocol and with the one-write protocol.
WRITE_COUNTS = {
    "json": (2, 1),
    "head": (1, 1),
    "parts": (3, 2),
    "stream": (3, 3),
    "empty": (1, 1),  # a 204: the head alone (empty writes are not counted)
    "fails": (1, 1),
    "continue": (3, 2),  # 100 Continue, then the answer
    "two": (4, 2),
}


@pytest.mark.parametrize("name", list(REQUESTS))
def test_one_write_sends_the_same_bytes_in_fewer_writes(name: str) -> None:
    received, writes = [], []
    for protocol in (HttpToolsProtocol, HttpProtocol):
        with serving(protocol) as port:
            WRITES.clear()
            received.append(exchange(port, REQUESTS[name]))
            writes.append(len([w for w in WRITES if w]))
    assert received[0] == received[1]
    assert received[0].startswith(b"HTTP/1.1 ")
    assert tuple(writes) == WRITE_COUNTS[name]
