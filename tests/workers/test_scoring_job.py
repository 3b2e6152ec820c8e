"""Jobs run through a real queue and a real (in-process) worker."""

from __future__ import annotations

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import JobStatus

from core.config import Settings
from workers import runtime
from workers.queues import DEFAULT_QUEUE, enqueue_score_texts


@pytest.fixture(autouse=True)
def _runtime(scorer, redis_url: str) -> None:
    runtime.configure(Settings(redis_url=redis_url), scorer=scorer)


def test_score_texts_job(redis: Redis) -> None:
    job = enqueue_score_texts(
        redis, ["Thanks, that solved it!", "Still broken. Useless."], job_id="t1"
    )
    assert SimpleWorker(
        [Queue(DEFAULT_QUEUE, connection=redis)], connection=redis
    ).work(burst=True)
    job.refresh()
    assert job.get_status() == JobStatus.FINISHED
    assert [r["label"] for r in job.return_value()] == ["positive", "negative"]


def test_bad_input_fails_the_job_visibly(redis: Redis) -> None:
    job = enqueue_score_texts(redis, ["fine", ""])
    queue = Queue(DEFAULT_QUEUE, connection=redis)
    SimpleWorker([queue], connection=redis).work(burst=True)
    job.refresh()
    # Retried per policy, not swallowed: it waits for its retry or has failed.
    assert job.get_status() in (JobStatus.SCHEDULED, JobStatus.FAILED)
    assert job.retries_left == 2
