"""A database brought to a given schema revision, for tests (and benchmarks) of what an upgrade does."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from datatrail.store.sql import tables
from tests import pgserver

MIGRATIONS = Path(tables.__file__).parent / "migrations"


def upgrade(conn: Connection, revision: str) -> None:
    """Apply the migrations up to ``revision`` on ``conn`` (in its transaction)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def empty_postgres(server: pgserver.PgServer) -> str:
    """The SQLAlchemy URI of a new empty database (no revision applied yet) on ``server``."""
    name = f"m{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.uri, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.database_uri(name).replace("postgresql://", "postgresql+psycopg://")
