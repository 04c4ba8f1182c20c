"""Every cache a server keeps is bounded by bytes (issue 22 item 6): the id memory of ingest."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from datatrail.core.errors import InvalidInput
from datatrail.store.sql.store import SqlStore
from datatrail.store.sql.transaction import ID_MEMORY_ENV, Known, entry_bytes, id_memory_bytes


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
