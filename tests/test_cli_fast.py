"""The fast path (cli/fast.py: the reads and push) against the typer application: the same bytes, statuses, audit rows.

Every command line below runs as two real processes on two copies of the same
store: ``datatrail.cli.main`` (which answers a plain read without typer) and the
typer application itself (``datatrail.cli.app.main``, the path every other command
line takes). Their stdout, stderr and exit status must be identical, and so must
what each appended to its copy's audit log. A probe records whether the first
process imported typer, so each line is known to have taken the path it should.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

import datatrail
from datatrail.cli.app import app
from datatrail.cli.fast import COMMANDS, FLAG, TEXT, parse

# `datatrail ARGS` as installed (the fast path first); writes whether typer was imported to $PROBE_OUT.
FAST = """
import os, sys
sys.argv = ["datatrail", *sys.argv[1:]]
from datatrail.cli import main
try:
    main()
finally:
    with open(os.environ["PROBE_OUT"], "w") as out:
        out.write("typer" if "typer" in sys.modules else "no typer")
"""
# The typer application alone, as `datatrail ARGS` ran before the fast path.
TYPER = """
import sys
sys.argv = ["datatrail", *sys.argv[1:]]
from datatrail.cli.app import main
main()
"""


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A store with versions, a directory of 120 files, a run, a second namespace and check results."""
    folder = tmp_path_factory.mktemp("fast")
    (folder / "raw.csv").write_text("a,b\n1,x\n2,y\n")
    (folder / "images").mkdir()
    for i in range(120):
        (folder / "images" / f"{i:03}.bin").write_bytes(bytes([i]))
    (folder / "rules.yaml").write_text("checks:\n  - rule: not_null\n    column: a\n")
    with datatrail.init(folder) as trail:
        trail.add(folder / "raw.csv", name="raw", tags=["candidate"])
        (folder / "raw.csv").write_text("a,b\n1,x\n2,y\n3,z\n")
        trail.add(folder / "raw.csv", name="raw", message="three rows")
        trail.check("raw", folder / "rules.yaml")
        trail.add(folder / "images", name="images")
        trail.add(folder / "raw.csv", name="copy", namespace="team-x")
        with trail.run("clean", params={"k": 1}) as run:
            run.input("raw")
            (folder / "clean.csv").write_text("a,b\n1,x\n")
            run.output(folder / "clean.csv", name="clean")
            run.log_metric("rows", 1)
        run_id = trail.runs()[0].id
    return folder, run_id


def _run(script: str, folder: Path, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", script, *argv],
        cwd=folder,
        env={**os.environ, **env},
        capture_output=True,
        timeout=120,
        check=False,
    )


def _audit(folder: Path) -> list[tuple[Any, ...]]:
    """The audit rows of a copy, without their times and hashes (the times differ between the two runs), and
    with the copy's folder, which a push's entry names (the remote's URL), written HERE."""
    db = folder / ".datatrail" / "trail.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT seq, actor, action, target, outcome, details, event_id FROM audit ORDER BY seq")
        return [tuple(v.replace(str(folder), "HERE") if isinstance(v, str) else v for v in row) for row in rows]


def both(
    source: Path, tmp_path: Path, argv: list[str], env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[bytes], str]:
    """Run ``argv`` both ways on two copies of ``source``; assert the same outcome; the first run and its path."""
    fast, slow = tmp_path / "fast", tmp_path / "typer"
    shutil.copytree(source, fast)
    shutil.copytree(source, slow)
    probe = tmp_path / "probe"
    environment = {"PROBE_OUT": str(probe), "COLUMNS": "100", **(env or {})}
    got = _run(FAST, fast, argv, environment)
    want = _run(TYPER, slow, argv, environment)
    # The two copies differ only in their folder's name, which a message may quote.
    seen = [
        got.returncode,
        got.stdout.decode().replace(str(fast), "HERE"),
        got.stderr.decode().replace(str(fast), "HERE"),
    ]
    wanted = [
        want.returncode,
        want.stdout.decode().replace(str(slow), "HERE"),
        want.stderr.decode().replace(str(slow), "HERE"),
    ]
    assert seen == wanted, argv
    assert _audit(fast) == _audit(slow), argv
    for made in ("out.svg", "out.dot"):  # a file written with -o: the same bytes
        if (slow / made).exists():
            assert (fast / made).read_bytes() == (slow / made).read_bytes()
    return got, probe.read_text()


