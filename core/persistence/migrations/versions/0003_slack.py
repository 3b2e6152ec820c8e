"""Slack connector: installations, OAuth states, channels, scored messages, events.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _workspace_fk() -> sa.Column:
    return sa.Column(
        "workspace_id",
        sa.String(32),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "slack_installations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _workspace_fk(),
        sa.Column("enterprise_key", sa.String(32), nullable=False),
        sa.Column("team_key", sa.String(32), nullable=False),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("bot_token", sa.Text(), nullable=True),
        sa.Column("installed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("enterprise_key", "team_key"),
    )
    op.create_index(
        "ix_slack_installations_workspace_id", "slack_installations", ["workspace_id"]
    )
    op.create_table(
        "slack_oauth_states",
        sa.Column("state", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(32), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "slack_channels",
        sa.Column("team_id", sa.String(32), primary_key=True),
        sa.Column("channel_id", sa.String(32), primary_key=True),
        _workspace_fk(),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("alert_channel", sa.String(32), nullable=True),
        sa.Column("alert_threshold", sa.Integer(), nullable=False),
        sa.Column("last_alert_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_slack_channels_workspace_id", "slack_channels", ["workspace_id"]
    )
    op.create_table(
        "slack_messages",
        sa.Column("team_id", sa.String(32), primary_key=True),
        sa.Column("channel_id", sa.String(32), primary_key=True),
        sa.Column("ts", sa.String(32), primary_key=True),
        _workspace_fk(),
        sa.Column("user_hash", sa.String(64), nullable=False),
        sa.Column("label", sa.String(16), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("model", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_slack_messages_workspace_id", "slack_messages", ["workspace_id"]
    )
    op.create_index("ix_slack_messages_created_at", "slack_messages", ["created_at"])
    op.create_table(
        "outbound_events",
        sa.Column("id", sa.String(40), primary_key=True),
        _workspace_fk(),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_outbound_events_workspace_id", "outbound_events", ["workspace_id"]
    )


def downgrade() -> None:
    for table in (
        "outbound_events",
        "slack_messages",
        "slack_channels",
        "slack_oauth_states",
        "slack_installations",
    ):
        op.drop_table(table)
