"""Queue names and the enqueue helpers the web app may call."""

from __future__ import annotations

from redis import Redis
from rq import Queue, Retry
from rq.job import Job

DEFAULT_QUEUE = "default"
"""Scoring and housekeeping jobs."""

QUEUES: tuple[str, ...] = (DEFAULT_QUEUE,)
"""Queues a worker listens on, in priority order."""

SCORING_RETRY = Retry(max=3, interval=[5, 30, 120])
"""Retries for scoring jobs (a worker killed mid-job, a flaky database)."""


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
    )
