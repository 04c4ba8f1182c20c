"""The configuration examples of examples/openlineage/, used as written against a real `datatrail serve`.

openlineage.yml, dbt.env and airflow.cfg are loaded the way openlineage-python
(which dbt-ol and Airflow's provider use) loads them; spark-defaults.conf
cannot run Spark here, so its transport settings are replayed with httpx the
way the Spark listener's HTTP transport sends events.
"""

from __future__ import annotations

import configparser
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState

import datatrail
from tests import httpserver

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "openlineage"
KEY = "integration-key"
PLACEHOLDER_URL = "http://datatrail.example.com:8000"
PLACEHOLDER_KEY = "replace-with-a-datatrail-token"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpserver.Server]:
    with httpserver.running(tmp_path_factory.mktemp("integrations"), {"DATATRAIL_API_KEYS": f"ol={KEY}"}) as srv:
        yield srv


def example(name: str, server: httpserver.Server) -> str:
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    assert PLACEHOLDER_URL in text
    return text.replace(PLACEHOLDER_URL, server.uri).replace(PLACEHOLDER_KEY, KEY)


def emit(client: OpenLineageClient, namespace: str, job: str) -> str:
    run_id = str(uuid.uuid4())
    for state in (RunState.START, RunState.COMPLETE):
        client.emit(
            RunEvent(
                eventType=state,
                eventTime=datetime.now(UTC).isoformat(),
                run=Run(runId=run_id),
                job=Job(namespace=namespace, name=job),
                producer="https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/dbt",
                inputs=[InputDataset(namespace="postgres://db:5432", name="shop.public.orders")],
                outputs=[OutputDataset(namespace="postgres://db:5432", name="shop.analytics.daily")],
            )
        )
    return run_id


def recorded(server: httpserver.Server, run_id: str) -> datatrail.Run:
    trail = datatrail.connect(server.store)
    try:
        return trail.get_run(run_id)
    finally:
        trail.close()


def test_openlineage_yml(server: httpserver.Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "openlineage.yml"
    config.write_text(example("openlineage.yml", server), encoding="utf-8")
    for var in ("OPENLINEAGE_URL", "OPENLINEAGE_API_KEY", "OPENLINEAGE_ENDPOINT", "OPENLINEAGE_DISABLED"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENLINEAGE_CONFIG", str(config))
    run_id = emit(OpenLineageClient(), "dbt://analytics", "shop.daily")
    run = recorded(server, run_id)
    assert run.state is datatrail.RunState.COMPLETE and run.job == "shop.daily"
    assert [v.name for v in run.outputs] == ["shop.analytics.daily"]


def test_dbt_environment(server: httpserver.Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENLINEAGE_CONFIG", raising=False)
    monkeypatch.chdir(EXAMPLES.parent)  # no openlineage.yml in the working directory
    for line in example("dbt.env", server).splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            monkeypatch.setenv(key, value)
    run_id = emit(OpenLineageClient(), "dbt://analytics", "shop.model.daily")
    assert recorded(server, run_id).namespace == "dbt://analytics"


def test_airflow_cfg(server: httpserver.Server) -> None:
    cfg = configparser.ConfigParser()
    cfg.read_string(example("airflow.cfg", server))
    transport = json.loads(cfg["openlineage"]["transport"])
    namespace = cfg["openlineage"]["namespace"]
    run_id = emit(OpenLineageClient(config={"transport": transport}), namespace, "nightly.extract")
    assert recorded(server, run_id).namespace == "airflow://prod"


def test_spark_defaults(server: httpserver.Server) -> None:
    conf = dict(
        line.split(None, 1) for line in example("spark-defaults.conf", server).splitlines() if line and line[0] != "#"
    )
    prefix = "spark.openlineage.transport."
    assert conf[prefix + "type"] == "http" and conf[prefix + "auth.type"] == "api_key"
    run_id = str(uuid.uuid4())
    event = {
        "eventType": "COMPLETE",
        "eventTime": datetime.now(UTC).isoformat(),
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": {}},
        "job": {"namespace": conf["spark.openlineage.namespace"], "name": "etl.write_orders"},
        "inputs": [{"namespace": "s3://lake", "name": "raw/orders"}],
        "outputs": [{"namespace": "s3://lake", "name": "staged/orders"}],
    }
    url = conf[prefix + "url"].rstrip("/") + conf[prefix + "endpoint"]
    response = httpx.post(url, json=event, headers={"Authorization": f"Bearer {conf[prefix + 'auth.apiKey']}"})
    assert response.status_code in (200, 201), response.text
    assert recorded(server, run_id).job == "etl.write_orders"
    denied = httpx.post(url, json=event, headers={"Authorization": "Bearer wrong"})
    assert denied.status_code == 401
