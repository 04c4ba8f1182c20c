"""Hash the big files named on the command line while the CLI is still starting up.

``datatrail add big.bin`` spends ~0.3 s importing typer, pydantic and
SQLAlchemy before it could start reading. SHA-256 in hashlib releases the GIL,
so a thread started first thing hashes on the second core while the main
thread imports; the add command then finds the digest ready. A folder of big
files (``datatrail add images/``) is hashed the same way by one thread per
core, file by file, so that every core hashes from the first moment. Only
plain, unambiguous command lines of at least 64 MiB in files of at least
2 MiB are prefetched, in folders of at most 256 entries (a tree of many small
files is left alone: listing it twice would cost more than it saves):
anything else is left to the normal path, which gives the same digests.
"""

from __future__ import annotations

import os
import stat
import sys
import threading

from datatrail.core.filedigest import hash_stream, stat_key

TYPE_CHECKING = False  # not typing's: its import (with re and enum) would come before the first byte hashed
if TYPE_CHECKING:
    from collections.abc import Sequence

    from datatrail.core.filedigest import StatKey

MIN_SIZE = 64 * 1024 * 1024
# The thread re-takes the GIL once per mapped window of a file (core/filedigest.py), or per
# chunk read where a file cannot be mapped; while the main thread imports, each re-take may
# wait a whole switch interval, so that is shortened meanwhile. Read chunks much beyond the
# CPU cache are slower (16 MiB: a third slower).
CHUNK = 2 * 1024 * 1024
SWITCH_INTERVAL = 0.0001
_VALUE_OPTIONS = {"--store", "--name", "-n", "--namespace", "--message", "-m", "--tag", "-t"}


MAX_ENTRIES = 256


class Prefetch:
    """The digests of some files, computed in background threads (one per core at most)."""

    def __init__(self, files: Sequence[tuple[str, StatKey]]) -> None:
        self._files = list(files)
        self._digests: dict[StatKey, str] = {}
        self._done = {key: threading.Event() for _, key in self._files}
        self._next = iter(self._files)
        self._lock = threading.Lock()
        self._interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        count = min(len(self._files), os.cpu_count() or 1)
        for _ in range(count):
            threading.Thread(target=self._run, name="datatrail-prefetch", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._lock:
                path, key = next(self._next, (None, None))
            if path is None or key is None:
                return
            try:
                digest, size, after = hash_stream(path, CHUNK)
                if size == key[2] and stat_key(after) == key:
                    self._digests[key] = digest
            except Exception:  # no digest: the normal path hashes the file again and reports any error
                pass
            finally:
                self._done[key].set()

    def lookup(self, keys: Sequence[StatKey]) -> dict[StatKey, str]:
        wanted = [k for k in keys if k in self._done]
        for key in wanted:
            self._done[key].wait()
        if all(done.is_set() for done in self._done.values()):
            sys.setswitchinterval(self._interval)
        return {k: self._digests[k] for k in wanted if k in self._digests}

    def store(self, items: Sequence[tuple[StatKey, str]]) -> None:
        return None


_started: dict[str, Prefetch] = {}


def _big_files(folder: str) -> list[tuple[str, os.stat_result]]:
    """The regular files of at least CHUNK bytes under ``folder`` (symlinks not followed), by path;
    none when the tree has more than MAX_ENTRIES entries."""
    found: list[tuple[str, os.stat_result]] = []
    seen = 0
    stack = [folder]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                seen += 1
                if seen > MAX_ENTRIES:
                    return []
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    if st.st_size >= CHUNK:
                        found.append((entry.path, st))
    return sorted(found)


def start_from_argv(argv: Sequence[str]) -> None:
    """Start hashing the PATH of ``datatrail [--store URI] add [options] PATH``: a big file, or a folder's big files."""
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
        if stat.S_ISREG(st.st_mode):
            files = [(path, st)]
        elif stat.S_ISDIR(st.st_mode):
            files = _big_files(path)
        else:
            return
    except (IndexError, OSError, ValueError):
        return
    if sum(s.st_size for _, s in files) >= MIN_SIZE:
        _started[os.path.abspath(path)] = Prefetch([(p, stat_key(s)) for p, s in files])


def take(path: str | os.PathLike[str]) -> Prefetch | None:
    """The prefetch started for ``path``, if any (each is handed out once)."""
    return _started.pop(os.path.abspath(path), None)
