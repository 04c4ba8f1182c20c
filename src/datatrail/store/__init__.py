"""Stores, chosen by URI."""

from __future__ import annotations

from datatrail.core.errors import InvalidInput
from datatrail.store.base import Store


def open_store(uri: str, *, create: bool = False, token: str | None = None) -> Store:
    """Open the store a URI names: ``sqlite:///path``, ``postgresql://…`` or ``http(s)://host:port``.

    ``token`` (else ``$DATATRAIL_TOKEN``) authenticates to a remote server; local stores ignore it.
    """
    if uri.startswith("sqlite:") and not create:
        from datatrail.store.sql.quick import EmbeddedStore, sqlite_file

        return EmbeddedStore(uri, sqlite_file(uri))
    if uri.startswith(("sqlite:", "postgresql:", "postgres:", "postgresql+psycopg:")):
        from datatrail.store.sql.store import SqlStore

        return SqlStore(uri, create=create)
    if uri.startswith(("http://", "https://")):
        from datatrail.store.http import HttpStore  # httpx: for a remote store only (start-up)

        return HttpStore(uri, token=token)
    msg = (
        f"unsupported store URI {uri!r}: use sqlite:///path/trail.db, postgresql://user@host:port/db"
        " or http://host:port"
    )
    raise InvalidInput(msg)


__all__ = ["Store", "open_store"]
