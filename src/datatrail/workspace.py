"""The folder datasets are named relative to, and where this machine keeps its caches (digests, objects)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from datatrail.config import Location
from datatrail.core.errors import InvalidInput

if TYPE_CHECKING:
    from datatrail.statcache import SqliteStatCache


class Workspace:
    """The folder datasets are named relative to, and this machine's caches of file and object digests."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self._stat_cache: SqliteStatCache | None = None

    @property
    def root(self) -> Path:
        return self.location.root

    @property
    def cache_path(self) -> Path:
        """The SQLite file of both caches: in ``.datatrail/``, else under ``$XDG_CACHE_HOME/datatrail/``."""
        if self.location.config_dir is not None:
            return self.location.config_dir / "statcache.db"
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        return Path(base) / "datatrail" / "statcache.db"

    def stat_cache(self) -> SqliteStatCache:
        if self._stat_cache is None:
            from datatrail.statcache import SqliteStatCache  # start-up: a push or a read hashes nothing

            self._stat_cache = SqliteStatCache(self.cache_path)
        return self._stat_cache

    @property
    def objects_dir(self) -> Path:
        """Where models saved from memory are kept: ``.datatrail/objects/`` (beside the config, or in the root)."""
        return (self.location.config_dir or (self.root / ".datatrail")) / "objects"

    def default_name(self, path: Path) -> str:
        """The dataset name for a path: its location relative to the root."""
        resolved = path.resolve()
        try:
            rel = resolved.relative_to(self.root)
        except ValueError:
            msg = f"{os.fspath(path)!r} is outside the store's root {os.fspath(self.root)!r}; give a name with --name"
            raise InvalidInput(msg) from None
        if not rel.parts:
            msg = "the store's root itself needs a name; give one with --name"
            raise InvalidInput(msg)
        return rel.as_posix()

    def close(self) -> None:
        if self._stat_cache is not None:
            self._stat_cache.close()
