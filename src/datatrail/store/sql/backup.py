"""Backing up and restoring an embedded (SQLite) store with SQLite's online backup API, copies checked first.

``sqlite3.Connection.backup`` with ``pages=-1`` copies every page in one step
inside one read transaction, so the copy is one consistent snapshot even while
other processes write (in WAL mode writers do not wait for it). The same API,
pointed the other way, restores: it writes the whole destination in one write
transaction, so readers see either the old store or the restored one. A copy
is checked before it is kept or brought back: SQLite's ``integrity_check``, its
schema revision, the audit hash chain and the links between events, versions
and runs.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
import uuid
from pathlib import Path

from datatrail.core.errors import Conflict, IntegrityError, InvalidInput, NotFound
from datatrail.core.results import BackupInfo
from datatrail.store.sql.revisions import HEAD, REVISIONS
from datatrail.store.sql.store import SqlStore

BUSY_TIMEOUT_S = 60.0


def _connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    mode = "ro" if readonly else "rw"
    db = sqlite3.connect(f"file:{path}?mode={mode}", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    return db


def copy_database(source: Path, target: Path) -> None:
    """Copy the live store ``source`` into the new file ``target``, as one self-contained file."""
    src = _connect(source, readonly=True)
    try:
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            src.backup(dst, pages=-1)
        finally:
            dst.close()
    finally:
        src.close()
    with target.open("rb") as f:
        os.fsync(f.fileno())


def make_standalone(path: Path) -> None:
    """Leave ``path`` as one self-contained file (no -wal beside it), to move and archive alone."""
    db = _connect(path)
    try:
        db.execute("PRAGMA journal_mode = DELETE")
    finally:
        db.close()
    with path.open("rb") as f:
        os.fsync(f.fileno())


def restore_database(copy: Path, live: Path) -> None:
    """Overwrite the store ``live`` with ``copy`` in one write transaction.

    The copy gets a new epoch in its header first (``PRAGMA user_version``): a
    running server that remembers ids of the replaced store sees it change and
    forgets them (see transaction.py).
    """
    stamp = _connect(copy)
    try:
        stamp.execute(f"PRAGMA user_version = {secrets.randbelow(2**31 - 1) + 1}")
    finally:
        stamp.close()
    src = _connect(copy, readonly=True)
    try:
        dst = _connect(live)
        try:
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode = WAL")
            dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            dst.close()
    finally:
        src.close()


def file_problems(path: Path) -> tuple[list[str], str | None]:
    """Problems SQLite finds in the file itself, and its schema revision (None if it has none)."""
    try:
        db = _connect(path, readonly=True)
    except sqlite3.Error as exc:
        return [f"cannot open it as SQLite: {exc}"], None
    try:
        try:
            rows = [r[0] for r in db.execute("PRAGMA integrity_check")]
        except sqlite3.DatabaseError as exc:
            return [f"not a SQLite database: {exc}"], None
        problems = [] if rows == ["ok"] else [f"sqlite integrity check: {r}" for r in rows[:5]]
        try:
            found = db.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error:
            return [*problems, "it is not a datatrail store (no schema revision)"], None
        revision = str(found[0]) if found else None
        if revision is None:
            problems.append("it is not a datatrail store (no schema revision)")
        elif revision not in REVISIONS:
            problems.append(
                f"its schema revision {revision} is newer than this datatrail understands (head {HEAD});"
                " upgrade datatrail first"
            )
        return problems, revision
    finally:
        db.close()


def _scratch(beside: Path, what: str) -> Path:
    """A new file name in ``beside``'s folder (same file system, so a rename is atomic)."""
    return beside.with_name(f".{beside.name}.{what}-{uuid.uuid4().hex[:12]}")


def _remove(path: Path) -> None:
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _check_copy(path: Path) -> str | None:
    """Raise IntegrityError unless the SQLite file at ``path`` is a sound datatrail store; its revision."""
    problems, revision = file_problems(path)
    if not problems:
        # Opening migrates an older copy to the current schema; then the audit chain and the links.
        store = SqlStore(f"sqlite:///{path}")
        try:
            problems = store.check_integrity()
        finally:
            store.close()
    if problems:
        msg = f"{os.fspath(path)!r} is not a sound datatrail store: {'; '.join(problems)}"
        raise IntegrityError(msg)
    return revision


def create_backup(live: Path, target: Path, *, force: bool = False) -> BackupInfo:
    """Copy the SQLite store file ``live`` to ``target`` (a new file), consistent while writers run."""
    if not live.is_file():
        msg = f"no datatrail store at {os.fspath(live)!r}; nothing to back up"
        raise NotFound(msg)
    if target.is_dir():
        msg = f"{os.fspath(target)!r} is a folder; name the backup file, as in {os.fspath(target / 'trail.db')!r}"
        raise InvalidInput(msg)
    if not target.parent.is_dir():
        msg = f"the folder {os.fspath(target.parent)!r} does not exist; create it first"
        raise InvalidInput(msg)
    if target.exists() and target.resolve() == live.resolve():
        msg = "the backup cannot overwrite the store itself; name another file"
        raise InvalidInput(msg)
    if target.exists() and not force:
        msg = f"{os.fspath(target)!r} already exists; name a new file or pass --force to replace it"
        raise Conflict(msg)
    scratch = _scratch(target, "backup")
    try:
        copy_database(live, scratch)
        revision = _check_copy(scratch)
        make_standalone(scratch)
        os.replace(scratch, target)  # the backup appears whole or not at all
    finally:
        _remove(scratch)
    return BackupInfo(target, target.stat().st_size, revision)


def restore_backup(live: Path, source: Path) -> BackupInfo:
    """Check the backup ``source`` and replace the SQLite store file ``live`` with it, in one transaction."""
    if not source.is_file():
        msg = f"no backup file at {os.fspath(source)!r}; give the path `datatrail backup create` wrote"
        raise NotFound(msg)
    if live.exists() and source.resolve() == live.resolve():
        msg = "that file is the store itself; name a backup file"
        raise InvalidInput(msg)
    live.parent.mkdir(parents=True, exist_ok=True)
    # Work on a copy beside the store: the backup file itself is never changed.
    scratch = _scratch(live, "restore")
    try:
        try:
            copy_database(source, scratch)
        except Exception as exc:
            msg = f"{os.fspath(source)!r} is not a datatrail backup: {exc}"
            raise IntegrityError(msg) from None
        revision = _check_copy(scratch)
        live_problems, _ = file_problems(live) if live.is_file() else (["absent"], None)
        if live.is_file() and not any(p.startswith(("cannot open", "not a SQLite")) for p in live_problems):
            restore_database(scratch, live)  # readers see the old store or the new one, never a mix
        else:
            # No store, or a file SQLite cannot read at all: put the checked copy in its place.
            with contextlib.suppress(FileNotFoundError):
                live.with_name(live.name + "-wal").unlink()
            with contextlib.suppress(FileNotFoundError):
                live.with_name(live.name + "-shm").unlink()
            os.replace(scratch, live)
    finally:
        _remove(scratch)
    return BackupInfo(live, live.stat().st_size, revision)
