"""``datatrail demo``: a real ML pipeline on the Palmer penguins data, recorded end to end.

ingest the raw CSV → clean (checked) → features → train a scikit-learn
classifier → evaluate → deploy to production → score and monitor two later
batches, the second deliberately shifted so it raises a drift alert. Every
step goes through the public API and ``datatrail.autolog()``, in the demo
folder as the working directory, so the runs record that folder (and its git
commit, if it is in a work tree). The source CSV is copied from the
palmerpenguins package into ``source/`` and added as
``palmerpenguins/penguins.csv``. Running it again into the same folder reuses
the unchanged versions and adds new runs of the pipeline's steps; the model
already live is not deployed again, and the same checks, evaluation and drift
reports with the same results are not stored twice.

>>> result = run_demo(Path("/tmp/penguins"), say=print)   # doctest: +SKIP
>>> result.alert.drifted                                   # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import importlib.resources
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import datatrail
from datatrail.config import init_config
from datatrail.core.errors import Conflict, DatatrailError
from datatrail.core.model import Version
from datatrail.core.records import Deployment, DriftRecord
from datatrail.core.text import count
from datatrail.lineage import Graph
from datatrail.service import Trail
from datatrail.store import open_store
from datatrail.viz.html import render_html

SOURCE = "palmerpenguins/penguins.csv"
MODEL = "models/penguin-species"
ENV = "production"
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "bill_ratio"]
CATEGORICAL = ["island", "sex"]
LABEL = "species"
CHECKS: list[dict[str, Any]] = [
    {"rule": "not_null", "column": "sex"},
    {"rule": "not_null", "column": "body_mass_g"},
    {"rule": "between", "column": "body_mass_g", "min": 2000, "max": 7000},
    {"rule": "between", "column": "flipper_length_mm", "min": 150, "max": 250},
    {"rule": "in_set", "column": "species", "values": ["Adelie", "Chinstrap", "Gentoo"]},
    {"rule": "row_count_between", "min": 300, "max": 400},
]
PARAMS = {"n_estimators": 100, "max_depth": 6, "random_state": 0, "test_size": 0.25}


class MissingDemoDependencies(DatatrailError):
    """The demo's libraries (scikit-learn, pandas, palmerpenguins, skops) are not installed."""

    exit_code = 2


@dataclass(frozen=True)
class DemoResult:
    """What the demo made: its folder and store, the model, the deployment, the two drift reports, the HTML file."""

    root: Path
    store_uri: str
    model: Version
    evaluation: dict[str, float]
    deployment: Deployment
    calm: DriftRecord
    alert: DriftRecord
    lineage: Graph
    html: Path
    clean: Version


def _require() -> None:
    missing = []
    for module in ("pandas", "sklearn", "palmerpenguins", "skops"):
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        msg = f"the demo needs {', '.join(missing)}: pip install 'datatrail[demo]'"
        raise MissingDemoDependencies(msg)


SAMPLE = Path("data") / "raw.csv"


def _penguins_csv() -> Path:
    """The Palmer penguins CSV that the palmerpenguins package ships (344 rows; no network)."""
    try:
        import palmerpenguins
    except ImportError:
        msg = "the sample data comes from palmerpenguins: pip install 'datatrail[demo]'"
        raise MissingDemoDependencies(msg) from None
    return Path(str(importlib.resources.files(palmerpenguins) / "data" / "penguins.csv"))


def write_sample_data(folder: Path) -> tuple[Path, int, bool]:
    """Copy the Palmer penguins CSV, byte for byte, to ``folder/data/raw.csv``: its path, rows, and if it was written.

    The README's Quickstart starts from this file. A file already there with the
    same bytes is left alone; one with other bytes is never overwritten.

    >>> write_sample_data(Path("."))   # doctest: +SKIP
    (PosixPath('data/raw.csv'), 344, True)
    """
    source = _penguins_csv()
    target = folder / SAMPLE
    data = source.read_bytes()
    rows = data.count(b"\n") - 1  # after the header line
    if target.exists() or target.is_symlink():
        if target.is_file() and not target.is_symlink() and target.read_bytes() == data:
            return target, rows, False
        msg = f"{target} already exists and is not the sample data; move it away or choose another folder with --dir"
        raise Conflict(msg)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(data)
    partial.replace(target)  # never a half-written raw.csv
    return target, rows, True


