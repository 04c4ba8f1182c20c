"""Content storage: keeping bytes, checkout, reading versions back, DataFrames as versions, gc."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.content.objects import ObjectStore
from datatrail.errors import Conflict, IntegrityError, InvalidInput, NotFound
from tests.conftest import write

runner = CliRunner()


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def make_dir(workdir: Path) -> Path:
    write(workdir / "data/a.csv", "x,y\n1,2\n3,4\n")
    write(workdir / "data/sub/b.csv", "x,y\n5,6\n")
    write(workdir / "data/blob.bin", os.urandom(3 * 1024 * 1024))  # bigger than one read chunk
    return workdir / "data"


# ---------------------------------------------------------------- keeping bytes, checkout


def test_store_content_keeps_each_file_once_read_only(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    data = make_dir(workdir)
    v1 = sqlite_trail.add(data, store_content=True)
    objects = sqlite_trail.storage.objects
    kept = set(objects)
    assert kept == {f.digest.hex for f in sqlite_trail.manifest(v1)}
    for hexd in kept:
        mode = objects.path(hexd).stat().st_mode
        assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
        assert objects.verify(hexd)
    # A second version and another dataset sharing files add only the new object.
    write(data / "a.csv", "x,y\n9,9\n")
    sqlite_trail.add(data, store_content=True)
    assert len(set(objects)) == len(kept) + 1
    write(workdir / "copy.csv", "x,y\n5,6\n")  # the bytes of data/sub/b.csv
    sqlite_trail.add(workdir / "copy.csv", store_content=True)
    assert len(set(objects)) == len(kept) + 1


def test_without_store_content_nothing_is_kept(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    v = sqlite_trail.add(write(workdir / "a.txt", "hello"))
    assert list(sqlite_trail.storage.objects) == []
    (workdir / "a.txt").unlink()
    with pytest.raises(NotFound, match="not in the cache"):
        sqlite_trail.checkout(v)


def test_config_default_keeps_content(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    sqlite_trail.storage.set_store_content(True)
    sqlite_trail.add(write(workdir / "a.txt", "hello"))
    assert len(list(sqlite_trail.storage.objects)) == 1


def test_checkout_restores_exact_bytes_and_reports(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    data = make_dir(workdir)
    original = tree(data)
    v1 = sqlite_trail.add(data, store_content=True)
    write(data / "a.csv", "x,y\n7,7\n")
    write(data / "new.csv", "x,y\n0,0\n")
    v2 = sqlite_trail.add(data, store_content=True)
    assert v2.number == 2

    with pytest.raises(Conflict, match="local changes"):
        sqlite_trail.checkout(v1)  # data/ holds v2: new.csv and a.csv differ from v1
    assert (data / "new.csv").exists()

    report = sqlite_trail.checkout(v1, force=True)
    assert tree(data) == original
    assert (report.count("modified"), report.count("removed"), report.count("unchanged")) == (1, 1, 2)

    again = sqlite_trail.checkout(v1)
    assert not again.changed and again.summary() == "3 unchanged"

    elsewhere = sqlite_trail.checkout("data@2", workdir / "restored")
    assert elsewhere.count("added") == 4
    assert tree(workdir / "restored")["new.csv"] == b"x,y\n0,0\n"


def test_checkout_of_a_file_and_after_the_workspace_is_gone(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    path = write(workdir / "raw/penguins.csv", "a\n1\n")
    sqlite_trail.add(path, name="raw/penguins.csv", store_content=True)
    write(path, "a\n2\n")
    sqlite_trail.add(path, name="raw/penguins.csv", store_content=True)
    path.unlink()
    path.parent.rmdir()
    report = sqlite_trail.checkout("raw/penguins.csv@1")
    assert report.path == path and path.read_text() == "a\n1\n"
    with pytest.raises(Conflict):
        sqlite_trail.checkout("raw/penguins.csv@2")
    sqlite_trail.checkout("raw/penguins.csv@2", force=True)
    assert path.read_text() == "a\n2\n"


def test_corrupt_object_is_refused_and_the_workspace_left_as_it_was(
    sqlite_trail: datatrail.Trail, workdir: Path
) -> None:
    path = write(workdir / "a.txt", "good bytes")
    v = sqlite_trail.add(path, store_content=True)
    write(path, "local")
    obj = sqlite_trail.storage.objects.path(v.digest.hex)  # type: ignore[union-attr]
    obj.chmod(0o644)
    obj.write_bytes(b"evil bytes")
    with pytest.raises(IntegrityError, match="corrupt"):
        sqlite_trail.checkout(v, force=True)
    assert path.read_text() == "local"
    assert [p.name for p in workdir.iterdir() if p.name.startswith(".a.txt")] == []  # no temporary file left
    assert not obj.exists()  # dropped, so a rerun fetches a sound copy


def test_a_file_changed_while_adding_is_not_kept(workdir: Path) -> None:
    store = ObjectStore(workdir / "objects")
    path = write(workdir / "a.txt", "one")
    with pytest.raises(IntegrityError, match="changed while it was being added"):
        store.add_file("0" * 64, path)
    assert list(store) == []
    assert not any(p.name.startswith(".tmp") for p in (workdir / "objects").rglob("*"))


# ---------------------------------------------------------------- reading versions


def test_open_and_read_versions(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    data = make_dir(workdir)
    v = sqlite_trail.add(data, store_content=True)
    fs = sqlite_trail.open(v)
    assert not isinstance(fs, type(None))
    assert [e["name"] for e in fs.ls("")] == ["a.csv", "blob.bin", "sub"]  # type: ignore[union-attr]
    assert fs.cat_file("sub/b.csv") == b"x,y\n5,6\n"  # type: ignore[union-attr]
    table = sqlite_trail.read_arrow(v)
    assert table.num_rows == 3 and table.column_names == ["x", "y"]
    single = sqlite_trail.add(data / "a.csv", name="single", store_content=True)
    with sqlite_trail.open(single) as f:  # type: ignore[union-attr]
        assert f.read() == b"x,y\n1,2\n3,4\n"
    assert sqlite_trail.read_pandas(single)["y"].tolist() == [2, 4]
    assert sqlite_trail.read_polars(single)["x"].to_list() == [1, 3]
    with pytest.raises(InvalidInput, match="not tabular"):
        sqlite_trail.read_arrow(sqlite_trail.add(write(workdir / "n.txt", "text"), store_content=True))


# ---------------------------------------------------------------- DataFrames as versions


def test_dataframes_are_versions_and_come_back_equal(sqlite_trail: datatrail.Trail) -> None:
    df = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", None], "score": [0.5, 1.5, float("nan")]})
    v = sqlite_trail.add(df, name="frames/scores")
    assert (v.ref, v.format) == ("frames/scores@1", "arrow")
    back = sqlite_trail.read_pandas("frames/scores@1")
    pd.testing.assert_frame_equal(back, df)
    assert sqlite_trail.profile(v)["row_count"] == 3  # type: ignore[index]
    # Same data and schema from polars or pyarrow: the same version.
    assert sqlite_trail.add(pl.from_pandas(df), name="frames/scores").number == 1
    assert sqlite_trail.add(pa.Table.from_pandas(df, preserve_index=False), name="frames/scores").number == 1
    changed = sqlite_trail.add(df.assign(score=[1.0, 2.0, 3.0]), name="frames/scores")
    assert changed.number == 2
    assert sqlite_trail.read_polars("frames/scores@2")["score"].to_list() == [1.0, 2.0, 3.0]
    # The bytes kept are the canonical IPC stream the digest is the hash of.
    assert sqlite_trail.storage.objects.verify(v.digest.hex)  # type: ignore[union-attr]


def test_dataframe_needs_a_name(sqlite_trail: datatrail.Trail) -> None:
    with pytest.raises(InvalidInput, match="needs a name"):
        sqlite_trail.add(pd.DataFrame({"a": [1]}))


# ---------------------------------------------------------------- gc


def test_gc_removes_only_what_no_kept_version_reaches(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    path = workdir / "a.txt"
    for i in range(4):
        write(path, f"version {i}")
        sqlite_trail.add(path, store_content=True)
    sqlite_trail.tag("a.txt@1", "gold")
    objects = sqlite_trail.storage.objects
    assert objects.add_bytes(hashlib.sha256(b"orphan").hexdigest(), b"orphan")  # an object no version names
    assert sqlite_trail.gc().objects == 1
    assert len(list(objects)) == 4
    dry = sqlite_trail.gc(keep_latest=1, keep_aliases=True, dry_run=True)
    assert (dry.objects, dry.kept_versions) == (2, 2)
    assert len(list(objects)) == 4
    done = sqlite_trail.gc(keep_latest=1, keep_aliases=True)
    assert done.objects == 2 and done.bytes == len("version 1") * 2
    sqlite_trail.checkout("a.txt@1", workdir / "gold.txt")
    assert (workdir / "gold.txt").read_text() == "version 0"
    with pytest.raises(NotFound):
        sqlite_trail.checkout("a.txt@2", workdir / "gone.txt")


def test_gc_never_loses_an_object_of_a_concurrent_add(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    errors: list[BaseException] = []
    stop = threading.Event()

    def collect() -> None:
        with datatrail.connect() as other:
            while not stop.is_set():
                try:
                    other.gc()  # removes every object no recorded version names
                except BaseException as exc:
                    errors.append(exc)
                    return

    thread = threading.Thread(target=collect)
    thread.start()
    try:
        added = []
        for i in range(40):
            added.append(sqlite_trail.add(write(workdir / f"f{i}.txt", f"content {i}"), store_content=True))
    finally:
        stop.set()
        thread.join()
    assert not errors
    # Without the lock gc would see objects written but not yet named by a version, and remove them.
    assert all(sqlite_trail.storage.objects.has(v.digest.hex) for v in added)  # type: ignore[union-attr]


# ---------------------------------------------------------------- CLI


def test_cli_add_store_content_checkout_gc(workdir: Path) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    write(workdir / "d/x.txt", "one")
    result = runner.invoke(app, ["add", "d", "--store-content"])
    assert result.exit_code == 0, result.output
    write(workdir / "d/x.txt", "two")
    refused = runner.invoke(app, ["checkout", "d@1"])
    assert refused.exit_code == 4
    assert refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1
    forced = runner.invoke(app, ["checkout", "d@1", "--force", "--json"])
    assert forced.exit_code == 0, forced.output
    assert '"modified": 1' in forced.stdout and (workdir / "d/x.txt").read_text() == "one"
    gc = runner.invoke(app, ["gc", "--dry-run"])
    assert gc.exit_code == 0 and "would free 0 objects" in gc.stdout
    bad = runner.invoke(app, ["gc", "--older-than", "soon"])
    assert bad.exit_code == 2 and "invalid age" in bad.stderr


def test_big_files_are_hard_linked_read_only_unless_copy(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    big = write(workdir / "big.bin", os.urandom(2 * 1024 * 1024))
    v = sqlite_trail.add(big, store_content=True)
    big.unlink()
    sqlite_trail.checkout(v)
    obj = sqlite_trail.storage.objects.path(v.digest.hex)  # type: ignore[union-attr]
    assert big.stat().st_ino == obj.stat().st_ino  # one write for a big file
    assert not big.stat().st_mode & stat.S_IWUSR
    sqlite_trail.checkout(v, workdir / "copy.bin", link=False)
    assert (workdir / "copy.bin").stat().st_ino != obj.stat().st_ino
    assert (workdir / "copy.bin").read_bytes() == big.read_bytes()
    # An object edited through its link is caught before it is linked again or pushed.
    obj.chmod(0o644)
    with obj.open("r+b") as f:
        f.write(b"X")
    fresh = datatrail.connect()
    try:
        with pytest.raises(IntegrityError, match="corrupt"):
            fresh.checkout(v, workdir / "again.bin")
    finally:
        fresh.close()


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs: a real full disk (mounting needs root, as the suite's container has)."""
    import subprocess

    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_one_error_and_nothing_half_written(
    sqlite_trail: datatrail.Trail, workdir: Path, tiny_disk: Path
) -> None:
    from datatrail.errors import DiskFull

    v = sqlite_trail.add(write(workdir / "big.bin", os.urandom(700_000)), store_content=True)
    with pytest.raises(DiskFull, match="no space left"):
        sqlite_trail.checkout(v, tiny_disk / "big.bin")
    assert list(tiny_disk.iterdir()) == []
    cache = ObjectStore(tiny_disk / "objects")
    with pytest.raises(DiskFull):
        cache.add_file(v.digest.hex, workdir / "big.bin")  # type: ignore[union-attr]
    assert list(cache) == [] and not any(p.name.startswith(".tmp") for p in tiny_disk.rglob("*"))
    result = runner.invoke(app, ["checkout", "big.bin@1", str(tiny_disk / "again.bin")])
    assert result.exit_code == 8 and result.stderr.count("\n") == 1


