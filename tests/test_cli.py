"""The command line, through typer's runner and (end to end) as a real process.

Most tests run over both stores: the embedded SQLite store of the working tree
and a real PostgreSQL database named in ``.datatrail/config.toml``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import tomllib
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner, Result

import datatrail
from datatrail.cli.app import app
from datatrail.store.sql.engine import make_engine
from datatrail.store.sql.tables import metadata
from tests.conftest import write
from tests.test_producer_semantics import documented_run, parent, run_event

FULL_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
ADD_LINE = re.compile(r"(?P<ref>\S+@\d+) sha256:[0-9a-f]{12} \((?P<status>new|unchanged)\)")
VERSION_KEYS = {"namespace", "name", "version", "digest", "size", "created_at", "created_by"}

runner = CliRunner()


# ---------------------------------------------------------------- helpers


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``datatrail ARGS`` in-process in the current directory."""
    return runner.invoke(app, list(args), env=env)


def ok(*args: str, env: dict[str, str] | None = None) -> str:
    result = cli(*args, env=env)
    assert result.exit_code == 0, (args, result.exit_code, result.stdout, result.stderr, result.exception)
    return result.stdout


def ok_json(*args: str) -> Any:
    return json.loads(ok(*args, "--json"))


def assert_one_line_error(result: Result, *fragments: str) -> str:
    """A non-zero exit with exactly one ``error:`` line on stderr and no traceback."""
    assert result.exit_code not in (0, None), (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def add(path: str | Path, *options: str) -> tuple[str, str]:
    """``datatrail add``: the ref and the status it printed, checking the exact line format."""
    out = ok("add", str(path), *options)
    m = ADD_LINE.fullmatch(out.rstrip("\n"))
    assert m is not None, out
    return m["ref"], m["status"]


def row_counts(uri: str) -> dict[str, int]:
    """Rows in every table of the schema."""
    engine = make_engine(uri)
    try:
        with engine.connect() as conn:
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one() for t in metadata.sorted_tables
            }
    finally:
        engine.dispose()


def assert_version_json(obj: dict[str, Any]) -> None:
    assert obj.keys() >= VERSION_KEYS, obj
    assert FULL_DIGEST.fullmatch(obj["digest"]), obj["digest"]
    assert isinstance(obj["version"], int) and obj["version"] >= 1
    assert isinstance(obj["size"], int)
    assert datetime.fromisoformat(obj["created_at"]).tzinfo is not None
    assert obj["created_by"]


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dir_digest(root: Path) -> str:
    """The directory digest of DESIGN.md §1, computed independently of datatrail."""
    lines = []
    for p in sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).as_posix()):
        lines.append(f"{p.relative_to(root).as_posix()}\t{p.stat().st_size}\t{sha256_file(p)}\n")
    return "sha256:" + hashlib.sha256("".join(lines).encode()).hexdigest()


def datatrail_command() -> list[str]:
    script = Path(sys.executable).parent / "datatrail"
    if script.exists():
        return [str(script)]
    found = shutil.which("datatrail")
    return [found] if found else [sys.executable, "-m", "datatrail.cli.app"]


def run_process(args: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}, check=False
    )


@pytest.fixture
def uri(trail: datatrail.Trail) -> str:
    """The URI of the test's store (SQLite file or PostgreSQL database)."""
    return trail.location.uri


# ---------------------------------------------------------------- init and finding the store


def test_init_creates_config_and_store(workdir: Path) -> None:
    out = ok("init")
    assert ".datatrail" in out
    config = workdir / ".datatrail" / "config.toml"
    assert config.is_file() and (workdir / ".datatrail" / "trail.db").is_file()
    tomllib.loads(config.read_text())  # valid TOML
    assert "no datasets yet" in ok("ls")
    ok("init")  # idempotent
    assert_one_line_error(cli("init", "no/such/folder"), "no such folder")


@pytest.mark.postgres
def test_init_with_postgres_store_is_found_from_subfolders(workdir: Path, pg_uri: str) -> None:
    ok("--store", pg_uri, "init")
    assert tomllib.loads((workdir / ".datatrail" / "config.toml").read_text())["store"]["uri"] == pg_uri
    assert not (workdir / ".datatrail" / "trail.db").exists()
    write(workdir / "a" / "b" / "x.csv", "x\n1\n")
    os.chdir(workdir / "a" / "b")
    assert add("x.csv") == ("a/b/x.csv@1", "new")
    with datatrail.connect(pg_uri) as t:
        assert [d.name for d in t.datasets()] == ["a/b/x.csv"]


