"""Admission, usage recording and rate-limit headers for ``/v1``.

Every authenticated ``/v1`` request is admitted once, before its view runs,
with its cost read from the body (one unit per text): the rate limit and the
monthly quota are checked and taken together in Redis. Units that end up not
scored (a request refused by validation, a failed batch item, an error) are
given back after the response is built, and every response carries the
headers below.

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

import json
import logging
from collections.abc import Iterable

from flask import Response, g, request
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from core.errors import ServiceUnavailable
from core.metering import Admission, record_usage_durably
from webapp.extensions import tonehub

logger = logging.getLogger(__name__)


def request_cost() -> int:
    """Texts the current request asks to score (0 when it scores none).

    A body that will fail validation costs what it claims up to the batch
    limit; its units are refunded when the 4xx is sent.
    """
    if request.method != "POST" or request.endpoint not in COSTED_ENDPOINTS:
        return 0
    try:
        body = json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, RecursionError, OSError, HTTPException):
        return 0  # the body checks that follow answer with the right 4xx
    if not isinstance(body, dict):
        return 0
    if request.endpoint == "api.score_text":
        return 1
    texts = body.get("texts")
    limit = tonehub().settings.max_batch
    if isinstance(texts, list) and 0 < len(texts) <= limit:
        return len(texts)
    return 0


COSTED_ENDPOINTS = frozenset({"api.score_text", "api.score_batch"})


def admit_request() -> None:
    """``before_request``: admit the request or raise ``LimitExceeded``."""
    ext = tonehub()
    if not ext.settings.metering:
        return
    try:
        admission = ext.meter.admit(g.workspace_id, g.plan, request_cost())
    except RedisError as exc:
        # Without the counters nothing can be admitted exactly: fail closed.
        raise ServiceUnavailable(
            "Usage metering is unavailable right now; try again shortly."
        ) from exc
    g.admission = admission
    g.units_used = 0
    admission.raise_if_refused()


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


def finish_request(response: Response) -> Response:
    """``after_request``: refund what was not scored, then set the headers."""
    admission: Admission | None = g.get("admission")
    if admission is None:
        return response
    used = admission.used
    if admission.admitted:
        unused = admission.cost - g.get("units_used", 0)
        if unused > 0:
            try:
                tonehub().meter.refund(g.workspace_id, admission.period, unused)
                used -= unused
            except RedisError:  # the caller keeps its answer; the units stay taken
                logger.warning(
                    "Refund of %d units for %s failed", unused, g.workspace_id
                )
    for name, value in rate_headers(admission, used=used).items():
        response.headers[name] = value
    return response


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
