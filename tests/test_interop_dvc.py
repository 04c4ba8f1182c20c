"""Importing DVC projects made by the real dvc package: .dvc files, a two-stage dvc.yaml, dvc repro."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.core.errors import InvalidInput
from datatrail.interop.dvc import dvc_md5, import_dvc
from datatrail.interop.openlineage import export_events
from tests import httpserver
from tests.conftest import write
from tests.test_events import validate_event

DVC = Path(sys.executable).parent / "dvc"
ENV = {
    **os.environ,
    "DVC_NO_ANALYTICS": "1",
    "DVC_STUDIO_OFFLINE": "1",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}
runner = CliRunner()

PREPARE = """
import sys, yaml, pathlib
frac = yaml.safe_load(open("params.yaml"))["prep"]["frac"]
rows = open("data/raw.csv").read().splitlines()
pathlib.Path("data/clean.csv").write_text("\\n".join(rows[: 1 + int((len(rows) - 1) * frac)]) + "\\n")
"""
TRAIN = """
import json, yaml
lr = yaml.safe_load(open("params.yaml"))["train"]["lr"]
open("model.bin", "w").write(f"lr={lr}\\n" + open("data/clean.csv").read())
open("metrics.json", "w").write(json.dumps({"loss": lr / 2, "acc": {"train": 0.9}}))
"""


def sh(cwd: Path, *args: str) -> str:
    # DVC's site cache and global config go beside the project (a test's scratch folder), not to the user's.
    home = cwd.parent / "dvc-home"
    env = {**ENV, **{f"DVC_{k}_DIR": str(home / k.lower()) for k in ("SITE_CACHE", "GLOBAL_CONFIG", "SYSTEM_CONFIG")}}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


def set_lr(repo: Path, lr: float) -> None:
    (repo / "params.yaml").write_text(yaml.safe_dump({"prep": {"frac": 0.5}, "train": {"lr": lr}}))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DVC project: data/raw.csv and data/images/ added with `dvc add`, then `dvc repro` of prepare → train."""
    repo = tmp_path_factory.mktemp("dvc") / "repo"
    (repo / "data" / "images").mkdir(parents=True)
    (repo / "data" / "raw.csv").write_text("id,x\n" + "".join(f"{i},{i * 1.5}\n" for i in range(10)))
    for i in range(3):
        (repo / "data" / "images" / f"{i}.txt").write_text(f"image {i}\n")
    (repo / "prepare.py").write_text(PREPARE)
    (repo / "train.py").write_text(TRAIN)
    set_lr(repo, 0.1)
    py = sys.executable
    stages = {
        "prepare": {
            "cmd": f"{py} prepare.py",
            "deps": ["prepare.py", "data/raw.csv", "data/images"],
            "params": ["prep.frac"],
            "outs": ["data/clean.csv"],
        },
        "train": {
            "cmd": f"{py} train.py",
            "deps": ["train.py", "data/clean.csv"],
            "params": ["train.lr"],
            "outs": ["model.bin"],
            "metrics": [{"metrics.json": {"cache": False}}],
        },
    }
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    sh(repo, "git", "init", "-q")
    sh(repo, str(DVC), "init", "-q")
    sh(repo, str(DVC), "add", "-q", "data/raw.csv", "data/images")
    sh(repo, str(DVC), "repro", "-q")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-q", "-m", "pipeline")
    return repo


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(template, copy, symlinks=True)
    return copy


@pytest.fixture
def local(workdir: Path) -> Iterator[datatrail.Trail]:
    t = datatrail.init(workdir)
    try:
        yield t
    finally:
        t.close()


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def lock_md5(repo: Path, stage: str, path: str) -> str:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"][stage]
    return next(o["md5"] for o in lock["deps"] + lock["outs"] if o["path"] == path)


def test_dvc_md5_matches_dvc(repo: Path) -> None:
    assert dvc_md5(repo / "data" / "clean.csv") == lock_md5(repo, "prepare", "data/clean.csv")
    assert dvc_md5(repo / "data" / "images") == lock_md5(repo, "prepare", "data/images")
    assert dvc_md5(repo / "data" / "images").endswith(".dir")


