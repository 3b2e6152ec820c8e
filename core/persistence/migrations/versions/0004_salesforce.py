"""Salesforce connector: connections and the Cases scored.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "salesforce_connections",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.String(32),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("org_id", sa.String(32), nullable=False),
        sa.Column("instance_url", sa.String(255), nullable=False),
        sa.Column("auth_kind", sa.String(8), nullable=False),
        sa.Column("username", sa.String(255), nullable=True),
        sa.Column("access_token", sa.Text(), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("watermark_ts", sa.String(32), nullable=True),
        sa.Column("watermark_id", sa.String(18), nullable=True),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cases_scored", sa.BigInteger(), nullable=False),
        sa.Column("api_calls_last_sync", sa.Integer(), nullable=False),
        sa.Column("api_calls_total", sa.BigInteger(), nullable=False),
        sa.Column("api_usage", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "salesforce_cases",
        sa.Column(
            "connection_id",
            sa.String(32),
            sa.ForeignKey("salesforce_connections.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("case_id", sa.String(18), primary_key=True),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("label", sa.String(16), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("model", sa.String(64), nullable=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("written", sa.Boolean(), nullable=False),
        sa.Column("write_error", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("salesforce_cases")
    op.drop_table("salesforce_connections")
