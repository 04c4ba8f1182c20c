"""Models as outputs (real scikit-learn, saved with skops), `show MODEL@N`, and the ML commands of the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.core.errors import InvalidInput
from datatrail.ml.models import serialize

runner = CliRunner()
X = np.arange(400, dtype=float).reshape(200, 2) % 37
Y = (X[:, 0] > 18).astype(int)

TRAIN_SCRIPT = """
import sys, numpy as np, datatrail
from sklearn.ensemble import RandomForestClassifier
X = np.arange(400, dtype=float).reshape(200, 2) % 37
Y = (X[:, 0] > 18).astype(int)
trail = datatrail.connect()
with trail.run("train", job_type="train") as run:
    v = run.output(RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y), name="models/rf", kind="model")
print(v.ref, v.digest)
"""


def test_an_sklearn_model_is_saved_hashed_and_loaded_back(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    model = Pipeline([("scale", StandardScaler()), ("forest", RandomForestClassifier(n_estimators=5, random_state=0))])
    model.fit(X, Y)
    with sqlite_trail.run("train", params={"n_estimators": 5}, job_type="train") as run:
        version = run.output(model, name="models/rf", kind="model")
    assert version.kind == "model" and version.format == "skops"
    assert version.properties["class"] == "sklearn.pipeline.Pipeline"
    path = Path(version.uri.removeprefix("file://"))  # type: ignore[union-attr]
    assert path.parent == workdir / ".datatrail" / "objects"
    assert path.name == f"{version.digest.hex}.skops"  # type: ignore[union-attr]
    assert sqlite_trail.verify([version.ref]).ok
    with pytest.raises(InvalidInput, match=r"sklearn\.tree\._tree\.Tree"):
        sqlite_trail.load_model(version)  # skops refuses types it does not trust unless told
    loaded = sqlite_trail.load_model(version, trusted=["sklearn.tree._tree.Tree"])
    assert (loaded.predict(X) == model.predict(X)).all()


def test_the_same_model_trained_twice_is_one_version(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    """skops names objects by memory address; the saved bytes must not depend on it (separate processes)."""
    env = {**os.environ, "DATATRAIL_USER": "ada"}
    outputs = [
        subprocess.run([sys.executable, "-c", TRAIN_SCRIPT], cwd=workdir, env=env, capture_output=True, text=True)
        for _ in range(2)
    ]
    assert all(o.returncode == 0 for o in outputs), outputs[0].stderr
    assert outputs[0].stdout == outputs[1].stdout
    assert outputs[0].stdout.startswith("models/rf@1 sha256:")
    assert len(sqlite_trail.versions("models/rf")) == 1
    assert len(sqlite_trail.runs("train")) == 2


def test_in_memory_tables_and_unsupported_objects(sqlite_trail: datatrail.Trail) -> None:
    frame = pd.DataFrame({"a": [1, 2, 2], "b": ["x", "y", None]})
    with sqlite_trail.run("prep") as run:
        version = run.output(frame, name="tables/prep")
        assert version.format == "arrow" and version.kind == "dataset"
        with pytest.raises(InvalidInput, match="needs a name"):
            run.output(frame)
        with pytest.raises(InvalidInput, match=r"cannot save a builtins\.object safely"):
            run.output(object(), name="models/odd", kind="model")
    profile = sqlite_trail.profile(version)
    assert profile is not None and profile["row_count"] == 3
    with pytest.raises(InvalidInput):
        serialize({"weights": [1, 2]})


def test_show_model_lists_training_data_evaluations_and_deployments(
    sqlite_trail: datatrail.Trail, workdir: Path
) -> None:
    data = workdir / "train.csv"
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "y": Y}).to_csv(data, index=False)
    with sqlite_trail.run("train", params={"depth": 3}, job_type="train") as run:
        train = run.input(data)
        model = run.output(
            RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, Y),
            name="models/rf",
            kind="model",
        )
        run.log_metric("train_accuracy", 0.9)
    sqlite_trail.evaluate(model, train, metrics={"accuracy": 0.875})
    deployed = runner.invoke(app, ["deploy", "models/rf@1", "--env", "staging"])
    assert deployed.exit_code == 0, deployed.output
    assert "deployed models/rf@1 to staging" in deployed.stdout
    shown = runner.invoke(app, ["show", "models/rf@1"])
    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    assert "training data:\n  train.csv@1 sha256:" in text
    assert '"depth": 3' in text and "train_accuracy" in text
    assert "on train.csv@1: accuracy=0.875" in text
    assert "staging: since" in text and "(live)" in text
    body = json.loads(runner.invoke(app, ["show", "models/rf@staging", "--json"]).stdout)
    card = body["model_card"]
    assert [v["ref"] for v in card["training_data"]] == ["train.csv@1"]
    assert card["evaluations"][0]["metrics"] == {"accuracy": 0.875}
    assert card["evaluations"][0]["datasets"] == ["train.csv@1"]
    assert card["deployments"][0]["environment"] == "staging"


def test_deployments_and_impact_commands(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    data = workdir / "train.csv"
    pd.DataFrame({"a": X[:, 0], "y": Y}).to_csv(data, index=False)
    with sqlite_trail.run("train", job_type="train") as run:
        run.input(data)
        run.output(RandomForestClassifier(n_estimators=2, random_state=0).fit(X, Y), name="models/rf", kind="model")
    empty = runner.invoke(app, ["deployments"])
    assert empty.exit_code == 0 and "no deployments yet" in empty.stdout
    for env in ("staging", "production"):
        assert runner.invoke(app, ["deploy", "models/rf@1", "-e", env]).exit_code == 0
    listed = runner.invoke(app, ["deployments", "--env", "production", "--json"])
    assert listed.exit_code == 0
    assert [(d["environment"], d["ref"], d["active"]) for d in json.loads(listed.stdout)] == [
        ("production", "models/rf@1", True)
    ]
    table = runner.invoke(app, ["deployments"]).stdout
    assert "staging" in table and "production" in table and "live" in table
    impact = runner.invoke(app, ["impact", "train.csv@1"])
    assert impact.exit_code == 0, impact.output
    assert "models (1):\n  models/rf@1" in impact.stdout
    assert "live deployments (2):" in impact.stdout
    assert json.loads(runner.invoke(app, ["impact", "train.csv", "--json"]).stdout)["models"][0]["ref"] == "models/rf@1"
    bad = runner.invoke(app, ["deploy", "models/rf@1", "--env", "latest"])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: ")
    gone = runner.invoke(app, ["impact", "nothing@1"])
    assert gone.exit_code == 3


def test_the_examples_of_docs_ml_md_run(workdir: Path) -> None:
    """The ```python blocks of docs/ml.md, in order, in an empty folder (their asserts are the checks)."""
    import re

    text = (Path(__file__).resolve().parents[1] / "docs" / "ml.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 5
    namespace: dict[str, object] = {"__name__": "docs_ml"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/ml.md block {i}", "exec"), namespace)


def test_without_skops_an_sklearn_model_falls_back_to_joblib(tmp_path: Path) -> None:
    """With skops not importable (a shadowing package), scikit-learn models are saved with joblib."""
    shadow = tmp_path / "shadow" / "skops"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named skops')\n")
    script = (
        "from sklearn.linear_model import LogisticRegression\n"
        "from datatrail.ml.models import serialize\n"
        "found = serialize(LogisticRegression().fit([[0], [1]], [0, 1]))\n"
        "print(found.format, found.properties['serializer'], found.payload[:1] == b'\\x80')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["joblib", "joblib", "True"]


class _Payload:
    """A pickle that, loaded, runs a shell command (as a hostile model file would) creating a marker."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _register_model_file(trail: datatrail.Trail, path: Path, fmt: str, name: str, digest: str | None) -> str:
    """A DatasetEvent, as any producer may send, saying the file at ``path`` is a model of format ``fmt``."""
    import uuid

    facet = {
        "_producer": "https://example.com/hostile",
        "_schemaURL": "https://example.com/hostile.json",
        "uri": path.as_uri(),
        "format": fmt,
        "kind": "model",
        "size": path.stat().st_size if path.is_file() else None,
        "digest": digest,
    }
    key = digest or f"opaque:{uuid.uuid4().hex}"
    trail.ingest(
        {
            "eventTime": "2024-05-01T10:00:00+00:00",
            "producer": "https://example.com/hostile",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
            "dataset": {
                "namespace": "default",
                "name": name,
                "facets": {
                    "version": {"_producer": "x", "_schemaURL": "x", "datasetVersion": key},
                    "datatrail_version": facet,
                },
            },
        }
    )
    return f"{name}@latest"


def test_load_model_never_unpickles_on_the_stores_word(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    import hashlib
    import pickle

    from datatrail.core.errors import IntegrityError

    marker = workdir / "pwned"
    evil = workdir / "model.joblib"
    evil.write_bytes(pickle.dumps(_Payload(marker)))
    digest = "sha256:" + hashlib.sha256(evil.read_bytes()).hexdigest()
    ref = _register_model_file(sqlite_trail, evil, "joblib", "models/evil", digest)
    assert sqlite_trail.get(ref).format == "joblib"
    with pytest.raises(InvalidInput, match=r"models/evil@1 is a joblib file, a pickle .* trusted=True"):
        sqlite_trail.load_model(ref)
    with pytest.raises(InvalidInput, match="pickle"):
        sqlite_trail.load_model(ref, trusted=["posix.system"])  # a skops type list does not make a pickle safe
    assert not marker.exists()
    # A version whose file no longer holds its bytes, or that has no digest, is never loaded at all.
    other = workdir / "other.joblib"
    other.write_bytes(pickle.dumps(_Payload(marker), protocol=2))  # other bytes than the digest's
    wrong = _register_model_file(sqlite_trail, other, "joblib", "models/swapped", digest)
    with pytest.raises(IntegrityError, match="does not hold the bytes of models/swapped@1"):
        sqlite_trail.load_model(wrong, trusted=True)
    unverified = _register_model_file(sqlite_trail, other, "joblib", "models/nodigest", None)
    with pytest.raises(InvalidInput, match="no SHA-256 digest"):
        sqlite_trail.load_model(unverified, trusted=True)
    fifo = workdir / "fifo.joblib"
    os.mkfifo(fifo)
    piped = _register_model_file(sqlite_trail, fifo, "joblib", "models/fifo", digest)
    with pytest.raises(InvalidInput, match="not a regular file"):
        sqlite_trail.load_model(piped, trusted=True)  # refused without blocking on the FIFO
    assert not marker.exists()
    # Only the caller's explicit trust loads a pickle: then it does run (so the checks above can fail).
    sqlite_trail.load_model(ref, trusted=True)
    assert marker.exists()


def test_skops_with_trusted_true_and_a_skops_label_on_a_pickle(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    import hashlib
    import pickle

    with sqlite_trail.run("train", job_type="train") as run:
        version = run.output(
            RandomForestClassifier(n_estimators=2, random_state=0).fit(X, Y), name="models/rf", kind="model"
        )
    assert sqlite_trail.load_model(version, trusted=True).predict(X[:3]).shape == (3,)
    marker = workdir / "pwned"
    evil = workdir / "model.skops"
    evil.write_bytes(pickle.dumps(_Payload(marker)))
    digest = "sha256:" + hashlib.sha256(evil.read_bytes()).hexdigest()
    ref = _register_model_file(sqlite_trail, evil, "skops", "models/fake-skops", digest)
    with pytest.raises(InvalidInput, match="not a readable skops file"):
        sqlite_trail.load_model(ref, trusted=True)
    assert not marker.exists()
