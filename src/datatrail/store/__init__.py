"""Stores, chosen by URI: opening one, and backing one up."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from datatrail.core.errors import InvalidInput
from datatrail.store.base import Store

if TYPE_CHECKING:  # annotations only: opening a store for a read builds no result types (start-up)
    from datatrail.core.results import BackupInfo

_SQL = ("sqlite:", "postgresql:", "postgres:", "postgresql+psycopg:")
_POSTGRESQL = ("postgresql:", "postgres:", "postgresql+psycopg:")
_HTTP = ("http://", "https://")
PG_ADVICE = (
    "back up a PostgreSQL store with PostgreSQL's tools: `pg_dump -Fc DBNAME > trail.dump` (restore with"
    " `pg_restore -d DBNAME trail.dump`) or continuous archiving for point-in-time recovery;"
    " see docs/reliability.md"
)
HTTP_ADVICE = "back up a remote store on the server's host (`datatrail backup create` there); see docs/reliability.md"


def open_store(uri: str, *, create: bool = False, token: str | None = None) -> Store:
    """Open the store a URI names: ``sqlite:///path``, ``postgresql://…`` or ``http(s)://host:port``.

    ``token`` authenticates to a remote server (``config.token_for`` decides which one may be sent);
    local stores ignore it.
    """
    if uri.startswith("sqlite:") and not create:
        from datatrail.store.sql.quick import EmbeddedStore, sqlite_file  # sqlite3: only for an embedded store

        return EmbeddedStore(uri, sqlite_file(uri))
    if uri.startswith(_SQL):
        from datatrail.store.sql.store import SqlStore  # SQLAlchemy: only for a store that needs it now

        return SqlStore(uri, create=create)
    if uri.startswith(_HTTP):
        from datatrail.store.http import HttpStore  # the HTTP client: only for a remote store

        return HttpStore(uri, token=token)
    msg = (
        f"unsupported store URI {uri!r}: use sqlite:///path/trail.db, postgresql://user@host:port/db"
        " or http://host:port"
    )
    raise InvalidInput(msg)


def check_settings() -> None:
    """Refuse a bad setting of the SQL store's memories (``$DATATRAIL_ID_MEMORY_MB``,
    ``$DATATRAIL_LINEAGE_CACHE_MB``) or of its graphs' bound (``$DATATRAIL_LINEAGE_MAX_NODES``) with its
    one-line InvalidInput, before a server starts its workers."""
    from datatrail.core.limits import graph_limit  # only when asked, as the others (start-up)
    from datatrail.store.sql.nodecache import cache_bytes  # the SQL store's modules: only when asked
    from datatrail.store.sql.transaction import id_memory_bytes  # SQLAlchemy: only when asked (start-up)

    id_memory_bytes()
    cache_bytes()
    graph_limit()


def _sqlite_file(uri: str) -> Path:
    """The file of an embedded store's URI; InvalidInput, saying what to do instead, for any other store."""
    if uri.startswith(_POSTGRESQL):
        raise InvalidInput(PG_ADVICE)
    if uri.startswith(_HTTP):
        raise InvalidInput(HTTP_ADVICE)
    from datatrail.store.sql.quick import sqlite_file  # sqlite3: only for an embedded store

    return sqlite_file(uri)


def backup_store(uri: str, target: Path, *, force: bool = False) -> BackupInfo:
    """Copy the embedded store ``uri`` to the new file ``target``: one consistent snapshot, checked.

    >>> backup_store("sqlite:////srv/.datatrail/trail.db", Path("/backups/trail.db"))  # doctest: +SKIP
    """
    live = _sqlite_file(uri)
    from datatrail.store.sql.backup import create_backup  # SQLAlchemy: only when a backup is made

    return create_backup(live, Path(target), force=force)


def restore_store(uri: str, source: Path) -> BackupInfo:
    """Check the backup ``source`` and replace the embedded store ``uri`` with it, in one transaction.

    >>> restore_store("sqlite:////srv/.datatrail/trail.db", Path("/backups/trail.db"))  # doctest: +SKIP
    """
    live = _sqlite_file(uri)
    from datatrail.store.sql.backup import restore_backup  # SQLAlchemy: only when a backup is restored

    return restore_backup(live, Path(source))


__all__ = [
    "HTTP_ADVICE",
    "PG_ADVICE",
    "Store",
    "backup_store",
    "check_settings",
    "open_store",
    "restore_store",
]
