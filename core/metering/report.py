"""The usage report behind ``GET /v1/usage`` and the dashboard."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from redis import Redis
from sqlalchemy.orm import Session

from core.errors import InvalidRequest
from core.metering.admission import Meter
from core.metering.ledger import daily_usage
from core.metering.periods import period_end, period_of, period_start
from core.plans import Plan

MAX_REPORT_DAYS = 366
"""Longest date range one report covers."""


def report_range(
    first: date | None, last: date | None, *, now: datetime
) -> tuple[date, date]:
    """Resolve a requested range; the default is this period up to today.

    Raises:
        InvalidRequest: ``from`` after ``to``, or longer than 366 days.
    """
    if first is None and last is not None and last < period_start(now).date():
        raise InvalidRequest(
            "'to' is before this period; give 'from' as well.", field="to"
        )
    last = last or now.date()
    first = first or period_start(now).date()
    if first > last:
        raise InvalidRequest("'from' must not be after 'to'.", field="from")
    if last > now.date() + timedelta(days=MAX_REPORT_DAYS):
        raise InvalidRequest("'to' is more than a year ahead.", field="to")
    if (last - first).days + 1 > MAX_REPORT_DAYS:
        raise InvalidRequest(
            f"A report covers at most {MAX_REPORT_DAYS} days.", field="from"
        )
    return first, last


def usage_report(
    session: Session,
    redis: Redis,
    meter: Meter,
    *,
    workspace_id: str,
    plan: Plan,
    first: date,
    last: date,
    now: datetime,
) -> dict[str, Any]:
    """This period's quota state and a daily breakdown by source and label.

    Args:
        session: Database session.
        redis: The shared Redis (usage not yet flushed is included).
        meter: The meter (exact units counted this period).
        workspace_id: The caller's workspace; nothing else is read.
        plan: Its plan in force.
        first: First day of the breakdown.
        last: Last day of the breakdown.
        now: Current time.

    Returns:
        A JSON-ready dict (see ``webapp.schemas.UsageOut``).
    """
    used = meter.used(workspace_id, now)
    quota = plan.monthly_quota
    cells = daily_usage(redis, session, workspace_id, first=first, last=last)
    days: dict[date, dict[str, Any]] = {}
    by_key: dict[str, int] = defaultdict(int)
    for key, n in sorted(cells.items()):
        day = days.setdefault(
            key.day,
            {"total": 0, "by_source": defaultdict(int), "by_label": defaultdict(int)},
        )
        day["total"] += n
        day["by_source"][key.source] += n
        day["by_label"][key.label] += n
        if key.api_key_id:
            by_key[key.api_key_id] += n
    daily = []
    cursor = first
    while cursor <= last:
        entry = days.get(cursor)
        daily.append(
            {
                "date": cursor.isoformat(),
                "total": entry["total"] if entry else 0,
                "by_source": dict(entry["by_source"]) if entry else {},
                "by_label": dict(entry["by_label"]) if entry else {},
            }
        )
        cursor += timedelta(days=1)
    return {
        "workspace_id": workspace_id,
        "plan": plan.name.value,
        "period": {
            "id": period_of(now),
            "start": period_start(now),
            "resets_at": period_end(now),
            "used": used,
            "limit": quota,
            "remaining": None if quota is None else max(0, quota - used),
        },
        "from": first.isoformat(),
        "to": last.isoformat(),
        "total": sum(d["total"] for d in daily),
        "by_api_key": dict(sorted(by_key.items())),
        "daily": daily,
    }
