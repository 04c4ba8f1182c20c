"""Hashing a big file ahead of the CLI's start-up gives exactly the normal result."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from datatrail.cli import prefetch
from datatrail.hashing import LayeredCache, hash_path, stat_key
from datatrail.statcache import SqliteStatCache


def big_file(path: Path) -> str:
    with path.open("wb") as f:
        f.write(os.urandom(1 << 20))
        f.truncate(prefetch.MIN_SIZE + 12345)
    old = 1_600_000_000
    os.utime(path, (old, old))  # old enough for the stat cache to vouch for it
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("argv", "started"),
    [
        (["add", "BIG"], True),
        (["--store", "sqlite:///x.db", "add", "--name", "n", "-t", "prod", "--no-cache", "BIG"], True),
        (["add", "SMALL"], False),
        (["ls", "BIG"], False),
        (["add"], False),
        (["add", "missing.bin"], False),
        (["--store"], False),
    ],
)
def test_only_plain_adds_of_big_files_are_prefetched(tmp_path: Path, argv: list[str], started: bool) -> None:
    big = tmp_path / "big.bin"
    digest = big_file(big)
    (tmp_path / "small.bin").write_bytes(b"x")
    args = [a.replace("BIG", str(big)).replace("SMALL", str(tmp_path / "small.bin")) for a in argv]
    prefetch.start_from_argv(args)
    ahead = prefetch.take(big)
    assert (ahead is not None) is started
    if ahead is not None:
        assert ahead.lookup([stat_key(big.stat())]) == {stat_key(big.stat()): digest}
        assert prefetch.take(big) is None  # handed out once


def test_prefetched_digest_is_written_through_to_the_stat_cache(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    digest = big_file(big)
    prefetch.start_from_argv(["add", str(big)])
    ahead = prefetch.take(big)
    assert ahead is not None
    cache = SqliteStatCache(tmp_path / "stat.db")
    result = hash_path(big, cache=LayeredCache(ahead, cache))
    assert result.digest.hex == digest and result.bytes_read == 0
    assert cache.lookup([stat_key(big.stat())]) == {stat_key(big.stat()): digest}
    cache.close()


def test_a_file_changed_after_prefetch_is_hashed_again(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big_file(big)
    prefetch.start_from_argv(["add", str(big)])
    ahead = prefetch.take(big)
    assert ahead is not None
    with big.open("r+b") as f:
        f.write(b"changed")
    os.utime(big, (1_600_000_100, 1_600_000_100))
    result = hash_path(big, cache=LayeredCache(ahead, None))
    assert result.digest.hex == hashlib.sha256(big.read_bytes()).hexdigest()
    assert result.bytes_read == big.stat().st_size


def test_cli_add_of_a_big_file(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    digest = big_file(big)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")}
    cli = [sys.executable, "-m", "datatrail"]
    subprocess.run([*cli, "init"], cwd=tmp_path, env=env, check=True, capture_output=True)
    out = subprocess.run([*cli, "add", "big.bin"], cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    assert out.stdout == f"big.bin@1 sha256:{digest[:12]} (new)\n"
    out = subprocess.run([*cli, "add", "big.bin"], cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    assert out.stdout == f"big.bin@1 sha256:{digest[:12]} (unchanged)\n"


def test_a_folder_of_big_files_is_hashed_ahead_file_by_file(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    digests = {tree / "a.bin": big_file(tree / "a.bin"), tree / "sub" / "b.bin": big_file(tree / "sub" / "b.bin")}
    (tree / "small.txt").write_text("small files are left to the normal path")
    prefetch.start_from_argv(["add", "--no-cache", str(tree)])
    ahead = prefetch.take(tree)
    assert ahead is not None
    small = stat_key((tree / "small.txt").stat())
    keys = {stat_key(p.stat()): d for p, d in digests.items()}
    assert ahead.lookup([*keys, small]) == keys
    # The folder's digest is the one the normal path gives, without reading a big file again.
    result = hash_path(tree, cache=LayeredCache(ahead, None))
    assert result.digest == hash_path(tree).digest
    assert result.bytes_read == (tree / "small.txt").stat().st_size


def test_a_folder_of_many_files_is_left_to_the_normal_path(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    big_file(tree / "a.bin")
    for i in range(prefetch.MAX_ENTRIES):
        (tree / f"{i}.txt").write_text(str(i))
    prefetch.start_from_argv(["add", str(tree)])
    assert prefetch.take(tree) is None


def test_cli_add_of_a_folder_of_big_files(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    big_file(tree / "a.bin")
    big_file(tree / "b.bin")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")}
    cli = [sys.executable, "-m", "datatrail"]
    subprocess.run([*cli, "init"], cwd=tmp_path, env=env, check=True, capture_output=True)
    out = subprocess.run([*cli, "add", "tree"], cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    assert out.stdout == f"tree@1 {hash_path(tree).digest.short} (new)\n"
    out = subprocess.run([*cli, "add", "tree"], cwd=tmp_path, env=env, check=True, capture_output=True, text=True)
    assert out.stdout == f"tree@1 {hash_path(tree).digest.short} (unchanged)\n"
