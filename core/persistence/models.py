"""SQLAlchemy 2.0 typed models.

Ids are random strings with a type prefix (``ws_``, ``key_``): they appear in
URLs and API answers, and unguessable ids are one more guard between tenants.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, String
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
    """A tenant: owns API keys, usage and (later) plans and connectors."""

    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(
        String(32), primary_key=True, default=lambda: new_id("ws")
    )
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow
    )
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
