"""The SHA-256 of one file, streamed, with the standard library only.

``datatrail add`` starts hashing a big file before anything else is imported
(``cli/prefetch.py``): this module imports hashlib and os, nothing of
the package. :mod:`datatrail.hashing` builds digests of files and trees on it.
"""

from __future__ import annotations

import hashlib
import os

TYPE_CHECKING = False  # not typing's: importing typing (with re and enum) would delay the first byte
if TYPE_CHECKING:
    from collections.abc import Callable

    Progress = Callable[[int, int], None]
    """Called with (files done, bytes done) since the last call."""

# Read size where a file cannot be mapped, and the size from which a file is streamed rather
# than read whole (hashing/local.py). 1 MiB buffers stay in the CPU cache between the read and
# the hash; 4 MiB ones measured a few per cent slower on a 1 GiB file.
CHUNK = 1024 * 1024
# The window of :func:`hash_mapped`: 4 to 256 MiB measured the same; a few per cent of its CPU is page faults.
WINDOW = 16 * 1024 * 1024
_FADVISE = hasattr(os, "posix_fadvise")
StatKey = tuple[int, int, int, int]
"""(device, inode, size, mtime_ns) of a file."""


def stat_key(st: os.stat_result) -> StatKey:
    """The stat cache key of a file's stat."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def hash_stream(path: str, chunk: int = CHUNK, progress: Progress | None = None) -> tuple[str, int, os.stat_result]:
    """(hex digest, bytes read, the file's stat once read), streaming; ``progress`` gets the bytes of each step."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        if _FADVISE:
            # Read ahead twice as far: a file not yet in the page cache streams at the disk's rate.
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        # Plain reads, not memory maps: a map saved about 4% of the CPU time on a 1 GiB file here, but a
        # file truncated while mapped kills the process (SIGBUS) where a read just finds its new end.
        size = 0
        buf = bytearray(chunk)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
            size += n
            if progress is not None:
                progress(0, n)
        return h.hexdigest(), size, os.fstat(f.fileno())


def hash_mapped(path: str, window: int = WINDOW, progress: Progress | None = None) -> tuple[str, int, os.stat_result]:
    """Like :func:`hash_stream`, through a read-only memory map of one ``window`` at a time: no copy of
    the bytes (about 6% less CPU than 1 MiB reads of a page-cached file: 0.70 s against 0.75 s per GiB).

    **Only in a process that may die for it** (``cli/prefetch.py``'s hashing children): a page that a
    truncation removed while it is mapped kills the process with SIGBUS, where a read just finds the
    new end. The size is read again before each window, so a truncation between windows reads to the
    new end as :func:`hash_stream` does. ``window`` is a multiple of ``mmap.ALLOCATIONGRANULARITY``."""
    import mmap  # a small extension module: only the hashing children need it

    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        fd = f.fileno()
        if _FADVISE:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)  # as hash_stream: the page faults read ahead
        size = 0
        while (n := min(window, os.fstat(fd).st_size - size)) > 0:
            with mmap.mmap(fd, n, access=mmap.ACCESS_READ, offset=size) as mapped, memoryview(mapped) as view:
                h.update(view)
            size += n
            if progress is not None:
                progress(0, n)
        return h.hexdigest(), size, os.fstat(fd)


__all__ = ["CHUNK", "WINDOW", "StatKey", "hash_mapped", "hash_stream", "stat_key"]
