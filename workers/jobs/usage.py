"""Usage jobs: flush the usage ledger from Redis to the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from core.metering import UsageFlusher
from workers import runtime


def flush_usage() -> dict[str, Any]:
    """Move pending usage to the database exactly once; record thresholds.

    Safe to run concurrently and to kill at any point (see
    ``core.metering.ledger``). Scheduled every ``usage_flush_seconds``.

    Returns:
        Batches and units flushed, and the thresholds newly crossed.
    """
    rt = runtime.get()
    flusher = UsageFlusher(rt.redis, rt.sessions, grace=rt.grace)
    report = flusher.flush(now=datetime.now(UTC))
    return {
        "batches": report.batches,
        "units": report.units,
        "already_applied": report.already_applied,
        "thresholds": [[ws, t] for ws, t in report.events],
    }