def test_discovery_walks_up_from_a_subfolder(workdir: Path) -> None:
    ok("init")
    deep = workdir / "one" / "two"
    write(deep / "data.csv", "a\n1\n")
    os.chdir(deep)
    assert add("data.csv") == ("one/two/data.csv@1", "new")
    assert add("../two/data.csv") == ("one/two/data.csv@1", "unchanged")
    os.chdir(workdir / "one")
    assert ok_json("show", "one/two/data.csv")["uri"] == (deep / "data.csv").as_uri()


@pytest.mark.postgres
def test_store_option_and_environment_override_discovery(workdir: Path, pg_uri: str) -> None:
    ok("init")
    write(workdir / "f.csv", "a\n")
    other = f"sqlite:///{workdir / 'other.db'}"
    datatrail.init(workdir / "elsewhere", other).close()

    assert add("f.csv", "--name", "found") == ("found@1", "new")
    ok("--store", other, "add", "f.csv", "--name", "in-other")
    ok("add", "f.csv", "--name", "in-pg", env={"DATATRAIL_URI": pg_uri})
    # --store beats DATATRAIL_URI
    ok("--store", other, "add", "f.csv", "--name", "option-wins", env={"DATATRAIL_URI": pg_uri})

    def names(u: str | None) -> set[str]:
        with datatrail.connect(u) as t:
            return {d.name for d in t.datasets()}

    assert names(None) == {"found"}
    assert names(other) == {"in-other", "option-wins"}
    assert names(pg_uri) == {"in-pg"}
    assert [d["name"] for d in json.loads(ok("ls", "--json", env={"DATATRAIL_URI": pg_uri}))] == ["in-pg"]


def test_relative_sqlite_uris(workdir: Path) -> None:
    # On the command line: relative to the working directory.
    write(workdir / "proj" / "sub" / "f.csv", "f\n")
    ok("--store", "sqlite:///mine.db", "init", "proj")
    assert (workdir / "mine.db").is_file()
    config = workdir / "proj" / ".datatrail" / "config.toml"
    assert tomllib.loads(config.read_text())["store"]["uri"] == f"sqlite:///{workdir / 'mine.db'}"
    # In the config file: relative to .datatrail/, from whatever subfolder.
    datatrail.init(workdir / "elsewhere", f"sqlite:///{workdir / 'proj' / '.datatrail' / 'other.db'}").close()
    config.write_text('[store]\nuri = "sqlite:///other.db"\n')
    os.chdir(workdir / "proj" / "sub")
    assert add("f.csv") == ("sub/f.csv@1", "new")
    with datatrail.connect(f"sqlite:///{workdir / 'proj' / '.datatrail' / 'other.db'}") as t:
        assert [d.name for d in t.datasets()] == ["sub/f.csv"]


def test_no_store_is_a_one_line_error(workdir: Path) -> None:
    for args in (["ls"], ["add", "x"], ["show", "x"], ["verify"]):
        assert_one_line_error(cli(*args), "datatrail init")
    assert_one_line_error(cli("--store", f"sqlite:///{workdir / 'missing.db'}", "ls"), "datatrail init")
    assert not (workdir / "missing.db").exists()
    assert_one_line_error(cli("--store", "mysql://x/y", "ls"), "unsupported store URI")


# ---------------------------------------------------------------- add


def test_add_prints_the_version_and_is_idempotent(trail: datatrail.Trail, workdir: Path, uri: str) -> None:
    raw = write(workdir / "data" / "raw.csv", "a,b\n1,2\n")
    out = ok("add", "data/raw.csv")
    assert out == f"data/raw.csv@1 sha256:{sha256_file(raw)[:12]} (new)\n"
    before = row_counts(uri)
    assert ok("add", "data/raw.csv") == f"data/raw.csv@1 sha256:{sha256_file(raw)[:12]} (unchanged)\n"
    assert row_counts(uri) == before  # not even an event or an audit entry

    write(raw, "a,b\n1,2\n3,4\n")
    assert add("data/raw.csv") == ("data/raw.csv@2", "new")
    assert add("data/raw.csv") == ("data/raw.csv@2", "unchanged")
    write(raw, "a,b\n1,2\n")  # back to the first content: that is version 1 again
    assert add("data/raw.csv") == ("data/raw.csv@1", "unchanged")
    assert [v["version"] for v in ok_json("versions", "data/raw.csv")] == [1, 2]
    v1 = ok_json("show", "data/raw.csv@1")
    assert v1["digest"] == f"sha256:{sha256_file(raw)}"
    assert v1["size"] == raw.stat().st_size
    assert v1["format"] == "csv"
    assert v1["uri"] == raw.resolve().as_uri()
    assert v1["host"] == socket.gethostname()
    added = ok_json("add", "data/raw.csv")
    assert added["status"] == "unchanged" and added["version"] == 1
    assert_version_json(added)


