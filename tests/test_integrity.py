"""Integrity: `verify --no-cache` finds silent data damage; `fsck` finds damage to the store itself.

Data: one byte changed with the modification time put back (the stat cache
cannot see it), a truncated file, two files swapped. Store: every link that an
ingest transaction writes together, broken one at a time with real SQL on a
real SQLite file or PostgreSQL database.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update
from typer.testing import CliRunner, Result

import datatrail
from datatrail.cli.app import app
from datatrail.core.text import count
from datatrail.store.sql import tables as t
from datatrail.store.sql.store import SqlStore
from tests.conftest import write

runner = CliRunner()


def cli(*args: str) -> Result:
    return runner.invoke(app, list(args))


def flip_byte_keep_mtime(path: Path, offset: int) -> None:
    """Change one byte in place and restore the modification time to the nanosecond."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    with path.open("r+b") as f:  # in place: same inode, same size
        f.write(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (st.st_ino, st.st_size, st.st_mtime_ns)


def verify_json(*args: str) -> dict[str, Any]:
    result = cli("verify", *args, "--json")
    assert result.exit_code in (0, 1), (result.stdout, result.stderr)
    report: dict[str, Any] = json.loads(result.stdout)
    assert (result.exit_code == 0) == report["ok"]
    return report


def problems_of(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(p["problem"], Path(p["path"]).name) for p in report["problems"]}


@pytest.fixture
def tracked(trail: datatrail.Trail, workdir: Path) -> Path:
    """A file and a directory of three files, added, hashed (the stat cache is warm) and verified."""
    write(workdir / "single.bin", bytes(range(256)) * 40)
    for name in ("a", "b", "c"):
        write(workdir / "tree" / f"{name}.txt", f"content of {name}\n" * 100)
    # Old mtimes: a file modified within two seconds of hashing is not cached.
    for p in [workdir / "single.bin", *(workdir / "tree").iterdir()]:
        os.utime(p, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    trail.add(workdir / "single.bin")
    trail.add(workdir / "tree")
    assert verify_json()["ok"] is True
    return workdir


def test_one_byte_with_mtime_restored_is_found_by_no_cache(tracked: Path) -> None:
    flip_byte_keep_mtime(tracked / "single.bin", 5000)
    flip_byte_keep_mtime(tracked / "tree" / "b.txt", 7)
    # The stat cache vouches for (inode, size, mtime): by design only --no-cache reads the bytes.
    report = verify_json("--no-cache")
    assert report["ok"] is False
    assert problems_of(report) == {("changed", "single.bin"), ("changed", "b.txt")}
    text = cli("verify", "--no-cache")
    assert text.exit_code == 1
    assert "b.txt" in text.stdout and "single.bin" in text.stdout
    assert text.stderr == "error: 2 problems found\n"


def test_truncated_and_swapped_files_are_found(tracked: Path) -> None:
    single = tracked / "single.bin"
    with single.open("r+b") as f:
        f.truncate(100)
    a, c = tracked / "tree" / "a.txt", tracked / "tree" / "c.txt"
    a_bytes, c_bytes = a.read_bytes(), c.read_bytes()
    a.write_bytes(c_bytes)
    c.write_bytes(a_bytes)
    for report in (verify_json(), verify_json("--no-cache")):
        assert problems_of(report) == {("changed", "single.bin"), ("changed", "a.txt"), ("changed", "c.txt")}


def test_deleted_and_added_files_are_named(tracked: Path) -> None:
    (tracked / "tree" / "a.txt").unlink()
    write(tracked / "tree" / "d.txt", "new\n")
    report = verify_json("--no-cache")
    assert problems_of(report) == {("missing", "a.txt"), ("added", "d.txt")}


# ---------------------------------------------------------------- fsck


@pytest.fixture
def populated(trail: datatrail.Trail, workdir: Path) -> Iterator[SqlStore]:
    """A store with a directory version, a file version, a run with an input and an output."""
    write(workdir / "tree" / "a.txt", "a\n")
    write(workdir / "tree" / "b.txt", "b\n")
    trail.add(workdir / "tree", name="tree")
    raw = trail.add(write(workdir / "raw.csv", "x\n1\n2\n"), name="raw")
    with trail.run("clean") as run:
        run.input(raw)
        run.output(write(workdir / "clean.csv", "x\n1\n"), name="clean")
    write(workdir / "raw.csv", "x\n1\n2\n3\n")
    trail.add(workdir / "raw.csv", name="raw")
    store = SqlStore(trail.location.uri)
    try:
        assert store.check_integrity() == []
        yield store
    finally:
        store.close()


def fsck() -> tuple[int, list[str]]:
    result = cli("fsck", "--json")
    out = json.loads(result.stdout)
    assert out["ok"] == (result.exit_code == 0) == (out["problems"] == [])
    return result.exit_code, out["problems"]


def test_fsck_passes_a_sound_store(populated: SqlStore) -> None:
    assert fsck() == (0, [])
    result = cli("fsck")
    assert (result.exit_code, result.stdout) == (0, "ok: the store is sound\n")


def _version_id(store: SqlStore, name: str, number: int) -> int:
    v, d = t.versions.c, t.datasets.c
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(v.id).join(t.datasets, d.id == v.dataset_id).where(d.name == name, v.number == number)
            ).scalar_one()
        )


