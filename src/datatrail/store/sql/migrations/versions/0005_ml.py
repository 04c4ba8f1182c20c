"""Deployments and drift reports (ML lifecycle).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", _id, primary_key=True),
        sa.Column("run_pk", _id, sa.ForeignKey("runs.pk"), nullable=False),
        sa.Column("event_id", _id, nullable=False),
        sa.Column("environment", sa.Text(), nullable=False),
        sa.Column("dataset_id", _id, sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("version_id", _id, sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("deployed_at", _time, nullable=False),
        sa.Column("deployed_by", sa.Text(), nullable=True),
        sa.Column("retired_at", _time, nullable=True),
        sa.Column("retired_by_run_pk", _id, nullable=True),
        sa.UniqueConstraint("run_pk", name="uq_deployments_run"),
    )
    op.create_index("ix_deployments_env", "deployments", ["environment", "dataset_id", "deployed_at"])
    op.create_index("ix_deployments_version", "deployments", ["version_id"])
    op.create_table(
        "drift_reports",
        sa.Column("id", _id, primary_key=True),
        sa.Column("run_pk", _id, sa.ForeignKey("runs.pk"), nullable=False),
        sa.Column("event_id", _id, nullable=False),
        sa.Column("reference_version_id", _id, sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("current_version_id", _id, sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("environment", sa.Text(), nullable=True),
        sa.Column("deployment_run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", _time, nullable=False),
        sa.Column("drifted", sa.Boolean(), nullable=False),
        sa.Column("report", _json, nullable=False),
        sa.UniqueConstraint("run_pk", name="uq_drift_reports_run"),
    )
    op.create_index("ix_drift_reports_env", "drift_reports", ["environment", "created_at"])
    op.create_index("ix_drift_reports_current", "drift_reports", ["current_version_id"])


def downgrade() -> None:
    op.drop_index("ix_drift_reports_current", table_name="drift_reports")
    op.drop_index("ix_drift_reports_env", table_name="drift_reports")
    op.drop_table("drift_reports")
    op.drop_index("ix_deployments_version", table_name="deployments")
    op.drop_index("ix_deployments_env", table_name="deployments")
    op.drop_table("deployments")
