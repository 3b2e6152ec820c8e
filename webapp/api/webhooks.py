"""``/v1/webhooks`` and ``/v1/events``: outbound webhook endpoints and their log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import g
from sqlalchemy import select

from core.persistence.models import OutboundEvent
from core.secrets import SecretBox
from core.webhooks import delivery, endpoints
from core.webhooks.events import EVENT_TYPES, describe_event
from webapp.api.views import AUTH, AUTH_ERRORS, BODY_ERRORS, bp
from webapp.extensions import get_db, tonehub
from webapp.schemas import (
    AttemptListOut,
    AttemptsQuery,
    EventListOut,
    RedeliverOut,
    ReplayIn,
    WebhookIn,
    WebhookListOut,
    WebhookOut,
    WebhookPatchIn,
)
from workers.queues import enqueue_webhook_attempt, enqueue_webhook_dispatch

WEBHOOK_ERRORS = {
    **BODY_ERRORS,
    400: "invalid_json, invalid_request, unknown_event_type, webhook_url_forbidden",
    503: "unavailable (TONEHUB_SECRET_KEY not set)",
}
ONE_ERRORS = {**AUTH_ERRORS, 404: "not_found"}


def _box() -> SecretBox:
    return SecretBox(tonehub().settings.secret_key)


def _allow() -> tuple[str, ...]:
    return tonehub().settings.webhook_allow_list


def _change(body: dict[str, Any]) -> endpoints.EndpointChange:
    return endpoints.EndpointChange(
        url=body.get("url"),
        event_types=body.get("event_types"),
        description=body.get("description"),
        enabled=body.get("enabled"),
    )


@bp.post("/webhooks")
@bp.input(WebhookIn, arg_name="body")
@bp.output(WebhookOut, status_code=201)
@bp.doc(
    summary="Add a webhook endpoint",
    description="The answer carries the signing secret (whsec_...) this once.",
    security=AUTH,
    responses=WEBHOOK_ERRORS,
)
def create_webhook(body: dict[str, Any]) -> dict[str, Any]:
    """Register a URL for some (or all) event types."""
    endpoint, secret = endpoints.create_endpoint(
        get_db(), _box(), g.workspace_id, _change(body), allow_hosts=_allow()
    )
    return {**endpoints.describe_endpoint(endpoint), "secret": secret}


@bp.get("/webhooks")
@bp.output(WebhookListOut)
@bp.doc(
    summary="This workspace's webhook endpoints", security=AUTH, responses=AUTH_ERRORS
)
def list_webhooks() -> dict[str, Any]:
    """Every endpoint (without secrets) and the event types there are."""
    found = endpoints.list_endpoints(get_db(), g.workspace_id)
    return {
        "webhooks": [endpoints.describe_endpoint(e) for e in found],
        "event_types": list(EVENT_TYPES),
    }


@bp.get("/webhooks/<endpoint_id>")
@bp.output(WebhookOut)
@bp.doc(summary="One webhook endpoint", security=AUTH, responses=ONE_ERRORS)
def get_webhook(endpoint_id: str) -> dict[str, Any]:
    """The endpoint, why it is disabled if it is, and its failing streak."""
    return endpoints.describe_endpoint(
        endpoints.get_endpoint(get_db(), g.workspace_id, endpoint_id)
    )


@bp.patch("/webhooks/<endpoint_id>")
@bp.input(WebhookPatchIn, arg_name="body")
@bp.output(WebhookOut)
@bp.doc(
    summary="Change a webhook endpoint",
    description="Enabling a disabled endpoint delivers what waited meanwhile.",
    security=AUTH,
    responses={**WEBHOOK_ERRORS, 404: "not_found"},
)
def update_webhook(endpoint_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """URL, event types, description, enabled."""
    db = get_db()
    endpoint = endpoints.get_endpoint(db, g.workspace_id, endpoint_id)
    was_enabled = endpoint.enabled
    endpoints.update_endpoint(db, endpoint, _change(body), allow_hosts=_allow())
    if endpoint.enabled and not was_enabled:
        endpoints.wake_pending(db, endpoint.id, now=datetime.now(UTC))
        enqueue_webhook_dispatch(tonehub().redis)
    return endpoints.describe_endpoint(endpoint)


@bp.delete("/webhooks/<endpoint_id>")
@bp.output({}, status_code=204)
@bp.doc(summary="Delete a webhook endpoint", security=AUTH, responses=ONE_ERRORS)
def delete_webhook(endpoint_id: str) -> tuple[str, int]:
    """The endpoint goes, with its pending deliveries and log."""
    db = get_db()
    endpoints.delete_endpoint(
        db, endpoints.get_endpoint(db, g.workspace_id, endpoint_id)
    )
    return "", 204


@bp.post("/webhooks/<endpoint_id>/rotate-secret")
@bp.output(WebhookOut)
@bp.doc(
    summary="Rotate an endpoint's signing secret",
    description="The new secret is in the answer, this once. For 24 hours "
    "messages carry signatures by both the new and the previous secret.",
    security=AUTH,
    responses={**ONE_ERRORS, 503: "unavailable"},
)
def rotate_webhook_secret(endpoint_id: str) -> dict[str, Any]:
    """A new whsec_ secret; the old one keeps signing for the rotation window."""
    db = get_db()
    endpoint = endpoints.get_endpoint(db, g.workspace_id, endpoint_id)
    secret = endpoints.rotate_secret(db, _box(), endpoint)
    return {**endpoints.describe_endpoint(endpoint), "secret": secret}


@bp.get("/webhooks/<endpoint_id>/attempts")
@bp.input(AttemptsQuery, location="query", arg_name="query")
@bp.output(AttemptListOut)
@bp.doc(
    summary="An endpoint's delivery log",
    security=AUTH,
    responses={**ONE_ERRORS, 400: "invalid_request"},
)
def webhook_attempts(endpoint_id: str, query: dict[str, Any]) -> dict[str, Any]:
    """Attempts, newest first: status code, latency, response excerpt, error."""
    db = get_db()
    endpoint = endpoints.get_endpoint(db, g.workspace_id, endpoint_id)
    log = delivery.attempt_log(
        db, endpoint.id, limit=query["limit"], before=query.get("before")
    )
    more = len(log) == query["limit"]
    return {"attempts": log, "next_before": log[-1]["id"] if more else None}


@bp.post("/webhooks/<endpoint_id>/events/<event_id>/redeliver")
@bp.output(RedeliverOut, status_code=202)
@bp.doc(
    summary="Send one event to the endpoint again", security=AUTH, responses=ONE_ERRORS
)
def redeliver_event(endpoint_id: str, event_id: str) -> dict[str, Any]:
    """Delivered now, with a fresh retry schedule (same webhook-id)."""
    db = get_db()
    endpoint = endpoints.get_endpoint(db, g.workspace_id, endpoint_id)
    sent = delivery.redeliver(db, endpoint, event_id, now=datetime.now(UTC))
    enqueue_webhook_attempt(tonehub().redis, sent.id, manual=True)
    return {"queued": 1, "delivery_ids": [sent.id]}


@bp.post("/webhooks/<endpoint_id>/replay")
@bp.input(ReplayIn, arg_name="body")
@bp.output(RedeliverOut, status_code=202)
@bp.doc(
    summary="Send every event of a time range to the endpoint again",
    security=AUTH,
    responses={**BODY_ERRORS, 400: "invalid_request", 404: "not_found"},
)
def replay_webhook(endpoint_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Events created in [since, until) that the endpoint subscribes to."""
    db = get_db()
    endpoint = endpoints.get_endpoint(db, g.workspace_id, endpoint_id)
    since, until = (_utc(body["since"]), _utc(body["until"]))
    ids = delivery.replay(db, endpoint, since=since, until=until, now=datetime.now(UTC))
    if ids:
        enqueue_webhook_dispatch(tonehub().redis)
    return {"queued": len(ids), "delivery_ids": ids[:100]}


@bp.get("/events")
@bp.output(EventListOut)
@bp.doc(summary="This workspace's recent events", security=AUTH, responses=AUTH_ERRORS)
def list_events() -> dict[str, Any]:
    """The 100 newest events (ids to redeliver)."""
    rows = get_db().scalars(
        select(OutboundEvent)
        .where(OutboundEvent.workspace_id == g.workspace_id)
        .order_by(OutboundEvent.created_at.desc(), OutboundEvent.id)
        .limit(100)
    )
    return {"events": [describe_event(e) for e in rows]}


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
