"""Writers of one SQLite store take turns on a lock file, so the next one starts at once.

SQLite lets one writer in at a time. A writer that finds the database locked
sleeps in SQLite's busy handler, with steps growing to 100 ms, however soon the
lock is free again: two server processes writing short transactions then spend
most of their time asleep. Before ``BEGIN IMMEDIATE`` each datatrail writer
takes an exclusive ``flock`` on ``<store>-writer.lock`` instead, retrying every
millisecond at most, and so starts within a millisecond of the previous
writer's commit. Writers of the same process already queue on a thread lock
(``Database.writers``).

The lock file only orders datatrail's own writers. Without it (Windows, a
read-only folder) or after waiting ``BUSY_TIMEOUT_S`` for it, a writer goes on
to SQLite, whose lock and busy timeout still keep the database safe. The
kernel drops the lock of a process that dies. No library fits: ``filelock``
polls every 50 ms by default, which is the delay this module removes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: SQLite's own locking only
    fcntl = None  # type: ignore[assignment]

BUSY_TIMEOUT_S = 60.0
_STEPS = (0.0001, 0.0002, 0.0005)  # then every millisecond


class WriterLock:
    """An exclusive lock on ``<database>-writer.lock``, opened on first use."""

    def __init__(self, database: Path, timeout: float = BUSY_TIMEOUT_S) -> None:
        self.path = database.with_name(database.name + "-writer.lock")
        self.timeout = timeout
        self._fd: int | None = None
        self._unusable = fcntl is None

    @contextmanager
    def held(self) -> Iterator[None]:
        fd = self._open()
        locked = fd is not None and self._acquire(fd)
        try:
            yield
        finally:
            if locked:
                assert fd is not None
                fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> int | None:
        if self._unusable:
            return None
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            except OSError:
                self._unusable = True  # a read-only folder, say: SQLite's locking alone
                return None
        return self._fd

    def _acquire(self, fd: int) -> bool:
        deadline = time.monotonic() + self.timeout
        step = 0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False  # SQLite's busy timeout decides from here
                time.sleep(_STEPS[step] if step < len(_STEPS) else 0.001)
                step += 1
            except OSError:
                self._unusable = True  # a file system without flock
                return False
