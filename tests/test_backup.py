"""`datatrail backup create|restore`: a consistent copy of a live SQLite store, checked before it comes back.

The copy is taken while four real `datatrail add` processes keep writing; it
must be a sound store holding a prefix of the versions, and restoring it must
bring back exactly that state. Damaged, tampered and too-new backups are
refused, leaving the store untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

import datatrail
from datatrail.cli.app import app
from datatrail.store.sql.store import SqlStore
from tests import httpserver
from tests.conftest import write

runner = CliRunner()
WRITERS = 4


def cli(*args: str) -> Result:
    return runner.invoke(app, list(args))


def one_line_error(result: Result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def versions_in(db: Path) -> dict[str, list[str]]:
    """dataset name -> digests by version number, read with plain sqlite3."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT d.name, v.number, v.digest FROM versions v JOIN datasets d ON d.id = v.dataset_id"
            " ORDER BY d.name, v.number"
        ).fetchall()
    conn.close()
    out: dict[str, list[str]] = {}
    for name, number, digest in rows:
        out.setdefault(name, []).append(digest)
        assert len(out[name]) == number
    return out


def sound(db: Path) -> None:
    store = SqlStore(f"sqlite:///{db}")
    try:
        assert store.check_integrity() == []
    finally:
        store.close()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store_db(workdir: Path) -> Path:
    trail = datatrail.init(workdir)
    trail.add(write(workdir / "seed.txt", "seed\n"), name="seed")
    trail.close()
    return workdir / ".datatrail" / "trail.db"


WRITER = """\
import sys, datatrail
from pathlib import Path
me, n = sys.argv[1], int(sys.argv[2])
trail = datatrail.connect()
for i in range(n):
    p = Path(f"w{me}.txt")
    p.write_text(f"writer {me} step {i}\\n" * 20)
    trail.add(p, name="shared", message=f"{me}-{i}")
trail.close()
"""


@pytest.mark.slow
def test_backup_while_writers_run_then_restore(store_db: Path, workdir: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATATRAIL_URI"}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(w), "25"], cwd=workdir, env=env, stderr=subprocess.PIPE)
        for w in range(WRITERS)
    ]
    try:
        # Wait until the writers are writing, then copy the store under their feet, three times.
        deadline = time.monotonic() + 60
        while "shared" not in versions_in(store_db) and time.monotonic() < deadline:
            time.sleep(0.05)
        backups = []
        for i in range(3):
            target = tmp_path / f"backup-{i}.db"
            result = cli("backup", "create", str(target), "--json")
            assert result.exit_code == 0, result.stderr
            info = json.loads(result.stdout)
            assert info["path"] == str(target) and info["size"] == target.stat().st_size
            backups.append(target)
            time.sleep(0.2)
    finally:
        for w in writers:
            _, err = w.communicate(timeout=120)
            assert w.returncode == 0, err
    final = versions_in(store_db)
    assert len(final["shared"]) == WRITERS * 25
    sound(store_db)
    seen = []
    for backup in backups:
        # One self-contained file: no WAL beside it, and sound on its own.
        assert not backup.with_name(backup.name + "-wal").exists()
        copy = versions_in(backup)
        sound(backup)
        # A consistent snapshot: a prefix of what the store ended with.
        assert copy["seed"] == final["seed"]
        assert copy["shared"] == final["shared"][: len(copy["shared"])]
        seen.append(len(copy["shared"]))
    assert seen == sorted(seen)

    before = file_digest(backups[0])
    result = cli("backup", "restore", str(backups[0]))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"restored {backups[0]} into ")
    assert file_digest(backups[0]) == before  # the backup itself is never changed
    assert versions_in(store_db) == versions_in(backups[0])
    assert cli("fsck").exit_code == 0
    # Work continues, numbering from the restored state.
    p = write(workdir / "after.txt", "after restore\n")
    trail = datatrail.connect()
    try:
        v = trail.add(p, name="shared")
    finally:
        trail.close()
    assert v.number == seen[0] + 1


