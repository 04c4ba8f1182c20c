"""Stores, chosen by URI."""

from __future__ import annotations

from datatrail.errors import InvalidInput
from datatrail.store.base import Store


def open_store(uri: str, *, create: bool = False) -> Store:
    """Open the store a URI names: ``sqlite:///path`` or ``postgresql://…``."""
    if uri.startswith("sqlite:") and not create:
        from datatrail.store.sql.quick import EmbeddedStore, sqlite_file

        return EmbeddedStore(uri, sqlite_file(uri))
    if uri.startswith(("sqlite:", "postgresql:", "postgres:", "postgresql+psycopg:")):
        from datatrail.store.sql.store import SqlStore

        return SqlStore(uri, create=create)
    if uri.startswith(("http://", "https://")):
        msg = f"the HTTP store ({uri}) is not available yet; use sqlite:/// or postgresql:// for now"
        raise InvalidInput(msg)
    msg = f"unsupported store URI {uri!r}: use sqlite:///path/trail.db or postgresql://user@host:port/db"
    raise InvalidInput(msg)


__all__ = ["Store", "open_store"]
