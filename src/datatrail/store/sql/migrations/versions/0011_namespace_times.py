"""A namespace's listed datasets and its jobs by creation time (``ix_datasets_created``, ``ix_jobs_created``):
Marquez's namespace list and namespace (``createdAt``, ``updatedAt``) read the first and last of each at the
ends of these indexes instead of every dataset and job of the store (issue 22; 35 s at a million datasets).

Building the dataset index reads the table once (about a second per million datasets on PostgreSQL,
benchmarks/namespace_pages.py).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    listed = sa.text("deleted_at IS NULL")
    op.create_index(
        "ix_datasets_created",
        "datasets",
        ["namespace_id", "created_at"],
        sqlite_where=listed,
        postgresql_where=listed,
    )
    op.create_index("ix_jobs_created", "jobs", ["namespace_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_created", table_name="jobs")
    op.drop_index("ix_datasets_created", table_name="datasets")
