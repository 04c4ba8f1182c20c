"""A long-running server's resident memory (issue 22 item 6): the C allocator's arenas, trimmed.

Python's own caches in the server are bounded elsewhere (the id memory of
ingest by bytes, ``store/sql/transaction.py``), and a search holds only the
rows its pattern may match (``store/sql/reads.py``). Much of the rest lives outside
Python's allocator, in glibc's malloc: SQLite's page caches, large Python
objects, the C parts of the libraries. glibc gives each thread that allocates
an arena of its own (up to eight per core) and gives freed memory in them back
to the system only when it lies at the very top of a heap. ``datatrail serve``
therefore, in each worker, caps the arenas at ``ARENAS`` and trims the heap
every ``TRIM_SECONDS``. On another C library (musl, macOS) nothing is changed.

For finding what grows, ``$DATATRAIL_SERVER_MEMORY_LOG`` names a file to which
each worker appends one JSON line every ``$DATATRAIL_SERVER_MEMORY_LOG_SECONDS``
(default 60): its resident memory, Python's object allocator (arenas, bytes in
blocks, blocks per size class), glibc's heaps (``mallinfo2``), SQLite's own
allocations, the garbage collector's state, the gc-tracked objects by type and,
when Python traces allocations (``PYTHONTRACEMALLOC=1``), the allocation sites
grown most since the first line (:class:`Sampler`). A debugging aid: each sample
takes a moment of the event loop, and tracing slows the worker several times.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import ctypes.util
import functools
import gc
import json
import os
import platform
import re
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from datatrail.core.errors import InvalidInput

ARENA_ENV = "DATATRAIL_SERVER_MALLOC_ARENAS"
SQLITE_HEAP_ENV = "DATATRAIL_SERVER_SQLITE_HEAP_MB"
SQLITE_HEAP_MB = 8.0  # SQLite's own memory per worker (page caches of every pooled connection together)
TRIM_ENV = "DATATRAIL_SERVER_TRIM_SECONDS"
ARENAS = 2  # malloc arenas per worker; glibc's default is 8 per core
TRIM_SECONDS = 30.0  # how often the heap's free pages are given back to the system
M_ARENA_MAX = -8  # from glibc's malloc.h
M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
MMAP_ENV = "DATATRAIL_SERVER_MMAP_THRESHOLD_KB"
MMAP_THRESHOLD_KB = 256  # blocks from this size up get pages of their own, returned to the system when freed
LINEAGE_CACHE_ENV = "DATATRAIL_LINEAGE_CACHE_MB"  # read by the SQL store (store/sql/nodecache.py)
LINEAGE_CACHE_MB = 32  # a worker's default; a process that opens a store itself keeps up to 128
LOG_ENV = "DATATRAIL_SERVER_MEMORY_LOG"
LOG_SECONDS_ENV = "DATATRAIL_SERVER_MEMORY_LOG_SECONDS"
LOG_SECONDS = 60.0


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
    """Cap glibc's malloc arenas for this process (before its threads start) and fix its mmap threshold;
    False when not glibc or the cap is turned off.

    glibc serves a block of at least its mmap threshold with pages of its own,
    given back when the block is freed. The threshold starts at 128 KB, but
    each such block freed raises it to the block's size (up to 32 MB), so after
    a few big answers (a lineage graph, a page of search) every later one is cut
    from the heap, and the heap fragments: in an hour-long soak its free part
    grew from 7 to 19 MB while what was in use stayed at 30 MB. Setting the
    threshold fixes it (glibc then stops moving it) at ``MMAP_THRESHOLD_KB``.
    """
    arenas = int(_setting(ARENA_ENV, ARENAS))
    threshold = int(_setting(MMAP_ENV, MMAP_THRESHOLD_KB) * 1024)
    libc = _glibc()
    if libc is None:
        return False
    if threshold:
        libc.mallopt(M_MMAP_THRESHOLD, threshold)
    return arenas != 0 and bool(libc.mallopt(M_ARENA_MAX, arenas))


def limit_lineage_cache() -> None:
    """A worker's lineage cache defaults to :data:`LINEAGE_CACHE_MB` megabytes (unless the setting is given):
    with SQLite's heap and the id memory, what keeps a worker's memory bounded (docs/server.md)."""
    os.environ.setdefault(LINEAGE_CACHE_ENV, str(LINEAGE_CACHE_MB))


def limit_sqlite() -> int:
    """Bound SQLite's own memory in this process (its soft heap limit, in bytes; 0 when turned off).

    Each pooled connection keeps a page cache of up to 2 MB and fills it as the
    file grows, so a worker's SQLite memory rises slowly for hours. With a soft
    heap limit SQLite recycles cached pages of every connection once its
    allocations together reach the limit, instead of asking for more memory.
    The limit is process-wide (``PRAGMA soft_heap_limit``), so any connection
    sets it; pages dropped are read again from the operating system's cache.
    """
    limit = int(_setting(SQLITE_HEAP_ENV, SQLITE_HEAP_MB) * 1024 * 1024)
    db = sqlite3.connect(":memory:")
    try:
        db.execute(f"PRAGMA soft_heap_limit = {limit}")
        return int(db.execute("PRAGMA soft_heap_limit").fetchone()[0])
    finally:
        db.close()


def trim() -> bool:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``); False when not glibc."""
    libc = _glibc()
    return libc is not None and bool(libc.malloc_trim(0))


