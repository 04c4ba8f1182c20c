"""The newest versions and the versions with a failed check (``ix_versions_created``,
``ix_check_results_failed``): the UI home page's datasets changed last and latest versions failing their
checks are read at the end of these indexes instead of the latest version of every dataset (issue 22;
24-41 s at a million datasets).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_versions_created", "versions", ["created_at", "id"])
    # As tables.py renders ``~success`` on each dialect (SQLite keeps booleans as integers).
    failed = sa.text("success = 0" if op.get_bind().dialect.name == "sqlite" else "NOT success")
    op.create_index(
        "ix_check_results_failed", "check_results", ["version_id"], sqlite_where=failed, postgresql_where=failed
    )


def downgrade() -> None:
    op.drop_index("ix_check_results_failed", table_name="check_results")
    op.drop_index("ix_versions_created", table_name="versions")
