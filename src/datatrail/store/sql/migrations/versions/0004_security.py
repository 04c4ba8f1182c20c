"""Principals, tokens, grants and column classifications (access control).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", _id, primary_key=True),
        sa.Column("name", sa.Text(), nullable=False, unique=True),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", _time, nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("user_id", _id, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("secret_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("created_at", _time, nullable=False),
        sa.Column("expires_at", _time, nullable=True),
        sa.Column("revoked_at", _time, nullable=True),
    )
    op.create_index("ix_tokens_user", "tokens", ["user_id"])
    op.create_table(
        "grants",
        sa.Column("user_id", _id, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("role", sa.String(length=16), primary_key=True),
        sa.Column("pattern", sa.Text(), primary_key=True),
        sa.Column("created_at", _time, nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
    )
    op.create_table(
        "classifications",
        sa.Column("dataset_id", _id, sa.ForeignKey("datasets.id"), primary_key=True),
        sa.Column("column_name", sa.Text(), primary_key=True),
        sa.Column("label", sa.String(length=64), primary_key=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("event_id", _id, nullable=True),
        sa.Column("created_at", _time, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("classifications")
    op.drop_table("grants")
    op.drop_index("ix_tokens_user", table_name="tokens")
    op.drop_table("tokens")
    op.drop_table("users")
