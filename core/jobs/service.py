"""Batch jobs: create (with the quota reserved), read, cancel, results, purge.

The quota is reserved whole when a job is accepted (by the caller's admission
with the job's cost); texts reach the usage ledger as they are scored; what a
cancelled or failed job did not score is released once (``Meter.release_once``
with the job id as token).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.errors import JobFinished, NotFound, TonehubError
from core.jobs.inputs import JobInput
from core.persistence.models import BatchJob, BatchJobItem, Workspace, as_utc
from core.scoring.engine import check_text

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
"""Statuses a job never leaves."""

RETENTION = timedelta(days=7)
"""How long results are kept after a job finished."""

PAGE_MAX = 1000
"""Results in one page."""

INSERT_CHUNK = 5000
"""Items inserted per statement."""

Release = Callable[[BatchJob], None]
"""Gives a finished job's unscored units back (``Meter.release_once``)."""


def validate(
    records: Sequence[JobInput], *, sentences: bool
) -> tuple[list[str | None], list[dict[str, Any] | None]]:
    """Clean each text; a bad one gets its error entry instead.

    Returns:
        Cleaned texts (``None`` where bad) and error entries (``None``
        where good), both in input order.
    """
    texts: list[str | None] = []
    errors: list[dict[str, Any] | None] = []
    for record in records:
        try:
            if not isinstance(record.text, str):
                raise TonehubError("Each text must be a string.")
            # NUL carries no sentiment (it makes no tokens) and the database
            # cannot store it: job texts drop it.
            texts.append(
                check_text(record.text.replace("\x00", ""), sentences=sentences)
            )
            errors.append(None)
        except TonehubError as err:
            code = "invalid_request" if err.code == "internal" else err.code
            texts.append(None)
            errors.append({"error": {"code": code, "message": err.message}})
    return texts, errors


def create_job(
    session: Session,
    workspace_id: str,
    records: Sequence[JobInput],
    texts: Sequence[str | None],
    errors: Sequence[dict[str, Any] | None],
    *,
    api_key_id: str,
    model: str | None,
    sentences: bool,
    period: str,
    usage_day: date,
    now: datetime,
) -> BatchJob:
    """Store a job and its inputs (already validated and admitted).

    Args:
        session: Database session (committed here).
        workspace_id: The owner.
        records: The inputs, for their ids.
        texts, errors: From ``validate``.
        api_key_id: The key that submitted it (for usage per key).
        model: Model id, ``None`` for the default.
        sentences: Score sentences too.
        period: The quota period the reservation was taken from.
        usage_day: The day its usage is recorded on (the day admitted).
        now: Creation time.
    """
    workspace = session.get(Workspace, workspace_id)
    cost = sum(1 for t in texts if t is not None)
    job = BatchJob(
        workspace_id=workspace_id,
        api_key_id=api_key_id,
        status="queued",
        model=model,
        sentences=sentences,
        total=len(records),
        cost=cost,
        invalid=len(records) - cost,
        scored=0,
        next_index=0,
        period=period,
        usage_day=usage_day,
        released=0,
        keep_input=bool(workspace and workspace.keep_job_inputs),
        runs=0,
        created_at=now,
    )
    session.add(job)
    session.flush()
    rows = [
        {
            "job_id": job.id,
            "idx": i,
            "external_id": records[i].external_id,
            "text": texts[i],
            "result": None if errors[i] is None else json.dumps(errors[i]),
        }
        for i in range(len(records))
    ]
    for start in range(0, len(rows), INSERT_CHUNK):
        session.execute(insert(BatchJobItem), rows[start : start + INSERT_CHUNK])
    session.commit()
    return job


def get_job(session: Session, workspace_id: str, job_id: str) -> BatchJob:
    """One job of the workspace.

    Raises:
        NotFound: No such job here (or it expired).
    """
    job = session.get(BatchJob, job_id)
    if job is None or job.workspace_id != workspace_id:
        raise NotFound(f"No job {job_id!r} in this workspace.")
    return job


def list_jobs(
    session: Session, workspace_id: str, *, limit: int = 50
) -> list[BatchJob]:
    """The workspace's jobs, newest first."""
    return list(
        session.scalars(
            select(BatchJob)
            .where(BatchJob.workspace_id == workspace_id)
            .order_by(BatchJob.created_at.desc(), BatchJob.id)
            .limit(limit)
        )
    )


def finish(
    session: Session,
    job: BatchJob,
    status: str,
    *,
    now: datetime,
    error: str | None = None,
    retention: timedelta = RETENTION,
) -> None:
    """Move a job to a final status in the caller's transaction.

    Records how many units are to be released, starts the retention clock
    and deletes the inputs unless the workspace keeps them.
    """
    job.status = status
    job.error = error
    job.finished_at = now
    job.expires_at = now + retention
    job.lease_until = None
    job.released = job.cost - job.scored
    if not job.keep_input:
        session.execute(
            update(BatchJobItem).where(BatchJobItem.job_id == job.id).values(text=None)
        )


