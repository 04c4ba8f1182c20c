"""Content digests of files and directories, and the stat cache."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datatrail.core.errors import InvalidInput, NotFound
from datatrail.core.filedigest import hash_mapped
from datatrail.core.model import Digest, FileEntry
from datatrail.hashing import CHUNK, HashResult, StatKey, hash_path, hash_stream, stat_key
from datatrail.statcache import SqliteStatCache
from tests.conftest import write

OLD = time.time() - 3600  # an mtime well outside the racy window


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected_tree(files: dict[str, bytes]) -> tuple[str, list[str]]:
    """The directory digest of DESIGN.md §1, computed without datatrail: sha256 of sorted manifest lines."""
    lines = sorted(f"{path}\t{len(data)}\t{sha(data)}\n" for path, data in files.items())
    return "sha256:" + sha("".join(lines).encode()), lines


def make_tree(root: Path, files: dict[str, bytes], mtime: float | None = OLD) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        p = write(root / rel, data)
        if mtime is not None:
            os.utime(p, (mtime, mtime))
    return root


class DictCache:
    """An in-memory stat cache that counts what it is asked."""

    def __init__(self) -> None:
        self.data: dict[StatKey, str] = {}
        self.lookups = 0
        self.stored: list[StatKey] = []

    def lookup(self, keys: Sequence[StatKey]) -> dict[StatKey, str]:
        self.lookups += len(keys)
        return {k: self.data[k] for k in keys if k in self.data}

    def store(self, items: Sequence[tuple[StatKey, str]]) -> None:
        for k, d in items:
            self.data[k] = d
            self.stored.append(k)


# ---------------------------------------------------------------- files


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=70_000))
def test_file_digest_is_sha256_of_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "f.bin"
        p.write_bytes(data)
        r = hash_path(p)
        assert r.digest == Digest.sha256(sha(data))
        assert r.size == len(data)
        assert r.files is None
        assert r.bytes_read == len(data)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 7])
def test_file_digest_around_chunk_boundary(tmp_path: Path, size: int) -> None:
    data = (os.urandom(4096) * (size // 4096 + 1))[:size]
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    r = hash_path(p)
    assert str(r.digest) == "sha256:" + sha(data)
    assert (r.size, r.bytes_read) == (size, size)
    # The same file inside a directory takes the parallel path.
    d = make_tree(tmp_path / "d", {"big.bin": data, "small.txt": b"x"})
    digest, _ = expected_tree({"big.bin": data, "small.txt": b"x"})
    assert str(hash_path(d).digest) == digest


@pytest.mark.parametrize("size", [CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 4097])
def test_big_file_digest_around_read_chunks(tmp_path: Path, size: int) -> None:
    """Big files are hashed a chunk at a time: every byte once, in order."""
    data = (os.urandom(1 << 20) * (size // (1 << 20) + 1))[:size]
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    steps: list[int] = []
    digest, read, after = hash_stream(str(p), progress=lambda _files, n: steps.append(n))
    assert (digest, read, after.st_size) == (sha(data), size, size)
    assert sum(steps) == size
    assert hash_path(p).digest == Digest.sha256(sha(data))


def test_file_cut_short_while_hashed_reads_to_its_new_end(tmp_path: Path) -> None:
    """A file truncated while it is hashed is read to its new end (no bus error, as a memory map
    would give), and the sizes say that it changed."""
    p = tmp_path / "f.bin"
    data = os.urandom(3 * CHUNK + 5)
    p.write_bytes(data)
    cut = CHUNK + 100

    def truncate_after_first_slice(_files: int, n: int) -> None:
        if n == CHUNK and p.stat().st_size > cut:
            os.truncate(p, cut)

    digest, read, after = hash_stream(str(p), progress=truncate_after_first_slice)
    assert (digest, read, after.st_size) == (sha(data[:cut]), cut, cut)


def test_file_grown_while_hashed_is_read_to_its_new_end(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    data = os.urandom(2 * CHUNK + 5)
    p.write_bytes(data)
    tail = b"appended while hashing"

    def append_once(_files: int, n: int) -> None:
        if p.stat().st_size == len(data):
            with open(p, "ab") as f:
                f.write(tail)

    digest, read, _ = hash_stream(str(p), progress=append_once)
    assert (digest, read) == (sha(data + tail), len(data) + len(tail))


WINDOW = 64 * 1024  # small windows of hash_mapped: a multiple of the map granularity (4 KiB)


@pytest.mark.parametrize("size", [1, WINDOW - 1, WINDOW, WINDOW + 1, 3 * WINDOW + 4097])
def test_mapped_digest_around_windows(tmp_path: Path, size: int) -> None:
    """The hashing children's memory maps give every byte once, in order, one window at a time."""
    data = os.urandom(size)
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    steps: list[int] = []
    digest, read, after = hash_mapped(str(p), WINDOW, lambda _files, n: steps.append(n))
    assert (digest, read, after.st_size) == (sha(data), size, size)
    assert steps == [min(WINDOW, size - i) for i in range(0, size, WINDOW)]


