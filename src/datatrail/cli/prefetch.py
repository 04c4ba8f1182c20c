"""Hash the big files named on the command line while the CLI is still starting up.

``datatrail add big.bin`` spends ~0.4 s of CPU importing typer and SQLAlchemy
and readying the store before it could start reading. So the hashing starts
first, in forked child processes (one per core at most), while the parent
imports; the add command then finds the digests ready. Processes, not threads:
a hashing thread re-takes the GIL twice per chunk, and while the main thread
imports (unmarshalling, compiling, mostly in C with the GIL held) each re-take
waits; a child shares nothing with the imports. A folder of big files
(``datatrail add images/``) is hashed file by file, largest first, each child
taking the next file as it finishes one, so that every core hashes from the
first moment to the last file. Where a process cannot fork (Windows), or
already runs other threads (a fork would copy their locks held), threads do
the same work. Only plain, unambiguous command lines of at least 64 MiB in
files of at least 2 MiB are prefetched, in folders of at most 256 entries (a
tree of many small files is left alone: listing it twice would cost more than
it saves): anything else is left to the normal path, which gives the same
digests.
"""

from __future__ import annotations

import os
import stat
import sys

from datatrail.core.filedigest import hash_mapped, hash_stream, stat_key

TYPE_CHECKING = False  # not typing's: its import (with re and enum) would come before the first byte hashed
if TYPE_CHECKING:
    from collections.abc import Sequence

    from datatrail.core.filedigest import StatKey

MIN_SIZE = 64 * 1024 * 1024
# A hashing thread re-takes the GIL twice per chunk read; while the main thread imports, each re-take may
# wait a whole switch interval, so that is shortened meanwhile. Read chunks much beyond the
# CPU cache are slower (16 MiB: a third slower).
CHUNK = 2 * 1024 * 1024
SWITCH_INTERVAL = 0.0001
_VALUE_OPTIONS = {"--store", "--name", "-n", "--namespace", "--message", "-m", "--tag", "-t"}


MAX_ENTRIES = 256


class Prefetch:
    """The digests of some files, computed in background processes or threads (one per core at most)."""

    def __init__(self, files: Sequence[tuple[str, StatKey]]) -> None:
        self._files = list(files)
        self._digests: dict[StatKey, str] = {}
        count = min(len(self._files), os.cpu_count() or 1)
        self._pending = {key for _, key in self._files}
        self._pids: list[int] = []
        self._buffer = b""
        self._results = self._fork(count) if _can_fork() else -1
        self._forked = bool(self._pids)
        if not self._forked:
            import threading  # only without fork: the forking path starts hashing without it

            self._done = {key: threading.Event() for _, key in self._files}
            self._next = iter(self._files)
            self._lock = threading.Lock()
            self._interval = sys.getswitchinterval()
            sys.setswitchinterval(SWITCH_INTERVAL)
            for _ in range(count):
                threading.Thread(target=self._run, name="datatrail-prefetch", daemon=True).start()

    # ------------------------------------------------------------ processes

    def _fork(self, count: int) -> int:
        """Start up to ``count`` children that take the files' indexes from one pipe; the pipe of their
        results (closed, -1, when not even one could start: threads do the work then)."""
        work_r, work_w = os.pipe()
        os.write(work_w, bytes(range(len(self._files))))  # at most MAX_ENTRIES bytes: never blocks
        os.close(work_w)
        results_r, results_w = os.pipe()
        parent = os.getpid()
        try:
            for _ in range(count):
                pid = os.fork()
                if pid == 0:
                    os.close(results_r)
                    _child([path for path, _ in self._files], work_r, results_w, parent)
                self._pids.append(pid)
        except OSError:  # no more processes (EAGAIN): those started do the work, or threads do it
            pass
        finally:
            os.close(work_r)
            os.close(results_w)
        if not self._pids:
            os.close(results_r)
            return -1
        return results_r

    def _collect(self, wanted: set[StatKey]) -> None:
        """Read the children's results until every key of ``wanted`` is in (or they have all exited)."""
        while self._pending & wanted:
            data = os.read(self._results, 65536)
            if not data:  # every child has exited: what is still pending gets no digest
                self._pending.clear()
                break
            *lines, self._buffer = (self._buffer + data).split(b"\n")
            for raw in lines:
                index, digest, *numbers = raw.decode().split()
                key = self._files[int(index)][1]
                self._pending.discard(key)
                if digest != "-" and tuple(int(n) for n in numbers) == (key[2], *key):
                    self._digests[key] = digest
        if not self._pending:
            self._finish()

    def _finish(self) -> None:
        if self._results >= 0:
            os.close(self._results)
            self._results = -1
        for pid in self._pids:
            os.waitpid(pid, 0)  # each child's CPU time then counts as this command's (getrusage)
        self._pids.clear()

    # ------------------------------------------------------------ threads

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

    # ------------------------------------------------------------ StatCache

    def lookup(self, keys: Sequence[StatKey]) -> dict[StatKey, str]:
        if self._forked:
            wanted = set(keys) & {key for _, key in self._files}
            self._collect(wanted)
        else:
            wanted = {k for k in keys if k in self._done}
            for key in wanted:
                self._done[key].wait()
            if all(done.is_set() for done in self._done.values()):
                sys.setswitchinterval(self._interval)
        return {k: self._digests[k] for k in wanted if k in self._digests}

    def store(self, items: Sequence[tuple[StatKey, str]]) -> None:
        return None


