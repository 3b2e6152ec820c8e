"""The usage ledger: Redis on the hot path, the database durably.

Each scored text adds one to a field of the workspace's *pending* hash in Redis
(``day|source|api_key_id|label``). A flush moves pending counts to the
``usage_daily`` table exactly once, even if the flushing process is killed at
any point:

1. *claim* (one Lua script): if a ``flushing`` hash is left over from a flush
   that died, take it again with its batch id; otherwise rename ``pending`` to
   ``flushing`` and give it a new batch id. New usage goes to a new
   ``pending`` meanwhile.
2. *apply* (one database transaction): insert the batch id into
   ``usage_flushes`` and add the counts to ``usage_daily``. The batch id is a
   primary key, so a batch already applied fails to insert and adds nothing.
3. *finish* (one Lua script): delete ``flushing`` if it still holds the same
   batch.

A crash before 2 commits leaves ``flushing`` to be claimed again; a crash
between 2 and 3 leaves a batch that 2 recognises as applied. Text content is
never stored: only counts.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.billing.state import plan_in_force
from core.metering.periods import period_days, period_of
from core.persistence.models import (
    BatchJob,
    UsageDaily,
    UsageEvent,
    UsageFlush,
    Workspace,
)
from core.webhooks.events import emit

logger = logging.getLogger(__name__)

PENDING_KEY = "th:usage:{workspace}:pending"
FLUSHING_KEY = "th:usage:{workspace}:flushing"
BATCH_KEY = "th:usage:{workspace}:batch"
DIRTY_KEY = "th:usage:dirty"
"""Set of workspaces with counts not yet in the database."""

SOURCES = ("api", "slack", "salesforce")
"""Where scored texts come from."""

MAX_BATCHES_PER_RUN = 5
"""Batches one flush takes per workspace before moving on."""

THRESHOLDS = (80, 100)
"""Percentages of the quota whose crossing is recorded once per period."""

# KEYS: pending, flushing, batch id, dirty. ARGV: workspace, new batch id.
_CLAIM_LUA = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {redis.call('GET', KEYS[3]), redis.call('HGETALL', KEYS[2])}
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[4], ARGV[1])
  return false
end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], ARGV[2])
return {ARGV[2], redis.call('HGETALL', KEYS[2])}
"""

# KEYS: pending, flushing, batch id, dirty. ARGV: workspace, batch id.
_FINISH_LUA = """
if redis.call('GET', KEYS[3]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[2], KEYS[3])
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[4], ARGV[1]) end
return 1
"""

# KEYS: pending, flushing, batch id. Everything not yet flushed, in one read.
_PEEK_LUA = """
return {redis.call('HGETALL', KEYS[1]), redis.call('GET', KEYS[3]) or '',
        redis.call('HGETALL', KEYS[2])}
"""


def _keys(workspace_id: str) -> list[str]:
    return [
        PENDING_KEY.format(workspace=workspace_id),
        FLUSHING_KEY.format(workspace=workspace_id),
        BATCH_KEY.format(workspace=workspace_id),
        DIRTY_KEY,
    ]


@dataclass(frozen=True, order=True)
class UsageKey:
    """One ledger cell: a day, a source, an API key (or ``""``) and a label."""

    day: date
    source: str
    api_key_id: str
    label: str

    def encode(self) -> str:
        """The Redis hash field for this cell."""
        return f"{self.day.isoformat()}|{self.source}|{self.api_key_id}|{self.label}"

    @classmethod
    def decode(cls, raw: bytes | str) -> UsageKey:
        """Parse a Redis hash field."""
        text = raw.decode() if isinstance(raw, bytes) else raw
        day, source, key_id, label = text.split("|")
        return cls(date.fromisoformat(day), source, key_id, label)


def _pairs(flat: list[bytes]) -> Counter[UsageKey]:
    counts: Counter[UsageKey] = Counter()
    for i in range(0, len(flat), 2):
        counts[UsageKey.decode(flat[i])] += int(flat[i + 1])
    return counts