def test_import_records_stages_runs_and_both_digests(trail: datatrail.Trail, repo: Path) -> None:
    summary = import_dvc(trail, repo)
    assert set(summary.new_versions) >= {"data/raw.csv@1", "data/images@1", "data/clean.csv@1", "model.bin@1"}
    assert len(summary.runs) == 2 and summary.skipped == []
    model = trail.get("model.bin")
    assert str(model.digest) == sha256(repo / "model.bin")
    assert model.properties["dvc"]["md5"] == lock_md5(repo, "train", "model.bin")
    images = trail.get("data/images")
    assert images.file_count == 3 and images.properties["dvc"]["md5"].endswith(".dir")
    raw = trail.get("data/raw.csv")
    assert raw.run_id is None and str(raw.digest) == sha256(repo / "data" / "raw.csv")
    train = trail.get_run(str(model.run_id))
    assert train.job == "train" and train.state.value == "COMPLETE"
    assert train.command is not None and train.command.endswith("train.py")
    assert train.params == {"train.lr": 0.1}
    assert train.metrics == {"loss": 0.05, "acc.train": 0.9}  # from metrics.json, declared in dvc.yaml
    assert "metrics.json@1" in summary.new_versions
    assert {v.name for v in train.inputs} == {"train.py", "data/clean.csv"}
    assert train.code.get("commit") == sh(repo, "git", "rev-parse", "HEAD").strip()
    prepare = trail.get_run(str(trail.get("data/clean.csv").run_id))
    assert prepare.params == {"prep.frac": 0.5}
    assert {v.ref for v in prepare.inputs} == {"prepare.py@1", "data/raw.csv@1", "data/images@1"}
    graph = trail.lineage("model.bin", direction="upstream").to_json()
    ids = {n["id"] for n in graph["nodes"]}
    assert "version:default:data/raw.csv@1" in ids and f"run:{prepare.id}" in ids


def test_reimport_after_repro_adds_only_what_changed(local: datatrail.Trail, repo: Path) -> None:
    first = import_dvc(local, repo)
    assert import_dvc(local, repo).to_dict() == {
        **first.to_dict(),
        "events": 0,
        "new_events": 0,
        "duplicate_events": 0,
        "new_versions": [],
        "runs": [],
    }
    prepare_runs = [r.id for r in local.runs("prepare")]
    set_lr(repo, 0.2)
    sh(repo, str(DVC), "repro", "-q")  # only train runs again: prepare's deps and params did not change
    again = import_dvc(local, repo)
    assert again.new_versions == ["metrics.json@2", "model.bin@2"]
    assert len(again.runs) == 1
    assert [r.id for r in local.runs("prepare")] == prepare_runs
    assert len(local.runs("train")) == 2
    new_train = local.get_run(again.runs[0])
    assert new_train.params == {"train.lr": 0.2}
    assert new_train.metrics == {"loss": 0.1, "acc.train": 0.9}
    assert [v.ref for v in new_train.outputs] == ["metrics.json@2", "model.bin@2"]
    assert [v.ref for v in new_train.inputs if v.name == "data/clean.csv"] == ["data/clean.csv@1"]
    assert str(local.get("model.bin@2").digest) == sha256(repo / "model.bin")


def test_data_missing_or_changed_in_the_workspace_is_kept_by_md5(local: datatrail.Trail, repo: Path) -> None:
    (repo / "model.bin").unlink()
    (repo / "data" / "clean.csv").write_text("edited by hand\n")
    cache, aside = repo / ".dvc" / "cache", repo / ".dvc" / "cache-aside"
    cache.rename(aside)  # without DVC's cache, only the MD5 is known
    try:
        summary = import_dvc(local, repo)
    finally:
        aside.rename(cache)
    model = local.get("model.bin")
    assert model.digest is None and model.key == "md5:" + lock_md5(repo, "train", "model.bin")
    clean = local.get("data/clean.csv")
    assert clean.digest is None and clean.properties["dvc"]["md5"] == lock_md5(repo, "prepare", "data/clean.csv")
    assert any("data/clean.csv" in s and "differs" in s for s in summary.skipped)
    # With DVC's cache, its objects are re-hashed once: SHA-256 versions whose bytes datatrail keeps.
    (local.root / "fresh").mkdir()
    with datatrail.init(local.root / "fresh") as fresh:
        import_dvc(fresh, repo)
        model = fresh.get("model.bin")
        assert model.digest is not None and model.properties["dvc"]["md5"] == lock_md5(repo, "train", "model.bin")
        with fresh.open(model) as f:  # type: ignore[union-attr]
            assert hashlib.md5(f.read(), usedforsecurity=False).hexdigest() == lock_md5(repo, "train", "model.bin")


