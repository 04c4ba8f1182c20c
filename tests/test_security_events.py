"""Every namespace an event touches is authorised (issue 16, findings 1, 2, 4 and 9), through a real server.

The cast of the review: admin; alice, editor of ``team-a``; bob, editor of
``team-b``; carol, owner of ``team-c*``. Each attack is sent as alice (or carol)
to a real ``datatrail serve`` and must be refused with nothing stored, while
the same event inside the sender's own namespaces is accepted.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import datatrail
from datatrail.core.model import EventType
from datatrail.events import build_run_event
from tests import httpserver

PRODUCER = "https://example.com/attacker"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


@dataclass
class Cast:
    server: httpserver.Server
    tokens: dict[str, str]
    bob_run: str
    folder: Path

    def client(self, who: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.uri, headers={"Authorization": f"Bearer {self.tokens[who]}"}, timeout=30
        )


@pytest.fixture(scope="module")
def cast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cast]:
    folder = tmp_path_factory.mktemp("sec-events")
    uri = f"sqlite:///{folder / 'trail.db'}"
    trail = datatrail.init(folder, uri)
    try:
        for user, role, pattern in (("alice", "editor", "team-a"), ("bob", "editor", "team-b")):
            trail.add_user(user)
            trail.grant(user, role, pattern)
        trail.add_user("carol")
        trail.grant("carol", "owner", "team-c*")
        trail.add_user("admin", admin=True)
        tokens = {name: trail.create_token(name, expires="1d")[1] for name in ("alice", "bob", "carol", "admin")}
    finally:
        trail.close()
    server = httpserver.start(folder / "srv", store=uri)
    server.wait_ready()
    bob_run = str(uuid.uuid4())
    found = Cast(server, tokens, bob_run, folder)
    try:
        with found.client("bob") as bob:
            start = build_run_event(EventType.START, bob_run, "team-b", "nightly")
            assert bob.post("/api/v1/lineage", json=start).status_code == 201
            scores = dataset_event("team-b", "scores")
            assert bob.post("/api/v1/lineage", json=scores).status_code == 201
            final = dataset_event("team-b", "final")
            assert bob.post("/api/v1/lineage", json=final).status_code == 201
        yield found
    finally:
        server.stop()


def dataset_event(namespace: str, name: str, **facets: Any) -> dict[str, Any]:
    return {
        "eventTime": "2026-12-01T10:00:00Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {"namespace": namespace, "name": name, "facets": facets},
    }


def run_event(event_type: str, run_id: str, namespace: str, job: str, **parts: Any) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "eventTime": "2026-12-01T11:00:00Z",
        "producer": PRODUCER,
        "schemaURL": SCHEMA,
        "run": {"runId": run_id, "facets": parts.pop("run_facets", {})},
        "job": {"namespace": namespace, "name": job},
        "inputs": parts.pop("inputs", []),
        "outputs": parts.pop("outputs", []),
    }


def facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/X.json", **fields}


def refused(response: httpx.Response) -> str:
    assert response.status_code == 403, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and "Traceback" not in response.text
    detail: str = body["detail"]
    return detail


def get(cast: Cast, who: str, url: str) -> Any:
    with cast.client(who) as client:
        response = client.get(url)
    assert response.status_code == 200, response.text
    return response.json()


def stored_datasets(cast: Cast) -> set[tuple[str, str]]:
    """Every dataset row in the store's file, hidden ones included."""
    with sqlite3.connect(cast.folder / "trail.db") as db:
        rows = db.execute("SELECT n.name, d.name FROM datasets d JOIN namespaces n ON n.id = d.namespace_id")
        return {(ns, name) for ns, name in rows}


def dataset_names(cast: Cast, who: str, namespace: str) -> set[str]:
    with cast.client(who) as client:
        response = client.get(f"/api/v1/namespaces/{namespace}/datasets")
    assert response.status_code == 200, response.text
    return {d["name"] for d in response.json()["datasets"]}


