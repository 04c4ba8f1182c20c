"""Profiles on versions, and check results.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("profile", _json, nullable=True))
    op.create_table(
        "check_results",
        sa.Column("id", _id, primary_key=True),
        sa.Column("version_id", _id, sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("event_id", _id, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("column_name", sa.Text(), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("observed", _json, nullable=True),
        sa.Column("expected", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_by", sa.Text(), nullable=True),
        sa.UniqueConstraint("event_id", "version_id", "position", name="uq_check_results_event"),
    )
    op.create_index("ix_check_results_version", "check_results", ["version_id", "checked_at"])


def downgrade() -> None:
    op.drop_index("ix_check_results_version", table_name="check_results")
    op.drop_table("check_results")
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("profile")
