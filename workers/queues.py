"""Queue names and the enqueue helpers the web app may call."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError
from rq.job import Job

DEFAULT_QUEUE = "default"
"""Scoring and housekeeping jobs."""

WEBHOOK_QUEUE = "webhooks"
"""Outbound webhook attempts: kept apart so a slow receiver never delays scoring."""

QUEUES: tuple[str, ...] = (DEFAULT_QUEUE, WEBHOOK_QUEUE)
"""Queues a worker listens on, in priority order."""

SCORING_RETRY = Retry(max=3, interval=[5, 30, 120])
"""Retries for scoring jobs (a worker killed mid-job, a flaky database)."""

SLACK_RETRY = Retry(max=5, interval=[1, 5, 30, 120, 600])
"""Retries of a Slack message job (rate limited, Slack unavailable)."""

SLACK_EVENT_SEEN_SECONDS = 24 * 3600
"""Slack retries an event for up to an hour or so; its id is kept a day."""


def enqueue_score_texts(
    redis: Redis,
    texts: list[str],
    *,
    sentences: bool = False,
    job_id: str | None = None,
) -> Job:
    """Queue ``workers.jobs.scoring.score_texts``.

    Args:
        redis: Connection to the queue's Redis.
        texts: Texts to score.
        sentences: Also score sentences.
        job_id: Optional id; a second enqueue with the same id is refused.

    Returns:
        The queued job.
    """
    queue = Queue(DEFAULT_QUEUE, connection=redis)
    return queue.enqueue(
        "workers.jobs.scoring.score_texts",
        texts,
        sentences=sentences,
        job_id=job_id,
        retry=SCORING_RETRY,
        description=f"score {len(texts)} texts",  # RQ logs it: never the texts
    )


def enqueue_slack_message(
    redis: Redis,
    event_id: str,
    team_id: str,
    enterprise_id: str | None,
    event: Mapping[str, Any],
) -> Job | None:
    """Queue ``workers.jobs.slack.process_slack_message`` once per event id.

    Slack delivers an event again when it saw no 200 in 3 s (with
    ``X-Slack-Retry-Num``); the event id is remembered for a day so a retry
    enqueues nothing. The job itself is also idempotent per message.

    Returns:
        The job, or ``None`` for an event already seen.
    """
    if not redis.set(
        f"th:slack:event:{event_id}", 1, nx=True, ex=SLACK_EVENT_SEEN_SECONDS
    ):
        return None
    queue = Queue(DEFAULT_QUEUE, connection=redis)
    try:
        return queue.enqueue(
            "workers.jobs.slack.process_slack_message",
            event_id,
            team_id,
            enterprise_id,
            dict(event),
            job_id=f"slack-{event_id}",
            unique=True,
            retry=SLACK_RETRY,
            # The args hold the message text: no description in the logs, and
            # the job (args included) is deleted once it succeeded.
            description=f"slack message {event_id}",
            result_ttl=0,
            failure_ttl=24 * 3600,
        )
    except DuplicateJobError:
        return None


SALESFORCE_SYNC_TIMEOUT = 3600
"""A sync of a big backfill may take a while; one hour at most."""


SF_PENDING_KEY = "th:sf:pending:{connection}"
"""Set while a sync of the org is queued; the job clears it when it starts."""


def enqueue_salesforce_sync(redis: Redis, connection_id: str) -> Job | None:
    """Queue one sync of an org, unless one is already waiting to start.

    A request made while a sync runs queues the next one (the running sync
    may have read the org before the change that prompted the request).

    Returns:
        The job, or ``None`` when a sync of this org is already waiting.
    """
    pending = SF_PENDING_KEY.format(connection=connection_id)
    if not redis.set(pending, 1, nx=True, ex=SALESFORCE_SYNC_TIMEOUT):
        return None
    queue = Queue(DEFAULT_QUEUE, connection=redis)
    return queue.enqueue(
        "workers.jobs.salesforce.sync_salesforce",
        connection_id,
        job_timeout=SALESFORCE_SYNC_TIMEOUT,
        result_ttl=3600,
        description=f"salesforce sync {connection_id}",
    )


BATCH_JOB_TIMEOUT = 6 * 3600
"""A run of a 100,000-text job on a busy worker; it checkpoints as it goes."""

BATCH_PENDING_KEY = "th:batch:pending:{job}"
"""Set while a run of the job is queued, so sweeps do not pile runs up."""

BATCH_RETRY = Retry(max=2, interval=[10, 60])
"""Runs after a failed one (``core.jobs.runner.MAX_RUNS`` in all)."""


def enqueue_batch_job(redis: Redis, job_id: str) -> Job | None:
    """Queue a run of ``workers.jobs.batch.run_batch_job`` unless one waits.

    Returns:
        The RQ job, or ``None`` when a run of this job is already queued.
    """
    if not redis.set(BATCH_PENDING_KEY.format(job=job_id), 1, nx=True, ex=600):
        return None
    queue = Queue(DEFAULT_QUEUE, connection=redis)
    return queue.enqueue(
        "workers.jobs.batch.run_batch_job",
        job_id,
        job_timeout=BATCH_JOB_TIMEOUT,
        retry=BATCH_RETRY,
        result_ttl=3600,
        description=f"batch job {job_id}",
    )


WEBHOOK_PENDING_KEY = "th:webhook:pending:{delivery}"
"""Set while an immediate attempt of a delivery is queued."""

WEBHOOK_DISPATCH_KEY = "th:webhook:dispatch"
"""Coalesces requests for a dispatch sweep."""


def enqueue_webhook_attempt(
    redis: Redis, delivery_id: str, *, at: datetime | None = None, manual: bool = False
) -> Job | None:
    """Queue an attempt of a delivery: now, or at ``at`` on RQ's scheduler.

    The attempt itself is claimed in the database, so a duplicate (a sweep
    meeting a scheduled retry) sends nothing twice.

    Returns:
        The RQ job, or ``None`` when an immediate attempt is already queued.
    """
    queue = Queue(WEBHOOK_QUEUE, connection=redis)
    options: dict[str, Any] = {
        "job_timeout": 120,
        "result_ttl": 300,
        "failure_ttl": 7 * 24 * 3600,
        "description": f"webhook delivery {delivery_id}",
    }
    if at is not None:
        scheduled: Job = queue.enqueue_at(
            at, "workers.jobs.webhooks.deliver_webhook", delivery_id, manual, **options
        )
        return scheduled
    # A manual redelivery always goes out; only automatic attempts coalesce
    # (the job clears the key of automatic attempts only).
    if not manual and not redis.set(
        WEBHOOK_PENDING_KEY.format(delivery=delivery_id), 1, nx=True, ex=120
    ):
        return None
    return queue.enqueue(
        "workers.jobs.webhooks.deliver_webhook", delivery_id, manual, **options
    )


def enqueue_webhook_dispatch(redis: Redis) -> Job | None:
    """Ask for a sweep of due deliveries soon (at most one queued at a time)."""
    if not redis.set(WEBHOOK_DISPATCH_KEY, 1, nx=True, ex=5):
        return None
    queue = Queue(WEBHOOK_QUEUE, connection=redis)
    return queue.enqueue(
        "workers.jobs.webhooks.dispatch_webhooks", result_ttl=60, job_timeout=120
    )


def queue_stats(redis: Redis) -> dict[str, tuple[int, int]]:
    """Per queue: jobs waiting, and jobs in its failed registry (metrics)."""
    out: dict[str, tuple[int, int]] = {}
    for name in QUEUES:
        queue = Queue(name, connection=redis)
        out[name] = (queue.count, queue.failed_job_registry.count)
    return out
