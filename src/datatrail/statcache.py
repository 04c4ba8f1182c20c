"""A local stat cache: (device, inode, size, mtime_ns) -> SHA-256 of the file's bytes.

It lives beside the store's config (``.datatrail/statcache.db``), not in the
store, because it describes this machine's files. It uses the standard
library's sqlite3 rather than SQLAlchemy: it is a key-value table on the hot
path of re-adding 100,000 files, and a failure to write it only costs speed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from datatrail.hashing import StatKey

_LOOKUP_CHUNK = 500


class SqliteStatCache:
    """The stat cache in one SQLite file; safe to share between processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS stat (dev INTEGER, ino INTEGER, size INTEGER,"
                " mtime_ns INTEGER, sha256 TEXT NOT NULL, PRIMARY KEY (dev, ino)) WITHOUT ROWID"
            )
            # One row per directory hashed: the fingerprint of its last vouched listing (hashing.known_tree).
            db.execute(
                "CREATE TABLE IF NOT EXISTS tree (root TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,"
                " sha256 TEXT NOT NULL, size INTEGER NOT NULL)"
            )
            self._db = db
        return self._db

    def lookup(self, keys: Sequence[StatKey]) -> dict[StatKey, str]:
        if not keys:
            return {}
        try:
            db = self._conn()
            wanted = set(keys)
            found: dict[StatKey, str] = {}
            by_dev: dict[int, set[int]] = {}
            for dev, ino, _, _ in wanted:
                by_dev.setdefault(_s64(dev), set()).add(_s64(ino))
            for dev, ino_set in by_dev.items():
                # With the device given, the primary key (dev, ino) finds each row;
                # on inode alone SQLite scans the whole table once per chunk.
                inos = sorted(ino_set)
                for i in range(0, len(inos), _LOOKUP_CHUNK):
                    chunk = inos[i : i + _LOOKUP_CHUNK]
                    marks = ",".join("?" * len(chunk))
                    rows = db.execute(
                        f"SELECT ino, size, mtime_ns, sha256 FROM stat WHERE dev = ? AND ino IN ({marks})",
                        (dev, *chunk),
                    ).fetchall()
                    for ino, size, mtime_ns, digest in rows:
                        key = (_u64(dev), _u64(ino), size, mtime_ns)
                        if key in wanted:
                            found[key] = digest
            return found
        except (sqlite3.Error, OverflowError):
            return {}

    def store(self, items: Sequence[tuple[StatKey, str]]) -> None:
        try:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT OR REPLACE INTO stat (dev, ino, size, mtime_ns, sha256) VALUES (?, ?, ?, ?, ?)",
                [(_s64(k[0]), _s64(k[1]), k[2], k[3], d) for k, d in items],
            )
            db.execute("COMMIT")
        except (sqlite3.Error, OverflowError):
            if self._db is not None and self._db.in_transaction:
                self._db.execute("ROLLBACK")

    def lookup_tree(self, root: str) -> tuple[str, str, int] | None:
        try:
            row = self._conn().execute("SELECT fingerprint, sha256, size FROM tree WHERE root = ?", (root,)).fetchone()
        except sqlite3.Error:
            return None
        return (str(row[0]), str(row[1]), int(row[2])) if row is not None else None

    def store_tree(self, root: str, fingerprint: str, digest: str, size: int) -> None:
        try:
            self._conn().execute(
                "INSERT OR REPLACE INTO tree (root, fingerprint, sha256, size) VALUES (?, ?, ?, ?)",
                (root, fingerprint, digest, size),
            )
        except sqlite3.Error:
            return

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


# SQLite integers are signed 64-bit; some file systems hand out device and inode
# numbers of 2**63 and more. Store them in two's complement.
def _s64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _u64(value: int) -> int:
    return value + (1 << 64) if value < 0 else value
