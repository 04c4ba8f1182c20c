"""Writing objects back into a workspace: plan what changes, refuse local edits, write verified bytes.

:func:`plan` compares what a version holds (``wanted``: relative path →
digest) with what the workspace holds (``present``, hashed through the stat
cache) and says, per file, ``added``, ``modified``, ``removed`` or
``unchanged``. :func:`apply` writes each added or modified file from the
object cache to a temporary file beside it, hashing every byte as it goes,
and renames it into place only when the bytes match: a failure (a corrupt
object, a full disk) leaves each file either as it was or as the version has it.

How bytes get there: objects of 1 MiB or more are hard-linked from the cache
(they are read-only, so the workspace file is too: an edit in place is
refused, an editor that saves a new file is fine), unless ``link`` is off or
the filesystem cannot link; smaller ones, and those, are reflinked
(``FICLONE``: Btrfs, XFS, …) where the filesystem can clone, else copied.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

from datatrail.content.objects import CHUNK, ObjectStore, copy_hashing, reflink, storage_error, write_all
from datatrail.core.errors import Conflict, IntegrityError

ADDED, MODIFIED, REMOVED, UNCHANGED = "added", "modified", "removed", "unchanged"
_TOKEN = os.urandom(6).hex()  # as uuid4().hex[:12] was, without importing uuid (start-up)
_COUNTER = itertools.count()


class Change(NamedTuple):
    """What checking a version out does to one file."""

    path: str  # relative to the target ('' for a single file)
    action: str  # added, modified, removed, unchanged
    digest: str | None  # the version's hex digest (None for a removed file)


def plan(wanted: Mapping[str, str], present: Mapping[str, str]) -> list[Change]:
    """Per file, what making ``present`` equal to ``wanted`` takes (both map relative path → hex digest)."""
    out = []
    for rel, hexd in sorted(wanted.items()):
        have = present.get(rel)
        action = ADDED if have is None else UNCHANGED if have == hexd else MODIFIED
        out.append(Change(rel, action, hexd))
    out.extend(Change(rel, REMOVED, None) for rel in sorted(set(present) - set(wanted)))
    return out


def apply(
    changes: list[Change],
    target: Path,
    objects: ObjectStore,
    *,
    is_dir: bool,
    progress: Callable[[int, int], None] | None = None,
    link: bool = True,
) -> None:
    """Make the workspace at ``target`` what ``changes`` say, each file replaced atomically and verified."""
    top = os.fspath(target)
    made: set[str] = set()
    for change in changes:
        dest = f"{top}/{change.path}" if is_dir else top
        if change.action == REMOVED:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dest)
            _prune(Path(dest).parent, target)
            continue
        if change.action == UNCHANGED or change.digest is None:
            continue
        size = None
        if link and objects.size(change.digest) >= LINK_FROM:
            if made is not None and os.path.dirname(dest) not in made:
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                made.add(os.path.dirname(dest))
            size = link_verified(objects, change.digest, dest)
        if size is None:
            size = write_verified(objects, change.digest, dest, made)
        if progress is not None:
            progress(1, size)


LINK_FROM = 1024 * 1024
"""Objects of this size or more are hard-linked into the workspace (read-only there), not copied."""


def link_verified(objects: ObjectStore, hexd: str, dest: str) -> int | None:
    """Hard-link object ``hexd`` to ``dest`` (after hashing it, unless this process just verified it).

    None when the filesystem cannot link (another device, no hard links): the caller copies."""
    source = objects.where(hexd)
    size = os.stat(source).st_size
    if hexd not in objects.fresh and not objects.verify(hexd):
        _check_digest("(differs)", hexd, objects, repr(dest))
    folder, name = os.path.split(dest)
    tmp = f"{folder}/.{name}.datatrail-{_TOKEN}-{next(_COUNTER)}"
    try:
        os.link(source, tmp)
    except OSError:
        return None
    try:
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return size


def write_verified(
    objects: ObjectStore, hexd: str, dest: str | Path, made: set[str] | None = None, *, private: bool = False
) -> int:
    """Write object ``hexd`` to ``dest`` through a temporary file, hashing it; the bytes written.

    ``made`` remembers the folders already made (one ``makedirs`` per folder, not per file).
    ``private``: ``dest`` is new, in a folder nobody else sees yet (:class:`NewTree`): written in
    place, no temporary file (it is removed again if its bytes do not match)."""
    dest = os.fspath(dest)
    where = repr(dest)
    folder, name = os.path.split(dest)
    if objects.in_pack(hexd):
        return _write_packed(objects, hexd, dest, made, private=private)
    try:
        if made is None or folder not in made:
            os.makedirs(folder, exist_ok=True)
            if made is not None:
                made.add(folder)
        src = os.open(objects.where(hexd), os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise storage_error(exc, where) from None
    tmp = dest if private else f"{folder}/.{name}.datatrail-{_TOKEN}-{next(_COUNTER)}"
    try:  # read and write: a big copy is hashed as read back (objects.kernel_copy_hashing)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
        try:
            if reflink(src, fd):
                os.lseek(fd, 0, os.SEEK_SET)
                got, size = _hash_path(tmp)
            else:
                got, size = _copy(src, fd)
        finally:
            os.close(fd)
        _check_digest(got, hexd, objects, where)
        if not private:
            _into_place(tmp, dest, where)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise storage_error(exc, where) from None
        raise
    finally:
        os.close(src)
    return size


def _into_place(tmp: str, dest: str, where: str) -> None:
    """Rename a verified temporary file over ``dest`` (a folder there is the user's to move)."""
    try:
        os.replace(tmp, dest)
    except IsADirectoryError:
        msg = f"{where} is a folder where the version has a file; move it away or check out elsewhere"
        raise IntegrityError(msg) from None


def _write_packed(objects: ObjectStore, hexd: str, dest: str, made: set[str] | None, *, private: bool) -> int:
    """:func:`write_verified` of an object kept in a pack: its bytes read from the pack, hashed, then written."""
    where = repr(dest)
    folder, name = os.path.split(dest)
    data = objects.read(hexd)
    _check_digest(hashlib.sha256(data).hexdigest(), hexd, objects, where)
    tmp = dest if private else f"{folder}/.{name}.datatrail-{_TOKEN}-{next(_COUNTER)}"
    try:
        if made is None or folder not in made:
            os.makedirs(folder, exist_ok=True)
            if made is not None:
                made.add(folder)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        if not private:
            _into_place(tmp, dest, where)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise storage_error(exc, where) from None
        raise
    return len(data)


STAGE = ".datatrail-new-"
"""Marks the hidden folder a new tree is written into (``.NAME.datatrail-new-PID-…`` beside it)."""


class NewTree:
    """A directory version written where nothing is yet, whole or not at all.

    Its files go into a hidden folder beside the target, each created once and
    written from verified bytes, with no temporary file and rename per file (on
    ext4 that rename costs as much as writing a small file); the folder is
    renamed to the target once every file is there. A failure removes the
    hidden folder; a process killed midway leaves it, and the next pull to the
    same place removes it. Nothing ever appears at the target half-written.

    >>> tree = NewTree(Path("data"), {"a.csv": hexd}).start()     # doctest: +SKIP
    >>> tree.put(hexd, verified_bytes); tree.finish(objects)       # doctest: +SKIP
    """

    def __init__(self, target: Path, files: Mapping[str, str], *, link: bool = True) -> None:
        self.target = target
        self.files = dict(files)
        parent, name = os.path.split(os.fspath(target))
        self.parent, self.prefix = parent, f".{name}{STAGE}"
        self.stage = f"{parent}/{self.prefix}{os.getpid()}-{_TOKEN}-{next(_COUNTER)}"
        self.todo: dict[str, list[str]] = {}
        for rel, hexd in sorted(files.items()):
            self.todo.setdefault(hexd, []).append(rel)
        self.made: set[str] = set()
        self.link = link

    @property
    def where(self) -> str:
        return repr(os.fspath(self.target))

    def start(self) -> NewTree:
        """Make the hidden folder (removing those a killed pull left here)."""
        try:
            os.makedirs(self.parent, exist_ok=True)
            _clear_stale(self.parent, self.prefix)
            os.mkdir(self.stage)
        except OSError as exc:
            raise storage_error(exc, self.where) from None
        self.made.add(self.stage)
        return self

    def wants(self, hexd: str) -> bool:
        return hexd in self.todo

    def put(self, hexd: str, data: bytes | memoryview) -> None:
        """Write the files holding object ``hexd`` from ``data``, bytes the caller has hashed to ``hexd``."""
        rels = self.todo.pop(hexd, None)
        if not rels:
            return
        try:
            for rel in rels:
                dest = f"{self.stage}/{rel}"
                folder = os.path.dirname(dest)
                if folder not in self.made:
                    os.makedirs(folder, exist_ok=True)
                    self.made.add(folder)
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
                try:
                    write_all(fd, data)
                finally:
                    os.close(fd)
        except OSError as exc:
            raise storage_error(exc, self.where) from None

    def finish(self, objects: ObjectStore) -> list[Change]:
        """Write the files not yet written from the cache (verified), then rename the tree into place."""
        for hexd, rels in sorted(self.todo.items()):
            for rel in rels:
                dest = f"{self.stage}/{rel}"
                folder = os.path.dirname(dest)
                if folder not in self.made:
                    try:
                        os.makedirs(folder, exist_ok=True)
                    except OSError as exc:
                        raise storage_error(exc, self.where) from None
                    self.made.add(folder)
                size = None
                if self.link and objects.size(hexd) >= LINK_FROM:
                    size = link_verified(objects, hexd, dest)
                if size is None:
                    write_verified(objects, hexd, dest, self.made, private=True)
        self.todo.clear()
        try:
            os.rename(self.stage, self.target)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                msg = f"{self.where} appeared while it was being pulled; pull again to check it against the version"
                raise Conflict(msg) from None
            raise storage_error(exc, self.where) from None
        return [Change(rel, ADDED, hexd) for rel, hexd in sorted(self.files.items())]

    def abort(self) -> None:
        """Remove the hidden folder and what was written into it."""
        import shutil  # start-up: a push or a read loads this module and removes no tree

        shutil.rmtree(self.stage, ignore_errors=True)


def _clear_stale(parent: str, prefix: str) -> None:
    """Remove hidden folders of new trees whose process is gone (killed midway)."""
    if os.name != "posix":  # os.kill(pid, 0) probes a process only on POSIX
        return
    try:
        names = [n for n in os.listdir(parent) if n.startswith(prefix)]
    except FileNotFoundError:
        return
    for n in names:
        pid = n[len(prefix) :].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            import shutil  # start-up: as above

            shutil.rmtree(f"{parent}/{n}", ignore_errors=True)
        except PermissionError:  # alive, someone else's
            continue


def _check_digest(got: str, hexd: str, objects: ObjectStore, where: str) -> None:
    if got != hexd:
        objects.remove(hexd)  # so that running it again fetches a sound copy from the remote
        msg = (
            f"object {hexd[:12]} in {os.fspath(objects.root)!r} was corrupt (its bytes hash to {got[:12]}) and is "
            f"removed; {where} was left as it was: run it again to fetch the object from the remote"
        )
        raise IntegrityError(msg)


def _copy(src: int, dst: int) -> tuple[str, int]:
    return copy_hashing(src, dst)


def _hash_path(path: str) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as f:
        while data := f.read(CHUNK):
            h.update(data)
            size += len(data)
    return h.hexdigest(), size


def _prune(folder: Path, top: Path) -> None:
    """Remove folders left empty by removed files, up to (not including) ``top``."""
    while folder != top and top in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


__all__ = ["ADDED", "MODIFIED", "REMOVED", "UNCHANGED", "Change", "NewTree", "apply", "plan", "write_verified"]
