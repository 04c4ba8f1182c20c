"""The Alembic migrations build exactly the schema that tables.py describes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from datatrail.store.sql import tables
from datatrail.store.sql.revisions import HEAD, REVISIONS
from datatrail.store.sql.store import SqlStore
from tests.migrate import upgrade

MIGRATIONS = Path(tables.__file__).parent / "migrations" / "versions"


def _for_dialect(dialect: str) -> Any:
    """Alembic's include_object: leaves out what tables.py declares for another database only (``ddl_if``)."""

    def include(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
        ddl_if = getattr(obj, "_ddl_if", None)
        return ddl_if is None or ddl_if.dialect in (None, dialect)

    return include


def _diff(uri: str) -> list[object]:
    store = SqlStore(uri, create=True)
    try:
        with store.engine.connect() as conn:
            opts = {"compare_type": False, "include_object": _for_dialect(conn.dialect.name)}
            ctx = MigrationContext.configure(conn, opts=opts)
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


def test_0006_turns_stored_start_states_into_running(tmp_path: Path) -> None:
    """A store of revision 0005 kept runs with only a START as state START: they read RUNNING after the upgrade."""
    engine = create_engine(f"sqlite:///{tmp_path / 'trail.db'}")
    with engine.begin() as conn:
        upgrade(conn, "0005")
        conn.execute(text("INSERT INTO namespaces (id, name, created_at) VALUES (1, 'default', '2026-01-01')"))
        conn.execute(text("INSERT INTO jobs (id, namespace_id, name, created_at) VALUES (1, 1, 'j', '2026-01-01')"))
        conn.execute(
            text(
                "INSERT INTO runs (pk, run_id, job_id, state, started_at)"
                " VALUES (1, '6e0c9a52-1d3e-4d8e-9a3b-0f2f4f1c2a11', 1, 'START', '2026-01-01')"
            )
        )
    engine.dispose()
    store = SqlStore(f"sqlite:///{tmp_path / 'trail.db'}")
    try:
        run = store.get_run("6e0c9a52-1d3e-4d8e-9a3b-0f2f4f1c2a11")
        assert run.state.value == "RUNNING" and run.planned_outputs == () and run.children == ()
    finally:
        store.close()


def test_0009_counts_each_jobs_runs(tmp_path: Path) -> None:
    """A store of revision 0008 counted no runs on the job rows: the upgrade counts them (a job without runs: 0)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'trail.db'}")
    with engine.begin() as conn:
        upgrade(conn, "0008")
        conn.execute(text("INSERT INTO namespaces (id, name, created_at) VALUES (1, 'default', '2026-01-01')"))
        for job in (1, 2):
            conn.execute(
                text(f"INSERT INTO jobs (id, namespace_id, name, created_at) VALUES ({job}, 1, 'j{job}', '2026-01-01')")
            )
        for pk in (1, 2, 3):
            conn.execute(
                text(
                    "INSERT INTO runs (pk, run_id, job_id, state, started_at)"
                    f" VALUES ({pk}, '6e0c9a52-1d3e-4d8e-9a3b-0f2f4f1c2a1{pk}', 1, 'COMPLETE', '2026-01-01')"
                )
            )
        upgrade(conn, "0009")
        counted = dict(conn.execute(text("SELECT name, run_count FROM jobs")).all())
    engine.dispose()
    assert counted == {"j1": 3, "j2": 0}


# Ingest's question for a dataset with no current version: did any run announce it (prefetch.py, apply.py)?
ANNOUNCED = "SELECT 1 FROM planned_outputs WHERE dataset_id = 7 LIMIT 1"


def test_0012_planned_outputs_found_by_dataset_on_sqlite(tmp_path: Path) -> None:
    """The primary key leads with the run: without ix_planned_outputs_dataset each question scanned them all."""
    SqlStore(f"sqlite:///{tmp_path / 'trail.db'}", create=True).close()
    engine = create_engine(f"sqlite:///{tmp_path / 'trail.db'}")
    try:
        with engine.connect() as conn:
            plan = " ".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {ANNOUNCED}")))
    finally:
        engine.dispose()
    assert "ix_planned_outputs_dataset" in plan, plan


@pytest.mark.postgres
def test_0012_planned_outputs_found_by_dataset_on_postgres(pg_uri: str) -> None:
    SqlStore(pg_uri, create=True).close()
    engine = create_engine(pg_uri)
    try:
        with engine.connect() as conn:
            conn.execute(text("SET enable_seqscan = off"))  # a tiny table: can the planner use the index?
            plan = " ".join(str(r[0]) for r in conn.execute(text(f"EXPLAIN {ANNOUNCED}")))
    finally:
        engine.dispose()
    assert "ix_planned_outputs_dataset" in plan, plan
