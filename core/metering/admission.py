"""Atomic admission: rate limit and monthly quota in one Redis script.

A request costs one token of its workspace's token bucket (the rate limit) and
``cost`` units of the month's quota (one unit per text). The Lua script below
checks both and, only if both fit, takes both: a request is never half
admitted, and because Redis runs a script alone, every gunicorn worker on
every host sees one exact count. A refused request takes nothing.

The month's counter is seeded from the database ledger when Redis does not
have it (a restarted or new Redis): see ``Meter.admit``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis
from sqlalchemy.orm import Session, sessionmaker

from core.errors import QuotaExceeded, RateLimited
from core.metering.ledger import month_total, open_reservations
from core.metering.periods import period_end, period_of
from core.plans import Plan

QUOTA_KEY = "th:quota:{workspace}:{period}"
"""Units admitted in a period. Lives 40 days past the period's end."""

RATE_KEY = "th:rate:{workspace}"
"""Token bucket of a workspace: ``tokens`` and ``ts`` (seconds, Redis clock)."""

QUOTA_KEY_GRACE_SECONDS = 40 * 86_400

UNLIMITED = -1

# KEYS: quota counter, token bucket.
# ARGV: cost, quota (-1 unlimited), rate/s, burst, seed (-1: none), counter ttl.
# Returns {status, used, tokens}: status 0 admitted, 1 rate, 2 quota, 3 cold
# (the counter is missing and no seed was given). Floats travel as strings
# because Redis truncates Lua numbers to integers.
_ADMIT_LUA = """
local cost = tonumber(ARGV[1])
local quota = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local used = redis.call('GET', KEYS[1])
if not used then
  if tonumber(ARGV[5]) < 0 then return {3, 0, '0'} end
  redis.call('SET', KEYS[1], ARGV[5], 'EX', ARGV[6])
  used = ARGV[5]
end
used = tonumber(used)
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local bucket = redis.call('HMGET', KEYS[2], 'tokens', 'ts')
local tokens = tonumber(bucket[1])
local ts = tonumber(bucket[2])
if not tokens then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
if quota >= 0 and used + cost > quota then
  return {2, used, tostring(tokens)}
end
if tokens < 1 then return {1, used, tostring(tokens)} end
tokens = tokens - 1
redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[2], math.ceil(burst / rate * 1000) + 1000)
if cost > 0 then used = redis.call('INCRBY', KEYS[1], cost) end
return {0, used, tostring(tokens)}
"""

# KEYS: quota counter, release marker. ARGV: units, marker ttl. Gives units
# back once per marker (a job's reservation), if the counter exists.
_RELEASE_LUA = """
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[2]) == false then
  return false
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('DECRBY', KEYS[1], ARGV[1])
end
return false
"""

RELEASE_KEY = "th:release:{token}"
"""Marks a reservation released, so a retried release gives nothing back twice."""