def open_demo_store(root: Path) -> Trail:
    """The embedded store of ``root/.datatrail/`` (created if need be), whatever $DATATRAIL_URI says."""
    location = init_config(root)
    uri = f"sqlite:///{location.config_dir / 'trail.db'}" if location.config_dir else location.uri
    location = replace(location, uri=uri)
    return Trail(open_store(uri, create=True), location)


def _features(clean: Any) -> Any:
    out = clean[[LABEL, *CATEGORICAL, *NUMERIC[:-1]]].copy()
    out["bill_ratio"] = (out["bill_length_mm"] / out["bill_depth_mm"]).round(4)
    return out


def _batch(clean: Any, seed: int, shifted: bool) -> Any:
    """A later production batch: a bootstrap sample of the clean data, shifted on demand."""
    import numpy as np

    rng = np.random.default_rng(seed)
    batch = clean.sample(n=300, replace=True, random_state=seed).reset_index(drop=True)
    batch["bill_length_mm"] = (batch["bill_length_mm"] + rng.normal(0, 0.2, len(batch))).round(1)
    if shifted:
        # A new colony on Biscoe with heavier birds, and a sensor that stops reporting sex.
        batch["body_mass_g"] = batch["body_mass_g"] + 650
        batch["flipper_length_mm"] = batch["flipper_length_mm"] + 9
        batch.loc[rng.random(len(batch)) < 0.6, "island"] = "Biscoe"
        batch.loc[rng.random(len(batch)) < 0.3, "sex"] = None
    return _features(batch)


def run_demo(directory: Path | None, *, say: Callable[[str], None]) -> DemoResult:
    """Run the whole pipeline in ``directory`` (a new temporary folder when None); ``say`` reports each step."""
    _require()
    root = (directory or Path(tempfile.mkdtemp(prefix="datatrail-demo-"))).resolve()
    root.mkdir(parents=True, exist_ok=True)
    for folder in ("source", "raw", "clean", "features", "batches", "predictions"):
        (root / folder).mkdir(exist_ok=True)
    trail = open_demo_store(root)
    say(f"demo folder: {root}")
    say(f"store:       {trail.location.uri}")
    # The runs are the demo folder's: their working directory and git state are its own.
    with contextlib.chdir(root):
        source = trail.add(
            _copy_source(root), name=SOURCE, message="the Palmer penguins data of the palmerpenguins package"
        )
        return _pipeline(trail, root, source, say)


def _copy_source(root: Path) -> Path:
    """The package's penguins.csv, copied into ``source/`` (again only if it differs)."""
    package = _penguins_csv()
    copy = root / "source" / "penguins.csv"
    if not copy.is_file() or copy.read_bytes() != package.read_bytes():
        shutil.copyfile(package, copy)
    return copy


