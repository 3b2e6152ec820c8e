"""Quota periods: calendar months in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


def period_of(moment: datetime) -> str:
    """The period (``"2026-12"``) a moment falls in."""
    return moment.astimezone(UTC).strftime("%Y-%m")


def period_start(moment: datetime) -> datetime:
    """Midnight UTC on the first day of ``moment``'s month."""
    m = moment.astimezone(UTC)
    return datetime(m.year, m.month, 1, tzinfo=UTC)


def period_end(moment: datetime) -> datetime:
    """When ``moment``'s period ends and the quota resets (next month's first)."""
    m = moment.astimezone(UTC)
    if m.month == 12:
        return datetime(m.year + 1, 1, 1, tzinfo=UTC)
    return datetime(m.year, m.month + 1, 1, tzinfo=UTC)


def period_days(period: str) -> tuple[date, date]:
    """First and last day of a period such as ``"2026-12"``."""
    start = datetime.strptime(period, "%Y-%m").replace(tzinfo=UTC)
    return start.date(), (period_end(start) - timedelta(days=1)).date()
