"""Importing MLflow runs from a real local SQLite tracking store made with the mlflow package."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.core.errors import NotFound
from datatrail.interop.mlflow import import_mlflow
from datatrail.interop.openlineage import export_events
from tests.test_events import validate_event

runner = CliRunner()


@dataclass
class Tracking:
    uri: str
    train_csv: Path
    fit_run: str
    failed_run: str
    other_run: str
    model_id: str
    model_dir: Path
    dataset_digest: str


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Tracking:
    """Two experiments: `penguins` (a finished run with params, a metric history, a dataset input and a
    logged sklearn model, and a failed run) and `other` (one run)."""
    folder = tmp_path_factory.mktemp("mlflow")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's own deprecation and future warnings
        import mlflow
        import pandas as pd
        from sklearn.linear_model import LinearRegression

        uri = f"sqlite:///{folder / 'mlflow.db'}"
        mlflow.set_tracking_uri(uri)
        mlflow.create_experiment("penguins", artifact_location=(folder / "artifacts").as_uri())
        mlflow.create_experiment("other", artifact_location=(folder / "other").as_uri())
        df = pd.DataFrame({"bill_length_mm": [39.1, 39.5, 40.3, 36.7], "body_mass_g": [3750, 3800, 3250, 3450]})
        train_csv = folder / "train.csv"
        df.to_csv(train_csv, index=False)
        mlflow.set_experiment("penguins")
        with mlflow.start_run(run_name="fit") as fit:
            mlflow.log_params({"alpha": 0.5, "fit_intercept": True})
            for step, loss in enumerate([1.0, 0.5, 0.25]):
                mlflow.log_metric("loss", loss, step=step)
            mlflow.log_metric("r2", 0.9)
            dataset = mlflow.data.from_pandas(df, source=str(train_csv), name="penguins-train", targets="body_mass_g")
            mlflow.log_input(dataset, context="training")
            model = LinearRegression().fit(df[["bill_length_mm"]], df["body_mass_g"])
            info = mlflow.sklearn.log_model(model, name="regressor", serialization_format="cloudpickle")
        with mlflow.start_run(run_name="broken") as failed:
            mlflow.log_param("alpha", 2)
        mlflow.MlflowClient(uri).set_terminated(failed.info.run_id, "FAILED")
        mlflow.set_experiment("other")
        with mlflow.start_run() as other:
            mlflow.log_metric("m", 1)
        logged = mlflow.MlflowClient(uri).get_logged_model(info.model_id)
        model_dir = Path(logged.artifact_location.removeprefix("file://"))
        mlflow.set_tracking_uri("")
    return Tracking(
        uri, train_csv, fit.info.run_id, failed.info.run_id, other.info.run_id, info.model_id, model_dir, dataset.digest
    )


@pytest.fixture
def local(workdir: Path) -> Iterator[datatrail.Trail]:
    t = datatrail.init(workdir)
    try:
        yield t
    finally:
        t.close()


def test_runs_params_metrics_inputs_and_models(trail: datatrail.Trail, tracking: Tracking) -> None:
    summary = import_mlflow(trail, tracking.uri, experiment="penguins")
    fit = trail.get_run(str(uuid.UUID(hex=tracking.fit_run)))
    assert fit.job == "penguins" and fit.state.value == "COMPLETE"
    assert fit.params == {"alpha": "0.5", "fit_intercept": "True"}
    assert fit.metrics == {"loss": 0.25, "r2": 0.9}
    assert fit.code["mlflow"]["run_id"] == tracking.fit_run
    assert fit.started_at is not None and fit.ended_at is not None and fit.started_at < fit.ended_at
    [data] = fit.inputs
    assert data.name == "penguins-train"
    assert str(data.digest) == "sha256:" + hashlib.sha256(tracking.train_csv.read_bytes()).hexdigest()
    assert data.properties["mlflow"]["digest"] == tracking.dataset_digest
    assert data.properties["mlflow"]["context"] == "training"
    assert [c["name"] for c in trail.profile(data)["columns"]] == ["bill_length_mm", "body_mass_g"]  # type: ignore[index]
    [model] = fit.outputs
    assert (model.name, model.kind) == ("mlflow/penguins/regressor", "model")
    assert model.properties["mlflow"]["model_id"] == tracking.model_id
    assert model.file_count == len([p for p in tracking.model_dir.rglob("*") if p.is_file()])
    assert "MLmodel" in {f.path for f in trail.manifest(model)}
    failed = trail.get_run(str(uuid.UUID(hex=tracking.failed_run)))
    assert failed.state.value == "FAIL" and failed.params == {"alpha": "2"}
    assert sorted(summary.runs) == sorted(str(uuid.UUID(hex=r)) for r in (tracking.fit_run, tracking.failed_run))
    assert sorted(summary.new_versions) == ["mlflow/penguins/regressor@1", "penguins-train@1"]
    with pytest.raises(NotFound):
        trail.get_run(str(uuid.UUID(hex=tracking.other_run)))


def test_metric_history_keeps_every_step(local: datatrail.Trail, tracking: Tracking) -> None:
    import_mlflow(local, tracking.uri, experiment="penguins")
    events = [e for _, e in local.catalog.events(limit=100)]
    for event in export_events(local):
        validate_event(event)  # the official 2-0-2 schemas, standard facets included
    final = next(e for e in events if e.get("eventType") == "COMPLETE")
    assert final["run"]["facets"]["datatrail_metrics"]["metrics"]["loss"] == [[0, 1.0], [1, 0.5], [2, 0.25]]


def test_reimport_adds_nothing_and_all_experiments(local: datatrail.Trail, tracking: Tracking) -> None:
    import_mlflow(local, tracking.uri, experiment="penguins")
    again = import_mlflow(local, tracking.uri, experiment="penguins")
    assert (again.events, again.new_versions, again.runs) == (0, [], [])
    everything = import_mlflow(local, tracking.uri)
    assert everything.runs == [str(uuid.UUID(hex=tracking.other_run))]
    assert local.get_run(str(uuid.UUID(hex=tracking.other_run))).job == "other"


def test_cli_import_mlflow(local: datatrail.Trail, tracking: Tracking) -> None:
    result = runner.invoke(
        app, ["import", "mlflow", "--tracking-uri", tracking.uri, "--experiment", "penguins", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert "mlflow/penguins/regressor@1" in summary["new_versions"] and len(summary["runs"]) == 2
    result = runner.invoke(app, ["import", "mlflow", "--tracking-uri", tracking.uri, "--experiment", "nope"])
    assert result.exit_code == 3
    assert "no MLflow experiment named 'nope'" in result.stderr and "penguins" in result.stderr
    assert result.stderr.count("\n") == 1
    result = runner.invoke(app, ["import", "mlflow"], env={"MLFLOW_TRACKING_URI": ""})
    assert result.exit_code == 2 and "--tracking-uri" in result.stderr
    result = runner.invoke(app, ["import", "dvc", "--experiment", "x"])
    assert result.exit_code == 2 and "--experiment applies to `mlflow`" in result.stderr


def test_local_paths_the_database_names_elsewhere_are_not_read(local: datatrail.Trail, tmp_path: Path) -> None:
    """A tracking database may name any path as a dataset's source: only files inside its folder (or the
    project) are hashed; others are recorded by their URI, unread, and a FIFO never blocks the import."""
    folder = tmp_path / "tracking"
    folder.mkdir()
    secret = tmp_path / "elsewhere" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text("key\n0123456789\n")
    inside = folder / "train.csv"
    inside.write_text("a\n1\n")
    fifo = folder / "pipe.csv"
    os.mkfifo(fifo)
    (folder / "sneaky.csv").symlink_to(secret)  # inside by name, outside once resolved
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    sources = {"secret": secret, "hostname": Path("/etc/hostname"), "pipe": fifo, "sneaky": folder / "sneaky.csv"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow
        import pandas as pd

        mlflow.set_tracking_uri(uri)
        try:
            mlflow.create_experiment("hostile", artifact_location=(folder / "artifacts").as_uri())
            mlflow.set_experiment("hostile")
            df = pd.DataFrame({"a": [1]})
            with mlflow.start_run():
                for name, source in {**sources, "inside": inside}.items():
                    mlflow.log_input(mlflow.data.from_pandas(df, source=str(source), name=name), context="training")
        finally:
            mlflow.set_tracking_uri("")
    summary = import_mlflow(local, uri, experiment="hostile")
    [run] = local.runs("hostile")
    versions = {v.name: v for v in run.inputs}
    for name, source in sources.items():
        assert versions[name].digest is None and versions[name].uri == str(source), name
        assert versions[name].key.startswith("mlflow:") and versions[name].size is None
    assert str(versions["inside"].digest) == "sha256:" + hashlib.sha256(inside.read_bytes()).hexdigest()
    secret_digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    assert secret_digest not in json.dumps([e for _, e in local.catalog.events(limit=100)])
    notes = "\n".join(summary.skipped)
    assert "dataset secret:" in notes and "dataset sneaky:" in notes and "outside the MLflow tracking folder" in notes
    assert "dataset pipe:" in notes and "not a regular file or folder" in notes
