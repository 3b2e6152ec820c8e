"""SQLAlchemy 2.0 typed models.

Ids are random strings with a type prefix (``ws_``, ``key_``): they appear in
URLs and API answers, and unguessable ids are one more guard between tenants.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """Attach UTC to a naive datetime (SQLite does not keep the zone)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def new_id(prefix: str) -> str:
    """A random id such as ``ws_3f9a1c2e7b4d5a60``."""
    return f"{prefix}_{secrets.token_hex(8)}"


class Base(DeclarativeBase):
    """Declarative base of all models."""


class Workspace(Base):
    """A tenant: owns API keys, usage, its plan and its Stripe subscription.

    ``plan`` is the plan paid for (or set by an operator); the plan in force
    also depends on the subscription fields, see ``core.billing.state``.
    """

    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(
        String(32), primary_key=True, default=lambda: new_id("ws")
    )
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )
    plan: Mapped[str] = mapped_column(String(16), default="basic")
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255))
    subscription_status: Mapped[str | None] = mapped_column(String(32))
    current_period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    payment_failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    billing_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pending_checkout_id: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(100))
    accent_color: Mapped[str | None] = mapped_column(String(7))
    logo_png: Mapped[bytes | None] = mapped_column(LargeBinary)
    keep_job_inputs: Mapped[bool] = mapped_column(Boolean, default=False)
    """Keep a batch job's texts after it finished (off: they are deleted)."""
    api_keys: Mapped[list[ApiKey]] = relationship(back_populates="workspace")


class ApiKey(Base):
    """An API key, stored only as a SHA-256 hash plus a display prefix."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(
        String(32), primary_key=True, default=lambda: new_id("key")
    )
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    workspace: Mapped[Workspace] = relationship(back_populates="api_keys")


class UsageDaily(Base):
    """Scored texts per workspace, day (UTC), source, API key and label.

    ``api_key_id`` is ``""`` for usage without a key (Slack, Salesforce). No
    text is ever stored here.
    """

    __tablename__ = "usage_daily"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    api_key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class UsageFlush(Base):
    """A flush batch applied to ``usage_daily``: makes the flush idempotent."""

    __tablename__ = "usage_flushes"

    batch_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(32), index=True)
    units: Mapped[int] = mapped_column(BigInteger)
    applied_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )


class UsageEvent(Base):
    """A usage threshold crossed, recorded once per workspace, period and quota."""

    __tablename__ = "usage_events"
    __table_args__ = (UniqueConstraint("workspace_id", "period", "threshold", "quota"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    period: Mapped[str] = mapped_column(String(7))
    threshold: Mapped[int] = mapped_column(Integer)
    quota: Mapped[int] = mapped_column(BigInteger)
    used: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )


class StripeEvent(Base):
    """A Stripe webhook event processed (its id makes handling idempotent)."""

    __tablename__ = "stripe_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    workspace_id: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    processed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )


class SlackInstallation(Base):
    """A Slack app installation (one per team, or per org for org-wide installs).

    Mirrors ``slack_sdk.oauth.installation_store.Installation``; the connector's
    store converts. ``workspace_id`` is the Tonehub workspace it meters to.
    """

    __tablename__ = "slack_installations"
    __table_args__ = (UniqueConstraint("enterprise_key", "team_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    enterprise_key: Mapped[str] = mapped_column(String(32))
    """``enterprise_id`` or ``""`` (unique constraints and NULL do not mix)."""
    team_key: Mapped[str] = mapped_column(String(32))
    """``team_id``, or ``""`` for an org-wide install."""
    is_enterprise_install: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[str] = mapped_column(Text)
    """The installation as slack_sdk's ``to_dict()``, JSON (tokens included)."""
    bot_token: Mapped[str | None] = mapped_column(Text)
    installed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )


class SlackOAuthState(Base):
    """An OAuth ``state``: single use, short-lived, maybe bound to a workspace."""

    __tablename__ = "slack_oauth_states"

    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str | None] = mapped_column(String(32))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SlackChannel(Base):
    """Per-channel settings and alert state."""

    __tablename__ = "slack_channels"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    mode: Mapped[str] = mapped_column(String(16), default="reactions")
    alert_channel: Mapped[str | None] = mapped_column(String(32))
    alert_threshold: Mapped[int] = mapped_column(Integer, default=50)
    last_alert_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reactions: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
    """JSON: emoji name per label, overriding ``writeback.REACTIONS``."""


