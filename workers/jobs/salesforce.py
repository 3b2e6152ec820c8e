"""Salesforce jobs: sync one org; find the orgs due for a sync."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from rq import Queue
from sqlalchemy import select

from connectors.salesforce.sync import OrgSync, SyncDeps
from core.persistence.models import SalesforceConnection, as_utc
from core.secrets import SecretBox
from workers import runtime
from workers.queues import (
    DEFAULT_QUEUE,
    SALESFORCE_SYNC_TIMEOUT,
    SF_PENDING_KEY,
    enqueue_salesforce_sync,
)

SYNCING_STATUSES = ("connected", "paused_budget", "paused_quota")
"""Statuses the scheduler syncs (``error`` and ``auth_revoked`` wait for a person)."""

BACKOFF_KEY = "th:sf:backoff:{connection}"
"""Syncs in a row that ended ``paused_budget`` (the org's API allowance)."""

MAX_BACKOFF = timedelta(hours=24)
"""The longest wait between syncs of an org out of API calls (a day: the
allowance is a rolling 24 hours)."""


def backoff_interval(minutes: int, paused_in_a_row: int) -> timedelta:
    """The wait before the next sync: the interval, doubled for each sync in a
    row that found the org's API allowance used up, at most a day."""
    wait = timedelta(minutes=minutes * 2 ** min(paused_in_a_row, 16))
    return min(wait, MAX_BACKOFF)


def sync_deps() -> SyncDeps:
    """The sync's collaborators from the worker runtime."""
    rt = runtime.get()
    return SyncDeps(
        settings=rt.settings,
        sessions=rt.sessions,
        redis=rt.redis,
        scoring=rt.scoring,
        box=SecretBox(rt.settings.secret_key),
        grace=rt.grace,
    )


def sync_salesforce(connection_id: str) -> dict[str, Any]:
    """Sync one org once (see ``connectors.salesforce.sync``).

    Returns:
        The sync's report (counts, API calls, status).
    """
    rt = runtime.get()
    rt.redis.delete(SF_PENDING_KEY.format(connection=connection_id))
    running = f"th:sf:running:{connection_id}"
    if not rt.redis.set(running, 1, nx=True, ex=SALESFORCE_SYNC_TIMEOUT):
        # Another worker syncs this org right now: run again once it is done.
        Queue(DEFAULT_QUEUE, connection=rt.redis).enqueue_in(
            timedelta(seconds=30),
            "workers.jobs.salesforce.sync_salesforce",
            connection_id,
            job_timeout=SALESFORCE_SYNC_TIMEOUT,
        )
        return {"status": "deferred: a sync of this org is running"}
    try:
        report = OrgSync(sync_deps(), connection_id).run()
    finally:
        rt.redis.delete(running)
    backoff = BACKOFF_KEY.format(connection=connection_id)
    if report.status == "paused_budget":
        rt.redis.incr(backoff)
        rt.redis.expire(backoff, 3 * 86_400)
    else:
        rt.redis.delete(backoff)
    return {
        "status": report.status,
        "seen": report.seen,
        "scored": report.scored,
        "skipped": report.skipped,
        "written": report.written,
        "write_calls": report.write_calls,
        "failed": report.failed,
        "api_calls": report.api_calls,
        "error": report.error,
    }


def schedule_salesforce_syncs() -> list[str]:
    """Enqueue a sync for every org whose interval has passed (cron job).

    Returns:
        The connection ids enqueued.
    """
    rt = runtime.get()
    now = datetime.now(UTC)
    default = rt.settings.salesforce_sync_minutes
    due: list[str] = []
    with rt.sessions() as session:
        for conn in session.scalars(
            select(SalesforceConnection).where(
                SalesforceConnection.status.in_(SYNCING_STATUSES)
            )
        ):
            minutes = json.loads(conn.settings or "{}").get("sync_minutes", default)
            wait = timedelta(minutes=minutes)
            if conn.status == "paused_budget":
                paused = rt.redis.get(BACKOFF_KEY.format(connection=conn.id))
                wait = backoff_interval(minutes, int(paused or 0))
            last = as_utc(conn.last_sync_at)
            if last is None or now - last >= wait:
                due.append(conn.id)
    return [c for c in due if enqueue_salesforce_sync(rt.redis, c) is not None]
