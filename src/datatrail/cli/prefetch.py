"""Hash a big file named on the command line while the CLI is still starting up.

``datatrail add big.bin`` spends ~0.3 s importing typer, pydantic and
SQLAlchemy before it could start reading. SHA-256 in hashlib releases the GIL,
so a thread started first thing hashes on the second core while the main
thread imports; the add command then finds the digest ready. Only plain,
unambiguous command lines of files of at least 64 MiB are prefetched:
anything else is left to the normal path, which gives the same digest.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datatrail.hashing import StatKey

MIN_SIZE = 64 * 1024 * 1024
# The thread re-takes the GIL once per chunk; while the main thread imports,
# each re-take may wait a whole switch interval, so that is shortened meanwhile.
# Chunks much beyond the CPU cache are slower (16 MiB: a third slower).
CHUNK = 2 * 1024 * 1024
SWITCH_INTERVAL = 0.0001
_VALUE_OPTIONS = {"--store", "--name", "-n", "--namespace", "--message", "-m", "--tag", "-t"}


class Prefetch:
    """The digest of one file, computed in a background thread."""

    def __init__(self, path: str, key: StatKey) -> None:
        self.path = path
        self.key = key
        self.digest: str | None = None
        self._thread = threading.Thread(target=self._run, name="datatrail-prefetch", daemon=True)
        self._interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        self._thread.start()

    def _run(self) -> None:
        from datatrail.hashing import hash_stream, stat_key  # start-up: only a big file's add hashes here

        try:
            digest, size, after = hash_stream(self.path, CHUNK)
        except OSError:
            return  # the normal path will report it
        if size == self.key[2] and stat_key(after) == self.key:
            self.digest = digest

    def lookup(self, keys: Sequence[StatKey]) -> dict[StatKey, str]:
        if self.key not in keys:
            return {}
        self._thread.join()
        sys.setswitchinterval(self._interval)
        return {self.key: self.digest} if self.digest is not None else {}

    def store(self, items: Sequence[tuple[StatKey, str]]) -> None:
        return None


_started: dict[str, Prefetch] = {}


def start_from_argv(argv: Sequence[str]) -> None:
    """Start hashing the PATH of ``datatrail [--store URI] add [options] PATH`` if it is a big file."""
    args = list(argv)
    try:
        i = 0
        while args[i].startswith("-"):
            i += 2 if args[i] in _VALUE_OPTIONS else 1
        if args[i] != "add":
            return
        i += 1
        while args[i].startswith("-"):
            i += 2 if args[i] in _VALUE_OPTIONS else 1
        path = args[i]
        st = os.stat(path)
    except (IndexError, OSError, ValueError):
        return
    if stat.S_ISREG(st.st_mode) and st.st_size >= MIN_SIZE:
        from datatrail.hashing import stat_key  # start-up: every other command line skips hashing's imports

        _started[os.path.abspath(path)] = Prefetch(path, stat_key(st))


def take(path: str | os.PathLike[str]) -> Prefetch | None:
    """The prefetch started for ``path``, if any (each is handed out once)."""
    return _started.pop(os.path.abspath(path), None)