def _can_fork() -> bool:
    """Whether hashing may fork: a platform with fork, and no other thread in this process yet."""
    if not hasattr(os, "fork"):
        return False
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() == 1


def _child(paths: list[str], work: int, results: int, parent: int) -> None:
    """A hashing child: take file indexes from ``work`` until none is left, write one line per file to
    ``results``, exit without the interpreter's shutdown. It prints nothing (Ctrl-C, or its parent's
    exit, just ends it) and stops at the next window once its parent is gone.

    It hashes through memory maps (``hash_mapped``: no copy of the bytes, about 6% less CPU than reads),
    which a thread of the CLI must not: a file truncated while mapped kills the process (SIGBUS). Here
    that is only this child: the file it was hashing gets no line, and the parent, once every child has
    exited, hashes it again by reads (``_collect``) and sees it changed. No core file is left behind."""
    try:
        import resource  # a small extension module

        resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
        faulthandler = sys.modules.get("faulthandler")  # enabled by a caller (pytest, -X faulthandler)
        if faulthandler is not None:
            faulthandler.disable()  # a bus error ends this child as planned: no traceback dumped on its way out
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)  # an error of its own is its parent's to report; its pipes close with it

        def orphaned(_files: int, _bytes: int) -> None:
            if os.getppid() != parent:
                os._exit(0)

        while index := os.read(work, 1):
            i = index[0]
            try:
                digest, size, after = hash_mapped(paths[i], progress=orphaned)
                line = f"{i} {digest} {size} {' '.join(str(n) for n in stat_key(after))}\n"
            except (OSError, ValueError):  # no digest (ValueError: cut shorter than its map, just before it):
                # the normal path hashes the file again and reports any error
                line = f"{i} -\n"
            os.write(results, line.encode())  # under PIPE_BUF: one whole line, never interleaved
    finally:
        os._exit(0)


_started: dict[str, Prefetch] = {}
adding = False
"""Whether the command line is an ``add`` (``datatrail.cli.script`` then skips the interpreter's teardown)."""


def _big_files(folder: str) -> list[tuple[str, os.stat_result]]:
    """The regular files of at least CHUNK bytes under ``folder`` (symlinks not followed), largest first;
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
    # Largest first: the last files taken are the shortest, so no core waits long on another's last file.
    return sorted(found, key=lambda f: (-f[1].st_size, f[0]))


def start_from_argv(argv: Sequence[str]) -> None:
    """Start hashing the PATH of ``datatrail [--store URI] add [options] PATH``: a big file, or a folder's big files."""
    args = list(argv)
    try:
        i = 0
        while args[i].startswith("-"):
            i += 2 if args[i] in _VALUE_OPTIONS else 1
        if args[i] != "add":
            return
        global adding  # one flag per process, set once from its command line
        adding = True
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


def started() -> bool:
    """Whether a prefetch was started and not yet taken."""
    return bool(_started)


def take(path: str | os.PathLike[str]) -> Prefetch | None:
    """The prefetch started for ``path``, if any (each is handed out once)."""
    return _started.pop(os.path.abspath(path), None)
