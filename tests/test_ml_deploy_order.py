"""Deployments derived from deploy events do not depend on the order the events arrive in."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from datatrail.core.changes import VersionInfo
from datatrail.core.errors import Conflict, InvalidInput
from datatrail.core.model import Digest, RunState
from datatrail.events import build_dataset_event, build_run_event
from datatrail.ml.lifecycle import facet
from datatrail.store.sql.store import SqlStore

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
KEYS = [str(Digest.sha256(f"{i:064x}")) for i in range(1, 4)]


def version_event(key: str) -> dict[str, Any]:
    info = VersionInfo(key=key, digest=Digest.parse(key), size=10, kind="model")
    return build_dataset_event("default", "models/m", info)


def deploy_event(key: str, env: str, minutes: int) -> dict[str, Any]:
    run_id = str(uuid.UUID(int=minutes + 1))
    event = build_run_event(
        RunState.COMPLETE, run_id, "default", "deploy", inputs=[("default", "models/m", key)], job_type="deploy"
    )
    event["eventTime"] = (T0 + timedelta(minutes=minutes)).isoformat()
    event["run"]["facets"]["datatrail_deployment"] = facet("datatrail_deployment", "X", environment=env)
    event["inputs"][0]["facets"]["datatrail_alias"] = facet(
        "datatrail_alias", "DatatrailAliasFacet", datasetVersion=key, aliases=[env]
    )
    return event


def state(store: SqlStore) -> tuple[Any, ...]:
    deployments = tuple(
        (d.environment, d.version, d.deployed_at, d.retired_at, d.run_id, d.retired_by_run_id)
        for d in sorted(store.deployments(), key=lambda d: d.run_id)
    )
    aliases = tuple(sorted((a, v.number) for v in store.list_versions("default", "models/m") for a in v.aliases))
    return deployments, aliases


EVENTS = [
    deploy_event(KEYS[0], "production", 0),
    deploy_event(KEYS[1], "production", 10),
    deploy_event(KEYS[2], "production", 20),
    deploy_event(KEYS[0], "staging", 5),
]


def test_deployments_converge_whatever_the_arrival_order(tmp_path: Path) -> None:
    results = set()
    for i, order in enumerate(itertools.permutations(EVENTS)):
        store = SqlStore(f"sqlite:///{tmp_path / f'{i}.db'}", create=True)
        try:
            for key in KEYS:
                store.ingest(version_event(key), "ada", "dataset.add")
            for event in order:
                store.ingest(event, "ada", "model.deploy")
            store.ingest(order[0], "ada", "model.deploy")  # a repeat changes nothing
            results.add(state(store))
        finally:
            store.close()
    assert len(results) == 1
    deployments, aliases = results.pop()
    by_run = {d[4]: d for d in deployments}
    run = [str(uuid.UUID(int=m + 1)) for m in (0, 10, 20, 5)]
    assert by_run[run[0]][3] == T0 + timedelta(minutes=10) and by_run[run[0]][5] == run[1]
    assert by_run[run[1]][3] == T0 + timedelta(minutes=20) and by_run[run[1]][5] == run[2]
    assert by_run[run[2]][3] is None and by_run[run[3]][3] is None  # live in production and in staging
    assert aliases == (("production", 3), ("staging", 1))


def test_a_deploy_event_needs_one_input_and_a_valid_environment(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'trail.db'}", create=True)
    try:
        store.ingest(version_event(KEYS[0]), "ada", "dataset.add")
        bad = deploy_event(KEYS[0], "production", 0)
        bad["run"]["facets"]["datatrail_deployment"]["environment"] = 7
        with pytest.raises(InvalidInput, match="environment"):
            store.ingest(bad, "ada", "model.deploy")
        none = deploy_event(KEYS[0], "production", 1)
        none["inputs"] = []
        with pytest.raises(InvalidInput, match="exactly one input"):
            store.ingest(none, "ada", "model.deploy")
        assert store.deployments() == [] and store.list_runs() == []
    finally:
        store.close()


def test_a_deploy_run_cannot_be_moved_to_another_environment(tmp_path: Path) -> None:
    """An event reusing a deploy run's id for another environment is refused (409), nothing half-applied."""
    store = SqlStore(f"sqlite:///{tmp_path / 'trail.db'}", create=True)
    try:
        for key in KEYS[:1]:
            store.ingest(version_event(key), "ann", "dataset.add")
        first = deploy_event(KEYS[0], "production", 0)
        store.ingest(first, "ann", "model.deploy")
        before = state(store)
        moved = deploy_event(KEYS[0], "staging", 0)  # the same run id (minutes 0), another environment
        moved["eventTime"] = (T0 + timedelta(minutes=1)).isoformat()
        with pytest.raises(Conflict, match="already deployed to 'production'"):
            store.ingest(moved, "ann", "model.deploy")
        assert state(store) == before
    finally:
        store.close()
