"""Hash a big file named on the command line while the CLI is still starting up.

``datatrail add big.bin`` spends ~0.3 s importing typer and SQLAlchemy before
it could start reading. Where the system can fork, a child process started
first thing hashes the file on the second core and sends the digest back
through a pipe: it shares no GIL with the imports, so neither waits for the
other. Elsewhere a thread does it (SHA-256 in hashlib releases the GIL, but the
thread re-takes it once per chunk while the main thread imports). The add
command then finds the digest ready. Only plain, unambiguous command lines of
files of at least 64 MiB are prefetched: anything else is left to the normal
path, which gives the same digest.
"""

from __future__ import annotations

import atexit
import os
import signal
import stat
import sys
import threading
from collections.abc import Sequence

from datatrail.hashing import StatKey, hash_stream, stat_key

MIN_SIZE = 64 * 1024 * 1024
# The thread re-takes the GIL once per chunk; while the main thread imports,
# each re-take may wait a whole switch interval, so that is shortened meanwhile.
# Chunks much beyond the CPU cache are slower (16 MiB: a third slower).
CHUNK = 2 * 1024 * 1024
FORK_CHUNK = 1024 * 1024  # a child has the GIL to itself: buffers that stay in the CPU cache (hashing/local.py)
SWITCH_INTERVAL = 0.0001
_VALUE_OPTIONS = {"--store", "--name", "-n", "--namespace", "--message", "-m", "--tag", "-t"}


class Prefetch:
    """The digest of one file, computed in a child process (or a background thread)."""

    def __init__(self, path: str, key: StatKey) -> None:
        self.path = path
        self.key = key
        self.digest: str | None = None
        self._pid: int | None = None
        self._pipe: int | None = None
        self._thread: threading.Thread | None = None
        # Forking is safe while this process has no other thread (the CLI's first step).
        if hasattr(os, "fork") and threading.active_count() == 1:
            self._fork()
        else:
            self._thread = threading.Thread(target=self._run, name="datatrail-prefetch", daemon=True)
            self._interval = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL)
            self._thread.start()

    def _fork(self) -> None:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: hash, report, and leave without running any of the parent's exit code
            status = 0
            try:
                os.close(read_end)
                os.write(write_end, (self._digest(FORK_CHUNK) or "").encode())
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        os.close(write_end)
        self._pid, self._pipe = pid, read_end
        atexit.register(self._stop)  # a command that ends early does not leave the child hashing

    def _digest(self, chunk: int) -> str | None:
        try:
            digest, size, after = hash_stream(self.path, chunk)
        except OSError:
            return None  # the normal path will report it
        return digest if size == self.key[2] and stat_key(after) == self.key else None

    def _run(self) -> None:
        self.digest = self._digest(CHUNK)

    def _collect(self) -> None:
        if self._pipe is not None:
            parts = []
            while part := os.read(self._pipe, 128):
                parts.append(part)
            os.close(self._pipe)
            self._pipe = None
            assert self._pid is not None
            os.waitpid(self._pid, 0)
            self._pid = None
            text = b"".join(parts).decode()
            self.digest = text if len(text) == 64 else None
        elif self._thread is not None:
            self._thread.join()
            self._thread = None
            sys.setswitchinterval(self._interval)

    def _stop(self) -> None:
        if self._pid is not None:
            try:
                os.kill(self._pid, signal.SIGTERM)
                os.waitpid(self._pid, 0)
            except OSError:
                pass
            self._pid = None

    def lookup(self, keys: Sequence[StatKey]) -> dict[StatKey, str]:
        if self.key not in keys:
            return {}
        self._collect()
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
        _started[os.path.abspath(path)] = Prefetch(path, stat_key(st))


def take(path: str | os.PathLike[str]) -> Prefetch | None:
    """The prefetch started for ``path``, if any (each is handed out once)."""
    return _started.pop(os.path.abspath(path), None)
