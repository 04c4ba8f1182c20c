"""Planned outputs by dataset (``ix_planned_outputs_dataset``): ingest asks, for a dataset with no version
current at an event's time, whether any run announced it as an output (store/sql/prefetch.py, apply.py
``_announced``). The primary key leads with the run, so without this index each such question scanned
every planned output of the store; Airflow and Spark name their outputs in every START event.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_planned_outputs_dataset", "planned_outputs", ["dataset_id"])


def downgrade() -> None:
    op.drop_index("ix_planned_outputs_dataset", table_name="planned_outputs")
