"""Outbound events: recorded once, fanned out to the endpoints that want them.

``emit`` is called inside the transaction of whatever caused the event (a job
finishing, a threshold crossed, an alert, a connector failing), so the event
and its deliveries commit or roll back with it: the outbox pattern. Delivery
workers pick the deliveries up from the database afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.persistence.models import (
    OutboundEvent,
    WebhookDelivery,
    WebhookEndpoint,
    as_utc,
)

EVENT_TYPES: tuple[str, ...] = (
    "job.succeeded",
    "job.failed",
    "usage.threshold_reached",
    "sentiment.alert",
    "connector.error",
)
"""Every event type Tonehub sends."""


def wants(endpoint: WebhookEndpoint, event_type: str) -> bool:
    """Whether an endpoint's filter lets an event type through."""
    types: list[str] = json.loads(endpoint.event_types or "[]")
    return not types or event_type in types


def emit(
    session: Session,
    workspace_id: str,
    event_type: str,
    data: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> OutboundEvent:
    """Record an event and a pending delivery for each endpoint that wants it.

    The caller commits. Nothing is sent here. A disabled endpoint's
    deliveries wait: enabling it again sends them (``wake_pending``).

    Args:
        session: The caller's session (its transaction).
        workspace_id: The workspace the event belongs to.
        event_type: One of ``EVENT_TYPES``.
        data: The event's ``data`` object.
        now: Event time.

    Returns:
        The event (its id is the stable ``webhook-id``).
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    now = now or datetime.now(UTC)
    event = OutboundEvent(
        workspace_id=workspace_id,
        type=event_type,
        data=json.dumps(dict(data), sort_keys=True),
        created_at=now,
    )
    session.add(event)
    session.flush()
    endpoints = session.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.workspace_id == workspace_id)
    )
    for endpoint in endpoints:
        if wants(endpoint, event_type):
            session.add(
                WebhookDelivery(
                    endpoint_id=endpoint.id,
                    event_id=event.id,
                    workspace_id=workspace_id,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
    return event


def payload(event: OutboundEvent) -> bytes:
    """The body sent for an event: the same bytes on every attempt."""
    created = as_utc(event.created_at) or datetime.now(UTC)
    body = {
        "type": event.type,
        "timestamp": created.isoformat().replace("+00:00", "Z"),
        "data": json.loads(event.data),
    }
    return json.dumps(body, separators=(",", ":")).encode()


def describe_event(event: OutboundEvent) -> dict[str, Any]:
    """An event as the API shows it."""
    return {
        "id": event.id,
        "type": event.type,
        "created_at": as_utc(event.created_at),
        "data": json.loads(event.data),
    }
