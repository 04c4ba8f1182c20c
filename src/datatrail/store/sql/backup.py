"""Copying a SQLite store with SQLite's online backup API, and checking a copy.

``sqlite3.Connection.backup`` with ``pages=-1`` copies every page in one step
inside one read transaction, so the copy is one consistent snapshot even while
other processes write (in WAL mode writers do not wait for it). The same API,
pointed the other way, restores: it writes the whole destination in one write
transaction, so readers see either the old store or the restored one.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from pathlib import Path

from datatrail.store.sql.revisions import HEAD, REVISIONS

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
    forgets them (see txcache.py).
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
