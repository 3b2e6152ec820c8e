"""Delivering an event to an endpoint: one attempt, the retry schedule, the log.

An attempt is claimed in the database first (a conditional update of the
delivery that is due and pending, pushing its due time past a lease), so two
workers, a retry and the periodic sweep never send the same attempt twice at
once. The HTTP call happens outside any transaction; its outcome is recorded
after it:

- 2xx: succeeded; the endpoint's failing streak ends.
- 410 Gone: the endpoint is disabled (the receiver asked us to stop).
- anything else (3xx included: redirects are not followed), a timeout or a
  refused connection: retried after the next delay of ``SCHEDULE`` (the
  Standard Webhooks schedule) with +-10% jitter, or later when the answer
  carried ``Retry-After``; after the last one the delivery has failed.
- an endpoint failing for ``DISABLE_AFTER`` is disabled and its owner told
  (the dashboard shows why; the log says so).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from core.errors import InvalidRequest, NotFound
from core.persistence.models import (
    OutboundEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    as_utc,
)
from core.secrets import SecretBox
from core.webhooks.endpoints import disable_endpoint, signing_secrets
from core.webhooks.events import payload, wants
from core.webhooks.signing import signed_headers
from core.webhooks.transport import SendResult

logger = logging.getLogger(__name__)

SCHEDULE: tuple[int, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
"""Seconds before each attempt: immediately, 5 s, 5 min, 30 min, 2 h, 5 h,
10 h, 14 h, 20 h, 24 h (the Standard Webhooks schedule)."""

JITTER = 0.1
"""Each delay is stretched or shrunk by up to this share."""

MAX_RETRY_AFTER = 86400
"""A ``Retry-After`` longer than a day is capped to a day."""

DISABLE_AFTER = timedelta(days=5)
"""An endpoint failing this long without one success is disabled."""

LEASE = timedelta(minutes=2)
"""How long a claimed attempt may take before the sweep may try it again."""

REPLAY_MAX = 10_000
"""Events one replay may queue."""

Sender = Callable[[str, bytes, Mapping[str, str]], SendResult]
"""URL, body, headers -> what happened."""


@dataclass(frozen=True)
class AttemptOutcome:
    """The result of ``attempt``.

    Attributes:
        status: The delivery's status after the attempt.
        next_attempt_at: When the next retry is due (``None``: no retry).
        http_status: The endpoint's answer, if any.
    """

    status: str
    next_attempt_at: datetime | None
    http_status: int | None


def retry_after_seconds(headers: Mapping[str, str], *, now: datetime) -> int | None:
    """``Retry-After`` as seconds (delta or HTTP date), or ``None``."""
    raw = headers.get("retry-after", "").strip()
    if not raw:
        return None
    if raw.isascii() and raw.isdigit():  # "²".isdigit() is true too
        return min(int(raw[:12]), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, min(int((when - now).total_seconds()), MAX_RETRY_AFTER))


def next_delay(step: int, *, rng: random.Random, retry_after: int | None) -> int | None:
    """Seconds until the attempt after ``step`` attempts, or ``None`` (give up)."""
    if step >= len(SCHEDULE):
        return None
    delay = SCHEDULE[step] * (1 + rng.uniform(-JITTER, JITTER))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return round(delay)


def _claim(session: Session, delivery_id: str, now: datetime) -> bool:
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
        )
        .values(next_attempt_at=now + LEASE)
        # The loaded row's times may be naive (SQLite): do not evaluate in Python.
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


def attempt(
    sessions: sessionmaker[Session],
    box: SecretBox,
    delivery_id: str,
    *,
    send: Sender,
    now: datetime | None = None,
    rng: random.Random | None = None,
    manual: bool = False,
) -> AttemptOutcome | None:
    """Make the due attempt of a delivery, if it is due and not taken.

    Args:
        sessions: Database sessions.
        box: Opens the endpoint's secrets.
        delivery_id: The delivery.
        send: Posts the request (``core.webhooks.transport.post`` bound to
            the settings, or a test double).
        now: Current time (tests control it).
        rng: Jitter source.
        manual: Logged as a manual redelivery.

    Returns:
        The outcome, or ``None`` when there was nothing to do (not due,
        already done, claimed by another worker, endpoint disabled).
    """
    now = now or datetime.now(UTC)
    rng = rng or random.Random()
    with sessions() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            return None
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint is None or not endpoint.enabled:
            return None
        if not _claim(session, delivery_id, now):
            return None
        event = session.get(OutboundEvent, delivery.event_id)
        if event is None:
            return None
        body = payload(event)
        headers = signed_headers(
            signing_secrets(box, endpoint, now=now),
            event.id,
            int(now.timestamp()),
            body,
        )
        url = endpoint.url
    result = send(url, body, headers)
    return _record(sessions, delivery_id, result, now=now, rng=rng, manual=manual)


def _record(
    sessions: sessionmaker[Session],
    delivery_id: str,
    result: SendResult,
    *,
    now: datetime,
    rng: random.Random,
    manual: bool,
) -> AttemptOutcome | None:
    with sessions() as session:
        delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
        if delivery is None:
            return None  # deleted with its endpoint meanwhile
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
        session.add(
            WebhookAttempt(
                delivery_id=delivery_id,
                endpoint_id=delivery.endpoint_id,
                attempted_at=now,
                status_code=result.status,
                latency_ms=result.latency_ms,
                response_excerpt=result.excerpt or None,
                error=result.error,
                manual=manual,
            )
        )
        delivery.attempts += 1
        delivery.step += 1
        delivery.last_status = result.status
        ok = result.status is not None and 200 <= result.status < 300
        if ok:
            delivery.status = "succeeded"
            delivery.next_attempt_at = None
            if endpoint is not None:
                endpoint.failing_since = None
        else:
            _failed(session, delivery, endpoint, result, now=now, rng=rng)
        session.commit()
        return AttemptOutcome(
            delivery.status, as_utc(delivery.next_attempt_at), result.status
        )


def _failed(
    session: Session,
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint | None,
    result: SendResult,
    *,
    now: datetime,
    rng: random.Random,
) -> None:
    if endpoint is not None and result.status == 410:
        disable_endpoint(session, endpoint, "The endpoint answered 410 Gone.", now=now)
        delivery.status = "failed"
        delivery.next_attempt_at = None
        logger.warning("Webhook endpoint %s disabled: 410 Gone", endpoint.id)
        return
    delay = next_delay(
        delivery.step,
        rng=rng,
        retry_after=retry_after_seconds(result.headers, now=now),
    )
    if delay is None:
        delivery.status = "failed"
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = now + timedelta(seconds=delay)
    if endpoint is None:
        return
    since = as_utc(endpoint.failing_since)
    if since is None:
        endpoint.failing_since = now
    elif now - since >= DISABLE_AFTER:
        disable_endpoint(
            session,
            endpoint,
            f"Every delivery failed for {DISABLE_AFTER.days} days "
            f"(since {since:%Y-%m-%d %H:%M} UTC).",
            now=now,
        )
        # The owner learns it on the dashboard (a banner on every page) and
        # from the operator's logs; an email backend can hook in here.
        logger.warning(
            "Webhook endpoint %s of workspace %s disabled after failing since %s",
            endpoint.id,
            endpoint.workspace_id,
            since.isoformat(),
        )


def due(session: Session, *, now: datetime, limit: int = 500) -> list[str]:
    """Pending deliveries due now whose endpoint is enabled, oldest first."""
    return list(
        session.scalars(
            select(WebhookDelivery.id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,
                WebhookEndpoint.enabled.is_(True),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
    )


def redeliver(
    session: Session, endpoint: WebhookEndpoint, event_id: str, *, now: datetime
) -> WebhookDelivery:
    """Send an event to an endpoint again, now, with a fresh retry schedule.

    Raises:
        NotFound: No such event in the endpoint's workspace.
    """
    event = session.get(OutboundEvent, event_id)
    if event is None or event.workspace_id != endpoint.workspace_id:
        raise NotFound(f"No event {event_id!r} in this workspace.")
    delivery = _reset(session, endpoint, event.id, now=now)
    session.commit()
    return delivery


def _reset(
    session: Session, endpoint: WebhookEndpoint, event_id: str, *, now: datetime
) -> WebhookDelivery:
    delivery = session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint.id,
            WebhookDelivery.event_id == event_id,
        )
    )
    if delivery is None:
        delivery = WebhookDelivery(
            endpoint_id=endpoint.id,
            event_id=event_id,
            workspace_id=endpoint.workspace_id,
            created_at=now,
            attempts=0,
        )
        session.add(delivery)
    delivery.status = "pending"
    delivery.step = 0
    delivery.next_attempt_at = now
    return delivery


def replay(
    session: Session,
    endpoint: WebhookEndpoint,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
) -> list[str]:
    """Redeliver every event of a time range the endpoint wants.

    Returns:
        The delivery ids queued.

    Raises:
        InvalidRequest: An empty or reversed range, or too many events.
    """
    if until <= since:
        raise InvalidRequest("'until' must be after 'since'.", field="until")
    events = list(
        session.scalars(
            select(OutboundEvent)
            .where(
                OutboundEvent.workspace_id == endpoint.workspace_id,
                OutboundEvent.created_at >= since,
                OutboundEvent.created_at < until,
            )
            .order_by(OutboundEvent.created_at, OutboundEvent.id)
            .limit(REPLAY_MAX + 1)
        )
    )
    if len(events) > REPLAY_MAX:
        raise InvalidRequest(
            f"A replay covers at most {REPLAY_MAX:,} events; narrow the range.",
            field="since",
        )
    ids = [
        _reset(session, endpoint, e.id, now=now).id
        for e in events
        if wants(endpoint, e.type)
    ]
    session.commit()
    return ids


def attempt_log(
    session: Session, endpoint_id: str, *, limit: int = 50, before: int | None = None
) -> list[dict[str, Any]]:
    """The endpoint's attempts, newest first (``before``: an attempt id cursor)."""
    stmt = (
        select(WebhookAttempt, WebhookDelivery.event_id, OutboundEvent.type)
        .join(WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id)
        .join(OutboundEvent, OutboundEvent.id == WebhookDelivery.event_id)
        .where(WebhookAttempt.endpoint_id == endpoint_id)
        .order_by(WebhookAttempt.id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(WebhookAttempt.id < before)
    return [
        {
            "id": a.id,
            "event_id": event_id,
            "event_type": event_type,
            "attempted_at": as_utc(a.attempted_at),
            "status_code": a.status_code,
            "latency_ms": a.latency_ms,
            "response_excerpt": a.response_excerpt,
            "error": a.error,
            "manual": a.manual,
        }
        for a, event_id, event_type in session.execute(stmt)
    ]
