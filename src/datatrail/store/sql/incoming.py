"""An event as ingest receives it: parsed, in canonical form and hashed, before the write lock is taken."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from datatrail.core.changes import Changes, Event, canonical_json
from datatrail.core.touches import Check
from datatrail.events import parse_event


@dataclass(frozen=True)
class Incoming:
    """An event's changes, its canonical JSON and that JSON's SHA-256 (the idempotency key)."""

    changes: Changes
    payload: str
    digest: str
    origin: str | None = None  # where the event came from, for its audit entry
    check: Check | None = None  # asked about what only the store knows (see Writes.ingest)

    @classmethod
    def of(cls, event: Event, actor: str, origin: str | None = None, check: Check | None = None) -> Incoming:
        changes = parse_event(event, actor)
        payload = canonical_json(event)
        return cls(changes, payload, hashlib.sha256(payload.encode()).hexdigest(), origin, check)
