"""Outbound webhook delivery: one attempt per job, retries on RQ's scheduler."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from core.webhooks import delivery, transport
from core.webhooks.transport import SendResult
from workers import runtime
from workers.queues import (
    WEBHOOK_DISPATCH_KEY,
    WEBHOOK_PENDING_KEY,
    enqueue_webhook_attempt,
)

logger = logging.getLogger(__name__)


def _send(url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
    allow = runtime.get().settings.webhook_allow_list
    return transport.post(url, body, headers, allow_hosts=allow)


def deliver_webhook(delivery_id: str, manual: bool = False) -> str | None:
    """Make a delivery's due attempt; schedule the next one if it failed."""
    rt = runtime.get()
    if not manual:
        rt.redis.delete(WEBHOOK_PENDING_KEY.format(delivery=delivery_id))
    outcome = delivery.attempt(
        rt.sessions, rt.box, delivery_id, send=_send, manual=manual
    )
    if outcome is None:
        return None
    logger.info(
        "Webhook delivery %s: %s (HTTP %s)",
        delivery_id,
        outcome.status,
        outcome.http_status,
    )
    if outcome.next_attempt_at is not None:
        enqueue_webhook_attempt(rt.redis, delivery_id, at=outcome.next_attempt_at)
    return outcome.status


def dispatch_webhooks() -> int:
    """Queue an attempt for every delivery that is due (the periodic sweep)."""
    rt = runtime.get()
    with rt.sessions() as session:
        ids = delivery.due(session, now=datetime.now(UTC))
    rt.redis.delete(WEBHOOK_DISPATCH_KEY)
    for delivery_id in ids:
        enqueue_webhook_attempt(rt.redis, delivery_id)
    return len(ids)
