"""The stat cache's remote counterpart: (url, etag, version id, size, last modified) -> SHA-256.

It is a sibling table (``remote_stat``) in the local stat cache's SQLite file
(``.datatrail/statcache.db``): re-adding or verifying an unchanged prefix lists
it but downloads nothing. Each call opens and closes its own connection, so
the cache needs no lifetime of its own; a failure to use it only costs speed.
URLs are stored redacted, so no secret reaches the cache either.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_LOOKUP_CHUNK = 400


@dataclass(frozen=True)
class ObjectKey:
    """What a store says of an object without reading it; equal keys mean equal bytes."""

    url: str
    etag: str
    version_id: str
    size: int
    last_modified: str

    @property
    def vouches(self) -> bool:
        """Whether the key can vouch for the content (something beside the size identifies it)."""
        return bool(self.etag or self.version_id or self.last_modified)


@dataclass(frozen=True)
class Cached:
    sha256: str
    source: str  # "content" or "store-checksum"


class SqliteRemoteCache:
    """Remote object digests in the ``remote_stat`` table of one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS remote_stat (url TEXT PRIMARY KEY, etag TEXT NOT NULL,"
            " version_id TEXT NOT NULL, size INTEGER NOT NULL, last_modified TEXT NOT NULL,"
            " sha256 TEXT NOT NULL, source TEXT NOT NULL) WITHOUT ROWID"
        )
        return db

    def lookup(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, Cached]:
        wanted = {k.url: k for k in keys if k.vouches}
        if not wanted:
            return {}
        found: dict[ObjectKey, Cached] = {}
        try:
            db = self._connect()
            try:
                urls = sorted(wanted)
                for i in range(0, len(urls), _LOOKUP_CHUNK):
                    chunk = urls[i : i + _LOOKUP_CHUNK]
                    rows = db.execute(
                        "SELECT url, etag, version_id, size, last_modified, sha256, source FROM remote_stat"
                        f" WHERE url IN ({','.join('?' * len(chunk))})",
                        chunk,
                    ).fetchall()
                    for url, etag, version_id, size, last_modified, digest, source in rows:
                        key = wanted[url]
                        if (etag, version_id, size, last_modified) == (
                            key.etag,
                            key.version_id,
                            key.size,
                            key.last_modified,
                        ):
                            found[key] = Cached(digest, source)
            finally:
                db.close()
        except sqlite3.Error:
            return {}
        return found

    def store(self, items: Sequence[tuple[ObjectKey, Cached]]) -> None:
        rows = [
            (k.url, k.etag, k.version_id, k.size, k.last_modified, c.sha256, c.source) for k, c in items if k.vouches
        ]
        if not rows:
            return
        try:
            db = self._connect()
            try:
                with db:
                    db.execute("BEGIN IMMEDIATE")
                    db.executemany("INSERT OR REPLACE INTO remote_stat VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            finally:
                db.close()
        except sqlite3.Error:
            pass


__all__ = ["Cached", "ObjectKey", "SqliteRemoteCache"]
