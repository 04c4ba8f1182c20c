"""Lineage never splits silently: a path is the dataset recorded at its location, or the same content elsewhere.

Through the CLI (real child processes), the Python API and autolog, on SQLite and PostgreSQL; the store read
behind it (``versions_at``) is in the contract suite, which runs over HTTP too.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import datatrail
from datatrail.core.errors import NotFound
from datatrail.core.roles import Grant, Principal
from tests.conftest import write
from tests.test_cli import datatrail_command, run_process

RAW = "species,mass\nAdelie,3750\nGentoo,\nChinstrap,3500\n"
CLEAN = "species,mass\nAdelie,3750\nChinstrap,3500\n"


def dt(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_process([*datatrail_command(), *args], cwd)


def notes(p: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in p.stderr.splitlines() if line.startswith("datatrail: ") and " run:" not in line]


def store_size(trail: datatrail.Trail) -> tuple[int, int, int, int]:
    """Events, runs, datasets and audit entries: what any write would change."""
    return (
        len(trail.catalog.events(limit=100_000)),
        len(trail.runs(limit=100_000)),
        len(trail.datasets()),
        len(trail.audit_entries(limit=100_000)),
    )


def cleaned(trail: datatrail.Trail, workdir: Path) -> datatrail.Version:
    """README's pipeline: raw/penguins, then clean/penguins written to data/clean.csv by a run."""
    raw = trail.add(write(workdir / "data" / "raw.csv", RAW), name="raw/penguins")
    with trail.run("clean") as run:
        run.input(raw)
        clean = run.output(write(workdir / "data" / "clean.csv", CLEAN), name="clean/penguins")
    return clean