# KEYS: quota counter. ARGV: units. Gives units back if the counter exists.
_REFUND_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('DECRBY', KEYS[1], ARGV[1])
end
return false
"""


@dataclass(frozen=True)
class Admission:
    """The outcome of one admission check; also what the response headers say.

    Attributes:
        admitted: Whether the request may go on (and was counted).
        reason: ``None``, ``"rate"`` or ``"quota"``.
        cost: Units asked for.
        plan: The plan the request was checked against.
        period: The quota period (``"2026-12"``).
        used: Units counted in the period, this request included if admitted.
        tokens: Rate-limit tokens left in the bucket.
        resets_at: When the quota resets.
        now: When the check ran.
    """

    admitted: bool
    reason: str | None
    cost: int
    plan: Plan
    period: str
    used: int
    tokens: float
    resets_at: datetime
    now: datetime

    @property
    def quota_remaining(self) -> int | None:
        """Units left this period; ``None`` when the plan is unlimited."""
        quota = self.plan.monthly_quota
        return None if quota is None else max(0, quota - self.used)

    @property
    def rate_window(self) -> int:
        """Seconds the bucket takes to refill from empty (the policy window)."""
        return math.ceil(self.plan.burst / self.plan.rate_per_second)

    @property
    def rate_reset(self) -> int:
        """Seconds until the bucket is full again."""
        missing = max(0.0, self.plan.burst - self.tokens)
        return math.ceil(missing / self.plan.rate_per_second)

    @property
    def retry_after(self) -> int:
        """Seconds until this request could be admitted (0 if it was)."""
        if self.reason == "rate":
            return max(1, math.ceil((1 - self.tokens) / self.plan.rate_per_second))
        if self.reason == "quota":
            return max(1, math.ceil((self.resets_at - self.now).total_seconds()))
        return 0

    def raise_if_refused(self) -> None:
        """Raise the matching ``LimitExceeded`` when not admitted."""
        if self.reason == "quota":
            quota = self.plan.monthly_quota
            raise QuotaExceeded(
                f"This request needs {self.cost:,} scored "
                f"{'text' if self.cost == 1 else 'texts'} but the "
                f"{self.plan.title} plan's quota of {quota:,} a month has "
                f"{self.quota_remaining:,} left. It resets at "
                f"{self.resets_at:%Y-%m-%dT%H:%M:%SZ}. Upgrade for more: "
                "POST /v1/billing/checkout with plan 'plus' or 'pro'.",
                retry_after=self.retry_after,
            )
        if self.reason == "rate":
            raise RateLimited(
                f"The {self.plan.title} plan allows {self.plan.rate_per_second} "
                f"requests a second (bursts of {self.plan.burst}); slow down "
                f"and retry in {self.retry_after} s.",
                retry_after=self.retry_after,
            )


class Meter:
    """Admission, refunds and usage recording against one Redis.

    Args:
        redis: The shared Redis.
        sessions: Database sessions (to seed a cold counter from the ledger).
        clock: Current time, UTC (injected by tests).
    """

    def __init__(
        self,
        redis: Redis,
        sessions: sessionmaker[Session],
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.redis = redis
        self.sessions = sessions
        self.clock = clock or (lambda: datetime.now(UTC))
        self._admit = redis.register_script(_ADMIT_LUA)
        self._refund = redis.register_script(_REFUND_LUA)
        self._release = redis.register_script(_RELEASE_LUA)

    def admit(self, workspace_id: str, plan: Plan, cost: int) -> Admission:
        """Check and take one request and ``cost`` units, atomically.

        Args:
            workspace_id: The workspace paying.
            plan: Its plan in force.
            cost: Texts the request will score (0 for calls that score none).

        Returns:
            The admission; when refused nothing was taken.
        """
        now = self.clock()
        period = period_of(now)
        keys = [
            QUOTA_KEY.format(workspace=workspace_id, period=period),
            RATE_KEY.format(workspace=workspace_id),
        ]
        quota = UNLIMITED if plan.monthly_quota is None else plan.monthly_quota
        ends = period_end(now)
        ttl = int((ends - now).total_seconds()) + QUOTA_KEY_GRACE_SECONDS
        args = [cost, quota, plan.rate_per_second, plan.burst, -1, ttl]
        status, used, tokens = self._admit(keys=keys, args=args)
        if status == 3:
            # Cold counter: rebuild it from the durable ledger. Two processes
            # may both get here; the script sets the seed only if still absent.
            with self.sessions() as session:
                args[4] = month_total(
                    session, workspace_id, period
                ) + open_reservations(session, workspace_id, period)
            status, used, tokens = self._admit(keys=keys, args=args)
        reason = {0: None, 1: "rate", 2: "quota"}[int(status)]
        return Admission(
            admitted=reason is None,
            reason=reason,
            cost=cost,
            plan=plan,
            period=period,
            used=int(used),
            tokens=float(tokens),
            resets_at=ends,
            now=now,
        )

    def refund(self, workspace_id: str, period: str, units: int) -> None:
        """Give back units admitted but not scored (failed items, errors)."""
        if units > 0:
            key = QUOTA_KEY.format(workspace=workspace_id, period=period)
            self._refund(keys=[key], args=[units])

    def release_once(
        self, workspace_id: str, period: str, units: int, *, token: str
    ) -> bool:
        """Give back the unused part of a reservation, at most once per token.

        A cold counter (Redis lost it) is left alone: it is rebuilt from the
        ledger, which never held the unused units.

        Returns:
            Whether units were given back now.
        """
        if units <= 0:
            return False
        keys = [
            QUOTA_KEY.format(workspace=workspace_id, period=period),
            RELEASE_KEY.format(token=token),
        ]
        return (
            self._release(keys=keys, args=[units, QUOTA_KEY_GRACE_SECONDS]) is not None
        )

    def used(self, workspace_id: str, now: datetime | None = None) -> int:
        """Units counted this period (seeding the counter if Redis lost it)."""
        now = now or self.clock()
        period = period_of(now)
        key = QUOTA_KEY.format(workspace=workspace_id, period=period)
        raw = self.redis.get(key)
        if raw is None:
            with self.sessions() as session:
                seed = month_total(session, workspace_id, period) + open_reservations(
                    session, workspace_id, period
                )
            ttl = int((period_end(now) - now).total_seconds()) + QUOTA_KEY_GRACE_SECONDS
            self.redis.set(key, seed, ex=ttl, nx=True)
            raw = self.redis.get(key)
        return int(raw or 0)
