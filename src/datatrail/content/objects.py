"""The local object cache: each object's bytes at ``sha256/ab/cdef…``, written atomically, read-only once written.

An object is named by the SHA-256 of its bytes (the digest hashing already
computed), so the same file in two versions or two datasets is kept once. A
write goes to a temporary file in the object's own folder and is renamed into
place (``os.replace``) only once its bytes hashed to its name: a crash, a full
disk or a file changed under us leaves no object with the wrong bytes.

Bytes enter the cache by a reflink (``FICLONE``, on Btrfs, XFS, some others)
where the filesystem can clone, else by a copy; both are verified. Objects
are made read-only, so a hard link into a workspace cannot be edited in place.

>>> cache = ObjectStore(Path(tmp) / "objects")                     # doctest: +SKIP
>>> cache.add_bytes(hashlib.sha256(b"hi").hexdigest(), b"hi")      # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import itertools
import os
import re
import stat
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from datatrail.content.packs import PackEntry, encode_index, parse_index
from datatrail.core.errors import DatatrailError, DiskFull, IntegrityError, InvalidInput

CHUNK = 1024 * 1024
SMALL = CHUNK  # objects below this are read and written in one call
LIST_FROM = 2000  # from this many objects, :meth:`ObjectStore.missing` lists folders instead of stating each
READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
ALGORITHM = "sha256"
_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)


def storage_error(exc: OSError, where: str) -> DatatrailError:
    """An OSError met while writing ``where`` as one line saying what to do."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"no space left on the device while writing {where}; free some space and run it again")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return InvalidInput(f"cannot write {where}: {exc.strerror}; check its permissions")
    return InvalidInput(f"cannot write {where}: {exc.strerror or exc}")


def reflink(src: int, dst: int) -> bool:
    """Clone ``src``'s blocks into ``dst`` (open descriptors) when the filesystem can; False when it cannot."""
    try:
        import fcntl  # POSIX only
    except ImportError:  # pragma: no cover - Windows
        return False
    try:
        fcntl.ioctl(dst, _FICLONE, src)
    except OSError:
        return False
    return True


TEMP = ".tmp-"  # how a file is named until its rename (cache objects and packs, folder remotes): listings skip it
STALE_TEMP_AGE = 24 * 3600.0
"""Seconds after its last write a temporary file (:data:`TEMP`) is taken for one a killed process left.

A live writer writes its temporary file until it renames it (every block moves its modification time),
so a day without a write is no add, pull or push in progress; the margin covers clocks of clients sharing a folder."""

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TOKEN = os.urandom(6).hex()  # this process's temporary names: unique without a random name per object
_COUNTER = itertools.count()


def _check(hexd: str) -> str:
    if not _HEX64.fullmatch(hexd):
        msg = f"invalid object name {hexd!r}: expected 64 lowercase hex digits"
        raise InvalidInput(msg)
    return hexd


