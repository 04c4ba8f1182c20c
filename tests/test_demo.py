"""`datatrail demo`: the real penguins pipeline, twice into one store, and its one-line error without the extra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.ml.demo import open_demo_store

runner = CliRunner()


def test_demo_records_the_pipeline_and_runs_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "penguins"
    folder.mkdir()
    commit = git_repository(folder)
    elsewhere = tmp_path / "other.db"
    monkeypatch.setenv("DATATRAIL_URI", f"sqlite:///{elsewhere}")  # the demo keeps to its own folder's store
    for _ in range(2):
        out = runner.invoke(app, ["demo", "--dir", str(folder)])
        assert out.exit_code == 0, out.output
        assert "DRIFT ALERT" in out.stdout and "== drift report of the shifted batch ==" in out.stdout
        assert "1. ingest    raw/penguins.csv@1: 344 rows from palmerpenguins/penguins.csv@1" in out.stdout
    assert not elsewhere.exists()
    assert os.getcwd() != str(folder)  # the demo's working directory was its own, and is given back
    trail = open_demo_store(folder)
    try:
        # Short names: the package's CSV is the source, copied into the demo folder.
        names = sorted(d.name for d in trail.datasets())
        assert names[0] == "batches/batch-1.csv" and "palmerpenguins/penguins.csv" in names
        assert max(len(n) for n in names) <= len("palmerpenguins/penguins.csv"), names
        assert trail.get("palmerpenguins/penguins.csv").uri == (folder / "source" / "penguins.csv").as_uri()
        # Unchanged data and the same model were recognised on the second run.
        for name in ("raw/penguins.csv", "clean/penguins.csv", "features/train.csv", "models/penguin-species"):
            assert [v.number for v in trail.versions(name)] == [1], name
        assert len(trail.runs("train")) == 2
        # Every run ran in the demo folder, at its commit.
        runs = trail.runs(limit=1000)
        assert {r.cwd for r in runs} == {str(folder)}
        assert {r.code.get("commit") for r in runs} == {commit}
        # Re-running added no deployment, check, evaluation or drift report that says the same again.
        model = trail.get("models/penguin-species@production")
        card = trail.model_card(model)
        assert [v.ref for v in card.training_data] == ["features/train.csv@1"]
        assert len(card.evaluations) == 1 and card.evaluations[0].metrics["accuracy"] > 0.9
        assert [(d.ref, d.active) for d in trail.deployments("production")] == [("models/penguin-species@1", True)]
        assert len(trail.check_results("clean/penguins.csv@1")) == 6
        history = trail.drift_history("production")
        assert [(r.current, r.drifted) for r in history.records] == [
            ("batches/batch-1.csv@1", False),
            ("batches/batch-2.csv@1", True),
        ]
        assert {"body_mass_g", "island"} <= set(history.records[1].report["drifted_columns"])
        checks = trail.check_results("clean/penguins.csv@1")
        assert checks and all(c.success for c in checks)
        assert trail.reproduce(model).ok
        upstream = trail.lineage("predictions/batch-2.csv", direction="upstream", depth=20)
        names = {n.data.get("name") for n in upstream.nodes.values() if n.type == "version"}
        assert {"raw/penguins.csv", "clean/penguins.csv", "features/train.csv", "models/penguin-species"} <= names
        # autolog recorded the source CSV as the ingest's input: the dataset at that location.
        ingest = trail.runs("ingest")[0]
        assert [v.ref for v in ingest.inputs] == ["palmerpenguins/penguins.csv@1"]
    finally:
        trail.close()
    store = f"sqlite:///{folder / '.datatrail' / 'trail.db'}"
    history = runner.invoke(app, ["--store", store, "drift", "--history", "--env", "production"])
    assert history.exit_code == 0, history.output
    lines = history.stdout.splitlines()
    assert lines[0].startswith("drift in production (models/penguin-species@1 live since")
    assert lines[1].split()[:3] == ["time", "batch", "species"]
    assert lines[3].split()[2] == "batches/batch-1.csv@1" and lines[3].endswith("ok")
    assert lines[4].split()[2] == "batches/batch-2.csv@1" and lines[4].endswith("DRIFT")
    named = runner.invoke(
        app, ["--store", store, "drift", "--history", "-e", "production", "--model", "models/penguin-species"]
    )
    assert named.stdout == history.stdout
    page = (folder / "lineage.html").read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html") and "penguin-species" in page


def git_repository(folder: Path) -> str:
    """Make ``folder`` a git work tree with one commit; its commit id."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    (folder / "README.md").write_text("penguins\n")
    for command in (["init", "-q"], ["add", "README.md"], ["commit", "-q", "-m", "start"]):
        subprocess.run(["git", *command], cwd=folder, env=env, check=True)
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_demo_without_its_libraries_names_the_extra(tmp_path: Path) -> None:
    """With scikit-learn not importable, one line says what to install, and nothing is created."""
    shadow = tmp_path / "shadow" / "sklearn"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named sklearn')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow")}
    out = subprocess.run(
        [sys.executable, "-m", "datatrail", "demo", "--dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 2
    assert out.stderr == "error: the demo needs sklearn: pip install 'datatrail[demo]'\n"
    assert not (tmp_path / "demo").exists()


def test_the_demo_store_is_an_ordinary_store(tmp_path: Path) -> None:
    trail = open_demo_store(tmp_path)
    try:
        assert trail.location.uri == f"sqlite:///{tmp_path / '.datatrail' / 'trail.db'}"
        assert isinstance(trail, datatrail.Trail) and trail.datasets() == []
    finally:
        trail.close()


def test_demo_serve_serves_the_demo_store(tmp_path: Path) -> None:
    """`datatrail demo --serve` runs the pipeline, then serves its store: the deployment is there over HTTP."""
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "datatrail", "demo", "--dir", str(tmp_path / "d"), "--serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        body = None
        for _ in range(600):
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/deployments", params={"active": True}, timeout=2)
                if answer.status_code == 200:
                    body = answer.json()
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "the demo stopped before serving"
            time.sleep(0.2)
        assert body is not None, "the server never answered"
        assert [(d["environment"], d["ref"]) for d in body["deployments"]] == [
            ("production", "models/penguin-species@1")
        ]
        reports = httpx.get(f"http://127.0.0.1:{port}/api/v1/drift", params={"environment": "production"}).json()
        assert [r["drifted"] for r in reports["reports"]] == [False, True]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_demo_data_only_writes_the_sample_data_and_nothing_else(tmp_path: Path) -> None:
    """`demo --data-only`: data/raw.csv, byte for byte the palmerpenguins CSV; again: unchanged; never overwrites."""
    folder = tmp_path / "quick"
    out = runner.invoke(app, ["demo", "--data-only", "--dir", str(folder)])
    assert out.exit_code == 0, out.output
    wrote = f"wrote {folder / 'data' / 'raw.csv'}: the Palmer penguins, 344 rows (from the palmerpenguins package)\n"
    assert out.stdout == wrote
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == ["data", "data/raw.csv"]
    csv = (folder / "data" / "raw.csv").read_bytes()
    assert csv.startswith(b"species,island,bill_length_mm,") and csv.count(b"\n") == 345
    again = runner.invoke(app, ["demo", "--data-only", "--dir", str(folder)])
    assert again.exit_code == 0 and again.stdout.startswith("unchanged: ")
    (folder / "data" / "raw.csv").write_text("mine\n")
    refused = runner.invoke(app, ["demo", "--data-only", "--dir", str(folder)])
    assert refused.exit_code == 4 and "already exists and is not the sample data" in refused.stderr
    assert (folder / "data" / "raw.csv").read_text() == "mine\n"
    both = runner.invoke(app, ["demo", "--data-only", "--serve", "--dir", str(tmp_path / "x")])
    assert both.exit_code == 2 and not (tmp_path / "x").exists()
