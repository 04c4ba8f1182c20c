"""`datatrail reproduce RUN --exec`: inputs restored in a scratch folder, the command re-run, outputs compared."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.errors import NotFound
from tests.conftest import write

runner = CliRunner()

JOB = """
rows = open("data/raw.csv").read().splitlines()
open("out/clean.csv", "w").write("\\n".join(rows + [SUFFIX]) + "\\n")
"""


def record(workdir: Path, suffix: str) -> None:
    write(workdir / "data/raw.csv", "a\n1\n2\n")
    (workdir / "out").mkdir(exist_ok=True)
    write(workdir / "job.py", JOB.replace("SUFFIX", suffix))
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert runner.invoke(app, ["add", "data/raw.csv", "--store-content"]).exit_code == 0
    result = runner.invoke(
        app, ["run", "--name", "clean", "-i", "data/raw.csv", "-o", "out/clean.csv", "--", sys.executable, "job.py"]
    )
    assert result.exit_code == 0, result.output


def test_a_deterministic_run_is_reproduced_from_restored_inputs(workdir: Path, tmp_path: Path) -> None:
    record(workdir, '"3"')
    shutil.rmtree(workdir / "data")  # the inputs come back from the content cache
    result = runner.invoke(app, ["reproduce", "out/clean.csv@1", "--exec", "--into", str(tmp_path / "again"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["exit_code"] == 0
    assert [(o["ref"], o["status"]) for o in report["outputs"]] == [("out/clean.csv@1", "same")]
    assert (tmp_path / "again/data/raw.csv").read_text() == "a\n1\n2\n"
    assert not (workdir / "data").exists()  # the workspace is not touched


def test_a_run_that_does_not_reproduce_says_which_output_differs(workdir: Path, tmp_path: Path) -> None:
    record(workdir, "str(__import__('uuid').uuid4())")
    with datatrail.connect() as trail:
        run_id = trail.get("out/clean.csv@1").run_id
        assert run_id is not None
        report = trail.rerun(run_id, into=tmp_path / "again")
    assert not report.ok
    assert [(o.ref, o.status) for o in report.outputs] == [("out/clean.csv@1", "differs")]
    result = runner.invoke(app, ["reproduce", run_id, "--exec"])
    assert result.exit_code == 1 and "differs" in result.stdout


def test_inputs_without_content_are_a_one_line_error(workdir: Path) -> None:
    write(workdir / "data/raw.csv", "a\n1\n")
    write(workdir / "job.py", "open('o.txt', 'w').write('x')")
    assert runner.invoke(app, ["init"]).exit_code == 0
    runner.invoke(app, ["run", "--name", "j", "-i", "data/raw.csv", "-o", "o.txt", "--", sys.executable, "job.py"])
    with datatrail.connect() as trail, pytest.raises(NotFound, match="not in the cache"):
        trail.rerun("o.txt@1")
    result = runner.invoke(app, ["reproduce", "o.txt@1", "--exec", "--check"])
    assert result.exit_code == 2