def test_a_run_of_another_namespace_cannot_be_taken_over_by_its_run_id(cast: Cast) -> None:
    """Finding 1: alice sends FAIL for bob's run with her own job and an output."""
    before = get(cast, "bob", f"/api/v1/runs/{cast.bob_run}")
    attack = run_event(
        "FAIL",
        cast.bob_run,
        "team-a",
        "alice_job",
        run_facets={"errorMessage": facet(message="INJECTED", programmingLanguage="python")},
        outputs=[{"namespace": "team-a", "name": "alice_out"}],
    )
    with cast.client("alice") as alice:
        detail = refused(alice.post("/api/v1/lineage", json=attack))
        assert cast.bob_run in detail and "team-b" not in detail  # alice may not see team-b: it is not named
        refused(alice.post("/api/v1/lineage/batch", json=[attack]))
        refused(alice.post("/api/v1/events", json={"event": attack, "actor": "alice", "action": "run.fail"}))
    after = get(cast, "bob", f"/api/v1/runs/{cast.bob_run}")
    assert after == before and "INJECTED" not in str(after)
    assert "alice_out" not in dataset_names(cast, "alice", "team-a")


def test_a_run_never_changes_job_or_namespace(cast: Cast) -> None:
    """Finding 1, second half: even a caller who may write both namespaces gets 409."""
    run_id = str(uuid.uuid4())
    with cast.client("admin") as admin:
        assert admin.post("/api/v1/lineage", json=run_event("START", run_id, "team-a", "one")).status_code == 201
        moved = admin.post("/api/v1/lineage", json=run_event("COMPLETE", run_id, "team-b", "one"))
        assert moved.status_code == 409, moved.text
        assert "run" in moved.json()["detail"] and "team-a" in moved.json()["detail"]
        renamed = admin.post("/api/v1/lineage", json=run_event("COMPLETE", run_id, "team-a", "two"))
        assert renamed.status_code == 409, renamed.text
        run = admin.get(f"/api/v1/runs/{run_id}").json()
    assert (run["namespace"], run["job"], run["state"]) == ("team-a", "one", "RUNNING")


def test_a_rename_cannot_reach_into_another_namespace(cast: Cast) -> None:
    """Finding 2: a RENAME whose previousIdentifier is team-b:scores is refused; bob still sees scores."""
    previous = {"namespace": "team-b", "name": "scores"}
    attack = dataset_event(
        "team-a",
        "scores_renamed",
        lifecycleStateChange=facet(lifecycleStateChange="RENAME", previousIdentifier=previous),
    )
    with cast.client("alice") as alice:
        detail = refused(alice.post("/api/v1/lineage", json=attack))
    assert "previousIdentifier" in detail
    assert "scores" in dataset_names(cast, "bob", "team-b")
    assert "scores_renamed" not in dataset_names(cast, "alice", "team-a")


def test_a_rename_from_a_name_never_stored_leaves_only_a_hidden_placeholder(cast: Cast) -> None:
    """Finding 2: the previous name of a RENAME that was never stored does not appear anywhere.

    Events arrive in any order, so the previous name is kept as a placeholder marked RENAMED (the
    RENAME may arrive before the events of the old name): hidden from lists and lookups, and made
    only in a namespace the sender may write (see the test above for another namespace).
    """
    previous = {"namespace": "team-a", "name": "never_existed"}
    rename = facet(lifecycleStateChange="RENAME", previousIdentifier=previous)
    event = dataset_event("team-a", "renamed_here", lifecycleStateChange=rename)
    with cast.client("alice") as alice:
        assert alice.post("/api/v1/lineage", json=event).status_code == 201
        gone = alice.get("/api/v1/namespaces/team-a/datasets/never_existed")
    assert gone.status_code == 404
    names = dataset_names(cast, "alice", "team-a")
    assert "renamed_here" in names and "never_existed" not in names
    assert ("team-a", "renamed_here") in stored_datasets(cast)


@pytest.mark.parametrize(
    ("where", "facets"),
    [
        ("symlinks", {"symlinks": facet(identifiers=[{"namespace": "team-b", "name": "scores", "type": "TABLE"}])}),
        (
            "columnLineage",
            {
                "columnLineage": facet(
                    fields={"x": {"inputFields": [{"namespace": "team-b", "name": "final", "field": "x"}]}}
                )
            },
        ),
    ],
)
def test_identifiers_inside_facets_are_authorised(cast: Cast, where: str, facets: dict[str, Any]) -> None:
    """Finding 2 (symlinks) and finding 4 (columnLineage input fields)."""
    event = run_event(
        "COMPLETE",
        str(uuid.uuid4()),
        "team-a",
        "job_" + where,
        outputs=[{"namespace": "team-a", "name": f"out_{where}", "facets": facets}],
    )
    with cast.client("alice") as alice:
        assert where in refused(alice.post("/api/v1/lineage", json=event))
    assert f"out_{where}" not in dataset_names(cast, "alice", "team-a")


