"""Push of many small objects: one reader, packs verified object by object, and what an interrupted push leaves."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.content.packs import parse_index
from datatrail.content.remotes import STALE_TEMP_AGE
from tests.conftest import write

runner = CliRunner()


def small_tree(root: Path, files: int, size: int) -> dict[str, bytes]:
    out = {}
    for i in range(files):
        rel = f"part-{i // 100}/f{i:05d}.bin"
        data = hashlib.sha256(str(i).encode()).digest() * (size // 32) + i.to_bytes(4, "big")
        write(root / rel, data)
        out[rel] = data
    return out


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def clone(workdir: Path, tmp_path: Path) -> Path:
    other = tmp_path / "clone"
    (other / ".datatrail").mkdir(parents=True)
    for name in ("config.toml", "trail.db", "trail.db-wal"):
        if (workdir / ".datatrail" / name).exists():
            shutil.copy(workdir / ".datatrail" / name, other / ".datatrail" / name)
    return other


def remote_packs(remote: Path) -> dict[str, list[str]]:
    """Pack name → the digests its index lists, each pack's objects checked against their digests."""
    out = {}
    for idx in sorted((remote / "packs").glob("*.idx")):
        data = (remote / "packs" / f"{idx.stem}.pack").read_bytes()
        entries = parse_index(idx.read_bytes())
        for e in entries:
            assert hashlib.sha256(data[e.offset : e.offset + e.length]).hexdigest() == e.digest
        out[idx.stem] = [e.digest for e in entries]
    return out


def test_packs_are_named_by_their_index_and_the_same_objects_give_the_same_packs(
    sqlite_trail: datatrail.Trail, workdir: Path, tmp_path: Path
) -> None:
    original = small_tree(workdir / "data", 600, 20_000)  # ~12 MiB: 3 packs
    sqlite_trail.add(workdir / "data", store_content=True)
    sqlite_trail.storage.add_remote("a", os.fspath(tmp_path / "a"))
    sqlite_trail.storage.add_remote("b", os.fspath(tmp_path / "b"))
    first = sqlite_trail.push(remote="a")
    assert (first.objects, first.packs) == (600, 3)
    assert sqlite_trail.push(remote="b").packs == 3
    packs = remote_packs(tmp_path / "a")
    assert packs == remote_packs(tmp_path / "b")  # the same names and contents, written twice
    for name in packs:
        assert hashlib.sha256((tmp_path / "a" / "packs" / f"{name}.idx").read_bytes()).hexdigest() == name
    assert sorted(h for hexes in packs.values() for h in hexes) == sorted(
        hashlib.sha256(b).hexdigest() for b in original.values()
    )


