"""Canonical JSON: the exact text events and audit entries are hashed by (the audit chain depends on it)."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from datatrail.core.canonical import canonical_json, entry_content, entry_hash

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.datetimes(timezones=st.just(UTC))
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
)


def _reference(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@given(VALUES)
def test_canonical_json_is_the_standard_library_text(value: Any) -> None:
    # NaN, infinities, integers past 64 bits, lone surrogates, datetimes (by str): all as json.dumps writes them.
    assert canonical_json(value) == _reference(value)


def test_canonical_json_of_an_event_and_an_entry_are_pinned() -> None:
    event = {
        "eventType": "COMPLETE",
        "eventTime": "2026-01-01T00:00:00Z",
        "run": {"runId": "3f1e0c9a-0d4e-4a51-9b0e-6a2f4f6c1d2e", "facets": {}},
        "job": {"namespace": "bench", "name": "job1"},
        "outputs": [{"namespace": "warehouse", "name": "dönüş.t1", "facets": {"size": 1.5, "rows": 2**70}}],
    }
    text = canonical_json(event)
    assert text == (
        '{"eventTime":"2026-01-01T00:00:00Z","eventType":"COMPLETE","job":{"name":"job1","namespace":"bench"},'
        '"outputs":[{"facets":{"rows":1180591620717411303424,"size":1.5},"name":"dönüş.t1","namespace":"warehouse"}],'
        '"run":{"facets":{},"runId":"3f1e0c9a-0d4e-4a51-9b0e-6a2f4f6c1d2e"}}'
    )
    when = datetime(2026, 1, 1, tzinfo=UTC).isoformat()
    content = entry_content(7, when, "admin", "lineage.ingest", None, "allowed", {"event": "ab"})
    assert entry_hash("0" * 64, content) == hashlib.sha256(("0" * 64 + _reference(content)).encode()).hexdigest()


def test_canonical_json_from_many_threads() -> None:
    # One encoder serves every thread (the server's loop, writer and hand-off threads hash at once).
    values = [{"k": i, "nested": [{"x": str(i)}] * (i % 5)} for i in range(2000)]
    failures: list[int] = []

    def encode(offset: int) -> None:
        for i, value in enumerate(values[offset:] + values[:offset]):
            if canonical_json(value) != _reference(value):
                failures.append(i)

    threads = [threading.Thread(target=encode, args=(n * 500,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