def test_cli_import_dvc(local: datatrail.Trail, repo: Path) -> None:
    result = runner.invoke(app, ["import", "dvc", str(repo), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert "model.bin@1" in summary["new_versions"] and len(summary["runs"]) == 2
    result = runner.invoke(app, ["lineage", "model.bin"])
    assert result.exit_code == 0 and "data/raw.csv@1" in result.stdout and "run prepare" in result.stdout
    result = runner.invoke(app, ["import", "dvc", str(repo)])
    assert result.exit_code == 0 and result.stdout.startswith("0 events")
    empty = repo.parent / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["import", "dvc", str(empty)])
    assert result.exit_code == 2 and "not a DVC project" in result.stderr and result.stderr.count("\n") == 1
    with pytest.raises(InvalidInput, match="not a DVC project"):
        import_dvc(local, empty)
    (repo / "dvc.lock").write_text("stages: [unclosed\n")
    result = runner.invoke(app, ["import", "dvc", str(repo)])
    assert result.exit_code == 2 and "dvc.lock" in result.stderr and result.stderr.count("\n") == 1


def test_import_over_http_and_export_validates(repo: Path, tmp_path: Path, workdir: Path) -> None:
    with httpserver.running(tmp_path / "srv") as server, datatrail.connect(server.uri) as remote:
        first = import_dvc(remote, repo)
        assert "model.bin@1" in first.new_versions and len(first.runs) == 2
        again = import_dvc(remote, repo)
        assert (again.events, again.new_versions) == (0, [])
        assert remote.get("model.bin").properties["dvc"]["md5"] == lock_md5(repo, "train", "model.bin")
        events = list(export_events(remote))
        assert len(events) == first.events
        for event in events:
            validate_event(event)


# ---------------------------------------------------------------- a hostile project


def _project(folder: Path, stages: dict[str, object], lock: dict[str, object] | str) -> Path:
    """A DVC project written by hand (what a cloned repository may hold); DVC never ran in it."""
    (folder / ".dvc").mkdir(parents=True)
    (folder / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    (folder / "dvc.lock").write_text(lock if isinstance(lock, str) else yaml.safe_dump(lock))
    return folder


def _import_in_a_process(repo: Path) -> subprocess.CompletedProcess[str]:
    """`datatrail import dvc` in its own process, so a hang is a timeout here, not a stuck suite."""
    env = {k: v for k, v in os.environ.items() if k != "DATATRAIL_URI"}
    cmd = [str(Path(sys.executable).with_name("datatrail")), "import", "dvc", str(repo)]
    return subprocess.run(cmd, cwd=repo.parent, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_dvc_files_that_block_explode_or_lead_out_are_refused(local: datatrail.Trail, workdir: Path) -> None:
    stage = {"train": {"cmd": "python train.py", "outs": ["model.bin"]}}
    # dvc.lock as a symlink to /dev/zero: endless zeros, read until memory ran out.
    zero = _project(workdir / "zero", stage, "")
    (zero / "dvc.lock").unlink()
    (zero / "dvc.lock").symlink_to("/dev/zero")
    done = _import_in_a_process(zero)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "dvc.lock" in done.stderr and "leads out of" in done.stderr
    # dvc.yaml as a FIFO: opening it to read waited for a writer forever.
    fifo = _project(workdir / "fifo", stage, "")
    (fifo / "dvc.yaml").unlink()
    os.mkfifo(fifo / "dvc.yaml")
    done = _import_in_a_process(fifo)
    assert done.returncode == 2 and "dvc.yaml" in done.stderr and "not a regular file" in done.stderr, done.stderr
    # A 400-byte alias bomb in dvc.lock: a billion nodes once hashed as JSON.
    bomb = 'stages:\n  train: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for name, prev in zip("bcdefghi", "abcdefgh", strict=True):
        bomb += f"  {name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    assert len(bomb) < 600
    bombed = _project(workdir / "bomb", stage, bomb)
    done = _import_in_a_process(bombed)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "dvc.lock" in done.stderr and "expand to more than" in done.stderr
    with pytest.raises(InvalidInput, match="refers to a node that contains it"):
        import_dvc(local, _project(workdir / "loop", stage, "stages: &s {train: *s}\n"))
    assert local.datasets() == [] and local.runs() == []


def test_a_dvc_file_over_the_size_bound_is_refused(
    local: datatrail.Trail, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datatrail.interop.dvc as dvc

    monkeypatch.setattr(dvc, "MAX_FILE", 4096)
    big = _project(workdir / "big", {"s": {"cmd": "x" * 5000}}, "")
    with pytest.raises(InvalidInput, match=r"dvc\.yaml.*more than the 4096 allowed"):
        import_dvc(local, big)


def test_metrics_outside_the_project_are_not_read(local: datatrail.Trail, workdir: Path) -> None:
    secret_dir = workdir / "secret"
    secret = write(secret_dir / "secret.json", json.dumps({"aws_key_digits": 123456789}))
    md5 = hashlib.md5(secret.read_bytes(), usedforsecurity=False).hexdigest()
    repo = workdir / "project"
    write(repo / "inside.json", json.dumps({"acc": 0.5}))
    (repo / "linked.json").parent.mkdir(parents=True, exist_ok=True)
    (repo / "linked.json").symlink_to(secret)
    names = [str(secret), "../secret/secret.json", "linked.json", "inside.json"]
    stages = {"train": {"cmd": "python train.py", "metrics": [{n: {"cache": False}} for n in names]}}
    inside_md5 = hashlib.md5((repo / "inside.json").read_bytes(), usedforsecurity=False).hexdigest()
    outs = [{"path": n, "md5": md5} for n in names[:3]] + [{"path": "inside.json", "md5": inside_md5}]
    outs += [{"path": str(secret)}]  # and without an MD5, which used to skip the check altogether
    lock = {"schema": "2.0", "stages": {"train": {"cmd": "python train.py", "outs": outs}}}
    summary = import_dvc(local, _project(repo, stages, lock))
    [run] = local.runs("train")
    assert run.metrics == {"acc": 0.5}
    assert "123456789" not in json.dumps([e for _, e in local.catalog.events(limit=100)])
    assert any("outside the project, not read" in s for s in summary.skipped), summary.skipped
