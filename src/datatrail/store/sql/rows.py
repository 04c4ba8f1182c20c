"""Database rows to domain objects, shared by the SQLAlchemy store and the quick reader."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from datatrail.core.model import Digest, Version
from datatrail.core.times import stored_time


def json_value(value: Any) -> Any:
    """A JSON column's value (SQLite may hand back text)."""
    return json.loads(value) if isinstance(value, str) else value


VERSION_COLUMNS = (
    "id",
    "number",
    "version_key",
    "digest",
    "size",
    "uri",
    "format",
    "file_count",
    "created_at",
    "created_by",
    "host",
    "message",
    "properties",
    "dataset",
    "kind",
    "namespace",
    "run_id",
)


def version_from_row(r: Any, aliases: Iterable[str]) -> Version:
    """A Version from a row with the attributes named in VERSION_COLUMNS."""
    props = r.properties
    if isinstance(props, str):
        props = json.loads(props)
    return Version(
        namespace=r.namespace,
        name=r.dataset,
        number=r.number,
        digest=Digest.parse(r.digest) if r.digest else None,
        size=r.size,
        uri=r.uri,
        format=r.format,
        created_at=stored_time(r.created_at) or datetime.now(UTC),
        created_by=r.created_by,
        host=r.host,
        message=r.message,
        kind=r.kind,
        file_count=r.file_count,
        run_id=r.run_id,
        aliases=tuple(sorted(aliases)),
        properties=props or {},
        id=r.id,
        key=r.version_key,
    )
