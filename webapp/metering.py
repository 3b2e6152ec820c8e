"""Admission, usage recording and rate-limit headers for ``/v1``.

Every authenticated ``/v1`` request is admitted exactly once by one Redis
script that checks the rate limit and the monthly quota together:

- Scoring calls are admitted after their input is validated and before the
  model runs, with their true cost: the texts that will be scored (the
  ``admit`` hook of ``ScoringService``). A text that fails validation costs
  nothing, and an over-quota caller still learns about a bad request first.
- Other calls are admitted with cost 0 before their view runs (a rate-limit
  token, no quota).
- A request refused before admission (a malformed body, a schema error) is
  admitted with cost 0 when its answer is built, so it still takes a
  rate-limit token and carries the headers.

Units admitted but not scored (an error after admission) are given back.

Headers:
    ``RateLimit-Policy``/``RateLimit``: the IETF draft fields
    (draft-ietf-httpapi-ratelimit-headers-10), policy ``"rate"``: ``q`` is
    the burst, ``w`` the seconds to refill it, ``r`` the requests left now,
    ``t`` the seconds until the bucket is full.
    ``RateLimit-Limit``/``-Remaining``/``-Reset``: the same numbers in the
    widely deployed three-field form.
    ``X-Quota-Limit``/``X-Quota-Remaining``: scored texts this month (both
    absent on unlimited plans); ``X-Quota-Used`` and ``X-Quota-Reset`` (when
    the month's quota resets, RFC 3339 UTC) always.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from flask import Response, g, request
from redis.exceptions import RedisError

from core.errors import ServiceUnavailable
from core.metering import Admission, record_usage_durably
from webapp.extensions import tonehub
from webapp.metrics import count_admission

logger = logging.getLogger(__name__)

SCORING_ENDPOINTS = frozenset({"api.score_text", "api.score_batch"})
"""Synchronous scoring: their latency feeds the dashboard's p50/p95."""

COSTED_ENDPOINTS = SCORING_ENDPOINTS | {"api.create_job"}
"""Views that admit their validated cost through ``admit_units``."""


def admit_units(cost: int) -> None:
    """Admit the current request for ``cost`` texts, or raise.

    Raises:
        RateLimited, QuotaExceeded: Refused; nothing was taken.
        ServiceUnavailable: Redis is down (metering fails closed).
    """
    ext = tonehub()
    if not ext.settings.metering:
        return
    try:
        admission = ext.meter.admit(g.workspace_id, g.plan, cost)
    except RedisError as exc:
        count_admission("unavailable")
        raise ServiceUnavailable(
            "Usage metering is unavailable right now; try again shortly."
        ) from exc
    g.admission = admission
    g.units_used = 0
    count_admission(_outcome(admission))
    admission.raise_if_refused()


def _outcome(admission: Admission) -> str:
    if admission.admitted:
        return "admitted"
    return {"quota": "quota_exceeded", "rate": "rate_limited"}.get(
        str(admission.reason), "refused"
    )


def admit_request() -> None:
    """``before_request``: admit calls that score nothing (cost 0)."""
    if request.endpoint not in COSTED_ENDPOINTS:
        admit_units(0)


def record_scored(labels: Iterable[str]) -> None:
    """Record the labels of the texts a view scored, against the caller."""
    ext = tonehub()
    admission: Admission | None = g.get("admission")
    if admission is None:
        return
    g.units_used += record_usage_durably(
        ext.redis,
        ext.sessions,
        g.workspace_id,
        source="api",
        labels=labels,
        day=admission.now.date(),
        api_key_id=g.api_key_id,
    )


def keep_units(units: int) -> None:
    """Keep ``units`` of the admitted cost taken (a batch job's reservation)."""
    if g.get("admission") is not None:
        g.units_used = g.get("units_used", 0) + units


def note_released(units: int) -> None:
    """Tell the headers that ``units`` went back to the quota in this request."""
    g.units_released = g.get("units_released", 0) + units


def finish_request(response: Response) -> Response:
    """``after_request``: admit what was refused early, refund, set headers."""
    ext = tonehub()
    if not ext.settings.metering or "workspace_id" not in g:
        return response
    admission: Admission | None = g.get("admission")
    # Units a view gave back (a cancelled job) after its admission was taken.
    released = g.get("units_released", 0) if admission is not None else 0
    if admission is None:
        try:
            admission = ext.meter.admit(g.workspace_id, g.plan, 0)
        except RedisError:
            count_admission("unavailable")
            return response
        count_admission(_outcome(admission))
        g.units_used = 0
    used = max(0, admission.used - released)
    unused = admission.cost - g.get("units_used", 0) if admission.admitted else 0
    if unused > 0:
        try:
            ext.meter.refund(g.workspace_id, admission.period, unused)
            used -= unused
        except RedisError:  # the caller keeps its answer; the units stay taken
            logger.warning("Refund of %d units for %s failed", unused, g.workspace_id)
    for name, value in rate_headers(admission, used=used).items():
        response.headers[name] = value
    if request.endpoint in SCORING_ENDPOINTS and "started" in g:
        _record_latency(g.workspace_id, admission, time.perf_counter() - g.started)
    return response


LATENCY_KEY = "th:latency:{workspace}:{day}"
"""A day's request latencies (ms) of a workspace's scoring calls, newest first."""

LATENCY_SAMPLES = 5_000
"""Latencies kept per workspace and day (enough for a p95)."""


def _record_latency(workspace_id: str, admission: Admission, seconds: float) -> None:
    key = LATENCY_KEY.format(workspace=workspace_id, day=admission.now.date())
    try:
        with tonehub().redis.pipeline(transaction=False) as pipe:
            pipe.lpush(key, round(seconds * 1000, 2))
            pipe.ltrim(key, 0, LATENCY_SAMPLES - 1)
            pipe.expire(key, 35 * 86_400)
            pipe.execute()
    except RedisError:
        pass  # a statistic, not worth failing an answer for


def rate_headers(admission: Admission, *, used: int) -> dict[str, str]:
    """The rate-limit and quota headers for an admission."""
    plan = admission.plan
    remaining = max(0, int(admission.tokens))
    reset = admission.rate_reset
    headers = {
        "RateLimit-Policy": f'"rate";q={plan.burst};w={admission.rate_window}',
        "RateLimit": f'"rate";r={remaining};t={reset}',
        "RateLimit-Limit": str(plan.burst),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset),
        "X-Quota-Used": str(used),
        "X-Quota-Reset": admission.resets_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if plan.monthly_quota is not None:
        headers["X-Quota-Limit"] = str(plan.monthly_quota)
        headers["X-Quota-Remaining"] = str(max(0, plan.monthly_quota - used))
    return headers
