"""Slack: per-channel reaction emoji; Salesforce: failed write attempts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("slack_channels") as batch:
        batch.add_column(
            sa.Column("reactions", sa.Text(), nullable=False, server_default="{}")
        )
    with op.batch_alter_table("salesforce_cases") as batch:
        batch.add_column(
            sa.Column(
                "write_attempts", sa.Integer(), nullable=False, server_default="0"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("salesforce_cases") as batch:
        batch.drop_column("write_attempts")
    with op.batch_alter_table("slack_channels") as batch:
        batch.drop_column("reactions")
