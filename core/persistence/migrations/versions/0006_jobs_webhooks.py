"""Async batch jobs and outbound webhooks.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def _workspace_fk() -> sa.Column[str]:
    return sa.Column(
        "workspace_id",
        sa.String(32),
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(
            sa.Column(
                "keep_job_inputs", sa.Boolean(), nullable=False, server_default="0"
            )
        )
    op.create_index("ix_outbound_events_created_at", "outbound_events", ["created_at"])
    op.create_table(
        "batch_jobs",
        sa.Column("id", sa.String(40), primary_key=True),
        _workspace_fk(),
        sa.Column("api_key_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.String(64), nullable=True),
        sa.Column("sentences", sa.Boolean(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Integer(), nullable=False),
        sa.Column("invalid", sa.Integer(), nullable=False),
        sa.Column("scored", sa.Integer(), nullable=False),
        sa.Column("next_index", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("usage_day", sa.Date(), nullable=False),
        sa.Column("released", sa.Integer(), nullable=False),
        sa.Column("keep_input", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("lease_until", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("started_at", TZ, nullable=True),
        sa.Column("finished_at", TZ, nullable=True),
        sa.Column("expires_at", TZ, nullable=True),
    )
    op.create_index("ix_batch_jobs_workspace_id", "batch_jobs", ["workspace_id"])
    op.create_index("ix_batch_jobs_status", "batch_jobs", ["status"])
    op.create_index("ix_batch_jobs_expires_at", "batch_jobs", ["expires_at"])
    op.create_table(
        "batch_job_items",
        sa.Column(
            "job_id",
            sa.String(40),
            sa.ForeignKey("batch_jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("idx", sa.Integer(), primary_key=True),
        sa.Column("external_id", sa.String(255), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(40), primary_key=True),
        _workspace_fk(),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("event_types", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("previous_secret", sa.Text(), nullable=True),
        sa.Column("previous_secret_until", TZ, nullable=True),
        sa.Column("failing_since", TZ, nullable=True),
        sa.Column("disabled_reason", sa.String(255), nullable=True),
        sa.Column("disabled_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index(
        "ix_webhook_endpoints_workspace_id", "webhook_endpoints", ["workspace_id"]
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "endpoint_id",
            sa.String(40),
            sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "event_id",
            sa.String(40),
            sa.ForeignKey("outbound_events.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("workspace_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("endpoint_id", "event_id"),
    )
    for column in ("endpoint_id", "event_id", "workspace_id", "next_attempt_at"):
        op.create_index(
            f"ix_webhook_deliveries_{column}", "webhook_deliveries", [column]
        )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "delivery_id",
            sa.String(40),
            sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("endpoint_id", sa.String(40), nullable=False),
        sa.Column("attempted_at", TZ, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("response_excerpt", sa.Text(), nullable=True),
        sa.Column("error", sa.String(255), nullable=True),
        sa.Column("manual", sa.Boolean(), nullable=False),
    )
    op.create_index(
        "ix_webhook_attempts_delivery_id", "webhook_attempts", ["delivery_id"]
    )
    op.create_index(
        "ix_webhook_attempts_endpoint_id", "webhook_attempts", ["endpoint_id"]
    )


def downgrade() -> None:
    for table in (
        "webhook_attempts",
        "webhook_deliveries",
        "webhook_endpoints",
        "batch_job_items",
        "batch_jobs",
    ):
        op.drop_table(table)
    op.drop_index("ix_outbound_events_created_at", "outbound_events")
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("keep_job_inputs")
