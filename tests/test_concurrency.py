"""Eight processes writing to one store at once, on SQLite and on PostgreSQL.

Each process adds new content to the same dataset and records runs that read
and write it, all starting at the same instant. Afterwards: every process
exited 0, nobody saw "database is locked" or any other error, every
acknowledged version is in the store under the number it was given, numbers
run 1..N without a gap or a duplicate, every run is there with its edges, and
the store passes its integrity check.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.core.model import RunState
from datatrail.store.sql import engine

PROCESSES = 8
ADDS = 6
RUNS = 3

# One writer: waits for the shared start time, then adds and runs, printing what it was told.
WRITER = """\
import json, sys, time
from pathlib import Path
import datatrail
me, start = sys.argv[1], float(sys.argv[2])
trail = datatrail.connect()
time.sleep(max(0.0, start - time.time()))
acked = []
for i in range(ADDS):
    p = Path(f"w{me}-{i}.txt")
    p.write_text(f"writer {me} add {i}\\n" * 50)
    v = trail.add(p, name="shared")
    acked.append({"number": v.number, "digest": str(v.digest)})
runs = []
for i in range(RUNS):
    with trail.run(f"job-{me}", params={"i": i}) as run:
        run.input(f"shared@{acked[i]['number']}")
        out = Path(f"out-{me}-{i}.txt")
        out.write_text(f"output {me} {i}\\n")
        o = run.output(out, name=f"out/{me}")
        runs.append({"run": run.id, "output": o.number})
trail.close()
print(json.dumps({"acked": acked, "runs": runs}))
""".replace("ADDS", str(ADDS)).replace("RUNS", str(RUNS))


def run_writers(workdir: Path) -> list[dict[str, list[dict[str, object]]]]:
    start = time.time() + 4.0  # every process imported and connected by then
    outputs = run_all([[sys.executable, "-c", WRITER, str(w), str(start)] for w in range(PROCESSES)], workdir, 300)
    assert not any("locked" in out for out in outputs)
    return [json.loads(out) for out in outputs]


def run_all(commands: list[list[str]], workdir: Path, timeout: float) -> list[str]:
    """Start every command at once (no DATATRAIL_URI); each must answer, exit 0 and print no error."""
    env = {k: v for k, v in os.environ.items() if k != "DATATRAIL_URI"}
    procs = [
        subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd in commands
    ]
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        # Every process gets an answer, and no error (no "database is locked") reaches it.
        assert (p.returncode, err) == (0, ""), err
        outputs.append(out)
    return outputs


@pytest.mark.slow
def test_eight_processes_add_and_run_at_once(workdir: Path, store_uri: str | None) -> None:
    trail = datatrail.init(workdir, store_uri)
    trail.close()
    answers = run_writers(workdir)

    trail = datatrail.connect()
    try:
        versions = trail.versions("shared")
        total = PROCESSES * ADDS
        # No lost write, no duplicate number, no gap.
        assert [v.number for v in versions] == list(range(1, total + 1))
        stored = {v.number: str(v.digest) for v in versions}
        acked = [a for ans in answers for a in ans["acked"]]
        assert len(acked) == total
        assert {a["number"]: a["digest"] for a in acked} == stored  # each under the number it was told
        for w, ans in enumerate(answers):
            assert len(trail.versions(f"out/{w}")) == RUNS
            for r, done in enumerate(ans["runs"]):
                run = trail.get_run(str(done["run"]))
                assert run.state is RunState.COMPLETE
                assert run.params == {"i": r}
                assert [v.ref for v in run.inputs] == [f"shared@{ans['acked'][r]['number']}"]
                assert [v.ref for v in run.outputs] == [f"out/{w}@{done['output']}"]
        assert len(trail.runs(limit=1000)) == PROCESSES * RUNS
        assert trail.check_store() == []
        # The audit log has one entry per write, in one unbroken chain.
        entries = trail._store.audit_log(limit=10_000)
        assert sum(e.action == "dataset.add" for e in entries) == total
    finally:
        trail.close()


@pytest.mark.slow
def test_cli_adds_at_once_get_distinct_numbers(workdir: Path) -> None:
    """The `datatrail add` door: eight CLI processes adding to one dataset at the same moment."""
    datatrail.init(workdir).close()
    for w in range(PROCESSES):
        (workdir / f"c{w}.csv").write_text(f"a,b\n{w},{w * 2}\n")
    commands = [
        [sys.executable, "-m", "datatrail.cli.app", "add", f"c{w}.csv", "--name", "cli/shared"]
        for w in range(PROCESSES)
    ]
    numbers = [int(out.split()[0].rsplit("@", 1)[1]) for out in run_all(commands, workdir, 120)]
    assert sorted(numbers) == list(range(1, PROCESSES + 1))
    with datatrail.connect() as trail:
        assert [v.number for v in trail.versions("cli/shared")] == list(range(1, PROCESSES + 1))
        assert trail.check_store() == []


def test_a_writer_that_waits_too_long_gets_a_clear_error(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writers wait for the lock for a bounded time (60 s; 0.5 s here), then get one clear line, not 'locked'."""
    datatrail.init(workdir).close()
    (workdir / "a.txt").write_text("a\n")
    monkeypatch.setattr(engine, "BUSY_TIMEOUT_S", 0.5)
    holder = sqlite3.connect(workdir / ".datatrail" / "trail.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process's long write transaction
        result = CliRunner().invoke(app, ["add", "a.txt"])
        assert result.exit_code == 3, (result.stdout, result.stderr)
        assert result.stderr.count("\n") == 1 and "locked" not in result.stderr, result.stderr
        assert result.stderr.startswith("error: the store is busy: another process held its write lock")
        holder.execute("ROLLBACK")
    finally:
        holder.close()
    result = CliRunner().invoke(app, ["add", "a.txt"])
    assert result.exit_code == 0 and result.stdout.startswith("a.txt@1 "), result.stderr
