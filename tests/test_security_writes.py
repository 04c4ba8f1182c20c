"""What a write may touch, and what it is recorded as, against a real `datatrail serve`.

An event that reads from a namespace the caller may not read is refused (403)
and nothing of it is stored: one event, a whole batch, and the HTTP store's
write. The audit action of a write is one a client may ask for, and its actor
is the token's user: a caller cannot forge ``grant.add`` entries, fake lines, or
store kilobytes of action text.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import datatrail
from datatrail.core.actions import WRITE_ACTIONS
from datatrail.core.changes import VersionInfo
from datatrail.core.errors import Forbidden
from datatrail.events import build_dataset_event
from tests import httpserver
from tests.security_scene import Scene, build


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    """The shared scene, plus alice: an editor of team-a only (she may not read team-b)."""
    found = build(tmp_path_factory.mktemp("writes"))
    with datatrail.connect(found.uri) as trail:
        trail.add_user("alice")
        trail.grant("alice", "editor", "team-a")
        found.tokens["alice"] = trail.create_token("alice", expires="1d")[1]
    return found


@pytest.fixture(scope="module")
def server(scene: Scene, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpserver.Server]:
    with httpserver.running(tmp_path_factory.mktemp("srv"), store=scene.uri) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server: httpserver.Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.uri, timeout=30) as client:
        yield client


def bearer(scene: Scene, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {scene.tokens[who]}"}


def reading_team_b(output: str) -> dict[str, Any]:
    """A run of team-a that reads team-b's secret and writes ``output`` in team-a."""
    return {
        "eventType": "COMPLETE",
        "eventTime": "2024-05-01T10:00:00+00:00",
        "producer": "https://example.com/tests/writes",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": "team-a", "name": "peek", "facets": {}},
        "inputs": [{"namespace": "team-b", "name": "b/secret", "facets": {}}],
        "outputs": [{"namespace": "team-a", "name": output, "facets": {}}],
    }


def datasets(http: httpx.Client, scene: Scene) -> set[str]:
    found = http.get("/api/v1/datasets", params={"namespace": "team-a"}, headers=bearer(scene, "admin"))
    return {d["name"] for d in found.json()["datasets"]}


def audit(http: httpx.Client, scene: Scene, **params: Any) -> list[dict[str, Any]]:
    found = http.get("/api/v1/audit", params={"limit": 1000, **params}, headers=bearer(scene, "admin"))
    entries: list[dict[str, Any]] = found.json()["entries"]
    return entries


