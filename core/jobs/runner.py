"""Running a batch job: leased, checkpointed, metered exactly once.

A run takes the job's lease (a conditional update: queued or running, lease
free or expired), then works through the items from the checkpoint
(``next_index``) a chunk at a time. Each chunk commits in one transaction:
its results, the checkpoint, the progress and its usage in the ledger (a
``usage_flushes`` row keyed ``<job id>:<first index>``), and only while the
job is still running with the checkpoint this run last saw. So a worker
killed mid-chunk loses that chunk's work only (it is scored again by the next
run, stored and metered once); a cancel stops the next commit; two runs never
both commit a chunk.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.jobs.service import RETENTION, TERMINAL, Release, finish
from core.metering.ledger import UsageKey, record_thresholds, stage_batch
from core.persistence.models import BatchJob, BatchJobItem, as_utc
from core.scoring.service import ScoringService
from core.webhooks.events import emit

logger = logging.getLogger(__name__)

CHUNK = 256
"""Texts scored and checkpointed together, at most."""

CHUNK_CHARS = 100_000
"""Characters scored and checkpointed together, at most (at least one text):
a chunk of long texts stays seconds long, well inside ``LEASE``, so a live
run is never taken for a dead one."""

LEASE = timedelta(minutes=2)
"""A run holds the job this long past its last checkpoint."""

LOST = timedelta(minutes=10)
"""A job still queued this long was lost by the queue (Redis restarted)."""

MAX_RUNS = 3
"""Runs (first try plus retries) before a job that keeps failing fails."""


@dataclass(frozen=True)
class RunReport:
    """What a run did: ``status`` is the job's status when it stopped."""

    status: str
    scored: int


def _now() -> datetime:
    return datetime.now(UTC)


