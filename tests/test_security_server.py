"""Access control end to end, against real `datatrail serve` processes (tests/httpserver.py).

Identity comes from the Bearer token alone; forged, expired and revoked tokens
are refused; cross-site writes are refused (guessing: test_security_guessing.py); hidden
lineage is redacted; and no token or token hash appears in any response or log.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine

import datatrail
from datatrail.core.changes import VersionInfo
from datatrail.core.tokens import parse_token
from datatrail.events import build_dataset_event
from datatrail.store.sql import tables as t
from tests import httpserver
from tests.pgserver import free_port
from tests.security_scene import Scene, build


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    return build(tmp_path_factory.mktemp("sec-server"))


@pytest.fixture(scope="module")
def server(scene: Scene, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpserver.Server]:
    # Access logs on (info), so the leak test below searches every request line too.
    srv = httpserver.start(tmp_path_factory.mktemp("srv"), store=scene.uri, env={"DATATRAIL_LOG_LEVEL": "info"})
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


class Recorder:
    """Every response body and header seen by the test, to search for leaked secrets."""

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=30)
        self.seen: list[str] = []

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, url, **kwargs)
        self.seen.append(json.dumps(dict(response.headers)) + response.text)
        return response

    def get(self, url: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {**kwargs.pop("headers", {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        return self.request("GET", url, headers=headers, **kwargs)


@pytest.fixture(scope="module")
def http(server: httpserver.Server) -> Iterator[Recorder]:
    rec = Recorder(server.uri)
    yield rec
    rec.client.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_every_route_but_healthz_needs_a_token(http: Recorder) -> None:
    assert http.get("/healthz").status_code == 200
    for url in ("/api/v1/namespaces", "/api/v1/audit", "/openapi.json", "/api/v1/lineage?nodeId=dataset:team-a:a/raw"):
        response = http.get(url)
        assert response.status_code == 401, url
        assert response.json()["error"] == "unauthorized" and response.headers["www-authenticate"] == "Bearer"
    assert http.get("/", follow_redirects=False).status_code == 303  # the UI asks to log in


@pytest.mark.parametrize(
    "header", ["X-User", "X-Forwarded-User", "Remote-User", "X-Remote-User", "X-Auth-Request-User"]
)
def test_identity_headers_are_ignored(http: Recorder, scene: Scene, header: str) -> None:
    assert http.get("/api/v1/namespaces", headers={header: "root"}).status_code == 401
    # With a viewer's token, claiming to be the admin changes nothing.
    response = http.get("/api/v1/audit", scene.tokens["viewer"], headers={header: "root"})
    assert response.status_code == 403
    entries = http.get("/api/v1/audit?limit=5", scene.tokens["admin"]).json()["entries"]
    denied = next(e for e in entries if e["outcome"] == "denied")
    assert denied["actor"] == "vera"


def test_forged_expired_and_revoked_tokens_are_refused(http: Recorder, scene: Scene) -> None:
    trail = datatrail.connect(scene.uri)
    try:
        info, token = trail.create_token("vera", expires="1d")
        assert http.get("/api/v1/namespaces", token).status_code == 200
        token_id, secret = parse_token(token)  # type: ignore[misc]
        forged = f"dtk_{token_id}_{'A' if secret[0] != 'A' else 'B'}{secret[1:]}"
        for bad in (forged, "dtk_tok_000000000000_" + secret, token + "x", "s3cret"):
            assert http.get("/api/v1/namespaces", bad).status_code == 401
        # Expired: moved into the past directly in the store, then refused on the next request.
        engine = create_engine(scene.uri)
        with engine.begin() as conn:
            conn.execute(
                t.tokens.update()
                .where(t.tokens.c.id == token_id)
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        engine.dispose()
        assert http.get("/api/v1/namespaces", token).status_code == 401
        info, token = trail.create_token("vera", expires="1d")
        assert http.get("/api/v1/namespaces", token).status_code == 200
        trail.revoke_token(info.id)
        assert http.get("/api/v1/namespaces", token).status_code == 401  # the very next request
    finally:
        trail.close()


def _event(name: str) -> dict[str, Any]:
    return build_dataset_event("team-a", name, VersionInfo(key=f"k-{name}"))


def test_cross_site_writes_are_refused(http: Recorder, scene: Scene, server: httpserver.Server) -> None:
    token = scene.tokens["editor"]
    body = json.dumps(_event("csrf/1"))
    evil = {"Origin": "https://evil.example"}
    cases = [
        ({**evil, "Content-Type": "text/plain"}, body, 403),
        ({**evil, "Content-Type": "application/x-www-form-urlencoded"}, "a=" + body, 403),
        ({**evil, "Content-Type": "application/json"}, body, 403),
        ({"Content-Type": "text/plain"}, body, 415),
        ({"Content-Type": "multipart/form-data; boundary=x"}, body, 415),
    ]
    for headers, content, status in cases:
        response = http.request("POST", "/api/v1/lineage", headers={**bearer(token), **headers}, content=content)
        assert response.status_code == status, (headers, response.text)
        assert set(response.json()) == {"error", "detail"}
    same = {"Origin": server.uri, "Content-Type": "application/json"}
    response = http.request("POST", "/api/v1/lineage", headers={**bearer(token), **same}, content=body)
    assert response.status_code == 201
    names = {d["name"] for d in http.get("/api/v1/datasets", token).json()["datasets"]}
    assert "csrf/1" in names


def test_writes_need_an_editor_and_record_the_token_s_user(http: Recorder, scene: Scene) -> None:
    response = http.request("POST", "/api/v1/lineage", headers=bearer(scene.tokens["viewer"]), json=_event("w/viewer"))
    assert response.status_code == 403 and "editor" in response.json()["detail"]
    body = {"event": _event("w/editor"), "actor": "root", "action": "lineage.ingest"}
    assert http.request("POST", "/api/v1/events", headers=bearer(scene.tokens["editor"]), json=body).status_code == 201
    entries = http.get("/api/v1/audit?limit=20", scene.tokens["admin"]).json()["entries"]
    write = next(e for e in entries if e["target"] == "team-a:w/editor@1")
    assert write["actor"] == "ed" and write["details"]["origin"] == "127.0.0.1"  # not the body's "root"
    denied = next(e for e in entries if e["target"] == "namespace:team-a" and e["outcome"] == "denied")
    assert denied["actor"] == "vera"


def test_hidden_lineage_is_a_placeholder(http: Recorder, scene: Scene) -> None:
    url = "/api/v1/lineage?nodeId=dataset:team-a:a/report&direction=upstream&depth=5"
    viewer = http.get(url, scene.tokens["viewer"])
    assert viewer.status_code == 200
    graph = {n["id"]: n for n in viewer.json()["graph"]}
    hidden = [n for n in graph.values() if n["id"].startswith("hidden:")]
    assert len(hidden) == 1 and hidden[0]["type"] == "DATASET" and hidden[0]["data"] == {"redacted": True}
    assert [e["destination"] for e in hidden[0]["outEdges"]] == ["job:team-a:mix"]  # lineage goes on
    assert "team-b" not in viewer.text and "b/secret" not in viewer.text and "salary" not in viewer.text
    admin = http.get(url, scene.tokens["admin"]).json()
    assert "dataset:team-b:b/secret" in {n["id"] for n in admin["graph"]}
    # The same through the HTTP store and the Python API.
    with datatrail.connect(http.client.base_url.__str__(), token=scene.tokens["viewer"]) as trail:
        g = trail.lineage("team-a:a/report", depth=5)
        types = sorted(n.type for n in g.nodes.values() if n.data.get("redacted"))
        assert types == ["version"] and "team-b" not in g.to_mermaid()
        assert {d.namespace for d in trail.datasets()} == {"team-a"}


def test_reads_and_denials_are_audited_for_admins_and_owners(http: Recorder, scene: Scene) -> None:
    assert http.get("/api/v1/namespaces/team-a/datasets/a%2Fraw/versions", scene.tokens["viewer"]).status_code == 200
    assert http.get("/api/v1/namespaces/team-a/datasets/a%2Fraw", scene.tokens["other_owner"]).status_code == 404
    assert (
        http.get("/api/v1/namespaces/team-b/datasets/b%2Fsecret/versions/1", scene.tokens["other_owner"]).status_code
        == 200
    )
    entries = http.get("/api/v1/audit?limit=50", scene.tokens["admin"]).json()["entries"]
    seen = {(e["actor"], e["action"], e["target"], e["outcome"]) for e in entries}
    assert ("vera", "dataset.versions", "team-a:a/raw", "allowed") in seen
    assert ("olga", "dataset.read", "team-b:b/secret@1", "allowed") in seen
    owner_view = http.get("/api/v1/audit?limit=1000", scene.tokens["other_owner"]).json()["entries"]
    assert owner_view and all("team-b:" in e["target"] for e in owner_view)
    # The profile of a classified column shows counts only, to everyone.
    profile = http.get("/api/v1/namespaces/team-a/datasets/a%2Fraw/versions/1/profile", scene.tokens["admin"]).json()
    email = profile["profile"]["columns"][0]
    assert email["classified"] == ["pii"] and "min" not in email and "ann@x.org" not in json.dumps(profile)


def test_admin_commands_over_http_say_where_to_run_them(
    server: httpserver.Server, scene: Scene, tmp_path: Path
) -> None:
    exe = str(httpserver.DATATRAIL)
    env = {"DATATRAIL_TOKEN": scene.tokens["admin"], "PATH": "/usr/bin:/bin"}
    for args in (["user", "add", "x"], ["token", "list"], ["token", "create", "--user", "vera"]):
        done = subprocess.run(
            [exe, "--store", server.uri, *args], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and "where the store is" in done.stderr, (
            done.stderr
        )
    # Grants do work through the server: here an owner, inside its namespace, with the CLI.
    owner = {**env, "DATATRAIL_TOKEN": scene.tokens["other_owner"]}
    done = subprocess.run(
        [exe, "--store", server.uri, "grant", "ed", "owner", "team-b"], capture_output=True, text=True, env=owner
    )
    assert done.returncode == 0 and done.stdout == "ed is owner on team-b\n", done.stderr
    done = subprocess.run(
        [exe, "--store", server.uri, "revoke", "ed", "owner", "team-b"], capture_output=True, text=True, env=owner
    )
    assert done.returncode == 0, done.stderr
    done = subprocess.run(
        [exe, "--store", server.uri, "grant", "ed", "owner", "*"], capture_output=True, text=True, env=owner
    )
    assert done.returncode == 5 and "may not grant" in done.stderr and done.stderr.count("\n") == 1
    # The audit log reads work through the server, for an admin (vera reads first, so she is in it).
    viewer = {**env, "DATATRAIL_TOKEN": scene.tokens["viewer"]}
    done = subprocess.run(
        [exe, "--store", server.uri, "show", "team-a:a/raw"], capture_output=True, text=True, env=viewer
    )
    assert done.returncode == 0, done.stderr
    done = subprocess.run([exe, "--store", server.uri, "audit", "verify"], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and done.stdout.startswith("audit chain intact"), done.stdout + done.stderr
    log = subprocess.run(
        [exe, "--store", server.uri, "audit", "log", "--user", "vera", "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert log.returncode == 0 and {e["actor"] for e in json.loads(log.stdout)} == {"vera"}


def test_content_locations_need_write_to_record_and_read_to_see(http: Recorder, scene: Scene) -> None:
    """Where a version's bytes are (issue 18): an editor's push records it, a viewer reads it, no one else sees it."""
    body = {"remote": "origin", "url": "s3://lake/dt", "versions": [["team-a", "a/raw", 1]]}
    where = {"namespace": "team-a", "name": "a/raw", "version": 1}
    denied = http.request("POST", "/api/v1/content-locations", headers=bearer(scene.tokens["viewer"]), json=body)
    assert denied.status_code == 403 and "needs write on 'team-a'" in denied.json()["detail"]
    assert http.get("/api/v1/content-locations", scene.tokens["viewer"], params=where).json()["locations"] == []
    secret = {**body, "url": "s3://AKIAEXAMPLE:verysecret@lake/dt"}
    refused = http.request("POST", "/api/v1/content-locations", headers=bearer(scene.tokens["editor"]), json=secret)
    assert refused.status_code == 400 and "credentials" in refused.json()["detail"]
    assert "verysecret" not in refused.text
    ok = http.request("POST", "/api/v1/content-locations", headers=bearer(scene.tokens["editor"]), json=body)
    assert ok.status_code == 200 and ok.json() == {"added": 1}
    seen = http.get("/api/v1/content-locations", scene.tokens["viewer"], params=where).json()["locations"]
    assert [(x["remote"], x["url"], x["recorded_by"]) for x in seen] == [("origin", "s3://lake/dt", "ed")]
    hidden = http.get("/api/v1/content-locations", scene.tokens["other_owner"], params=where)
    assert hidden.status_code == 404  # team-a is not hers: the version is simply not there
    forget = {"url": "s3://lake/dt", "versions": [["team-a", "a/raw", 1]]}
    denied = http.request(
        "POST", "/api/v1/content-locations/forget", headers=bearer(scene.tokens["viewer"]), json=forget
    )
    assert denied.status_code == 403 and "needs write on 'team-a'" in denied.json()["detail"]
    assert len(http.get("/api/v1/content-locations", scene.tokens["viewer"], params=where).json()["locations"]) == 1
    bad = http.request("POST", "/api/v1/content-locations/forget", headers=bearer(scene.tokens["editor"]), json=[1])
    assert bad.status_code == 400 and "the body is" in bad.json()["detail"]
    ok = http.request("POST", "/api/v1/content-locations/forget", headers=bearer(scene.tokens["editor"]), json=forget)
    assert ok.status_code == 200 and ok.json() == {"forgotten": 1}
    assert http.get("/api/v1/content-locations", scene.tokens["viewer"], params=where).json()["locations"] == []


def test_no_token_or_token_hash_in_any_response_or_log(http: Recorder, scene: Scene, server: httpserver.Server) -> None:
    # Whatever else this worker ran of the module, every role makes its own requests here:
    # reads, a lineage graph, the audit log, a write, and a refused token.
    for role, token in scene.tokens.items():
        for url in ("/api/v1/namespaces", "/api/v1/datasets", "/api/v1/audit?limit=5", "/api/v1/search?q=a"):
            http.get(url, token)
        http.get("/api/v1/lineage?nodeId=dataset:team-a:a/report&direction=upstream&depth=5", token)
        http.request("POST", "/api/v1/lineage", headers=bearer(token), json=_event(f"leak/{role}"))
    http.get("/api/v1/namespaces")
    http.get("/api/v1/namespaces", "dtk_tok_000000000000_" + "y" * 43)
    assert len(http.seen) > 20
    log = server.log.read_text()
    assert '"GET /api/v1/namespaces HTTP/1.1" 401' in log and '"POST /api/v1/lineage HTTP/1.1" 201' in log
    trail = datatrail.connect(scene.uri)
    try:
        ids = [tok.id for tok in trail.tokens()]
    finally:
        trail.close()
    secrets = [parse_token(tok)[1] for tok in scene.tokens.values()]  # type: ignore[index]
    needles = secrets + [hashlib.sha256(s.encode()).hexdigest() for s in secrets]
    haystack = "\n".join(http.seen) + log
    for needle in needles:
        assert needle not in haystack
    assert ids  # token ids are fine to show; secrets and hashes never


def test_serve_refuses_the_network_without_users(tmp_path: Path) -> None:
    exe = str(httpserver.DATATRAIL)
    store = f"sqlite:///{tmp_path / 'open.db'}"
    done = subprocess.run(
        [exe, "--store", store, "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "--insecure" in done.stderr and done.stderr.count("\n") == 1
    srv = httpserver.start(tmp_path / "insecure", "--host", "0.0.0.0", "--insecure", store=store)
    try:
        srv.wait_ready()
    finally:
        srv.stop()
    trail = datatrail.connect(store)
    try:
        trail.add_user("root", admin=True)
    finally:
        trail.close()
    srv = httpserver.start(tmp_path / "with-users", "--host", "0.0.0.0", store=store)
    try:
        srv.wait_ready()
        assert httpx.get(f"{srv.uri}/api/v1/namespaces").status_code == 401
    finally:
        srv.stop()


def test_a_server_without_users_locks_once_the_first_user_is_added(tmp_path: Path) -> None:
    # The server trusts "no user yet" for at most a second (server/access.py): a user
    # added from another process (the CLI) makes every route need a token soon after.
    store = f"sqlite:///{tmp_path / 'trail.db'}"
    srv = httpserver.start(tmp_path / "srv", store=store)
    try:
        srv.wait_ready()
        assert httpx.get(f"{srv.uri}/api/v1/namespaces").status_code == 200
        trail = datatrail.connect(store)
        try:
            trail.add_user("root", admin=True)
        finally:
            trail.close()
        deadline = time.monotonic() + 30
        status = 200
        while status == 200 and time.monotonic() < deadline:
            time.sleep(0.2)
            status = httpx.get(f"{srv.uri}/api/v1/namespaces").status_code
        assert status == 401
    finally:
        srv.stop()