def cancel_job(
    sessions: sessionmaker[Session],
    workspace_id: str,
    job_id: str,
    *,
    release: Release,
    now: datetime | None = None,
    retention: timedelta = RETENTION,
) -> BatchJob:
    """Cancel a queued or running job and release its unscored units.

    The job row is locked, so a worker's next checkpoint (which requires the
    job to be running) cannot commit after this: no text is scored into the
    results or metered after the cancel.

    Raises:
        NotFound: No such job.
        JobFinished: It already finished.
    """
    now = now or datetime.now(UTC)
    with sessions() as session:
        get_job(session, workspace_id, job_id)
        job = session.get(
            BatchJob, job_id, with_for_update=True, populate_existing=True
        )
        if job is None:  # deleted by the retention purge meanwhile
            raise NotFound(f"No job {job_id!r} in this workspace.")
        if job.status in TERMINAL:
            raise JobFinished(f"Job {job_id} has already {job.status}.")
        finish(session, job, "cancelled", now=now, retention=retention)
        session.commit()
        release(job)
        session.expunge(job)
        return job


def describe_job(job: BatchJob, *, base_url: str = "") -> dict[str, Any]:
    """A job as the API shows it."""
    done = job.scored + job.invalid if job.status != "queued" else job.invalid
    return {
        "id": job.id,
        "status": job.status,
        "model": job.model,
        "sentences": job.sentences,
        "progress": {
            "total": job.total,
            "scored": job.scored,
            "invalid": job.invalid,
            "done": min(done, job.total),
            "percent": round(100 * min(done, job.total) / job.total, 1)
            if job.total
            else 100.0,
        },
        "units": {"reserved": job.cost, "used": job.scored, "released": job.released},
        "error": job.error,
        "created_at": as_utc(job.created_at),
        "started_at": as_utc(job.started_at),
        "finished_at": as_utc(job.finished_at),
        "expires_at": as_utc(job.expires_at),
        "status_url": f"{base_url}/v1/jobs/{job.id}",
        "results_url": f"{base_url}/v1/jobs/{job.id}/results",
    }


def _entry(item: BatchJobItem) -> dict[str, Any]:
    out: dict[str, Any] = {"index": item.idx}
    if item.external_id is not None:
        out["id"] = item.external_id
    out.update(json.loads(item.result or "{}"))
    return out


def results_page(
    session: Session, job: BatchJob, *, offset: int, limit: int
) -> dict[str, Any]:
    """Results of items ``offset`` .. ``offset + limit - 1`` that are done.

    Returns:
        ``results`` in input order and ``next_offset`` (``None`` at the end).
    """
    limit = max(1, min(limit, PAGE_MAX))
    items = session.scalars(
        select(BatchJobItem)
        .where(
            BatchJobItem.job_id == job.id,
            BatchJobItem.idx >= offset,
            BatchJobItem.idx < offset + limit,
            BatchJobItem.result.is_not(None),
        )
        .order_by(BatchJobItem.idx)
    )
    end = offset + limit
    last = job.total
    if job.status in ("cancelled", "failed"):  # nothing more will be scored
        found = session.scalar(
            select(func.max(BatchJobItem.idx)).where(
                BatchJobItem.job_id == job.id, BatchJobItem.result.is_not(None)
            )
        )
        last = -1 if found is None else int(found) + 1
    return {
        "job_id": job.id,
        "status": job.status,
        "total": job.total,
        "offset": offset,
        "results": [_entry(i) for i in items],
        "next_offset": end if end < last else None,
    }


def iter_results(
    sessions: sessionmaker[Session], job_id: str, *, chunk: int = PAGE_MAX
) -> Iterator[bytes]:
    """Every stored result of a job as JSON Lines, read a chunk at a time."""
    start = 0
    while True:
        with sessions() as session:
            items = list(
                session.scalars(
                    select(BatchJobItem)
                    .where(
                        BatchJobItem.job_id == job_id,
                        BatchJobItem.idx >= start,
                        BatchJobItem.result.is_not(None),
                    )
                    .order_by(BatchJobItem.idx)
                    .limit(chunk)
                )
            )
        if not items:
            return
        yield b"".join(json.dumps(_entry(i)).encode() + b"\n" for i in items)
        start = items[-1].idx + 1


def purge_expired(session: Session, *, now: datetime, limit: int = 100) -> int:
    """Delete finished jobs past their retention, results and all.

    Returns:
        Jobs deleted.
    """
    ids = list(
        session.scalars(
            select(BatchJob.id)
            .where(BatchJob.expires_at.is_not(None), BatchJob.expires_at < now)
            .limit(limit)
        )
    )
    if ids:
        session.execute(delete(BatchJobItem).where(BatchJobItem.job_id.in_(ids)))
        session.execute(delete(BatchJob).where(BatchJob.id.in_(ids)))
        session.commit()
    return len(ids)
