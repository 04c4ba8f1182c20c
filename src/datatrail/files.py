"""Reading local files that someone else may have planted.

A cloned repository, an event log or a tracking database can name any path: a
FIFO that blocks the reader forever, ``/dev/zero``, a symlink out of the
project. :func:`read_regular` reads regular files only, within a folder and a
size when asked.

>>> data = read_regular(Path("dvc.lock"), within=Path("."), limit=10 << 20)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from datatrail.core.errors import InvalidInput, NotFound

# Opening a FIFO for reading blocks until a writer comes; with O_NONBLOCK it returns at once and fstat says what it is.
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


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


__all__ = ["inside", "read_regular"]