class ObjectStore:
    """A content-addressed folder of objects (``root/sha256/ab/cdef…``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root / ALGORITHM
        self._base = os.fspath(self.base)
        self._made: set[str] = set()  # subfolders known to exist
        self.fresh: set[str] = set()  # objects this process wrote and verified: no need to hash them again
        self.packs_dir = root / "packs"
        self._packed: dict[str, tuple[str, int, int]] | None = None  # digest → (pack file, offset, length)

    def path(self, hexd: str) -> Path:
        """The object's own file (taken out of its pack first if it is packed), or where it would be."""
        return Path(self.where(hexd))

    def where(self, hexd: str) -> str:
        """:meth:`path` as a string (no pathlib on the paths of 100,000 objects)."""
        loose = self._loose(hexd)
        if hexd in self.packed and not os.path.exists(loose):
            self._unpack(hexd)
        return loose

    def _loose(self, hexd: str) -> str:
        _check(hexd)
        return f"{self._base}/{hexd[:2]}/{hexd[2:]}"

    def in_pack(self, hexd: str) -> bool:
        """Whether the object is kept only in a pack (no file of its own)."""
        return hexd in self.packed and not os.path.exists(self._loose(hexd))

    def has(self, hexd: str) -> bool:
        return hexd in self.packed or os.path.exists(self._loose(hexd))

    # ------------------------------------------------------------ packs

    @property
    def packed(self) -> dict[str, tuple[str, int, int]]:
        """Objects kept in local packs (a pull keeps the packs it downloads whole): digest → (pack, offset, length).

        A pack counts once its index is written (after the pack, every object of it verified first)."""
        if self._packed is None:
            found: dict[str, tuple[str, int, int]] = {}
            try:
                names = sorted(n for n in os.listdir(self.packs_dir) if n.endswith(".idx") and not n.startswith("."))
            except FileNotFoundError:
                names = []
            for n in names:
                pack = os.fspath(self.packs_dir / f"{n[: -len('.idx')]}.pack")
                try:
                    entries = parse_index((self.packs_dir / n).read_bytes(), n)
                except (FileNotFoundError, IntegrityError):
                    continue  # removed meanwhile, or torn: its objects count as missing (fetched again)
                for e in entries:
                    found[e.digest] = (pack, e.offset, e.length)
            self._packed = found
        return self._packed

    def add_pack(self, name: str, data: bytes | memoryview, entries: list[PackEntry]) -> None:
        """Keep a downloaded pack whole, every one of whose ``entries`` the caller hashed from ``data``.

        The pack is renamed into place before its index, which vouches for it; one file for its
        objects instead of one each (on ext4 without a journal, creating files right after many were
        deleted costs more for each file than its bytes)."""
        where = f"the object cache {os.fspath(self.root)!r}"
        try:
            self.packs_dir.mkdir(parents=True, exist_ok=True)
            pack = self.packs_dir / f"{name}.pack"
            _write_new(pack, data, READ_ONLY)
            _write_new(self.packs_dir / f"{name}.idx", encode_index(entries), READ_ONLY)
        except OSError as exc:
            raise storage_error(exc, where) from None
        packed = self.packed
        for e in entries:
            packed.setdefault(e.digest, (os.fspath(pack), e.offset, e.length))

    def _slice(self, hexd: str) -> bytes:
        pack, offset, length = self.packed[hexd]
        with open(pack, "rb", buffering=0) as f:
            f.seek(offset)
            data = f.read(length)
        return data

    def _unpack(self, hexd: str) -> None:
        """Write a packed object as its own file (verified): what links and copies into workspaces read."""
        data = self._slice(hexd)
        if hashlib.sha256(data).hexdigest() != hexd:
            pack = self.packed[hexd][0]
            for suffix in (".idx", ".pack"):  # so that running it again fetches its objects from the remote
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(pack[: -len(".pack")] + suffix)
            self._packed = None
            msg = (
                f"object {hexd[:12]} in the pack {pack!r} was corrupt and the pack is removed; "
                "run it again to fetch its objects from the remote"
            )
            raise IntegrityError(msg)
        self.add_bytes(hexd, data, known_missing=True)

    def missing(self, hexes: Iterator[str] | list[str] | set[str]) -> set[str]:
        """Those of ``hexes`` not in the cache (many: one listing per subfolder, not one stat per object).

        The packs are listed afresh: this is where each command asks what the cache holds."""
        self._packed = None
        packed = self.packed
        wanted = {h for h in hexes if h not in packed}
        if len(wanted) < LIST_FROM:
            return {h for h in wanted if not os.path.exists(self._loose(h))}
        out: set[str] = set()
        by_folder: dict[str, list[str]] = {}
        for h in wanted:
            by_folder.setdefault(_check(h)[:2], []).append(h)
        for sub, group in by_folder.items():
            try:
                present = set(os.listdir(f"{self._base}/{sub}"))
            except (FileNotFoundError, NotADirectoryError):
                present = set()
            out.update(h for h in group if h[2:] not in present)
        return out

    def size(self, hexd: str) -> int:
        if hexd in self.packed:
            return self.packed[hexd][2]
        return os.stat(self._loose(hexd)).st_size

    def __iter__(self) -> Iterator[str]:
        """The names of every object in the cache (packed ones first; the packs listed afresh)."""
        self._packed = None
        packed = dict(self.packed)
        yield from sorted(packed)
        if not self.base.is_dir():
            return
        for sub in sorted(os.scandir(self.base), key=lambda e: e.name):
            if not sub.is_dir() or len(sub.name) != 2:
                continue
            for entry in os.scandir(sub.path):
                if len(entry.name) == 62 and not entry.name.startswith(".") and sub.name + entry.name not in packed:
                    yield sub.name + entry.name

    # ------------------------------------------------------------ writing

    @contextlib.contextmanager
    def _temp(self, hexd: str, mode: int = 0o644) -> Iterator[tuple[int, str]]:
        """An open temporary file beside the object's place; renamed into place by the caller, else removed.

        ``mode`` READ_ONLY makes it read-only from the start (the descriptor still writes), sparing a chmod."""
        folder = f"{self._base}/{_check(hexd)[:2]}"
        try:
            if folder not in self._made:
                os.makedirs(folder, exist_ok=True)
                self._made.add(folder)
            tmp = f"{folder}/{TEMP}{_TOKEN}-{next(_COUNTER)}"
            flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)  # read: the kernel copy's hash
            try:
                fd = os.open(tmp, flags, mode)
            except FileNotFoundError:  # the cache was removed since the folder was made
                os.makedirs(folder, exist_ok=True)
                fd = os.open(tmp, flags, mode)
        except OSError as exc:
            raise storage_error(exc, f"the object cache {os.fspath(self.root)!r}") from None
        try:
            yield fd, tmp
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.close(fd)

    def _commit(self, tmp: str, hexd: str, *, chmod: bool = True) -> None:
        if chmod:
            os.chmod(tmp, READ_ONLY)
        os.replace(tmp, self._loose(hexd))

    def add_bytes(self, hexd: str, data: bytes | memoryview, *, known_missing: bool = False) -> bool:
        """Keep ``data`` as object ``hexd`` (verified); False when it was already there."""
        if not known_missing and self.has(hexd):
            return False
        if hashlib.sha256(data).hexdigest() != hexd:
            msg = f"bytes given as object {hexd[:12]} hash differently; not kept"
            raise IntegrityError(msg)
        with self._temp(hexd, READ_ONLY) as (fd, tmp):
            try:
                write_all(fd, data)
            except OSError as exc:
                raise storage_error(exc, f"the object cache {os.fspath(self.root)!r}") from None
        try:
            self._commit(tmp, hexd, chmod=False)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return True

    def add_file(self, hexd: str, source: str | os.PathLike[str]) -> bool:
        """Keep the file ``source`` as object ``hexd``: reflinked or copied, then verified; False if already kept.

        Raises :class:`IntegrityError` when the file no longer hashes to ``hexd``
        (it changed since it was hashed): nothing is kept.
        """
        if self.has(hexd):
            return False
        where = f"the object cache {os.fspath(self.root)!r}"
        try:
            src = os.open(source, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            msg = f"cannot read {os.fspath(source)!r} to keep its bytes: {exc.strerror}"
            raise InvalidInput(msg) from None
        try:
            with self._temp(hexd) as (fd, tmp):
                try:
                    if reflink(src, fd):
                        got = _hash_fd(fd_read := os.open(tmp, os.O_RDONLY))
                        os.close(fd_read)
                    else:
                        got = _copy_hashing(src, fd)
                except OSError as exc:
                    raise storage_error(exc, where) from None
                if got != hexd:
                    msg = f"{os.fspath(source)!r} changed while it was being added; add it again"
                    raise IntegrityError(msg)
            self._commit(tmp, hexd)
        finally:
            os.close(src)
        return True

    def add_copy(self, hexd: str, source: str, progress: Callable[[int], None] | None = None) -> bool:
        """Keep the local file ``source`` (another cache, a folder remote) as object ``hexd``, copied by the
        kernel and hashed beside it (:func:`copy_hashing`), verified before it is renamed into place."""
        if self.has(hexd):
            return False
        where = f"the object cache {os.fspath(self.root)!r}"
        src = os.open(source, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            with self._temp(hexd, READ_ONLY) as (fd, tmp):
                try:
                    got, _ = copy_hashing(src, fd, progress=progress)
                except OSError as exc:
                    raise storage_error(exc, where) from None
                if got != hexd:
                    msg = f"object {hexd[:12]} arrived corrupt (its bytes hash to {got[:12]}); run it again"
                    raise IntegrityError(msg)
            self._commit(tmp, hexd, chmod=False)
        finally:
            os.close(src)
        self.fresh.add(hexd)
        return True

    def add_fetched(self, hexd: str, fetch: Callable[[str], object]) -> bool:
        """Keep as object ``hexd`` what ``fetch(path)`` writes to a temporary path, hashed before it is kept."""
        if self.has(hexd):
            return False
        with self._temp(hexd) as (_fd, tmp):
            fetch(tmp)
            read = os.open(tmp, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            try:
                got = _hash_fd(read)
            finally:
                os.close(read)
            if got != hexd:
                msg = f"object {hexd[:12]} arrived corrupt (its bytes hash to {got[:12]}); run it again"
                raise IntegrityError(msg)
        self._commit(tmp, hexd)
        self.fresh.add(hexd)
        return True

    # ------------------------------------------------------------ reading

    def open(self, hexd: str) -> BinaryIO:
        """The object's bytes as a read-only binary file."""
        if hexd in self.packed and not os.path.exists(self._loose(hexd)):
            return io.BytesIO(self._slice(hexd))
        return open(self.where(hexd), "rb")

    def read(self, hexd: str, size: int | None = None) -> bytes:
        """The object's bytes (descriptor calls: packing reads thousands of small objects).

        ``size``, when the caller knows it (a manifest's), spares an ``fstat``; a file of
        another size is still read whole."""
        if hexd in self.packed:
            return self._slice(hexd)
        fd = os.open(self._loose(hexd), os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            if size is None:
                size = os.fstat(fd).st_size
            data = os.read(fd, size + 1)
            if len(data) > size or len(data) < size:  # changed meanwhile, or a short read: read to the end
                rest = [data]
                while chunk := os.read(fd, CHUNK):
                    rest.append(chunk)
                data = b"".join(rest)
            return data
        finally:
            os.close(fd)

    def read_many(self, items: list[tuple[str, int]]) -> Generator[tuple[str, bytes], None, None]:
        """(digest, bytes) of each of ``items`` (digest, size from a manifest), read in the order given.

        For packing thousands of small objects: each subfolder is opened once and its objects by name
        relative to it (no path walk per object); best sorted by digest. A packed object is read from its pack."""
        packed = self.packed
        flags = os.O_RDONLY | getattr(os, "O_BINARY", 0)
        if os.open not in os.supports_dir_fd:  # pragma: no cover - Windows
            for hexd, size in items:
                yield hexd, self.read(hexd, size)
            return
        sub, folder = "", -1
        try:
            for hexd, size in items:
                if hexd in packed:
                    yield hexd, self._slice(hexd)
                    continue
                _check(hexd)
                if hexd[:2] != sub:
                    if folder >= 0:
                        os.close(folder)
                        folder = -1
                    sub = hexd[:2]
                    folder = os.open(f"{self._base}/{sub}", os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
                fd = os.open(hexd[2:], flags, dir_fd=folder)
                try:
                    data = os.read(fd, size + 1)
                    if len(data) != size:  # changed meanwhile, or a short read: read to the end
                        rest = [data]
                        while chunk := os.read(fd, CHUNK):
                            rest.append(chunk)
                        data = b"".join(rest)
                finally:
                    os.close(fd)
                yield hexd, data
        finally:
            if folder >= 0:
                os.close(folder)

    def verify(self, hexd: str) -> bool:
        """Whether the object's bytes still hash to its name."""
        if hexd in self.packed and not os.path.exists(self._loose(hexd)):
            return hashlib.sha256(self._slice(hexd)).hexdigest() == hexd
        fd = os.open(self.where(hexd), os.O_RDONLY)
        try:
            return _hash_fd(fd) == hexd
        finally:
            os.close(fd)

    def temp_folders(self) -> list[str]:
        """The folders where writes leave temporary files until their rename: each ``sha256/ab/``, and ``packs/``."""
        out = []
        with contextlib.suppress(FileNotFoundError):
            out = sorted(e.path for e in os.scandir(self.base) if len(e.name) == 2 and e.is_dir(follow_symlinks=False))
        return [*out, os.fspath(self.packs_dir)]

    def remove(self, hexd: str) -> int:
        """Delete an object; the bytes freed (0 when it was not there).

        A packed object goes with its pack: the pack's other objects are first kept as files of their own."""
        freed = 0
        if hexd in self.packed:
            pack, _, freed = self.packed[hexd]
            for other, (where, _, _) in list(self.packed.items()):
                if where == pack and other != hexd and not os.path.exists(self._loose(other)):
                    self._unpack(other)
            for suffix in (".idx", ".pack"):  # the index first: without it the pack no longer counts
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(pack[: -len(".pack")] + suffix)
            self._packed = None
        p = Path(self._loose(hexd))
        try:
            size = p.stat().st_size
            p.unlink()
        except FileNotFoundError:
            return freed
        return size


def stale_temps(folders: Iterable[str], *, age: float = STALE_TEMP_AGE) -> list[tuple[str, int]]:
    """The temporary files (:data:`TEMP`) in ``folders`` that killed writers left: (path, size) of each not
    written for ``age`` seconds. A younger one may be a live writer's; only regular files count."""
    now = time.time()
    out = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if not entry.name.startswith(TEMP):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # renamed into place since, or removed by another gc
                continue
            if stat.S_ISREG(st.st_mode) and now - st.st_mtime > age:
                out.append((entry.path, st.st_size))
    return out


def remove_files(found: Iterable[tuple[str, int]]) -> tuple[int, int]:
    """Remove each (path, size) of ``found``; the files and bytes removed (one already gone is not counted)."""
    count = nbytes = 0
    for path, size in found:
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        count += 1
        nbytes += size
    return count, nbytes


class BackgroundHash:
    """SHA-256 computed in a thread of its own while the caller reads and writes the same bytes.

    hashlib and os.write both release the GIL, so on two cores a copy costs the
    slower of the two instead of their sum (a 1 GiB object, close to a plain ``cp``).
    """

    def __init__(self, start: Any = None) -> None:
        import queue
        import threading

        self._h = start if start is not None else hashlib.sha256()
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="datatrail-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            self._h.update(data)

    def update(self, data: bytes) -> None:
        self._queue.put(data)

    def hexdigest(self) -> str:
        self.close()
        return self._h.hexdigest()

    def close(self) -> None:
        """Let the thread finish (idempotent; on an error, so that it does not wait forever)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


KERNEL_FROM = 8 * CHUNK
"""Copies of this many bytes or more are made by the kernel (``copy_file_range``), hashed beside it."""
KERNEL_BLOCK = 32 * CHUNK  # the kernel copies, and the hashing thread maps, this much at a time
WHOLE_BLOCK = 1 << 30
"""What :func:`kernel_copy` (no hash beside it) asks the kernel for per call: 1 GiB (Linux copies at most
2 GiB - 4 KiB per call)."""
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF, errno.EPERM}


def copy_hashing(
    src: int, dst: int, *, kernel: bool = True, progress: Callable[[int], None] | None = None
) -> tuple[str, int]:
    """Copy descriptor ``src`` to ``dst``; (hex SHA-256, bytes) of what passed (hashed alongside when big).

    From :data:`KERNEL_FROM` bytes, when ``dst`` is open for reading too (``O_RDWR``), the kernel
    copies (:func:`kernel_copy_hashing`); else, or with ``kernel`` off, Python reads and writes.
    ``progress`` is given the bytes of each block copied."""
    if kernel and _readable(dst) and os.fstat(src).st_size >= KERNEL_FROM:
        got = kernel_copy_hashing(src, dst, progress)
        if got is not None:
            return got
    return _loop_copy_hashing(src, dst, progress)


def _readable(fd: int) -> bool:
    try:
        import fcntl  # POSIX only
    except ImportError:  # pragma: no cover - Windows
        return False
    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR


def kernel_copy_hashing(src: int, dst: int, progress: Callable[[int], None] | None = None) -> tuple[str, int] | None:
    """Copy ``src`` to ``dst`` (``O_RDWR``) in the kernel, hashing the bytes that landed in ``dst``.

    The kernel copies block N+1 (``copy_file_range``, else ``sendfile``: no byte passes through
    Python) while a thread hashes block N, read back from ``dst`` through a read-only mapping of
    the page cache (hashlib releases the GIL): the copy costs about the hashing alone. What is
    hashed is what ``dst`` holds, so the digest vouches for the copy itself. None when the kernel
    cannot copy between these two files (before any byte is written): the caller copies itself."""
    import mmap
    import queue
    import threading

    copy = _kernel_copier(src, dst)
    if copy is None:
        return None
    h = hashlib.sha256()
    maps: queue.Queue[Any] = queue.Queue(maxsize=8)  # mappings waiting to be hashed (bounds the address space)
    failed: list[BaseException] = []

    def run() -> None:
        while (m := maps.get()) is not None:
            try:
                if not failed:
                    h.update(m)
            except BaseException as exc:  # handed to the copying thread
                failed.append(exc)
            finally:
                if isinstance(m, mmap.mmap):
                    m.close()

    thread = threading.Thread(target=run, name="datatrail-hash", daemon=True)
    thread.start()
    size = 0
    try:
        first = copy.first
        while True:
            n = first if first else 0
            first = 0
            while n < KERNEL_BLOCK:
                got = copy(KERNEL_BLOCK - n)
                if not got:
                    break
                n += got
            if n:
                try:
                    block: Any = mmap.mmap(dst, n, prot=mmap.PROT_READ, offset=size)
                except OSError:  # a filesystem that cannot map files: the block read back instead
                    block = _read_back(dst, n, size)
                maps.put(block)
                size += n
                if progress is not None:
                    progress(n)
            if n < KERNEL_BLOCK or failed:
                break
    finally:
        maps.put(None)
        thread.join()
    if failed:
        raise failed[0]
    return h.hexdigest(), size


def _read_back(fd: int, n: int, offset: int) -> bytes:
    parts = []
    while n > 0 and (data := os.pread(fd, n, offset)):
        parts.append(data)
        n -= len(data)
        offset += len(data)
    return b"".join(parts)


class _Copier:
    """``copy(n)``: the bytes the kernel copied from ``src``'s offset to ``dst``'s (0 at the end)."""

    def __init__(self, call: Callable[[int], int], first: int) -> None:
        self.call = call
        self.first = first  # what the probing call copied already

    def __call__(self, n: int) -> int:
        return self.call(n)


def _kernel_copier(src: int, dst: int, block: int = KERNEL_BLOCK) -> _Copier | None:
    """The kernel call that copies between these files (``copy_file_range``, else ``sendfile``); None if neither.

    ``src`` is first declared read from start to end (``POSIX_FADV_SEQUENTIAL``, as ``cp`` does):
    a bigger read-ahead window when its pages come from the disk. The probing call copies up to
    ``block`` bytes."""
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(src, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    if hasattr(os, "copy_file_range"):
        try:
            first = os.copy_file_range(src, dst, block)
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY:
                raise
        else:
            return _Copier(lambda n: os.copy_file_range(src, dst, n), first)
    if hasattr(os, "sendfile"):
        try:
            first = os.sendfile(dst, src, None, block)
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY:
                raise
        else:
            return _Copier(lambda n: os.sendfile(dst, src, None, n), first)
    return None


def kernel_copy(source: str, dest: str) -> int:
    """Copy the file ``source`` to the new file ``dest`` without a byte passing through Python: a reflink
    where the filesystem clones (Btrfs, XFS), else ``copy_file_range``/``sendfile``, else a plain copy.

    For bytes already verified (a cache object pushed to a folder remote): nothing is hashed, so
    nothing needs the bytes in blocks: the kernel is asked for up to :data:`WHOLE_BLOCK` at a time
    (one call for a file of 1 GiB, as ``cp`` makes), not :data:`KERNEL_BLOCK`: each return to
    Python is a point where a busy machine's scheduler may give the core away (docs/benchmarks.md,
    "Round eight: one big file, warm"). The bytes copied."""
    src = os.open(source, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        dst = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
        try:
            if reflink(src, dst):
                return os.fstat(dst).st_size
            copy = _kernel_copier(src, dst, WHOLE_BLOCK)
            size = 0
            if copy is None:
                while data := os.read(src, KERNEL_BLOCK):
                    write_all(dst, data)
                    size += len(data)
                return size
            size = copy.first
            while got := copy(WHOLE_BLOCK):
                size += got
            return size
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _loop_copy_hashing(src: int, dst: int, progress: Callable[[int], None] | None = None) -> tuple[str, int]:
    """:func:`copy_hashing` through Python: read, hash (in a thread once big), write."""
    h: Any = hashlib.sha256()
    size = 0
    try:
        while data := os.read(src, CHUNK):
            if size == CHUNK and not isinstance(h, BackgroundHash):
                h = BackgroundHash(h)  # a big file: hash the rest beside the writes
            h.update(data)
            size += len(data)
            write_all(dst, data)
            if progress is not None:
                progress(len(data))
    finally:
        digest = h.hexdigest()
    return digest, size


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write every byte of ``data`` to ``fd`` (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_new(path: Path, data: bytes | memoryview, mode: int) -> None:
    """Write a whole file through a temporary name and a rename: nobody sees it half-written."""
    tmp = path.with_name(f"{TEMP}{_TOKEN}-{next(_COUNTER)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    try:
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _hash_fd(fd: int) -> str:
    h = hashlib.sha256()
    while data := os.read(fd, CHUNK):
        h.update(data)
    return h.hexdigest()


def _copy_hashing(src: int, dst: int) -> str:
    """Copy ``src`` to ``dst`` (descriptors), hashing what passes; the hex SHA-256 of the bytes copied."""
    return copy_hashing(src, dst)[0]


__all__ = [
    "ALGORITHM",
    "STALE_TEMP_AGE",
    "TEMP",
    "DiskFull",
    "ObjectStore",
    "reflink",
    "remove_files",
    "stale_temps",
    "storage_error",
]