def test_add_directory(trail: datatrail.Trail, workdir: Path) -> None:
    d = workdir / "images"
    write(d / "a.txt", "alpha")
    write(d / "sub" / "b.txt", "beta")
    write(d / "sub" / "deeper" / "c.bin", b"\x00\x01")
    ref, status = add("images")
    assert (ref, status) == ("images@1", "new")
    shown = ok_json("show", "images")
    assert shown["digest"] == dir_digest(d)
    assert shown["size"] == 5 + 4 + 2
    assert shown["file_count"] == 3
    assert [(f["path"], f["size"], f["digest"]) for f in shown["files"]] == [
        ("a.txt", 5, f"sha256:{sha256_file(d / 'a.txt')}"),
        ("sub/b.txt", 4, f"sha256:{sha256_file(d / 'sub' / 'b.txt')}"),
        ("sub/deeper/c.bin", 2, f"sha256:{sha256_file(d / 'sub' / 'deeper' / 'c.bin')}"),
    ]
    text_out = ok("show", "images")
    assert "sub/deeper/c.bin" in text_out and "files:       3" in text_out
    write(d / "sub" / "b.txt", "BETA")
    assert add("images") == ("images@2", "new")
    assert ok_json("show", "images")["digest"] == dir_digest(d)


def test_add_options(trail: datatrail.Trail, workdir: Path) -> None:
    write(workdir / "f.csv", "a\n1\n")
    out = ok(
        "add",
        "f.csv",
        "--name",
        "raw/penguins",
        "--namespace",
        "team-x",
        "--message",
        "first cut",
        "--tag",
        "candidate",
    )
    assert ADD_LINE.fullmatch(out.strip())
    assert out.startswith("team-x:raw/penguins@1 ")
    v = ok_json("show", "team-x:raw/penguins@candidate")
    assert (v["namespace"], v["name"], v["version"]) == ("team-x", "raw/penguins", 1)
    assert v["message"] == "first cut"
    assert v["aliases"] == ["candidate"]
    # Short options, several tags; unchanged content with a new tag is still "unchanged".
    assert add("f.csv", "-n", "raw/penguins", "--namespace", "team-x", "-t", "gold", "-t", "prod") == (
        "team-x:raw/penguins@1",
        "unchanged",
    )
    assert ok_json("show", "team-x:raw/penguins@prod")["aliases"] == ["candidate", "gold", "prod"]
    assert_one_line_error(cli("show", "raw/penguins"), "no dataset named 'raw/penguins'")
    ls = ok_json("ls", "--namespace", "team-x")
    assert [(d["namespace"], d["name"]) for d in ls] == [("team-x", "raw/penguins")]
    assert ok_json("ls", "--namespace", "default") == []
    assert "team-x:raw/penguins" in ok("ls")


def test_default_name_is_relative_to_the_store_root(trail: datatrail.Trail, workdir: Path, tmp_path: Path) -> None:
    write(workdir / "data" / "x" / "y.csv", "y\n")
    os.chdir(workdir / "data")
    assert add("x/y.csv") == ("data/x/y.csv@1", "new")
    assert add(str(workdir / "data" / "x" / "y.csv")) == ("data/x/y.csv@1", "unchanged")
    outside = write(tmp_path / "outside.csv", "o\n")
    assert_one_line_error(cli("add", str(outside)), "outside the store's root", "--name")
    assert add(str(outside), "--name", "outside") == ("outside@1", "new")
    os.chdir(workdir)
    assert_one_line_error(cli("add", "."), "--name")


# ---------------------------------------------------------------- read commands


@pytest.fixture
def pipeline(trail: datatrail.Trail, workdir: Path) -> dict[str, Any]:
    """raw.csv --clean--> clean --train--> model, recorded with the Python API."""
    v_raw = trail.add(write(workdir / "raw.csv", "a,b\n1,2\n,3\n"))
    with trail.run("clean", params={"dropna": True}) as clean:
        clean.input(v_raw)
        v_clean = clean.output(write(workdir / "clean.csv", "a,b\n1,2\n"), name="clean")
        clean.log_metric("rows_dropped", 1)
    with trail.run("train", params={"lr": 0.1}) as train:
        train.input(v_clean)
        v_model = train.output(write(workdir / "model.bin", b"\x00weights"), name="model", kind="model")
        train.log_metric("accuracy", 0.97)
    return {"raw": v_raw, "clean": v_clean, "model": v_model, "clean_run": clean.id, "train_run": train.id}