READS = [
    ["ls"],
    ["ls", "--json"],
    ["ls", "--namespace", "team-x"],
    ["ls", "--namespace=team-x", "--json"],
    ["ls", "--namespace", "nowhere"],
    ["show", "raw"],
    ["show", "raw", "--json"],
    ["show", "--json", "raw@1"],
    ["show", "raw@candidate"],
    ["show", "team-x:copy"],
    ["show", "images"],
    ["show", "images", "--files"],
    ["show", "images", "--json"],
    ["show", "RUN"],
    ["show", "RUN", "--json"],
    ["show", "nope"],
    ["show", "raw@9"],
    ["show", "run:ffffffff"],
    ["versions", "raw"],
    ["versions", "raw", "--json"],
    ["versions", "nope"],
    ["runs"],
    ["runs", "--json"],
    ["runs", "--limit", "1"],
    ["runs", "--job", "clean", "--limit=2", "--json"],
    ["runs", "--job", "nope"],
    ["lineage", "clean", "--both"],
    ["lineage", "clean"],
    ["lineage", "raw", "--downstream", "-d", "1"],
    ["lineage", "clean", "--depth=0"],
    ["lineage", "clean", "-f", "dot"],
    ["lineage", "clean", "--format", "mermaid", "--level", "dataset"],
    ["lineage", "clean", "--json"],
    ["lineage", "clean", "--columns"],
    ["lineage", "clean", "a", "--columns", "--json"],
    ["lineage", "clean", "-f", "svg", "-o", "out.svg"],
    ["lineage", "clean", "--format", "dot", "--output", "out.dot", "--force"],
    ["lineage", "clean", "--both", "--upstream"],
    ["lineage", "clean", "-f", "png"],
    ["lineage", "clean", "--level", "job"],
    ["lineage", "clean", "a"],
    ["lineage", "clean", "--force"],
    ["lineage", "nope"],
]
# Lines the fast path leaves to typer: its help, its messages about the command line.
TO_TYPER = [
    ["ls", "--help"],
    ["show", "-h"],
    ["show"],
    ["versions", "raw", "extra"],
    ["runs", "--limit", "0"],
    ["runs", "--limit", "many"],
    ["runs", "--limit", "1", "--limit", "2"],
    ["lineage", "clean", "-d5"],
    ["lineage", "clean", "--depth", "-1"],
    ["lineage", "clean", "--dept", "2"],
    ["ls", "--json=yes"],
    ["show", "--", "raw"],
    ["ls", "--store", "x"],
    ["--version"],
    [],
]


@pytest.mark.parametrize("argv", READS, ids=" ".join)
def test_a_read_prints_the_same_without_typer(pristine: tuple[Path, str], tmp_path: Path, argv: list[str]) -> None:
    source, run_id = pristine
    args = [f"run:{run_id[:8]}" if a == "RUN" else a for a in argv]
    got, path = both(source, tmp_path, args)
    assert path == "no typer", args
    assert got.stdout or got.stderr


@pytest.mark.parametrize("argv", TO_TYPER, ids=lambda a: " ".join(a) or "(nothing)")
def test_other_command_lines_are_typers_as_before(pristine: tuple[Path, str], tmp_path: Path, argv: list[str]) -> None:
    source, _ = pristine
    got, path = both(source, tmp_path, argv)
    assert path == "typer", argv
    assert got.stdout or got.stderr


