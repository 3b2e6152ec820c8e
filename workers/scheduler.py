"""Scheduler entry point: ``python -m workers.scheduler``.

Runs RQ's own ``CronScheduler``: it enqueues the periodic jobs (the usage
flush; every minute, the Salesforce syncs that are due and the sweep of batch
jobs whose worker died; every 5 s, webhook deliveries that are due) on the
queues the workers listen on. Run one
per deployment; a second one only enqueues duplicate flushes, which are
harmless (the flush is idempotent).
"""

from __future__ import annotations

import os

from redis import Redis
from rq.cron import CronScheduler

from core.config import Settings
from core.logs import configure_logging
from workers.jobs.batch import sweep_batch_jobs
from workers.jobs.salesforce import schedule_salesforce_syncs
from workers.jobs.usage import flush_usage
from workers.jobs.webhooks import dispatch_webhooks
from workers.queues import DEFAULT_QUEUE, WEBHOOK_QUEUE

WEBHOOK_SWEEP_SECONDS = 5
"""How often due webhook deliveries are picked up: the first attempt of an
event recorded by core (a threshold, an alert, a connector error) waits for
this sweep; a finished job asks for a sweep at once; retries are scheduled
on RQ's scheduler, with this sweep as their backstop."""


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
    scheduler.register(
        dispatch_webhooks,
        queue_name=WEBHOOK_QUEUE,
        interval=WEBHOOK_SWEEP_SECONDS,
        job_timeout=120,
        result_ttl=60,
        name="dispatch_webhooks",
    )
    scheduler.register(
        sweep_batch_jobs,
        queue_name=DEFAULT_QUEUE,
        interval=60,
        job_timeout=300,
        result_ttl=600,
        name="sweep_batch_jobs",
    )
    return scheduler


def main() -> None:
    """Configure logging and run the scheduler until SIGINT/SIGTERM."""
    configure_logging(
        os.environ.get("TONEHUB_LOG_FORMAT", "json"),
        os.environ.get("TONEHUB_LOG_LEVEL", "INFO"),
    )
    settings = Settings.from_env()
    scheduler = build_scheduler(settings, Redis.from_url(settings.redis_url))
    scheduler.start()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
