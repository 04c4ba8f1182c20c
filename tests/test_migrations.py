"""The Alembic migrations build exactly the schema that tables.py describes."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from datatrail.store.sql import tables
from datatrail.store.sql.revisions import HEAD, REVISIONS
from datatrail.store.sql.store import SqlStore

MIGRATIONS = Path(tables.__file__).parent / "migrations" / "versions"


def _diff(uri: str) -> list[object]:
    store = SqlStore(uri, create=True)
    try:
        with store.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": False})
            return list(compare_metadata(ctx, tables.metadata))
    finally:
        store.close()


def test_migrated_sqlite_schema_matches_tables(tmp_path: Path) -> None:
    assert _diff(f"sqlite:///{tmp_path / 'trail.db'}") == []


@pytest.mark.postgres
def test_migrated_postgres_schema_matches_tables(pg_uri: str) -> None:
    assert _diff(pg_uri) == []


def test_revisions_list_every_migration_in_order() -> None:
    files = sorted(p.name.split("_", 1)[0] for p in MIGRATIONS.glob("[0-9]*.py"))
    assert tuple(files) == REVISIONS
    assert files[-1] == HEAD