def test_run_input_by_path_is_the_dataset_at_that_location(trail: datatrail.Trail, workdir: Path) -> None:
    clean = cleaned(trail, workdir)
    p = dt("run", "-n", "train", "-i", "data/clean.csv", "-o", "model.txt", "--", "sh", "-c", "echo m > model.txt",
           cwd=workdir)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert notes(p) == ["datatrail: data/clean.csv is clean/penguins@1 (its location)"]
    assert sorted(d.name for d in trail.datasets()) == ["clean/penguins", "model.txt", "raw/penguins"]
    train = trail.runs("train")[0]
    assert [v.ref for v in train.inputs] == [clean.ref]
    upstream = trail.lineage("model.txt", direction="upstream", depth=10)
    names = {n.data.get("name") for n in upstream.nodes.values() if n.type == "version"}
    assert names == {"model.txt", "clean/penguins", "raw/penguins"}

    # A later edit is "changed" on clean/penguins (the only dataset there), and read again it is its next version.
    write(workdir / "data" / "clean.csv", CLEAN + "Gentoo,5000\n")
    verify = dt("verify", cwd=workdir)
    assert verify.returncode != 0
    changed = [line for line in verify.stdout.splitlines() if line.startswith("changed")]
    assert len(changed) == 1 and changed[0].startswith("changed  clean/penguins@1:"), verify.stdout
    again = dt("run", "-n", "train", "-i", "data/clean.csv", "--", "true", cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert notes(again) == [
        "datatrail: data/clean.csv is clean/penguins@2 (new content at the location of clean/penguins)"
    ]
    assert [v.number for v in trail.versions("clean/penguins")] == [1, 2]
    assert "data/clean.csv" not in {d.name for d in trail.datasets()}


def test_a_copy_read_as_input_is_the_same_content(trail: datatrail.Trail, workdir: Path) -> None:
    clean = cleaned(trail, workdir)
    shutil.copy(workdir / "data" / "clean.csv", workdir / "data" / "copy.csv")
    p = dt("run", "-n", "train", "-i", "data/copy.csv", "--", "true", cwd=workdir)
    assert p.returncode == 0, p.stderr
    assert clean.digest is not None
    assert notes(p) == [f"datatrail: data/copy.csv is clean/penguins@1 (same content, {clean.digest.short})"]
    assert [v.ref for v in trail.runs("train")[0].inputs] == ["clean/penguins@1"]
    assert "data/copy.csv" not in {d.name for d in trail.datasets()}


def test_run_input_missing_path_is_one_line_and_stores_nothing(trail: datatrail.Trail, workdir: Path) -> None:
    cleaned(trail, workdir)
    before = store_size(trail)
    p = dt("run", "-n", "train", "-i", "MISSING", "--", "true", cwd=workdir)
    assert p.returncode == 125  # datatrail's own failure, never a status the command could have had
    assert p.stderr.splitlines() == [
        "datatrail: error: path not found: MISSING;"
        " give an existing file or folder, a URL, or a dataset ref (NAME@VERSION)"
    ]
    assert store_size(trail) == before
    # A ref keeps the catalog's answer; a dataset name is a ref.
    bad = dt("run", "-n", "train", "-i", "raw/penguins@9", "--", "true", cwd=workdir)
    assert bad.returncode != 0 and bad.stderr.startswith("datatrail: error: dataset 'raw/penguins' has no version '9'")
    assert store_size(trail) == before
    ok = dt("run", "-n", "train", "-i", "raw/penguins", "--", "true", cwd=workdir)
    assert ok.returncode == 0, ok.stderr
    assert [v.ref for v in trail.runs("train")[0].inputs] == ["raw/penguins@1"]


def test_python_run_input_and_output_by_path(trail: datatrail.Trail, workdir: Path) -> None:
    clean = cleaned(trail, workdir)
    write(workdir / "data" / "copy.csv", RAW)
    with trail.run("train") as run:
        assert run.input("data/clean.csv") == clean
        assert run.input(workdir / "data" / "copy.csv").ref == "raw/penguins@1"
        with pytest.raises(NotFound, match=r"^path not found: MISSING; "):
            run.input("MISSING")
        with pytest.raises(NotFound, match=r"^path not found: "):
            run.input(workdir / "nowhere.csv")
    raw = trail.get("raw/penguins@1")
    assert raw.digest is not None
    assert run.notes == [
        "data/clean.csv is clean/penguins@1 (its location)",
        f"{workdir / 'data' / 'copy.csv'} is raw/penguins@1 (same content, {raw.digest.short})",
    ]
    # An output written at a dataset's location, given no name, is that dataset's next version.
    with trail.run("clean") as run:
        out = run.output(write(workdir / "data" / "clean.csv", CLEAN + "Gentoo,5000\n"))
    assert out.ref == "clean/penguins@2"
    assert sorted(d.name for d in trail.datasets()) == ["clean/penguins", "raw/penguins"]


def test_add_without_a_name_of_a_known_location(trail: datatrail.Trail, workdir: Path) -> None:
    cleaned(trail, workdir)
    same = trail.register(workdir / "data" / "clean.csv")
    assert (same.version.ref, same.created) == ("clean/penguins@1", False)
    assert same.note == f"{workdir / 'data' / 'clean.csv'} is clean/penguins@1 (its location)"
    # `datatrail add` of a copy tracks the copy's location: a new dataset, with a note naming the content.
    shutil.copy(workdir / "data" / "clean.csv", workdir / "data" / "copy.csv")
    p = dt("add", "data/copy.csv", cwd=workdir)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("data/copy.csv@1 sha256:")
    assert p.stderr == "data/copy.csv has the same content as clean/penguins@1; recorded as data/copy.csv@1\n"
    write(workdir / "data" / "clean.csv", CLEAN + "Gentoo,5000\n")
    changed = dt("add", "data/clean.csv", cwd=workdir)
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.startswith("clean/penguins@2 sha256:") and changed.stdout.endswith("(new)\n")
    # A name given is that name, whatever the location.
    named = dt("add", "data/clean.csv", "--name", "other", cwd=workdir)
    assert named.stdout.startswith("other@1 ")


def test_autolog_reads_find_the_dataset_at_the_location(trail: datatrail.Trail, workdir: Path) -> None:
    clean = cleaned(trail, workdir)
    outside = write(workdir.parent / "elsewhere" / "copy.csv", CLEAN)
    datatrail.autolog(trail=trail)
    try:
        with trail.run("features") as run:
            pd.read_csv(workdir / "data" / "clean.csv")
            pd.read_csv(outside)  # the same bytes outside the root: the same version
            pd.read_csv(workdir / "data" / "raw.csv").to_csv(workdir / "data" / "clean.csv", index=False)
    finally:
        datatrail.autolog(disable=True)
    r = trail.get_run(run.id)
    assert [v.ref for v in r.inputs] == [clean.ref, "raw/penguins@1"]
    assert [v.ref for v in r.outputs] == ["clean/penguins@2"]
    assert sorted(d.name for d in trail.datasets()) == ["clean/penguins", "raw/penguins"]


def test_a_script_under_datatrail_run_reads_through_autolog(trail: datatrail.Trail, workdir: Path) -> None:
    cleaned(trail, workdir)
    script = write(workdir / "train.py", "import pandas as pd\npd.read_csv('data/clean.csv')\n")
    p = dt("run", "-n", "train", "--", sys.executable, str(script), cwd=workdir)
    assert p.returncode == 0, p.stderr
    assert [v.ref for v in trail.runs("train")[0].inputs] == ["clean/penguins@1"]


def test_a_principal_finds_only_the_versions_it_may_read(trail: datatrail.Trail, workdir: Path) -> None:
    """A location or content in a namespace the caller may not read is simply not there."""
    p = write(workdir / "shared.csv", CLEAN)
    trail.add(p, name="a", namespace="team-a")
    trail.add(p, name="b", namespace="team-b")
    viewer = trail.scoped(Principal("vera", grants=(Grant("viewer", "team-a"),)), "test")
    assert [v.ref for v in viewer.catalog.versions_at(p.resolve().as_uri())] == ["team-a:a@1"]
    everyone = trail.catalog.versions_at(p.resolve().as_uri())
    assert sorted(v.ref for v in everyone) == ["team-a:a@1", "team-b:b@1"]
