"""A server's memory stays bounded (issue 22 item 6): the id memory by bytes, the C allocator's arenas."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
import tracemalloc
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from datatrail.core.errors import InvalidInput
from datatrail.server import memory
from datatrail.store.sql.store import SqlStore
from datatrail.store.sql.transaction import ID_MEMORY_ENV, Known, entry_bytes, id_memory_bytes
from tests import httpserver
from tests.httpserver import free_port


def test_the_id_memory_is_bounded_by_bytes() -> None:
    known = Known(max_bytes=100 * entry_bytes(("ds", 1, "d0000")))
    for i in range(1000):
        known.learn({("ds", 1, f"d{i:04}"): i})
    assert 70 <= len(known.rows) <= 100
    assert known.bytes == sum(entry_bytes(k) for k in known.rows) <= known.max_bytes
    assert ("ds", 1, "d0999") in known.rows and ("ds", 1, "d0000") not in known.rows
    known.learn({("ds", 1, "d0999"): 999})  # a repeat costs nothing more
    assert known.bytes == sum(entry_bytes(k) for k in known.rows)
    known.check_epoch(7)
    assert known.rows == {} and known.bytes == 0


def test_the_estimate_is_not_below_what_python_holds() -> None:
    names = [f"warehouse.table_{i}" for i in range(20_000)]  # fresh strings, as parsed from a request
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        known = Known(max_bytes=1 << 30)
        known.learn({("ds", 3, name): 100_000 + i for i, name in enumerate(names)})
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # The estimate counts the names, which the keys keep alive once the request is gone.
    strings = sum(len(n) + 49 for n in names)
    assert known.bytes >= 0.8 * (held + strings), (known.bytes, held, strings)


def test_the_bound_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ID_MEMORY_ENV, "0.5")
    assert id_memory_bytes() == 512 * 1024
    store = SqlStore(f"sqlite:///{tmp_path / 'trail.db'}", create=True)
    try:
        assert store._db.known.max_bytes == 512 * 1024  # type: ignore[attr-defined]
    finally:
        store.close()
    monkeypatch.setenv(ID_MEMORY_ENV, "0")
    assert Known().max_bytes == 0
    for bad in ("lots", "-1", "nan"):
        monkeypatch.setenv(ID_MEMORY_ENV, bad)
        with pytest.raises(InvalidInput, match=ID_MEMORY_ENV):
            id_memory_bytes()


def test_with_no_id_memory_ingest_still_finds_every_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ID_MEMORY_ENV, "0")
    store = SqlStore(f"sqlite:///{tmp_path / 'trail.db'}", create=True)
    try:
        for i in range(3):
            event = {
                "eventType": "COMPLETE",
                "eventTime": f"2026-03-01T10:0{i}:00+00:00",
                "producer": "https://example.com/tests",
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                "run": {"runId": f"00000000-0000-4000-8000-00000000000{i}", "facets": {}},
                "job": {"namespace": "ns", "name": "j", "facets": {}},
                "inputs": [],
                "outputs": [{"namespace": "ns", "name": "out"}],
            }
            store.ingest(event, "ada", "ingest")
        assert store._db.known.rows == {}  # type: ignore[attr-defined]
        assert [v.number for v in store.list_versions("ns", "out")] == [1, 2, 3]
        assert store.check_integrity() == []
    finally:
        store.close()


GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Eight threads alive at once, each allocating through malloc, then glibc's own account of its
# arenas (malloc_info: one <heap> element per arena), in a fresh process.
ARENAS_SCRIPT = """
import ctypes, sys, tempfile, threading
from datatrail.server import memory
if sys.argv[1] == "capped":
    assert memory.limit_arenas()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.fopen.restype = ctypes.c_void_p
