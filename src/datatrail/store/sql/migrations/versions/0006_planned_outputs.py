"""Planned outputs, dataset links (symlinks), run states without START, where a run's start time came from, runs by
parent, versions by location (how a path finds its dataset).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "planned_outputs",
        sa.Column("run_pk", _id, primary_key=True),
        sa.Column("dataset_id", _id, primary_key=True),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "dataset_links",
        sa.Column("namespace", sa.Text(), primary_key=True),
        sa.Column("name", sa.Text(), primary_key=True),
        sa.Column("dataset_id", _id, sa.ForeignKey("datasets.id"), nullable=False),
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("start_seen", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("start_hint", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_runs_parent", "runs", ["parent_run_id"])
    op.create_index("ix_versions_uri", "versions", ["uri"])
    # A run with only a START is RUNNING: the state START is no more (stores kept it before).
    op.execute("UPDATE runs SET state = 'RUNNING' WHERE state = 'START'")


def downgrade() -> None:
    op.drop_index("ix_versions_uri", table_name="versions")
    op.drop_index("ix_runs_parent", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("start_hint")
        batch.drop_column("start_seen")
    op.drop_table("dataset_links")
    op.drop_table("planned_outputs")