def test_mapped_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty"
    p.write_bytes(b"")
    digest, read, after = hash_mapped(str(p))
    assert (digest, read, after.st_size) == (sha(b""), 0, 0)


def test_mapped_file_cut_short_between_windows_reads_to_its_new_end(tmp_path: Path) -> None:
    """A truncation between two windows is seen before the next is mapped: no bus error, the new end."""
    p = tmp_path / "f.bin"
    data = os.urandom(3 * WINDOW + 5)
    p.write_bytes(data)
    cut = WINDOW + 100

    def truncate_after_first_window(_files: int, n: int) -> None:
        if p.stat().st_size > cut:
            os.truncate(p, cut)

    digest, read, after = hash_mapped(str(p), WINDOW, truncate_after_first_window)
    assert (digest, read, after.st_size) == (sha(data[:cut]), cut, cut)


def test_mapped_file_grown_while_hashed_is_read_to_its_new_end(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    data = os.urandom(2 * WINDOW + 5)
    p.write_bytes(data)
    tail = b"appended while hashing"

    def append_once(_files: int, n: int) -> None:
        if p.stat().st_size == len(data):
            with open(p, "ab") as f:
                f.write(tail)

    digest, read, _ = hash_mapped(str(p), WINDOW, append_once)
    assert (digest, read) == (sha(data + tail), len(data) + len(tail))


def test_missing_path_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="path not found") as info:
        hash_path(tmp_path / "nope.csv")
    assert "nope.csv" in str(info.value)


def test_fifo_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInput, match="neither a regular file nor a directory"):
        hash_path(fifo)


# ---------------------------------------------------------------- directories


def test_directory_digest_is_sha256_of_sorted_manifest(tmp_path: Path) -> None:
    # Names chosen so that directory-walk order, per-level order and path order differ:
    # '-' < '.' < '/' in code points.
    files = {
        "a/b.csv": b"1,2\n",
        "a-b.csv": b"dash",
        "a.b": b"dot",
        "a/c/d.txt": b"deep",
        "z.txt": b"",
        "données.csv": "é".encode(),
        "B.txt": b"upper",
    }
    root = make_tree(tmp_path / "tree", files)
    r = hash_path(root)
    digest, lines = expected_tree(files)
    assert str(r.digest) == digest
    assert r.size == sum(len(v) for v in files.values())
    assert r.files is not None
    assert [f.path for f in r.files] == sorted(files)
    assert [f"{f.path}\t{f.size}\t{f.digest.hex}\n" for f in r.files] == lines
    assert all(f.digest == Digest.sha256(sha(files[f.path])) for f in r.files)
    assert r.bytes_read == r.size