def test_read_commands_json_have_the_version_fields(pipeline: dict[str, Any]) -> None:
    ls = ok_json("ls")
    assert [d["name"] for d in ls] == ["clean", "model", "raw.csv"]
    for obj in ls:
        assert_version_json(obj)
    assert {d["name"]: d["kind"] for d in ls}["model"] == "model"
    model = ok_json("show", "model")
    assert_version_json(model)
    assert model["run_id"] == pipeline["train_run"]
    assert model["digest"] == str(pipeline["model"].digest)
    for v in ok_json("versions", "raw.csv"):
        assert_version_json(v)
    tagged = ok_json("tag", "model@1", "production")
    assert_version_json(tagged)
    runs = ok_json("runs")
    assert {r["job"] for r in runs} == {"clean", "train"}
    for r in runs:
        for v in r["inputs"] + r["outputs"]:
            assert_version_json(v)
    run = ok_json("show", f"run:{pipeline['clean_run']}")
    for v in run["inputs"] + run["outputs"]:
        assert_version_json(v)
    graph = ok_json("lineage", "model")
    for node in graph["nodes"]:
        if node["type"] == "version":
            assert {"namespace", "name", "version", "digest", "size", "created_at"} <= node["data"].keys()
            assert FULL_DIGEST.fullmatch(node["data"]["digest"])


def test_lineage_json_version_nodes_have_created_by_and_iso_times(pipeline: dict[str, Any]) -> None:
    for node in ok_json("lineage", "model")["nodes"]:
        if node["type"] == "version":
            assert_version_json(node["data"])


def test_show_versions_tag_text(pipeline: dict[str, Any]) -> None:
    shown = ok("show", "model")
    assert "version:     model@1" in shown
    assert f"digest:      {pipeline['model'].digest}" in shown
    assert "kind:        model" in shown
    assert f"run:         run:{pipeline['train_run']}" in shown
    assert ok("tag", "raw.csv@1", "gold") == f"raw.csv@gold -> raw.csv@1 {pipeline['raw'].digest.short}\n"
    assert ok_json("show", "raw.csv@gold")["version"] == 1
    assert ok_json("show", f"raw.csv@{pipeline['raw'].digest.short}")["version"] == 1
    assert ok_json("show", "raw.csv@latest")["version"] == 1
    versions = ok("versions", "raw.csv").splitlines()
    assert versions[0].split() == ["version", "digest", "size", "created", "by", "aliases", "message"]
    assert versions[2].split()[:2] == ["1", pipeline["raw"].digest.short]
    assert "gold" in versions[2]


def test_tag_moves_an_alias(trail: datatrail.Trail, workdir: Path) -> None:
    f = write(workdir / "f.txt", "1")
    add("f.txt")
    write(f, "2")
    add("f.txt")
    ok("tag", "f.txt@1", "prod")
    assert ok_json("show", "f.txt@prod")["version"] == 1
    ok("tag", "f.txt@2", "prod")
    assert ok_json("show", "f.txt@prod")["version"] == 2
    assert ok_json("show", "f.txt@1")["aliases"] == []
    assert_one_line_error(cli("tag", "f.txt@1", "latest"), "latest")


def test_runs_and_show_run(pipeline: dict[str, Any]) -> None:
    listing = ok("runs").splitlines()
    assert listing[0].split() == ["run", "job", "state", "started", "user", "inputs", "outputs"]
    assert len(listing) == 4
    only = ok_json("runs", "--job", "clean")
    assert [r["id"] for r in only] == [pipeline["clean_run"]]
    assert ok_json("runs", "--job", "nothing") == []
    assert len(ok_json("runs", "--limit", "1")) == 1
    run = ok_json("show", f"run:{pipeline['clean_run'][:8]}")
    assert run["id"] == pipeline["clean_run"]
    assert run["state"] == "COMPLETE"
    assert run["params"] == {"dropna": True}
    assert run["metrics"] == {"rows_dropped": 1}
    assert [v["ref"] for v in run["inputs"]] == ["raw.csv@1"]
    assert [v["ref"] for v in run["outputs"]] == ["clean@1"]
    shown = ok("show", f"run:{pipeline['train_run']}")
    assert "job:       train" in shown and "state:     COMPLETE" in shown
    assert "accuracy = 0.97" in shown and "lr = 0.1" in shown
    assert "  clean@1 " in shown and "  model@1 " in shown


