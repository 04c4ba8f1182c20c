"""`datatrail reproduce REF --check` walks the real provenance and re-hashes real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from tests.conftest import write

runner = CliRunner()


@pytest.fixture
def pipeline(workdir: Path) -> datatrail.Trail:
    """raw → clean → model, with params, in a folder with its own store."""
    trail = datatrail.init(workdir)
    raw = trail.add(write(workdir / "raw.csv", "a,b\n1,2\n3,4\n,6\n"), name="raw")
    with trail.run("clean", params={"dropna": True}) as run:
        run.input(raw)
        run.output(write(workdir / "clean.csv", "a,b\n1,2\n3,4\n"), name="clean")
    with trail.run("train", params={"lr": 0.1}, job_type="train") as run:
        run.input("clean@1")
        run.output(write(workdir / "model.bin", b"\x00weights"), name="model", kind="model")
    yield trail  # type: ignore[misc]
    trail.close()


def test_an_intact_provenance_passes(pipeline: datatrail.Trail) -> None:
    report = pipeline.reproduce("model@1")
    assert report.ok
    assert [s.job for s in report.steps] == ["clean", "train"]
    assert [c.ref for c in report.sources] == ["raw@1"]
    assert report.steps[0].run.params == {"dropna": True}
    out = runner.invoke(app, ["reproduce", "model@1", "--check"])
    assert out.exit_code == 0, out.output
    assert "step 1: run clean" in out.stdout and "step 2: run train" in out.stdout
    assert 'params:  {"lr": 0.1}' in out.stdout
    assert "result: every version is present with its recorded digest" in out.stdout


def test_a_changed_or_missing_input_fails_the_check(pipeline: datatrail.Trail, workdir: Path) -> None:
    (workdir / "raw.csv").write_text("a,b\n9,9\n")
    (workdir / "clean.csv").unlink()
    out = runner.invoke(app, ["reproduce", "model@1", "--check", "--json"])
    assert out.exit_code == 1
    body = json.loads(out.stdout)
    assert not body["ok"]
    assert {(p["ref"], p["status"]) for p in body["problems"]} == {("raw@1", "changed"), ("clean@1", "missing")}
    steps = {s["job"]: s for s in body["steps"]}
    assert steps["clean"]["inputs"][0]["status"] == "changed"
    assert steps["train"]["inputs"][0]["status"] == "missing"
    # Without --check the report is shown and the exit status stays 0.
    shown = runner.invoke(app, ["reproduce", "model@1"])
    assert shown.exit_code == 0 and "result: 2 problems" in shown.stdout
