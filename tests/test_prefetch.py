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
