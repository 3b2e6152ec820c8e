"""The usage flush job through a real queue and worker, and its schedule."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import JobStatus

from core import accounts
from core.config import Settings
from core.metering import Meter, record_usage
from core.persistence.db import make_engine, make_session_factory, upgrade
from workers import runtime
from workers.queues import DEFAULT_QUEUE
from workers.scheduler import build_scheduler


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, scorer) -> Settings:
    s = Settings(redis_url=redis_url, database_url=f"sqlite:///{tmp_path / 'w.db'}")
    upgrade(make_engine(s.database_url))
    runtime.configure(s, scorer=scorer)
    return s


def test_flush_job_moves_usage_and_reports_thresholds(
    settings: Settings, redis: Redis
) -> None:
    sessions = make_session_factory(make_engine(settings.database_url))
    with sessions() as s:
        ws = accounts.create_workspace(s, "Acme").id
    today = datetime.now(UTC).date()
    record_usage(redis, ws, source="slack", labels=["negative"] * 8_000, day=today)
    queue = Queue(DEFAULT_QUEUE, connection=redis)
    job = queue.enqueue("workers.jobs.usage.flush_usage")
    assert SimpleWorker([queue], connection=redis).work(burst=True)
    job.refresh()
    assert job.get_status() == JobStatus.FINISHED
    assert job.return_value() == {
        "batches": 1,
        "units": 8_000,
        "already_applied": 0,
        "thresholds": [[ws, 80]],
    }
    redis.flushdb()
    assert Meter(redis, sessions).used(ws) == 8_000


def test_scheduler_registers_the_flush(settings: Settings, redis: Redis) -> None:
    scheduler = build_scheduler(settings, redis)
    jobs = {job.func_name: job for job in scheduler.get_jobs()}
    flush = jobs["workers.jobs.usage.flush_usage"]
    assert flush.interval == settings.usage_flush_seconds
    assert flush.queue_name == DEFAULT_QUEUE
    assert jobs["workers.jobs.salesforce.schedule_salesforce_syncs"].interval == 60