@pytest.fixture(scope="module")
def pushable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store keeping the bytes of two versions of a file and of a directory, with two folder remotes."""
    folder = tmp_path_factory.mktemp("push")
    (folder / "raw.csv").write_text("a,b\n1,x\n")
    (folder / "images").mkdir()
    for i in range(5):
        (folder / "images" / f"{i}.bin").write_bytes(bytes([i]) * (i + 1))
    with datatrail.init(folder) as trail:
        trail.add(folder / "raw.csv", name="raw", store_content=True)
        (folder / "raw.csv").write_text("a,b\n1,x\n2,y\n")
        trail.add(folder / "raw.csv", name="raw", store_content=True)
        trail.add(folder / "images", name="images", store_content=True)
        trail.add(folder / "raw.csv", name="plain")  # its bytes not kept: skipped by a push of everything
        trail.storage.add_remote("origin", os.fspath(folder / "remote"), default=True)
        trail.storage.add_remote("backup", os.fspath(folder / "backup"))
    # Relative folders (the command's directory): each copy of the store pushes into its own.
    config = folder / ".datatrail" / "config.toml"
    config.write_text(config.read_text().replace(f"{folder}{os.sep}", ""))
    return folder


PUSHES = [
    ["push"],
    ["push", "--json"],
    ["push", "raw"],
    ["push", "raw@1", "images", "-r", "backup"],
    ["push", "--remote=backup", "--json", "raw@2"],
    ["push", "plain"],
    ["push", "nope"],
    ["push", "-r", "nowhere"],
]
PUSHES_TO_TYPER = [
    ["push", "--help"],
    ["push", "-r"],
    ["push", "--remote", "origin", "-r", "backup"],
    ["push", "--", "raw"],
    ["push", "--json=1"],
]


@pytest.mark.parametrize("argv", PUSHES, ids=" ".join)
def test_a_push_prints_and_sends_the_same_without_typer(pushable: Path, tmp_path: Path, argv: list[str]) -> None:
    got, path = both(pushable, tmp_path, argv)
    assert path == "no typer", argv
    assert got.stdout or got.stderr
    # Both sent the same files, each to its own copy's remote.
    sent = [
        sorted(
            p.relative_to(tmp_path / side).as_posix()
            for r in ("remote", "backup")
            for p in (tmp_path / side / r).rglob("*")
        )
        for side in ("fast", "typer")
    ]
    assert sent[0] == sent[1]
    if got.returncode == 0:
        assert sent[0], argv


@pytest.mark.parametrize("argv", PUSHES_TO_TYPER, ids=" ".join)
def test_a_push_line_out_of_the_plain_form_is_typers(pushable: Path, tmp_path: Path, argv: list[str]) -> None:
    got, path = both(pushable, tmp_path, argv)
    assert path == "typer", argv
    assert got.stdout or got.stderr


# `datatrail ARGS` as the executable runs it (``cli.script``), or with the usual exit (``cli.main``); an exit that
# skips the interpreter's teardown (os._exit) says so last on stderr.
EXITS = """
import os, sys
from datatrail.cli import {0}
leave = os._exit
os._exit = lambda code: os.write(2, b"(no teardown)") and leave(code)
sys.argv = ["datatrail", *sys.argv[1:]]
{0}()
"""


@pytest.mark.parametrize(
    "argv", [["push"], ["push", "--json"], ["push", "nope"], ["push", "-r", "nowhere"], ["ls"], ["show", "nope"]]
)
def test_the_executable_leaves_a_plain_answer_without_the_teardown(
    pushable: Path, tmp_path: Path, argv: list[str]
) -> None:
    """A command line answered without typer ends as an add does (cli/__init__.py's ``_leave``): no teardown,
    and the same status, output, audit rows, remote and files in .datatrail/ as with the usual exit."""
    outcomes = []
    for how in ("script", "main"):
        copy = tmp_path / how
        shutil.copytree(pushable, copy)
        got = _run(EXITS.format(how), copy, argv, {})
        sent = sorted(p.relative_to(copy).as_posix() for r in ("remote", "backup") for p in (copy / r).rglob("*"))
        kept = sorted(os.listdir(copy / ".datatrail"))
        out, err = (b.replace(os.fsencode(copy), b"HERE") for b in (got.stdout, got.stderr))
        outcomes.append((got.returncode, out, err, _audit(copy), sent, kept))
    quick, usual = outcomes
    assert quick[2] == usual[2] + b"(no teardown)"
    assert quick[:2] == usual[:2] and quick[3:] == usual[3:]
    assert quick[1] or quick[2]


def test_the_store_option_and_variable_choose_the_store(pristine: tuple[Path, str], tmp_path: Path) -> None:
    """--store (both spellings) and $DATATRAIL_URI, from a folder without a store; a bad URI; none found."""
    source, _ = pristine
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "store").mkdir(parents=True)
    shutil.copytree(source, elsewhere / "store", dirs_exist_ok=True)
    uri = f"sqlite:///{elsewhere / 'store' / '.datatrail' / 'trail.db'}"
    cases: list[tuple[list[str], dict[str, str]]] = [
        (["--store", uri, "ls"], {}),
        ([f"--store={uri}", "versions", "raw"], {}),
        (["runs"], {"DATATRAIL_URI": uri}),
        (["--store", "sqlite:////nowhere/trail.db", "ls"], {"DATATRAIL_URI": uri}),
        (["--store", "mysql://db/x", "ls"], {}),
        (["ls"], {"DATATRAIL_URI": ""}),
        (["show", "raw"], {}),
    ]
    for i, (argv, env) in enumerate(cases):
        place = tmp_path / f"case{i}"
        place.mkdir()
        got, path = both(elsewhere / "store" / "images", place, argv, env)  # a folder that holds no store
        assert path == "no typer", argv
        if argv[-1] == "ls" and env.get("DATATRAIL_URI") == "":
            assert got.returncode != 0 and got.stderr.startswith(b"error: "), got.stderr


def test_a_store_too_new_is_refused_the_same_way(pristine: tuple[Path, str], tmp_path: Path) -> None:
    source, _ = pristine
    newer = tmp_path / "newer"
    shutil.copytree(source, newer)
    with sqlite3.connect(newer / ".datatrail" / "trail.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    for i, argv in enumerate((["ls"], ["show", "raw"], ["lineage", "clean"])):
        got, path = both(newer, tmp_path / f"case{i}", argv)
        assert path == "no typer"
        assert got.returncode != 0 and b"newer than this datatrail" in got.stderr


def test_a_closed_pipe_ends_both_the_same_way(pristine: tuple[Path, str], tmp_path: Path) -> None:
    """The reader went away before the output (over a pipe's buffer) was written: status 1, nothing on stderr."""
    source, _ = pristine
    outcomes = []
    for script, name in ((FAST, "fast"), (TYPER, "typer")):
        folder = tmp_path / name
        shutil.copytree(source, folder)
        read, write = os.pipe()
        os.close(read)
        try:
            proc = subprocess.run(
                [sys.executable, "-c", script, "show", "images", "--files", "--json"],
                cwd=folder,
                env={**os.environ, "PROBE_OUT": str(tmp_path / "probe")},
                stdout=write,
                stderr=subprocess.PIPE,
                timeout=120,
                check=False,
            )
        finally:
            os.close(write)
        outcomes.append((proc.returncode, proc.stderr))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["ls", "-h"],
        ["ls", "--json", "--json"],
        ["show"],
        ["show", "a", "b"],
        ["show", "-"],
        ["show", "a", "--"],
        ["runs", "--limit", "100001"],
        ["runs", "--limit", "+5"],
        ["runs", "--limit", "٣"],
        ["runs", "--limit"],
        ["lineage", "x", "-d=3"],
        ["lineage", "x", "--both=1"],
        ["lineage", "x", "--format="],
        ["--store", "--json", "ls"],
        ["--store=", "ls"],
        ["--store", "a", "--store", "b", "ls"],
        ["ls", "--namespace", ""],
        ["tag", "a", "b"],
    ],
    ids=lambda a: " ".join(a) or "(nothing)",
)
def test_the_parser_leaves_anything_unusual_to_typer(argv: list[str]) -> None:
    assert parse(argv) is None