barrier = threading.Barrier(9)
def work():
    libc.malloc(4000)
    barrier.wait()
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
barrier.wait()
with tempfile.NamedTemporaryFile(suffix=".xml") as f:
    stream = libc.fopen(f.name.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(open(f.name).read().count("<heap nr="))
barrier.wait()
"""


def _python(script: str, mode: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATATRAIL_", "MALLOC_"))}
    done = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc arenas: the server changes nothing on another C library")
def test_a_server_worker_caps_the_malloc_arenas() -> None:
    assert int(_python(ARENAS_SCRIPT, "default")) > memory.ARENAS  # glibc gives each thread an arena of its own
    assert int(_python(ARENAS_SCRIPT, "capped")) <= memory.ARENAS


# A 1 MB block malloc'd and freed, then another: glibc maps the first with pages of its own and, left
# alone, raises its threshold to 1 MB when it is freed, so the second comes from the heap; with the
# threshold fixed, the second is mapped too (mallinfo2's hblkhd: bytes in mapped blocks).
MMAP_SCRIPT = """
import ctypes, sys
from datatrail.server import memory
from datatrail.server.memory import _MallInfo2
if sys.argv[1] == "capped":
    assert memory.limit_arenas()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.mallinfo2.restype = _MallInfo2
libc.free(ctypes.c_void_p(libc.malloc(1 << 20)))
before = libc.mallinfo2().hblkhd
block = libc.malloc(1 << 20)
print(libc.mallinfo2().hblkhd - before)
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's mmap threshold: the server changes nothing on another C library")
def test_a_server_worker_maps_big_blocks_even_after_freeing_some() -> None:
    assert int(_python(MMAP_SCRIPT, "default")) < 1 << 20  # the threshold moved up: the heap serves it
    assert int(_python(MMAP_SCRIPT, "capped")) >= 1 << 20


# 64 MB in 16 KB blocks (below the 128 KB at which malloc maps blocks of their own), every page
# touched, then all but every 64th freed: the survivors pin the heap, so free() alone cannot
# shrink it, and the freed memory stays resident until it is trimmed.
TRIM_SCRIPT = """
import ctypes, sys
from datatrail.server import memory
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:")) // 1024
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
blocks = [libc.malloc(16 * 1024) for _ in range(4096)]
for b in blocks:
    ctypes.memset(b, 1, 16 * 1024)
for i, b in enumerate(blocks):
    if i % 64:
        libc.free(ctypes.c_void_p(b))
before = rss()
trimmed = memory.trim() if sys.argv[1] == "trim" else False
print(before, rss(), trimmed)
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc_trim: the server changes nothing on another C library")
def test_trimming_gives_freed_memory_back() -> None:
    before, after, trimmed = _python(TRIM_SCRIPT, "keep").split()
    assert int(after) > int(before) - 8 and trimmed == "False"  # untrimmed, the freed 63 MB stay resident
    before, after, trimmed = _python(TRIM_SCRIPT, "trim").split()
    assert int(after) < int(before) - 40 and trimmed == "True", (before, after)


def test_serve_refuses_a_bad_allocator_setting(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'trail.db'}"
    # The store's memory bounds too: each refused before any worker starts, not on every request.
    settings = (
        (memory.ARENA_ENV, "lots", "0 turns it off"),
        (memory.TRIM_ENV, "-5", "0 turns it off"),
        (memory.SQLITE_HEAP_ENV, "lots", "0 turns it off"),
        (memory.MMAP_ENV, "-1", "0 turns it off"),
        ("DATATRAIL_LINEAGE_CACHE_MB", "lots", "0 keeps nothing"),
        ("DATATRAIL_ID_MEMORY_MB", "-1", "0 remembers nothing"),
    )
    for name, value, words in settings:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")} | {name: value}
        done = subprocess.run(
            [str(httpserver.DATATRAIL), "--store", store, "serve", "--port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert done.returncode != 0 and done.stderr.count("\n") == 1, done.stderr
        assert f"invalid {name}={value!r}" in done.stderr and words in done.stderr


def _event(name: str) -> dict[str, object]:
    return {
        "eventType": "COMPLETE",
        "eventTime": "2026-03-01T10:00:00+00:00",
        "producer": "https://example.com/tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": "ns", "name": "j", "facets": {}},
        "inputs": [],
        "outputs": [{"namespace": "ns", "name": name}],
    }


def test_a_search_holds_its_matches_not_the_whole_store(tmp_path: Path) -> None:
    # Search on SQLite once made every dataset of the store into an object before checking the
    # pattern: a server's memory then followed the store's size (issue 22 item 6).
    store = SqlStore(f"sqlite:///{tmp_path / 'trail.db'}", create=True)
    try:
        store.ingest_many([_event(f"table_{i:05}") for i in range(3000)] + [_event("orders")], "ada", "ingest")

        def peak(match: str) -> tuple[int, int]:
            tracemalloc.start()
            try:
                found = store.list_datasets("ns", match=match)
                return len(found), tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

        every, every_peak = peak("%")
        one, one_peak = peak("ORD")
    finally:
        store.close()
    assert (every, one) == (3001, 1)
    assert one_peak < every_peak / 10, (one_peak, every_peak)


def test_a_search_page_holds_its_page_not_its_matches(tmp_path: Path) -> None:
    # The search route once fetched every match of every kind and sliced a page off in Python: the
    # soak's readers search patterns that match more datasets as the store grows (issue 22 item 6).
    store = SqlStore(f"sqlite:///{tmp_path / 'trail.db'}", create=True)
    try:
        store.ingest_many([_event(f"table_{i:05}") for i in range(3000)] + [_event("orders")], "ada", "ingest")

        def peak(read: Callable[[], object]) -> int:
            read()  # warm: statement caches
            tracemalloc.start()
            try:
                read()
                return tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

        page, total = store.search("table", limit=10)
        assert (len(page), total) == (10, 3000) and page[0].name == "table_00000"
        many = peak(lambda: store.search("table", limit=10, offset=2000))
        one = peak(lambda: store.search("ORD", limit=10))
        listed = peak(lambda: store.list_datasets(match="table"))  # every match, as the route held them
    finally:
        store.close()
    assert many < listed / 10, (many, listed)
    assert many < 3 * one, (many, one)


def _log_lines(path: Path, count: int, server: httpserver.Server) -> list[dict[str, object]]:
    for _ in range(600):  # a few samples of the worker, each half a second apart
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        assert server.process.poll() is None, server.log.read_text()
        time.sleep(0.1)
    raise AssertionError(f"{path} has fewer than {count} lines:\n{server.log.read_text()}")


def test_a_worker_logs_where_its_memory_is(tmp_path: Path) -> None:
    log = tmp_path / "memory.jsonl"
    env = {memory.LOG_ENV: str(log), memory.LOG_SECONDS_ENV: "0.5"}
    with httpserver.running(tmp_path / "srv", env=env) as server:
        for i in range(20):
            body = json.dumps(_event(f"d{i}")).encode()
            request = urllib.request.Request(server.uri + "/api/v1/lineage", body, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as answer:
                assert answer.status == 201
        first, *_, last = _log_lines(log, 3, server)
    assert first["pid"] == last["pid"] == server.process.pid  # one worker: the serve process itself
    assert isinstance(last["rss_kb"], int) and last["rss_kb"] > 10_000
    python, gc_state = last["python"], last["gc"]
    assert isinstance(python, dict) and isinstance(gc_state, dict)
    assert python["arenas_allocated_current"] > 0 and python["bytes_in_allocated_blocks"] > 1_000_000
    assert sum(python["blocks_in_use_by_size"].values()) > 10_000
    assert gc_state["tracked"] > 10_000 and isinstance(gc_state["grown_types"], dict)
    if GLIBC:
        glibc = last["glibc"]
        assert isinstance(glibc, dict) and glibc["in_use"] > 0
        assert isinstance(last["sqlite_bytes"], int) and last["sqlite_bytes"] > 0  # the store was opened
    assert "grown_sites" not in last  # only when Python traces allocations


def test_serve_refuses_a_bad_memory_log_interval(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATATRAIL_")}
    env |= {memory.LOG_SECONDS_ENV: "often"}
    done = subprocess.run(
        [str(httpserver.DATATRAIL), "--store", f"sqlite:///{tmp_path / 't.db'}", "serve", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode != 0 and done.stderr.count("\n") == 1, done.stderr
    assert f"invalid {memory.LOG_SECONDS_ENV}='often'" in done.stderr


# Six connections each read every page of a 12 MB table (each fills its own page cache, up to
# 2 MB by default), then SQLite's own account of its allocations, in a fresh process.
SQLITE_SCRIPT = """
import os, sqlite3, sys
from datatrail.server import memory
from datatrail.server.memory import _sqlite
print(memory.limit_sqlite())
path = os.path.join(sys.argv[2], "big.db")
db = sqlite3.connect(path)
db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, pad BLOB)")
db.executemany("INSERT INTO t (pad) VALUES (?)", [(os.urandom(1000),) for _ in range(12_000)])
db.commit()
db.close()
conns = [sqlite3.connect(path) for _ in range(6)]
for c in conns:
    assert c.execute("SELECT count(*), sum(length(pad)) FROM t").fetchone() == (12_000, 12_000_000)
