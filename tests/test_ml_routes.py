"""The ML routes in-process: the shapes the UI and the HTTP store read, and 4xx errors as JSON."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

import datatrail
from datatrail.server.app import create_app
from tests.conftest import write


def test_deployments_drift_and_evaluations_routes(workdir: Path) -> None:
    trail = datatrail.init(workdir)
    try:
        a = trail.add(write(workdir / "a.csv", "x,c\n" + "".join(f"{i % 10},r\n" for i in range(200))), name="a")
        b = trail.add(write(workdir / "b.csv", "x,c\n" + "".join(f"{i % 10 + 5},b\n" for i in range(200))), name="b")
        with trail.run("train", job_type="train") as run:
            run.input(a)
            model = run.output(write(workdir / "model.bin", b"weights"), name="model", kind="model")
        trail.evaluate(model, b, metrics={"accuracy": 0.5})
        trail.deploy(model, env="production")
        trail.monitor(b, env="production")
        uri = trail.location.uri
    finally:
        trail.close()
    with TestClient(create_app(uri)) as client:
        deployments = client.get("/api/v1/deployments", params={"environment": "production"}).json()["deployments"]
        assert [(d["ref"], d["active"]) for d in deployments] == [("model@1", True)]
        reports = client.get("/api/v1/drift", params={"environment": "production"}).json()["reports"]
        assert [(r["reference"], r["current"], r["drifted"]) for r in reports] == [("a@1", "b@1", True)]
        assert reports[0]["report"]["drifted_columns"] == ["x", "c"]
        runs = client.get("/api/v1/evaluations", params={"namespace": "default", "name": "model", "version": 1})
        assert [r["metrics"] for r in runs.json()["runs"]] == [{"accuracy": 0.5}]
        missing = client.get("/api/v1/evaluations", params={"namespace": "default", "name": "nope", "version": 1})
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        bad = client.get("/api/v1/evaluations", params={"namespace": "default", "name": "model", "version": 0})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_input"
