"""Indexes for a store used for a year (issue 22): listed datasets by namespace and name (pages and counts
walk the index), and on PostgreSQL pg_trgm's GIN indexes for search (dataset and job names) and for a
dataset's audit entries (the audit target), and partial indexes of the names outside printable ASCII
(which search always checks: Unicode case folding may make them match where ILIKE does not).

pg_trgm ships with PostgreSQL (the contrib package of most distributions) and is a trusted extension (13+):
a database owner may create it. When it cannot be created the trigram indexes are left out, a warning says
so, and search and the audit filter work as before, by scanning.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TRIGRAMS = (
    ("ix_datasets_name_trgm", "datasets", "name"),
    ("ix_jobs_name_trgm", "jobs", "name"),
    ("ix_audit_target_trgm", "audit", "target"),
)


def upgrade() -> None:
    listed = sa.text("deleted_at IS NULL")
    op.create_index(
        "ix_datasets_listed", "datasets", ["namespace_id", "name"], sqlite_where=listed, postgresql_where=listed
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    for index, table in (("ix_datasets_name_wide", "datasets"), ("ix_jobs_name_wide", "jobs")):
        # Names with a character outside printable ASCII, which search always checks (Unicode case folding).
        op.create_index(index, table, ["id"], postgresql_where=sa.text("name ~ '[^ -~]'"))
    if not _trigram_extension():
        return
    for index, table, column in TRIGRAMS:
        op.create_index(index, table, [column], postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"})


def _trigram_extension() -> bool:
    """Whether pg_trgm is there (created now if need be); a warning, not a failure, when it cannot be."""
    bind = op.get_bind()
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:
        first = str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc)
        logging.getLogger("datatrail").warning(
            "PostgreSQL's pg_trgm extension could not be created (%s): search and a dataset's audit entries"
            " scan instead of using trigram indexes; to index them, install PostgreSQL's contrib package, run"
            " `CREATE EXTENSION pg_trgm` in the database and the CREATE INDEX statements of migration 0008",
            first,
        )
        return False
    return True


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for index in (*(i for i, _, _ in TRIGRAMS), "ix_datasets_name_wide", "ix_jobs_name_wide"):
            op.execute(f"DROP INDEX IF EXISTS {index}")
    op.drop_index("ix_datasets_listed", table_name="datasets")