def check_settings() -> None:
    """Refuse a bad ``$DATATRAIL_SERVER_MALLOC_ARENAS``, ``…_SQLITE_HEAP_MB``, ``…_MMAP_THRESHOLD_KB``,
    ``…_TRIM_SECONDS`` or ``…_MEMORY_LOG_SECONDS`` (InvalidInput)."""
    _setting(ARENA_ENV, ARENAS)
    _setting(SQLITE_HEAP_ENV, SQLITE_HEAP_MB)
    _setting(MMAP_ENV, MMAP_THRESHOLD_KB)
    _setting(TRIM_ENV, TRIM_SECONDS)
    _setting(LOG_SECONDS_ENV, LOG_SECONDS)


async def trim_periodically() -> None:
    """Trim the heap every ``TRIM_SECONDS`` (a task for the server's lifespan; cancelled at shutdown)."""
    seconds = _setting(TRIM_ENV, TRIM_SECONDS)
    if not seconds or _glibc() is None:
        return
    while True:
        await asyncio.sleep(seconds)
        trim()


# ---------------------------------------------------------------- the debugging log


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


def _proc_status() -> dict[str, int]:
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile", "Threads"):
            found[name] = int(rest.split()[0])
    return found


_PYMALLOC_FIELDS = {
    "arenas_allocated_current",
    "arenas_reclaimed",
    "arenas_highwater_mark",
    "bytes_in_allocated_blocks",
    "bytes_in_available_blocks",
    "bytes_lost_to_quantization",
}


def _pymalloc() -> dict[str, Any]:
    """Python's object allocator, from ``sys._debugmallocstats()`` (which writes to the C stderr)."""
    with tempfile.TemporaryFile("w+") as out:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read()
    stats: dict[str, Any] = {"blocks_in_use_by_size": {}}
    for line in text.splitlines():
        row = re.match(r"\s*\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$", line)
        if row:  # class, size, pools, blocks in use, available blocks
            stats["blocks_in_use_by_size"][int(row[1])] = int(row[3])
            continue
        name, sep, value = line.partition("=")
        name = re.sub(r"\W+", "_", name.strip(" #").lower())
        if sep and name in _PYMALLOC_FIELDS:
            stats[name] = int(value.strip().replace(",", ""))
        elif sep and name.endswith("unused_pools_16384_bytes"):
            stats["unused_pools"] = int(name.split("_")[0])
    return stats


def _glibc_heaps() -> dict[str, int] | None:
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return {"arena": info.arena, "mmapped": info.hblkhd, "in_use": info.uordblks, "free": info.fordblks}


@functools.cache
def _sqlite() -> Any | None:
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
        path = next(line.split()[-1] for line in maps if "libsqlite3" in line)
        lib = ctypes.CDLL(path)
    except (OSError, StopIteration):
        return None
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return lib


class Sampler:
    """One worker's memory, sample after sample (see the module docstring); the first is the baseline."""

    def __init__(self) -> None:
        self.first_types: collections.Counter[str] | None = None
        self.first_trace: tracemalloc.Snapshot | None = None

    def sample(self) -> dict[str, Any]:
        status = _proc_status()
        types = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
        line: dict[str, Any] = {
            "pid": os.getpid(),
            "time": round(time.time(), 1),
            "rss_kb": status.get("VmRSS"),
            "anon_kb": status.get("RssAnon"),
            "threads": status.get("Threads"),
            "python": _pymalloc(),
            "glibc": _glibc_heaps(),
            "sqlite_bytes": lib.sqlite3_memory_used() if (lib := _sqlite()) is not None else None,
            "gc": {"enabled": gc.isenabled(), "count": gc.get_count(), "tracked": sum(types.values())},
        }
        if self.first_types is None:
            self.first_types = types
        grown = types.copy()
        grown.subtract(self.first_types)
        line["gc"]["grown_types"] = dict(grown.most_common(12))
        if tracemalloc.is_tracing():
            snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            if self.first_trace is None:
                self.first_trace = snapshot
            line["traced_bytes"] = tracemalloc.get_traced_memory()[0]
            line["grown_sites"] = [
                {"site": str(stat.traceback), "bytes": stat.size_diff, "blocks": stat.count_diff}
                for stat in snapshot.compare_to(self.first_trace, "lineno")[:15]
            ]
        return line


async def log_periodically() -> None:
    """Append a :class:`Sampler` line to ``$DATATRAIL_SERVER_MEMORY_LOG`` every so often (a lifespan task)."""
    path = os.environ.get(LOG_ENV, "").strip()
    seconds = _setting(LOG_SECONDS_ENV, LOG_SECONDS)
    if not path or not seconds:
        return
    sampler = Sampler()
    while True:
        data = (json.dumps(sampler.sample()) + "\n").encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)  # one write: the workers' lines do not interleave
        finally:
            os.close(fd)
        await asyncio.sleep(seconds)
