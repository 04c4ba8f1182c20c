"""`datatrail run -- COMMAND`: any program recorded as a run, through real child processes."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import datatrail
from datatrail.capture.wrap import with_bootstrap
from datatrail.cli.run import parse_params
from datatrail.core.errors import InvalidInput
from datatrail.core.model import RunState
from tests.conftest import write
from tests.test_cli import datatrail_command, run_process

PY = Path(sys.executable).name


def dt(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_process([*datatrail_command(), *args], cwd, env)


def run_id_of(p: subprocess.CompletedProcess[str]) -> str:
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("datatrail: run:"), p.stderr
    return last.split()[1].removeprefix("run:")


def test_a_successful_command_records_inputs_outputs_params_and_facts(trail: datatrail.Trail, workdir: Path) -> None:
    write(workdir / "raw.csv", "a\n1\n2\n")
    ref = trail.add(workdir / "raw.csv", name="raw").ref
    write(workdir / "lookup.txt", "x\n")
    script = "import shutil, sys; shutil.copy('raw.csv', 'clean.csv'); print('copied'); print('warn', file=sys.stderr)"
    p = dt(
        "run", "--name", "clean", "-i", ref, "-i", "lookup.txt", "-o", "clean.csv",
        "-p", "lr=0.1", "-p", "mode=fast", "--workflow", "nightly-1",
        "--", sys.executable, "-c", script, cwd=workdir,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout == "copied\n"  # the command's output streams through, nothing of ours
    assert p.stderr.startswith("warn\n")
    run = trail.get_run(run_id_of(p))
    assert run.state is RunState.COMPLETE and run.job == "clean" and run.workflow == "nightly-1"
    assert run.command == shlex.join([sys.executable, "-c", script])
    assert run.params == {"lr": 0.1, "mode": "fast"}
    assert sorted(v.name for v in run.inputs) == ["lookup.txt", "raw"]
    assert [v.name for v in run.outputs] == ["clean.csv"]
    assert run.outputs[0].digest == trail.get("raw").digest
    assert run.cwd == str(workdir)
    assert "python" in run.code["environment"] and run.ended_at is not None and run.started_at is not None
    assert run.ended_at >= run.started_at


def test_a_failing_command_records_fail_with_its_status_and_no_outputs(trail: datatrail.Trail, workdir: Path) -> None:
    script = "open('out.csv', 'w').write('half'); raise SystemExit(3)"
    p = dt("run", "--name", "broken", "-o", "out.csv", "--", sys.executable, "-c", script, cwd=workdir)
    assert p.returncode == 3
    run = trail.get_run(run_id_of(p))
    assert run.state is RunState.FAIL
    assert run.error == "the command ended with exit status 3"
    assert run.outputs == ()
    assert trail.datasets() == []


def test_a_missing_output_fails_the_run(trail: datatrail.Trail, workdir: Path) -> None:
    p = dt("run", "--name", "lazy", "-o", "never.csv", "--", sys.executable, "-c", "pass", cwd=workdir)
    assert p.returncode == 125  # datatrail's failure, not the command's (which exited 0)
    assert "datatrail: error: the command succeeded but did not write the output 'never.csv'\n" in p.stderr
    run = trail.get_run(run_id_of(p))
    assert run.state is RunState.FAIL and "never.csv" in (run.error or "")


def test_an_unknown_command_records_nothing(trail: datatrail.Trail, workdir: Path) -> None:
    p = dt("run", "--name", "x", "--", "no-such-program-xyz", cwd=workdir)
    assert p.returncode == 127 and p.stderr.startswith("datatrail: error: command not found")
    assert trail.runs() == []


def test_an_output_outside_the_root_is_refused_before_running(
    trail: datatrail.Trail, workdir: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    p = dt("run", "--name", "x", "-o", str(tmp_path / "out.csv"), "--", "touch", str(marker), cwd=workdir)
    assert p.returncode == 125 and "outside the store's root" in p.stderr and p.stderr.count("\n") == 1
    assert not marker.exists() and trail.runs() == []


def test_no_command_is_a_usage_error(trail: datatrail.Trail, workdir: Path) -> None:
    p = dt("run", "--name", "x", cwd=workdir)
    assert p.returncode == 125 and p.stderr.startswith("datatrail: error: no command to run")


def test_ctrl_c_reaches_the_command_and_records_abort(trail: datatrail.Trail, workdir: Path) -> None:
    script = (
        "import pathlib, time\n"
        "try:\n    pathlib.Path('ready').write_text('1')\n    time.sleep(60)\n"
        "except KeyboardInterrupt:\n    pathlib.Path('interrupted').write_text('1')\n    raise SystemExit(130)\n"
    )
    write(workdir / "slow.py", script)
    # Started as from a shell's foreground, whatever this test process does with SIGINT: a
    # disposition that is a handler here becomes the default in the new program (an ignored one would stay).
    ours = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [*datatrail_command(), "run", "--name", "slow", "-o", "ready", "--", sys.executable, "slow.py"],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        if ours is not None:
            signal.signal(signal.SIGINT, ours)
    deadline = time.monotonic() + 30
    while not (workdir / "ready").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    time.sleep(0.3)  # the child is in its sleep by now
    proc.send_signal(signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # left running, it would outlive this test (and warn in another)
        proc.kill()
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()  # the command may still hold them open
        raise AssertionError("datatrail run did not end 30 s after SIGINT") from None
    assert proc.returncode == 130, err
    assert (workdir / "interrupted").exists()
    run = trail.get_run(run_id_of(subprocess.CompletedProcess([], 130, out, err)))
    assert run.state is RunState.ABORT and "SIGINT" in (run.error or "")
    assert run.outputs == ()


def test_datatrail_runs_in_the_child_become_children_of_the_wrapper(trail: datatrail.Trail, workdir: Path) -> None:
    job = (
        "import datatrail\n"
        "trail = datatrail.connect()\n"
        "with trail.run('inner') as run:\n"
        "    print(run.id)\n"
    )  # fmt: skip
    write(workdir / "job.py", job)
    p = dt("run", "--name", "outer", "--workflow", "wf-7", "--", sys.executable, "job.py", cwd=workdir)
    assert p.returncode == 0, p.stderr
    outer = trail.get_run(run_id_of(p))
    inner = trail.get_run(p.stdout.strip())
    assert inner.parent_run_id == outer.id and inner.workflow == "wf-7"
    assert inner.command == f"{PY} job.py"  # the bootstrap does not show in the child's command line
    assert outer.command == f"{sys.executable} job.py"


def test_parse_params() -> None:
    assert parse_params(["a=1", "b=x", "c=true", "d=", "e=[1, 2]", "f=a=b"]) == {
        "a": 1,
        "b": "x",
        "c": True,
        "d": "",
        "e": [1, 2],
        "f": "a=b",
    }
    with pytest.raises(InvalidInput):
        parse_params(["novalue"])


def test_bootstrap_applies_only_to_this_interpreter_running_a_script_or_module() -> None:
    boot = ["-m", "datatrail.capture.bootstrap"]
    assert with_bootstrap([sys.executable, "job.py", "-x"]) == [sys.executable, *boot, "job.py", "-x"]
    assert with_bootstrap([sys.executable, "-u", "-m", "pkg", "a"]) == [sys.executable, "-u", *boot, "-m", "pkg", "a"]
    assert with_bootstrap([sys.executable, "-c", "pass"]) == [sys.executable, "-c", "pass"]
    assert with_bootstrap([sys.executable]) == [sys.executable]
    assert with_bootstrap(["sh", "-c", "true"]) == ["sh", "-c", "true"]
    assert with_bootstrap(["/no/such/python3", "job.py"]) == ["/no/such/python3", "job.py"]


def test_the_child_environment_names_the_run(trail: datatrail.Trail, workdir: Path) -> None:
    script = "import os; print(os.environ['DATATRAIL_RUN_ID'], os.environ['DATATRAIL_AUTOLOG'])"
    p = dt("run", "--name", "env", "--", sys.executable, "-c", script, cwd=workdir)
    run_id, autolog = p.stdout.split()
    assert run_id == run_id_of(p) and autolog == "1"
    script = "import os; print(os.environ.get('DATATRAIL_AUTOLOG'))"
    p = dt("run", "--name", "env", "--no-autolog", "--", sys.executable, "-c", script, cwd=workdir)
    assert p.stdout.strip() == "None"
    assert os.environ.get("DATATRAIL_RUN_ID") is None


EXIT_3 = [sys.executable, "-c", "import sys; print('partial'); sys.exit(3)"]


def test_the_commands_exit_status_is_kept_and_told_apart_from_datatrails(
    trail: datatrail.Trail, workdir: Path, tmp_path: Path
) -> None:
    """A command exiting 3 exits 3 (not datatrail's "not found"); datatrail's own failures exit 125 and say so."""
    p = dt("run", "--name", "three", "--", *EXIT_3, cwd=workdir)
    assert p.returncode == 3 and p.stdout == "partial\n"
    assert "datatrail: error:" not in p.stderr and trail.get_run(run_id_of(p)).state is RunState.FAIL
    p = dt("run", "--name", "three", "--json", "--", *EXIT_3, cwd=workdir)
    assert p.returncode == 3 and p.stdout == "partial\n"  # stdout stays the command's
    report = json.loads(p.stderr.strip().splitlines()[-1])
    assert report["source"] == "command" and report["exit_code"] == 3 and report["command_status"] == 3
    assert report["state"] == "FAIL" and trail.get_run(report["run_id"]).error == "the command ended with exit status 3"
    # No store: datatrail fails before the command runs, with its own status and a line that says so.
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    p = dt("run", "--name", "three", "--", *EXIT_3, cwd=nowhere)
    assert p.returncode == 125 and p.stdout == ""
    assert p.stderr.startswith("datatrail: error: no datatrail store") and p.stderr.count("\n") == 1
    p = dt("run", "--name", "three", "--json", "--", *EXIT_3, cwd=nowhere)
    report = json.loads(p.stderr)
    assert p.returncode == 125 and report["source"] == "datatrail" and report["exit_code"] == 125
    assert report["run_id"] is None and "no datatrail store" in report["error"]
    # A usage error is datatrail's too, --json or not.
    p = dt("run", "--json", "--", *EXIT_3, cwd=workdir)
    assert p.returncode == 125 and json.loads(p.stderr)["error"].startswith("Missing option '--name'")
    p = dt("run", "--name", "x", "--no-such-option", "--", *EXIT_3, cwd=workdir)
    assert p.returncode == 125 and p.stderr.startswith("datatrail: error: No such option: --no-such-option")
    p = dt("run", "--name", "x", "--json", "--", "no-such-program-xyz", cwd=workdir)
    report = json.loads(p.stderr)
    assert p.returncode == 127 and report["source"] == "datatrail" and report["exit_code"] == 127


def test_a_program_that_cannot_be_executed_exits_126(trail: datatrail.Trail, workdir: Path) -> None:
    write(workdir / "not-a-program", "just text\n")
    (workdir / "not-a-program").chmod(0o755)
    p = dt("run", "--name", "x", "--json", "--", "./not-a-program", cwd=workdir)
    report = json.loads(p.stderr.strip().splitlines()[-1])
    assert p.returncode == 126 and report["exit_code"] == 126 and report["command_status"] is None
    assert trail.get_run(report["run_id"]).state is RunState.FAIL and "cannot execute" in report["error"]
