"""Database errors that mean something specific to the user: a damaged file, a full disk.

Free of SQLAlchemy at import: the embedded store's fast path (quick.py) reads the same faults from sqlite3.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from datatrail.core.errors import DatatrailError, IntegrityError, StoreUnavailable

if TYPE_CHECKING:
    from sqlalchemy.exc import DBAPIError


def known_fault(exc: DBAPIError) -> DatatrailError | None:
    """The datatrail error a database error stands for, or None when it is not one of these."""
    return fault_of(str(exc.orig).strip().splitlines()[0] if exc.orig else "")


def fault_of(detail: str) -> DatatrailError | None:
    """The datatrail error a database's message (its first line) stands for, or None."""
    if "malformed" in detail or "not a database" in detail:
        msg = (
            f"the store's database file is damaged ({detail}); run `datatrail fsck`"
            " and restore a backup with `datatrail backup restore PATH`"
        )
        return IntegrityError(msg)
    if "disk is full" in detail or "No space left" in detail or "could not extend file" in detail:
        # SQLite's SQLITE_FULL, PostgreSQL's disk-full errors: the transaction rolled back whole.
        msg = f"the disk holding the store is full ({detail}); free space and retry (a failed write keeps nothing)"
        return StoreUnavailable(msg)
    if "database is locked" in detail:
        # SQLite waited its whole busy timeout (60 s) for another writer.
        msg = "the store is busy: another process held its write lock for over a minute; retry when it is done"
        return StoreUnavailable(msg)
    return None


def unavailable(exc: DBAPIError) -> StoreUnavailable:
    """The store could not be reached, or the connection broke: the caller may retry later."""
    return StoreUnavailable(f"the store is unavailable: {str(exc.orig).strip().splitlines()[0]}; retry later")


def no_space_left(database: str | None) -> bool:
    """Whether the file system holding the SQLite file ``database`` has less than 64 KiB free."""
    if not database:
        return False
    try:
        st = os.statvfs(os.path.dirname(os.path.abspath(database)))
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024
