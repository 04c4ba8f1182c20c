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

from pathlib import Path

from datatrail.core.results import BackupInfo
from datatrail.store import HTTP_ADVICE, PG_ADVICE, backup_store, restore_store


def create_backup(uri: str, target: Path, *, force: bool = False) -> BackupInfo:
    """Copy the SQLite store ``uri`` to ``target`` (a new file), consistent while writers run."""
    return backup_store(uri, Path(target), force=force)


def restore_backup(uri: str, source: Path) -> BackupInfo:
    """Check the backup ``source`` and replace the SQLite store ``uri`` with it, in one transaction."""
    return restore_store(uri, Path(source))


__all__ = ["HTTP_ADVICE", "PG_ADVICE", "BackupInfo", "create_backup", "restore_backup"]