def test_one_changed_file_changes_digest_and_manifest_says_which(tmp_path: Path) -> None:
    files = {f"part-{i:03d}.csv": f"row {i}\n".encode() for i in range(150)}
    root = make_tree(tmp_path / "t", files)
    before = hash_path(root)
    write(root / "part-077.csv", b"row 77 changed\n")
    after = hash_path(root)
    assert before.digest != after.digest
    assert before.files is not None and after.files is not None
    changed = {a.path for a, b in zip(before.files, after.files, strict=True) if a != b}
    assert changed == {"part-077.csv"}
    assert str(after.digest) == expected_tree({**files, "part-077.csv": b"row 77 changed\n"})[0]


def test_renamed_file_changes_digest(tmp_path: Path) -> None:
    a = make_tree(tmp_path / "a", {"x.csv": b"same"})
    b = make_tree(tmp_path / "b", {"y.csv": b"same"})
    assert hash_path(a).digest != hash_path(b).digest


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = hash_path(tmp_path / "empty")
    assert r == HashResult(Digest.sha256(sha(b"")), 0, (), 0)


def test_nested_directories(tmp_path: Path) -> None:
    files = {
        "/".join([*(f"d{j}" for j in range(depth)), f"f{depth}.txt"]): bytes([depth]) * depth for depth in range(8)
    }
    root = make_tree(tmp_path / "n", files)
    (root / "only" / "empty" / "dirs").mkdir(parents=True)  # empty dirs leave no trace
    r = hash_path(root)
    assert str(r.digest) == expected_tree(files)[0]
    assert r.files is not None and len(r.files) == 8


def test_dot_datatrail_is_skipped_at_the_top_only(tmp_path: Path) -> None:
    files = {"data.csv": b"a", "sub/.datatrail/kept.txt": b"nested config is data"}
    root = make_tree(tmp_path / "t", files)
    write(root / ".datatrail" / "trail.db", b"the store itself")
    write(root / ".datatrail" / "config.toml", b"[store]")
    r = hash_path(root)
    assert r.files is not None
    assert [f.path for f in r.files] == ["data.csv", "sub/.datatrail/kept.txt"]
    assert str(r.digest) == expected_tree(files)[0]


def test_hashing_is_deterministic_across_worker_counts(tmp_path: Path) -> None:
    files = {f"d{i % 7}/f{i}.bin": os.urandom(i * 13) for i in range(300)}
    root = make_tree(tmp_path / "t", files)
    expected = expected_tree(files)[0]
    for workers in (1, 2, 16):
        assert str(hash_path(root, workers=workers).digest) == expected


def test_progress_reports_every_file_and_byte(tmp_path: Path) -> None:
    files = {f"f{i}": b"x" * i for i in range(100)}
    root = make_tree(tmp_path / "t", files)
    seen = [0, 0]

    def progress(n_files: int, n_bytes: int) -> None:
        seen[0] += n_files
        seen[1] += n_bytes

    hash_path(root, progress=progress)
    assert seen == [100, sum(range(100))]


@settings(max_examples=40, deadline=None)
@given(
    st.dictionaries(
        st.lists(st.sampled_from(["a", "b", "a-b", "a.b", "é", "x y", "Z"]), min_size=1, max_size=3).map("/".join),
        st.binary(max_size=300),
        max_size=12,
    )
)
def test_directory_digest_matches_independent_manifest(files: dict[str, bytes]) -> None:
    # Drop paths that are also directories of other paths ("a" and "a/b").
    files = {p: d for p, d in files.items() if not any(q.startswith(p + "/") for q in files)}
    with tempfile.TemporaryDirectory() as tmp:
        root = make_tree(Path(tmp) / "t", files, mtime=None)
        r = hash_path(root)
        assert str(r.digest) == expected_tree(files)[0]
        assert r.files == tuple(FileEntry(p, len(files[p]), Digest.sha256(sha(files[p]))) for p in sorted(files))


# ---------------------------------------------------------------- refusals


def test_symlink_out_of_tree_is_refused(tmp_path: Path) -> None:
    outside = write(tmp_path / "secret.txt", b"outside")
    root = make_tree(tmp_path / "t", {"a.txt": b"a"})
    (root / "link.txt").symlink_to(outside)
    with pytest.raises(InvalidInput, match="symlink leading out of the directory") as info:
        hash_path(root)
    assert "link.txt" in str(info.value)


