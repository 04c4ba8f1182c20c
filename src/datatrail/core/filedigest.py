"""The SHA-256 of one file, streamed, with the standard library only.

``datatrail add`` starts hashing a big file before anything else is imported
(``cli/prefetch.py``): this module imports hashlib, mmap and os, nothing of
the package. :mod:`datatrail.hashing` builds digests of files and trees on it.
"""

from __future__ import annotations

import hashlib
import mmap
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
_FADVISE = hasattr(os, "posix_fadvise")
# A big file is hashed through memory maps, one window at a time: SHA-256 reads the page cache
# directly, where a read would first copy each chunk into a buffer (up to a tenth of the CPU time of
# hashing a 1 GiB file here), and the GIL is taken once per window, not twice per 1 MiB chunk.
MAP_SLICE = 16 * 1024 * 1024
_WILLNEED = hasattr(os, "POSIX_FADV_WILLNEED")

StatKey = tuple[int, int, int, int]
"""(device, inode, size, mtime_ns) of a file."""


def stat_key(st: os.stat_result) -> StatKey:
    """The stat cache key of a file's stat."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _hash_mapped(fd: int, h: hashlib._Hash, progress: Progress | None) -> int:
    """Hash the file open as ``fd`` through read-only memory maps; the bytes hashed (0: it cannot be mapped).

    One window of ``MAP_SLICE`` bytes is mapped at a time, so the process never holds
    more than that of the file mapped (its resident size stays small whatever the
    file's size, and the page cache is reclaimed as after reads). Touching a mapped
    page that a truncation removed kills the process (SIGBUS), so the file's size is
    checked before each window: a file cut short while it is hashed stops here, and
    the caller reads on (finding its new end) and sees the change. A truncation in
    the few milliseconds that one window takes is not caught: the command then dies
    with a bus error, before anything was written.
    """
    size = os.fstat(fd).st_size
    done = 0
    while size >= CHUNK and done < size:
        end = min(done + MAP_SLICE, size)
        if os.fstat(fd).st_size < end:
            break
        try:
            window = mmap.mmap(fd, end - done, offset=done, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # a file system or special file that cannot be mapped: read the rest
            break
        if _WILLNEED and end < size:
            # The next window is read from disk meanwhile, if it is not in the page cache.
            os.posix_fadvise(fd, end, min(MAP_SLICE, size - end), os.POSIX_FADV_WILLNEED)
        with window, memoryview(window) as part:
            h.update(part)
        if progress is not None:
            progress(0, end - done)
        done = end
    return done


def hash_stream(path: str, chunk: int = CHUNK, progress: Progress | None = None) -> tuple[str, int, os.stat_result]:
    """(hex digest, bytes read, the file's stat once read), streaming; ``progress`` gets the bytes of each step."""
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        if _FADVISE:
            # Read ahead twice as far: a file not yet in the page cache streams at the disk's rate.
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        size = _hash_mapped(f.fileno(), h, progress)
        if size:
            f.seek(size)  # then read on: what a file that grew meanwhile has more
        buf = bytearray(chunk)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
            size += n
            if progress is not None:
                progress(0, n)
        return h.hexdigest(), size, os.fstat(f.fileno())


__all__ = ["CHUNK", "MAP_SLICE", "StatKey", "hash_stream", "stat_key"]
