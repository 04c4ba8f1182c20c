"""Each namespace's numbers of listed datasets and of jobs on its row (``namespaces.dataset_count``,
``namespaces.job_count``), kept by ingest in the transaction that adds a dataset or job, or hides or shows a
dataset: a page of a namespace's datasets or jobs (Marquez's ``totalCount``) reads them instead of counting
a million rows for every page (issue 22).

The backfill counts each namespace's rows once: 0.3-0.6 s for a million datasets on PostgreSQL
(benchmarks/list_pages.py); adding the columns touches only the small ``namespaces`` table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("namespaces") as batch:
        batch.add_column(sa.Column("dataset_count", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("job_count", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE namespaces SET"
        " dataset_count = (SELECT count(*) FROM datasets d"
        " WHERE d.namespace_id = namespaces.id AND d.deleted_at IS NULL),"
        " job_count = (SELECT count(*) FROM jobs j WHERE j.namespace_id = namespaces.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("namespaces") as batch:
        batch.drop_column("job_count")
        batch.drop_column("dataset_count")