def _tamper_audit(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 1")
    conn.close()


def _newer_revision(db: Path) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()


def _damage(db: Path) -> None:
    size = db.stat().st_size
    with db.open("r+b") as f:
        f.seek(size // 2 // 4096 * 4096)
        f.write(b"\x5a" * 4096 * 3)


def _not_sqlite(db: Path) -> None:
    db.write_bytes(b"this is not a database\n" * 400)


@pytest.mark.parametrize(
    ("spoil", "words"),
    [
        (_tamper_audit, "does not match the hash chain"),
        (_newer_revision, "newer than this datatrail understands"),
        (_damage, "is not a sound datatrail store"),
        (_not_sqlite, "not a"),
    ],
)
def test_restore_refuses_a_bad_backup_and_leaves_the_store(
    store_db: Path, workdir: Path, tmp_path: Path, spoil: object, words: str
) -> None:
    trail = datatrail.connect()
    for i in range(60):  # enough pages that damage lands inside the data
        trail.add(write(workdir / f"f{i}.txt", f"{i}\n" * 30), name=f"f{i}")
    trail.close()
    backup = tmp_path / "bad.db"
    assert cli("backup", "create", str(backup)).exit_code == 0
    spoil(backup)  # type: ignore[operator]
    trail = datatrail.connect()
    trail.add(write(workdir / "later.txt", "later\n"), name="later")
    trail.close()
    before = versions_in(store_db)
    one_line_error(cli("backup", "restore", str(backup)), 6, words)
    assert versions_in(store_db) == before
    sound(store_db)
    assert not [p.name for p in store_db.parent.iterdir() if ".restore-" in p.name]  # no scratch file left


def test_restore_into_a_missing_store(store_db: Path, tmp_path: Path) -> None:
    backup = tmp_path / "b.db"
    assert cli("backup", "create", str(backup)).exit_code == 0
    for p in store_db.parent.glob("trail.db*"):
        p.unlink()
    assert cli("backup", "restore", str(backup)).exit_code == 0
    assert versions_in(store_db) == versions_in(backup)
    assert cli("fsck").exit_code == 0


def test_backup_errors_are_one_line(store_db: Path, tmp_path: Path, workdir: Path) -> None:
    target = tmp_path / "b.db"
    assert cli("backup", "create", str(target)).exit_code == 0
    digest = file_digest(target)
    one_line_error(cli("backup", "create", str(target)), 4, "already exists", "--force")
    assert file_digest(target) == digest
    assert cli("backup", "create", str(target), "--force").exit_code == 0
    one_line_error(cli("backup", "create", str(tmp_path / "nope" / "b.db")), 2, "does not exist")
    one_line_error(cli("backup", "create", str(tmp_path)), 2, "is a folder")
    one_line_error(cli("backup", "create", str(store_db)), 2, "the store itself")
    one_line_error(cli("backup", "restore", str(tmp_path / "missing.db")), 3, "no backup file")
    one_line_error(cli("backup", "restore", str(store_db)), 2, "the store itself")
    one_line_error(cli("backup", "restore", str(target), "--force"), 2, "--force")
    one_line_error(cli("backup", "copy", str(target)), 2, "unknown action", "backup create PATH")
    one_line_error(
        cli("--store", "postgresql://dt@db.example:5432/trail", "backup", "create", str(tmp_path / "x.db")),
        2,
        "pg_dump",
        "point-in-time recovery",
    )
    one_line_error(cli("--store", "http://127.0.0.1:9", "backup", "create", str(tmp_path / "x.db")), 2, "server's host")
    assert not (tmp_path / "x.db").exists()


def test_restore_under_a_running_server(store_db: Path, workdir: Path, tmp_path: Path) -> None:
    """A server holding the store open sees the restored store at once; nothing needs restarting."""
    backup = tmp_path / "b.db"
    assert cli("backup", "create", str(backup)).exit_code == 0
    srv = httpserver.start(tmp_path / "srv", store=f"sqlite:///{store_db}")
    try:
        srv.wait_ready()
        datasets = f"{srv.uri}/api/v1/namespaces/default/datasets"
        event = {
            "eventType": "COMPLETE",
            "eventTime": "2024-05-01T10:00:00+00:00",
            "producer": "https://example.com/tests/backup",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": "1e0c8a47-0bb8-4c1c-9d7c-0a4c1d6f2b11", "facets": {}},
            "job": {"namespace": "default", "name": "late", "facets": {}},
            "outputs": [{"namespace": "default", "name": "after-backup", "facets": {}}],
        }
        assert httpx.post(f"{srv.uri}/api/v1/lineage", json=event).status_code == 201
        assert sorted(d["name"] for d in httpx.get(datasets).json()["datasets"]) == ["after-backup", "seed"]
        result = cli("backup", "restore", str(backup))
        assert result.exit_code == 0, result.stderr
        assert [d["name"] for d in httpx.get(datasets).json()["datasets"]] == ["seed"]
        assert httpx.get(f"{srv.uri}/api/v1/integrity").json()["problems"] == []
        # The server keeps writing into the restored store.
        assert httpx.post(f"{srv.uri}/api/v1/lineage", json=event).status_code == 201
        assert sorted(d["name"] for d in httpx.get(datasets).json()["datasets"]) == ["after-backup", "seed"]
    finally:
        srv.stop()
    sound(store_db)