def refused_for_reading(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error"] == "forbidden"
    assert body["detail"].startswith("alice may not read namespace 'team-b', which this event reads from")


# ---------------------------------------------------------------- reading where one may not


def test_an_event_reading_a_namespace_the_caller_may_not_read_is_refused(http: httpx.Client, scene: Scene) -> None:
    refused_for_reading(http.post("/api/v1/lineage", json=reading_team_b("peek/one"), headers=bearer(scene, "alice")))
    assert "peek/one" not in datasets(http, scene)
    denied = [e for e in audit(http, scene, user="alice") if e["outcome"] == "denied"]
    assert ("lineage.ingest", "namespace:team-b") in {(e["action"], e["target"]) for e in denied}
    # The same event from an editor of team-* (who may read team-b) is stored: reading was the reason.
    ed = http.post("/api/v1/lineage", json=reading_team_b("peek/ed"), headers=bearer(scene, "editor"))
    assert ed.status_code == 201
    assert "peek/ed" in datasets(http, scene)


def test_a_batch_with_one_such_event_is_refused_whole(http: httpx.Client, scene: Scene) -> None:
    fine = build_dataset_event("team-a", "peek/fine", VersionInfo(key="k-fine"))
    batch = [fine, reading_team_b("peek/batch")]
    refused_for_reading(http.post("/api/v1/lineage/batch", json=batch, headers=bearer(scene, "alice")))
    assert not {"peek/fine", "peek/batch"} & datasets(http, scene)
    answer = http.post("/api/v1/lineage/batch", json=[fine], headers=bearer(scene, "alice"))
    assert answer.status_code == 201 and "peek/fine" in datasets(http, scene)


def test_the_http_store_write_refuses_it_too(http: httpx.Client, server: httpserver.Server, scene: Scene) -> None:
    body = {"event": reading_team_b("peek/store"), "action": "run.complete"}
    refused_for_reading(http.post("/api/v1/events", json=body, headers=bearer(scene, "alice")))
    with datatrail.connect(server.uri, token=scene.tokens["alice"]) as trail:
        with pytest.raises(Forbidden, match="may not read namespace 'team-b'"):
            trail.ingest(reading_team_b("peek/python"))
    assert not {"peek/store", "peek/python"} & datasets(http, scene)


# ---------------------------------------------------------------- the recorded action and actor


def test_a_client_cannot_forge_audit_actions(http: httpx.Client, scene: Scene) -> None:
    before = audit(http, scene)[0]["seq"]
    forged = [
        "grant.add",
        "token.create",
        "dataset.read",
        "auth.token",
        "run.complete\n42  2026-01-01  root",
        "x" * 5000,
    ]
    for n, action in enumerate(forged):
        event = build_dataset_event("team-a", f"forged/{n}", VersionInfo(key=f"k-forged-{n}"))
        answer = http.post("/api/v1/events", json={"event": event, "action": action}, headers=bearer(scene, "alice"))
        assert answer.status_code == 400, (action[:40], answer.text)
        assert answer.json()["error"] == "invalid_input" and "\n" not in answer.json()["detail"]
        assert len(answer.content) < 2000
    for bad in (7, None, ["grant.add"]):
        body = {"event": build_dataset_event("team-a", "forged/x", VersionInfo(key="k-x")), "action": bad}
        answer = http.post("/api/v1/events", json=body, headers=bearer(scene, "alice"))
        assert answer.status_code == (201 if bad is None else 400)  # none: lineage.ingest
    written = [e for e in audit(http, scene) if e["seq"] > before]
    assert [(e["actor"], e["action"]) for e in written] == [("alice", "lineage.ingest")]
    assert not any(e["target"].startswith("team-a:forged/") and e["outcome"] == "denied" for e in written)


def test_every_action_a_client_sends_is_accepted_and_recorded_as_the_token_s_user(
    http: httpx.Client, scene: Scene
) -> None:
    for n, action in enumerate(sorted(WRITE_ACTIONS)):
        event = build_dataset_event("team-a", f"acts/{n}", VersionInfo(key=f"k-acts-{n}"))
        body = {"event": event, "action": action, "actor": "root"}
        assert http.post("/api/v1/events", json=body, headers=bearer(scene, "alice")).status_code == 201, action
    recorded = {e["action"]: e["actor"] for e in audit(http, scene) if (e["target"] or "").startswith("team-a:acts/")}
    assert recorded == dict.fromkeys(WRITE_ACTIONS, "alice")


def test_an_open_server_takes_the_actor_from_the_body_but_only_a_name(tmp_path: Path) -> None:
    with httpserver.running(tmp_path) as srv, httpx.Client(base_url=srv.uri, timeout=30) as client:
        event = build_dataset_event("default", "open", VersionInfo(key="k-open"))
        for actor in ("ann\n2  2026-01-01  root", "", " ann", 5, "x" * 2000):
            answer = client.post("/api/v1/events", json={"event": event, "actor": actor, "action": "dataset.add"})
            assert answer.status_code == 400, (actor, answer.text)
        assert client.post("/api/v1/events", json={"event": event, "actor": "ann"}).status_code == 201
        entries = client.get("/api/v1/audit").json()["entries"]
        assert [(e["actor"], e["action"]) for e in entries if e["target"] == "open@1"] == [("ann", "lineage.ingest")]
