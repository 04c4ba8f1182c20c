"""A DVC project moves to datatrail with its data (DVC's cache imported), and back (`datatrail export dvc`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.interop.dvc import import_dvc
from tests.conftest import write
from tests.test_interop_dvc import DVC, sh

runner = CliRunner()


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_import_brings_dvc_cache_objects_and_checkout_restores(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    sh(repo, str(DVC), "init", "--no-scm", "-q")
    write(repo / "data/images/a.png", b"\x89PNG a" * 100)
    write(repo / "data/images/sub/b.png", b"\x89PNG b" * 100)
    write(repo / "data/raw.csv", "x\n1\n2\n")
    sh(repo, str(DVC), "add", "-q", "data/images")
    sh(repo, str(DVC), "add", "-q", "data/raw.csv")
    images = tree(repo / "data/images")
    # The workspace lost the images (a fresh clone with only DVC's cache, say).
    shutil.rmtree(repo / "data/images")
    with datatrail.init(repo) as trail:
        import_dvc(trail, repo)
        v = trail.get("data/images@1")
        assert v.digest is not None and v.file_count == 2  # a SHA-256 digest and manifest, from DVC's cache
        report = trail.checkout("data/images@1")
        assert report.count("added") == 2
        assert tree(repo / "data/images") == images
        raw = trail.get("data/raw.csv@1")  # in the workspace: hashed there, its bytes kept too
        assert trail.storage.objects.has(raw.digest.hex)  # type: ignore[union-attr]


def test_export_dvc_lets_dvc_checkout_the_version(workdir: Path) -> None:
    sh(workdir, str(DVC), "init", "--no-scm", "-q")
    assert runner.invoke(app, ["init"]).exit_code == 0
    write(workdir / "data/images/a.png", b"one")
    write(workdir / "data/images/sub/b.png", b"two")
    assert runner.invoke(app, ["add", "data/images", "--store-content"]).exit_code == 0
    write(workdir / "model.bin", b"weights")
    assert runner.invoke(app, ["add", "model.bin", "--store-content"]).exit_code == 0
    original = tree(workdir / "data/images")
    for ref in ("data/images@1", "model.bin@1"):
        result = runner.invoke(app, ["export", "dvc", ref])
        assert result.exit_code == 0, result.output
    spec = yaml.safe_load((workdir / "data/images.dvc").read_text())["outs"][0]
    assert spec["md5"].endswith(".dir") and spec["nfiles"] == 2 and spec["path"] == "images"
    shutil.rmtree(workdir / "data/images")
    (workdir / "model.bin").unlink()
    sh(workdir, str(DVC), "checkout")
    assert tree(workdir / "data/images") == original
    assert (workdir / "model.bin").read_bytes() == b"weights"
    status = sh(workdir, str(DVC), "status")
    assert "up to date" in status.lower() or status.strip() in ("", "{}")


def test_export_dvc_needs_a_dvc_project(workdir: Path) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    write(workdir / "a.txt", "x")
    runner.invoke(app, ["add", "a.txt", "--store-content"])
    result = runner.invoke(app, ["export", "dvc", "a.txt@1"])
    assert result.exit_code == 2 and "not a DVC project" in result.stderr
