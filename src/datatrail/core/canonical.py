"""Canonical JSON and the audit entry's hash: what the audit chain (core/chain.py) links and events
(core/changes.py) are hashed by, without their record types (a read appends an audit entry; start-up)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

GENESIS = "0" * 64


# What json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str) builds on
# every call, built once (it keeps no state between calls): every event and audit entry is hashed by it.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_json(obj: Any) -> str:
    return _ENCODER.encode(obj)


def entry_hash(prev: str, entry: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev + canonical_json(dict(entry))).encode()).hexdigest()


def entry_content(
    seq: int, time: str, actor: str, action: str, target: str | None, outcome: str, details: Any
) -> dict[str, Any]:
    """What an entry's hash covers (besides the previous hash)."""
    return {
        "seq": seq,
        "time": time,
        "actor": actor,
        "action": action,
        "target": target,
        "outcome": outcome,
        "details": details or {},
    }
