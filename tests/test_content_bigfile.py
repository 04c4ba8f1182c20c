"""Big objects: copied by the kernel and hashed beside the copy, on push, pull, checkout and add.

The objects here are bigger than :data:`~datatrail.content.objects.KERNEL_FROM` and span
several :data:`~datatrail.content.objects.KERNEL_BLOCK` blocks plus a tail, so that the
pipelined copy (``copy_file_range`` of block N+1 while a thread hashes block N) is what runs.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.content import objects as objmod
from datatrail.content.objects import KERNEL_BLOCK, KERNEL_FROM, ObjectStore, copy_hashing, kernel_copy
from tests.conftest import write
from tests.test_sync import _cache_is_sound, clone

runner = CliRunner()
BIG = 2 * KERNEL_BLOCK + 12_345  # two whole blocks and a tail


def big_bytes(size: int = BIG) -> bytes:
    block = os.urandom(1 << 20)
    return b"".join(block[:-4] + i.to_bytes(4, "big") for i in range(size // len(block) + 1))[:size]


def test_kernel_and_python_copies_hash_the_same_bytes(tmp_path: Path) -> None:
    for size in (KERNEL_FROM, KERNEL_BLOCK, BIG):
        data = big_bytes(size)
        src_path = write(tmp_path / f"src-{size}", data)
        for kernel in (True, False):
            dest = tmp_path / f"dst-{size}-{kernel}"
            src = os.open(src_path, os.O_RDONLY)
            dst = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            seen: list[int] = []
            try:
                got = copy_hashing(src, dst, kernel=kernel, progress=seen.append)
            finally:
                os.close(src)
                os.close(dst)
            assert got == (hashlib.sha256(data).hexdigest(), size)
            assert sum(seen) == size
            assert dest.read_bytes() == data
            if kernel:  # the kernel copies (and the thread hashes) whole blocks
                tail = [size % KERNEL_BLOCK] if size % KERNEL_BLOCK else []
                assert seen == [KERNEL_BLOCK] * (size // KERNEL_BLOCK) + tail


def test_a_destination_open_for_writing_only_is_copied_by_python(tmp_path: Path) -> None:
    data = big_bytes(KERNEL_FROM + 1)
    src = os.open(write(tmp_path / "src", data), os.O_RDONLY)
    dst = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    seen: list[int] = []
    try:  # the kernel copy hashes what landed, read back: it needs a readable destination
        assert copy_hashing(src, dst, progress=seen.append) == (hashlib.sha256(data).hexdigest(), len(data))
    finally:
        os.close(src)
        os.close(dst)
    assert max(seen) <= objmod.CHUNK  # read and written a chunk at a time
    assert (tmp_path / "dst").read_bytes() == data


def test_kernel_copy_copies_and_refuses_an_existing_destination(tmp_path: Path) -> None:
    data = big_bytes()
    src = write(tmp_path / "src", data)
    assert kernel_copy(os.fspath(src), os.fspath(tmp_path / "dst")) == len(data)
    assert (tmp_path / "dst").read_bytes() == data
    with pytest.raises(FileExistsError):
        kernel_copy(os.fspath(src), os.fspath(tmp_path / "dst"))


def test_kernel_copy_asks_for_whole_blocks_and_copies_a_file_that_spans_several(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push's copy asks the kernel for WHOLE_BLOCK per call (one call for 1 GiB, as cp); a file longer
    than that (here the block made 1 MiB, the file 2 blocks of 32 MiB and a tail) still arrives whole."""
    assert objmod.WHOLE_BLOCK >= 1 << 30 > KERNEL_BLOCK
    monkeypatch.setattr(objmod, "WHOLE_BLOCK", 1 << 20)
    data = big_bytes()
    src = write(tmp_path / "src", data)
    assert kernel_copy(os.fspath(src), os.fspath(tmp_path / "dst")) == len(data)
    assert hashlib.sha256((tmp_path / "dst").read_bytes()).digest() == hashlib.sha256(data).digest()


