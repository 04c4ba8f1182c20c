"""Streaming SHA-256 of files and directories, parallel over files, with a stat cache.

A file's digest is the SHA-256 of its bytes. A directory's digest is the
SHA-256 of its manifest: one ``relative/path<TAB>size<TAB>sha256hex<LF>`` line
per file, sorted by path, so one changed file changes the directory digest and
the manifest says which.
"""

from __future__ import annotations

import hashlib
import os
import stat as stat_mod
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from datatrail.core.errors import InvalidInput, NotFound
from datatrail.core.model import Digest, FileEntry

# Read size, and the size from which a file is streamed rather than read whole.
# 1 MiB buffers stay in the CPU cache between the read and the hash; 4 MiB
# ones measured a few per cent slower on a 1 GiB file.
CHUNK = 1024 * 1024
# Files are handed to threads in batches: one task per 4 KiB file costs more in
# executor overhead than the hashing itself.
BATCH = 64
_O_FLAGS = getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
IGNORED_DIRS = frozenset({".datatrail"})
# A file modified within this many seconds of being hashed may change again
# without its mtime moving (coarse timestamps); such hashes are not cached.
RACY_SECONDS = 2.0

ProgressFn = Callable[[int, int], None]
"""Called with (files done, bytes done) increments as hashing proceeds."""


StatKey = tuple[int, int, int, int]
"""(device, inode, size, mtime_ns) of a file."""


class StatCache(Protocol):
    """Remembers digests of files whose (device, inode, size, mtime_ns) is unchanged."""

    def lookup(self, keys: Sequence[StatKey]) -> dict[StatKey, str]: ...

    def store(self, items: Sequence[tuple[StatKey, str]]) -> None: ...


@dataclass(frozen=True)
class HashResult:
    """The digest of a file or directory, with the manifest for directories."""

    digest: Digest
    size: int
    files: tuple[FileEntry, ...] | None  # None for a single file
    bytes_read: int = 0


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def is_racy(key: StatKey, now: float | None = None) -> bool:
    """True when the file changed too recently for its stat to vouch for its content."""
    return (now if now is not None else time.time()) - key[3] / 1e9 <= RACY_SECONDS


class LayeredCache:
    """Digests from ``first`` (e.g. a file hashed ahead of time), then from ``then``.

    What ``first`` knows is written through to ``then``, so the next run finds it.
    """

    def __init__(self, first: StatCache, then: StatCache | None) -> None:
        self.first = first
        self.then = then

    def lookup(self, keys: Sequence[StatKey]) -> dict[StatKey, str]:
        found = self.first.lookup(keys)
        if self.then is None:
            return found
        fresh = [(k, d) for k, d in found.items() if not is_racy(k)]
        if fresh:
            self.then.store(fresh)
        rest = [k for k in keys if k not in found]
        if rest:
            found.update(self.then.lookup(rest))
        return found

    def store(self, items: Sequence[tuple[StatKey, str]]) -> None:
        if self.then is not None:
            self.then.store(items)


def _hash_open_file(path: str, chunk: int = CHUNK) -> tuple[str, int, os.stat_result]:
    """(hex digest, bytes read, the file's stat once read), streaming."""
    h = hashlib.sha256()
    size = 0
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            size += n
        return h.hexdigest(), size, os.fstat(f.fileno())


def _hash_small(path: str, size: int) -> tuple[str, int, os.stat_result]:
    """Like :func:`_hash_open_file`, in one read for a file listed as ``size`` bytes.

    Plain descriptor calls instead of a file object: for a tree of small files
    the per-file calls, not the hashing, are the cost (20,000 files of 4 KiB
    hash about a quarter faster this way).
    """
    fd = os.open(path, os.O_RDONLY | _O_FLAGS)
    try:
        # One byte more than listed: getting exactly ``size`` bytes means the end.
        data = os.read(fd, size + 1)
        h = hashlib.sha256(data)
        read = len(data)
        if read != size:  # it changed since the listing, or a short read: read to the end
            while data := os.read(fd, CHUNK):
                h.update(data)
                read += len(data)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    return h.hexdigest(), read, after


def manifest_digest(entries: Iterable[FileEntry]) -> Digest:
    """The directory digest of an already sorted manifest."""
    h = hashlib.sha256()
    for e in entries:
        h.update(f"{e.path}\t{e.size}\t{e.digest.hex}\n".encode())
    return Digest.sha256(h.hexdigest())