class SlackMessage(Base):
    """A scored Slack message: no text, the author only as a salted hash."""

    __tablename__ = "slack_messages"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    ts: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    user_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float)
    confidence: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="claimed")
    """claimed, scored, done (written back), skipped (quota)."""
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class OutboundEvent(Base):
    """An event for outbound webhooks; ``core.webhooks`` fans it out to endpoints."""

    __tablename__ = "outbound_events"

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: new_id("evt")
    )
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class SalesforceConnection(Base):
    """A Salesforce org connected to a workspace (one per workspace).

    Tokens are stored encrypted (``core.secrets``); ``status`` is one of
    ``connected``, ``paused_budget``, ``paused_quota``, ``auth_revoked``,
    ``error``.
    """

    __tablename__ = "salesforce_connections"

    id: Mapped[str] = mapped_column(
        String(32), primary_key=True, default=lambda: new_id("sfc")
    )
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), unique=True
    )
    org_id: Mapped[str] = mapped_column(String(32))
    instance_url: Mapped[str] = mapped_column(String(255))
    auth_kind: Mapped[str] = mapped_column(String(8))
    """``oauth`` (web-server flow, refresh token) or ``jwt`` (bearer flow)."""
    username: Mapped[str | None] = mapped_column(String(255))
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="connected")
    last_error: Mapped[str | None] = mapped_column(Text)
    settings: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: field names, text fields, sync interval."""
    watermark_ts: Mapped[str | None] = mapped_column(String(32))
    watermark_id: Mapped[str | None] = mapped_column(String(18))
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cases_scored: Mapped[int] = mapped_column(BigInteger, default=0)
    api_calls_last_sync: Mapped[int] = mapped_column(Integer, default=0)
    api_calls_total: Mapped[int] = mapped_column(BigInteger, default=0)
    api_usage: Mapped[str | None] = mapped_column(String(32))
    """The org's daily use from ``Sforce-Limit-Info``, ``"used/max"``."""
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )


class SalesforceCase(Base):
    """What Tonehub knows of a Case: the hash of its text and its score."""

    __tablename__ = "salesforce_cases"

    connection_id: Mapped[str] = mapped_column(
        ForeignKey("salesforce_connections.id", ondelete="CASCADE"), primary_key=True
    )
    case_id: Mapped[str] = mapped_column(String(18), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float)
    confidence: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str | None] = mapped_column(String(64))
    scored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    written: Mapped[bool] = mapped_column(Boolean, default=False)
    write_error: Mapped[str | None] = mapped_column(Text)
    write_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Failed writes of the current score (retries stop at a cap)."""


class User(Base):
    """A person who signs in to the dashboard (argon2 password hash only)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(
        String(32), primary_key=True, default=lambda: new_id("usr")
    )
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )


class Membership(Base):
    """A user's role in a workspace: ``owner`` or ``member``."""

    __tablename__ = "memberships"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )


class Invite(Base):
    """A single-use link that makes its holder a member of a workspace."""

    __tablename__ = "invites"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class BatchJob(Base):
    """An async scoring job: its state, progress and quota reservation.

    ``next_index`` is the checkpoint: every item before it has its result
    stored (in the same transaction that moved it and recorded the usage).
    """

    __tablename__ = "batch_jobs"

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: new_id("job")
    )
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    api_key_id: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    model: Mapped[str | None] = mapped_column(String(64))
    sentences: Mapped[bool] = mapped_column(Boolean, default=False)
    total: Mapped[int] = mapped_column(Integer)
    cost: Mapped[int] = mapped_column(Integer)
    """Items that passed validation: the units reserved."""
    invalid: Mapped[int] = mapped_column(Integer, default=0)
    scored: Mapped[int] = mapped_column(Integer, default=0)
    next_index: Mapped[int] = mapped_column(Integer, default=0)
    period: Mapped[str] = mapped_column(String(7))
    usage_day: Mapped[date] = mapped_column(Date)
    released: Mapped[int] = mapped_column(Integer, default=0)
    keep_input: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    runs: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), index=True
    )


class BatchJobItem(Base):
    """One input of a job and, once scored, its result (JSON)."""

    __tablename__ = "batch_job_items"

    job_id: Mapped[str] = mapped_column(
        ForeignKey("batch_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)


class WebhookEndpoint(Base):
    """Where a workspace wants its events delivered, and how it is doing."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: new_id("whe")
    )
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(500), default="")
    event_types: Mapped[str] = mapped_column(Text, default="[]")
    """JSON list of event types; empty means every type."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    secret: Mapped[str] = mapped_column(Text)
    """The signing secret, sealed with ``TONEHUB_SECRET_KEY``."""
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_until: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True)
    )
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )


class WebhookDelivery(Base):
    """One event on its way to one endpoint (the retry state)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("endpoint_id", "event_id"),)

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: new_id("whd")
    )
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[str] = mapped_column(
        ForeignKey("outbound_events.id", ondelete="CASCADE"), index=True
    )
    workspace_id: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    step: Mapped[int] = mapped_column(Integer, default=0)
    """Attempts made in the current round (index into the retry schedule)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), index=True
    )
    last_status: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery, for the delivery log."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[str] = mapped_column(String(40), index=True)
    attempted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(String(255))
    manual: Mapped[bool] = mapped_column(Boolean, default=False)
