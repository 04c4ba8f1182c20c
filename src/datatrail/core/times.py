"""Points in time: ISO 8601 text in, timezone-aware UTC datetimes out (one rule for the whole project)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from datatrail.core.errors import InvalidInput


def utc(value: datetime) -> datetime:
    """``value`` in UTC; a time without a zone is taken as UTC."""
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def parse_time(text: str, what: str = "time") -> datetime:
    """ISO 8601 text (``2026-11-29``, ``2026-11-29T10:00:00Z``, ``…+01:00``) as UTC; InvalidInput otherwise.

    >>> parse_time("2026-11-29T10:00:00Z").isoformat()
    '2026-11-29T10:00:00+00:00'
    """
    try:
        return utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except (ValueError, AttributeError):
        msg = f"invalid {what} {str(text)[:100]!r}: use ISO 8601, as in 2026-11-29T10:00:00Z"
        raise InvalidInput(msg) from None


def stored_time(value: Any) -> datetime | None:
    """A time as a store or a wire answer holds it (a datetime, ISO text or nothing), in UTC."""
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, str) and value:
        return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    return None


def iso(value: datetime | None) -> str | None:
    """ISO 8601 text of a time, or None."""
    return value.isoformat() if value is not None else None


__all__ = ["iso", "parse_time", "stored_time", "utc"]
