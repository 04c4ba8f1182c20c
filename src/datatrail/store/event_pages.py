"""A page of the stored raw events by walking all of them: how a store that cannot count and page them in
SQL answers (the HTTP store; a principal who may not read every namespace, whose events are sifted one by
one)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from datatrail.core.errors import DatatrailError
from datatrail.core.times import parse_time

WALK = 1000  # events asked for at a time

Events = Callable[[datetime | None, str | None, int, int], list[tuple[int, dict[str, Any]]]]


def walk_event_page(
    events: Events, since: datetime | None, until: datetime | None, limit: int, offset: int, newest_first: bool
) -> tuple[list[dict[str, Any]], int]:
    """The events at ``offset`` (``limit`` of them) among those with an eventTime at or after ``since`` and
    before ``until``, in id order (``newest_first``: the reverse), and how many there are: every event read."""
    window: deque[dict[str, Any]] = deque(maxlen=offset + limit if newest_first else None)
    kept: list[dict[str, Any]] = []
    total, last = 0, 0
    while True:
        page = events(since, None, last, WALK)
        last = page[-1][0] if page else last
        for _, event in page:
            if until is not None and not _before(event, until):
                continue
            total += 1
            if newest_first:
                window.append(event)
            elif offset < total <= offset + limit:
                kept.append(event)
        if len(page) < WALK:
            break
    if newest_first:
        kept = list(reversed(window))[offset : offset + limit]
    return kept, total


def _before(event: dict[str, Any], end: datetime) -> bool:
    try:
        return bool(parse_time(str(event.get("eventTime")), "eventTime") < end)
    except DatatrailError:
        return False
