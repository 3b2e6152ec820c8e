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
    ForeignKey,
    Integer,
    String,
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
    stripe_customer_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(64))
    subscription_status: Mapped[str | None] = mapped_column(String(32))
    current_period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    payment_failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    billing_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    pending_checkout_id: Mapped[str | None] = mapped_column(String(255))
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
