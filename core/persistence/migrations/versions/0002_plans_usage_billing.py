"""Plans, usage ledger, usage events and Stripe billing state.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

WORKSPACE_COLUMNS = [
    sa.Column("plan", sa.String(16), nullable=False, server_default="basic"),
    sa.Column("stripe_customer_id", sa.String(255), nullable=True),
    sa.Column("stripe_subscription_id", sa.String(255), nullable=True),
    sa.Column("subscription_status", sa.String(32), nullable=True),
    sa.Column("current_period_end", sa.DateTime(timezone=True), nullable=True),
    sa.Column(
        "cancel_at_period_end", sa.Boolean(), nullable=False, server_default=sa.false()
    ),
    sa.Column("payment_failed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("billing_updated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("pending_checkout_id", sa.String(255), nullable=True),
]


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        for column in WORKSPACE_COLUMNS:
            batch.add_column(column)
        batch.create_unique_constraint(
            "uq_workspaces_stripe_customer_id", ["stripe_customer_id"]
        )
    op.create_table(
        "usage_daily",
        sa.Column(
            "workspace_id",
            sa.String(32),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("source", sa.String(16), primary_key=True),
        sa.Column("api_key_id", sa.String(32), primary_key=True),
        sa.Column("label", sa.String(16), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "usage_flushes",
        sa.Column("batch_id", sa.String(40), primary_key=True),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_usage_flushes_workspace_id", "usage_flushes", ["workspace_id"])
    op.create_table(
        "usage_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "workspace_id",
            sa.String(32),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("quota", sa.BigInteger(), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("workspace_id", "period", "threshold", "quota"),
    )
    op.create_index("ix_usage_events_workspace_id", "usage_events", ["workspace_id"])
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("workspace_id", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("stripe_events")
    op.drop_index("ix_usage_events_workspace_id", table_name="usage_events")
    op.drop_table("usage_events")
    op.drop_index("ix_usage_flushes_workspace_id", table_name="usage_flushes")
    op.drop_table("usage_flushes")
    op.drop_table("usage_daily")
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_constraint("uq_workspaces_stripe_customer_id", type_="unique")
        for column in reversed(WORKSPACE_COLUMNS):
            batch.drop_column(column.name)