def test_the_parser_reads_the_plain_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATATRAIL_URI", raising=False)
    monkeypatch.delenv("_DATATRAIL_COMPLETE", raising=False)
    assert parse(["ls"]) == (None, "ls", {"namespace": None, "json_out": False})
    assert parse(["--store", "sqlite:///t.db", "runs", "--limit", "007", "--json"]) == (
        "sqlite:///t.db",
        "runs",
        {"job": None, "limit": 7, "json_out": True},
    )
    lineage = parse(["lineage", "-d", "3", "clean", "--format=dot", "--both"])
    assert lineage is not None and lineage[2]["depth"] == 3 and lineage[2]["fmt"] == "dot"
    assert (lineage[2]["ref"], lineage[2]["column"], lineage[2]["both"]) == ("clean", None, True)
    monkeypatch.setenv("DATATRAIL_URI", "sqlite:///env.db")
    assert parse(["versions", "raw"]) == ("sqlite:///env.db", "versions", {"name": "raw", "json_out": False})
    assert parse(["push", "a@1", "-r", "backup", "b"]) == (
        "sqlite:///env.db",
        "push",
        {"refs": ["a@1", "b"], "remote": "backup", "json_out": False},
    )
    assert parse(["push", "--json"]) == ("sqlite:///env.db", "push", {"refs": None, "remote": None, "json_out": True})
    monkeypatch.setenv("_DATATRAIL_COMPLETE", "bash_complete")
    assert parse(["ls"]) is None


def test_the_table_has_every_option_of_the_typer_commands() -> None:
    """COMMANDS spells, names, defaults and bounds each option as the typer command declares it."""
    root = typer.main.get_command(app)
    ctx = typer.Context(root)
    for name, (options, arguments, required, defaults) in COMMANDS.items():
        command = root.get_command(ctx, name)  # type: ignore[attr-defined]
        declared: dict[str, tuple[str, Any]] = {}
        wanted_defaults: dict[str, Any] = {}
        args: list[str] = []
        needed = 0
        for param in command.params:
            info = param.type_descriptor.parameter_info
            if param.param_type_name == "argument":
                args.append(param.name)
                needed += param.required
                if not param.required:
                    wanted_defaults[param.name] = param.default
                continue
            low, high = getattr(info, "min", None), getattr(info, "max", None)
            if param.is_flag:
                kind: Any = FLAG
            elif low is not None or high is not None:
                kind = (low, high)
            else:
                kind = TEXT
            for spelling in param.opts:
                declared[spelling] = (param.name, kind)
            assert not param.secondary_opts, (name, param.name)
            wanted_defaults[param.name] = param.default
        assert options == declared, name
        assert (list(arguments), required) == (args, needed), name
        assert defaults == wanted_defaults, name
