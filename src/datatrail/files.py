"""Reading and writing local files that someone else may have planted.

A cloned repository, an event log or a tracking database can name any path: a
FIFO that blocks the reader forever, ``/dev/zero``, a symlink out of the
project, a symlink where the user asked for output. :func:`read_regular` reads
regular files only, within a folder and a size when asked; :func:`replace_file`
writes a new file and renames it into place, never through a symlink.

>>> data = read_regular(Path("dvc.lock"), within=Path("."), limit=10 << 20)  # doctest: +SKIP
>>> with replace_file(Path("lineage.html")) as out:                        # doctest: +SKIP
...     out.write(text)
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from datatrail.core.errors import InvalidInput, NotFound

# Opening a FIFO for reading blocks until a writer comes; with O_NONBLOCK it returns at once and fstat says what it is.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path``, symlinks resolved, is ``folder`` or under it (symlinks of ``folder`` resolved too)."""
    real, base = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, base]) == base


def read_regular(path: Path, *, within: Path | None = None, limit: int | None = None) -> bytes:
    """The bytes of the regular file at ``path``, refused in one line naming it otherwise.

    Refused: a FIFO, socket, device or folder (never opened in a way that
    blocks), a file larger than ``limit`` bytes, and with ``within`` a path
    that resolves outside that folder (a symlink or ``..`` leading out).
    """
    name = os.fspath(path)
    if within is not None and not inside(path, within):
        msg = f"{name!r} leads out of {os.fspath(within)!r} (a symlink or '..'); datatrail reads only files inside it"
        raise InvalidInput(msg)
    real = os.path.realpath(path)
    try:
        # O_NOFOLLOW on the resolved path: a symlink swapped in since realpath is refused, not followed.
        fd = os.open(real, _READ_FLAGS)
    except FileNotFoundError:
        msg = f"{name!r} does not exist; check the path"
        raise NotFound(msg) from None
    except OSError as exc:
        msg = f"cannot read {name!r}: {exc.strerror or exc}"
        raise InvalidInput(msg) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            msg = f"cannot read {name!r}: it is not a regular file (a folder, FIFO, socket or device)"
            raise InvalidInput(msg)
        if limit is not None and st.st_size > limit:
            msg = f"cannot read {name!r}: {st.st_size} bytes, more than the {limit} allowed for it"
            raise InvalidInput(msg)
        chunks = []
        total = 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if limit is not None and total > limit:  # it grew while being read
                msg = f"cannot read {name!r}: more than the {limit} bytes allowed for it"
                raise InvalidInput(msg)
        return b"".join(chunks)
    finally:
        os.close(fd)


@contextmanager
def replace_file(path: Path, *, force: bool = False) -> Iterator[TextIO]:
    """A text file that replaces ``path`` when the block ends, and is removed if it fails.

    It is written as a new file beside ``path`` (created exclusively, so no
    planted file or symlink is opened) and renamed over it: the file appears
    whole or not at all. A symlink at ``path`` (committed in a repository, say)
    is refused, since writing through it would overwrite whatever it points
    at; ``force`` replaces the link itself, leaving its target alone.
    """
    name = os.fspath(path)
    if path.is_symlink() and not force:
        msg = (
            f"{name!r} is a symlink (to {os.readlink(path)!r}); not writing through it: "
            "remove it, give another path, or pass --force to replace the link with the file"
        )
        raise InvalidInput(msg)
    if path.is_dir() and not path.is_symlink():
        msg = f"{name!r} is a folder; give a file name for the output"
        raise InvalidInput(msg)
    folder = path.parent
    import secrets  # start-up: `random` is only needed when a file is written

    scratch = folder / f".{path.name}.{secrets.token_hex(6)}.partial"
    try:
        fd = os.open(scratch, _NEW_FLAGS, 0o666)
    except OSError as exc:
        reason = "the folder does not exist" if exc.errno == errno.ENOENT else exc.strerror or str(exc)
        msg = f"cannot write {name!r}: {reason}; give a path in a folder you can write to"
        raise InvalidInput(msg) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yield out
        try:
            os.replace(scratch, path)
        except OSError as exc:
            msg = f"cannot write {name!r}: {exc.strerror or exc}; give a path in a folder you can write to"
            raise InvalidInput(msg) from None
    except BaseException:
        with contextlib.suppress(OSError):
            scratch.unlink()
        raise


__all__ = ["inside", "read_regular", "replace_file"]
