"""Scheduler entry point: ``python -m workers.scheduler``.

Runs RQ's own ``CronScheduler``: it enqueues the periodic jobs (the usage
flush; every minute, the Salesforce syncs that are due) on the queues the
workers listen on. Run one
per deployment; a second one only enqueues duplicate flushes, which are
harmless (the flush is idempotent).
"""

from __future__ import annotations

import logging

from redis import Redis
from rq.cron import CronScheduler

from core.config import Settings
from workers.jobs.salesforce import schedule_salesforce_syncs
from workers.jobs.usage import flush_usage
from workers.queues import DEFAULT_QUEUE


def build_scheduler(settings: Settings, connection: Redis) -> CronScheduler:
    """A cron scheduler with Tonehub's periodic jobs registered."""
    scheduler = CronScheduler(connection=connection)
    scheduler.register(
        flush_usage,
        queue_name=DEFAULT_QUEUE,
        interval=settings.usage_flush_seconds,
        job_timeout=300,
        result_ttl=600,
        name="flush_usage",
    )
    scheduler.register(
        schedule_salesforce_syncs,
        queue_name=DEFAULT_QUEUE,
        interval=60,
        job_timeout=120,
        result_ttl=600,
        name="schedule_salesforce_syncs",
    )
    return scheduler


def main() -> None:
    """Configure logging and run the scheduler until SIGINT/SIGTERM."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    settings = Settings.from_env()
    scheduler = build_scheduler(settings, Redis.from_url(settings.redis_url))
    scheduler.start()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