def _take_lease(session: Session, job_id: str, now: datetime) -> bool:
    result = session.execute(
        update(BatchJob)
        .where(
            BatchJob.id == job_id,
            BatchJob.status.in_(("queued", "running")),
            (BatchJob.lease_until.is_(None)) | (BatchJob.lease_until < now),
        )
        .values(status="running", lease_until=now + LEASE, runs=BatchJob.runs + 1)
        # The loaded row's times may be naive (SQLite): do not evaluate in Python.
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


def run_job(
    sessions: sessionmaker[Session],
    scoring: ScoringService,
    job_id: str,
    *,
    release: Release,
    grace: timedelta,
    retention: timedelta = RETENTION,
    clock: Callable[[], datetime] = _now,
    chunk: int = CHUNK,
) -> RunReport:
    """Score a job from its checkpoint to the end (or until cancelled).

    Args:
        sessions: Database sessions.
        scoring: The scoring service (model choice, cache).
        job_id: The job.
        release: Gives unscored units back when the job ends.
        grace: Payment grace (for the quota thresholds).
        retention: How long the results are kept once the job ends.
        clock: Current time.
        chunk: Texts per checkpoint.

    Returns:
        The job's status and the texts this run scored.

    Raises:
        Exception: Whatever scoring raised; the job is marked failed (and its
            reservation released) once it has had ``MAX_RUNS`` runs.
    """
    with sessions() as session:
        job = session.get(BatchJob, job_id)
        if job is None:
            return RunReport("missing", 0)
        if job.status in TERMINAL:
            release(job)  # a run that died between finishing and releasing
            return RunReport(job.status, 0)
        if not _take_lease(session, job_id, clock()):
            return RunReport("busy", 0)
        session.execute(
            update(BatchJob)
            .where(BatchJob.id == job_id, BatchJob.started_at.is_(None))
            .values(started_at=clock())
        )
        session.commit()
    scored = 0
    try:
        while True:
            done, n = _step(sessions, scoring, job_id, clock=clock, chunk=chunk)
            scored += n
            if done:
                break
    except Exception as exc:
        _on_error(
            sessions, job_id, exc, release=release, clock=clock, retention=retention
        )
        raise
    return _complete(
        sessions,
        job_id,
        release=release,
        grace=grace,
        clock=clock,
        scored=scored,
        retention=retention,
    )


def _within_budget(items: list[BatchJobItem]) -> list[BatchJobItem]:
    """The leading items whose texts fit ``CHUNK_CHARS`` (at least one)."""
    total = 0
    for n, item in enumerate(items):
        total += len(item.text or "")
        if total > CHUNK_CHARS and n > 0:
            return items[:n]
    return items


def _step(
    sessions: sessionmaker[Session],
    scoring: ScoringService,
    job_id: str,
    *,
    clock: Callable[[], datetime],
    chunk: int,
) -> tuple[bool, int]:
    """Score and commit one chunk. Returns (no more to do, texts scored)."""
    with sessions() as session:
        job = session.get(BatchJob, job_id)
        if job is None or job.status != "running":
            return True, 0
        start = job.next_index
        if start >= job.total:
            return True, 0
        items = list(
            session.scalars(
                select(BatchJobItem)
                .where(BatchJobItem.job_id == job_id, BatchJobItem.idx >= start)
                .order_by(BatchJobItem.idx)
                .limit(chunk)
            )
        )
        items = _within_budget(items)
        todo = [i for i in items if i.result is None and i.text is not None]
        results = scoring.score(
            [i.text for i in todo if i.text is not None],
            model=job.model,
            sentences=job.sentences,
        )
        now = clock()
        moved = session.execute(
            update(BatchJob)
            .where(
                BatchJob.id == job_id,
                BatchJob.status == "running",
                BatchJob.next_index == start,
            )
            .values(
                next_index=items[-1].idx + 1,
                scored=BatchJob.scored + len(todo),
                lease_until=now + LEASE,
            )
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()  # cancelled, or another run moved on
            return True, 0
        for item, result in zip(todo, results, strict=True):
            item.result = json.dumps(result)
        counts = Counter(
            UsageKey(job.usage_day, "api", job.api_key_id, r["label"]) for r in results
        )
        stage_batch(session, job.workspace_id, f"{job_id}:{start}", counts)
        session.commit()
        return items[-1].idx + 1 >= job.total, len(todo)


def _complete(
    sessions: sessionmaker[Session],
    job_id: str,
    *,
    release: Release,
    grace: timedelta,
    clock: Callable[[], datetime],
    scored: int,
    retention: timedelta,
) -> RunReport:
    now = clock()
    with sessions() as session:
        job = session.get(BatchJob, job_id, with_for_update=True)
        if job is None:
            return RunReport("missing", scored)
        if job.status == "running" and job.next_index >= job.total:
            finish(session, job, "succeeded", now=now, retention=retention)
            emit(session, job.workspace_id, "job.succeeded", _event_data(job), now=now)
            session.commit()
            logger.info("Job %s succeeded (%d texts)", job_id, job.total)
        if job.status in TERMINAL:
            release(job)
            record_thresholds(session, job.workspace_id, now=now, grace=grace)
        return RunReport(job.status, scored)


def _on_error(
    sessions: sessionmaker[Session],
    job_id: str,
    exc: Exception,
    *,
    release: Release,
    clock: Callable[[], datetime],
    retention: timedelta,
) -> None:
    now = clock()
    message = f"{type(exc).__name__}: {exc}"[:500]
    with sessions() as session:
        job = session.get(BatchJob, job_id, with_for_update=True)
        if job is None or job.status in TERMINAL:
            return
        job.error = message
        job.lease_until = now  # expired: the retry (or the sweep) may take it
        if job.runs >= MAX_RUNS:
            finish(session, job, "failed", now=now, error=message, retention=retention)
            emit(session, job.workspace_id, "job.failed", _event_data(job), now=now)
            logger.warning("Job %s failed after %d runs: %s", job_id, job.runs, message)
        session.commit()
        if job.status == "failed":
            release(job)


def fail_stalled(
    sessions: sessionmaker[Session],
    *,
    release: Release,
    now: datetime,
    retention: timedelta = RETENTION,
) -> tuple[list[str], list[str]]:
    """Find jobs whose run died (lease expired) or that the queue lost.

    They are run again (from their checkpoint) or, out of runs, failed.

    Returns:
        Ids to run again, and ids failed now (out of runs).
    """
    resume: list[str] = []
    failed: list[str] = []
    with sessions() as session:
        jobs = session.scalars(
            select(BatchJob).where(
                BatchJob.status.in_(("queued", "running")),
                (BatchJob.lease_until < now)
                | (BatchJob.lease_until.is_(None) & (BatchJob.created_at < now - LOST)),
            )
        ).all()
        for job in jobs:
            if job.runs < MAX_RUNS:
                resume.append(job.id)
                continue
            message = "The job's worker stopped responding too many times."
            finish(session, job, "failed", now=now, error=message, retention=retention)
            emit(session, job.workspace_id, "job.failed", _event_data(job), now=now)
            session.commit()
            release(job)
            failed.append(job.id)
    return resume, failed


def _event_data(job: BatchJob) -> dict[str, object]:
    finished = as_utc(job.finished_at)
    return {
        "job_id": job.id,
        "status": job.status,
        "total": job.total,
        "scored": job.scored,
        "invalid": job.invalid,
        "units_released": job.released,
        "error": job.error,
        "finished_at": finished.isoformat() if finished else None,
        "results_url": f"/v1/jobs/{job.id}/results",
    }