def test_symlink_with_dotdot_out_of_tree_is_refused(tmp_path: Path) -> None:
    write(tmp_path / "secret.txt", b"outside")
    root = make_tree(tmp_path / "t", {"sub/a.txt": b"a"})
    (root / "sub" / "link").symlink_to("../../secret.txt")
    with pytest.raises(InvalidInput, match="leading out"):
        hash_path(root)


def test_symlink_inside_tree_is_hashed_as_its_target(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"a.txt": b"content"})
    (root / "b.txt").symlink_to("a.txt")
    r = hash_path(root)
    assert str(r.digest) == expected_tree({"a.txt": b"content", "b.txt": b"content"})[0]


def test_symlink_to_directory_is_refused(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"sub/a.txt": b"a"})
    (root / "loop").symlink_to("sub")
    with pytest.raises(InvalidInput, match="symlinks to directories are not followed"):
        hash_path(root)


def test_dangling_symlink_is_refused(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"a.txt": b"a"})
    (root / "gone").symlink_to("missing.txt")
    with pytest.raises(InvalidInput, match="cannot read"):
        hash_path(root)


@pytest.mark.parametrize("bad", ["tab\there.csv", "new\nline.csv", "carriage\rreturn.csv"])
def test_file_names_with_tab_or_newline_are_refused(tmp_path: Path, bad: str) -> None:
    root = make_tree(tmp_path / "t", {"ok.csv": b"a", f"sub/{bad}": b"b"})
    with pytest.raises(InvalidInput, match="tabs or line breaks") as info:
        hash_path(root)
    assert repr(bad)[1:-1] in str(info.value)


def test_directory_name_with_tab_is_refused(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"a\tb/x.csv": b"a"})
    with pytest.raises(InvalidInput, match="tabs or line breaks"):
        hash_path(root)


# ---------------------------------------------------------------- stat cache


def test_second_hash_of_unchanged_tree_reads_nothing(tmp_path: Path) -> None:
    files = {f"f{i}.bin": os.urandom(1000 + i) for i in range(50)}
    root = make_tree(tmp_path / "t", files)
    cache = SqliteStatCache(tmp_path / "cache.db")
    try:
        first = hash_path(root, cache=cache)
        assert first.bytes_read == first.size == sum(len(v) for v in files.values())
        second = hash_path(root, cache=cache)
        assert second.bytes_read == 0
        assert second.digest == first.digest and second.files == first.files
        # A fresh cache object on the same file remembers too.
        again = SqliteStatCache(tmp_path / "cache.db")
        try:
            assert hash_path(root, cache=again).bytes_read == 0
        finally:
            again.close()
    finally:
        cache.close()


def test_single_file_is_cached(tmp_path: Path) -> None:
    p = make_tree(tmp_path / "t", {"f.bin": b"12345"}) / "f.bin"
    cache = DictCache()
    assert hash_path(p, cache=cache).bytes_read == 5
    r = hash_path(p, cache=cache)
    assert (r.bytes_read, str(r.digest)) == (0, "sha256:" + sha(b"12345"))


def test_modified_file_is_read_again(tmp_path: Path) -> None:
    files = {f"f{i}.txt": f"content {i}".encode() for i in range(10)}
    root = make_tree(tmp_path / "t", files)
    cache = SqliteStatCache(tmp_path / "cache.db")
    try:
        first = hash_path(root, cache=cache)
        p = write(root / "f3.txt", b"CONTENT 3")  # same size, new content
        os.utime(p, (OLD + 10, OLD + 10))
        second = hash_path(root, cache=cache)
        assert second.bytes_read == len(b"CONTENT 3")
        assert second.digest != first.digest
        assert str(second.digest) == expected_tree({**files, "f3.txt": b"CONTENT 3"})[0]
        assert hash_path(root, cache=cache).bytes_read == 0
    finally:
        cache.close()


