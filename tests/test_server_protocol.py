"""Requests uvicorn's parser refuses, over raw sockets to a real ``datatrail serve`` (``server/protocol.py``).

Each gets the one error shape (a 4xx with ``{"error", "detail"}``, JSON), the
connection ends cleanly (the whole answer, then the server's end of the stream,
no reset), nothing is stored, and the server goes on serving.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from uvicorn.server import ServerState

from datatrail.server.app import create_app
from datatrail.server.protocol import MAX_FIELDS, MAX_HEAD, MAX_TARGET, HttpProtocol
from tests import httpserver


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpserver.Server]:
    srv = httpserver.start(tmp_path_factory.mktemp("protocol"))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def parse(received: bytes) -> list[Answer]:
    """The whole answers in ``received``, in order."""
    answers = []
    while b"\r\n\r\n" in received:
        head, _, rest = received.partition(b"\r\n\r\n")
        status_line, *fields = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (f.partition(":") for f in fields)}
        length = int(headers["content-length"])
        if len(rest) < length:
            break
        answers.append(Answer(int(status_line.split()[1]), headers, rest[:length]))
        received = rest[length:]
    return answers


def exchange(server: httpserver.Server, request: bytes) -> list[Answer]:
    """Send ``request`` on a new connection; the answers read until the server ends the stream."""
    host, port = server.uri.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65_536):  # a reset raises ConnectionResetError: the test fails
            received += chunk
    return parse(received)


def refused(server: httpserver.Server, request: bytes, status: int, error: str, *fragments: str) -> str:
    """The one answer to ``request``: ``status`` in the JSON shape, then the connection closed."""
    events = stored_events(server)
    answers = exchange(server, request)
    assert len(answers) == 1, answers
    answer = answers[0]
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["connection"] == "close"
    body = json.loads(answer.body)
    assert set(body) == {"error", "detail"}, body
    assert body["error"] == error
    for fragment in fragments:
        assert fragment in body["detail"], body
    assert still_serving(server)
    assert stored_events(server) == events
    assert "Traceback" not in server.log.read_text()
    detail: str = body["detail"]
    return detail


def still_serving(server: httpserver.Server) -> bool:
    return httpx.get(f"{server.uri}/healthz").status_code == 200


def stored_events(server: httpserver.Server) -> int:
    db = Path(server.store.removeprefix("sqlite:///"))
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        count: int = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        return count
    finally:
        conn.close()


def event() -> bytes:
    return json.dumps(
        {
            "eventType": "COMPLETE",
            "eventTime": "2024-05-01T10:00:00+00:00",
            "producer": "https://example.com/tests/protocol",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": str(uuid.uuid4())},
            "job": {"namespace": "protocol", "name": "job"},
            "outputs": [{"namespace": "protocol", "name": "out"}],
        }
    ).encode()


def test_a_request_line_over_64_kb_is_a_json_414(server: httpserver.Server) -> None:
    target = b"/api/v1/runs-by-id?" + b"&".join(b"id=%032x" % i for i in range(2_000))  # ~ 70 KB
    assert len(target) > 70_000
    refused(server, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long", f"{MAX_TARGET:,} bytes")


def test_a_request_target_at_the_limit_is_read(server: httpserver.Server) -> None:
    target = b"/healthz?pad="
    target += b"a" * (MAX_TARGET - len(target))
    [answer] = exchange(server, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.status == 200, answer


def test_a_garbage_request_line_is_a_json_400(server: httpserver.Server) -> None:
    refused(server, b"\x00\x01 garbage\r\n\r\n", 400, "invalid_http", "not valid HTTP/1.1", "Invalid method")


def test_a_bad_header_is_a_json_400(server: httpserver.Server) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n"
    refused(server, request, 400, "invalid_http", "Invalid header token")


def test_an_invalid_chunked_body_is_a_json_400_and_stores_nothing(server: httpserver.Server) -> None:
    body = event()
    request = (
        b"POST /api/v1/lineage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\nzz\r\n0\r\n\r\n"
    )
    refused(server, request, 400, "invalid_http", "chunk size")
    # The same event, chunked correctly, is stored: the refusal was the chunk size's.
    before = stored_events(server)
    good = request.replace(b"\r\nzz\r\n", b"\r\n").replace(b"Host: x", b"Host: x\r\nConnection: close")
    [answer] = exchange(server, good)
    assert answer.status == 201, answer
    assert stored_events(server) == before + 1


def test_too_many_header_fields_are_a_json_431(server: httpserver.Server) -> None:
    fields = b"".join(b"X-Field-%d: y\r\n" % i for i in range(MAX_FIELDS + 1))
    refused(server, b"GET /healthz HTTP/1.1\r\n" + fields + b"\r\n", 431, "request_header_fields_too_large")


def test_a_header_field_too_long_is_refused_before_it_ends(server: httpserver.Server) -> None:
    # No end of the field nor of the head: the answer comes while the field is still arriving.
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: " + b"a" * 200_000
    refused(server, request, 431, "request_header_fields_too_large", "65,536 bytes")


def test_answers_before_a_refused_request_are_sent_first(server: httpserver.Server) -> None:
    """Pipelined: the good requests before the bad one are answered, then the refusal, then the end."""
    good = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    answers = exchange(server, good + good + b"GET /healthz HTTP/1.1\r\nBad Header: y\r\n\r\n" + good)
    assert [a.status for a in answers] == [200, 200, 400], answers
    assert json.loads(answers[-1].body)["error"] == "invalid_http"
    # The refused part is the body of a request queued behind the first: it is never run.
    events, body = stored_events(server), event()
    bad_body = (
        b"POST /api/v1/lineage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\nzz\r\n"
    )
    answers = exchange(server, good + bad_body)
    assert [a.status for a in answers] == [200, 400], answers
    assert stored_events(server) == events
    assert still_serving(server)


def test_bodies_are_not_counted_as_heads(server: httpserver.Server) -> None:
    """Bodies larger than a head may be, each arriving with its head and the next request: all answered."""
    body = b'"' + b" " * 200_000 + b'"'  # JSON, but not an event: the application's own 400
    post = b"POST /api/v1/lineage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    post += b"Content-Length: %d\r\n\r\n" % len(body) + body
    last = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answers = exchange(server, post + post + last)
    assert [(a.status, json.loads(a.body).get("error")) for a in answers] == [
        (400, "invalid_input"),
        (400, "invalid_input"),
        (200, None),
    ], answers
    # Refused by its Content-Length before it is read (413): the parser then reads the body at full speed.
    body = b" " * (11 * 1024 * 1024)
    post = post.split(b"Content-Length")[0] + b"Content-Length: %d\r\n\r\n" % len(body) + body
    answers = exchange(server, post + last)
    assert [(a.status, json.loads(a.body).get("error")) for a in answers] == [
        (413, "payload_too_large"),
        (200, None),
    ], answers


def test_the_refusals_are_in_the_server_log(server: httpserver.Server) -> None:
    refused(server, b"BAD\x7f / HTTP/1.1\r\n\r\n", 400, "invalid_http")
    assert "refused a request: the request is not valid HTTP/1.1" in server.log.read_text()


def test_a_read_holding_a_body_and_the_next_head_counts_only_the_head(tmp_path: Path) -> None:
    """One read of a connection (asyncio reads up to 256 KiB) holding a body larger than a head may be
    and the start of the next head: that head is bounded by its own bytes, not the read's.

    A connection of serve's protocol over a real socket pair, in this process: the first request is
    in the socket before the connection reads, so the first read holds all of it (from a real server,
    how a client's bytes are split into reads is up to the kernel)."""
    app = create_app(f"sqlite:///{tmp_path / 'trail.db'}")
    config = uvicorn.Config(app, http=HttpProtocol, log_config=None, log_level="warning")
    config.load()
    body = b'"' + b" " * (MAX_HEAD + 10_000) + b'"'  # JSON, but not an event: the application's own 400
    first = (
        b"POST /api/v1/lineage HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body + b"GET /healthz HTTP/1.1\r\nHo"
    )
    rest = b"st: x\r\nConnection: close\r\n\r\n"

    async def talk() -> list[Answer]:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * len(first))
        theirs.setblocking(False)
        assert theirs.send(first) == len(first), "the socket pair's buffer holds the first request"
        await loop.connect_accepted_socket(
            lambda: HttpProtocol(config=config, server_state=ServerState(), app_state={}), ours
        )
        received = b""
        while len(parse(received)) < 1:
            received += await loop.sock_recv(theirs, 65_536)
        await loop.sock_sendall(theirs, rest)
        while chunk := await loop.sock_recv(theirs, 65_536):
            received += chunk
        theirs.close()
        return parse(received)

    try:
        answers = asyncio.run(talk())
    finally:
        app.state.server.close()
    assert [(a.status, json.loads(a.body).get("error")) for a in answers] == [
        (400, "invalid_input"),
        (200, None),
    ], answers


def test_serve_uses_the_protocol_only_where_uvicorn_has_what_it_extends(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from datatrail.cli.server import HTTP_PROTOCOL, http_protocol
    from datatrail.server.protocol import compatible

    assert compatible() and http_protocol() == HTTP_PROTOCOL  # the installed uvicorn: ours
    assert capsys.readouterr().err == ""
    monkeypatch.delattr(HttpToolsProtocol, "_should_upgrade")  # a uvicorn that renamed one of them
    assert not compatible()
    assert http_protocol() == "httptools"
    assert capsys.readouterr().err.startswith("warning: this uvicorn lacks methods")