def _age(root: Path, seconds: float = 3600) -> None:
    """Move every file's mtime out of the racy window (as if written an hour ago)."""
    when = time.time() - seconds
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, (when, when))


def test_an_unchanged_tree_is_known_by_its_listing_and_any_change_is_still_seen(
    sqlite_trail: datatrail.Trail, workdir: Path
) -> None:
    data = make_dir(workdir)
    _age(data)
    v1 = sqlite_trail.add(data, store_content=True)  # hashed, every digest vouched: the listing is remembered
    known, _ = sqlite_trail.recorder.known_tree(data)
    assert known is not None and known.digest == v1.digest and len(known.paths) == 3
    report = sqlite_trail.checkout(v1)
    assert (report.kept, report.changes, report.summary()) == (3, (), "3 unchanged")
    assert report.to_dict()["unchanged"] == 3 and not report.changed

    write(data / "a.csv", "x,y\n9,9\n")  # a change of content, made to look old: its stat still differs
    _age(data)
    assert sqlite_trail.recorder.known_tree(data)[0] is None
    with pytest.raises(Conflict, match=r"local changes \(1 files: 'a.csv'\)"):
        sqlite_trail.checkout(v1)
    assert sqlite_trail.checkout(v1, force=True).count("modified") == 1
    assert tree(data)["a.csv"] != b"x,y\n9,9\n"

    _age(data)
    sqlite_trail.checkout(v1)  # hashed again through the stat cache: the listing is remembered anew
    assert sqlite_trail.checkout(v1).kept == 3
    write(data / "extra.csv", "x\n1\n")  # a file more
    _age(data)
    with pytest.raises(Conflict, match=r"extra\.csv"):
        sqlite_trail.checkout(v1)
    (data / "extra.csv").unlink()
    (data / "sub" / "b.csv").unlink()  # a file fewer
    assert sqlite_trail.recorder.known_tree(data)[0] is None
    assert sqlite_trail.checkout(v1).count("added") == 1

    write(data / "fresh.csv", "x\n2\n")  # written just now: racy, so the listing cannot vouch
    assert sqlite_trail.recorder.known_tree(data)[0] is None


def test_missing_lists_folders_for_many_objects_and_agrees_with_one_stat_each(tmp_path: Path) -> None:
    from datatrail.content.objects import LIST_FROM

    store = ObjectStore(tmp_path / "objects")
    payloads = [f"object {i}".encode() for i in range(LIST_FROM + 50)]
    digests = [hashlib.sha256(p).hexdigest() for p in payloads]
    assert store.missing(digests) == set(digests)  # no cache folder yet
    kept = set(digests[::3])
    for p, h in zip(payloads, digests, strict=True):
        if h in kept:
            assert store.add_bytes(h, p)
            assert stat.S_IMODE(os.stat(store.where(h)).st_mode) & 0o222 == 0  # read-only from the start
    many = store.missing(digests)  # the listing path
    few = set().union(*(store.missing(digests[i : i + 100]) for i in range(0, len(digests), 100)))  # a stat each
    assert many == few == set(digests) - kept
    with pytest.raises(InvalidInput, match="invalid object name"):
        store.missing([*digests, "not-a-digest"])
