"""A long-running server's resident memory (issue 22 item 6): the C allocator's arenas, trimmed.

Python's own caches in the server are bounded elsewhere (the id memory of
ingest by bytes, ``store/sql/transaction.py``). Much of the rest lives outside
Python's allocator, in glibc's malloc: SQLite's page caches, large Python
objects, the C parts of the libraries. glibc gives each thread that allocates
an arena of its own (up to eight per core) and gives freed memory in them back
to the system only when it lies at the very top of a heap. ``datatrail serve``
therefore, in each worker, caps the arenas at ``ARENAS`` and trims the heap
every ``TRIM_SECONDS``. On another C library (musl, macOS) nothing is changed.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import os
import platform
from typing import Any

from datatrail.core.errors import InvalidInput

ARENA_ENV = "DATATRAIL_SERVER_MALLOC_ARENAS"
TRIM_ENV = "DATATRAIL_SERVER_TRIM_SECONDS"
ARENAS = 2  # malloc arenas per worker; glibc's default is 8 per core
TRIM_SECONDS = 30.0  # how often the heap's free pages are given back to the system
M_ARENA_MAX = -8  # from glibc's malloc.h


@functools.cache
def _glibc() -> Any | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _setting(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        msg = f"invalid {name}={raw!r}: give a number of at least 0 (0 turns it off)"
        raise InvalidInput(msg)
    return value


def limit_arenas() -> bool:
    """Cap glibc's malloc arenas for this process (before its threads start); False when not glibc or turned off."""
    arenas = int(_setting(ARENA_ENV, ARENAS))
    libc = _glibc()
    if libc is None or arenas == 0:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))


def trim() -> bool:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``); False when not glibc."""
    libc = _glibc()
    return libc is not None and bool(libc.malloc_trim(0))


def check_settings() -> None:
    """Refuse a bad ``$DATATRAIL_SERVER_MALLOC_ARENAS`` or ``$DATATRAIL_SERVER_TRIM_SECONDS`` (InvalidInput)."""
    _setting(ARENA_ENV, ARENAS)
    _setting(TRIM_ENV, TRIM_SECONDS)


async def trim_periodically() -> None:
    """Trim the heap every ``TRIM_SECONDS`` (a task for the server's lifespan; cancelled at shutdown)."""
    seconds = _setting(TRIM_ENV, TRIM_SECONDS)
    if not seconds or _glibc() is None:
        return
    while True:
        await asyncio.sleep(seconds)
        trim()
