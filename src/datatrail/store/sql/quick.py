"""The embedded store's fast path: SQLite without SQLAlchemy for the CLI's hottest questions.

Importing SQLAlchemy costs about 160 ms, more than everything else a re-add of
an unchanged 20,000-file tree does. :class:`EmbeddedStore` answers "is this
content already a version of that dataset?" with the standard library's
sqlite3 and opens the full :class:`SqlStore` only when something else is asked.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datatrail.core.errors import InvalidInput, StoreNotFound
from datatrail.core.model import Version
from datatrail.store.base import LOCATED, Store
from datatrail.store.delegate import DelegatingStore
from datatrail.store.sql.revisions import HEAD
from datatrail.store.sql.rows import VERSION_COLUMNS, version_from_row

_Row = namedtuple("_Row", VERSION_COLUMNS)  # type: ignore[misc]

_SELECT = (
    "SELECT v.id, v.number, v.version_key, v.digest, v.size, v.uri, v.format, v.file_count, v.created_at,"
    " v.created_by, v.host, v.message, v.properties, d.name, d.kind, n.name, r.run_id"
    " FROM versions v JOIN datasets d ON d.id = v.dataset_id JOIN namespaces n ON n.id = d.namespace_id"
    " LEFT JOIN runs r ON r.pk = v.run_pk"
)
_FIND = _SELECT + " WHERE n.name = ? AND d.name = ? AND v.version_key = ?"
_AT = _SELECT + f" WHERE (v.uri = ? OR v.digest = ?) AND d.deleted_at IS NULL ORDER BY v.id DESC LIMIT {LOCATED}"


class EmbeddedStore(DelegatingStore):
    """A SQLite store that defers SQLAlchemy until it is needed; otherwise a :class:`SqlStore`."""

    def __init__(self, uri: str, path: Path) -> None:
        self._uri = uri
        self._path = path
        self._real: Store | None = None
        self._db: sqlite3.Connection | None = None
        if not path.is_file():
            msg = f"no datatrail store at {str(path)!r}; run `datatrail init` to create one"
            raise StoreNotFound(msg)
        try:
            # Any thread may be the one that later swaps it for the full store (and closes it).
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60, check_same_thread=False)
            revision = db.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error:
            revision = None  # not a store yet, or not SQLite at all: SqlStore says which
        else:
            self._db = db
        if revision is None or revision[0] != HEAD:
            self.target()  # migrates, or refuses a newer store with a clear message

    @property
    def uri(self) -> str:
        return self._uri

    def target(self) -> Store:
        """The full SQL store, opened on first use (importing SQLAlchemy)."""
        if self._real is None:
            from datatrail.store.sql.store import SqlStore  # SQLAlchemy: only when the fast path is not enough

            self._real = SqlStore(self._uri)
            if self._db is not None:
                self._db.close()
                self._db = None
        return self._real

    def prepare(self) -> None:
        self.target()

    def find_version(self, namespace: str, name: str, version_key: str) -> Version | None:
        if self._db is None:
            return self.target().find_version(namespace, name, version_key)
        rows = [_Row(*r) for r in self._db.execute(_FIND, (namespace, name, version_key))]
        return self._versions(rows)[0] if rows else None

    def versions_at(self, uri: str, digest: str | None = None) -> list[Version]:
        if self._db is None:
            return self.target().versions_at(uri, digest)
        rows = [_Row(*r) for r in self._db.execute(_AT, (uri, digest))]
        return self._versions(rows) if rows else []

    def _versions(self, rows: Sequence[Any]) -> list[Version]:
        assert self._db is not None
        aliases: dict[int, list[str]] = {}
        marks = ",".join("?" * len(rows))
        for vid, alias in self._db.execute(
            f"SELECT version_id, alias FROM aliases WHERE version_id IN ({marks})", [r.id for r in rows]
        ):
            aliases.setdefault(vid, []).append(alias)
        return [version_from_row(r, aliases.get(r.id, [])) for r in rows]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._real is not None:
            self._real.close()


def sqlite_file(uri: str) -> Path:
    """The file of a ``sqlite:///path`` URI (``sqlite:////abs/path`` for an absolute one)."""
    rest = uri.removeprefix("sqlite:///").split("?", 1)[0] if uri.startswith("sqlite:///") else ""
    if not rest or rest == ":memory:":
        msg = f"invalid store URI {uri!r}: an embedded store needs a file, as in sqlite:///path/to/trail.db"
        raise InvalidInput(msg)
    return Path(rest)
