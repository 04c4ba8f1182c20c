"""Hash what a backend listed: cached digests first, the rest read in a thread pool, one result.

Every backend hashes the same way. A backend lists its entries (a file, a
tree, an object, a prefix) with the key its cache knows each one by, and
passes a :class:`Reader` that reads one entry's digest. :func:`build` does the
rest: it looks every listed key up in the cache, groups what is left into
tasks (small entries ``BATCH`` to a task, each big one alone), reads them in a
thread pool, reports progress, caches only what the reader vouches for, and
returns the digest of the file or of the directory's manifest.

>>> from datatrail.hashing.local import FileReader, list_path   # doctest: +SKIP
>>> entries, is_dir = list_path("data/")                          # doctest: +SKIP
>>> build(entries, FileReader(), is_dir=is_dir).digest            # doctest: +SKIP
Digest(algorithm='sha256', hex='9f86d0…')
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, Protocol, TypeVar

from datatrail.core.model import Digest, FileEntry

# Small entries are handed to threads in batches: one task per 4 KiB file costs
# more in executor overhead than the hashing itself.
BATCH = 64
CONTENT = "content"
"""How a digest read from the bytes (now, or when it was cached) is said to be obtained."""

ProgressFn = Callable[[int, int], None]
"""Called with (files done, bytes done) increments as hashing proceeds."""

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Entry(NamedTuple, Generic[K]):
    """One file or object of a listing."""

    rel: str  # its path in the manifest, '/'-separated ('' for a single file)
    path: str  # where the reader finds it
    size: int  # its size as listed
    key: K  # what the cache knows it by


Read = tuple[str, int, int, str, V | None]
"""What reading one entry gave: (hex SHA-256, size, bytes read, how it was obtained, what to cache or None).

The size is the entry's as hashed (the bytes read, or the size the store gave
with its checksum). The last item is the value to cache under the entry's key,
or None when what was read may not match the listing (it changed meanwhile).
"""


class DigestCache(Protocol[K, V]):
    """Remembers what a reader obtained for a key, as long as the key is unchanged."""

    def lookup(self, keys: Sequence[K]) -> dict[K, V]:
        """The values remembered for those of ``keys`` it knows."""
        ...

    def store(self, items: Sequence[tuple[K, V]]) -> None:
        """Remember each value under its key; failing to only costs speed next time."""
        ...


class Reader(Protocol[K, V]):
    """What a backend does beside listing: read one entry's digest, and say what a cached value gives."""

    @property
    def batch_below(self) -> int:
        """Entries smaller than this are read ``BATCH`` to a task; bigger ones one to a task."""
        ...

    @property
    def thread_name(self) -> str:
        """The name of the pool's threads."""
        ...

    def reuse(self, cached: V) -> tuple[str, str] | None:
        """(hex SHA-256, how it was obtained) of a cached value, or None to read the entry anyway."""
        ...

    def read(self, entry: Entry[K], progress: ProgressFn | None) -> Read[V]:
        """Read one entry's digest.

        ``progress`` is given only for an entry read in a task of its own (at
        least ``batch_below`` bytes): the reader reports its bytes through it as
        they come. :func:`build` reports the entry itself once read, and the
        bytes of the entries it read in batches.
        """
        ...


@dataclass(frozen=True)
class HashResult:
    """The digest of a file or directory, with the manifest for directories."""

    digest: Digest
    size: int
    files: tuple[FileEntry, ...] | None  # None for a single file
    bytes_read: int = 0
    source: str = CONTENT  # how the digests were obtained: CONTENT, "store-checksum", or both joined by "+"
    vouched: bool = field(
        default=False, compare=False
    )  # every digest came from the cache or was cached now: the listing's keys vouch for it


def manifest_digest(entries: Iterable[FileEntry]) -> Digest:
    """The directory digest of an already sorted manifest."""
    h = hashlib.sha256()
    for e in entries:
        h.update(f"{e.path}\t{e.size}\t{e.digest.hex}\n".encode())
    return Digest.sha256(h.hexdigest())


def default_workers() -> int:
    """The default number of threads: reads wait on the disk or the network, and hashing releases the GIL."""
    return min(32, (os.cpu_count() or 2) * 4)


def build(
    entries: Sequence[Entry[K]],
    reader: Reader[K, V],
    *,
    is_dir: bool,
    cache: DigestCache[K, V] | None = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> HashResult:
    """Hash the listed entries: a single file's digest, or (``is_dir``) the digest of their manifest.

    ``entries`` are sorted by ``rel``; a single file is one entry. ``workers``
    bounds the threads (by default :func:`default_workers`; 1 reads in this thread).
    """
    done: list[tuple[str, int, int, str] | None] = [None] * len(entries)
    todo: list[int] = []
    known = cache.lookup([e.key for e in entries]) if cache is not None else {}
    if known:
        reuse = reader.reuse
        for i, e in enumerate(entries):
            hit = known.get(e.key)
            got = reuse(hit) if hit is not None else None
            if got is None:
                todo.append(i)
            else:
                done[i] = (got[0], e.size, 0, got[1])
    else:
        todo = list(range(len(entries)))
    if progress is not None and len(todo) < len(entries):
        progress(len(entries) - len(todo), 0)

    fresh: list[tuple[K, V]] = []
    unvouched = 0
    for i, (hexd, size, read, how, keep) in _read_all(entries, todo, reader, progress, workers):
        done[i] = (hexd, size, read, how)
        if keep is not None:
            fresh.append((entries[i].key, keep))
        else:
            unvouched += 1
    if cache is not None and fresh:
        cache.store(fresh)

    results = [d for d in done if d is not None]
    source = "+".join(sorted({d[3] for d in results})) or CONTENT
    bytes_read = sum(d[2] for d in results)
    if not is_dir:
        hexd, size, _, _ = results[0]
        return HashResult(Digest.sha256(hexd), size, None, bytes_read, source, not unvouched)
    files = tuple(FileEntry(e.rel, d[1], Digest.sha256(d[0])) for e, d in zip(entries, results, strict=True))
    return HashResult(manifest_digest(files), sum(f.size for f in files), files, bytes_read, source, not unvouched)


def _read_all(
    entries: Sequence[Entry[K]],
    todo: list[int],
    reader: Reader[K, V],
    progress: ProgressFn | None,
    workers: int | None,
) -> Iterable[tuple[int, Read[V]]]:
    """(index, what was read) for every entry in ``todo``, read in tasks by a pool of threads."""
    below = reader.batch_below
    small = [i for i in todo if entries[i].size < below]
    tasks = [[i] for i in todo if entries[i].size >= below]
    tasks.extend(small[j : j + BATCH] for j in range(0, len(small), BATCH))
    read = reader.read

    def work(task: list[int]) -> list[tuple[int, Read[V]]]:
        """Read one task's entries in turn (in a pool thread), reporting each."""
        out = []
        for i in task:
            entry = entries[i]
            alone = entry.size >= below
            got = read(entry, progress if alone else None)
            out.append((i, got))
            if progress is not None:
                progress(1, 0 if alone else got[2])
        return out

    count = min(workers or default_workers(), len(tasks))
    if count <= 1:
        return [item for task in tasks for item in work(task)]
    pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix=reader.thread_name)
    try:
        return [item for finished in pool.map(work, tasks) for item in finished]
    finally:
        # On Ctrl-C or an error, drop the queued tasks instead of reading them all first.
        pool.shutdown(wait=True, cancel_futures=True)