def test_a_corrupt_cached_object_is_refused_by_push_and_removed_and_the_rerun_pushes_sound_bytes(
    sqlite_trail: datatrail.Trail, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = small_tree(workdir / "data", 300, 4096)
    sqlite_trail.add(workdir / "data", store_content=True)
    sqlite_trail.storage.add_remote("origin", os.fspath(tmp_path / "remote"), default=True)
    spoiled = hashlib.sha256(original["part-1/f00150.bin"]).hexdigest()
    cached = workdir / ".datatrail" / "objects" / "sha256" / spoiled[:2] / spoiled[2:]
    cached.unlink()  # the cache's copy spoiled (the workspace's file is another inode: it stays sound)
    cached.write_bytes(b"not the bytes this object is named after")

    result = runner.invoke(app, ["push"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and f"cached object {spoiled[:12]}" in line and "corrupt" in line
    assert not cached.exists()  # removed: the next push cannot send it again
    remote = tmp_path / "remote"
    assert all(spoiled not in hexes for hexes in remote_packs(remote).values()) if remote.exists() else True

    # The version's bytes are no longer all cached: a push of every version passes over it, naming it.
    skipped = sqlite_trail.push()
    assert skipped.objects == 0 and len(skipped.skipped) == 1
    sqlite_trail.add(workdir / "data", store_content=True)  # the sound file kept again
    assert cached.read_bytes() == original["part-1/f00150.bin"]
    assert sqlite_trail.push().objects > 0
    assert spoiled in {h for hexes in remote_packs(remote).values() for h in hexes}

    other = clone(workdir, tmp_path)
    monkeypatch.chdir(other)
    with datatrail.connect() as there:
        there.pull()
    assert tree(other / "data") == original


def test_a_push_killed_midway_leaves_nothing_a_rerun_or_a_pull_trips_over(
    sqlite_trail: datatrail.Trail, workdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = small_tree(workdir / "data", 2000, 40_000)  # ~76 MiB: 20 packs
    write(workdir / "data" / "big.bin", os.urandom(3 * 1024 * 1024))
    original["big.bin"] = (workdir / "data" / "big.bin").read_bytes()
    sqlite_trail.add(workdir / "data", store_content=True)
    remote = tmp_path / "remote"
    sqlite_trail.storage.add_remote("origin", os.fspath(remote), default=True)
    sqlite_trail.close()

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "datatrail.cli.app", "push"], cwd=workdir, env=env, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if (remote / "packs").is_dir() and any((remote / "packs").iterdir()):
            break  # the first pack is being written
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the push ended before it could be interrupted"
    before = {p.name for p in (remote / "packs").iterdir()}
    assert len([n for n in before if n.endswith(".idx")]) < 20  # cut short: not every pack is there
    # What the killed push was writing, as a later push finds it once a day has passed.
    left = [p for p in remote.rglob(".tmp-*") if p.is_file()]
    for p in left:
        os.utime(p, (time.time() - 2 * STALE_TEMP_AGE,) * 2)

    with datatrail.connect() as again:  # the current directory: workdir
        resumed = again.push()
        assert resumed.objects > 0 and resumed.objects + resumed.already == len(original)
        assert again.push().objects == 0  # everything is there now
    assert not [p for p in left if p.exists()]
    packs = remote_packs(remote)
    assert sum(len(h) for h in packs.values()) >= len(original) - 1

    other = clone(workdir, tmp_path)
    monkeypatch.chdir(other)
    with datatrail.connect() as there:
        there.pull()
    assert tree(other / "data") == original


def _age(path: Path, seconds: float) -> Path:
    os.utime(path, (time.time() - seconds,) * 2)
    return path


def test_push_and_gc_remove_the_temporary_files_killed_uploads_left_never_a_live_one(
    sqlite_trail: datatrail.Trail, workdir: Path, tmp_path: Path
) -> None:
    write(workdir / "big.bin", os.urandom(2 * 1024 * 1024))  # an object of its own on the remote
    write(workdir / "small.bin", b"a small file, packed")
    sqlite_trail.add(workdir / "big.bin", store_content=True)
    sqlite_trail.add(workdir / "small.bin", store_content=True)
    remote = tmp_path / "remote"
    sqlite_trail.storage.add_remote("origin", os.fspath(remote), default=True)
    sqlite_trail.close()
    assert runner.invoke(app, ["push"]).exit_code == 0
    sent = {p: p.read_bytes() for p in remote.rglob("*") if p.is_file()}
    loose = next((remote / "objects" / "sha256").iterdir())

    def plant() -> tuple[list[Path], list[Path]]:
        """Files a killed push left (a big object's copy, a pack's), and files push must leave alone."""
        ages = {
            loose / f".tmp-{'a' * 32}": STALE_TEMP_AGE + 60,  # left by a killed push
            remote / "packs" / f".tmp-{'b' * 32}": STALE_TEMP_AGE + 60,  # as above
            remote / "packs" / f".tmp-{'c' * 32}": 0,  # being written now by another push
            loose / f".tmp-{'d' * 32}": STALE_TEMP_AGE / 2,  # an upload slowed down, still within the day
            remote / "packs" / "README": 2 * STALE_TEMP_AGE,  # not datatrail's
        }
        for p, age in ages.items():
            p.write_bytes(b"x" * 1000)
            _age(p, age)
        stale = [p for p, age in ages.items() if age > STALE_TEMP_AGE and p.name.startswith(".tmp-")]
        return stale, [p for p in ages if p not in stale]

    stale, kept = plant()
    result = runner.invoke(app, ["push"])
    assert result.exit_code == 0, result.output
    assert "note: removed 2 temporary files (2.0 KiB) that interrupted uploads left on the remote" in result.output
    assert not [p for p in stale if p.exists()]
    assert all(p.exists() for p in kept)
    assert all(p.read_bytes() == data for p, data in sent.items())  # the objects pushed before are untouched

    stale, kept = plant()
    with datatrail.connect() as again:
        removed = "removed 2 temporary files (2.0 KiB) that interrupted uploads left on the remote"
        assert again.push().notes == (removed,)
        stale, kept = plant()
        dry = again.storage.gc(remote=True, dry_run=True)
        assert "would remove 2 temporary files (2.0 KiB) that interrupted uploads left on the remote" in dry.notes
        assert all(p.exists() for p in stale)
        done = again.storage.gc(remote=True)
        assert removed in done.notes
        assert not [p for p in stale if p.exists()]
        assert all(p.exists() for p in kept)
        assert again.push().notes == ()  # nothing stale left
        assert all(p.read_bytes() == data for p, data in sent.items())


def test_a_push_with_nothing_to_send_writes_nothing_to_the_store(sqlite_trail: datatrail.Trail, workdir: Path) -> None:
    """The executable's plain push (cli/fast.py, the sqlite3 path): the store's file is left byte for byte."""
    write(workdir / "big.bin", os.urandom(3 * 1024 * 1024))
    write(workdir / "small.txt", b"small")
    sqlite_trail.add(workdir / "big.bin", store_content=True)
    sqlite_trail.add(workdir / "small.txt", store_content=True)
    sqlite_trail.storage.add_remote("origin", os.fspath(workdir / "remote"), default=True)
    assert sqlite_trail.push().located == 2
    entries = len(sqlite_trail.audit_entries(action="content.locate"))
    sqlite_trail.close()
    db = workdir / ".datatrail" / "trail.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest(), db.stat().st_mtime_ns

    env = {k: v for k, v in os.environ.items() if k != "DATATRAIL_URI"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    done = subprocess.run(
        [sys.executable, "-m", "datatrail", "push"], cwd=workdir, env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("pushed 0 objects (0 B, 0 packs) to origin")
    assert (hashlib.sha256(db.read_bytes()).hexdigest(), db.stat().st_mtime_ns) == before
    wal = workdir / ".datatrail" / "trail.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0  # not even a page waiting in the write-ahead log
    with datatrail.connect() as again:
        assert len(again.audit_entries(action="content.locate")) == entries