print(_sqlite().sqlite3_memory_used())
"""


@pytest.mark.parametrize(("setting", "limit"), [("", 8 << 20), ("2", 2 << 20), ("0", 0)])
def test_sqlite_memory_of_a_worker_is_bounded(tmp_path: Path, setting: str, limit: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATATRAIL_", "MALLOC_"))}
    if setting:
        env[memory.SQLITE_HEAP_ENV] = setting
    done = subprocess.run(
        [sys.executable, "-c", SQLITE_SCRIPT, "x", str(tmp_path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    reported, used = (int(line) for line in done.stdout.split())
    assert reported == limit
    if limit == 2 << 20:
        assert used < 3 << 20  # six full page caches would be about 12 MB
    if limit == 0:
        assert used > 8 << 20  # without a limit each connection keeps its own pages


def test_a_worker_keeps_a_smaller_lineage_cache_than_a_process_of_its_own() -> None:
    """The lineage cache: 128 MB where a process opens a store itself (a kept depth-50 walk of 75,000 nodes
    is about 60 MB), 32 MB in a server worker (its memory bound), and a given setting wins in both."""
    script = """
import os
from datatrail.server import memory
from datatrail.store.sql.nodecache import cache_bytes
own = cache_bytes()
memory.limit_lineage_cache()
print(own, cache_bytes())
"""
    env = {k: v for k, v in os.environ.items() if k != "DATATRAIL_LINEAGE_CACHE_MB"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(128 * 2**20), str(32 * 2**20)]
    given = {**env, "DATATRAIL_LINEAGE_CACHE_MB": "5"}
    out = subprocess.run([sys.executable, "-c", script], env=given, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(5 * 2**20)] * 2
