"""gc and the temporary files a killed add, pull or checkout leaves in the local object cache."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

import datatrail
from datatrail.cli.app import app
from datatrail.cli.output import human_size
from datatrail.content.objects import STALE_TEMP_AGE, TEMP

runner = CliRunner()
BIG = 128 * 1024 * 1024  # long enough a copy to be killed in the middle of it


def _age(path: Path, seconds: float) -> Path:
    os.utime(path, (time.time() - seconds,) * 2)
    return path


def _gc(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["gc", *args, "--json"])
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.stdout)
    return report


def _killed_add(workdir: Path, big: Path, objects: Path) -> Path:
    """`datatrail add --store-content` of ``big``, SIGKILLed while it copies into the cache: its temporary file."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "datatrail.cli.app", "add", os.fspath(big), "--store-content"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if any(_size(p) for p in (objects / "sha256").glob(f"*/{TEMP}*")):
            break  # the copy into the cache has begun
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the add ended before it could be interrupted"
    left = [p for p in objects.rglob(f"{TEMP}*") if p.is_file()]
    assert len(left) == 1, left  # a killed process removes nothing
    assert 0 < left[0].stat().st_size <= BIG
    return left[0]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def test_gc_removes_the_temporary_files_a_killed_add_left_never_a_young_one(
    sqlite_trail: datatrail.Trail, workdir: Path
) -> None:
    big = workdir / "big.bin"
    digest = hashlib.sha256()
    with big.open("wb") as f:
        for _ in range(BIG // (1024 * 1024)):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            f.write(block)
    objects = sqlite_trail.storage.objects.root
    sqlite_trail.close()
    killed = _killed_add(workdir, big, objects)
    with datatrail.connect() as trail:
        assert digest.hexdigest() not in set(trail.storage.objects)  # the object never entered the cache
        assert list(trail.datasets()) == []  # nor was the version recorded

    # Straight after the kill its file is as young as a live writer's: gc leaves it.
    report = _gc()
    assert (report["temp_files"], report["temp_bytes"]) == (0, 0)
    assert killed.exists()

    _age(killed, 2 * STALE_TEMP_AGE)  # as gc finds it once a day has passed
    folder = killed.parent
    index_copies = objects.parent / "remotes" / "0123456789abcdef" / "packs"  # a remote's pack indexes, copied
    (objects / "packs").mkdir(exist_ok=True)
    index_copies.mkdir(parents=True)
    planted = {
        objects / "packs" / f"{TEMP}{'b' * 12}-0": STALE_TEMP_AGE + 60,  # a pulled pack cut short
        index_copies / f"{TEMP}{'c' * 32}": STALE_TEMP_AGE + 60,  # a pack index a killed pull was copying
        folder / f"{TEMP}{'d' * 12}-1": 0,  # being written now by another add or pull
        folder / f"{TEMP}{'e' * 12}-2": STALE_TEMP_AGE / 2,  # a slow writer, still within the day
        objects / "packs" / "README": 2 * STALE_TEMP_AGE,  # not datatrail's
    }
    for p, age in planted.items():
        p.write_bytes(b"x" * 1000)
        _age(p, age)
    stale = [killed, *(p for p, age in planted.items() if age > STALE_TEMP_AGE and p.name.startswith(TEMP))]
    kept = [p for p in planted if p not in stale]
    stale_bytes = killed.stat().st_size + 2000

    dry = _gc("--dry-run")
    assert (dry["temp_files"], dry["temp_bytes"], dry["objects"]) == (3, stale_bytes, 0)
    assert all(p.exists() for p in stale)
    said = runner.invoke(app, ["gc", "--dry-run"])
    assert said.exit_code == 0, said.output
    assert (
        f"would remove 3 temporary files ({human_size(stale_bytes)}) "
        "that interrupted adds, pulls or checkouts left in the cache"
    ) in said.stdout
    assert all(p.exists() for p in stale)

    done = runner.invoke(app, ["gc"])
    assert done.exit_code == 0, done.output
    assert (
        f"removed 3 temporary files ({human_size(stale_bytes)}) "
        "that interrupted adds, pulls or checkouts left in the cache"
    ) in done.stdout
    assert not [p for p in stale if p.exists()]
    assert all(p.exists() for p in kept)
    again = _gc()
    assert (again["temp_files"], again["temp_bytes"]) == (0, 0)

    # Nothing the kill left stands in the way of adding the file again.
    with datatrail.connect() as trail:
        trail.add(big, store_content=True)
        assert trail.storage.objects.verify(digest.hexdigest())
