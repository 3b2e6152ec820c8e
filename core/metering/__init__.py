"""Metering: atomic admission (rate limit + monthly quota) and the usage ledger."""

from __future__ import annotations

from core.metering.admission import Admission, Meter
from core.metering.ledger import (
    SOURCES,
    THRESHOLDS,
    FlushReport,
    UsageFlusher,
    UsageKey,
    daily_usage,
    month_total,
    record_usage,
    record_usage_durably,
)
from core.metering.periods import period_end, period_of, period_start

__all__ = [
    "SOURCES",
    "THRESHOLDS",
    "Admission",
    "FlushReport",
    "Meter",
    "UsageFlusher",
    "UsageKey",
    "daily_usage",
    "month_total",
    "period_end",
    "period_of",
    "period_start",
    "record_usage",
    "record_usage_durably",
]
