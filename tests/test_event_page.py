"""A page of the raw events (Marquez's ``GET /api/v1/events/lineage``): counted and paged by the database, the
same events and totalCount as reading every event gave (``walk_event_page``, how the route read them before),
newest or oldest first, bounded by eventTime, at any offset; a reader who may not read everything is answered
by the walk, whose sifting hides what it must."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime
from pathlib import Path

from fastapi.testclient import TestClient

import datatrail
from datatrail.core.times import parse_time
from datatrail.server import create_app
from datatrail.store.event_pages import walk_event_page

PRODUCER = "https://example.com/tests"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
# Stored in this order; their eventTimes are not (a late producer), so the order is by id, not by time.
DAYS = [3, 1, 7, 2, 9, 5, 5, 8]


def event(i: int, day: int) -> dict[str, object]:
    return {
        "eventType": "COMPLETE",
        "eventTime": f"2026-03-{day:02d}T12:00:00+01:00",
        "producer": PRODUCER,
        "schemaURL": SCHEMA,
        "run": {"runId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"run{i}"))},
        "job": {"namespace": "etl", "name": f"job{i % 3}"},
        "inputs": [],
        "outputs": [{"namespace": "warehouse", "name": f"t{i}"}],
    }


def fill(trail: datatrail.Trail) -> None:
    for i, day in enumerate(DAYS):
        trail.ingest(event(i, day))


def test_event_pages_are_the_walks(trail: datatrail.Trail) -> None:
    assert trail.catalog.event_page(None, None, limit=10) == ([], 0)
    fill(trail)
    bounds: list[datetime | None] = [None, parse_time("2026-03-05T11:00:00Z"), parse_time("2026-03-02T00:00:00Z")]
    for since, until, limit, offset, newest in itertools.product(bounds, bounds, (1, 3, 100), (0, 2, 7, 50), (1, 0)):
        want = walk_event_page(trail.catalog.events, since, until, limit, offset, bool(newest))
        assert trail.catalog.event_page(since, until, limit=limit, offset=offset, newest_first=bool(newest)) == want
    newest_first, total = trail.catalog.event_page(None, None, limit=2)
    assert total == len(DAYS) and [e["run"]["runId"] for e in newest_first] == [
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"run{i}")) for i in (7, 6)
    ]


def test_the_route_answers_the_page(tmp_path: Path) -> None:
    with datatrail.init(tmp_path) as trail:
        fill(trail)
        uri = trail.location.uri
        walked = walk_event_page(trail.catalog.events, parse_time("2026-03-02"), None, 2, 1, True)
    with TestClient(create_app(uri)) as client:
        answer = client.get("/api/v1/events/lineage?after=2026-03-02&limit=2&offset=1").json()
    assert answer == {"events": walked[0], "totalCount": walked[1]} and answer["totalCount"] == 7
