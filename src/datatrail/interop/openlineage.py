"""OpenLineage both ways: replay the stored raw events, and import events another producer wrote.

Export replays every stored event verbatim (the store keeps each one as it was
ingested), one JSON object per line as the OpenLineage file transport writes
them, so another consumer (Marquez, another datatrail) rebuilds the same state.
An event stored before the nesting limit existed is written cut at that limit
(``MAX_EVENT_DEPTH``), so the export can be imported again.
Import reads that format or a JSON array, validates every event first, and
stores nothing when one is bad (unless told to skip the bad ones).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from datatrail.core.changes import Event
from datatrail.core.errors import InvalidInput
from datatrail.core.limits import MAX_EVENT_DEPTH, bounded
from datatrail.events import parse_event
from datatrail.interop.common import ImportSummary, ingest_all

if TYPE_CHECKING:
    from datatrail.service import Trail

PAGE = 1000


def export_events(trail: Trail, *, since: datetime | None = None, namespace: str | None = None) -> Iterator[Event]:
    """Every stored event (at or after ``since``, naming ``namespace``), oldest first.

    >>> for event in export_events(trail, namespace="default"):  # doctest: +SKIP
    ...     print(json.dumps(event))
    """
    after = 0
    while True:
        page = trail.catalog.events(since, namespace, after, PAGE)
        if not page:  # a short page is no end: a store seen through a principal leaves events out
            return
        yield from (bounded(event, MAX_EVENT_DEPTH) for _, event in page)
        after = page[-1][0]


def read_events(
    text: str, source: str = "the input", *, actor: str = "-", skip_invalid: bool = False
) -> tuple[list[Event], list[str]]:
    """Events from JSON Lines (one event a line) or a JSON array, each validated; and the skipped ones.

    A bad line raises InvalidInput naming it, unless ``skip_invalid`` (then it is listed).
    """
    stripped = text.lstrip()
    items: list[tuple[str, Any]] = []
    whole: Any = None
    if stripped.startswith(("[", "{")):
        try:
            whole = json.loads(text)
        except RecursionError:
            msg = f"{source} is nested too deeply to be OpenLineage events; fix it"
            raise InvalidInput(msg) from None
        except json.JSONDecodeError as exc:
            if stripped.startswith("["):
                msg = f"{source} is not a JSON array of events: {exc.msg} at line {exc.lineno}; fix it"
                raise InvalidInput(msg) from None
    if isinstance(whole, list):
        items = [(f"element {i}", item) for i, item in enumerate(whole)]
    elif isinstance(whole, dict):
        items = [("event", whole)]  # one event, perhaps pretty-printed over several lines
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"line {number}"
            try:
                items.append((where, json.loads(line)))
            except RecursionError:
                items.append((where, InvalidInput("nested too deeply to be an OpenLineage event")))
            except json.JSONDecodeError as exc:
                items.append((where, InvalidInput(f"not JSON ({exc.msg} at column {exc.colno})")))
    events: list[Event] = []
    skipped: list[str] = []
    for where, item in items:
        try:
            if isinstance(item, InvalidInput):
                raise item
            parse_event(item, actor)
        except InvalidInput as exc:
            problem = f"{source} {where}: {exc.message}"
            if not skip_invalid:
                msg = f"{problem}; nothing was imported (fix it, or pass --skip-invalid to import the valid events)"
                raise InvalidInput(msg) from None
            skipped.append(problem)
            continue
        events.append(item)
    return events, skipped


def import_events(trail: Trail, text: str, source: str = "the input", *, skip_invalid: bool = False) -> ImportSummary:
    """Validate then ingest OpenLineage events (JSON Lines or a JSON array); re-importing adds nothing.

    >>> summary = import_events(trail, Path("events.jsonl").read_text())  # doctest: +SKIP
    >>> summary.new_events                                               # doctest: +SKIP
    12
    """
    events, skipped = read_events(text, source, actor=trail.user, skip_invalid=skip_invalid)
    summary = ImportSummary(source=source, skipped=skipped)
    return ingest_all(trail, events, summary, "import.openlineage")
