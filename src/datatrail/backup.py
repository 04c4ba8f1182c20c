"""Backing up and restoring an embedded (SQLite) store.

:func:`create_backup` copies a live store with SQLite's online backup API: one
consistent snapshot, taken while other processes keep writing.
:func:`restore_backup` checks a copy (SQLite's ``integrity_check``, the schema
revision, the audit hash chain and the links between events, versions and
runs) before it replaces the store, in one write transaction.

A PostgreSQL store is backed up with PostgreSQL's own tools (``pg_dump``,
point-in-time recovery), a remote store on the server's host; both are refused
here with a message that says so.

>>> info = create_backup("sqlite:////srv/.datatrail/trail.db", Path("/backups/trail-2026-11-29.db"))  # doctest: +SKIP
>>> restore_backup("sqlite:////srv/.datatrail/trail.db", info.path)                                  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datatrail.core.errors import Conflict, IntegrityError, InvalidInput, NotFound

PG_ADVICE = (
    "back up a PostgreSQL store with PostgreSQL's tools: `pg_dump -Fc DBNAME > trail.dump` (restore with"
    " `pg_restore -d DBNAME trail.dump`) or continuous archiving for point-in-time recovery;"
    " see docs/reliability.md"
)
HTTP_ADVICE = "back up a remote store on the server's host (`datatrail backup create` there); see docs/reliability.md"


@dataclass(frozen=True)
class BackupInfo:
    """A checked copy of a store: where it is, its size in bytes and its schema revision."""

    path: Path
    size: int
    revision: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"path": os.fspath(self.path), "size": self.size, "revision": self.revision}


def _sqlite_file(uri: str) -> Path:
    if uri.startswith(("postgresql:", "postgres:", "postgresql+psycopg:")):
        raise InvalidInput(PG_ADVICE)
    if uri.startswith(("http://", "https://")):
        raise InvalidInput(HTTP_ADVICE)
    from datatrail.store.sql.quick import sqlite_file

    return sqlite_file(uri)


def _scratch(beside: Path, what: str) -> Path:
    """A new file name in ``beside``'s folder (same file system, so a rename is atomic)."""
    return beside.with_name(f".{beside.name}.{what}-{uuid.uuid4().hex[:12]}")


def _remove(path: Path) -> None:
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _check_copy(path: Path) -> str | None:
    """Raise IntegrityError unless the SQLite file at ``path`` is a sound datatrail store; its revision."""
    from datatrail.store import open_store
    from datatrail.store.sql.backup import file_problems

    problems, revision = file_problems(path)
    if not problems:
        # Opening migrates an older copy to the current schema; then the audit chain and the links.
        store = open_store(f"sqlite:///{path}")
        try:
            problems = list(store.check_integrity())
        finally:
            store.close()
    if problems:
        msg = f"{os.fspath(path)!r} is not a sound datatrail store: {'; '.join(problems)}"
        raise IntegrityError(msg)
    return revision


def create_backup(uri: str, target: Path, *, force: bool = False) -> BackupInfo:
    """Copy the SQLite store ``uri`` to ``target`` (a new file), consistent while writers run."""
    from datatrail.store.sql.backup import copy_database, make_standalone

    live = _sqlite_file(uri)
    if not live.is_file():
        msg = f"no datatrail store at {os.fspath(live)!r}; nothing to back up"
        raise NotFound(msg)
    target = Path(target)
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


def restore_backup(uri: str, source: Path) -> BackupInfo:
    """Check the backup ``source`` and replace the SQLite store ``uri`` with it, in one transaction."""
    from datatrail.store.sql.backup import copy_database, file_problems, restore_database

    live = _sqlite_file(uri)
    source = Path(source)
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
