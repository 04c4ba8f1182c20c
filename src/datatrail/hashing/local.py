"""Local files and directories as a hashing backend: the listing with its refusals, the stat cache key, the reads.

A file's cache key is its (device, inode, size, mtime_ns). Small files are
read in one ``os.read``, big ones streamed (:func:`~datatrail.core.filedigest.hash_stream`:
through a read-only memory map), and a digest is only vouched for (cached)
when the stat taken on the open file after reading matches the listing and
the file did not change within ``RACY_SECONDS``.
"""

from __future__ import annotations

import hashlib
import os
import stat as stat_mod
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

from datatrail.core.errors import InvalidInput, NotFound
from datatrail.core.filedigest import CHUNK, StatKey, hash_stream, stat_key
from datatrail.core.model import Digest
from datatrail.hashing.build import CONTENT, DigestCache, Entry, HashResult, ProgressFn, Read, build

_O_FLAGS = getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
IGNORED_DIRS = frozenset({".datatrail"})
# A file modified within this many seconds of being hashed may change again
# without its mtime moving (coarse timestamps); such hashes are not cached.
RACY_SECONDS = 2.0

StatCache = DigestCache[StatKey, str]
"""Remembers digests of files whose (device, inode, size, mtime_ns) is unchanged."""


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
        """Digests ``first`` knows, then those ``then`` knows of the other keys."""
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
        """Remember in ``then`` (``first`` is read-only)."""
        if self.then is not None:
            self.then.store(items)


def _hash_small(path: str, size: int) -> tuple[str, int, os.stat_result]:
    """Like :func:`hash_stream`, in one read for a file listed as ``size`` bytes.

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


class FileReader:
    """Reads local files for :func:`datatrail.hashing.build.build`; their cached values are hex digests."""

    batch_below = CHUNK
    thread_name = "datatrail-hash"

    def reuse(self, cached: str) -> tuple[str, str]:
        """A cached digest is always usable: the key already says the file is unchanged."""
        return cached, CONTENT

    def read(self, entry: Entry[StatKey], progress: ProgressFn | None) -> Read[str]:
        """Hash one file; cache it only if its stat, taken on the open file once read, is the listed one."""
        path, size, key = entry.path, entry.size, entry.key
        try:
            hexd, read, after = _hash_small(path, size) if size < CHUNK else hash_stream(path, CHUNK, progress)
        except FileNotFoundError:
            msg = f"file vanished while hashing: {path!r}"
            raise NotFound(msg) from None
        except OSError as exc:
            msg = f"cannot read {path!r}: {exc.strerror}"
            raise InvalidInput(msg) from None
        same = read == size and stat_key(after) == key and not is_racy(key)
        return hexd, read, read, CONTENT, hexd if same else None


def list_path(path: str | os.PathLike[str]) -> tuple[list[Entry[StatKey]], bool]:
    """The files at ``path`` (one file, or every file of a tree sorted by path) and whether it is a directory."""
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
        return _list_tree(p), True
    if not stat_mod.S_ISREG(st.st_mode):
        msg = f"cannot add {os.fspath(p)!r}: it is neither a regular file nor a directory"
        raise InvalidInput(msg)
    return [Entry("", os.fspath(p), st.st_size, stat_key(st))], False


def _list_tree(root: Path) -> list[Entry[StatKey]]:
    """Every file under root, by relative posix path; refuses what cannot be recorded faithfully."""
    out: list[Entry[StatKey]] = []
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
                name = entry.name
                rel = reldir + name
                if not name.isprintable():  # printable names (most) hold no tab, line break or lone surrogate
                    _check_name(entry)
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
                out.append(Entry(rel, entry.path, st.st_size, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)))
    out.sort(key=lambda e: e.rel)
    return out


def _check_name(entry: os.DirEntry[str]) -> None:
    """Refuse a file name a manifest line cannot hold faithfully."""
    if "\t" in entry.name or "\n" in entry.name or "\r" in entry.name:
        msg = f"cannot add {entry.path!r}: file names with tabs or line breaks are not supported; rename it"
        raise InvalidInput(msg)
    try:
        entry.name.encode()
    except UnicodeEncodeError:
        msg = f"cannot add {entry.path!r}: the file name is not valid UTF-8; rename it"
        raise InvalidInput(msg) from None


class TreeCache(Protocol):
    """Remembers, per directory, the fingerprint of its last vouched listing and the digest it hashed to."""

    def lookup_tree(self, root: str) -> tuple[str, str, int] | None:
        """(listing fingerprint, hex digest, size) last stored for the directory ``root``, if any."""
        ...

    def store_tree(self, root: str, fingerprint: str, digest: str, size: int) -> None:
        """Remember them for ``root`` (replacing what was there); failing to only costs speed."""
        ...


class KnownTree(NamedTuple):
    """A directory whose listing is the one last hashed: its digest, without reading a file or the stat cache."""

    digest: Digest
    size: int
    paths: list[str]  # its files' relative paths, sorted


Listing = tuple[list[Entry[StatKey]], bool]


def fingerprint(entries: Sequence[Entry[StatKey]]) -> str | None:
    """A digest of a directory's listing (paths and stat keys); None when a file changed too recently to vouch."""
    recent = (time.time() - RACY_SECONDS) * 1e9  # as is_racy, for every entry at once
    if any(e.key[3] >= recent for e in entries):
        return None
    text = "".join([f"{e.rel}\t{e.key[0]}\t{e.key[1]}\t{e.key[2]}\t{e.key[3]}\n" for e in entries])
    return hashlib.sha256(text.encode()).hexdigest()


def known_tree(path: str | os.PathLike[str], trees: TreeCache) -> tuple[KnownTree | None, Listing]:
    """List ``path``; when it is a directory listed exactly as when it was last hashed, its :class:`KnownTree`.

    Every file's (device, inode, size, mtime_ns) and path, and the set of files, must be what they were,
    and none modified within ``RACY_SECONDS``: the same as the stat cache asks of each file, asked once.
    The listing comes back too, for :func:`hash_path` when the tree is not known.
    """
    listing = list_path(path)
    entries, is_dir = listing
    if not is_dir:
        return None, listing
    root = os.path.abspath(path)
    stored = trees.lookup_tree(root)
    if stored is None:
        return None, listing
    fp = fingerprint(entries)
    if fp is None or fp != stored[0]:
        return None, listing
    return KnownTree(Digest.sha256(stored[1]), stored[2], [e.rel for e in entries]), listing


def hash_path(
    path: str | os.PathLike[str],
    *,
    cache: StatCache | None = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
    trees: TreeCache | None = None,
    listing: Listing | None = None,
) -> HashResult:
    """Hash a file or a directory tree.

    With ``trees``, a directory whose every digest is vouched for (cached, not
    racy) has its listing's fingerprint remembered, so :func:`known_tree` can
    recognise it unchanged next time. ``listing`` is what :func:`list_path`
    (or :func:`known_tree`) already listed.

    >>> r = hash_path(__file__)
    >>> r.digest.algorithm
    'sha256'
    """
    entries, is_dir = listing if listing is not None else list_path(path)
    result = build(entries, FileReader(), is_dir=is_dir, cache=cache, progress=progress, workers=workers)
    if trees is not None and is_dir and result.vouched:
        fp = fingerprint(entries)
        if fp is not None:
            trees.store_tree(os.path.abspath(path), fp, result.digest.hex, result.size)
    return result