def hash_path(
    path: str | os.PathLike[str],
    *,
    cache: StatCache | None = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> HashResult:
    """Hash a file or a directory tree.

    >>> r = hash_path(__file__)
    >>> r.digest.algorithm
    'sha256'
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        msg = f"path not found: {os.fspath(p)!r}; check the path and try again"
        raise NotFound(msg) from None
    except OSError as exc:
        msg = f"cannot read {os.fspath(p)!r}: {exc.strerror}"
        raise InvalidInput(msg) from None
    if stat_mod.S_ISDIR(st.st_mode):
        return _hash_tree(p, cache, progress, workers)
    if not stat_mod.S_ISREG(st.st_mode):
        msg = f"cannot add {os.fspath(p)!r}: it is neither a regular file nor a directory"
        raise InvalidInput(msg)
    digest, size, read = _hash_files([(os.fspath(p), st)], cache, progress, workers=1)[0]
    return HashResult(Digest.sha256(digest), size, None, read)


def _list_tree(root: Path) -> list[tuple[str, str, os.stat_result]]:
    """(relative posix path, absolute path, stat) for every file under root."""
    out: list[tuple[str, str, os.stat_result]] = []
    real_root = os.path.realpath(root)
    stack = [(os.fspath(root), "")]
    while stack:
        absdir, reldir = stack.pop()
        try:
            it = os.scandir(absdir)
        except OSError as exc:
            msg = f"cannot read directory {absdir!r}: {exc.strerror}"
            raise InvalidInput(msg) from None
        with it:
            for entry in it:
                rel = f"{reldir}{entry.name}"
                if "\t" in entry.name or "\n" in entry.name or "\r" in entry.name:
                    msg = f"cannot add {entry.path!r}: file names with tabs or line breaks are not supported; rename it"
                    raise InvalidInput(msg)
                try:
                    entry.name.encode()
                except UnicodeEncodeError:
                    msg = f"cannot add {entry.path!r}: the file name is not valid UTF-8; rename it"
                    raise InvalidInput(msg) from None
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in IGNORED_DIRS or reldir:
                        stack.append((entry.path, rel + "/"))
                    continue
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if os.path.commonpath([real_root, target]) != real_root:
                        msg = f"cannot add {entry.path!r}: it is a symlink leading out of the directory"
                        raise InvalidInput(msg)
                    if os.path.isdir(target):
                        msg = f"cannot add {entry.path!r}: symlinks to directories are not followed"
                        raise InvalidInput(msg)
                try:
                    st = entry.stat()
                except OSError as exc:
                    msg = f"cannot read {entry.path!r}: {exc.strerror}"
                    raise InvalidInput(msg) from None
                if not stat_mod.S_ISREG(st.st_mode):
                    continue  # sockets, fifos, devices are not data
                out.append((rel, entry.path, st))
    out.sort(key=lambda t: t[0])
    return out


def _hash_tree(root: Path, cache: StatCache | None, progress: ProgressFn | None, workers: int | None) -> HashResult:
    listing = _list_tree(root)
    results = _hash_files([(a, st) for _, a, st in listing], cache, progress, workers)
    entries = tuple(
        FileEntry(rel, size, Digest.sha256(hexd)) for (rel, _, _), (hexd, size, _) in zip(listing, results, strict=True)
    )
    total = sum(e.size for e in entries)
    read = sum(r[2] for r in results)
    return HashResult(manifest_digest(entries), total, entries, read)


def _hash_files(
    files: Sequence[tuple[str, os.stat_result]],
    cache: StatCache | None,
    progress: ProgressFn | None,
    workers: int | None,
) -> list[tuple[str, int, int]]:
    """(hex digest, size, bytes read) per file, in order; cached where the stat matches."""
    keys = [stat_key(st) for _, st in files]
    known = cache.lookup(keys) if cache is not None else {}
    out: list[tuple[str, int, int] | None] = [None] * len(files)
    todo: list[int] = []
    for i, key in enumerate(keys):
        hit = known.get(key)
        if hit is not None:
            out[i] = (hit, key[2], 0)
        else:
            todo.append(i)
    if progress is not None and len(todo) < len(files):
        progress(len(files) - len(todo), 0)

    def work(batch: list[int]) -> list[tuple[int, str, int, os.stat_result]]:
        done = []
        for i in batch:
            path, st = files[i]
            try:
                hexd, size, after = _hash_small(path, st.st_size) if st.st_size < CHUNK else _hash_open_file(path)
            except FileNotFoundError:
                msg = f"file vanished while hashing: {path!r}"
                raise NotFound(msg) from None
            except OSError as exc:
                msg = f"cannot read {path!r}: {exc.strerror}"
                raise InvalidInput(msg) from None
            done.append((i, hexd, size, after))
            if progress is not None:
                progress(1, size)
        return done

    batches: list[list[int]] = []
    big = [i for i in todo if files[i][1].st_size >= CHUNK]
    small = [i for i in todo if files[i][1].st_size < CHUNK]
    batches.extend([i] for i in big)
    batches.extend(small[j : j + BATCH] for j in range(0, len(small), BATCH))
    n_workers = workers or min(32, (os.cpu_count() or 2) * 4)
    if len(batches) <= 1 or n_workers == 1:
        finished = [work(b) for b in batches]
    else:
        pool = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="datatrail-hash")
        try:
            finished = list(pool.map(work, batches))
        finally:
            # On Ctrl-C or an error, drop the queued batches instead of hashing them all first.
            pool.shutdown(wait=True, cancel_futures=True)

    fresh: list[tuple[StatKey, str]] = []
    now = time.time()
    for batch_result in finished:
        for i, hexd, size, after in batch_result:
            out[i] = (hexd, size, size)
            st = files[i][1]
            # Only vouch for content whose stat (taken on the open file, once
            # read) did not move since the listing.
            if cache is not None and size == st.st_size and not is_racy(keys[i], now) and stat_key(after) == keys[i]:
                fresh.append((keys[i], hexd))
    if cache is not None and fresh:
        cache.store(fresh)
    return [r for r in out if r is not None]
