"""The hashing engine: cache, batching, threads, progress and manifest are the same for every backend."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Generic, TypeVar

import fsspec
import pytest

from datatrail.core.errors import InvalidInput
from datatrail.core.model import Digest, FileEntry
from datatrail.hashing import CONTENT, HashResult, hash_path
from datatrail.hashing import build as engine
from datatrail.hashing.build import BATCH, Entry, ProgressFn, Read, build
from datatrail.remote.fs import open_url
from datatrail.remote.hashing import hash_remote
from tests.conftest import write

K = TypeVar("K")
V = TypeVar("V")
OLD = time.time() - 3600  # an mtime well outside the racy window


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_of(files: dict[str, bytes]) -> tuple[str, tuple[FileEntry, ...]]:
    """The directory digest and manifest of DESIGN.md §1, computed without datatrail."""
    entries = tuple(FileEntry(p, len(d), Digest.sha256(sha(d))) for p, d in sorted(files.items()))
    lines = "".join(f"{e.path}\t{e.size}\t{e.digest.hex}\n" for e in entries)
    return "sha256:" + sha(lines.encode()), entries


class DictCache(Generic[K, V]):
    """An in-memory cache for any backend, remembering what it was asked and given."""

    def __init__(self) -> None:
        self.data: dict[K, V] = {}
        self.looked_up: list[K] = []
        self.stored: list[K] = []

    def lookup(self, keys: Sequence[K]) -> dict[K, V]:
        self.looked_up.extend(keys)
        return {k: self.data[k] for k in keys if k in self.data}

    def store(self, items: Sequence[tuple[K, V]]) -> None:
        for k, v in items:
            self.data[k] = v
            self.stored.append(k)


class FakeReader:
    """A backend of bytes in a dict, keyed by (path, generation); it records every read."""

    thread_name = "fake-hash"

    def __init__(self, blobs: dict[str, bytes], batch_below: int = 100) -> None:
        self.blobs = blobs
        self.batch_below = batch_below
        self.reads: list[tuple[str, bool, str]] = []  # (path, given progress, thread name)
        self.unsure: set[str] = set()  # paths whose content "changed while read": never vouched for
        self.fail: Callable[[str], None] = lambda path: None
        self.lock = threading.Lock()

    def entries(self, generation: int = 0) -> list[Entry[tuple[str, int]]]:
        return [Entry(p, p, len(d), (p, generation)) for p, d in sorted(self.blobs.items())]

    def reuse(self, cached: str) -> tuple[str, str] | None:
        return (cached, CONTENT) if cached != "stale" else None

    def read(self, entry: Entry[tuple[str, int]], progress: ProgressFn | None) -> Read[str]:
        with self.lock:
            self.reads.append((entry.path, progress is not None, threading.current_thread().name))
        self.fail(entry.path)
        data = self.blobs[entry.path]
        if progress is not None:
            for i in range(0, len(data), 10):
                progress(0, len(data[i : i + 10]))
        digest = sha(data)
        return digest, len(data), len(data), CONTENT, None if entry.path in self.unsure else digest


class Progress:
    """Adds up the (files, bytes) increments, thread-safely, and counts the calls."""

    def __init__(self) -> None:
        self.files = self.bytes = self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, files: int, nbytes: int) -> None:
        with self.lock:
            self.files += files
            self.bytes += nbytes
            self.calls += 1


def blobs(n_small: int, n_big: int) -> dict[str, bytes]:
    small = {f"s/{i:04d}.txt": f"small {i}".encode() for i in range(n_small)}
    big = {f"b/{i:02d}.bin": bytes([i]) * (200 + i) for i in range(n_big)}
    return {**small, **big}


# ---------------------------------------------------------------- the engine on a fake backend


def test_manifest_and_digest_follow_the_directory_rule() -> None:
    files = blobs(10, 3)
    reader = FakeReader(files)
    r = build(reader.entries(), reader, is_dir=True)
    digest, manifest = manifest_of(files)
    assert (str(r.digest), r.files, r.size, r.bytes_read, r.source) == (
        digest,
        manifest,
        sum(map(len, files.values())),
        sum(map(len, files.values())),
        CONTENT,
    )


def test_a_single_entry_is_its_own_digest_and_an_empty_listing_the_empty_manifest() -> None:
    reader = FakeReader({"only": b"bytes"})
    assert build(reader.entries(), reader, is_dir=False) == HashResult(Digest.sha256(sha(b"bytes")), 5, None, 5)
    assert build([], reader, is_dir=True) == HashResult(Digest.sha256(sha(b"")), 0, (), 0)


def test_cache_is_looked_up_for_every_entry_and_remembers_only_what_the_reader_vouches_for() -> None:
    files = blobs(100, 5)
    reader = FakeReader(files)
    reader.unsure = {"s/0007.txt", "b/02.bin"}
    cache: DictCache[tuple[str, int], str] = DictCache()
    first = build(reader.entries(), reader, is_dir=True, cache=cache)
    assert cache.looked_up == [e.key for e in reader.entries()]
    assert sorted(p for p, _ in cache.stored) == sorted(set(files) - reader.unsure)

    reader.reads.clear()
    seen = Progress()
    second = build(reader.entries(), reader, is_dir=True, cache=cache, progress=seen)
    assert sorted(p for p, _, _ in reader.reads) == sorted(reader.unsure)  # only what was not cached
    assert second.digest == first.digest and second.files == first.files
    assert second.bytes_read == sum(len(files[p]) for p in reader.unsure)
    assert (seen.files, seen.bytes) == (len(files), second.bytes_read)

    # A changed key (a new generation) is a miss; a cached value the reader refuses is read again.
    reader.reads.clear()
    cache.data[("s/0001.txt", 0)] = "stale"
    build(reader.entries(), reader, is_dir=True, cache=cache)
    assert sorted(p for p, _, _ in reader.reads) == sorted({"s/0001.txt", *reader.unsure})
    reader.reads.clear()
    build(reader.entries(generation=1), reader, is_dir=True, cache=cache)
    assert len(reader.reads) == len(files)


def test_small_entries_are_read_in_batches_and_big_ones_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    files = blobs(150, 4)  # small: under 100 bytes; big: 200 bytes and more
    tasks: list[list[str]] = []

    class Recording(ThreadPoolExecutor):
        def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], **kwargs: Any) -> Iterator[Any]:
            (given,) = iterables
            given = list(given)
            tasks.extend([entries[i].path for i in task] for task in given)
            return super().map(fn, given, **kwargs)

    monkeypatch.setattr(engine, "ThreadPoolExecutor", Recording)
    reader = FakeReader(files)
    entries = reader.entries()
    seen = Progress()
    build(entries, reader, is_dir=True, progress=seen, workers=4)
    small = sorted(p for p in files if p.startswith("s/"))
    assert sorted(t for t in tasks if len(t) == 1 and t[0].startswith("b/")) == [[p] for p in sorted(files)[:4]]
    assert [t for t in tasks if t[0].startswith("s/")] == [small[i : i + BATCH] for i in range(0, 150, BATCH)]
    # The reader streams progress for what it reads alone; the engine reports the rest, one call per entry.
    assert {(p.startswith("b/"), given) for p, given, _ in reader.reads} == {(True, True), (False, False)}
    assert (seen.files, seen.bytes) == (len(files), sum(map(len, files.values())))
    assert {name.rsplit("_", 1)[0] for _, _, name in reader.reads} == {"fake-hash"}


@pytest.mark.parametrize(("workers", "expected"), [(1, {"MainThread"}), (2, {"fake-hash"}), (None, {"fake-hash"})])
def test_one_worker_reads_in_the_calling_thread(workers: int | None, expected: set[str]) -> None:
    reader = FakeReader(blobs(200, 3))
    r = build(reader.entries(), reader, is_dir=True, workers=workers)
    assert {name.rsplit("_", 1)[0] for _, _, name in reader.reads} == expected
    assert str(r.digest) == manifest_of(reader.blobs)[0]


def test_an_error_stops_the_pool_without_reading_the_queued_tasks() -> None:
    files = {f"b/{i:03d}.bin": b"x" * 200 for i in range(300)}  # 300 tasks of one entry
    reader = FakeReader(files)

    def fail(path: str) -> None:
        time.sleep(0.002)
        if path == "b/001.bin":
            msg = "cannot read b/001.bin"
            raise InvalidInput(msg)

    reader.fail = fail
    cache: DictCache[tuple[str, int], str] = DictCache()
    with pytest.raises(InvalidInput, match=r"cannot read b/001\.bin"):
        build(reader.entries(), reader, is_dir=True, cache=cache, workers=2)
    assert len(reader.reads) < 50  # the queued tasks were cancelled, not read first
    assert cache.stored == []


def test_sources_of_the_digests_are_combined() -> None:
    class Checksums(FakeReader):
        def reuse(self, cached: str) -> tuple[str, str] | None:
            return cached, "store-checksum"

    reader = Checksums({"a": b"a", "b": b"b"})
    cache: DictCache[tuple[str, int], str] = DictCache()
    cache.data[("a", 0)] = sha(b"a")
    r = build(reader.entries(), reader, is_dir=True, cache=cache)
    assert r.source == "content+store-checksum" and r.bytes_read == 1


# ---------------------------------------------------------------- the same engine over every real backend

TREE = {
    "a.csv": b"x,y\n1,2\n",
    "a-b.txt": b"dash sorts before dot and slash",
    "empty": b"",
    "sub/deep/c.bin": bytes(range(256)) * 40,
    "sub/big.bin": os.urandom(3 * 1024 * 1024 + 5),  # streamed in chunks by both backends
    **{f"many/{i:03d}.txt": f"{i}\n".encode() for i in range(150)},  # several batches
}


@pytest.fixture(params=["path", "file-url", "memory-url"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., HashResult]]:
    """hash(cache=…, progress=…) of TREE, stored on one backend."""
    if request.param == "memory-url":
        fs = fsspec.filesystem("memory")
        root = f"/t{uuid.uuid4().hex[:8]}"
        for rel, data in TREE.items():
            fs.pipe(f"{root}/d/{rel}", data)
        url = f"memory:/{root}/d"
    else:
        for rel, data in TREE.items():
            os.utime(write(tmp_path / "d" / rel, data), (OLD, OLD))
        url = (tmp_path / "d").as_uri()
    if request.param == "path":
        yield lambda **kw: hash_path(tmp_path / "d", **kw)
    else:
        yield lambda **kw: hash_remote(open_url(url), **kw).result
    if request.param == "memory-url":
        fs.rm(root, recursive=True)


def test_every_backend_gives_the_same_digest_manifest_progress_and_cache_behaviour(
    backend: Callable[..., HashResult],
) -> None:
    digest, manifest = manifest_of(TREE)
    total = sum(map(len, TREE.values()))
    seen = Progress()
    cache: DictCache[Any, Any] = DictCache()
    first = backend(cache=cache, progress=seen)
    assert (str(first.digest), first.files, first.size, first.bytes_read, first.source) == (
        digest,
        manifest,
        total,
        total,
        CONTENT,
    )
    assert (seen.files, seen.bytes) == (len(TREE), total)
    assert len(cache.stored) == len(TREE)
    again = Progress()
    second = backend(cache=cache, progress=again)
    assert (second.digest, second.files, second.bytes_read) == (first.digest, first.files, 0)
    assert (again.files, again.bytes, again.calls) == (len(TREE), 0, 1)