def test_a_big_file_pushes_and_pulls_whole_linked_read_only_into_the_workspace(
    sqlite_trail: datatrail.Trail, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = big_bytes()
    v = sqlite_trail.add(write(workdir / "big.bin", data), store_content=True)
    sqlite_trail.storage.add_remote("origin", os.fspath(tmp_path / "remote"), default=True)
    assert sqlite_trail.push().objects == 1
    hexd = v.digest.hex  # type: ignore[union-attr]
    on_remote = tmp_path / "remote" / "objects" / "sha256" / hexd[:2] / hexd[2:]
    assert on_remote.read_bytes() == data
    assert not [p for p in on_remote.parent.iterdir() if p.name.startswith(".")]  # no temporary name left

    other = clone(workdir, tmp_path)
    monkeypatch.chdir(other)
    with datatrail.connect() as there:
        report = there.pull()
        assert (report.objects, report.bytes) == (1, len(data))
        (checkout,) = report.checkouts
        assert checkout.summary() == "1 added"
    pulled = other / "big.bin"
    assert pulled.read_bytes() == data
    cached = other / ".datatrail" / "objects" / "sha256" / hexd[:2] / hexd[2:]
    assert pulled.stat().st_ino == cached.stat().st_ino  # the bytes were written once
    assert not pulled.stat().st_mode & stat.S_IWUSR
    assert _cache_is_sound(other / ".datatrail" / "objects") == 1
    assert sorted(p.name for p in other.iterdir()) == [".datatrail", "big.bin"]


def test_a_corrupt_big_object_stops_a_pull_leaving_nothing_and_a_rerun_resumes(
    sqlite_trail: datatrail.Trail, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = big_bytes()
    v = sqlite_trail.add(write(workdir / "big.bin", data), store_content=True)
    sqlite_trail.storage.add_remote("origin", os.fspath(tmp_path / "remote"), default=True)
    sqlite_trail.push()
    hexd = v.digest.hex  # type: ignore[union-attr]
    on_remote = tmp_path / "remote" / "objects" / "sha256" / hexd[:2] / hexd[2:]
    broken = bytearray(data)
    broken[KERNEL_BLOCK + 5] ^= 0xFF  # in the second block: the first is copied and hashed before it
    on_remote.chmod(0o644)
    on_remote.write_bytes(bytes(broken))

    other = clone(workdir, tmp_path)
    monkeypatch.chdir(other)
    result = runner.invoke(app, ["pull"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and f"object {hexd[:12]}" in line and "corrupt" in line
    assert sorted(p.name for p in other.iterdir()) == [".datatrail"]  # nothing in the workspace
    assert _cache_is_sound(other / ".datatrail" / "objects") == 0  # nor in the cache, not even a temporary file

    on_remote.write_bytes(data)  # the remote repaired: the rerun pulls it
    result = runner.invoke(app, ["pull"])
    assert result.exit_code == 0, result.output
    assert (other / "big.bin").read_bytes() == data
    assert _cache_is_sound(other / ".datatrail" / "objects") == 1


def test_a_corrupt_big_cache_object_is_refused_by_a_copying_checkout(
    sqlite_trail: datatrail.Trail, workdir: Path
) -> None:
    data = big_bytes()
    v = sqlite_trail.add(write(workdir / "big.bin", data), store_content=True)
    hexd = v.digest.hex  # type: ignore[union-attr]
    cached = ObjectStore(workdir / ".datatrail" / "objects").path(hexd)
    cached.chmod(0o644)
    broken = bytearray(data)
    broken[-1] ^= 0xFF  # in the tail
    cached.write_bytes(bytes(broken))
    with pytest.raises(datatrail.errors.IntegrityError, match="was corrupt"):
        sqlite_trail.checkout(v, workdir / "copy.bin", link=False)
    assert not (workdir / "copy.bin").exists()
    assert not [p.name for p in workdir.iterdir() if ".datatrail-" in p.name]  # no temporary file left
    assert not cached.exists()  # removed, so that a rerun fetches a sound copy


def test_a_checkout_to_another_filesystem_copies_verified(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    """The cache on one filesystem, the target on another (tmpfs): no hard link, a kernel copy, hashed."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == workdir.stat().st_dev:
        pytest.skip("needs /dev/shm on a filesystem of its own, apart from the test's folder")
    data = big_bytes()
    v = sqlite_trail.add(write(workdir / "big.bin", data), store_content=True)
    target = shm / f"datatrail-test-{os.getpid()}" / "big.bin"
    try:
        report = sqlite_trail.checkout(v, target)
        assert report.summary() == "1 added"
        assert target.read_bytes() == data
        assert target.stat().st_nlink == 1  # a copy of its own
        assert not [p.name for p in target.parent.iterdir() if p.name != "big.bin"]
    finally:
        for p in target.parent.glob("*"):
            p.unlink()
        if target.parent.exists():
            target.parent.rmdir()


def test_a_full_disk_during_a_kernel_copy_is_one_error_and_nothing_half_written(
    sqlite_trail: datatrail.Trail, workdir: Path, tmp_path: Path
) -> None:
    import subprocess

    from datatrail.errors import DiskFull

    tiny = tmp_path / "tiny"
    tiny.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(tiny)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {done.stderr.decode().strip()}")
    try:
        v = sqlite_trail.add(write(workdir / "big.bin", big_bytes()), store_content=True)
        hexd = v.digest.hex  # type: ignore[union-attr]
        with pytest.raises(DiskFull, match="no space left"):
            sqlite_trail.checkout(v, tiny / "big.bin")  # another filesystem: copied, not linked
        assert list(tiny.iterdir()) == []
        cache = ObjectStore(tiny / "objects")
        with pytest.raises(DiskFull):
            cache.add_copy(hexd, os.fspath(workdir / "big.bin"))
        assert list(cache) == [] and not any(p.name.startswith(".tmp") for p in tiny.rglob("*"))
    finally:
        subprocess.run(["umount", str(tiny)], check=True)


def test_reading_an_object_with_a_size_hint_reads_it_whole_whatever_the_hint(tmp_path: Path) -> None:
    cache = ObjectStore(tmp_path / "objects")
    data = os.urandom(5000)
    hexd = hashlib.sha256(data).hexdigest()
    cache.add_bytes(hexd, data)
    for hint in (None, 0, 4999, 5000, 5001, 1 << 20):  # a pack's sizes come from manifests: trusted, not relied on
        assert cache.read(hexd, hint) == data
