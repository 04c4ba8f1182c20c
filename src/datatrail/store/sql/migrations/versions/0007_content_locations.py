"""Content locations: which remote (name and URL, never credentials) holds every object of a version, as pushes
recorded, so a client that lacks the remote in its own config can pull from it (docs/storage.md).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "content_locations",
        sa.Column("version_id", _id, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("url", sa.Text(), primary_key=True),
        sa.Column("remote", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("content_locations")
