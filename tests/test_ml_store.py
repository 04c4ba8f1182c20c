"""The ML lifecycle over every store (SQLite, PostgreSQL, HTTP): models, evaluations, deployments, drift, impact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import datatrail
from datatrail.core.errors import InvalidInput, NotFound
from tests.conftest import write


def table(path: Path, seed: int, shift: float = 0.0, rows: int = 400) -> Path:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, rows).round(3),
            "y": rng.normal(0.0, 1.0, rows).round(3),
            "colour": rng.choice(["red", "green", "blue"], rows, p=[0.2, 0.3, 0.5] if not shift else [0.6, 0.3, 0.1]),
            "label": rng.integers(0, 2, rows),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def trained(trail: datatrail.Trail, workdir: Path) -> tuple[datatrail.Trail, datatrail.Version, datatrail.Version]:
    """A model trained on data/train.csv, with its training run."""
    table(workdir / "data" / "train.csv", seed=1)
    with trail.run("train", params={"C": 0.5}, job_type="train") as run:
        train = run.input(workdir / "data" / "train.csv")
        frame = pd.read_csv(workdir / "data" / "train.csv")
        model = LogisticRegression(C=0.5).fit(frame[["x", "y"]], frame["label"])
        run.log_metric("train_accuracy", 0.61)
        version = run.output(model, name="models/clf", kind="model")
    return trail, version, train


def test_model_card_answers_trained_and_evaluated_on(
    trained: tuple[datatrail.Trail, datatrail.Version, datatrail.Version], workdir: Path
) -> None:
    trail, model, train = trained
    test = trail.add(table(workdir / "data" / "test.csv", seed=2), name="data/test.csv")
    run = trail.evaluate(model, test, metrics={"accuracy": 0.58, "f1": 0.5})
    assert run.metrics == {"accuracy": 0.58, "f1": 0.5}
    assert {v.ref for v in run.inputs} == {model.ref, test.ref}
    card = trail.model_card("models/clf@1")
    assert card.version.kind == "model" and card.version.format == "skops"
    assert card.version.properties["framework"] == "scikit-learn"
    assert [v.ref for v in card.training_data] == [train.ref]
    assert card.training_run is not None and card.training_run.params["C"] == 0.5
    assert card.training_run.metrics == {"train_accuracy": 0.61}
    assert [(e.id, e.metrics) for e in card.evaluations] == [(run.id, {"accuracy": 0.58, "f1": 0.5})]
    assert [v.ref for v in card.evaluations[0].inputs if v.kind == "dataset"] == [test.ref]
    data = card.to_dict()
    assert data["evaluations"][0]["datasets"] == [test.ref]
    # The same evaluation again is the one recorded; other metrics are another evaluation.
    assert trail.evaluate(model, test, metrics={"accuracy": 0.58, "f1": 0.5}).id == run.id
    assert trail.evaluate(model, test, metrics={"accuracy": 0.6}).id != run.id
    assert len(trail.model_card(model).evaluations) == 2


def test_evaluate_refuses_bad_metrics_and_writes_nothing(
    trained: tuple[datatrail.Trail, datatrail.Version, datatrail.Version],
) -> None:
    trail, model, train = trained
    before = len(trail.runs(limit=1000))
    for metrics in ({}, {"accuracy": "high"}, {"accuracy": float("nan")}, {"": 1.0}):
        with pytest.raises(InvalidInput):
            trail.evaluate(model, train, metrics=metrics)  # type: ignore[arg-type]
    assert len(trail.runs(limit=1000)) == before


def test_deploy_retires_the_previous_version_and_moves_the_alias(
    trained: tuple[datatrail.Trail, datatrail.Version, datatrail.Version],
) -> None:
    trail, first, train = trained
    with trail.run("train", job_type="train") as run:
        run.input(train)
        second = run.output(LogisticRegression(C=2.0).fit([[0, 0], [1, 1]], [0, 1]), name="models/clf", kind="model")
    assert second.number == 2
    d1 = trail.deploy(first, env="production")
    assert d1.active and d1.environment == "production" and d1.deployed_by == trail.user
    assert trail.get("models/clf@production").number == 1
    d2 = trail.deploy("models/clf@2", env="production")
    trail.deploy("models/clf@1", env="staging")
    assert trail.get("models/clf@production").number == 2
    assert trail.get("models/clf@staging").number == 1
    prod = trail.deployments("production")
    assert [(d.version, d.active) for d in prod] == [(2, True), (1, False)]
    assert prod[1].retired_at == d2.deployed_at and prod[1].retired_by_run_id == d2.run_id
    live = trail.deployments(active=True)
    assert sorted((d.environment, d.version) for d in live) == [("production", 2), ("staging", 1)]
    assert [d.version for d in trail.deployments(name="models/clf", active=True)] in ([2, 1], [1, 2])
    assert trail.deployments("nowhere") == []
    card = trail.model_card(first)
    assert sorted((d.environment, d.active) for d in card.deployments) == [("production", False), ("staging", True)]


def test_deploy_refuses_bad_input_and_writes_nothing(
    trained: tuple[datatrail.Trail, datatrail.Version, datatrail.Version],
) -> None:
    trail, model, _ = trained
    before = len(trail._store.audit_log(10_000))
    with pytest.raises(InvalidInput, match="environment"):
        trail.deploy(model, env="latest")
    with pytest.raises(InvalidInput):
        trail.deploy(model, env="prod/eu")
    with pytest.raises(NotFound):
        trail.deploy("models/clf@9", env="production")
    assert len(trail._store.audit_log(10_000)) == before


def test_monitor_stores_the_report_with_both_versions_and_the_deployment(
    trained: tuple[datatrail.Trail, datatrail.Version, datatrail.Version], workdir: Path
) -> None:
    trail, model, train = trained
    with pytest.raises(InvalidInput, match="nothing is deployed in production"):
        trail.monitor("data/train.csv", env="production")
    deployment = trail.deploy(model, env="production")
    calm = trail.add(table(workdir / "batches" / "b1.csv", seed=3), name="batches/b1")
    shifted = trail.add(table(workdir / "batches" / "b2.csv", seed=4, shift=1.5), name="batches/b2")
    r1 = trail.monitor(calm, env="production")
    r2 = trail.monitor(shifted, env="production")
    assert r1.reference == train.ref  # the deployed model's training data
    assert not r1.drifted and r2.drifted
    assert {c["name"] for c in r2.drift.drifted_columns} == {"x", "colour"}
    stored = trail._store.drift_reports(environment="production")
    assert [(r.run_id, r.current, r.reference, r.drifted) for r in stored] == [
        (r1.run_id, calm.ref, train.ref, False),
        (r2.run_id, shifted.ref, train.ref, True),
    ]
    assert all(r.deployment_run_id == deployment.run_id for r in stored)
    assert stored[1].report == r2.report
    history = trail.drift_history("production")
    assert history.deployment is not None and history.deployment.run_id == deployment.run_id
    batches = history.to_dict()["batches"]
    assert [b["current"] for b in batches] == [calm.ref, shifted.ref]
    assert batches[1]["scores"]["x"] == pytest.approx(r2.drift.column("x")["psi"])
    # The same batch monitored again with the same result is the stored report; the live model
    # deployed again is its deployment: neither is stored twice, and the history goes on.
    assert trail.monitor(calm, env="production").run_id == r1.run_id
    assert trail.deploy(model, env="production") == deployment
    assert len(trail.deployments("production")) == 1
    assert len(trail._store.drift_reports(environment="production")) == 2
    assert len(trail.drift_history("production").records) == 2
    # A new deployment starts a new history.
    with trail.run("train", job_type="train") as run:
        run.input(train)
        second = run.output(LogisticRegression(C=2.0).fit([[0, 0], [1, 1]], [0, 1]), name="models/clf", kind="model")
    assert trail.deploy(second, env="production").run_id != deployment.run_id
    assert trail.drift_history("production").records == ()
    # Without an environment, a reference is needed and the report is stored without one.
    r3 = trail.monitor(shifted, reference=calm)
    assert r3.environment is None and r3.deployment_run_id is None
    assert [r.current for r in trail._store.drift_reports(name="batches/b2")] == [shifted.ref, shifted.ref]
    with pytest.raises(InvalidInput, match="reference"):
        trail.monitor(shifted)


def test_impact_lists_downstream_datasets_models_and_live_deployments(
    trained: tuple[datatrail.Trail, datatrail.Version, datatrail.Version], workdir: Path
) -> None:
    trail, model, train = trained
    with trail.run("score", job_type="predict") as run:
        run.input(model)
        out = run.output(write(workdir / "out" / "scores.csv", "id,score\n1,0.5\n"), name="out/scores")
    trail.deploy(model, env="production")
    found = trail.impact(train)
    assert [m["ref"] for m in found.models] == [model.ref]
    assert [d["ref"] for d in found.datasets] == [out.ref]
    assert [(d.environment, d.ref) for d in found.deployments] == [("production", model.ref)]
    assert {r["job"] for r in found.runs} == {"train", "score", "deploy"}
    assert trail.impact(out).models == () and trail.impact(out).deployments == ()
