"""The facts every run records: command line, environment, and workflow context from the environment."""

from __future__ import annotations

import platform
import sys
import uuid
from pathlib import Path

import pytest

import datatrail
from datatrail.capture import facts

PARENT = "3f1e8b0c-2b8e-4c11-9a0e-0c2d3f4a5b6c"


def test_command_line_keeps_the_interpreter_of_a_script() -> None:
    orig = ["/usr/bin/python3.11", "-u", "job.py", "--x", "a b"]
    assert facts.command_line(["job.py", "--x", "a b"], orig) == "python3.11 -u job.py --x 'a b'"


def test_command_line_of_a_module() -> None:
    orig = ["/opt/venv/bin/python", "-m", "pipeline.clean", "--day", "3"]
    assert facts.command_line(["/src/pipeline/clean.py", "--day", "3"], orig) == "python -m pipeline.clean --day 3"


def test_command_line_of_a_console_script_is_its_name(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "datatrail"
    assert script.is_file()
    orig = [sys.executable, str(script), "run", "--name", "x"]
    assert facts.command_line([str(script), "run", "--name", "x"], orig) == "datatrail run --name x"


def test_environment_names_os_python_and_imported_distributions() -> None:
    import typer

    env = facts.environment()
    assert env["python"].endswith(platform.python_version())
    assert platform.system() in env["os"]
    packages = env["packages"]
    assert packages["typer"] == typer.__version__ if hasattr(typer, "__version__") else "typer" in packages
    assert "pytest" in packages
    assert not any(name in packages for name in ("os", "sys", "json"))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        (
            {"DATATRAIL_RUN_ID": PARENT, "DATATRAIL_RUN_JOB": "wrap", "DATATRAIL_RUN_NAMESPACE": "team"},
            facts.ParentRun(PARENT, "team", "wrap"),
        ),
        (
            {
                "OPENLINEAGE_PARENT_RUN_ID": PARENT,
                "OPENLINEAGE_PARENT_JOB_NAMESPACE": "airflow://prod",
                "OPENLINEAGE_PARENT_JOB_NAME": "nightly.extract",
            },
            facts.ParentRun(PARENT, "airflow://prod", "nightly.extract"),
        ),
        (
            {"OPENLINEAGE_PARENT_ID": f"airflow://prod/nightly.extract/{PARENT}"},
            facts.ParentRun(PARENT, "airflow://prod", "nightly.extract"),
        ),
        ({"OPENLINEAGE_PARENT_ID": "ns/job/not-a-uuid"}, None),
        ({"OPENLINEAGE_PARENT_ID": PARENT}, None),
        ({"OPENLINEAGE_PARENT_RUN_ID": PARENT}, None),  # no job: the parent facet needs one
    ],
)
def test_parent_from_env(env: dict[str, str], expected: facts.ParentRun | None) -> None:
    assert facts.parent_from_env(env) == expected


def test_workflow_from_env() -> None:
    assert facts.workflow_from_env({}) is None
    airflow = {"AIRFLOW_CTX_DAG_ID": "nightly", "AIRFLOW_CTX_DAG_RUN_ID": "scheduled__2026-01-01T00:00:00+00:00"}
    assert facts.workflow_from_env(airflow) == "airflow:nightly/scheduled__2026-01-01T00:00:00+00:00"
    assert facts.workflow_from_env({**airflow, "DATATRAIL_WORKFLOW": "mine"}) == "mine"


def test_a_run_records_environment_and_the_parent_and_workflow_of_the_environment(
    trail: datatrail.Trail, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENLINEAGE_PARENT_ID", f"airflow://prod/nightly.extract/{PARENT}")
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "nightly")
    monkeypatch.setenv("AIRFLOW_CTX_DAG_RUN_ID", "manual__1")
    with trail.run("extract") as outer:
        with trail.run("inner") as inner:
            pass
    got = trail.get_run(outer.id)
    assert got.parent_run_id == PARENT
    assert got.workflow == "airflow:nightly/manual__1"
    assert got.code["environment"]["python"].endswith(platform.python_version())
    assert "pytest" in got.code["environment"]["packages"]
    assert got.cwd == str(Path.cwd())
    # A run inside a run in the same process has that run as parent, whatever the environment says.
    nested = trail.get_run(inner.id)
    assert nested.parent_run_id == outer.id
    assert nested.workflow == "airflow:nightly/manual__1"


def test_a_run_outside_any_context_has_no_parent(trail: datatrail.Trail) -> None:
    with trail.run("alone") as run:
        pass
    got = trail.get_run(run.id)
    assert got.parent_run_id is None and got.workflow is None
    uuid.UUID(got.id)


def test_a_repository_config_runs_no_command_while_facts_are_read(tmp_path: Path) -> None:
    """A `.git/config` shipped in an archive names a program in core.fsmonitor: reading git facts never starts it."""
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "f.txt").write_text("x")
    subprocess.run(["git", "-C", str(repo), "add", "f.txt"], check=True)
    who = ["-c", "user.email=a@example.com", "-c", "user.name=a"]
    subprocess.run(["git", "-C", str(repo), *who, "commit", "-q", "-m", "x"], check=True)
    (repo / "f.txt").write_text("changed")
    marker = tmp_path / "ran"
    with (repo / ".git" / "config").open("a") as config:
        config.write(f"[core]\n\tfsmonitor = touch {marker}; false\n")
    state = facts.git_state(repo)
    assert not marker.exists()
    assert state["dirty"] is True  # the facts were read, and nothing ran