def test_non_finite_metrics_are_recorded_as_strings(trail: datatrail.Trail) -> None:
    # JSON (and PostgreSQL's jsonb) has no NaN: a diverging loss must neither
    # break the run nor make its final event unwritable.
    with trail.run("train") as run:
        run.log_metric("loss", 0.5)
        run.log_metric("loss", float("nan"))
        run.log_metric("grad", float("inf"))
        run.log_metric("low", float("-inf"))
    shown = ok_json("show", f"run:{run.id}")
    assert shown["state"] == "COMPLETE"
    assert shown["metrics"] == {"loss": "NaN", "grad": "Infinity", "low": "-Infinity"}
    with pytest.raises(datatrail.InvalidInput, match="ended"):
        run.log_metric("late", 1)
    with pytest.raises(datatrail.InvalidInput, match="ended"):
        run.log_param("late", 1)


def test_lineage_tree_and_formats(pipeline: dict[str, Any]) -> None:
    raw, clean, model = (pipeline[k].digest.short for k in ("raw", "clean", "model"))
    c, t = pipeline["clean_run"][:8], pipeline["train_run"][:8]
    assert ok("lineage", "model") == textwrap.dedent(f"""\
        model@1 {model} (model)
        └── <- run train [COMPLETE] {t}
            └── <- clean@1 {clean}
                └── <- run clean [COMPLETE] {c}
                    └── <- raw.csv@1 {raw}
        """)
    assert ok("lineage", "model", "--upstream", "--depth", "1") == textwrap.dedent(f"""\
        model@1 {model} (model)
        └── <- run train [COMPLETE] {t}
            └── <- clean@1 {clean}
        """)
    assert ok("lineage", "raw.csv", "--downstream") == textwrap.dedent(f"""\
        raw.csv@1 {raw}
        └── -> run clean [COMPLETE] {c}
            └── -> clean@1 {clean}
                └── -> run train [COMPLETE] {t}
                    └── -> model@1 {model} (model)
        """)
    both = ok("lineage", "clean", "--both", "-d", "1")
    assert both == textwrap.dedent(f"""\
        clean@1 {clean}
        upstream:
          └── <- run clean [COMPLETE] {c}
              └── <- raw.csv@1 {raw}
        downstream:
          └── -> run train [COMPLETE] {t}
              └── -> model@1 {model} (model)
        """)
    assert ok("lineage", "model", "--depth", "0") == f"model@1 {model} (model)\n"

    run_c, run_t = f"run:{pipeline['clean_run']}", f"run:{pipeline['train_run']}"
    vr, vc, vm = "version:default:raw.csv@1", "version:default:clean@1", "version:default:model@1"
    graph = ok_json("lineage", "clean", "--both")
    assert graph["root"] == vc and graph["direction"] == "both"
    assert {n["id"]: n["depth"] for n in graph["nodes"]} == {vc: 0, run_c: 1, run_t: 1, vr: 1, vm: 1}
    assert {(e["source"], e["target"]) for e in graph["edges"]} == {(vr, run_c), (run_c, vc), (vc, run_t), (run_t, vm)}
    assert json.loads(ok("lineage", "model", "--format", "json")) == ok_json("lineage", "model")
    up = ok_json("lineage", "model", "--upstream")
    assert {n["id"] for n in up["nodes"]} == {vr, vc, vm, run_c, run_t}
    down = ok_json("lineage", "clean", "--downstream")
    assert {n["id"] for n in down["nodes"]} == {vc, run_t, vm}

    dot = ok("lineage", "model", "--format", "dot")
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert f'"{vr}" -> "{run_c}";' in dot and f'"{run_t}" -> "{vm}";' in dot
    mermaid = ok("lineage", "model", "-f", "mermaid")
    assert mermaid.splitlines()[0] == "flowchart LR"
    assert sum(" --> " in line for line in mermaid.splitlines()) == 4
    assert_one_line_error(cli("lineage", "model", "--upstream", "--downstream"), "--both")
    assert_one_line_error(cli("lineage", "model", "--format", "png"), "png")


# ---------------------------------------------------------------- verify


def problems(*args: str) -> tuple[int, list[tuple[str, str, str]]]:
    result = cli("verify", *args, "--json")
    report = json.loads(result.stdout)
    assert report["ok"] == (result.exit_code == 0)
    return result.exit_code, sorted((p["ref"], p["problem"], p["path"]) for p in report["problems"])


