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

from datatrail.server import create_app
from datatrail.server.fastpath import IngestFastPath
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
    ]


def answers(app: Any) -> list[tuple[int, Any, dict[str, str]]]:
    out = []
    with TestClient(app, raise_server_exceptions=False) as client:
        for path, body, headers in requests():
            response = client.post(path, content=body, headers=headers)
            try:
                payload: Any = response.json()
            except ValueError:
                payload = response.content
            kept = {h: response.headers[h] for h in HEADERS if h in response.headers}
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


def test_the_fast_path_answers_as_the_routes(apps: tuple[str, str]) -> None:
    fast_uri, routed_uri = apps
    settings: dict[str, Any] = {"api_keys": {TOKEN: "airflow"}, "max_body": 2000, "max_batch": 3}
    fast = answers(create_app(fast_uri, **settings))
    routed = answers(without_fast_path(create_app(routed_uri, **settings)))
    for (path, body, _), got, want in zip(requests(), fast, routed, strict=True):
        assert got == want, f"{path} {body[:60]!r}"
    statuses = [status for status, _, _ in fast]
    # The requests reach every branch: stored, refused before the body, refused for the body, batch reports.
    assert {200, 201, 400, 401, 413, 415} <= set(statuses)
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
