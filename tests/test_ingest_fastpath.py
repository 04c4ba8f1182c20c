"""The lean path of the ingest routes (server/fastpath.py) answers exactly as the FastAPI routes it shadows.

Every request below is sent to two servers over two fresh stores: one as
``create_app`` builds it, one without the fast path (FastAPI's routes then
answer); status, body and the headers a client acts on must be the same, and
so must what each store holds afterwards.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import JSONResponse

from datatrail.server import create_app
from datatrail.server.fastpath import IngestFastPath
from datatrail.server.ui.auth import secure, secure_raw
from datatrail.store.sql.store import SqlStore

TOKEN = "s3cret-key"
HEADERS = ("content-type", "www-authenticate", "retry-after", "content-security-policy", "x-content-type-options")


def event(job: str, output: str, *, run_id: str | None = None) -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": "2026-03-01T10:00:00+00:00",
        "producer": "https://example.com/tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id or str(uuid.UUID(int=hash(job + output) % 2**128)), "facets": {}},
        "job": {"namespace": "ns", "name": job, "facets": {}},
        "inputs": [],
        "outputs": [{"namespace": "ns", "name": output}],
    }


def requests() -> list[tuple[str, bytes, dict[str, str]]]:
    """(path, body, headers): good, repeated and bad requests of both routes."""
    ok = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    one, batch = "/api/v1/lineage", "/api/v1/lineage/batch"
    good = json.dumps(event("load", "a")).encode()
    bad_time = event("load", "b")
    bad_time["eventTime"] = "yesterday"
    return [
        (one, good, ok),
        (one, good, ok),  # a repeat: 201, duplicate
        (one, good, {"Content-Type": "application/json"}),  # no token
        (one, good, {**ok, "Authorization": "Bearer wrong"}),
        (one, good, {**ok, "Content-Type": "text/plain"}),
        (one, gzip.compress(json.dumps(event("load", "c")).encode()), {**ok, "Content-Encoding": "gzip"}),
        (one, b"not gzip", {**ok, "Content-Encoding": "gzip"}),
        (one, b"{}", {**ok, "Content-Encoding": "br"}),
        (one, b'{"eventTime": NaN}', ok),
        (one, b"[" * 5000 + b"]" * 5000, ok),
        (one, b'{"eventType": "START", "n": 123456789012345678901234567890}', ok),
        (one, b'{"a": "\\ud800"}', ok),
        (one, b"{not json", ok),
        (one, b"", ok),
        (one, json.dumps(bad_time).encode(), ok),
        (one, b"x" * 3000, ok),  # past max_body
        (one, json.dumps({"eventType": "START", "facets": {"é": "ü"}}).encode(), ok),
        (batch, json.dumps([event("load", "d"), bad_time, 5]).encode(), ok),
        (batch, json.dumps([event("load", "d")]).encode(), ok),  # a repeat in a batch
        (batch, json.dumps([event("load", "e")]).encode(), ok),
        (batch, json.dumps(event("load", "f")).encode(), ok),  # not a list
        (batch, json.dumps([event("load", f"g{i}") for i in range(4)]).encode(), ok),  # past max_batch
        (batch, b"[]", ok),
        (batch, b"[", ok),
        (one, good, {**ok, "Origin": "https://elsewhere.example"}),  # cross-site: 403
        ("/api/v1/%6Cineage", good, ok),  # routed on the undecoded path: 404, as every other API path
        ("/api/v1/lineage?x=1", json.dumps(event("load", "h")).encode(), ok),
    ]


def answers(app: Any, *, every_header: bool = False) -> list[tuple[int, Any, dict[str, str]]]:
    out = []
    with TestClient(app, raise_server_exceptions=False) as client:
        for path, body, headers in requests():
            response = client.post(path, content=body, headers=headers)
            try:
                payload: Any = response.json()
            except ValueError:
                payload = response.content
            kept = {h: response.headers[h] for h in HEADERS if h in response.headers}
            if every_header:  # all of them, in their order, but the clock
                kept = {f"{i} {h}": v for i, (h, v) in enumerate(response.headers.items()) if h != "date"}
            out.append((response.status_code, payload, kept))
    return out


def without_fast_path(app: Any) -> Any:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not IngestFastPath]
    return app


@pytest.fixture
def apps(tmp_path: Path) -> Iterator[tuple[str, str]]:
    yield f"sqlite:///{tmp_path / 'fast.db'}", f"sqlite:///{tmp_path / 'routed.db'}"


def stored(uri: str) -> tuple[list[str], int]:
    store = SqlStore(uri)
    try:
        names = sorted(d.name for d in store.list_datasets())
        return names, len(list(store.audit_rows()[1]))
    finally:
        store.close()


def test_the_fast_path_is_installed(tmp_path: Path) -> None:
    app = create_app(f"sqlite:///{tmp_path / 't.db'}")
    assert any(m.cls is IngestFastPath for m in app.user_middleware)


def without_front(app: Any) -> Any:
    app.use_front = False  # the fast path behind the whole middleware stack (server/app.py: DatatrailAPI)
    return app


def test_the_front_is_taken_only_over_the_stack_create_app_builds(tmp_path: Path) -> None:
    app = create_app(f"sqlite:///{tmp_path / 't.db'}")
    with TestClient(app) as client:
        assert client.post("/api/v1/lineage", json=event("j", "o")).status_code == 201
    assert app.front
    for changed in (without_front, without_fast_path):
        app = changed(create_app(f"sqlite:///{tmp_path / 't.db'}"))
        with TestClient(app) as client:
            assert client.post("/api/v1/lineage", json=event("j", "o")).status_code == 201
        assert not app.front
    app = create_app(f"sqlite:///{tmp_path / 't.db'}")
    app.add_middleware(GZipMiddleware)  # a layer the front does not know: every request crosses the stack
    with TestClient(app) as client:
        assert client.post("/api/v1/lineage", json=event("j", "o")).status_code == 201
    assert not app.front


@pytest.mark.parametrize("other", [without_fast_path, without_front])
def test_the_fast_path_answers_as_the_routes(apps: tuple[str, str], other: Any) -> None:
    # The front (one layer for the whole stack) and the fast path behind the stack, each against the other way.
    fast_uri, routed_uri = apps
    settings: dict[str, Any] = {"api_keys": {TOKEN: "airflow"}, "max_body": 2000, "max_batch": 3}
    every_header = other is without_front
    fast = answers(create_app(fast_uri, **settings), every_header=every_header)
    routed = answers(other(create_app(routed_uri, **settings)), every_header=every_header)
    for (path, body, _), got, want in zip(requests(), fast, routed, strict=True):
        assert got == want, f"{path} {body[:60]!r}"
    statuses = [status for status, _, _ in fast]
    # The requests reach every branch: stored, refused before the body, refused for the body, batch reports.
    assert {200, 201, 400, 401, 403, 404, 413, 415} <= set(statuses)
    assert stored(fast_uri) == stored(routed_uri)


def test_the_fast_path_hides_unexpected_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datatrail.service import Trail

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(Trail, "ingest_many", boom)
    with TestClient(create_app(f"sqlite:///{tmp_path / 't.db'}"), raise_server_exceptions=False) as client:
        response = client.post("/api/v1/lineage/batch", json=[event("j", "o")])
    assert response.status_code == 500
    assert response.json() == {"error": "internal", "detail": "unexpected RuntimeError; see the server log"}


def test_an_unexpected_error_in_the_store_is_hidden_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datatrail.store.sql import ingest

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(ingest, "store_event", boom)  # raised where the event is stored
    with TestClient(create_app(f"sqlite:///{tmp_path / 't.db'}"), raise_server_exceptions=False) as client:
        response = client.post("/api/v1/lineage", json=event("j", "o"))
    assert response.status_code == 500
    assert response.json() == {"error": "internal", "detail": "unexpected RuntimeError; see the server log"}


def test_other_methods_and_paths_pass_through(tmp_path: Path) -> None:
    with TestClient(create_app(f"sqlite:///{tmp_path / 't.db'}"), raise_server_exceptions=False) as client:
        assert client.put("/api/v1/lineage", json={}).status_code == 405
        assert client.post("/api/v1/lineage/other", json={}).status_code == 404
        assert client.get("/api/v1/lineage", params={"nodeId": "dataset:ns:nothing"}).status_code == 404


def test_a_restarted_application_ingests_again(tmp_path: Path) -> None:
    # Shutdown waits for the ingest threads and closes the store; the next start opens both again.
    app = create_app(f"sqlite:///{tmp_path / 't.db'}")
    for output in ("first", "second"):
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.post("/api/v1/lineage", json=event("j", output)).status_code == 201
    assert stored(f"sqlite:///{tmp_path / 't.db'}")[0] == ["first", "second"]


def test_a_failure_inside_the_store_answers_as_from_the_routes(apps: tuple[str, str]) -> None:
    # An event the store refuses inside its transaction answers exactly as the route does.
    fast_uri, routed_uri = apps
    first = event("load", "a")
    moved = event("elsewhere", "a", run_id=first["run"]["runId"])  # a stored run never changes job: 409
    bodies = [first, moved, first, event("load", "b")]
    out = []
    for app in (create_app(fast_uri), without_fast_path(create_app(routed_uri))):
        with TestClient(app, raise_server_exceptions=False) as client:
            out.append([(r.status_code, r.json()) for r in (client.post("/api/v1/lineage", json=b) for b in bodies)])
    assert out[0] == out[1]
    assert [status for status, _ in out[0]] == [201, 409, 201, 201]
    assert out[0][2][1]["duplicate"] is True
    assert stored(fast_uri) == stored(routed_uri)


# (role, namespace written): an admin, an editor of team-*, a viewer of team-a, the owner of team-b
ROLE_WRITES = (("admin", "team-b"), ("editor", "team-a"), ("editor", "team-b"), ("viewer", "team-a"))
ROLE_WRITES += (("other_owner", "team-a"),)


def audit_outcomes(uri: str) -> list[tuple[str, str, str]]:
    store = SqlStore(uri)
    try:
        return [(r["actor"], r["action"], r["outcome"]) for r in store.audit_rows()[1]]
    finally:
        store.close()


def test_only_admins_may_skip_the_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datatrail.service import Trail
    from tests import security_scene

    threaded: list[str] = []
    asked: list[str] = []
    ingest, ingest_soon = Trail.ingest, SqlStore.ingest_soon

    def counted(self: Trail, *args: Any, **kwargs: Any) -> Any:
        threaded.append(self.user)
        return ingest(self, *args, **kwargs)

    def asked_to_queue(self: SqlStore, event: Any, actor: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(actor)
        return ingest_soon(self, event, actor, *args, **kwargs)

    monkeypatch.setattr(Trail, "ingest", counted)
    monkeypatch.setattr(SqlStore, "ingest_soon", asked_to_queue)
    scenes = [security_scene.build(tmp_path / "fast"), security_scene.build(tmp_path / "routed")]
    out = []
    apps = (create_app(scenes[0].uri), without_fast_path(create_app(scenes[1].uri)))
    for scene, app in zip(scenes, apps, strict=True):
        answers = []
        with TestClient(app, raise_server_exceptions=False) as client:
            for role, namespace in ROLE_WRITES:
                body = event(f"{role}-job", f"{role}-{namespace}")
                body["job"]["namespace"] = body["outputs"][0]["namespace"] = namespace
                headers = {"Authorization": f"Bearer {scene.tokens[role]}"}
                response = client.post("/api/v1/lineage", json=body, headers=headers)
                answers.append((response.status_code, response.json()))
        out.append(answers)
    assert out[0] == out[1]
    assert [status for status, _ in out[0]] == [201, 201, 201, 403, 403]
    # Only the admin's event asked the store to queue it from the loop; the store was idle (one request at
    # a time), so it said no and every event was stored by a thread (in a busy store the admin's is queued:
    # tests/test_ingest_soon.py). FastAPI's routes ingest every event in a thread.
    assert asked == ["root"]
    assert threaded == ["root", "ed", "ed", "vera", "olga"] * 2
    # The same audit entries (writes and refusals) in both stores.
    assert audit_outcomes(scenes[0].uri) == audit_outcomes(scenes[1].uri)


@pytest.mark.parametrize("path", ["/api/v1/lineage", "/docs"])
@pytest.mark.parametrize(
    "given", [{}, {"WWW-Authenticate": "Bearer"}, {"X-Frame-Options": "SAMEORIGIN", "Retry-After": "3"}]
)
def test_the_fronts_security_headers_are_those_secure_adds(path: str, given: dict[str, str]) -> None:
    # The front adds the encoded headers at once where the answer has none of them; the same list, in order.
    want, got = JSONResponse({"a": 1}, 201, given), JSONResponse({"a": 1}, 201, given)
    secure(want.headers, path)
    secure_raw(got.raw_headers, path)
    assert got.raw_headers == want.raw_headers
