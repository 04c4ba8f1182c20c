"""Each job's number of runs on its row (``jobs.run_count``), counted by ingest as each run is stored: a page
of jobs (Marquez's ``/namespaces/{ns}/jobs``, search, lineage graphs) reads it instead of counting the runs of
each job in the ``ix_runs_job`` index (issue 22: thousands of runs per job at 10M events).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("run_count", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute("UPDATE jobs SET run_count = (SELECT count(*) FROM runs WHERE runs.job_id = jobs.id)")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("run_count")
