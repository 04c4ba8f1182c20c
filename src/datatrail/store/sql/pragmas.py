"""How datatrail configures a SQLite connection: shared by SqlStore's engine and the quick path (no SQLAlchemy)."""

from __future__ import annotations

import os

from datatrail.core.errors import InvalidInput

BUSY_TIMEOUT_S = 60.0
SYNC_ENV = "DATATRAIL_SQLITE_SYNC"


def sqlite_synchronous() -> str:
    """SQLite's ``synchronous`` level: NORMAL, or FULL/EXTRA from ``$DATATRAIL_SQLITE_SYNC``.

    In WAL mode NORMAL loses no committed write when a process crashes, but the
    last commits before a power loss or OS crash may be rolled back (the store
    stays consistent); FULL syncs the WAL at every commit so they survive too.
    """
    value = os.environ.get(SYNC_ENV, "NORMAL").strip().upper() or "NORMAL"
    if value not in ("NORMAL", "FULL", "EXTRA"):
        msg = f"invalid {SYNC_ENV}={value!r}: use NORMAL (the default), FULL or EXTRA"
        raise InvalidInput(msg)
    return value
