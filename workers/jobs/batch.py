"""Batch scoring jobs (``POST /v1/jobs``) and their housekeeping."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from core.jobs.runner import fail_stalled, run_job
from core.jobs.service import purge_expired
from core.persistence.models import BatchJob
from workers import runtime
from workers.queues import (
    BATCH_PENDING_KEY,
    enqueue_batch_job,
    enqueue_webhook_dispatch,
)

logger = logging.getLogger(__name__)


def release_reservation(job: BatchJob) -> None:
    """Give a finished job's unscored units back to its quota, once."""
    runtime.get().meter.release_once(
        job.workspace_id, job.period, job.released, token=job.id
    )


def run_batch_job(job_id: str) -> dict[str, object]:
    """Score a batch job from its checkpoint; exceptions go to RQ (retried)."""
    rt = runtime.get()
    rt.redis.delete(BATCH_PENDING_KEY.format(job=job_id))
    report = run_job(
        rt.sessions,
        rt.scoring,
        job_id,
        release=release_reservation,
        grace=rt.grace,
        retention=timedelta(days=rt.settings.job_retention_days),
    )
    logger.info("Job %s: %s after scoring %d", job_id, report.status, report.scored)
    if report.status in ("succeeded", "failed"):
        enqueue_webhook_dispatch(rt.redis)
    return {"status": report.status, "scored": report.scored}


def sweep_batch_jobs() -> dict[str, int]:
    """Resume jobs whose worker died, fail those out of runs, purge expired ones."""
    rt = runtime.get()
    now = datetime.now(UTC)
    resume, failed = fail_stalled(
        rt.sessions,
        release=release_reservation,
        now=now,
        retention=timedelta(days=rt.settings.job_retention_days),
    )
    for job_id in resume:
        enqueue_batch_job(rt.redis, job_id)
    with rt.sessions() as session:
        purged = purge_expired(session, now=now)
    if resume or failed or purged:
        logger.info(
            "Jobs: %d resumed, %d failed, %d purged", len(resume), len(failed), purged
        )
    if failed:
        enqueue_webhook_dispatch(rt.redis)
    return {"resumed": len(resume), "failed": len(failed), "purged": purged}