def test_verify(trail: datatrail.Trail, workdir: Path) -> None:
    a = write(workdir / "a.csv", "a\n1\n")
    b = write(workdir / "b.csv", "b\n2\n")
    d = workdir / "dir"
    for name in ("x.txt", "y.txt", "sub/z.txt"):
        write(d / name, name)
    for path in ("a.csv", "b.csv", "dir"):
        add(path)
    out = ok("verify")
    assert sorted(out.splitlines()) == [
        f"ok       a.csv@1 {trail.get('a.csv').digest.short}",  # type: ignore[union-attr]
        f"ok       b.csv@1 {trail.get('b.csv').digest.short}",  # type: ignore[union-attr]
        f"ok       dir@1 {trail.get('dir').digest.short}",  # type: ignore[union-attr]
    ]
    assert problems() == (0, [])

    write(a, "a\n999\n")  # changed
    b.unlink()  # deleted
    write(d / "sub" / "z.txt", "changed")  # changed inside a directory
    (d / "x.txt").unlink()  # deleted inside a directory
    write(d / "new.txt", "new")  # added to a directory
    result = cli("verify")
    assert result.exit_code == 1
    assert result.stderr == "error: 5 problems found\n"
    lines = result.stdout.splitlines()
    assert [line for line in lines if line.startswith("ok")] == []
    assert f"missing  b.csv@1: {b}" in lines
    assert any(line.startswith(f"changed  a.csv@1: {a} (expected sha256:") for line in lines)
    assert any(line.startswith(f"changed  dir@1: {d / 'sub' / 'z.txt'} (expected") for line in lines)
    assert f"missing  dir@1: {d / 'x.txt'}" in lines
    assert any(line.startswith(f"added    dir@1: {d / 'new.txt'}") for line in lines)
    assert len(lines) == 5
    assert problems() == (
        1,
        [
            ("a.csv@1", "changed", str(a)),
            ("b.csv@1", "missing", str(b)),
            ("dir@1", "added", str(d / "new.txt")),
            ("dir@1", "changed", str(d / "sub" / "z.txt")),
            ("dir@1", "missing", str(d / "x.txt")),
        ],
    )
    # Refs narrow the check; --all is the default set.
    assert problems("b.csv") == (1, [("b.csv@1", "missing", str(b))])
    assert problems("--all")[1] == problems()[1]
    assert_one_line_error(cli("verify", "a.csv", "--all"), "--all")
    # Re-adding makes the latest version whole again; the old one still differs.
    add("a.csv")
    assert problems("a.csv") == (0, [])
    assert problems("a.csv@1") == (1, [("a.csv@1", "changed", str(a))])
    assert ("a.csv@2" not in {p[0] for p in problems()[1]}) and ("a.csv@1" not in {p[0] for p in problems()[1]})


def test_verify_no_cache_reads_every_byte(trail: datatrail.Trail, workdir: Path) -> None:
    f = write(workdir / "f.bin", b"A" * 1000)
    old = 1_600_000_000_000_000_000
    os.utime(f, ns=(old, old))  # old enough for the stat cache to trust it
    add("f.bin")
    with f.open("r+b") as fh:  # same inode, same size...
        fh.write(b"B")
    os.utime(f, ns=(old, old))  # ...and the same mtime: only reading the bytes can tell
    # The stat cache vouches for (device, inode, size, mtime_ns); that is its point.
    assert problems() == (0, [])
    assert problems("--no-cache") == (1, [("f.bin@1", "changed", str(f))])
    assert cli("verify", "--no-cache").exit_code == 1


# ---------------------------------------------------------------- bad input


def bad_inputs(workdir: Path) -> list[tuple[list[str], str]]:
    """(arguments, a fragment of the message) for inputs that must be refused."""
    write(workdir / "file.csv", "a\n")
    cases = [
        (["add", "missing.csv"], "missing.csv"),
        (["add", "file.csv/inside"], "file.csv/inside"),
        (["add", "file.csv", "--name", "bad\x01name"], "U+0001"),
        (["add", "file.csv", "--name", "a@b"], "'@'"),
        (["add", "file.csv", "--name", "ns:x"], "':'"),
        (["add", "file.csv", "--name", " "], "empty"),
        (["add", "file.csv", "--tag", "latest"], "latest"),
        (["add", "file.csv", "--tag", "12"], "number"),
        (["add", "file.csv", "--namespace", "bad\nns"], "U+000A"),
        (["show", "raw.csv@"], "invalid ref"),
        (["show", "raw.csv@sha256:xyz"], "hex"),
        (["show", "raw.csv@0"], "start at 1"),
        (["show", "@3"], "empty"),
        (["show", "nosuch"], "no dataset named 'nosuch'"),
        (["show", "raw.csv@7"], "no version '7'"),
        (["show", "raw.csv@nosuchalias"], "no version 'nosuchalias'"),
        (["show", "raw.csv@sha256:00000000"], "no version"),
        (["show", "run:not-a-uuid!"], "invalid run id"),
        (["show", "run:00000000-0000-0000-0000-000000000000"], "no run"),
        (["versions", "raw.csv@1"], "drop the '@"),
        (["versions", "nosuch"], "nosuch"),
        (["tag", "raw.csv@9", "prod"], "no version '9'"),
        (["tag", "raw.csv@1", "bad:alias"], "invalid alias"),
        (["lineage", "nosuch"], "nosuch"),
        (["lineage", "raw.csv", "--depth", "-1"], "--depth"),
        (["verify", "raw.csv@5"], "no version '5'"),
        (["add"], "Missing argument"),
        (["nosuchcommand"], "No such command"),
        (["ls", "--nosuchoption"], "No such option"),
    ]
    fifo = workdir / "pipe"
    os.mkfifo(fifo)
    cases.append((["add", "pipe"], "neither a regular file nor a directory"))
    unreadable = write(workdir / "secret.csv", "s\n")
    unreadable.chmod(0)
    if not os.access(unreadable, os.R_OK):  # root reads through chmod 000
        cases.append((["add", "secret.csv"], "Permission denied"))
        locked = workdir / "locked"
        write(locked / "inner.csv", "i\n")
        (locked / "inner.csv").chmod(0)
        cases.append((["add", "locked"], "Permission denied"))
    elif Path("/proc/self/mem").exists():
        # A regular file that cannot be read even by root.
        cases.append((["add", "/proc/self/mem", "--name", "mem"], "cannot read"))
    return cases