def test_no_cache_reads_everything(tmp_path: Path) -> None:
    files = {f"f{i}.bin": os.urandom(500) for i in range(20)}
    root = make_tree(tmp_path / "t", files)
    cache = DictCache()
    hash_path(root, cache=cache)
    assert hash_path(root, cache=cache).bytes_read == 0
    assert hash_path(root, cache=None).bytes_read == 20 * 500
    assert hash_path(root).bytes_read == 20 * 500


def test_recently_modified_files_are_not_cached(tmp_path: Path) -> None:
    # A file written just now may change again within the same mtime tick.
    root = make_tree(tmp_path / "t", {"old.txt": b"old", "new.txt": b"new"}, mtime=None)
    os.utime(root / "old.txt", (OLD, OLD))
    cache = DictCache()
    hash_path(root, cache=cache)
    assert [k[1] for k in cache.stored] == [os.stat(root / "old.txt").st_ino]
    assert hash_path(root, cache=cache).bytes_read == len(b"new")


@pytest.mark.parametrize("component", [0, 1, 2, 3])
def test_cache_is_not_trusted_when_any_stat_field_differs(tmp_path: Path, component: int) -> None:
    # A cache holding a wrong digest under a key that differs from the file's
    # (dev, inode, size, mtime_ns) in one field must not be believed.
    p = make_tree(tmp_path / "t", {"f.txt": b"truth"}) / "f.txt"
    real = stat_key(os.stat(p))
    near = list(real)
    near[component] += 1
    cache = DictCache()
    cache.data[tuple(near)] = sha(b"a lie")  # type: ignore[index]
    r = hash_path(p, cache=cache)
    assert (str(r.digest), r.bytes_read) == ("sha256:" + sha(b"truth"), 5)
    # With the exact key the cache is believed (that is what makes it a cache).
    cache.data[real] = sha(b"a lie")
    assert hash_path(p, cache=cache).digest == Digest.sha256(sha(b"a lie"))


def test_replaced_file_with_same_size_and_mtime_is_read_again(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"f.txt": b"aaaa", "keep.txt": b"k"})
    cache = SqliteStatCache(tmp_path / "cache.db")
    try:
        hash_path(root, cache=cache)
        old_ino = os.stat(root / "f.txt").st_ino
        tmp = write(tmp_path / "other.txt", b"bbbb")
        os.utime(tmp, ns=(os.stat(root / "f.txt").st_mtime_ns,) * 2)
        os.replace(tmp, root / "f.txt")  # new inode, same size and mtime
        assert os.stat(root / "f.txt").st_ino != old_ino
        r = hash_path(root, cache=cache)
        assert r.bytes_read == 4
        assert str(r.digest) == expected_tree({"f.txt": b"bbbb", "keep.txt": b"k"})[0]
    finally:
        cache.close()


keys = st.tuples(*(st.integers(min_value=0, max_value=2**62) for _ in range(4)))


@settings(max_examples=50, deadline=None)
@given(
    stored=st.lists(st.tuples(keys, st.text("0123456789abcdef", min_size=64, max_size=64)), max_size=10),
    probe=st.lists(keys, max_size=10),
    data=st.data(),
)
def test_sqlite_stat_cache_returns_exact_keys_only(
    stored: list[tuple[StatKey, str]], probe: list[StatKey], data: st.DataObject
) -> None:
    # Also probe keys that differ from a stored one in exactly one field.
    for key, _ in stored[:3]:
        i = data.draw(st.integers(0, 3))
        near = list(key)
        near[i] += 1
        probe.append(tuple(near))  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        cache = SqliteStatCache(Path(tmp) / "c.db")
        try:
            cache.store(stored)
            found = cache.lookup(probe + [k for k, _ in stored])
            # Later stores for the same (dev, inode) replace earlier ones.
            latest: dict[tuple[int, int], tuple[StatKey, str]] = {(k[0], k[1]): (k, d) for k, d in stored}
            expected = {k: d for k, d in latest.values()}
            assert found == expected
        finally:
            cache.close()