def test_column_lineage_is_no_existence_oracle(cast: Cast) -> None:
    """Finding 4: naming an existing hidden dataset and a missing one gets the same answer."""
    answers = []
    for name in ("final", "no_such_dataset"):
        lineage = facet(fields={"x": {"inputFields": [{"namespace": "team-b", "name": name, "field": "x"}]}})
        event = run_event(
            "COMPLETE",
            str(uuid.uuid4()),
            "team-a",
            "probe",
            outputs=[{"namespace": "team-a", "name": "probe_out", "facets": {"columnLineage": lineage}}],
        )
        with cast.client("alice") as alice:
            response = alice.post("/api/v1/lineage", json=event)
        answers.append((response.status_code, response.json()["detail"].replace(name, "NAME")))
    assert answers[0] == answers[1] and answers[0][0] == 403


def test_a_parent_run_in_another_namespace_is_authorised(cast: Cast) -> None:
    parent = facet(run={"runId": cast.bob_run}, job={"namespace": "team-b", "name": "nightly"})
    event = run_event("START", str(uuid.uuid4()), "team-a", "child", run_facets={"parent": parent})
    with cast.client("alice") as alice:
        assert "parent" in refused(alice.post("/api/v1/lineage", json=event))


def test_names_are_normalised_before_the_decision(cast: Cast) -> None:
    """Finding 9: carol owns team-c*; 'team-c' + U+0327 is stored as 'team-ç', outside her grant."""
    event = dataset_event("team-c\u0327", "sneaky")
    with cast.client("carol") as carol:
        detail = refused(carol.post("/api/v1/lineage", json=event))
        assert "team-\u00e7" in detail
        assert carol.post("/api/v1/lineage", json=dataset_event("team-cx", "fine")).status_code == 201
    with cast.client("admin") as admin:
        namespaces = {n["name"] for n in admin.get("/api/v1/namespaces").json()["namespaces"]}
    assert "team-\u00e7" not in namespaces and "team-cx" in namespaces


def test_run_id_prefixes_reveal_no_hidden_run(cast: Cast) -> None:
    """Finding 3: prefixes resolve among the runs the caller may see; a hidden run answers as a missing one."""
    hidden = ["ffffeeee-0000-4000-8000-000000000001", "ffffeeee-0000-4000-8000-000000000002"]
    mine = "ffffeeee-1111-4000-8000-000000000003"
    with cast.client("bob") as bob:
        for run_id in hidden:
            assert bob.post("/api/v1/lineage", json=run_event("START", run_id, "team-b", "b")).status_code == 201
    with cast.client("alice") as alice:
        assert alice.post("/api/v1/lineage", json=run_event("START", mine, "team-a", "a")).status_code == 201
        # Two hidden runs share 'ffffeeee-0000': not ambiguous for alice, just absent, as a made-up prefix is.
        probes = {p: alice.get(f"/api/v1/runs/{p}") for p in ("ffffeeee-0000", "ffffeeee-9999", hidden[0])}
        answers = {(r.status_code, r.json()["detail"].replace(p, "ID")) for p, r in probes.items()}
        assert answers == {(404, "no run with id 'ID'; `datatrail runs` lists them")}
        # Her own run is the one run she may see under 'ffff', though three share it.
        found = alice.get("/api/v1/runs/ffffeeee")
        assert found.status_code == 200 and found.json()["id"] == mine
        assert alice.get("/api/v1/runs/fff").status_code == 400  # too short to be a prefix
    with cast.client("bob") as bob:  # bob sees both of his: for him the prefix is ambiguous
        assert bob.get("/api/v1/runs/ffffeeee-0000").status_code == 400
    with cast.client("admin") as admin:
        log = admin.get("/api/v1/audit", params={"user": "alice", "action": "run.read", "limit": 50}).json()
    denied = {e["target"] for e in log["entries"] if e["outcome"] == "denied"}
    assert {"run:ffffeeee-0000", "run:ffffeeee-9999", f"run:{hidden[0]}"} <= denied