def record_usage(
    redis: Redis,
    workspace_id: str,
    *,
    source: str,
    labels: Iterable[str],
    day: date,
    api_key_id: str = "",
) -> int:
    """Add scored texts to the workspace's pending usage (one round trip).

    Args:
        redis: The shared Redis.
        workspace_id: The workspace charged.
        source: ``api``, ``slack`` or ``salesforce``.
        labels: The label of each text scored.
        day: The UTC day of the usage.
        api_key_id: The key used, ``""`` for connector usage.

    Returns:
        The number of texts recorded.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown usage source {source!r}")
    counts = Counter(labels)
    if not counts:
        return 0
    pending = PENDING_KEY.format(workspace=workspace_id)
    with redis.pipeline(transaction=True) as pipe:
        for label, n in counts.items():
            pipe.hincrby(pending, UsageKey(day, source, api_key_id, label).encode(), n)
        pipe.sadd(DIRTY_KEY, workspace_id)
        pipe.execute()
    return sum(counts.values())


def record_usage_durably(
    redis: Redis,
    sessions: sessionmaker[Session],
    workspace_id: str,
    *,
    source: str,
    labels: Iterable[str],
    day: date,
    api_key_id: str = "",
) -> int:
    """``record_usage``, falling back to a direct ledger write if Redis fails.

    Texts already scored are never left unrecorded because Redis went away
    between admission and the end of the request.
    """
    labels = list(labels)
    try:
        return record_usage(
            redis,
            workspace_id,
            source=source,
            labels=labels,
            day=day,
            api_key_id=api_key_id,
        )
    except RedisError:
        logger.warning("Redis failed; usage of %s written to the ledger", workspace_id)
    counts = Counter(UsageKey(day, source, api_key_id, label) for label in labels)
    with sessions() as session:
        apply_batch(session, workspace_id, _batch_id(), counts)
    return sum(counts.values())


def _add_counts(session: Session, workspace_id: str, counts: Counter[UsageKey]) -> None:
    engine = session.get_bind()
    dialect = engine.dialect.name if isinstance(engine, Engine) else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = [
        {
            "workspace_id": workspace_id,
            "day": k.day,
            "source": k.source,
            "api_key_id": k.api_key_id,
            "label": k.label,
            "count": n,
        }
        for k, n in sorted(counts.items())
    ]
    stmt = insert(UsageDaily).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["workspace_id", "day", "source", "api_key_id", "label"],
        set_={"count": UsageDaily.count + stmt.excluded["count"]},
    )
    session.execute(stmt)


def stage_batch(
    session: Session, workspace_id: str, batch_id: str, counts: Counter[UsageKey]
) -> None:
    """Add a batch to the ledger inside the caller's transaction (no commit).

    Raises:
        IntegrityError: The batch id was applied before (on flush or commit).
    """
    session.add(
        UsageFlush(
            batch_id=batch_id,
            workspace_id=workspace_id,
            units=sum(counts.values()),
        )
    )
    session.flush()
    if counts:
        _add_counts(session, workspace_id, counts)


def apply_batch(
    session: Session, workspace_id: str, batch_id: str, counts: Counter[UsageKey]
) -> bool:
    """Add a claimed batch to the ledger in one transaction, at most once.

    Returns:
        ``True`` if applied now, ``False`` if it had been applied before.
    """
    try:
        stage_batch(session, workspace_id, batch_id, counts)
        session.commit()
    except IntegrityError:
        session.rollback()
        exists = session.get(UsageFlush, batch_id)
        if exists is None:
            raise
        return False
    return True


@dataclass
class FlushReport:
    """What one flush did."""

    batches: int = 0
    units: int = 0
    already_applied: int = 0
    events: list[tuple[str, int]] = field(default_factory=list)


class UsageFlusher:
    """Moves pending usage from Redis to the database, exactly once.

    Args:
        redis: The shared Redis.
        sessions: Database sessions.
        grace: Payment grace period (decides the plan in force).
    """

    def __init__(
        self, redis: Redis, sessions: sessionmaker[Session], *, grace: timedelta
    ) -> None:
        self.redis = redis
        self.sessions = sessions
        self.grace = grace
        self._claim = redis.register_script(_CLAIM_LUA)
        self._finish = redis.register_script(_FINISH_LUA)

    def claim(self, workspace_id: str) -> tuple[str, Counter[UsageKey]] | None:
        """Step 1: the batch to flush for a workspace, or ``None``."""
        got = self._claim(keys=_keys(workspace_id), args=[workspace_id, _batch_id()])
        if not got:
            return None
        batch_id, flat = got
        return batch_id.decode(), _pairs(flat)

    def finish(self, workspace_id: str, batch_id: str) -> None:
        """Step 3: forget a batch that is in the database."""
        self._finish(keys=_keys(workspace_id), args=[workspace_id, batch_id])

    def flush_workspace(self, workspace_id: str, *, now: datetime) -> FlushReport:
        """Flush one workspace's pending usage and record crossed thresholds.

        A batch left by a killed flush is finished first, then what is
        pending; at most ``MAX_BATCHES_PER_RUN`` batches, so a workspace
        written to without pause cannot hold the flush forever.
        """
        report = FlushReport()
        for _ in range(MAX_BATCHES_PER_RUN):
            claimed = self.claim(workspace_id)
            if claimed is None:
                break
            batch_id, counts = claimed
            with self.sessions() as session:
                applied = apply_batch(session, workspace_id, batch_id, counts)
            self.finish(workspace_id, batch_id)
            report.batches += 1
            if applied:
                report.units += sum(counts.values())
            else:
                report.already_applied += 1
        if report.batches:
            with self.sessions() as session:
                for threshold in record_thresholds(
                    session, workspace_id, now=now, grace=self.grace
                ):
                    report.events.append((workspace_id, threshold))
        return report

    def flush(self, *, now: datetime) -> FlushReport:
        """Flush every workspace with pending usage."""
        total = FlushReport()
        members = cast("set[bytes]", self.redis.smembers(DIRTY_KEY))
        for raw in sorted(members):
            part = self.flush_workspace(raw.decode(), now=now)
            total.batches += part.batches
            total.units += part.units
            total.already_applied += part.already_applied
            total.events.extend(part.events)
        if total.batches:
            logger.info(
                "Usage flush: %d batches, %d units, %d already applied",
                total.batches,
                total.units,
                total.already_applied,
            )
        return total


def _batch_id() -> str:
    return uuid.uuid4().hex


def month_total(session: Session, workspace_id: str, period: str) -> int:
    """Units in the ledger for a workspace and period (the cold-start seed)."""
    first, last = period_days(period)
    stmt = select(func.coalesce(func.sum(UsageDaily.count), 0)).where(
        UsageDaily.workspace_id == workspace_id,
        UsageDaily.day >= first,
        UsageDaily.day <= last,
    )
    return int(session.scalar(stmt) or 0)


def open_reservations(session: Session, workspace_id: str, period: str) -> int:
    """Units reserved by unfinished batch jobs of a period and not yet scored.

    Part of the cold-start seed: a job's reservation is counted at admission
    but reaches the ledger only as its texts are scored.
    """
    stmt = select(func.coalesce(func.sum(BatchJob.cost - BatchJob.scored), 0)).where(
        BatchJob.workspace_id == workspace_id,
        BatchJob.period == period,
        BatchJob.status.in_(("queued", "running")),
    )
    return int(session.scalar(stmt) or 0)


def record_thresholds(
    session: Session, workspace_id: str, *, now: datetime, grace: timedelta
) -> list[int]:
    """Record each quota threshold the ledger has crossed this period, once.

    Args:
        session: Database session.
        workspace_id: The workspace.
        now: Current time.
        grace: Payment grace period (decides the plan in force).

    Returns:
        The thresholds newly recorded (e.g. ``[80]``).
    """
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        return []
    quota = plan_in_force(workspace, now=now, grace=grace).monthly_quota
    if quota is None:
        return []
    period = period_of(now)
    used = month_total(session, workspace_id, period)
    new: list[int] = []
    for threshold in THRESHOLDS:
        if used * 100 < quota * threshold:
            continue
        exists = session.scalar(
            select(UsageEvent.id).where(
                UsageEvent.workspace_id == workspace_id,
                UsageEvent.period == period,
                UsageEvent.threshold == threshold,
                UsageEvent.quota == quota,
            )
        )
        if exists is not None:
            continue
        session.add(
            UsageEvent(
                workspace_id=workspace_id,
                period=period,
                threshold=threshold,
                quota=quota,
                used=used,
            )
        )
        emit(
            session,
            workspace_id,
            "usage.threshold_reached",
            {
                "workspace_id": workspace_id,
                "period": period,
                "threshold_percent": threshold,
                "quota": quota,
                "used": used,
                "plan": workspace.plan,
            },
            now=now,
        )
        try:
            session.commit()
        except IntegrityError:  # another flusher recorded it first
            session.rollback()
            continue
        logger.info(
            "Workspace %s crossed %d%% of its quota in %s",
            workspace_id,
            threshold,
            period,
        )
        new.append(threshold)
    return new


def unflushed(redis: Redis, session: Session, workspace_id: str) -> Counter[UsageKey]:
    """Usage in Redis not yet in the ledger (pending plus an unapplied batch)."""
    keys = _keys(workspace_id)[:3]
    got = cast("list[Any]", redis.eval(_PEEK_LUA, 3, *keys))
    pending, batch_id, flushing = got
    counts = _pairs(pending)
    if batch_id and session.get(UsageFlush, batch_id.decode()) is None:
        counts.update(_pairs(flushing))
    return counts


def daily_usage(
    redis: Redis,
    session: Session,
    workspace_id: str,
    *,
    first: date,
    last: date,
) -> Mapping[UsageKey, int]:
    """Ledger plus unflushed usage per cell, for days ``first``..``last``."""
    stmt = select(
        UsageDaily.day,
        UsageDaily.source,
        UsageDaily.api_key_id,
        UsageDaily.label,
        UsageDaily.count,
    ).where(
        UsageDaily.workspace_id == workspace_id,
        UsageDaily.day >= first,
        UsageDaily.day <= last,
    )
    counts: Counter[UsageKey] = Counter()
    for day, source, key_id, label, n in session.execute(stmt):
        counts[UsageKey(day, source, key_id, label)] += n
    for key, n in unflushed(redis, session, workspace_id).items():
        if first <= key.day <= last:
            counts[key] += n
    return counts
