"""Standard OpenLineage facets on datasets, versions, jobs and runs; column lineage.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_time = sa.DateTime(timezone=True)


def upgrade() -> None:
    for table in ("datasets", "jobs"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("facets", _json, nullable=True))
            batch.add_column(sa.Column("facets_time", _time, nullable=True))
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("lifecycle", sa.String(length=32), nullable=True))
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("schema", _json, nullable=True))
        batch.add_column(sa.Column("stats", _json, nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("facets", _json, nullable=True))
    op.create_table(
        "column_edges",
        sa.Column("output_version_id", _id, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("output_column", sa.Text(), primary_key=True),
        sa.Column("input_version_id", _id, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("input_column", sa.Text(), primary_key=True),
        sa.Column("transformations", _json, nullable=True),
        sa.Column("run_pk", _id, nullable=True),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_column_edges_input", "column_edges", ["input_version_id", "input_column"])


def downgrade() -> None:
    op.drop_index("ix_column_edges_input", table_name="column_edges")
    op.drop_table("column_edges")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("facets")
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("stats")
        batch.drop_column("schema")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("lifecycle")
    for table in ("jobs", "datasets"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("facets_time")
            batch.drop_column("facets")