def test_bad_input_is_one_line_and_changes_nothing(trail: datatrail.Trail, workdir: Path, uri: str) -> None:
    raw = write(workdir / "raw.csv", "a\n1\n")
    add("raw.csv")
    with trail.run("job") as run:
        run.input("raw.csv")
    before = row_counts(uri)
    for args, fragment in bad_inputs(workdir):
        result = cli(*args)
        assert_one_line_error(result, fragment)
        assert result.stdout == "", (args, result.stdout)
        assert row_counts(uri) == before, args
    assert raw.read_text() == "a\n1\n"
    assert ok_json("versions", "raw.csv")[0]["version"] == 1


def test_unexpected_errors_are_one_line_too(
    trail: datatrail.Trail, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the driver said:\n  connection lost\n(background on this error at: …)")

    monkeypatch.setattr(datatrail.Trail, "datasets", broken)
    line = assert_one_line_error(cli("ls"), "unexpected RuntimeError", "connection lost", "DATATRAIL_DEBUG")
    assert cli("ls").exit_code == 70
    assert "\n" not in line
    write(workdir / "file.txt", "x")
    assert_one_line_error(cli("init", "file.txt"), "not a folder")


def test_newer_store_schema_is_refused(trail: datatrail.Trail, workdir: Path, uri: str) -> None:
    write(workdir / "f.csv", "f\n")
    add("f.csv")
    engine = make_engine(uri)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    before = row_counts(uri)
    # Real processes: SqlStore.__init__ does not dispose its engine when the
    # schema check refuses the store, and the pooled PostgreSQL connection it
    # leaks would warn (as an error) in whichever test the GC runs next.
    for args in (["ls"], ["add", "f.csv", "--name", "g"]):
        p = run_process([*datatrail_command(), *args], workdir)
        assert p.returncode != 0 and p.stdout == ""
        assert p.stderr.count("\n") == 1 and p.stderr.startswith("error: "), p.stderr
        assert "newer than this datatrail" in p.stderr and "9999" in p.stderr
    if uri.startswith("sqlite"):
        for args in (["show", "f.csv"], ["verify"]):
            assert_one_line_error(cli(*args), "newer than this datatrail", "9999")
        with pytest.raises(datatrail.DatatrailError, match="newer"):
            datatrail.connect()
    assert row_counts(uri) == before


# ---------------------------------------------------------------- real processes


def test_end_to_end_in_a_real_process(workdir: Path) -> None:
    dt = datatrail_command()
    p = run_process([*dt, "ls"], workdir)
    assert p.returncode != 0 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("error: ") and "datatrail init" in p.stderr
    assert run_process([*dt, "init"], workdir).returncode == 0
    write(workdir / "data" / "raw.csv", "a\n1\n")
    p = run_process([*dt, "add", "raw.csv", "--tag", "v1"], workdir / "data")
    assert p.returncode == 0, p.stderr
    assert ADD_LINE.fullmatch(p.stdout.strip()) and p.stdout.startswith("data/raw.csv@1 ")
    assert p.stderr == ""  # no progress bar when stderr is not a terminal
    p = run_process([*dt, "show", "data/raw.csv@v1", "--json"], workdir)
    assert_version_json(json.loads(p.stdout))
    p = run_process([*dt, "show", "data/raw.csv@2"], workdir)
    assert p.returncode == 3 and p.stderr.startswith("error: ") and p.stderr.count("\n") == 1
    p = run_process([*dt, "--version"], workdir)
    assert p.stdout.strip() == f"datatrail {datatrail.__version__}"


JOB = """\
import sys
import datatrail

trail = datatrail.connect()
with trail.run("clean", params={"dropna": True}) as run:
    print(run.id, flush=True)
    run.input("raw.csv")
    with open("clean.csv", "w") as f:
        f.write("a\\n1\\n")
    run.output("clean.csv", name="clean")
    run.log_param("seed", 7)
    run.log_metric("rows", 333)
    run.log_metrics({"loss": 0.5})
    if "--fail" in sys.argv:
        raise RuntimeError("the input is rotten")
"""


def git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    p = run_process(["git", *args], cwd, env)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_run_script_records_the_run(trail: datatrail.Trail, workdir: Path) -> None:
    write(workdir / "raw.csv", "a\n1\n\n")
    write(workdir / "job.py", JOB)
    git(workdir, "init", "-q")
    git(workdir, "add", "raw.csv", "job.py")
    git(workdir, "commit", "-q", "-m", "first")
    commit = git(workdir, "rev-parse", "HEAD")
    branch = git(workdir, "rev-parse", "--abbrev-ref", "HEAD")
    env = {"DATATRAIL_USER": "alice"}

    p = run_process([sys.executable, "job.py"], workdir, env)
    assert p.returncode == 0, p.stderr
    clean_run = ok_json("show", f"run:{p.stdout.strip()}")
    assert clean_run["code"]["dirty"] is False
    assert clean_run["code"]["commit"] == commit

    write(workdir / "raw.csv", "a\n1\n2\n")  # a tracked file changes: the tree is dirty
    p = run_process([sys.executable, "job.py", "--verbose"], workdir, env)
    assert p.returncode == 0, p.stderr
    run = ok_json("show", f"run:{p.stdout.strip()}")
    assert run["id"] == p.stdout.strip()
    assert run["state"] == "COMPLETE"
    assert run["job"] == "clean" and run["namespace"] == "default"
    assert run["user"] == "alice"
    assert run["host"] == socket.gethostname()
    assert run["command"] == f"{Path(sys.executable).name} job.py --verbose"
    assert run["cwd"] == str(workdir)
    assert run["code"]["commit"] == commit
    assert run["code"]["branch"] == branch
    assert run["code"]["dirty"] is True
    assert run["params"] == {"dropna": True, "seed": 7}
    assert run["metrics"] == {"rows": 333, "loss": 0.5}
    assert [v["ref"] for v in run["inputs"]] == ["raw.csv@2"]
    assert [v["ref"] for v in run["outputs"]] == ["clean@1"]
    assert run["error"] is None
    assert run["started_at"] <= run["ended_at"]
    assert ok_json("show", "clean")["run_id"] == clean_run["id"]  # same content: first producer kept

    p = run_process([sys.executable, "job.py", "--fail"], workdir, env)
    assert p.returncode == 1 and "the input is rotten" in p.stderr
    failed = ok_json("show", f"run:{p.stdout.strip()}")
    assert failed["state"] == "FAIL"
    assert failed["error"] == "RuntimeError: the input is rotten"
    assert [v["ref"] for v in failed["outputs"]] == ["clean@1"]
    assert {r["state"] for r in ok_json("runs", "--job", "clean")} == {"COMPLETE", "FAIL"}
    assert "state:     FAIL" in ok("show", f"run:{failed['id']}")


def test_show_prints_what_producers_reported_planned_outputs_and_child_runs(workdir: Path) -> None:
    ok("init")
    trail = datatrail.connect()
    rid = documented_run(trail)
    dag, task = str(uuid.uuid4()), str(uuid.uuid4())
    start = run_event("START", task, "shop.write", 1, outputs=("/d/never.txt",), run_facets=parent(dag, "shop"))
    trail.ingest(run_event("COMPLETE", dag, "shop", 2), actor="airflow")
    trail.ingest(start, actor="airflow")
    trail.close()
    shown = ok("show", "sqlite://shop.db:main.totals@1")
    assert "description: One row per customer." in shown
    assert "schema (as the producer reported it)" in shown and "REAL" in shown
    run = ok("show", f"run:{rid}")
    assert "about:     Daily totals per customer." in run and "sql:\n  SELECT customer" in run
    assert "planned outputs (named, no version produced):\n  file:/d/never.txt" in ok("show", f"run:{task}")
    assert f"child runs:\n  run:{task}" in ok("show", f"run:{dag}")
    assert ok_json("show", f"run:{dag}")["children"] == [task]