def _pipeline(trail: Trail, root: Path, source: Version, say: Callable[[str], None]) -> DemoResult:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    datatrail.autolog(trail=trail)
    try:
        with trail.run("ingest", job_type="ingest") as run:
            raw = pd.read_csv(root / "source" / "penguins.csv")  # autolog: the input is palmerpenguins/penguins.csv
            raw.to_csv(root / "raw" / "penguins.csv", index=False)
        say(f"1. ingest    {run.outputs[0].ref}: {count(len(raw), 'row')} from {source.ref}")

        with trail.run("clean", params={"dropna": ["sex", "body_mass_g"]}, job_type="transform") as run:
            df = pd.read_csv(root / "raw" / "penguins.csv")
            clean = df.dropna(subset=["sex", "body_mass_g"]).reset_index(drop=True)
            clean.to_csv(root / "clean" / "penguins.csv", index=False)
            run.log_metric("rows_dropped", len(df) - len(clean))
        clean_version = run.outputs[0]
        report = trail.check(clean_version, CHECKS)
        state = "passed" if report.passed else "FAILED"
        say(f"2. clean     {clean_version.ref}: {count(len(clean), 'row')}; {count(len(CHECKS), 'check')} {state}")

        with trail.run("features", params={"test_size": PARAMS["test_size"]}, job_type="transform") as run:
            clean = pd.read_csv(root / "clean" / "penguins.csv")
            feats = _features(clean)
            train, test = train_test_split(feats, test_size=PARAMS["test_size"], random_state=42, stratify=feats[LABEL])
            train.to_csv(root / "features" / "train.csv", index=False)
            test.to_csv(root / "features" / "test.csv", index=False)
        train_version = trail.get("features/train.csv")
        test_version = trail.get("features/test.csv")
        sizes = f"{train_version.ref} ({count(len(train), 'row')}), {test_version.ref} ({count(len(test), 'row')})"
        say(f"3. features  {sizes}")

        model_params = {k: PARAMS[k] for k in ("n_estimators", "max_depth", "random_state")}
        with trail.run("train", params={"model": "RandomForestClassifier", **model_params}, job_type="train") as run:
            train = pd.read_csv(root / "features" / "train.csv")
            encode = ColumnTransformer(
                [("onehot", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)], remainder="passthrough"
            )
            model = Pipeline([("encode", encode), ("forest", RandomForestClassifier(**model_params))])
            model.fit(train[CATEGORICAL + NUMERIC], train[LABEL])
            run.log_metric(
                "train_accuracy", float(accuracy_score(train[LABEL], model.predict(train[CATEGORICAL + NUMERIC])))
            )
            model_version = run.output(model, name=MODEL, kind="model")
        say(f"4. train     {model_version.ref} {model_version.digest.short if model_version.digest else ''}")

        test = pd.read_csv(root / "features" / "test.csv")
        predicted = model.predict(test[CATEGORICAL + NUMERIC])
        metrics = {
            "accuracy": float(accuracy_score(test[LABEL], predicted)),
            "macro_f1": float(f1_score(test[LABEL], predicted, average="macro")),
        }
        trail.evaluate(model_version, test_version, metrics=metrics)
        scores = f"accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['macro_f1']:.3f}"
        say(f"5. evaluate  on {test_version.ref}: {scores}")

        deployment = trail.deploy(model_version, env=ENV)
        since = f"live since {deployment.deployed_at.astimezone():%Y-%m-%d %H:%M:%S}"
        say(f"6. deploy    {deployment.ref} to {ENV} ({MODEL}@{ENV}, {since})")

        records = []
        for i, shifted in ((1, False), (2, True)):
            path = root / "batches" / f"batch-{i}.csv"
            _batch(clean, seed=100 + i, shifted=shifted).to_csv(path, index=False)
            with trail.run("predict", params={"batch": i}, job_type="predict") as run:
                run.input(model_version)
                batch = pd.read_csv(path)
                batch["predicted_species"] = model.predict(batch[CATEGORICAL + NUMERIC])
                batch[["predicted_species"]].to_csv(root / "predictions" / f"batch-{i}.csv", index=False)
            batch_version = trail.get(f"batches/batch-{i}.csv")
            record = trail.monitor(batch_version, env=ENV)
            records.append(record)
            verdict = (
                "DRIFT ALERT: " + ", ".join(record.drift.to_dict()["drifted_columns"]) if record.drifted else "no drift"
            )
            say(f"7. monitor   {batch_version.ref} against {record.reference}: {verdict}")
    finally:
        datatrail.autolog(disable=True)

    graph = trail.lineage("predictions/batch-2.csv", direction="upstream", depth=20)
    html = root / "lineage.html"
    html.write_text(render_html(graph, title="datatrail demo: penguins"), encoding="utf-8")
    result = DemoResult(
        root=root,
        store_uri=trail.location.uri,
        model=model_version,
        evaluation=metrics,
        deployment=deployment,
        calm=records[0],
        alert=records[1],
        lineage=graph,
        html=html,
        clean=clean_version,
    )
    trail.close()
    return result


__all__ = ["DemoResult", "MissingDemoDependencies", "open_demo_store", "run_demo", "write_sample_data"]
