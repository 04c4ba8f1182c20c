"""Profiling a large Parquet file on all cores: row-group ranges in worker processes, merged exactly.

:func:`profile_parquet` splits the file's row groups into contiguous ranges
(a few per core), profiles them in this process and in ``cores - 1`` worker
processes, and merges the partial profiles in
row order with :meth:`datatrail.profile_builder.ProfileBuilder.merge`. Every part of a
profile merges exactly: counts add, distinct hash sets unite (their HyperLogLog
registers take the maximum), min/max compare, the per-batch moments are folded
in the same order, top values add up, the sample keeps the values of smallest
key and the duplicate-row count comes from the union of the row hashes. The
batches are those one process reads (:func:`datatrail.scan.parquet_segments`),
so the profile is identical to a one-process profile of the same file.

The workers are fresh interpreters (``python -c``) that import this module
only: neither ``fork`` (unsafe with threads) nor ``multiprocessing``'s
``spawn``, which would run the caller's main script again in each worker.
Tasks and partial profiles travel pickled over the workers' stdin and stdout.
Small files (fewer than MIN_CELLS cells, or one run of row groups) are profiled
in this process: starting a worker costs about half a second.
``DATATRAIL_PROFILE_WORKERS=1`` always profiles in one process;
``DATATRAIL_PROFILE_WORKERS=N`` uses at most N processes (default: the cores, at most 8).

>>> from datatrail.profile_parallel import profile_parquet   # doctest: +SKIP
>>> profile_parquet("big.parquet", "parquet").result("parquet")["row_count"]  # doctest: +SKIP
10000000
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from datatrail.core.errors import InvalidInput
from datatrail.profile_builder import ProfileBuilder
from datatrail.scan import BATCH_ROWS, parquet_segments

WORKERS_ENV = "DATATRAIL_PROFILE_WORKERS"
MIN_CELLS = 10_000_000  # rows x columns: below this one process is about as fast
DEFAULT_MAX_PROCESSES = 8  # without DATATRAIL_PROFILE_WORKERS: each process holds a batch and its sketches
TASKS_PER_PROCESS = 4  # ranges per process, so that a process slowed by other load does less


def workers() -> int:
    """How many processes may profile: DATATRAIL_PROFILE_WORKERS, else the usable cores (at most 8)."""
    text = os.environ.get(WORKERS_ENV, "").strip()
    if text:
        try:
            wanted = int(text)
        except ValueError:
            msg = f"{WORKERS_ENV}={text!r} is not a number: set it to how many processes may profile (1: no workers)"
            raise InvalidInput(msg) from None
        if wanted < 1:
            msg = f"{WORKERS_ENV}={text!r} must be at least 1 (1 profiles in this process)"
            raise InvalidInput(msg)
    else:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        wanted = min(cores, DEFAULT_MAX_PROCESSES)
    return wanted


def plan(path: Path, processes: int, min_cells: int) -> list[tuple[list[list[int]], int]] | None:
    """Contiguous ranges of row-group runs with their first row number, or None for one process."""
    if processes < 2:
        return None
    try:
        metadata = pq.read_metadata(str(path))
    except (OSError, pa.ArrowException):
        return None  # one process reads it and reports the error as usual
    segments = parquet_segments(metadata)
    if len(segments) < 2 or metadata.num_rows * max(1, metadata.num_columns) < min_cells:
        return None
    sizes = [sum(metadata.row_group(i).num_rows for i in segment) for segment in segments]
    parts = min(len(segments), processes * TASKS_PER_PROCESS)
    share = max(1, metadata.num_rows) / parts
    ranges: list[tuple[list[list[int]], int]] = []
    first = 0
    for segment, size in zip(segments, sizes, strict=True):
        if not ranges or (first >= share * len(ranges) and len(ranges) < parts):
            ranges.append(([], first))
        ranges[-1][0].append(segment)
        first += size
    return ranges


def profile_range(path: str, fmt: str, segments: list[list[int]], first_row: int) -> ProfileBuilder:
    """The partial profile of some runs of row groups (in a worker process or this one)."""
    builder = ProfileBuilder(first_row)
    try:
        with pq.ParquetFile(path) as f:
            for segment in segments:
                for batch in f.iter_batches(batch_size=BATCH_ROWS, row_groups=segment):
                    builder.add(batch)
    except (OSError, pa.ArrowException) as exc:
        # The same one-line message as a one-process profile (scan.scan_path).
        msg = f"cannot profile {path!r} as {fmt}: {' '.join(str(exc).split())[:300]}"
        raise InvalidInput(msg) from None
    builder.compact()
    return builder


def profile_parquet(
    path: str | os.PathLike[str], fmt: str, processes: int | None = None, min_cells: int = MIN_CELLS
) -> ProfileBuilder | None:
    """The merged profile builder of a local Parquet file, or None when one process should do it.

    ``processes`` defaults to :func:`workers`; ``min_cells`` is the size below which it returns None.
    Workers take ranges from the start, this process from the end, until none is left. A worker
    that cannot start or dies leaves its ranges to this process; an unreadable range raises the
    InvalidInput a one-process profile raises.
    """
    name = os.fspath(Path(path))
    count = workers() if processes is None else processes
    ranges = plan(Path(name), count, min_cells)
    if ranges is None:
        return None
    todo = deque(range(len(ranges)))
    lock = threading.Lock()
    done: dict[int, ProfileBuilder | InvalidInput] = {}

    def take(front: bool) -> int | None:
        with lock:
            if not todo:
                return None
            return todo.popleft() if front else todo.pop()

    def serve(worker: _Worker) -> None:
        try:
            while (i := take(front=True)) is not None:
                try:
                    done[i] = worker.run((name, fmt, *ranges[i]))
                except BaseException:
                    with lock:
                        todo.appendleft(i)  # this process does it instead
                    raise
                if isinstance(done[i], InvalidInput):
                    with lock:
                        todo.clear()  # unreadable: no use reading on
        except (OSError, EOFError, pickle.PickleError, TypeError, ValueError):
            pass  # the worker died or never started: this process does the rest
        finally:
            worker.finish()

    pool = [_Worker() for _ in range(min(count, len(ranges)) - 1)]
    threads = [threading.Thread(target=serve, args=(worker,), daemon=True) for worker in pool]
    try:
        for thread in threads:
            thread.start()
        try:
            while (i := take(front=False)) is not None:
                done[i] = profile_range(name, fmt, *ranges[i])
            for thread in threads:
                thread.join()
            while (i := take(front=False)) is not None:  # a range a worker gave back when it died
                done[i] = profile_range(name, fmt, *ranges[i])
        except BaseException:
            with lock:
                todo.clear()
            for worker in pool:
                worker.kill()  # no use finishing their ranges
            raise
        finally:
            for thread in threads:
                if thread.is_alive():
                    thread.join()
        failed = sorted(i for i, part in done.items() if isinstance(part, InvalidInput))
        if failed:  # the first unreadable range, as one process would meet it
            raise InvalidInput(str(done[failed[0]]))
        builder = ProfileBuilder()
        for i in range(len(ranges)):
            part = done.pop(i)
            assert isinstance(part, ProfileBuilder)
            builder.merge(part)
        return builder
    finally:
        for worker in pool:  # told to stop already; exiting takes them a moment, overlapping the merge
            worker.wait()


class _Worker:
    """A worker process (``python -c``: it imports this module only, never the caller's main script)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        root = str(Path(__file__).resolve().parent.parent)
        code = f"import sys; sys.path.insert(0, {root!r}); from datatrail.profile_parallel import serve; serve()"
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
        except OSError:
            self.proc = None

    def run(self, task: tuple[str, str, list[list[int]], int]) -> ProfileBuilder | InvalidInput:
        if self.proc is None or self.proc.stdin is None or self.proc.stdout is None:
            msg = "no worker process"
            raise OSError(msg)
        pickle.dump(task, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self.proc.stdin.flush()
        result = pickle.load(self.proc.stdout)
        if not isinstance(result, ProfileBuilder | InvalidInput):
            msg = "unexpected answer from a profiling worker"
            raise TypeError(msg)
        return result

    def finish(self) -> None:
        """No more tasks: the worker exits when it reads the end of its input."""
        if self.proc is not None and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.proc.kill()

    def wait(self) -> None:
        if self.proc is None:
            return
        self.finish()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def serve() -> None:
    """A worker's loop: read a task from stdin, answer with the partial profile (or the error) on stdout."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, not into the answers
    tasks = sys.stdin.buffer
    while True:
        try:
            path, fmt, segments, first_row = pickle.load(tasks)
        except EOFError:
            return
        result: ProfileBuilder | InvalidInput
        try:
            result = profile_range(path, fmt, segments, first_row)
        except InvalidInput as exc:
            result = exc
        pickle.dump(result, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