def _break(store: SqlStore, how: str) -> str:
    """Break one link with real SQL; the words fsck must use for it."""
    with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
        if how == "manifest":
            vid = _version_id(store, "tree", 1)
            conn.execute(
                delete(t.version_files).where(t.version_files.c.version_id == vid, t.version_files.c.path == "b.txt")
            )
            return "tree@1 (1 of 2)"
        if how == "event":
            last = conn.execute(select(func.max(t.events.c.id))).scalar_one()
            conn.execute(update(t.audit).where(t.audit.c.event_id == last).values(event_id=None))
            return "events without their audit entry"
        if how == "gap":
            vid = _version_id(store, "raw", 2)
            conn.execute(update(t.versions).where(t.versions.c.id == vid).values(number=3))
            return "raw (2 of 3)"
        if how == "edge":
            run_pk = conn.execute(select(func.min(t.runs.c.pk))).scalar_one()
            conn.execute(insert(t.run_io).values(run_pk=run_pk, direction=t.INPUT, version_id=999_999))
            return "version 999999"
        if how == "version":
            # A version row no event created (written behind datatrail's back).
            ds = conn.execute(select(t.datasets.c.id).where(t.datasets.c.name == "raw")).scalar_one()
            conn.execute(
                insert(t.versions).values(
                    dataset_id=ds,
                    number=3,
                    version_key="sha256:" + "0" * 64,
                    created_at=conn.execute(select(func.max(t.versions.c.created_at))).scalar_one(),
                )
            )
            return "raw@3"
        if how == "audit":
            conn.execute(update(t.audit).where(t.audit.c.seq == 2).values(actor="mallory"))
            return "audit entry 2 does not match the hash chain"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["manifest", "event", "gap", "edge", "version", "audit"])
def test_fsck_names_each_broken_link(populated: SqlStore, how: str) -> None:
    words = _break(populated, how)
    code, problems = fsck()
    assert code == 6
    assert any(words in p for p in problems), problems
    result = cli("fsck")
    assert result.exit_code == 6
    assert words in result.stdout
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {count(len(problems), 'problem')} found")


@pytest.mark.sql_store
def test_fsck_finds_a_damaged_sqlite_file(workdir: Path) -> None:
    trail = datatrail.init(workdir)
    for i in range(200):
        trail.add(write(workdir / f"f{i}.txt", f"{i}\n" * 50), name=f"f{i}")
    trail.close()
    db = workdir / ".datatrail" / "trail.db"
    SqlStore(f"sqlite:///{db}").close()  # checkpoints the WAL into the file
    size = db.stat().st_size
    with db.open("r+b") as f:  # scribble over pages in the middle (not the header page)
        f.seek(size // 2 // 4096 * 4096)
        f.write(b"\x5a" * 4096 * 4)
    result = cli("fsck")
    assert result.exit_code == 6, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), result.stderr
